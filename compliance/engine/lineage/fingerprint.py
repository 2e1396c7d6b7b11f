"""Fingerprints: what the lineage test needs from a model, read by byte range and saved compactly.

A fingerprint holds, for up to MAX_LAYERS evenly spaced layers, a few hundred sampled rows of
the MLP-input and attention-input matrices (column-standardised, float16),
the correlation matrix of 128 residual coordinates across all units of one down projection,
the norm gains, about 1,000 embedding rows for hash-chosen tokens, the tokenizer, the config,
and hashes of every block read. A ministry can keep hundreds of these (a few MB each for a
100B model) instead of the weights; comparing against a bundle gives the same verdict as
comparing against the model because comparison always goes through the fingerprint.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from compliance.engine.lineage.components import Component, component_config, components_split
from compliance.engine.lineage.configs import config_summary
from compliance.engine.lineage.invariants import invariant_layers, invariants_read
from compliance.engine.lineage.roles import MatrixBlock, ModelRoles, _natural_key, roles_assign
from compliance.engine.lineage.stats import columns_standardise, coordinate_gram, rows_prepare
from compliance.engine.lineage.tokenizers import TokenizerData, tokenizer_from_gguf, tokenizer_load
from compliance.engine.weights import ByteSource, Model, WeightsFormatError, model_open

# 1.1: multimodal checkpoints split into components, each tested against its kind (a result from
# 1.0 on a multimodal model looked at one stack only, so it must not be reused).
ENGINE_VERSION = "lineage-1.1"
BUNDLE_FORMAT = "lineage-fingerprint/2"

# 16 layers x (512 MLP + 384 attention rows) x 4096 x 2 bytes = 117 MB: 0.13 % of a 93 GB
# Mixtral checkpoint, and the same whatever the depth beyond 16 layers.
MAX_LAYERS = 16
MLP_ROWS = 512
ATTN_ROWS = 384
# 1,024 embedding rows: ~8 MB at d=4096; enough shared tokens for a z-test on the embedding family.
EMBED_ROWS = 1024
# Spread MLP rows over up to 64 expert groups (every expert of Mixtral, every other one of a
# 128-expert model): the first rows of each expert are read, so a copy with its experts
# permuted, pruned or upcycled from a dense FFN still shares every sampled row.
MAX_GROUPS = 64

FAMILIES = ("mlp", "attn")
# 128 residual coordinates of one down projection per layer: every unit is seen, so a copy whose
# hidden units were permuted still matches. 128 x 14,336 x 2 bytes = 3.7 MB per layer (Llama-8B).
MLP_OUT_COORDS = 128


@dataclass
class FamilyRows:
    """Sampled rows of one family in one layer, column-standardised, float16 [k, d].

    `sketch` (H1, for matching) and `test` (H2, for the test) are derived on demand by
    stats.rows_prepare, after any residual re-alignment the comparison decides on.
    """

    rows: np.ndarray
    hashes: list[str] = field(default_factory=list)
    blocks: list[dict[str, Any]] = field(default_factory=list)
    _prepared: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False, compare=False)

    def prepared(self) -> tuple[np.ndarray, np.ndarray]:
        """(sketch, test) as float32, computed once."""
        if self._prepared is None:
            sketch, test = rows_prepare(self.rows)
            self._prepared = (sketch.astype(np.float32), test.astype(np.float32))
        return self._prepared

    @property
    def sketch(self) -> np.ndarray:
        return self.prepared()[0]

    @property
    def test(self) -> np.ndarray:
        return self.prepared()[1]

    def realigned(self, order: np.ndarray, sign: np.ndarray) -> "FamilyRows":
        """The same rows with residual coordinates re-ordered (column c <- order[c]) and sign-flipped."""
        rows = (self.rows.astype(np.float32)[:, order] * sign[None, :]).astype(np.float16)
        return FamilyRows(rows=rows, hashes=self.hashes, blocks=self.blocks)


@dataclass
class LayerPrint:
    """Fingerprint of one layer."""

    index: int
    families: dict[str, FamilyRows] = field(default_factory=dict)
    norm_in: np.ndarray | None = None
    norm_post: np.ndarray | None = None
    mlp_out: np.ndarray | None = None  # coordinate correlation of the down projection [c, c]
    mlp_out_block: str = ""
    # Rotation-invariant products (invariants.py): "qk" [heads, G, G], "vv" [kv heads, G, G],
    # "units" (upper triangle of the MLP unit Gram); empty for layers not sampled for them.
    invariants: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class Fingerprint:
    """Everything the lineage test needs from one model; see module docstring."""

    meta: dict[str, Any]
    layers: dict[int, LayerPrint]
    embedding_tokens: list[str] = field(default_factory=list)
    embedding_rows: np.ndarray | None = None
    embedding_hashes: list[str] = field(default_factory=list)
    tokenizer: TokenizerData | None = None
    # The checkpoint's other components (vision, audio, projector), each a Fingerprint of its own;
    # this Fingerprint is the primary one (the language model when there is one), so code that knows
    # nothing of components reads the language model as it always did.
    components: dict[str, Fingerprint] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.meta.get("name", ""))

    @property
    def component(self) -> str:
        """This fingerprint's component kind; bundles from before components are a language model."""
        return str(self.meta.get("component") or "language")

    def component_prints(self) -> dict[str, Fingerprint]:
        """Every component's fingerprint by kind (language, vision, audio, projector)."""
        return {self.component: self, **self.components}

    def to_dict(self) -> dict[str, Any]:
        """JSON summary: metadata, sampled layers and families, sizes; no arrays."""
        return {
            **{k: v for k, v in self.meta.items() if k not in ("config",)},
            "sampled_layers": sorted(self.layers),
            "families": {
                **{f: sum(1 for lp in self.layers.values() if f in lp.families) for f in FAMILIES},
                "mlp_out": sum(1 for lp in self.layers.values() if lp.mlp_out is not None),
                "rotation_invariant": sum(1 for lp in self.layers.values() if lp.invariants),
            },
            "rows_per_layer": {
                f: max((len(lp.families[f].rows) for lp in self.layers.values() if f in lp.families), default=0)
                for f in FAMILIES
            },
            "embedding_rows": 0 if self.embedding_rows is None else int(self.embedding_rows.shape[0]),
            "tokenizer": self.tokenizer.summary() if self.tokenizer else None,
            "component": self.component,
            "components": {k: c.to_dict() for k, c in self.components.items()},
        }


