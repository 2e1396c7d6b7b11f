"""A split GGUF (llama.cpp's gguf-split layout, written here by the gguf package itself) is one
model: opened from its first file it holds every tensor of every file, with the first file's
metadata; a missing or misnamed file is a clear error, never a silently partial model."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest

from compliance.engine.lineage.fingerprint import fingerprint_build
from compliance.engine.weights import LocalFileSource, WeightsFormatError, gguf_split_names, model_open
from tests.compliance.engine.lineage import tinymodels as tm


def _same(left, right) -> bool:
    """Equal all the way down: objects attribute by attribute, dicts key by key, arrays element by element."""
    if dataclasses.is_dataclass(left):
        return type(left) is type(right) and all(_same(getattr(left, f.name), getattr(right, f.name))
                                                  for f in dataclasses.fields(left))
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(_same(left[k], right[k]) for k in left)
    if isinstance(left, np.ndarray):
        return isinstance(right, np.ndarray) and np.array_equal(left, right)
    if isinstance(left, (list, tuple)):
        return len(left) == len(right) and all(_same(x, y) for x, y in zip(left, right))
    if hasattr(left, "__dict__") and not isinstance(left, type):
        return type(left) is type(right) and _same(vars(left), vars(right))
    return left == right


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> tuple[Path, Path, tm.TinyModel]:
    model = tm.llama_make(seed=3, d=64, f=128, layers=4, heads=4, kv_heads=2)
    root = tmp_path_factory.mktemp("gguf")
    (root / "one").mkdir()
    single = tm.gguf_write(model, root / "one" / "m.gguf")
    (root / "split").mkdir()
    first = tm.gguf_write(model, root / "split" / "m.gguf", split_max_tensors=12)
    return single, first, model


def test_the_gguf_package_writes_what_the_names_say(written):
    _single, first, _model = written
    names = sorted(p.name for p in first.parent.iterdir())
    assert first.name == "m-00001-of-00004.gguf" and names == gguf_split_names(first.name)
    assert gguf_split_names("m-00003-of-00004.GGUF") == [f"m-{i:05d}-of-00004.GGUF" for i in range(1, 5)]
    assert gguf_split_names("m.gguf") is None and gguf_split_names("m-00005-of-00004.gguf") is None


def test_a_split_gguf_opens_as_the_whole_model(written):
    single, first, model = written
    whole, split = model_open(single), model_open(first)
    assert set(split.tensors) == set(whole.tensors) and len(split.sources) == 4
    assert {t.source.name for t in split.tensors.values()} == {p.name for p in first.parent.iterdir()}
    assert split.config == whole.config and split.config["num_hidden_layers"] == 4
    assert split.gguf_metadata["tokenizer.ggml.tokens"] == whole.gguf_metadata["tokenizer.ggml.tokens"]
    last = max(split.tensors, key=lambda n: split.tensors[n].source.name)  # a tensor of the last file
    assert split.tensors[last].source.name == "m-00004-of-00004.gguf"
    assert np.array_equal(split.tensor(last), whole.tensor(last))
    q = split.tensor("blk.3.attn_q.weight")  # rotary rows put back in Hugging Face order in a later file too
    scale = float(np.abs(model.tensors["model.layers.3.self_attn.q_proj.weight"]).max())
    assert np.allclose(q, model.tensors["model.layers.3.self_attn.q_proj.weight"], atol=2e-3 * scale)
    assert split.total_bytes == sum(p.stat().st_size for p in first.parent.iterdir())


def test_a_split_gguf_fingerprints_as_the_single_file_does(written):
    single, first, _model = written
    a, b = fingerprint_build(path=single), fingerprint_build(path=first)
    assert sorted(a.layers) == sorted(b.layers) == [0, 1, 2, 3]
    for index in a.layers:
        assert _same(a.layers[index], b.layers[index]), index
    assert a.embedding_tokens == b.embedding_tokens and np.array_equal(a.embedding_rows, b.embedding_rows)


def test_a_split_gguf_read_by_range_from_object_storage(written):
    _single, first, _model = written
    remote = {p.name: LocalFileSource(p) for p in first.parent.iterdir()}
    opened = model_open(Path("/nonexistent-view") / first.name, remote=remote)
    assert len(opened.tensors) == len(model_open(first).tensors) and len(opened.sources) == 4


def test_a_missing_or_misnamed_file_is_a_clear_error(written, tmp_path):
    _single, first, _model = written
    folder = tmp_path / "split"
    shutil.copytree(first.parent, folder)
    (folder / "m-00003-of-00004.gguf").unlink()
    with pytest.raises(WeightsFormatError, match=r"m-00001-of-00004.gguf: split GGUF model of 4 files; "
                                                 r"missing: m-00003-of-00004.gguf"):
        model_open(folder / "m-00001-of-00004.gguf")
    with pytest.raises(WeightsFormatError, match=r"file 2 of 4 of a split GGUF model"):
        model_open(folder / "m-00002-of-00004.gguf")
    # The first file renamed: its metadata still says it is split, so it is not read as the whole model.
    shutil.copy(folder / "m-00001-of-00004.gguf", folder / "renamed.gguf")
    with pytest.raises(WeightsFormatError, match=r"renamed.gguf: file 1 of 4 of a split GGUF model"):
        model_open(folder / "renamed.gguf")
    # A later file swapped for another model's file of the same place: its split keys are checked.
    shutil.copy(folder / "m-00004-of-00004.gguf", folder / "m-00003-of-00004.gguf")
    with pytest.raises(WeightsFormatError, match=r"m-00003-of-00004.gguf: its split.no / split.count"):
        model_open(folder / "m-00001-of-00004.gguf")
