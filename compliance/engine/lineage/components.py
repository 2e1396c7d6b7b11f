"""Components of a checkpoint: language model, vision encoder, audio encoder, projector.

A multimodal checkpoint holds several transformer stacks of different residual widths (a ViT
tower, a language model, perhaps an audio encoder) and a small projector between them. The
lineage test works on one stack at a time, so the checkpoint is split first, by structure, so
that renamed tensors split too; names only break ties:

* a *stack* is the set of tensors sharing the text before their first dotted integer
  (``model.language_model.layers.``, ``visual.blocks.``, ``trunk.``) whose layers repeat one
  shape signature at least twice; its residual width is the most common input width of its
  matrices;
* tensors outside every stack ("loose") go to the stack whose width they carry, the one with the
  longest common name prefix first: a vocabulary-sized ``[V, d]`` matrix marks a language
  model, a patch embedding ``[d, 3, p, p]``, ``[d, 3, t, p, p]`` or ``[d, 3·p·p]`` a vision
  encoder, a ``[d, n_mels, k]`` convolution (80 or 128 mel bins, Whisper-style) an audio encoder;
* the projector is the module holding a loose matrix ``[d_language, k·d_vision]`` (k = 1, or 4
  for a 2 x 2 patch merger), with every loose tensor under the same module prefix.

A checkpoint with one stack (or none) is one component, as before: a plain LLM is ``language``,
a standalone SigLIP/CLIP tower ``vision``. See research/model-lineage.md, "Multimodal
checkpoints", for the layouts this was written against.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

KINDS = ("language", "vision", "audio", "projector")

_LAYER_INT = re.compile(r"(?:^|[._])(\d+)(?=[._])")
_HINTS = {
    "vision": re.compile(r"vision|visual|vit\b|vit\.|image|siglip|clip|img", re.IGNORECASE),
    "audio": re.compile(r"audio|whisper|speech|mel\b", re.IGNORECASE),
    "language": re.compile(r"language_model|text_model|llm|decoder", re.IGNORECASE),
}
_PROJECTOR_HINT = re.compile(r"projector|merger|connector|mlp1|mm_proj|aligner|adapter|modality_projection",
                             re.IGNORECASE)
# Mel-spectrogram bins of Whisper-style front ends (80 up to large-v2, 128 from large-v3).
_MEL_BINS = (80, 128)
_SUB_CONFIGS = {"language": ("text_config", "llm_config", "language_config"),
                "vision": ("vision_config", "visual"),
                "audio": ("audio_config",)}


@dataclass
class Component:
    """One component: its kind, the tensors that belong to it, its residual width and how it was told."""

    kind: str
    tensors: list[str]
    hidden_size: int
    prefix: str
    layers: int = 0
    method: str = "structure"  # "structure", or "names" when only a name hint decided the kind
    evidence: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "prefix": self.prefix, "hidden_size": self.hidden_size, "layers": self.layers,
                "tensors": len(self.tensors), "method": self.method, "evidence": self.evidence}


@dataclass
class _Stack:
    prefix: str
    layers: dict[int, list[str]]
    width: int
    loose: list[str] = field(default_factory=list)
    kind: str | None = None
    evidence: list[str] = field(default_factory=list)


def _split_name(name: str) -> tuple[str, int, str] | None:
    match = _LAYER_INT.search(name)
    if not match:
        return None
    return name[:match.start(1)], int(match.group(1)), name[match.end(1) + 1:]


def _stacks_find(shapes: dict[str, tuple[int, ...]]) -> tuple[list[_Stack], list[str]]:
    groups: dict[str, dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
    loose: list[str] = []
    for name in sorted(shapes):
        split = _split_name(name)
        if split is None:
            loose.append(name)
            continue
        groups[split[0]][split[1]].append(name)
    stacks: list[_Stack] = []
    for prefix, numbered in groups.items():
        # Blocks under one prefix but of different residual widths are different stacks (a vision
        # tower renumbered into the language model's own block sequence).
        by_width: dict[int, dict[int, list[str]]] = defaultdict(dict)
        for index, names in numbered.items():
            lasts = Counter(shapes[n][-1] for n in names if len(shapes[n]) in (2, 3))
            by_width[lasts.most_common(1)[0][0] if lasts else 0][index] = names
        for layers in by_width.values():
            _stack_add(prefix, layers, shapes, stacks, loose)
    return stacks, sorted(loose)


def _stack_add(prefix: str, layers: dict[int, list[str]], shapes: dict[str, tuple[int, ...]], stacks: list[_Stack],
               loose: list[str]) -> None:
    """Keep `layers` as a stack when they repeat a block of at least three matrices; else their tensors are loose."""
    signatures = Counter(
        frozenset((_split_name(n)[2], shapes[n]) for n in names) for names in layers.values()  # type: ignore[index]
    )
    widths = Counter(shapes[n][-1] for names in layers.values() for n in names if len(shapes[n]) in (2, 3))
    modal, repeats = signatures.most_common(1)[0]
    # A transformer block holds at least three matrices (attention in, out, MLP); a projector's
    # numbered linears (``linear_1``, ``mlp.0``/``mlp.2``) hold one each and stay loose.
    if len(layers) < 2 or repeats < 2 or sum(1 for _, shape in modal if len(shape) >= 2) < 3 or not widths:
        loose.extend(n for names in layers.values() for n in names)
        return
    stacks.append(_Stack(prefix=prefix, layers=dict(layers), width=widths.most_common(1)[0][0]))


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a.split("."), b.split(".")):
        if x != y:
            break
        n += 1
    return n


# Patch sizes of published ViTs (CLIP/SigLIP/InternViT/Qwen-VL 14, ViT/SigLIP 16, CLIP-B 32).
_PATCHES = (14, 16, 32)


def _is_patch_embedding(shape: tuple[int, ...], width: int, widths: set[int]) -> bool:
    if len(shape) in (4, 5) and shape[0] == width and shape[1] == 3:
        return True  # Conv2d [d, 3, p, p] (CLIP, SigLIP, InternViT) or Conv3d [d, 3, t, p, p] (Qwen2-VL)
    if len(shape) == 2 and shape[0] == width and not any(shape[1] % w == 0 for w in widths):
        # A linear patch embedding [d, 3·t·p·p]; not when the input is a multiple of a stack's width,
        # which is a projector (768 = 3 x 16 x 16 is also a common residual width).
        return any(shape[1] == 3 * t * p * p for p in _PATCHES for t in (1, 2))
    return False


def _is_audio_front(shape: tuple[int, ...], width: int) -> bool:
    return len(shape) == 3 and shape[0] == width and shape[1] in _MEL_BINS and shape[2] <= 7


def _vocab_size(config: dict[str, Any]) -> int | None:
    for source in (config, *(config.get(k) or {} for k in _SUB_CONFIGS["language"])):
        if isinstance(source, dict) and isinstance(source.get("vocab_size"), int):
            return int(source["vocab_size"])
    return None


def _stack_for(name: str, shape: tuple[int, ...], stacks: list[_Stack]) -> _Stack | None:
    """The stack a loose tensor belongs to: one whose width it carries, the nearest by name first."""
    fits = [s for s in stacks if s.width in shape]
    if not fits:
        return None
    return max(fits, key=lambda s: (_common_prefix(name, s.prefix), -stacks.index(s)))


def _classify(stacks: list[_Stack], shapes: dict[str, tuple[int, ...]], vocab: int | None) -> None:
    widths = {s.width for s in stacks}
    for stack in stacks:
        for name in stack.loose:
            shape = shapes[name]
            if _is_patch_embedding(shape, stack.width, widths):
                stack.kind = "vision"
                stack.evidence.append(f"patch embedding {name} {list(shape)}")
            elif _is_audio_front(shape, stack.width):
                stack.kind = stack.kind or "audio"
                stack.evidence.append(f"mel-spectrogram convolution {name} {list(shape)}")
        if stack.kind:
            continue
        # The config's vocab_size when there is one (embeddings are often padded past it), else wider than d.
        least = int(0.9 * vocab) if vocab else stack.width + 1
        tables = [n for n in stack.loose if len(shapes[n]) == 2 and shapes[n][1] == stack.width
                  and shapes[n][0] >= max(least, stack.width + 1)]
        if tables:
            stack.kind = "language"
            stack.evidence.append(f"vocabulary-sized embedding {tables[0]} {list(shapes[tables[0]])}")
    for stack in stacks:
        if stack.kind:
            continue
        for kind in ("vision", "audio", "language"):
            if _HINTS[kind].search(stack.prefix):
                stack.kind = kind
                stack.evidence.append(f"name {stack.prefix!r}")
                break


def _projector_find(loose: list[str], shapes: dict[str, tuple[int, ...]], stacks: list[_Stack],
                    vision: _Stack | None, language: _Stack | None) -> tuple[str, list[str]] | None:
    """The projector module: the loose matrix mapping k x the encoder's width (vision, else audio)
    to the language width, or a loose module whose name says projector; with every loose tensor
    under its module prefix."""
    anchor = None
    if vision is not None and language is not None:
        for name in loose:
            shape = shapes[name]
            if len(shape) == 2 and shape[0] == language.width and shape[1] % vision.width == 0 \
                    and shape[1] // vision.width in (1, 4, 9, 16) and shape[1] != language.width:
                anchor = name
                break
            if len(shape) == 2 and shape[0] == language.width and shape[1] == vision.width:
                anchor = name
                break
    if anchor is None:
        hinted = [n for n in loose if _PROJECTOR_HINT.search(n) and len(shapes[n]) == 2]
        if not hinted:
            return None
        anchor = hinted[0]
    parts = anchor.split(".")[:-1]  # drop "weight"
    prefix = ".".join(parts)
    # Widen to the enclosing module while it holds no stack (``visual.merger`` from ``visual.merger.mlp.2``).
    while len(parts) > 1:
        wider = ".".join(parts[:-1])
        if any(s.prefix.startswith(wider + ".") for s in stacks):
            break
        parts = parts[:-1]
        prefix = wider
    members = [n for n in loose if n == prefix or n.startswith(prefix + ".")]
    return prefix, members


def components_split(shapes: dict[str, tuple[int, ...]], config: dict[str, Any] | None = None) -> list[Component]:
    """Split `{name: shape}` into components (see module docstring); [] when no stack repeats."""
    config = config or {}
    stacks, loose = _stacks_find(shapes)
    if not stacks:
        return []
    unplaced = []
    for name in loose:
        stack = _stack_for(name, shapes[name], stacks)
        if stack is None:
            unplaced.append(name)
        else:
            stack.loose.append(name)
    _classify(stacks, shapes, _vocab_size(config))
    # One stack and nothing said otherwise: a plain language model, as the engine always assumed.
    if len(stacks) == 1 and stacks[0].kind is None:
        stacks[0].kind = "language"
        stacks[0].evidence.append("the only repeated stack")
    # Unnamed stacks: the deepest one left is the language model if there is none yet.
    if not any(s.kind == "language" for s in stacks):
        rest = [s for s in stacks if s.kind is None]
        if rest:
            pick = max(rest, key=lambda s: (len(s.layers), s.width))
            pick.kind = "language"
            pick.evidence.append("deepest stack without a vision or audio front end")
    by_kind: dict[str, _Stack] = {}
    for stack in sorted(stacks, key=lambda s: -sum(len(v) for v in s.layers.values())):
        if stack.kind and stack.kind not in by_kind:
            by_kind[stack.kind] = stack
    components: list[Component] = []
    projector = _projector_find(
        sorted(unplaced + [n for s in stacks for n in s.loose]), shapes, stacks,
        by_kind.get("vision") or by_kind.get("audio"), by_kind.get("language"))
    projector_names = set(projector[1]) if projector else set()
    for kind in ("language", "vision", "audio"):
        stack = by_kind.get(kind)
        if stack is None:
            continue
        names = [n for names in stack.layers.values() for n in names] + \
                [n for n in stack.loose if n not in projector_names]
        method = "names" if stack.evidence and stack.evidence[0].startswith("name ") else "structure"
        components.append(Component(kind=kind, tensors=sorted(names), hidden_size=stack.width, prefix=stack.prefix,
                                    layers=len(stack.layers), method=method, evidence=stack.evidence))
    if projector and projector[1] and len(components) > 1:
        prefix, members = projector
        matrices = [n for n in members if len(shapes[n]) == 2]
        components.append(Component(
            kind="projector", tensors=sorted(members), hidden_size=shapes[matrices[0]][1] if matrices else 0,
            prefix=prefix, layers=0, method="names" if _PROJECTOR_HINT.search(prefix) else "structure",
            evidence=[f"{n} {list(shapes[n])}" for n in matrices][:4]))
    return components


def component_config(kind: str, config: dict[str, Any], hidden_size: int) -> dict[str, Any]:
    """The config a component's fingerprint reads: its sub-config (``text_config``, ``vision_config``...)
    or, for the language model of a flat config, the top level; its width is always the measured one."""
    sub: dict[str, Any] | None = None
    for key in _SUB_CONFIGS.get(kind, ()):
        if isinstance(config.get(key), dict):
            sub = dict(config[key])
            break
    if sub is None:
        sub = {k: v for k, v in config.items() if not isinstance(v, dict)} if kind == "language" else {}
    # Qwen2-VL's vision config says num_heads and depth; the roles module reads the HF names.
    if "num_heads" in sub and "num_attention_heads" not in sub:
        sub["num_attention_heads"] = sub["num_heads"]
    if "depth" in sub and "num_hidden_layers" not in sub:
        sub["num_hidden_layers"] = sub["depth"]
    if sub.get("hidden_size") != hidden_size:
        sub.pop("head_dim", None)
        if sub.get("hidden_size") is not None:
            sub.pop("num_attention_heads", None)
        sub["hidden_size"] = hidden_size
    return sub