def _block_hash(rows: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(rows, dtype=np.float32).tobytes()).hexdigest()[:32]


def _layers_sample(indices: list[int], limit: int) -> list[int]:
    if len(indices) <= limit:
        return list(indices)
    picks = np.unique(np.round(np.linspace(0, len(indices) - 1, limit)).astype(int))
    return [indices[i] for i in picks]


def _group_order(group: str) -> tuple[int, int]:
    if group in ("dense", "shared", "attn"):
        return (0, 0)
    match = re.match(r"expert:(\d+)", group)
    return (1, int(match.group(1)) if match else 0)


def _blocks_sample(blocks: list[MatrixBlock], total_rows: int) -> list[tuple[MatrixBlock, int]]:
    """Choose (block, n_rows) pairs: up to MAX_GROUPS evenly spaced groups, rows from each block's start."""
    groups: dict[str, list[MatrixBlock]] = {}
    for block in sorted(blocks, key=lambda b: _group_order(b.group)):
        groups.setdefault(block.group, []).append(block)
    keys = list(groups)
    if len(keys) > MAX_GROUPS:
        keys = [keys[i] for i in np.unique(np.round(np.linspace(0, len(keys) - 1, MAX_GROUPS)).astype(int))]
    chosen = [b for k in keys for b in groups[k]]
    per = max(1, math.ceil(total_rows / max(1, len(chosen))))
    return [(b, min(per, b.n_rows)) for b in chosen]


def _rows_in_block(block: MatrixBlock, n: int, head_dim: int | None) -> np.ndarray:
    """Row indices to read from `block`: the first rows of every head when rows come in heads,
    so a copy with its heads permuted shares every sampled row; else the first `n` rows."""
    if head_dim and block.n_rows % head_dim == 0 and block.n_rows // head_dim > 1 and n < block.n_rows:
        heads = block.n_rows // head_dim
        per_head = min(head_dim, max(1, math.ceil(n / heads)))
        local = (np.arange(heads)[:, None] * head_dim + np.arange(per_head)[None, :]).reshape(-1)
    else:
        local = np.arange(n)
    return block.row_offset + local


