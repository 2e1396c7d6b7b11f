"""Tensor roles across naming schemes, and structure inference for renamed tensors."""

from __future__ import annotations

import json

from tests.shared import SHARED_DATA

import pytest

from compliance.engine.lineage.roles import roles_assign
from tests.compliance.engine.lineage import tinymodels as tm

MIXTRAL = SHARED_DATA / "model-configs" / "Mixtral-8x7B-v0.1"


def _shapes_mixtral() -> dict[str, tuple[int, ...]]:
    config = json.loads((MIXTRAL / "config.json").read_text())
    index = json.loads((MIXTRAL / "model.safetensors.index.json").read_text())
    d, f, v = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    kv = config["num_key_value_heads"] * d // config["num_attention_heads"]
    shapes = {}
    for name in index["weight_map"]:
        if name.endswith(("w1.weight", "w3.weight")):
            shapes[name] = (f, d)
        elif name.endswith("w2.weight"):
            shapes[name] = (d, f)
        elif name.endswith(("k_proj.weight", "v_proj.weight")):
            shapes[name] = (kv, d)
        elif name.endswith(("q_proj.weight", "o_proj.weight")):
            shapes[name] = (d, d)
        elif name.endswith("gate.weight"):
            shapes[name] = (config["num_local_experts"], d)
        elif name.endswith(("embed_tokens.weight", "lm_head.weight")):
            shapes[name] = (v, d)
        else:
            shapes[name] = (d,)
    return shapes


def test_real_mixtral_names_give_experts_attention_and_norms() -> None:
    if not MIXTRAL.exists():
        pytest.skip(f"shared model configs not found at {MIXTRAL}: check out shared/ beside the repository "
                    "(../shared/data, as CI lays it) or at /work/shared/data")
    roles = roles_assign(_shapes_mixtral(), json.loads((MIXTRAL / "config.json").read_text()))
    assert roles.method == "names" and len(roles.layers) == 32 and roles.hidden_size == 4096
    layer = roles.layers[7]
    assert len(layer.mlp_in) == 16  # 8 experts x (w1, w3); w2 reads the expert width, not the residual
    assert {b.group for b in layer.mlp_in} == {f"expert:{e}" for e in range(8)}
    assert sorted(b.name.rsplit(".", 2)[1] for b in layer.attn_in) == ["k_proj", "q_proj", "v_proj"]
    assert layer.norm_in.endswith("input_layernorm.weight")
    assert layer.norm_post.endswith("post_attention_layernorm.weight")
    assert roles.embedding == "model.embed_tokens.weight"
    assert len(layer.mlp_out) == 8 and layer.mlp_out[0].name.endswith("w2.weight")  # down projections [d, f]


def test_glm_moe_deepseek_mla_gguf_and_bert_names() -> None:
    glm = tm.glm_moe_make(seed=1, d=64, f=128, moe_f=32, layers=2, heads=2, kv_heads=1, experts=4)
    roles = roles_assign({k: v.shape for k, v in glm.tensors.items()}, glm.config)
    assert {b.group for b in roles.layers[1].mlp_in} == {"shared"} | {f"expert:{e}" for e in range(4)}
    assert {b.group for b in roles.layers[0].mlp_in} == {"dense"}

    mla = {
        "model.embed_tokens.weight": (1000, 64),
        "model.layers.0.self_attn.q_a_proj.weight": (48, 64),
        "model.layers.0.self_attn.q_b_proj.weight": (256, 48),
        "model.layers.0.self_attn.kv_a_proj_with_mqa.weight": (40, 64),
        "model.layers.0.mlp.experts.0.gate_proj.weight": (32, 64),
        "model.layers.0.mlp.gate.weight": (4, 64),
        "model.layers.0.input_layernorm.weight": (64,),
    }
    roles = roles_assign(mla, {"hidden_size": 64})
    assert sorted(b.name.split(".")[-2] for b in roles.layers[0].attn_in) == ["kv_a_proj_with_mqa", "q_a_proj"]
    assert [b.name.split(".")[-2] for b in roles.layers[0].mlp_in] == ["gate_proj"]

    gguf_names = {
        "token_embd.weight": (1000, 64), "blk.0.attn_q.weight": (64, 64), "blk.0.attn_k.weight": (32, 64),
        "blk.0.attn_v.weight": (32, 64), "blk.0.attn_norm.weight": (64,), "blk.0.ffn_norm.weight": (64,),
        "blk.0.ffn_gate_exps.weight": (4, 96, 64), "blk.0.ffn_up_exps.weight": (4, 96, 64),
        "blk.0.ffn_gate_inp.weight": (4, 64), "blk.0.ffn_down_exps.weight": (4, 64, 96),
    }
    roles = roles_assign(gguf_names, {"hidden_size": 64})
    assert len(roles.layers[0].mlp_in) == 8 and roles.layers[0].mlp_in[1].row_offset == 96
    assert [b.row_offset for b in roles.layers[0].mlp_out] == [0, 64, 128, 192]  # 4 experts x d rows
    assert roles.embedding == "token_embd.weight" and roles.layers[0].norm_post == "blk.0.ffn_norm.weight"

    bert = tm.bert_make(seed=1, d=64, f=128, layers=2)
    roles = roles_assign({k: v.shape for k, v in bert.tensors.items()}, bert.config)
    assert [b.name.split(".")[-2] for b in roles.layers[1].attn_in] == ["key", "query", "value"]
    assert [b.name for b in roles.layers[1].mlp_in] == ["encoder.layer.1.intermediate.dense.weight"]
    assert roles.embedding == "embeddings.word_embeddings.weight"
    assert [b.name for b in roles.layers[1].mlp_out] == ["encoder.layer.1.output.dense.weight"]


def test_renamed_tensors_fall_back_to_structure() -> None:
    model = tm.tensors_rename(tm.llama_make(seed=1, d=64, f=192, layers=3, heads=2, kv_heads=1))
    roles = roles_assign({k: v.shape for k, v in model.tensors.items()}, {})
    assert roles.method == "structure" and sorted(roles.layers) == [0, 1, 2]
    assert sorted(b.name for b in roles.layers[2].mlp_in) == ["trunk.2.fa.weight", "trunk.2.fb.weight"]
    assert "trunk.2.qx.weight" in {b.name for b in roles.layers[2].attn_in}
    assert roles.embedding == "vocab_table.weight"
    assert [b.name for b in roles.layers[2].mlp_out] == ["trunk.2.fc.weight"]


def test_attention_rows_are_spread_over_every_head_and_mlp_rows_over_every_expert() -> None:
    """A copy with permuted heads or experts must still share every sampled row."""
    from compliance.engine.lineage.fingerprint import _blocks_sample, _rows_in_block
    from compliance.engine.lineage.roles import MatrixBlock

    q = MatrixBlock("q", 0, 32 * 128, "attn")
    rows = _rows_in_block(q, 128, head_dim=128)
    assert len(rows) == 128 and sorted({int(r) // 128 for r in rows}) == list(range(32))
    assert all(int(r) % 128 < 4 for r in rows)  # the first 4 dimensions of each of the 32 heads
    experts = [MatrixBlock(f"e{e}.{m}", 0, 14336, f"expert:{e}") for e in range(8) for m in ("w1", "w3")]
    plan = _blocks_sample(experts, 512)
    assert len(plan) == 16 and {n for _, n in plan} == {32}
