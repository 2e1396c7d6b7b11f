"""Tiny but structured model generators and derivation transforms, numpy only (no torch).

"Trained-like" weights: every matrix is a low-rank part with a decaying spectrum, plus Gaussian
and sparse heavy-tailed (Student-t) parts, times a per-coordinate scale pattern that is the SAME
for every seed (the analogue of identical data and recipe: outlier dimensions, norm gains near
1). Independent models are different seeds of the same generator with identical config and
tokenizer. Derived models apply the transforms below. Also used by bench/lineage_quality.py.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

VOCAB_SIZE = 1024


def vocab_default(size: int = VOCAB_SIZE, prefix: str = "") -> list[str]:
    """A fixed BPE-like vocabulary (same for every seed: a shared tokenizer)."""
    specials = ["<s>", "</s>", "<unk>", "<pad>"]
    letters = [chr(c) for c in range(33, 127)]
    rng = np.random.default_rng(777 if not prefix else 778)
    words = []
    syll = ["ka", "ra", "on", "de", "mi", "su", "lo", "te", "an", "ri", "po", "ne", "ha", "gu", "ji", "ul"]
    while len(specials) + len(letters) + len(words) < size:
        w = prefix + "".join(rng.choice(syll, size=rng.integers(1, 4)))
        if w not in words:
            words.append(w)
    return (specials + letters + words)[:size]


@dataclass
class TinyModel:
    """Tensors (float32, HF names), config, vocabulary, and merges of a tiny model."""

    arch: str
    tensors: dict[str, np.ndarray]
    config: dict[str, Any]
    vocab: list[str]
    merges: list[str] = field(default_factory=list)


def _shared_pattern(d: int) -> np.ndarray:
    """Per-coordinate scale common to all seeds: 4 outlier dims at 4x, the rest log-normal."""
    rng = np.random.default_rng(424242 + d)
    pattern = np.exp(rng.normal(0, 0.25, d))
    pattern[rng.choice(d, 4, replace=False)] *= 4.0
    return pattern.astype(np.float32)


def _matrix(rng: np.random.Generator, out: int, inn: int, col: np.ndarray | None) -> np.ndarray:
    r = max(4, min(out, inn) // 8)
    spectrum = (1.0 / np.sqrt(np.arange(1, r + 1))).astype(np.float32)
    low = (rng.standard_normal((out, r), dtype=np.float32) * spectrum) @ rng.standard_normal((r, inn), dtype=np.float32)
    low /= math.sqrt(r)
    noise = rng.standard_normal((out, inn), dtype=np.float32) * 0.6
    # 2 % of entries get a Student-t(3) spike: the heavy tails trained weights show.
    n_heavy = out * inn // 50
    flat = noise.reshape(-1)
    flat[rng.integers(0, out * inn, n_heavy)] += rng.standard_t(3, n_heavy) * 2.0
    w = (low + noise) / math.sqrt(inn)
    if col is not None:
        w = w * col[None, :]
    return w.astype(np.float32)


def _gain(rng: np.random.Generator, d: int) -> np.ndarray:
    # Trained RMSNorm gains: positive, mean near 1 with a per-model offset, spread ~0.05.
    return (rng.normal(1.0 + rng.normal(0, 0.05), 0.05, d) * (0.9 + 0.1 * _shared_pattern(d) / 2)).astype(np.float32)


def llama_make(*, seed: int, d: int = 256, f: int = 512, layers: int = 6, heads: int = 4, kv_heads: int = 2,
               vocab: list[str] | None = None, head_dim: int | None = None) -> TinyModel:
    """A Llama-style decoder with `layers` layers (names as in transformers' LlamaForCausalLM)."""
    rng = np.random.default_rng(seed)
    vocab = vocab or vocab_default()
    col = _shared_pattern(d)
    hd = head_dim or d // heads
    t: dict[str, np.ndarray] = {"model.embed_tokens.weight": _matrix(rng, len(vocab), d, col) * 4}
    for i in range(layers):
        p = f"model.layers.{i}."
        t[p + "input_layernorm.weight"] = _gain(rng, d)
        t[p + "self_attn.q_proj.weight"] = _matrix(rng, heads * hd, d, col)
        t[p + "self_attn.k_proj.weight"] = _matrix(rng, kv_heads * hd, d, col)
        t[p + "self_attn.v_proj.weight"] = _matrix(rng, kv_heads * hd, d, col)
        t[p + "self_attn.o_proj.weight"] = _matrix(rng, d, heads * hd, None)
        t[p + "post_attention_layernorm.weight"] = _gain(rng, d)
        t[p + "mlp.gate_proj.weight"] = _matrix(rng, f, d, col)
        t[p + "mlp.up_proj.weight"] = _matrix(rng, f, d, col)
        t[p + "mlp.down_proj.weight"] = _matrix(rng, d, f, None)
    t["model.norm.weight"] = _gain(rng, d)
    t["lm_head.weight"] = _matrix(rng, len(vocab), d, col)
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": d, "intermediate_size": f,
        "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": kv_heads,
        "vocab_size": len(vocab), "rms_norm_eps": 1e-5, "hidden_act": "silu", "tie_word_embeddings": False,
        "max_position_embeddings": 4096, "rope_theta": 10000.0, "torch_dtype": "bfloat16",
    }
    if head_dim:
        config["head_dim"] = head_dim
    return TinyModel("llama", t, config, vocab, merges_default(vocab))


def qwen3_make(*, seed: int, d: int = 256, heads: int = 4, kv_heads: int = 2, head_dim: int = 128) -> TinyModel:
    """A Qwen3-style decoder: explicit head_dim wider than hidden / heads, per-head q/k RMSNorm
    gains (q_norm, k_norm), names and config as transformers' Qwen3ForCausalLM writes them."""
    m = llama_make(seed=seed, d=d, heads=heads, kv_heads=kv_heads, head_dim=head_dim)
    rng = np.random.default_rng(seed + 7)
    for i in range(m.config["num_hidden_layers"]):
        for n in ("q_norm", "k_norm"):
            m.tensors[f"model.layers.{i}.self_attn.{n}.weight"] = _gain(rng, head_dim)
    m.config.update({"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "rms_norm_eps": 1e-6,
                     "rope_theta": 1000000.0})
    return replace(m, arch="qwen3")