def _head_dim(model: Model) -> int | None:
    """Attention head width from the config (explicit head_dim, else hidden / heads); None if unknown."""
    config = model.config
    if isinstance(config.get("head_dim"), int) and config["head_dim"] > 0:
        return int(config["head_dim"])
    heads, hidden = config.get("num_attention_heads"), config.get("hidden_size")
    if isinstance(heads, int) and isinstance(hidden, int) and heads > 0 and hidden % heads == 0:
        return hidden // heads
    return None


def mlp_out_coordinates(d: int) -> np.ndarray:
    """Fixed pseudo-random residual coordinates read from down projections (same for every model of width d)."""
    rng = np.random.default_rng(3_000_017 + d)
    return np.sort(rng.choice(d, size=min(d, MLP_OUT_COORDS), replace=False))


def _mlp_out_read(model: Model, blocks: list[MatrixBlock], d: int) -> tuple[np.ndarray, str] | None:
    """Coordinate-correlation matrix of the first (dense or shared, else lowest-numbered) down projection."""
    candidates = [b for b in sorted(blocks, key=lambda b: _group_order(b.group)) if b.n_rows == d]
    if not candidates or d < 8:
        return None
    block = candidates[0]
    rows = model.tensor(block.name, rows=block.row_offset + mlp_out_coordinates(d))
    if not np.all(np.isfinite(rows)):
        raise WeightsFormatError(f"{model.name}: non-finite values (NaN/inf) in {block.name}")
    return coordinate_gram(rows).astype(np.float32), f"{block.name}#{block.group}"


def _family_read(model: Model, blocks: list[MatrixBlock], total_rows: int,
                 head_dim: int | None = None) -> FamilyRows | None:
    parts, hashes, described = [], [], []
    for block, n in _blocks_sample(blocks, total_rows):
        index = _rows_in_block(block, n, head_dim)
        rows = model.tensor(block.name, rows=index)
        parts.append(rows)
        hashes.append(_block_hash(rows))
        described.append({"name": block.name, "rows": [int(index[0]), int(index[-1]) + 1], "count": int(len(index))})
    if not parts:
        return None
    widths = {p.shape[1] for p in parts}
    if len(widths) != 1:
        return None
    stacked = np.concatenate(parts, axis=0)
    if not np.all(np.isfinite(stacked)):
        raise WeightsFormatError(f"{model.name}: non-finite values (NaN/inf) in {described[0]['name']}")
    return FamilyRows(rows=columns_standardise(stacked), hashes=hashes, blocks=described)


def _embedding_sample(model: Model, roles: ModelRoles, tokenizer: TokenizerData | None, notes: list[str]):
    if roles.embedding is None:
        notes.append("no embedding matrix found")
        return [], None, []
    if tokenizer is None:
        notes.append("no tokenizer: embedding rows cannot be paired by token")
        return [], None, []
    n_rows = model.tensors[roles.embedding].shape[0]
    # Bottom-k by hash of the token string: two models sharing tokens pick the same ones
    # without seeing each other's vocabulary (a min-hash sketch).
    keyed = sorted(
        (hashlib.sha1(tok.encode("utf-8", "replace")).digest(), idx, tok)
        for idx, tok in enumerate(tokenizer.vocab[:n_rows]) if tok
    )
    seen: set[str] = set()
    picks = []
    for _, idx, tok in keyed:
        if tok not in seen:
            seen.add(tok)
            picks.append((idx, tok))
        if len(picks) >= EMBED_ROWS:
            break
    picks.sort()
    ids = [i for i, _ in picks]
    rows = model.tensor(roles.embedding, rows=ids)
    hashes = [_block_hash(r)[:16] for r in rows]
    return [t for _, t in picks], rows.astype(np.float16), hashes


