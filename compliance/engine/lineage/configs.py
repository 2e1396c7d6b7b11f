"""Config comparison: weak supporting evidence (Yi-34B and Solar/GLM share architectures, not weights)."""

from __future__ import annotations

from typing import Any

CONFIG_KEYS = (
    "model_type", "architectures", "hidden_size", "num_hidden_layers", "intermediate_size",
    "num_attention_heads", "num_key_value_heads", "head_dim", "vocab_size", "max_position_embeddings",
    "rope_theta", "partial_rotary_factor", "n_routed_experts", "num_local_experts", "num_experts",
    "n_shared_experts", "num_experts_per_tok", "moe_intermediate_size", "first_k_dense_replace",
    "tie_word_embeddings", "hidden_act", "rms_norm_eps", "layer_norm_eps", "torch_dtype",
)


def config_summary(config: dict[str, Any]) -> dict[str, Any]:
    """The architecture-defining fields of a Hugging Face (or GGUF-derived) config."""
    return {k: config[k] for k in CONFIG_KEYS if k in config}


def config_compare(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Fields equal and different between two config summaries."""
    a, b = config_summary(a), config_summary(b)
    keys = sorted(set(a) & set(b))
    same = [k for k in keys if a[k] == b[k]]
    differ = {k: [a[k], b[k]] for k in keys if a[k] != b[k]}
    return {
        "same": same,
        "different": differ,
        "only_in_candidate": sorted(set(a) - set(b)),
        "only_in_reference": sorted(set(b) - set(a)),
        "note": "weak evidence: matching configs are common among independent models",
    }
