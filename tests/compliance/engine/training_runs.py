"""Training-evidence bundles built with numpy and safetensors in the real Hugging Face Llama layout.

An honest run starts from what transformers' LlamaPreTrainedModel._init_weights draws (Linear and
Embedding normal(0, initializer_range), RMSNorm gains 1) and moves by small structured updates
(a low-rank step plus noise, gains drifting from 1), as optimiser steps do. Registered models are
tinymodels' "trained-like" Llama models of the same shape. Also used by bench/training_evidence.py.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from tests.compliance.engine.lineage import tinymodels as tm

SHAPE = {"d": 256, "f": 512, "layers": 4, "heads": 4, "kv_heads": 2}
INIT_RANGE = 0.02


def llama_init(*, seed: int, d: int = SHAPE["d"], f: int = SHAPE["f"], layers: int = SHAPE["layers"],
               heads: int = SHAPE["heads"], kv_heads: int = SHAPE["kv_heads"]) -> tm.TinyModel:
    """Step 0 as transformers draws it for LlamaForCausalLM (initializer_range 0.02)."""
    shape_of = tm.llama_make(seed=0, d=d, f=f, layers=layers, heads=heads, kv_heads=kv_heads)
    rng = np.random.default_rng(seed)
    tensors = {}
    for name, w in shape_of.tensors.items():
        if w.ndim == 1:
            tensors[name] = np.ones_like(w)
        else:
            tensors[name] = rng.normal(0.0, INIT_RANGE, w.shape).astype(np.float32)
    config = {**shape_of.config, "initializer_range": INIT_RANGE}
    return tm.TinyModel("llama", tensors, config, shape_of.vocab, shape_of.merges)


def train_step(m: tm.TinyModel, *, seed: int, size: float = 0.05) -> tm.TinyModel:
    """A stretch of training: every matrix moves by a rank-4 update plus noise of `size` x its spread,
    and gains drift from their value."""
    rng = np.random.default_rng(seed)
    out = tm._copy(m)
    for name, w in out.tensors.items():
        if w.ndim == 1:
            out.tensors[name] = (w + rng.normal(0, 0.01, w.shape)).astype(np.float32)
            continue
        std = float(w.std())
        low = rng.standard_normal((w.shape[0], 4)) @ rng.standard_normal((4, w.shape[1]))
        low *= size * std * math.sqrt(w.size) / max(np.linalg.norm(low), 1e-12)
        out.tensors[name] = (w + low + rng.normal(0, size * std, w.shape)).astype(np.float32)
    return out


def run_make(*, seed: int, steps: int = 4) -> list[tm.TinyModel]:
    """init, then `steps - 1` checkpoints each a small update of the previous."""
    run = [llama_init(seed=seed)]
    for i in range(1, steps):
        run.append(train_step(run[-1], seed=seed * 1000 + i))
    return run


def registered_make(seed: int = 1) -> tm.TinyModel:
    """A trained-like model of the same shape, standing for a registered model."""
    return tm.llama_make(seed=seed, **SHAPE)


def forged_init(registered: tm.TinyModel, *, seed: int) -> tm.TinyModel:
    """A registered model dressed as step 0: norm gains reset to 1 and a little noise on the matrices."""
    out = tm._copy(registered)
    rng = np.random.default_rng(seed)
    for name, w in out.tensors.items():
        if w.ndim == 1:
            out.tensors[name] = np.ones_like(w)
        else:
            out.tensors[name] = (w + rng.normal(0, 0.05 * float(w.std()), w.shape)).astype(np.float32)
    return out


def log_rows(steps: list[int], vocab: int, *, start: float | None = None, tokens_per_step: int = 4096) -> list[dict]:
    """A log every 10 steps up to the last checkpoint, loss falling from ln(vocab) (or `start`)."""
    first = math.log(vocab) + 0.02 if start is None else start
    rows = []
    for step in range(0, steps[-1] + 1, 10):
        loss = 2.5 + (first - 2.5) * math.exp(-step / max(steps[-1], 1) * 2)
        rows.append({"step": step, "loss": round(loss, 4), "lr": 3e-4, "tokens": step * tokens_per_step})
    return rows


def bundle_write(root: Path, checkpoints: list[tuple[int, object]], *, log: list[dict] | None = None,
                 manifest_extra: dict | None = None) -> Path:
    """Write a bundle: each checkpoint a TinyModel (HF folder, BF16 safetensors) or a Path to a
    fingerprint bundle (copied to checkpoints/step_N/fingerprint.npz)."""
    root.mkdir(parents=True, exist_ok=True)
    entries = []
    vocab = None
    for step, ckpt in checkpoints:
        folder = root / "checkpoints" / f"step_{step}"
        if isinstance(ckpt, tm.TinyModel):
            tm.model_write(ckpt, folder)
            vocab = ckpt.vocab
        else:
            folder.mkdir(parents=True)
            (folder / "fingerprint.npz").write_bytes(Path(ckpt).read_bytes())
        entries.append({"step": step, "path": f"checkpoints/step_{step}"})
    vocab = vocab or tm.vocab_default()
    tm.tokenizer_json_write(root / "tokenizer.json", vocab, tm.merges_default(vocab))
    rows = log if log is not None else log_rows([s for s, _ in checkpoints], len(vocab))
    (root / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    manifest = {"format": "training-evidence/1", "claim": "from_scratch", "tokenizer": "tokenizer.json",
                "checkpoints": entries, "log": "train_log.jsonl", **(manifest_extra or {})}
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return root