def _model_card_base(card: str) -> list[str]:
    """`base_model` entries from a model card's YAML front matter (self-declared, not verified)."""
    if not card.startswith("---"):
        return []
    front = card.split("---", 2)[1] if card.count("---") >= 2 else ""
    out: list[str] = []
    lines = front.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("base_model:"):
            value = line.split(":", 1)[1].strip()
            if value:
                out.append(value.strip("'\""))
            else:
                for nxt in lines[i + 1:]:
                    if nxt.strip().startswith("- "):
                        out.append(nxt.strip()[2:].strip("'\""))
                    else:
                        break
    return out[:8]


def fingerprint_from_model(model: Model) -> Fingerprint:
    """Build a fingerprint from an opened model (reads only sampled rows), one per component.

    A checkpoint of one stack (a plain LLM, a standalone vision encoder) is fingerprinted whole, as
    before; a multimodal one is split (``components.components_split``) and each component read as a
    model of its own, with its own config (``text_config``, ``vision_config``...) and, for the language
    model only, the tokenizer."""
    shapes = {name: ref.shape for name, ref in model.tensors.items()}
    parts = components_split(shapes, model.config)
    if len(parts) <= 1:
        fp = _stack_print(model)
        fp.meta["component"] = parts[0].kind if parts else "language"
        if fp.component != "language":
            fp.meta["notes"] = [n for n in fp.meta["notes"] if "tokenizer" not in n and "embedding matrix" not in n]
        return fp
    prints: dict[str, Fingerprint] = {}
    for part in parts:
        sub = replace(model, tensors={n: model.tensors[n] for n in part.tensors},
                      config=component_config(part.kind, model.config, part.hidden_size),
                      tokenizer_files=model.tokenizer_files if part.kind == "language" else {},
                      model_card=model.model_card if part.kind == "language" else "")
        fp = _projector_print(sub, part) if part.kind == "projector" else _stack_print(sub)
        if part.kind != "language":  # no tokenizer is expected there: its absence is not news
            fp.meta["notes"] = [n for n in fp.meta["notes"] if "tokenizer" not in n and "embedding matrix" not in n]
        fp.meta.update(component=part.kind, component_split=part.to_dict())
        prints[part.kind] = fp
    primary = prints.get("language") or prints[parts[0].kind]
    primary.components = {k: v for k, v in prints.items() if v is not primary}
    primary.meta.update(
        parameters=sum(t.n_params for t in model.tensors.values()), tensor_count=len(model.tensors),
        bytes_read=model.bytes_read, split=[p.to_dict() for p in parts])
    return primary


def _projector_print(model: Model, part: Component) -> Fingerprint:
    """A projector as a one-layer fingerprint: rows of its first matrix (reading the vision side) as
    the "mlp" family, rows of its last (writing the language side) as the "attn" family, so that the
    same two-family test applies; a projector of one matrix gives one family (inconclusive alone)."""
    matrices = sorted((n for n in part.tensors if len(model.tensors[n].shape) == 2), key=_natural_key)
    lp = LayerPrint(index=0)
    notes: list[str] = []
    for family, name, budget in (("mlp", matrices[0], MLP_ROWS), ("attn", matrices[-1], ATTN_ROWS)):
        if family == "attn" and len(matrices) < 2:
            notes.append("the projector has one matrix: one family only")
            break
        shape = model.tensors[name].shape
        rows = _family_read(model, [MatrixBlock(name, 0, shape[0], "dense")], budget)
        if rows is not None:
            lp.families[family] = rows
    meta = {
        "format": BUNDLE_FORMAT, "engine_version": ENGINE_VERSION, "name": model.name, "kind": model.kind,
        "hidden_size": part.hidden_size, "n_layers": 1,
        "roles": {"hidden_size": part.hidden_size, "layers": 1, "embedding": None, "method": "projector",
                  "matrices": matrices},
        "config": {}, "parameters": sum(model.tensors[n].n_params for n in part.tensors),
        "tensor_count": len(part.tensors), "total_bytes": model.total_bytes, "bytes_read": model.bytes_read,
        "skipped": [], "declared_base_models": [], "notes": notes,
    }
    return Fingerprint(meta=meta, layers={0: lp})