def glm_moe_make(*, seed: int, d: int = 256, f: int = 512, moe_f: int = 128, layers: int = 4, heads: int = 4,
                 kv_heads: int = 2, experts: int = 8) -> TinyModel:
    """A GLM-4-MoE-style decoder: layer 0 dense, then routed experts plus one shared expert."""
    rng = np.random.default_rng(seed)
    vocab = vocab_default()
    col = _shared_pattern(d)
    hd = d // heads
    t: dict[str, np.ndarray] = {"model.embed_tokens.weight": _matrix(rng, len(vocab), d, col) * 4}
    for i in range(layers):
        p = f"model.layers.{i}."
        t[p + "input_layernorm.weight"] = _gain(rng, d)
        t[p + "self_attn.q_proj.weight"] = _matrix(rng, heads * hd, d, col)
        t[p + "self_attn.q_proj.bias"] = rng.normal(0, 0.02, heads * hd).astype(np.float32)
        t[p + "self_attn.k_proj.weight"] = _matrix(rng, kv_heads * hd, d, col)
        t[p + "self_attn.v_proj.weight"] = _matrix(rng, kv_heads * hd, d, col)
        t[p + "self_attn.o_proj.weight"] = _matrix(rng, d, heads * hd, None)
        t[p + "post_attention_layernorm.weight"] = _gain(rng, d)
        if i == 0:
            for n in ("gate_proj", "up_proj"):
                t[p + f"mlp.{n}.weight"] = _matrix(rng, f, d, col)
            t[p + "mlp.down_proj.weight"] = _matrix(rng, d, f, None)
            continue
        t[p + "mlp.gate.weight"] = _matrix(rng, experts, d, col)
        for e in range(experts):
            for n in ("gate_proj", "up_proj"):
                t[p + f"mlp.experts.{e}.{n}.weight"] = _matrix(rng, moe_f, d, col)
            t[p + f"mlp.experts.{e}.down_proj.weight"] = _matrix(rng, d, moe_f, None)
        for n in ("gate_proj", "up_proj"):
            t[p + f"mlp.shared_experts.{n}.weight"] = _matrix(rng, moe_f, d, col)
        t[p + "mlp.shared_experts.down_proj.weight"] = _matrix(rng, d, moe_f, None)
    t["model.norm.weight"] = _gain(rng, d)
    t["lm_head.weight"] = _matrix(rng, len(vocab), d, col)
    config = {
        "architectures": ["Glm4MoeForCausalLM"], "model_type": "glm4_moe", "hidden_size": d, "intermediate_size": f,
        "moe_intermediate_size": moe_f, "num_hidden_layers": layers, "num_attention_heads": heads,
        "num_key_value_heads": kv_heads, "n_routed_experts": experts, "n_shared_experts": 1,
        "num_experts_per_tok": 2, "first_k_dense_replace": 1, "vocab_size": len(vocab), "torch_dtype": "bfloat16",
    }
    return TinyModel("glm4_moe", t, config, vocab, merges_default(vocab))


def bert_make(*, seed: int, d: int = 256, f: int = 1024, layers: int = 4, vocab: list[str] | None = None) -> TinyModel:
    """A BERT-style encoder (names as in transformers' BertModel, e.g. all-MiniLM-L6-v2)."""
    rng = np.random.default_rng(seed)
    vocab = vocab or ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + vocab_default()[4:]
    col = _shared_pattern(d)
    t: dict[str, np.ndarray] = {
        "embeddings.word_embeddings.weight": _matrix(rng, len(vocab), d, col) * 4,
        "embeddings.position_embeddings.weight": _matrix(rng, 512, d, col),
        "embeddings.LayerNorm.weight": _gain(rng, d),
    }
    for i in range(layers):
        p = f"encoder.layer.{i}."
        for n in ("query", "key", "value"):
            t[p + f"attention.self.{n}.weight"] = _matrix(rng, d, d, col)
            t[p + f"attention.self.{n}.bias"] = rng.normal(0, 0.02, d).astype(np.float32)
        t[p + "attention.output.dense.weight"] = _matrix(rng, d, d, None)
        t[p + "attention.output.LayerNorm.weight"] = _gain(rng, d)
        t[p + "intermediate.dense.weight"] = _matrix(rng, f, d, col)
        t[p + "output.dense.weight"] = _matrix(rng, d, f, None)
        t[p + "output.LayerNorm.weight"] = _gain(rng, d)
    config = {
        "architectures": ["BertModel"], "model_type": "bert", "hidden_size": d, "intermediate_size": f,
        "num_hidden_layers": layers, "num_attention_heads": 4, "vocab_size": len(vocab), "layer_norm_eps": 1e-12,
    }
    return TinyModel("bert", t, config, vocab)


def merges_default(vocab: list[str]) -> list[str]:
    words = [w for w in vocab if len(w) >= 2 and w.isalpha()]
    return [f"{w[0]} {w[1:]}" for w in words[:300]]


# ----------------------------------------------------------------------------- writers


def _bf16_bytes(a: np.ndarray) -> bytes:
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    # round to nearest even, as torch does when casting to bfloat16
    rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype("<u2")
    return rounded.tobytes()


