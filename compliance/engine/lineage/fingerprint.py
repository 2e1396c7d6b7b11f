"""Fingerprints: what the lineage test needs from a model, read by byte range and saved compactly.

A fingerprint holds, for up to MAX_LAYERS evenly spaced layers, a few hundred sampled rows of
the MLP-input and attention-input matrices (column-standardised, float16),
the correlation matrix of 128 residual coordinates across all units of one down projection,
the norm gains, about 1,000 embedding rows for hash-chosen tokens, the tokenizer, the config,
and hashes of every block read. A ministry can keep hundreds of these instead of the weights;
comparing against a bundle gives the same verdict as comparing against the model because
comparison always goes through the fingerprint.

Bundles (format 3) are compacted: the column-standardised rows are quantised to a step of one
standard deviation and packed two to a byte, embedding rows to half a standard deviation (per
column), the down-projection correlations and norm gains to float16, every member compressed
with zstd; a small screening sketch per component (screen.py) is stored beside them and can be
read without the rest. The rows keep all d residual coordinates, so a residual permutation can
still be undone at comparison time. Format-2 bundles (float16 .npz) still load.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import zstandard

from compliance.engine.lineage.components import Component, component_config, components_split
from compliance.engine.lineage.configs import config_summary
from compliance.engine.lineage.invariants import invariant_layers, invariants_read
from compliance.engine.lineage.roles import MatrixBlock, ModelRoles, _natural_key, roles_assign
from compliance.engine.lineage.stats import (
    column_split,
    columns_standardise,
    coordinate_gram,
    rows_prepare,
    rows_standardise,
)
from compliance.engine.lineage.tokenizers import TokenizerData, tokenizer_from_gguf, tokenizer_load
from compliance.engine.weights import ByteSource, Model, WeightsFormatError, model_open

# 1.1: multimodal checkpoints split into components, each tested against its kind (a result from
# 1.0 on a multimodal model looked at one stack only, so it must not be reused), and the
# rotation-invariant head and unit statistics.
ENGINE_VERSION = "lineage-1.1"
BUNDLE_FORMAT = "lineage-fingerprint/3"
# Format 2: float16 arrays in a deflated .npz (about 127 MB at d = 4096); still read.
BUNDLE_FORMAT_FLOAT16 = "lineage-fingerprint/2"
# Quantisation, in standard deviations of a (column-standardised) coordinate. Rows are stored
# as 4-bit levels of asinh(x) in steps of ROW_STEP (dense near 0, reaching +-135 sd, because
# weight rows are heavy-tailed: plain 4-bit steps clipped their tails and cost 15 % of z).
# The stored row correlates about 0.93 with the original (Gaussian rows; heavier-tailed real
# rows fare better), so the H2 test's z falls by about 7 %; the same map is applied to every
# coordinate, so the permutation null is untouched. Two levels a byte, zstd-compressed: 2.05
# bits a value, 16 x 896 x 4096 rows in 14.7 MB instead of 117. Matching on H1 is sharper-edged
# than the H2 test (a row near the detection limit loses its partner), so the 256-value H1
# sketch of each row is kept apart, as int8 in steps of SKETCH_STEP sd (correlation 0.995,
# about 3.8 bits a value). Embedding rows: the same 4-bit levels, per standardised column.
# Measured: bench/lineage_quality.py --bundle-roundtrip and bench/lineage_cost.py.
ROW_STEP = 0.95
SKETCH_STEP = 0.35
ZSTD_LEVEL = 3  # level 9 gains nothing on packed levels (Huffman-coded literals either way) and is 4x slower
# The document (tokenizer vocabulary and merges) compresses 20-30 % better at level 19; it is one
# member, written once per reference.
ZSTD_LEVEL_DOCUMENT = 19

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


class FamilyRows:
    """Sampled rows of one family in one layer, column-standardised, float16 [k, d].

    `sketch` (H1, for matching) and `test` (H2, for the test) are derived on demand by
    stats.rows_prepare, after any residual re-alignment the comparison decides on.

    Rows read from a compact bundle stay packed (`packed`: the bundle's 4-bit levels and the
    width) and are dequantised only when asked for, never kept: a reference needs its rows once,
    to derive `test` (the H1 sketch is stored), and holding them cost 112 MB a reference at
    d = 4096 (16 layers x 896 rows x 4096 x 2 bytes) against 28 MB packed.
    """

    def __init__(self, rows: np.ndarray | None = None, hashes: list[str] | None = None,
                 blocks: list[dict[str, Any]] | None = None, stored_sketch: np.ndarray | None = None, *,
                 packed: tuple[np.ndarray, int] | None = None):
        if rows is None and packed is None:
            raise ValueError("FamilyRows needs rows or packed rows")
        self._rows = rows
        self.packed = None if rows is not None else packed
        self.hashes = [] if hashes is None else hashes
        self.blocks = [] if blocks is None else blocks
        # The H1 sketch as computed from the rows before a compact bundle quantised them: matching
        # then stays as sharp as with the full rows (only the H2 test sees the quantisation noise).
        self.stored_sketch = stored_sketch
        self._prepared: tuple[np.ndarray, np.ndarray] | None = None

    def __repr__(self) -> str:
        return f"FamilyRows(rows={self.n_rows} x {self.width}, packed={self.packed is not None}, hashes={len(self.hashes)})"

    @property
    def rows(self) -> np.ndarray:
        """The rows as float16 [k, d]; dequantised afresh from `packed` on each call when packed."""
        if self._rows is not None:
            return self._rows
        levels, width = self.packed
        return rows_dequantise(levels, width)

    @rows.setter
    def rows(self, value: np.ndarray) -> None:
        self._rows, self.packed, self._prepared = value, None, None

    @property
    def n_rows(self) -> int:
        return int((self._rows if self._rows is not None else self.packed[0]).shape[0])

    @property
    def width(self) -> int:
        return int(self._rows.shape[1] if self._rows is not None else self.packed[1])

    def prepared(self) -> tuple[np.ndarray, np.ndarray]:
        """(sketch, test), computed once. `test` is float16 and so is a computed sketch: both are
        rounded to float16 as they are made (stats.rows_prepare), so float16 holds exactly the
        values the test reads back as float32, in half the memory (56 MB instead of 112 MB a
        fingerprint at d = 4096). A stored sketch is float32 (renormalised on load)."""
        if self._prepared is None:
            if self.stored_sketch is not None:
                # The projection of H1 is most of rows_prepare's cost (7.5 G multiply-adds at
                # d = 4096); a compact bundle already holds its result.
                self._prepared = (np.asarray(self.stored_sketch, dtype=np.float32), _test_rows(self.rows))
                return self._prepared
            self._prepared = rows_prepare(self.rows)
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


def _test_rows(rows: np.ndarray) -> np.ndarray:
    """The H2 half of stats.rows_prepare alone (same arithmetic, float32, rounded to float16)."""
    x = np.array(rows, dtype=np.float32)
    x -= x.mean(axis=0, keepdims=True)
    x /= np.maximum(np.sqrt(np.mean(x * x, axis=0, keepdims=True)), 1e-20)
    return rows_standardise(x[:, column_split(x.shape[1])[1]]).astype(np.float16)


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
                f: max((lp.families[f].n_rows for lp in self.layers.values() if f in lp.families), default=0)
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
    chosen = [(block, _rows_in_block(block, n, head_dim)) for block, n in _blocks_sample(blocks, total_rows)]
    # Every block's rows asked at once: on object storage their ranges travel in parallel.
    for (block, index), rows in zip(chosen, model.tensors_rows([(b.name, index) for b, index in chosen]), strict=True):
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


def rows_quantise(rows: np.ndarray, step: float | None = None) -> np.ndarray:
    """Column-standardised rows [k, d] as 4-bit levels (-8..7 of `step` sd), two per byte [k, ceil(d/2)]."""
    step = ROW_STEP if step is None else step
    levels = np.clip(np.rint(np.arcsinh(np.asarray(rows, dtype=np.float32)) / step), -8, 7).astype(np.int16) + 8
    if levels.shape[1] % 2:
        levels = np.concatenate([levels, np.full((levels.shape[0], 1), 8, dtype=np.int16)], axis=1)
    return ((levels[:, 0::2] << 4) | levels[:, 1::2]).astype(np.uint8)


def rows_dequantise(packed: np.ndarray, width: int, step: float | None = None) -> np.ndarray:
    """Inverse of rows_quantise, as float16 [k, width]."""
    step = ROW_STEP if step is None else step
    out = np.empty((packed.shape[0], packed.shape[1] * 2), dtype=np.float32)
    out[:, 0::2] = (packed >> 4).astype(np.float32) - 8
    out[:, 1::2] = (packed & 15).astype(np.float32) - 8
    return np.sinh(out[:, :width] * step).astype(np.float16)


def _sketch_quantise(sketch: np.ndarray) -> np.ndarray:
    """Unit-length sketch rows [k, s] as int8 steps of SKETCH_STEP / sqrt(s) (values are ~N(0, 1/s))."""
    scale = math.sqrt(sketch.shape[1]) / SKETCH_STEP
    return np.clip(np.rint(np.asarray(sketch, dtype=np.float32) * scale), -127, 127).astype(np.int8)


def _sketch_dequantise(q: np.ndarray) -> np.ndarray:
    """Back to centred unit-length rows: rounding changes each row's length a little, and a
    matching step fed rows of unequal length drifts towards the longest ones (hub rows, which
    left the normal tail of independent pairs anti-conservative in the tests)."""
    return rows_standardise(q.astype(np.float32)).astype(np.float32)


def _embedding_quantise(rows: np.ndarray) -> dict[str, np.ndarray]:
    """Embedding rows are stored raw (not standardised): standardise each column, quantise like
    the layer rows, and keep the column mean and sd to put them back."""
    x = np.asarray(rows, dtype=np.float32)
    mean = x.mean(axis=0)
    sd = np.maximum(x.std(axis=0), 1e-20)
    return {"embedding.q4": rows_quantise((x - mean) / sd), "embedding.mean": mean.astype(np.float32),
            "embedding.sd": sd.astype(np.float32)}


def _embedding_dequantise(arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    z = rows_dequantise(arrays["embedding.q4"], len(arrays["embedding.mean"])).astype(np.float32)
    return (z * arrays["embedding.sd"][None, :] + arrays["embedding.mean"][None, :]).astype(np.float16)


def _document(fp: Fingerprint, layer_meta: dict[str, Any]) -> dict[str, Any]:
    return {
        "meta": fp.meta,
        "layers": layer_meta,
        "embedding_tokens": fp.embedding_tokens,
        "embedding_hashes": fp.embedding_hashes,
        "tokenizer": None if fp.tokenizer is None else {
            "kind": fp.tokenizer.kind, "vocab": fp.tokenizer.vocab, "merges": fp.tokenizer.merges,
            "special": fp.tokenizer.special, "source": fp.tokenizer.source,
        },
    }


def _float16_bytes(fp: Fingerprint) -> bytes:
    """Format 2 (float16 .npz): kept for tests and the benchmark's full-precision baseline. Each
    further component is a whole bundle of its own, stored as one byte array (``component.<kind>``)."""
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
    doc = _document(fp, layer_meta)
    doc["meta"] = {**fp.meta, "format": BUNDLE_FORMAT_FLOAT16}
    for kind, sub in fp.components.items():
        arrays[f"component.{kind}"] = np.frombuffer(_float16_bytes(sub), dtype=np.uint8)
    arrays["document.json"] = _json_array(doc)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def fingerprint_save(fp: Fingerprint, path: str | os.PathLike[str], *, compact: bool = True) -> Path:
    """Write `fp` as one bundle: a zip of zstd-compressed .npy members plus a JSON document (no pickles).

    compact=False writes the older float16 format 2 (about 7x larger at d = 4096)."""
    path = Path(path)
    path.write_bytes(fingerprint_bytes(fp, compact=compact))
    return path


def fingerprint_bytes(fp: Fingerprint, *, compact: bool = True) -> bytes:
    """The bundle of `fp` as bytes. Each further component (vision, audio, projector) is a whole
    bundle of its own, stored as one member ``component.<kind>.bundle``, which readers that
    predate components ignore."""
    from compliance.engine.lineage.screen import screen_sketch_arrays, screen_sketch_build

    if not compact:
        return _float16_bytes(fp)
    arrays: dict[str, np.ndarray] = {}
    layer_meta: dict[str, Any] = {}
    for index, lp in fp.layers.items():
        layer_meta[str(index)] = {
            f: {"hashes": fr.hashes, "blocks": fr.blocks, "width": fr.width}
            for f, fr in lp.families.items()
        }
        for f, fr in lp.families.items():
            arrays[f"L{index}.{f}.q4"] = rows_quantise(fr.rows)
            arrays[f"L{index}.{f}.sketch8"] = _sketch_quantise(fr.sketch)
        if lp.mlp_out is not None:
            arrays[f"L{index}.mlp_out"] = lp.mlp_out.astype(np.float16)
            layer_meta[str(index)]["__mlp_out_block__"] = lp.mlp_out_block
        if lp.norm_in is not None:
            arrays[f"L{index}.norm_in"] = lp.norm_in.astype(np.float16)
        if lp.norm_post is not None:
            arrays[f"L{index}.norm_post"] = lp.norm_post.astype(np.float16)
        for key, value in lp.invariants.items():
            arrays[f"L{index}.inv.{key}"] = value
    if fp.embedding_rows is not None:
        arrays.update(_embedding_quantise(fp.embedding_rows))
    for kind, part in fp.component_prints().items():
        sketch = screen_sketch_build(part, component=kind)
        for key, value in screen_sketch_arrays(sketch).items():
            arrays[f"screen/{sketch.component}/{key}"] = value
    doc = _document(fp, layer_meta)
    doc["meta"] = {**fp.meta, "format": BUNDLE_FORMAT,
                   "quantisation": {"rows_asinh_step": ROW_STEP, "sketch_step_sd": SKETCH_STEP}}
    compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
    # Members are stored, not deflated: zstd already compressed them, and a stored member can be
    # read alone (the screen reads its sketch without touching the rows).
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("document.json.zst", zstandard.ZstdCompressor(level=ZSTD_LEVEL_DOCUMENT).compress(json.dumps(doc, ensure_ascii=False).encode("utf-8")))
        for key, value in arrays.items():
            archive.writestr(f"{key}.npy.zst", compressor.compress(_npy_bytes(value)))
        for kind, sub in fp.components.items():
            archive.writestr(f"component.{kind}.bundle", fingerprint_bytes(sub, compact=True))
    return buffer.getvalue()


def fingerprint_is_bundle(path: str | os.PathLike[str]) -> bool:
    """True when `path` is a fingerprint bundle written by fingerprint_save (either format)."""
    path = Path(path)
    if not path.is_file() or not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
    return "document.json.npy" in names or "document.json.zst" in names


# A member's size after decompression is capped: a hostile bundle must not expand to fill memory.
# 64 MB holds the largest member (16 x 4096 x 896 float16 rows of one family in format 2 is 7 MB).
MEMBER_MAX_BYTES = 64 << 20


def bundle_members(path: str | os.PathLike[str], prefix: str = "", *,
                   wanted: Callable[[str], bool] | None = None) -> dict[str, np.ndarray]:
    """The zstd .npy members of a format-3 bundle whose name starts with `prefix` and, given
    `wanted`, whose key (the name without ``.npy.zst``) it accepts (no pickles)."""
    out: dict[str, np.ndarray] = {}
    decompressor = zstandard.ZstdDecompressor()
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if not (name.startswith(prefix) and name.endswith(".npy.zst")):
                continue
            if wanted is not None and not wanted(name[: -len(".npy.zst")]):
                continue
            raw = decompressor.decompress(archive.read(name), max_output_size=MEMBER_MAX_BYTES)
            out[name[: -len(".npy.zst")]] = np.load(io.BytesIO(raw), allow_pickle=False)
    return out


def _bundle_document(path: Path) -> dict[str, Any]:
    with zipfile.ZipFile(path) as archive:
        raw = archive.read("document.json.zst")
    return json.loads(zstandard.ZstdDecompressor().decompress(raw, max_output_size=MEMBER_MAX_BYTES * 4))


def _compact_load(path: Path, layers: Callable[[list[int]], Iterable[int]] | None = None,
                  ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    doc = _bundle_document(path)
    if layers is not None:
        keep = {int(i) for i in layers(sorted(int(k) for k in doc["layers"]))}
        doc["layers"] = {k: v for k, v in doc["layers"].items() if int(k) in keep}
    layer_keys = {f"L{key}." for key in doc["layers"]}

    def wanted(key: str) -> bool:
        # The screen's sketch is read apart (screen.screen_sketches_load); layers left out are not read.
        return not key.startswith("screen/") and (not key.startswith("L") or key[:key.index(".") + 1] in layer_keys)

    arrays = bundle_members(path, wanted=wanted)
    for key, fams in doc["layers"].items():
        for f in fams:
            if f.startswith("__"):
                continue
            # Rows stay packed (FamilyRows.packed): dequantised when asked for, never kept.
            if f"L{key}.{f}.sketch8" in arrays:
                arrays[f"L{key}.{f}.sketch"] = _sketch_dequantise(arrays.pop(f"L{key}.{f}.sketch8"))
        for name in ("mlp_out", "norm_in", "norm_post"):
            if f"L{key}.{name}" in arrays:
                arrays[f"L{key}.{name}"] = arrays[f"L{key}.{name}"].astype(np.float32)
    if "embedding.q4" in arrays:
        arrays["embedding.rows"] = _embedding_dequantise(arrays)
    return doc, arrays


def fingerprint_load(path: str | os.PathLike[str], *,
                     layers: Callable[[list[int]], Iterable[int]] | None = None) -> Fingerprint:
    """Read a bundle written by fingerprint_save, format 3 or 2 (never a pickle: a bundle cannot run code).

    ``layers``: given the sampled layer indices (sorted), the ones to keep; the others are left
    out of the result and, in a compact bundle, never read (dequantising is most of a load: 2.4 s
    of a 7B fingerprint's, of which a caller testing 4 of 16 layers needs a quarter).

    A compact bundle's rows stay packed (``FamilyRows.packed``) and are dequantised only when
    read; its ``test`` rows are derived from them once, when first asked for."""
    path = Path(path)
    return _fingerprint_read(path, path.name, layers)


def _fingerprint_read(source: Any, label: str,
                      layers_keep: Callable[[list[int]], Iterable[int]] | None = None) -> Fingerprint:
    try:
        with zipfile.ZipFile(source) as archive:
            names = archive.namelist()
            compact = "document.json.zst" in names
            nested = {name[len("component."):-len(".bundle")]: archive.read(name) for name in names
                      if name.startswith("component.") and name.endswith(".bundle")}
        if compact:
            doc, arrays = _compact_load(source, layers_keep)
        else:
            if hasattr(source, "seek"):
                source.seek(0)
            with np.load(source, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
            doc = json.loads(arrays.pop("document.json").tobytes().decode("utf-8"))
            if layers_keep is not None:
                keep = {int(i) for i in layers_keep(sorted(int(k) for k in doc["layers"]))}
                doc["layers"] = {k: v for k, v in doc["layers"].items() if int(k) in keep}
            nested = {key.split(".", 1)[1]: arrays.pop(key).tobytes()
                      for key in [k for k in arrays if k.startswith("component.")]}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, zstandard.ZstdError) as exc:
        raise WeightsFormatError(f"{label}: not a lineage fingerprint bundle ({exc})") from exc
    components = {kind: _fingerprint_read(io.BytesIO(raw), f"{label}:component.{kind}") for kind, raw in nested.items()}
    meta = doc["meta"]
    if meta.get("format") not in (BUNDLE_FORMAT, BUNDLE_FORMAT_FLOAT16):
        raise WeightsFormatError(f"{label}: bundle format {meta.get('format')!r}, expected {BUNDLE_FORMAT}")
    layers: dict[int, LayerPrint] = {}
    for key, fams in doc["layers"].items():
        index = int(key)
        lp = LayerPrint(index=index)
        lp.mlp_out = arrays.get(f"L{index}.mlp_out")
        lp.mlp_out_block = fams.pop("__mlp_out_block__", "")
        for f, info in fams.items():
            packed = f"L{index}.{f}.q4"
            lp.families[f] = FamilyRows(
                rows=arrays.get(f"L{index}.{f}.rows"), hashes=info["hashes"], blocks=info["blocks"],
                stored_sketch=arrays.get(f"L{index}.{f}.sketch"),
                packed=(arrays[packed], int(info["width"])) if packed in arrays else None,
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