def _stack_print(model: Model) -> Fingerprint:
    """Fingerprint one transformer stack (the whole model, or one component of it)."""
    shapes = {name: ref.shape for name, ref in model.tensors.items()}
    roles = roles_assign(shapes, model.config)
    notes: list[str] = []
    if model.kind == "gguf":
        tokenizer = tokenizer_from_gguf(model.gguf_metadata)
    else:
        tokenizer = tokenizer_load(model.tokenizer_files)
    layers: dict[int, LayerPrint] = {}
    head_dim = _head_dim(model)
    sampled = _layers_sample(sorted(roles.layers), MAX_LAYERS)
    with_invariants = set(invariant_layers(sampled))
    for index in sampled:
        lr = roles.layers[index]
        lp = LayerPrint(index=index)
        for family, blocks, budget, hd in (("mlp", lr.mlp_in, MLP_ROWS, None), ("attn", lr.attn_in, ATTN_ROWS, head_dim)):
            try:
                rows = _family_read(model, blocks, budget, hd)
            except WeightsFormatError as exc:
                if "lineage is inconclusive for it" not in str(exc):  # an unsupported number format, not a broken file
                    raise
                notes.append(str(exc))
                continue
            if rows is not None:
                lp.families[family] = rows
        try:
            out = _mlp_out_read(model, lr.mlp_out, roles.hidden_size)
        except WeightsFormatError as exc:
            if "lineage is inconclusive for it" not in str(exc):
                raise
            notes.append(str(exc))
            out = None
        if out is not None:
            lp.mlp_out, lp.mlp_out_block = out
        for attr, tname in (("norm_in", lr.norm_in), ("norm_post", lr.norm_post)):
            if tname:
                try:
                    setattr(lp, attr, model.tensor(tname).astype(np.float32))
                except WeightsFormatError as exc:
                    notes.append(str(exc))
        if index in with_invariants:
            try:
                lp.invariants = invariants_read(model, lr, model.config, head_dim)
            except WeightsFormatError as exc:
                if "lineage is inconclusive for it" not in str(exc):
                    raise
                notes.append(str(exc))
        layers[index] = lp
    try:
        tokens, emb_rows, emb_hashes = _embedding_sample(model, roles, tokenizer, notes)
    except WeightsFormatError as exc:
        notes.append(str(exc))
        tokens, emb_rows, emb_hashes = [], None, []
    meta = {
        "format": BUNDLE_FORMAT,
        "engine_version": ENGINE_VERSION,
        "name": model.name,
        "kind": model.kind,
        "hidden_size": roles.hidden_size,
        "n_layers": len(roles.layers),
        "roles": roles.to_dict(),
        "config": config_summary(model.config),
        "parameters": sum(t.n_params for t in model.tensors.values()),
        "tensor_count": len(model.tensors),
        "total_bytes": model.total_bytes,
        "bytes_read": model.bytes_read,
        "skipped": model.skipped,
        "declared_base_models": _model_card_base(model.model_card),
        "notes": notes,
    }
    return Fingerprint(
        meta=meta, layers=layers, embedding_tokens=tokens, embedding_rows=emb_rows,
        embedding_hashes=emb_hashes, tokenizer=tokenizer,
    )


def fingerprint_build(*, path: str | os.PathLike[str], remote: Mapping[str, ByteSource] | None = None) -> Fingerprint:
    """Open the model at `path` (HF folder, .safetensors or .gguf) and fingerprint it by byte range.

    `remote`: weight files of the folder held elsewhere, by base name, read by range (see `model_open`)."""
    return fingerprint_from_model(model_open(path, remote=remote))


def _json_array(value: Any) -> np.ndarray:
    return np.frombuffer(json.dumps(value, ensure_ascii=False).encode("utf-8"), dtype=np.uint8)


def fingerprint_save(fp: Fingerprint, path: str | os.PathLike[str]) -> Path:
    """Write `fp` as one compressed .npz bundle (arrays plus JSON metadata; no pickles)."""
    path = Path(path)
    path.write_bytes(fingerprint_bytes(fp))
    return path


