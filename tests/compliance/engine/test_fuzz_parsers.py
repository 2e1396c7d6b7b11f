"""Fuzz every intake parser: the only allowed outcomes are a report or the module's own error.

Fixed budget and derandomised, so a run is reproducible and fast. Inputs are
random bytes and byte-level mutations (flip, cut, splice) of valid files, the
shapes that reach deepest into each parser. Every crash found here becomes a
regression test at the bottom of this file.
"""

from __future__ import annotations

import atexit
import io
import shutil
import pickle
import tarfile
import tempfile
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from compliance.engine import weights
from compliance.engine.archives import ArchiveError, archive_inspect, archive_iter_members
from compliance.engine.intake import artifact_inspect, kind_detect
from compliance.engine.intake_common import IntakeLimits
from compliance.engine.pickles import PickleScanError, npy_object_data_offset, pickle_looks_like, pickle_scan
from compliance.engine.structured import StructuredError, json_parse, text_inspect, toml_parse, yaml_parse
from tests.compliance.engine import hostile

FUZZ = settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
# Parsers that need a file on disk get fewer examples: each writes one.
FUZZ_FILES = settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
# Small limits so fuzzed sizes reach the caps quickly.
LIMITS = IntakeLimits(max_expanded_bytes=4 * 1024 * 1024, max_members=200, max_depth=2, max_json_bytes=1024 * 1024)

_SCRATCH = Path(tempfile.mkdtemp(prefix="intake-fuzz-"))
atexit.register(shutil.rmtree, _SCRATCH, ignore_errors=True)


