"""Tensor roles: which tensors are the MLP inputs, attention inputs, norms and embeddings of each layer.

Known naming schemes (Hugging Face Llama/Mistral/Qwen/GLM-4-MoE/Mixtral/DeepSeek/BERT and
llama.cpp GGUF) are matched by name. Anything else -- renamed or obfuscated tensors -- is
assigned by structure: the first integer in a name is the layer, a matrix whose input width
equals the residual width reads from the residual stream, and within a layer the wide ones
(or the many same-shaped ones, i.e. experts) are MLP inputs and the rest attention inputs.

The lineage test only needs "residual-input" matrices (rows = units, columns = residual
coordinates), so a wrong guess between gate and up, or between q and k, costs nothing.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

# Residual-input attention matrices (rows are head dimensions, columns the residual stream).
_ATTN_IN = re.compile(
    r"(?:^|\.)(q_proj|k_proj|v_proj|qkv_proj|query_key_value|Wqkv|q_a_proj|kv_a_proj_with_mqa|attn\.qkv|"
    r"wq|wk|wv|query|key|value|attn_q|attn_k|attn_v|attn_qkv|attn_q_a|attn_kv_a_mqa)\.weight$"
)
# Residual-input MLP matrices: gate and up of dense FFNs, experts and shared experts.
_MLP_IN = re.compile(
    r"(?:^|\.)(gate_proj|up_proj|gate_up_proj|w1|w3|fc1|fc_in|c_fc|dense_h_to_4h|intermediate\.dense|"
    r"ffn_gate|ffn_up|ffn_gate_exps|ffn_up_exps|ffn_gate_shexp|ffn_up_shexp)\.weight$"
)
# Residual-output MLP matrices (down projections): rows are residual coordinates, columns units.
_MLP_OUT = re.compile(
    r"(?:^|\.)(down_proj|w2|fc2|fc_out|dense_4h_to_h|ffn_down|ffn_down_exps|ffn_down_shexp|output\.dense)\.weight$"
)
_ROUTER = re.compile(r"(?:^|\.)(mlp\.gate|block_sparse_moe\.gate|ffn_gate_inp|router|gate)\.weight$")
_NORM_IN = re.compile(r"(?:^|\.)(input_layernorm|attn_norm|attention_norm|ln_1|ln_attn)\.weight$")
_NORM_POST = re.compile(
    r"(?:^|\.)(post_attention_layernorm|ffn_norm|ln_2|ln_mlp|attention\.output\.LayerNorm|post_attention_norm)\.weight$"
)
_NORM_BERT_OUT = re.compile(r"(?:^|\.)output\.LayerNorm\.weight$")
_EMBED = re.compile(
    r"(?:^|\.)(embed_tokens|word_embeddings|token_embd|wte|tok_embeddings|embedding\.word_embeddings|embeddings)\.weight$"
)
_LAYER = [
    re.compile(r"(?:^|\.)(?:layers|layer|h|blk|blocks|block|encoder\.layer|decoder\.layers)\.(\d+)\."),
]
_EXPERT = re.compile(r"(?:^|\.)experts\.(\d+)\.")
_SHARED = re.compile(r"shared_expert|_shexp")
_EMBED_HINT = re.compile(r"emb|tok|vocab|wte|word", re.IGNORECASE)
_FIRST_INT = re.compile(r"(?:^|\D)(\d+)(?=\D|$)")


@dataclass
class MatrixBlock:
    """`n_rows` rows of tensor `name` starting at row `row_offset` (3-D expert tensors are flattened)."""

    name: str
    row_offset: int
    n_rows: int
    group: str  # "dense", "shared", "expert:<i>" or "attn" -- used to spread the sample over experts

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "row_offset": self.row_offset, "n_rows": self.n_rows, "group": self.group}


@dataclass
class LayerRoles:
    """Role assignment for one transformer layer."""

    index: int
    mlp_in: list[MatrixBlock] = field(default_factory=list)
    attn_in: list[MatrixBlock] = field(default_factory=list)
    mlp_out: list[MatrixBlock] = field(default_factory=list)
    norm_in: str | None = None
    norm_post: str | None = None


@dataclass
class ModelRoles:
    """Roles for a whole model. `method` is "names" or "structure" (inferred from shapes)."""

    hidden_size: int
    layers: dict[int, LayerRoles]
    embedding: str | None
    method: str
    unassigned: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "hidden_size": self.hidden_size,
            "layers": len(self.layers),
            "embedding": self.embedding,
            "method": self.method,
            "unassigned_tensors": self.unassigned,
        }


def _layer_of(name: str) -> int | None:
    for pattern in _LAYER:
        match = pattern.search(name)
        if match:
            return int(match.group(1))
    return None


def _hidden_size_guess(shapes: dict[str, tuple[int, ...]], config: dict[str, Any]) -> int:
    for key in ("hidden_size", "d_model", "n_embd", "dim"):
        value = config.get(key)
        if isinstance(value, int) and value > 0:
            return value
    # Norm gains are 1-D vectors of the residual width and the most common 1-D length.
    ones = Counter(s[0] for s in shapes.values() if len(s) == 1 and s[0] > 1)
    if ones:
        return ones.most_common(1)[0][0]
    lasts = Counter(s[-1] for s in shapes.values() if len(s) >= 2)
    return lasts.most_common(1)[0][0] if lasts else 0


def _blocks_for(name: str, shape: tuple[int, ...], group: str, fused_gate_up: bool = False) -> list[MatrixBlock]:
    if len(shape) == 3:  # GGUF stacked experts [n_expert, rows, d]
        return [MatrixBlock(name, e * shape[1], shape[1], f"expert:{e}") for e in range(shape[0])]
    if fused_gate_up and shape[0] % 2 == 0:
        half = shape[0] // 2
        return [MatrixBlock(name, 0, half, group), MatrixBlock(name, half, half, group)]
    return [MatrixBlock(name, 0, shape[0], group)]


def roles_from_names(shapes: dict[str, tuple[int, ...]], config: dict[str, Any]) -> ModelRoles:
    """Assign roles by known tensor names; fall back to structure when too few names are known."""
    hidden = _hidden_size_guess(shapes, config)
    layers: dict[int, LayerRoles] = {}
    embedding = None
    embed_candidates: list[tuple[int, str]] = []
    unassigned = 0
    for name, shape in sorted(shapes.items()):
        layer = _layer_of(name)
        if layer is None:
            if _EMBED.search(name) and len(shape) == 2:
                embed_candidates.append((shape[0], name))
            continue
        roles = layers.setdefault(layer, LayerRoles(index=layer))
        if (_MLP_OUT.search(name) and "attention" not in name and len(shape) in (2, 3)
                and shape[-2] == hidden and shape[-1] != hidden):
            expert = _EXPERT.search(name)
            group = "shared" if _SHARED.search(name) else (f"expert:{expert.group(1)}" if expert else "dense")
            roles.mlp_out.extend(_blocks_for(name, shape, group))
            continue
        if len(shape) >= 2 and shape[-1] != hidden:
            unassigned += 1 if (_MLP_IN.search(name) or _ATTN_IN.search(name)) else 0
            continue
        expert = _EXPERT.search(name)
        if _MLP_IN.search(name) and len(shape) >= 2:
            group = "shared" if _SHARED.search(name) else (f"expert:{expert.group(1)}" if expert else "dense")
            roles.mlp_in.extend(_blocks_for(name, shape, group, fused_gate_up=name.endswith("gate_up_proj.weight")))
        elif _ROUTER.search(name):
            continue
        elif _ATTN_IN.search(name) and len(shape) == 2:
            roles.attn_in.append(MatrixBlock(name, 0, shape[0], "attn"))
        elif _NORM_IN.search(name) and len(shape) == 1:
            roles.norm_in = name
        elif (_NORM_POST.search(name) or _NORM_BERT_OUT.search(name)) and len(shape) == 1:
            # BERT: attention.output.LayerNorm follows attention (input to the MLP); output.LayerNorm ends the layer.
            if "attention.output.LayerNorm" in name or _NORM_POST.search(name) and "output.LayerNorm" not in name:
                roles.norm_post = name
            elif roles.norm_in is None:
                roles.norm_in = name
    if embed_candidates:
        embedding = max(embed_candidates)[1]
    known = sum(1 for r in layers.values() if r.mlp_in and r.attn_in)
    if not layers or known < max(1, len(layers) // 2):
        return roles_from_structure(shapes, config)
    layers = {k: v for k, v in layers.items() if v.mlp_in or v.attn_in}
    return ModelRoles(hidden_size=hidden, layers=layers, embedding=embedding, method="names", unassigned=unassigned)


def roles_from_structure(shapes: dict[str, tuple[int, ...]], config: dict[str, Any]) -> ModelRoles:
    """Infer roles from shapes alone, for renamed or unknown tensor names.

    The first integer in a name is the layer and a second one an expert. In each layer,
    2-D matrices whose last dimension is the residual width read from the residual stream:
    four or more same-shaped ones that differ only by an expert number, or ones more than
    1.5x wider than the residual, are MLP inputs; the rest are attention inputs. 1-D tensors
    of the residual width are norm gains, in name order (first before attention).
    """
    hidden = _hidden_size_guess(shapes, config)
    by_layer: dict[int, list[str]] = defaultdict(list)
    embedding = None
    best_key: tuple[int, int] = (0, 0)
    for name, shape in shapes.items():
        ints = _FIRST_INT.findall(name)
        if not ints:
            # The widest [V, d] matrix outside the layers; an input-sounding name wins a tie with the output head.
            if len(shape) == 2 and shape[-1] == hidden and shape[0] > hidden:
                key = (shape[0], 1 if _EMBED_HINT.search(name) else 0)
                if key > best_key:
                    embedding, best_key = name, key
            continue
        by_layer[int(ints[0])].append(name)
    layers: dict[int, LayerRoles] = {}
    for layer, names in sorted(by_layer.items()):
        roles = LayerRoles(index=layer)
        residual_in = [n for n in sorted(names, key=_natural_key) if len(shapes[n]) in (2, 3) and shapes[n][-1] == hidden]
        shape_counts = Counter(shapes[n] for n in residual_in)
        for name in residual_in:
            shape = shapes[name]
            ints = _FIRST_INT.findall(name)
            many = shape_counts[shape] >= 4 and len(ints) >= 2
            if len(shape) == 3 or many or shape[0] > 1.5 * hidden:
                group = f"expert:{ints[1]}" if many else "dense"
                roles.mlp_in.extend(_blocks_for(name, shape, group))
            elif shape[0] < 64 and shape[0] < hidden // 8:
                continue  # a router (one row per expert), not an attention input
            else:
                roles.attn_in.append(MatrixBlock(name, 0, shape[0], "attn"))
        residual_out = [n for n in sorted(names, key=_natural_key)
                        if len(shapes[n]) in (2, 3) and shapes[n][-2] == hidden and shapes[n][-1] != hidden]
        out_counts = Counter(shapes[n] for n in residual_out)
        for name in residual_out:
            shape = shapes[name]
            ints = _FIRST_INT.findall(name)
            many = out_counts[shape] >= 4 and len(ints) >= 2
            if len(shape) == 3 or many or shape[-1] > 1.5 * hidden:
                roles.mlp_out.extend(_blocks_for(name, shape, f"expert:{ints[1]}" if many else "dense"))
        norms = [n for n in sorted(names, key=_natural_key) if shapes[n] == (hidden,)]
        if norms:
            roles.norm_in = norms[0]
            roles.norm_post = norms[1] if len(norms) > 1 else None
        if roles.mlp_in or roles.attn_in:
            layers[layer] = roles
    # Layers must be numbered densely from 0; a model whose "first integer" is something else is unknown.
    return ModelRoles(hidden_size=hidden, layers=layers, embedding=embedding, method="structure")


def _natural_key(name: str) -> list[Any]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def roles_assign(shapes: dict[str, tuple[int, ...]], config: dict[str, Any] | None = None) -> ModelRoles:
    """Assign tensor roles for a model given `{name: numpy-order shape}` and its config."""
    return roles_from_names(shapes, config or {})