def safetensors_write(path: Path, tensors: dict[str, np.ndarray], dtype: str = "BF16",
                      metadata: dict[str, str] | None = None) -> Path:
    """Write a safetensors file. F32/F16 go through the safetensors package; BF16 (absent from
    numpy) is written by hand in the same layout, which the strict reader then validates."""
    if dtype in ("F32", "F16"):
        from safetensors.numpy import save_file

        np_dtype = np.float32 if dtype == "F32" else np.float16
        save_file({k: np.ascontiguousarray(v, dtype=np_dtype) for k, v in tensors.items()}, str(path), metadata=metadata)
        return path
    header: dict[str, Any] = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        blob = _bf16_bytes(tensors[name])
        header[name] = {"dtype": "BF16", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    if metadata:
        header["__metadata__"] = metadata
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", len(raw)))
        handle.write(raw)
        for blob in blobs:
            handle.write(blob)
    return path


def tokenizer_json_write(path: Path, vocab: list[str], merges: list[str], kind: str = "BPE") -> None:
    if kind == "WordPiece":
        (path.parent / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
        return
    doc = {
        "version": "1.0",
        "added_tokens": [{"id": i, "content": t, "special": True} for i, t in enumerate(vocab[:4])],
        "model": {"type": kind, "vocab": {t: i for i, t in enumerate(vocab)}, "merges": merges},
    }
    path.write_text(json.dumps(doc), encoding="utf-8")


def model_write(model: TinyModel, directory: Path, *, dtype: str = "BF16", shards: int = 1,
                card: str | None = None) -> Path:
    """Write `model` as a Hugging Face folder (config.json, tokenizer, safetensors, optional index)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(model.config, indent=2), encoding="utf-8")
    if model.vocab:  # a standalone vision encoder has no tokenizer
        tokenizer_json_write(directory / "tokenizer.json", model.vocab, model.merges,
                             "WordPiece" if model.arch == "bert" else "BPE")
    if card:
        (directory / "README.md").write_text(card, encoding="utf-8")
    names = sorted(model.tensors)
    if shards <= 1:
        safetensors_write(directory / "model.safetensors", model.tensors, dtype)
        return directory
    weight_map = {}
    for s in range(shards):
        part = names[s::shards]
        fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        safetensors_write(directory / fname, {n: model.tensors[n] for n in part}, dtype)
        weight_map.update({n: fname for n in part})
    (directory / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": weight_map}), encoding="utf-8"
    )
    return directory


def _rope_permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp convert_hf_to_gguf.py LlamaModel.permute."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_write(model: TinyModel, path: Path, *, qtype: str = "F16", split_max_tensors: int = 0) -> Path:
    """Convert a Llama-style TinyModel to GGUF as llama.cpp does (names, rotary q/k permutation).
    With ``split_max_tensors``, the gguf package splits it as `gguf-split` does (files named
    ``{stem}-00001-of-0000N.gguf``, the metadata in the first); the first file's path is returned."""
    import gguf

    cfg = model.config
    n_head, n_kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    writer = gguf.GGUFWriter(str(path), "llama", split_max_tensors=split_max_tensors)
    writer.add_block_count(cfg["num_hidden_layers"])
    writer.add_embedding_length(cfg["hidden_size"])
    writer.add_feed_forward_length(cfg["intermediate_size"])
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_kv)
    writer.add_context_length(cfg.get("max_position_embeddings", 4096))
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(model.vocab)
    writer.add_token_types([3 if i < 4 else 1 for i in range(len(model.vocab))])
    writer.add_token_merges(model.merges)
    rename = {
        "input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
        "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
    }
    qt = getattr(gguf.GGMLQuantizationType, qtype)
    for name in sorted(model.tensors):
        w = model.tensors[name]
        if name == "model.embed_tokens.weight":
            gname = "token_embd.weight"
        elif name == "lm_head.weight":
            gname = "output.weight"
        elif name == "model.norm.weight":
            gname = "output_norm.weight"
        else:
            parts = name.split(".")
            layer, rest = parts[2], ".".join(parts[3:-1])
            gname = f"blk.{layer}.{rename[rest]}.weight"
            if rest == "self_attn.q_proj":
                w = _rope_permute(w, n_head)
            elif rest == "self_attn.k_proj":
                w = _rope_permute(w, n_kv)
        if w.ndim == 1:
            writer.add_tensor(gname, w.astype(np.float32))
        elif qtype == "F16":
            writer.add_tensor(gname, w.astype(np.float16))
        else:
            writer.add_tensor(gname, gguf.quants.quantize(w.astype(np.float32), qt), raw_dtype=qt)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    if split_max_tensors and len(writer.tensors) > 1:
        return writer.format_shard_names(path)[0]
    return path


# ----------------------------------------------------------------------------- transforms


def _copy(m: TinyModel, **changes: Any) -> TinyModel:
    return replace(m, tensors={k: v.copy() for k, v in m.tensors.items()}, config=dict(m.config), **changes)


def _layer_names(m: TinyModel) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for name in m.tensors:
        parts = name.split(".")
        for i, p in enumerate(parts[:-1]):
            if p in ("layers", "layer") and parts[i + 1].isdigit():
                out.setdefault(int(parts[i + 1]), []).append(name)
    return out


def finetune(m: TinyModel, *, seed: int, noise: float = 0.3, rank: int = 4, lowrank: float = 0.3) -> TinyModel:
    """Simulated fine-tune: Gaussian drift plus a low-rank update on every matrix (relative sizes)."""
    rng = np.random.default_rng(seed)
    out = _copy(m)
    for name, w in out.tensors.items():
        if w.ndim != 2:
            out.tensors[name] = (w + rng.normal(0, noise * 0.05, w.shape) * np.abs(w).mean()).astype(np.float32)
            continue
        std = float(w.std())
        delta = rng.standard_normal((w.shape[0], rank), dtype=np.float32) @ rng.standard_normal((rank, w.shape[1]), dtype=np.float32)
        delta *= lowrank * np.linalg.norm(w) / max(np.linalg.norm(delta), 1e-12)
        out.tensors[name] = (w + noise * std * rng.standard_normal(w.shape, dtype=np.float32) + delta).astype(np.float32)
    return out


def continued_pretraining(m: TinyModel, *, seed: int) -> TinyModel:
    """A long continued pre-training: drift as large as the weights' own spread, plus low-rank change."""
    return finetune(m, seed=seed, noise=0.9, rank=16, lowrank=0.5)


def noise_add(m: TinyModel, *, seed: int, scale: float = 0.2) -> TinyModel:
    """Gaussian noise of `scale` x each tensor's std (the Llama3-V allegation)."""
    rng = np.random.default_rng(seed)
    out = _copy(m)
    for name, w in out.tensors.items():
        out.tensors[name] = w + rng.standard_normal(w.shape, dtype=np.float32) * np.float32(scale * float(w.std()) + 1e-6)
    return out


def mlp_permute(m: TinyModel, *, seed: int) -> TinyModel:
    """Permute MLP hidden units in every layer (function-preserving)."""
    rng = np.random.default_rng(seed)
    out = _copy(m)
    for layer, names in _layer_names(out).items():
        groups: dict[str, list[str]] = {}
        for n in names:
            for key in ("gate_proj", "up_proj", "down_proj", "intermediate.dense", "output.dense"):
                if n.endswith(key + ".weight") and "attention" not in n:
                    groups.setdefault(n.rsplit(".", 2)[0] if "proj" in key else f"L{layer}", []).append(n)
        for members in groups.values():
            f = None
            for n in members:
                if "down_proj" in n or n.endswith("output.dense.weight"):
                    f = out.tensors[n].shape[1]
            perm = rng.permutation(f or out.tensors[members[0]].shape[0])
            for n in members:
                if "down_proj" in n or n.endswith("output.dense.weight"):
                    out.tensors[n] = out.tensors[n][:, perm]
                else:
                    out.tensors[n] = out.tensors[n][perm]
    return out


def heads_permute(m: TinyModel, *, seed: int) -> TinyModel:
    """Permute attention heads (KV groups, and query heads within and with their group)."""
    rng = np.random.default_rng(seed)
    out = _copy(m)
    h, kv = out.config["num_attention_heads"], out.config.get("num_key_value_heads", out.config["num_attention_heads"])
    d = out.config["hidden_size"]
    hd = d // h
    per = h // kv
    for layer in range(out.config["num_hidden_layers"]):
        p = f"model.layers.{layer}.self_attn."
        gperm = rng.permutation(kv)
        qheads = np.concatenate([g * per + rng.permutation(per) for g in gperm])
        qrows = np.concatenate([np.arange(x * hd, (x + 1) * hd) for x in qheads])
        krows = np.concatenate([np.arange(g * hd, (g + 1) * hd) for g in gperm])
        out.tensors[p + "q_proj.weight"] = out.tensors[p + "q_proj.weight"][qrows]
        out.tensors[p + "k_proj.weight"] = out.tensors[p + "k_proj.weight"][krows]
        out.tensors[p + "v_proj.weight"] = out.tensors[p + "v_proj.weight"][krows]
        out.tensors[p + "o_proj.weight"] = out.tensors[p + "o_proj.weight"][:, qrows]
    return out


def norms_fold(m: TinyModel) -> TinyModel:
    """Fold RMSNorm gains into the next matrices' columns and set the gains to 1 (function-preserving)."""
    out = _copy(m)
    for layer in range(out.config["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        g_in = out.tensors[p + "input_layernorm.weight"]
        for n in ("q_proj", "k_proj", "v_proj"):
            out.tensors[p + f"self_attn.{n}.weight"] = out.tensors[p + f"self_attn.{n}.weight"] * g_in[None, :]
        out.tensors[p + "input_layernorm.weight"] = np.ones_like(g_in)
        g_post = out.tensors[p + "post_attention_layernorm.weight"]
        for n in ("gate_proj", "up_proj"):
            out.tensors[p + f"mlp.{n}.weight"] = out.tensors[p + f"mlp.{n}.weight"] * g_post[None, :]
        out.tensors[p + "post_attention_layernorm.weight"] = np.ones_like(g_post)
    return out


def _relayer(m: TinyModel, order: list[int]) -> TinyModel:
    out = _copy(m)
    by_layer = _layer_names(m)
    for names in by_layer.values():
        for n in names:
            del out.tensors[n]
    for new, old in enumerate(order):
        for n in by_layer[old]:
            out.tensors[n.replace(f"layers.{old}.", f"layers.{new}.", 1)] = m.tensors[n].copy()
    out.config["num_hidden_layers"] = len(order)
    return out


def layers_prune(m: TinyModel) -> TinyModel:
    """Drop every third layer (depth pruning)."""
    n = m.config["num_hidden_layers"]
    return _relayer(m, [i for i in range(n) if i % 3 != 1])


def depth_upscale(m: TinyModel) -> TinyModel:
    """SOLAR-style depth up-scaling: layers [0, n-2) followed by [2, n)."""
    n = m.config["num_hidden_layers"]
    return _relayer(m, list(range(0, n - 2)) + list(range(2, n)))


def tokenizer_replace(m: TinyModel, *, seed: int) -> TinyModel:
    """New vocabulary with re-initialised embeddings and output head; transformer layers kept."""
    rng = np.random.default_rng(seed)
    vocab = ["<s>", "</s>", "<unk>", "<pad>"] + vocab_default(len(m.vocab) + 200, prefix="x")[100:len(m.vocab) + 96]
    vocab = vocab[:len(m.vocab)]
    out = _copy(m, vocab=vocab, merges=merges_default(vocab)[::-1])
    d = m.config["hidden_size"]
    for name in ("model.embed_tokens.weight", "lm_head.weight"):
        out.tensors[name] = (rng.standard_normal((len(vocab), d)) * 0.02).astype(np.float32)
    return out


def moe_upcycle(m: TinyModel, *, seed: int, experts: int = 4) -> TinyModel:
    """Dense-to-MoE upcycling as in Mixtral: every expert starts as a copy of the dense FFN (plus small noise)."""
    rng = np.random.default_rng(seed)
    out = _copy(m)
    d = m.config["hidden_size"]
    for layer in range(m.config["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        w1 = out.tensors.pop(p + "mlp.gate_proj.weight")
        w3 = out.tensors.pop(p + "mlp.up_proj.weight")
        w2 = out.tensors.pop(p + "mlp.down_proj.weight")
        out.tensors[p + "block_sparse_moe.gate.weight"] = (rng.standard_normal((experts, d)) * 0.02).astype(np.float32)
        for e in range(experts):
            for name, w in (("w1", w1), ("w3", w3), ("w2", w2)):
                out.tensors[p + f"block_sparse_moe.experts.{e}.{name}.weight"] = (
                    w + rng.normal(0, 0.1 * float(w.std()), w.shape)).astype(np.float32)
    out.config.update({"architectures": ["MixtralForCausalLM"], "model_type": "mixtral", "num_local_experts": experts,
                       "num_experts_per_tok": 2})
    return out


def experts_prune(m: TinyModel, *, keep: list[int]) -> TinyModel:
    """Keep only `keep` routed experts (renumbered), as expert-pruned MoE releases do."""
    out = _copy(m)
    for name in list(out.tensors):
        if ".mlp.experts." in name:
            del out.tensors[name]
    for name, w in m.tensors.items():
        if ".mlp.experts." in name:
            prefix, rest = name.split(".mlp.experts.")
            e, tail = rest.split(".", 1)
            if int(e) in keep:
                out.tensors[f"{prefix}.mlp.experts.{keep.index(int(e))}.{tail}"] = w.copy()
        elif name.endswith("mlp.gate.weight"):
            out.tensors[name] = w[keep].copy()
    out.config["n_routed_experts"] = len(keep)
    return out


def tensors_rename(m: TinyModel) -> TinyModel:
    """Obfuscate every tensor name (no known pattern survives); roles must be inferred from structure."""
    words = {"input_layernorm": "aa", "self_attn.q_proj": "qx", "self_attn.k_proj": "kx", "self_attn.v_proj": "vx",
             "self_attn.o_proj": "ox", "post_attention_layernorm": "bb", "mlp.gate_proj": "fa", "mlp.up_proj": "fb",
             "mlp.down_proj": "fc"}
    out = _copy(m)
    out.tensors = {}
    for name, w in m.tensors.items():
        if name == "model.embed_tokens.weight":
            out.tensors["vocab_table.weight"] = w
        elif name == "lm_head.weight":
            out.tensors["readout.weight"] = w
        elif name == "model.norm.weight":
            out.tensors["final_gain.weight"] = w
        else:
            parts = name.split(".")
            out.tensors[f"trunk.{parts[2]}.{words['.'.join(parts[3:-1])]}.weight"] = w
    out.config = {k: v for k, v in m.config.items() if k not in ("architectures", "model_type")}
    return out


def architecture_rename(m: TinyModel) -> TinyModel:
    """Change only the declared architecture name."""
    out = _copy(m)
    out.config.update({"architectures": ["SovereignLMForCausalLM"], "model_type": "sovereign_lm"})
    return out


def residual_permute(m: TinyModel, *, seed: int, flip_signs: bool = True) -> TinyModel:
    """Permute (and sign-flip) the residual-stream coordinates of a Llama-style model everywhere.

    Function-preserving for RMSNorm models: every matrix reading the residual has its columns
    re-ordered, every matrix writing it its rows, and the norm gains follow the permutation.
    """
    rng = np.random.default_rng(seed)
    d = m.config["hidden_size"]
    perm = rng.permutation(d)
    sign = np.where(rng.random(d) < 0.5, -1.0, 1.0).astype(np.float32) if flip_signs else np.ones(d, np.float32)
    out = _copy(m)
    for name, w in m.tensors.items():
        if w.ndim == 1 and w.shape[0] == d:
            out.tensors[name] = w[perm]
        elif name.endswith(("o_proj.weight", "down_proj.weight")):
            out.tensors[name] = w[perm] * sign[:, None]
        elif w.ndim == 2 and w.shape[1] == d:
            out.tensors[name] = w[:, perm] * sign[None, :]
    return out


def _fp8_encode(x: np.ndarray) -> np.ndarray:
    """Nearest FP8 E4M3FN code for each value (values already scaled into [-448, 448])."""
    from compliance.engine.weights import _FP8_TABLES

    table = _FP8_TABLES["F8_E4M3"]
    finite = np.where(np.isfinite(table))[0]
    order = finite[np.argsort(table[finite])]
    values = table[order]
    pos = np.clip(np.searchsorted(values, x), 1, len(values) - 1)
    nearer_left = np.abs(x - values[pos - 1]) <= np.abs(values[pos] - x)
    return order[np.where(nearer_left, pos - 1, pos)].astype(np.uint8)


def fp8_write(model: TinyModel, directory: Path, block: int = 128) -> Path:
    """Write `model` as DeepSeek-V3 does: 2-D weights in FP8 E4M3 with float32 `*_scale_inv` per block."""
    directory.mkdir(parents=True, exist_ok=True)
    config = dict(model.config)
    config["quantization_config"] = {"quant_method": "fp8", "fmt": "e4m3", "weight_block_size": [block, block]}
    (directory / "config.json").write_text(json.dumps(config), encoding="utf-8")
    tokenizer_json_write(directory / "tokenizer.json", model.vocab, model.merges)
    header: dict[str, Any] = {}
    blobs, offset = [], 0

    def add(name: str, dtype: str, shape: list[int], blob: bytes) -> None:
        nonlocal offset
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)

    for name in sorted(model.tensors):
        w = model.tensors[name]
        if w.ndim != 2 or name.endswith(("embed_tokens.weight", "lm_head.weight")):
            add(name, "BF16", list(w.shape), _bf16_bytes(w))
            continue
        rb, cb = -(-w.shape[0] // block), -(-w.shape[1] // block)
        scale = np.ones((rb, cb), dtype=np.float32)
        codes = np.empty(w.shape, dtype=np.uint8)
        for i in range(rb):
            for j in range(cb):
                part = w[i * block:(i + 1) * block, j * block:(j + 1) * block]
                scale[i, j] = max(float(np.abs(part).max()), 1e-12) / 448.0
                codes[i * block:(i + 1) * block, j * block:(j + 1) * block] = _fp8_encode(part / scale[i, j])
        add(name, "F8_E4M3", list(w.shape), codes.tobytes())
        add(name + "_scale_inv", "F32", [rb, cb], scale.astype("<f4").tobytes())
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(directory / "model.safetensors", "wb") as handle:
        handle.write(struct.pack("<Q", len(raw)) + raw)
        for blob in blobs:
            handle.write(blob)
    return directory


# ----------------------------------------------------------------------------- multimodal

# Vision towers at 1/12 of the real widths, same proportions: SigLIP-so400m in LLaVA-OneVision
# (hidden 1152, MLP 4304, 16 heads, patch 14, 27 x 27 positions) and Qwen2.5-VL's ViT (hidden 1280,
# gated MLP 3420, 16 heads, Conv3d patch [1280, 3, 2, 14, 14], a 2 x 2 merger into the LM width).
VISION_WIDTH = 96
VISION_MLP = 352
VISION_HEADS = 4
VISION_LAYERS = 4
PATCH = 14
POSITIONS = 36


def vision_make(*, seed: int, style: str = "siglip", d: int = VISION_WIDTH, f: int = VISION_MLP,
                layers: int = VISION_LAYERS) -> dict[str, np.ndarray]:
    """A vision tower's tensors, names relative to the tower (``vision_model.`` or ``visual.``).

    "siglip": transformers' SiglipVisionModel (q/k/v/out_proj with biases, fc1/fc2, LayerNorm pairs);
    "qwen": Qwen2.5-VL's ViT (fused attn.qkv, attn.proj, gated MLP, RMSNorm, Conv3d patches)."""
    rng = np.random.default_rng(seed)
    col = _shared_pattern(d)
    t: dict[str, np.ndarray] = {}
    if style == "siglip":
        t["embeddings.patch_embedding.weight"] = (rng.standard_normal((d, 3, PATCH, PATCH)) * 0.02).astype(np.float32)
        t["embeddings.patch_embedding.bias"] = rng.normal(0, 0.02, d).astype(np.float32)
        t["embeddings.position_embedding.weight"] = _matrix(rng, POSITIONS, d, col)
        for i in range(layers):
            p = f"encoder.layers.{i}."
            t[p + "layer_norm1.weight"], t[p + "layer_norm1.bias"] = _gain(rng, d), rng.normal(0, 0.02, d).astype(np.float32)
            for n in ("q_proj", "k_proj", "v_proj"):
                t[p + f"self_attn.{n}.weight"] = _matrix(rng, d, d, col)
                t[p + f"self_attn.{n}.bias"] = rng.normal(0, 0.02, d).astype(np.float32)
            t[p + "self_attn.out_proj.weight"] = _matrix(rng, d, d, None)
            t[p + "self_attn.out_proj.bias"] = rng.normal(0, 0.02, d).astype(np.float32)
            t[p + "layer_norm2.weight"], t[p + "layer_norm2.bias"] = _gain(rng, d), rng.normal(0, 0.02, d).astype(np.float32)
            t[p + "mlp.fc1.weight"], t[p + "mlp.fc1.bias"] = _matrix(rng, f, d, col), rng.normal(0, 0.02, f).astype(np.float32)
            t[p + "mlp.fc2.weight"], t[p + "mlp.fc2.bias"] = _matrix(rng, d, f, None), rng.normal(0, 0.02, d).astype(np.float32)
        t["post_layernorm.weight"], t["post_layernorm.bias"] = _gain(rng, d), rng.normal(0, 0.02, d).astype(np.float32)
        return t
    t["patch_embed.proj.weight"] = (rng.standard_normal((d, 3, 2, PATCH, PATCH)) * 0.02).astype(np.float32)
    for i in range(layers):
        p = f"blocks.{i}."
        t[p + "norm1.weight"] = _gain(rng, d)
        t[p + "attn.qkv.weight"] = _matrix(rng, 3 * d, d, col)
        t[p + "attn.qkv.bias"] = rng.normal(0, 0.02, 3 * d).astype(np.float32)
        t[p + "attn.proj.weight"], t[p + "attn.proj.bias"] = _matrix(rng, d, d, None), rng.normal(0, 0.02, d).astype(np.float32)
        t[p + "norm2.weight"] = _gain(rng, d)
        for n in ("gate_proj", "up_proj"):
            t[p + f"mlp.{n}.weight"], t[p + f"mlp.{n}.bias"] = _matrix(rng, f, d, col), rng.normal(0, 0.02, f).astype(np.float32)
        t[p + "mlp.down_proj.weight"] = _matrix(rng, d, f, None)
        t[p + "mlp.down_proj.bias"] = rng.normal(0, 0.02, d).astype(np.float32)
    return t


def vision_config(style: str, d: int = VISION_WIDTH, f: int = VISION_MLP, layers: int = VISION_LAYERS,
                  lm_width: int = 256) -> dict[str, Any]:
    if style == "siglip":
        return {"model_type": "siglip_vision_model", "hidden_size": d, "intermediate_size": f,
                "num_attention_heads": VISION_HEADS, "num_hidden_layers": layers, "patch_size": PATCH,
                "image_size": PATCH * int(math.isqrt(POSITIONS)), "vision_use_head": False}
    return {"depth": layers, "hidden_size": d, "intermediate_size": f, "num_heads": VISION_HEADS,
            "out_hidden_size": lm_width, "patch_size": PATCH, "spatial_merge_size": 2, "temporal_patch_size": 2,
            "in_chans": 3, "hidden_act": "silu"}


def projector_make(*, seed: int, style: str, vision_width: int, lm_width: int) -> dict[str, np.ndarray]:
    """LLaVA's multi_modal_projector (linear_1, GELU, linear_2) or Qwen2.5-VL's merger (ln_q, mlp.0, mlp.2
    over 2 x 2 merged patches); names relative to the module."""
    rng = np.random.default_rng(seed)
    if style == "llava":
        return {"linear_1.weight": _matrix(rng, lm_width, vision_width, None),
                "linear_1.bias": rng.normal(0, 0.02, lm_width).astype(np.float32),
                "linear_2.weight": _matrix(rng, lm_width, lm_width, None),
                "linear_2.bias": rng.normal(0, 0.02, lm_width).astype(np.float32)}
    merged = 4 * vision_width
    return {"ln_q.weight": _gain(rng, vision_width),
            "mlp.0.weight": _matrix(rng, merged, merged, None), "mlp.0.bias": rng.normal(0, 0.02, merged).astype(np.float32),
            "mlp.2.weight": _matrix(rng, lm_width, merged, None), "mlp.2.bias": rng.normal(0, 0.02, lm_width).astype(np.float32)}


_CUSTOM_LM = {"input_layernorm": "g1", "self_attn.q_proj": "qa", "self_attn.k_proj": "ka", "self_attn.v_proj": "va",
              "self_attn.o_proj": "oa", "post_attention_layernorm": "g2", "mlp.gate_proj": "m1", "mlp.up_proj": "m3",
              "mlp.down_proj": "m2"}
_CUSTOM_VISION = {"layer_norm1": "n1", "self_attn.q_proj": "wq", "self_attn.k_proj": "wk", "self_attn.v_proj": "wv",
                  "self_attn.out_proj": "wo", "layer_norm2": "n2", "mlp.fc1": "up", "mlp.fc2": "dn"}


def vlm_make(*, layout: str, lm: TinyModel, vision_seed: int, projector_seed: int,
             vision: dict[str, np.ndarray] | None = None) -> TinyModel:
    """A vision-language model around the language model `lm` (a Llama-style TinyModel), in the
    tensor layout of a real family:

    * "llava_ov": transformers' LlavaOnevisionForConditionalGeneration (``model.vision_tower.vision_model.``,
      ``model.multi_modal_projector.linear_1/2``, ``model.language_model.layers.N.``, ``lm_head``);
    * "qwen25vl": Qwen2_5_VLForConditionalGeneration as published (``visual.blocks.N.attn.qkv``,
      ``visual.merger``, ``model.layers.N.``, ``lm_head``), config flat with a vision_config;
    * "custom": every name replaced (``dec.N.qa``, ``enc.N.wq``, ``patchify``, ``bridge.a/b``) and no config,
      with a linear patch embedding [d, 3 x 14 x 14]: only structure tells the parts apart.

    `vision` replaces the generated tower's tensors (to reuse one tower, possibly fine-tuned)."""
    d_lm = lm.config["hidden_size"]
    style = "qwen" if layout == "qwen25vl" else "siglip"
    tower = vision if vision is not None else vision_make(seed=vision_seed, style=style)
    t: dict[str, np.ndarray] = {}
    if layout == "llava_ov":
        for name, w in lm.tensors.items():
            t["lm_head.weight" if name == "lm_head.weight" else name.replace("model.", "model.language_model.", 1)] = w
        t.update({f"model.vision_tower.vision_model.{k}": v for k, v in tower.items()})
        t.update({f"model.multi_modal_projector.{k}": v for k, v in projector_make(
            seed=projector_seed, style="llava", vision_width=VISION_WIDTH, lm_width=d_lm).items()})
        t["model.image_newline"] = np.random.default_rng(projector_seed).normal(0, 0.02, d_lm).astype(np.float32)
        text = {**lm.config, "model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"]}
        config = {"architectures": ["LlavaOnevisionForConditionalGeneration"], "model_type": "llava_onevision",
                  "text_config": text, "vision_config": vision_config("siglip"), "projector_hidden_act": "gelu",
                  "vision_feature_layer": -1, "image_token_index": len(lm.vocab) - 1}
    elif layout == "qwen25vl":
        t.update(lm.tensors)
        t.update({f"visual.{k}": v for k, v in tower.items()})
        t.update({f"visual.merger.{k}": v for k, v in projector_make(
            seed=projector_seed, style="qwen", vision_width=VISION_WIDTH, lm_width=d_lm).items()})
        config = {**lm.config, "architectures": ["Qwen2_5_VLForConditionalGeneration"], "model_type": "qwen2_5_vl",
                  "vision_config": vision_config("qwen", lm_width=d_lm)}
    elif layout == "custom":
        for name, w in lm.tensors.items():
            if name == "model.embed_tokens.weight":
                t["tok_table.weight"] = w
            elif name == "lm_head.weight":
                t["out_table.weight"] = w
            elif name == "model.norm.weight":
                t["final_gain.weight"] = w
            else:
                parts = name.split(".")
                t[f"dec.{parts[2]}.{_CUSTOM_LM['.'.join(parts[3:-1])]}.weight"] = w
        for name, w in tower.items():
            if name == "embeddings.patch_embedding.weight":
                t["patchify.weight"] = w.reshape(w.shape[0], -1)  # a linear patch embedding [d, 3 p p]
            elif name == "embeddings.position_embedding.weight":
                t["pos_table.weight"] = w
            elif name.startswith("encoder.layers.") and name.endswith(".weight"):
                parts = name.split(".")
                t[f"enc.{parts[2]}.{_CUSTOM_VISION['.'.join(parts[3:-1])]}.weight"] = w
        proj = projector_make(seed=projector_seed, style="llava", vision_width=VISION_WIDTH, lm_width=d_lm)
        t["bridge.a.weight"], t["bridge.b.weight"] = proj["linear_1.weight"], proj["linear_2.weight"]
        config = {}
    else:
        raise ValueError(layout)
    return TinyModel("vlm", t, config, lm.vocab, lm.merges)


def vision_encoder_make(*, seed: int | None = None, tower: dict[str, np.ndarray] | None = None) -> TinyModel:
    """A standalone SigLIP vision encoder as published (``vision_model.``), no tokenizer."""
    tower = tower if tower is not None else vision_make(seed=seed or 0)
    return TinyModel("vision", {f"vision_model.{k}": v for k, v in tower.items()},
                     {"architectures": ["SiglipVisionModel"], **vision_config("siglip")}, [])


def tensors_finetune(tensors: dict[str, np.ndarray], *, seed: int, noise: float = 0.3) -> dict[str, np.ndarray]:
    """`finetune` on a bare tensor dict (a vision tower fine-tuned inside another VLM)."""
    return finetune(TinyModel("x", tensors, {}, []), seed=seed, noise=noise).tensors


def random_orthogonal(d: int, seed: int) -> np.ndarray:
    """A Haar-random d x d orthogonal matrix (QR of a Gaussian with the sign fix)."""
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return (q * np.sign(np.diag(r))[None, :]).astype(np.float64)


def residual_rotate(m: TinyModel, *, seed: int, rotation: np.ndarray | None = None) -> TinyModel:
    """Rotate the residual basis of a Llama-style model as QuaRot/SpinQuant do (function-preserving).

    Norm gains are folded into the matrices that read the normed stream (input_layernorm into
    q/k/v, post_attention_layernorm into gate/up, the final norm into lm_head) and set to 1, so
    RMSNorm commutes with the rotation; then with x' = Q x every residual-reading matrix becomes
    W Q^T (embeddings too) and every residual-writing matrix (o_proj, down_proj) Q W.
    """
    out = norms_fold(m)
    d = m.config["hidden_size"]
    q = random_orthogonal(d, seed) if rotation is None else rotation
    g_final = out.tensors["model.norm.weight"]
    out.tensors["lm_head.weight"] = out.tensors["lm_head.weight"] * g_final[None, :]
    out.tensors["model.norm.weight"] = np.ones_like(g_final)
    for name, w in list(out.tensors.items()):
        if w.ndim != 2:
            continue
        if name.endswith(("o_proj.weight", "down_proj.weight")):
            out.tensors[name] = (q @ w.astype(np.float64)).astype(np.float32)
        elif w.shape[1] == d:
            out.tensors[name] = (w.astype(np.float64) @ q.T).astype(np.float32)
    return out


def width_prune(m: TinyModel, *, seed: int, residual: float = 0.75, kv_heads_kept: int | None = None,
                units: float = 1.0) -> TinyModel:
    """A smaller sibling as width pruning (Minitron-style) makes it: keep a sorted subset of the
    residual coordinates (every matrix and norm that touches the residual), optionally of the KV
    groups (with their query heads) and of the MLP units, in their original order."""
    rng = np.random.default_rng(seed)
    cfg = m.config
    d, h, kv = cfg["hidden_size"], cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    hd = cfg.get("head_dim") or d // h
    per = h // kv
    keep_d = np.sort(rng.choice(d, int(d * residual), replace=False))
    keep_kv = np.sort(rng.choice(kv, kv_heads_kept or kv, replace=False))
    keep_q = np.concatenate([g * per + np.arange(per) for g in keep_kv])
    q_rows = np.concatenate([np.arange(x * hd, (x + 1) * hd) for x in keep_q])
    kv_rows = np.concatenate([np.arange(g * hd, (g + 1) * hd) for g in keep_kv])
    f = cfg["intermediate_size"]
    keep_f = np.sort(rng.choice(f, int(f * units), replace=False))
    out = _copy(m)
    for name, w in m.tensors.items():
        if w.ndim == 1 and w.shape[0] == d:
            out.tensors[name] = w[keep_d]
        elif name.endswith("q_proj.weight"):
            out.tensors[name] = w[q_rows][:, keep_d]
        elif name.endswith(("k_proj.weight", "v_proj.weight")):
            out.tensors[name] = w[kv_rows][:, keep_d]
        elif name.endswith("o_proj.weight"):
            out.tensors[name] = w[keep_d][:, q_rows]
        elif name.endswith(("gate_proj.weight", "up_proj.weight")):
            out.tensors[name] = w[keep_f][:, keep_d]
        elif name.endswith("down_proj.weight"):
            out.tensors[name] = w[keep_d][:, keep_f]
        elif w.ndim == 2 and w.shape[1] == d:
            out.tensors[name] = w[:, keep_d]
    out.config.update({"hidden_size": len(keep_d), "num_attention_heads": len(keep_q),
                       "num_key_value_heads": len(keep_kv), "head_dim": hd, "intermediate_size": len(keep_f)})
    return out


def llama_forward(m: TinyModel, tokens: list[int]) -> np.ndarray:
    """Logits [len(tokens), vocab] of a Llama-style TinyModel (RMSNorm, causal attention with GQA,
    SwiGLU; no rotary embedding, which acts inside heads and so cannot tell a residual rotation
    apart). Only used to check that a transform preserves the function."""
    cfg = m.config
    d, h = cfg["hidden_size"], cfg["num_attention_heads"]
    kv = cfg.get("num_key_value_heads", h)
    hd = cfg.get("head_dim") or d // h
    t = {k: v.astype(np.float64) for k, v in m.tensors.items()}

    def rms(x: np.ndarray, g: np.ndarray) -> np.ndarray:
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + 1e-6) * g

    x = t["model.embed_tokens.weight"][tokens]
    n = len(tokens)
    mask = np.triu(np.full((n, n), -np.inf), 1)
    for layer in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        a = rms(x, t[p + "input_layernorm.weight"])
        q = (a @ t[p + "self_attn.q_proj.weight"].T).reshape(n, h, hd)
        k = (a @ t[p + "self_attn.k_proj.weight"].T).reshape(n, kv, hd)
        v = (a @ t[p + "self_attn.v_proj.weight"].T).reshape(n, kv, hd)
        heads = []
        for i in range(h):
            scores = q[:, i] @ k[:, i // (h // kv)].T / math.sqrt(hd) + mask
            w = np.exp(scores - scores.max(axis=1, keepdims=True))
            heads.append((w / w.sum(axis=1, keepdims=True)) @ v[:, i // (h // kv)])
        x = x + np.concatenate(heads, axis=1) @ t[p + "self_attn.o_proj.weight"].T
        b = rms(x, t[p + "post_attention_layernorm.weight"])
        gate = b @ t[p + "mlp.gate_proj.weight"].T
        x = x + ((gate / (1 + np.exp(-gate))) * (b @ t[p + "mlp.up_proj.weight"].T)) @ t[p + "mlp.down_proj.weight"].T
    return rms(x, t["model.norm.weight"]) @ t["lm_head.weight"].T