def fingerprint_bytes(fp: Fingerprint) -> bytes:
    """The bundle of `fp` as bytes; each further component is a whole bundle of its own, stored as
    one byte array (``component.<kind>``), which readers that predate components ignore."""
    arrays: dict[str, np.ndarray] = {}
    layer_meta = {}
    for index, lp in fp.layers.items():
        layer_meta[str(index)] = {
            f: {"hashes": fr.hashes, "blocks": fr.blocks} for f, fr in lp.families.items()
        }
        for f, fr in lp.families.items():
            arrays[f"L{index}.{f}.rows"] = fr.rows
        if lp.mlp_out is not None:
            arrays[f"L{index}.mlp_out"] = lp.mlp_out
            layer_meta[str(index)]["__mlp_out_block__"] = lp.mlp_out_block
        if lp.norm_in is not None:
            arrays[f"L{index}.norm_in"] = lp.norm_in
        if lp.norm_post is not None:
            arrays[f"L{index}.norm_post"] = lp.norm_post
        for key, value in lp.invariants.items():
            arrays[f"L{index}.inv.{key}"] = value
    if fp.embedding_rows is not None:
        arrays["embedding.rows"] = fp.embedding_rows
    doc = {
        "meta": fp.meta,
        "layers": layer_meta,
        "embedding_tokens": fp.embedding_tokens,
        "embedding_hashes": fp.embedding_hashes,
        "tokenizer": None if fp.tokenizer is None else {
            "kind": fp.tokenizer.kind, "vocab": fp.tokenizer.vocab, "merges": fp.tokenizer.merges,
            "special": fp.tokenizer.special, "source": fp.tokenizer.source,
        },
    }
    for kind, sub in fp.components.items():
        arrays[f"component.{kind}"] = np.frombuffer(fingerprint_bytes(sub), dtype=np.uint8)
    arrays["document.json"] = _json_array(doc)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def fingerprint_is_bundle(path: str | os.PathLike[str]) -> bool:
    """True when `path` is a fingerprint bundle written by fingerprint_save."""
    path = Path(path)
    if not path.is_file() or not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return "document.json.npy" in archive.namelist()


def fingerprint_load(path: str | os.PathLike[str]) -> Fingerprint:
    """Read a bundle written by fingerprint_save (allow_pickle=False: a bundle can never run code)."""
    path = Path(path)
    return _fingerprint_read(path, path.name)


def _fingerprint_read(source: Any, label: str) -> Fingerprint:
    try:
        with np.load(source, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        doc = json.loads(arrays.pop("document.json").tobytes().decode("utf-8"))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise WeightsFormatError(f"{label}: not a lineage fingerprint bundle ({exc})") from exc
    components = {key.split(".", 1)[1]: _fingerprint_read(io.BytesIO(arrays.pop(key).tobytes()), f"{label}:{key}")
                  for key in [k for k in arrays if k.startswith("component.")]}
    meta = doc["meta"]
    if meta.get("format") != BUNDLE_FORMAT:
        raise WeightsFormatError(f"{label}: bundle format {meta.get('format')!r}, expected {BUNDLE_FORMAT}")
    layers: dict[int, LayerPrint] = {}
    for key, fams in doc["layers"].items():
        index = int(key)
        lp = LayerPrint(index=index)
        lp.mlp_out = arrays.get(f"L{index}.mlp_out")
        lp.mlp_out_block = fams.pop("__mlp_out_block__", "")
        for f, info in fams.items():
            lp.families[f] = FamilyRows(
                rows=arrays[f"L{index}.{f}.rows"], hashes=info["hashes"], blocks=info["blocks"],
            )
        lp.norm_in = arrays.get(f"L{index}.norm_in")
        lp.norm_post = arrays.get(f"L{index}.norm_post")
        prefix = f"L{index}.inv."
        lp.invariants = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
        layers[index] = lp
    tok = doc.get("tokenizer")
    tokenizer = None if tok is None else TokenizerData(
        kind=tok["kind"], vocab=tok["vocab"], merges=tok["merges"], special=tok["special"], source=tok["source"]
    )
    meta = dict(meta)
    meta["loaded_from_bundle"] = label
    return Fingerprint(
        meta=meta, layers=layers, embedding_tokens=doc["embedding_tokens"],
        embedding_rows=arrays.get("embedding.rows"), embedding_hashes=doc["embedding_hashes"], tokenizer=tokenizer,
        components=components,
    )