def _seed_files() -> dict[str, bytes]:
    scratch = _SCRATCH / "seeds"
    scratch.mkdir(exist_ok=True)
    zip_buf = io.BytesIO()
    with zipfile.ZipFile(zip_buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a/readme.txt", "hello " * 50)
        archive.writestr("data.pkl", hostile.pickle_torch_state_dict())
    tar_buf = io.BytesIO()
    with tarfile.open(fileobj=tar_buf, mode="w:gz", format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo("src/ünïcode.py")
        info.size = 12
        archive.addfile(info, io.BytesIO(b"print('hi')\n"))
    shards = io.BytesIO()
    with zipfile.ZipFile(shards, "w") as archive:
        archive.writestr("model.safetensors", hostile.safetensors_valid(scratch / "shard.safetensors").read_bytes())
    npy = io.BytesIO()
    np.save(npy, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    return {
        "npy_object": npy.getvalue(),
        "zip": zip_buf.getvalue(),
        "zip_safetensors": shards.getvalue(),
        "tar_gz": tar_buf.getvalue(),
        "tar_zst": hostile.tar_zst_write(scratch / "s.tar.zst", {"x.txt": b"x" * 300}).read_bytes(),
        "safetensors": hostile.safetensors_valid(scratch / "s.safetensors").read_bytes(),
        "gguf": hostile.gguf_valid(scratch / "s.gguf").read_bytes(),
        "pickle": hostile.pickle_torch_state_dict(),
        "pickle_p4": pickle.dumps(OrderedDict(a=[1, 2.5, "x", b"y"], b=(None, True)), protocol=4),
        "json": b'{"architectures": ["LlamaForCausalLM"], "hidden_size": 4096, "rope_scaling": {"type": "yarn"}}',
    }


SEEDS = _seed_files()


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """Flip, overwrite, cut or splice bytes of a valid file."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 6))):
        action = draw(st.sampled_from(["flip", "set", "cut", "insert", "truncate"]))
        if not data:
            break
        pos = draw(st.integers(0, len(data) - 1))
        if action == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif action == "set":
            data[pos] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80, ord("{"), ord("."), ord("/")]))
        elif action == "cut":
            del data[pos:pos + draw(st.integers(1, 64))]
        elif action == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        else:
            del data[pos:]
    return bytes(data)


def _file(data: bytes, name: str) -> Path:
    path = _SCRATCH / name
    path.write_bytes(data)
    return path


# --------------------------------------------------------------------------- pickles

@FUZZ
@given(st.one_of(st.binary(max_size=512), mutated(SEEDS["pickle"]), mutated(SEEDS["pickle_p4"])))
def test_fuzz_pickle_scan(data: bytes) -> None:
    try:
        report = pickle_scan(stream=io.BytesIO(data), name="fuzz.pkl", limits=LIMITS)
    except PickleScanError:
        return
    assert any(f.code == "pickle_format" for f in report.findings)
    pickle_looks_like(head=data)


@FUZZ
@given(mutated(SEEDS["npy_object"]))
def test_fuzz_npy_header(data: bytes) -> None:
    try:
        offset = npy_object_data_offset(head=data)
    except PickleScanError:
        return
    if offset is not None:
        try:
            pickle_scan(stream=io.BytesIO(data[offset:]), limits=LIMITS)
        except PickleScanError:
            pass


# --------------------------------------------------------------------------- archives

def _archive_outcome(path: Path) -> None:
    try:
        report = archive_inspect(path=path, limits=LIMITS)
    except ArchiveError:
        pass
    else:
        report.to_dict()
    try:
        for member in archive_iter_members(path=path, limits=LIMITS, strict=False):
            member.reader.read()
    except ArchiveError:
        pass


@FUZZ_FILES
@given(st.one_of(mutated(SEEDS["zip"]), mutated(SEEDS["zip_safetensors"])))
def test_fuzz_zip(data: bytes) -> None:
    _archive_outcome(_file(data, "fuzz.zip"))


@FUZZ_FILES
@given(st.one_of(mutated(SEEDS["tar_gz"]), mutated(SEEDS["tar_zst"])))
def test_fuzz_compressed_tar(data: bytes) -> None:
    _archive_outcome(_file(data, "fuzz.tar.x"))


@FUZZ_FILES
@given(st.binary(min_size=0, max_size=2048).map(lambda b: b"PK\x03\x04" + b))
def test_fuzz_zip_random_body(data: bytes) -> None:
    _archive_outcome(_file(data, "fuzz2.zip"))


# --------------------------------------------------------------------------- structured

@FUZZ
@given(st.one_of(st.binary(max_size=512), mutated(SEEDS["json"]), st.text(max_size=200).map(str.encode)))
def test_fuzz_structured(data: bytes) -> None:
    for parse in (json_parse, yaml_parse, toml_parse):
        try:
            parse(data=data, limits=LIMITS).to_dict()
        except StructuredError:
            pass
    text_inspect(data=data).to_dict()


# --------------------------------------------------------------------------- weights (the other helper's readers)

@FUZZ
@given(st.one_of(st.binary(max_size=256), mutated(SEEDS["safetensors"])))
@example(b"\x00\x00\x00\x00\x00\x00\x00\x80{}")
def test_fuzz_safetensors_header_read(data: bytes) -> None:
    try:
        weights.safetensors_header_read(weights.BytesSource(data, name="fuzz.safetensors"))
    except weights.WeightsFormatError:
        pass


@FUZZ_FILES
@given(mutated(SEEDS["gguf"]))
def test_fuzz_gguf_header_read(data: bytes) -> None:
    try:
        weights.gguf_header_read(_file(data, "fuzz.gguf"))
    except weights.WeightsFormatError:
        pass


def _gguf_split_seed() -> tuple[bytes, bytes]:
    """A real two-file split GGUF, written by the gguf package's own splitter."""
    import gguf

    folder = _SCRATCH / "split-seed"
    folder.mkdir(exist_ok=True)
    writer = gguf.GGUFWriter(str(folder / "m.gguf"), "llama", split_max_tensors=1)
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.ones((4, 8), np.float32))
    writer.add_tensor("output.weight", np.ones((4, 8), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return (folder / "m-00001-of-00002.gguf").read_bytes(), (folder / "m-00002-of-00002.gguf").read_bytes()


GGUF_SPLIT = _gguf_split_seed()


@FUZZ_FILES
@given(st.sampled_from([0, 1]), st.data())
def test_fuzz_split_gguf_open(which: int, data: st.DataObject) -> None:
    """Either file of a split GGUF mutated: the model opens whole or the error is the module's own."""
    parts = list(GGUF_SPLIT)
    parts[which] = data.draw(mutated(parts[which]))
    folder = _SCRATCH / "split"
    folder.mkdir(exist_ok=True)
    for number, part in enumerate(parts, start=1):
        (folder / f"m-{number:05d}-of-00002.gguf").write_bytes(part)
    try:
        opened = weights.model_open(folder / "m-00001-of-00002.gguf")
    except weights.WeightsFormatError:
        return
    sizes = {f"m-{n:05d}-of-00002.gguf": len(part) for n, part in enumerate(parts, start=1)}
    for tensor in opened.tensors.values():  # every tensor read from one of the files, inside it
        assert 0 <= tensor.start <= tensor.end <= sizes[tensor.source.name]


# --------------------------------------------------------------------------- the whole intake

@FUZZ_FILES
@given(st.one_of(*(mutated(seed) for seed in SEEDS.values()), st.binary(max_size=256)))
def test_fuzz_artifact_inspect_never_raises(data: bytes) -> None:
    path = _file(data, "fuzz.upload")
    kind_detect(path=path)
    report = artifact_inspect(path=path, limits=LIMITS)
    assert report.verdict in ("accepted", "quarantined", "rejected")
    # artifact_inspect turns any unexpected exception into this finding
    # (defence in depth); under fuzzing it must never be needed.
    assert "inspection_failed" not in [f.code for f in report.findings], report.to_dict()
    report.to_dict()


# --------------------------------------------------------------------------- regressions found by fuzzing

@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"\x80\x02h\x00.", id="binget-before-any-put"),
    ],
)
def test_regression_pickle(data: bytes) -> None:
    with pytest.raises(PickleScanError):
        pickle_scan(stream=io.BytesIO(data))


