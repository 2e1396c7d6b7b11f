"""Weight readers: strict safetensors headers, GGUF, model folders, byte-range reads."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from compliance.engine.weights import (
    BytesSource,
    CountingSource,
    LocalFileSource,
    WeightsFormatError,
    gguf_header_read,
    model_open,
    safetensors_header_read,
)
from tests.compliance.engine.lineage import tinymodels as tm


def _raw_safetensors(header: dict, data: bytes, *, length: int | None = None, prefix: bytes | None = None) -> bytes:
    raw = prefix if prefix is not None else json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


def _ok_header() -> dict:
    return {
        "a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
        "b": {"dtype": "F16", "shape": [4], "data_offsets": [16, 24]},
    }


def test_header_of_a_real_file_gives_absolute_offsets_and_metadata(tmp_path: Path) -> None:
    arrays = {"w": np.arange(12, dtype=np.float32).reshape(3, 4), "v": np.ones(5, dtype=np.float16)}
    path = tmp_path / "m.safetensors"
    save_file(arrays, str(path), metadata={"format": "np"})
    header = safetensors_header_read(LocalFileSource(path))
    assert header.metadata == {"format": "np"}
    assert header.tensors["w"].shape == (3, 4) and header.tensors["w"].dtype == "F32"
    info = header.tensors["w"]
    raw = path.read_bytes()[info.start:info.end]
    assert np.array_equal(np.frombuffer(raw, dtype="<f4").reshape(3, 4), arrays["w"])


BAD_FILES = {
    "truncated": (_raw_safetensors(_ok_header(), b"\0" * 20), "truncated"),
    "huge header length": (_raw_safetensors(_ok_header(), b"\0" * 24, length=2**63), "cap"),
    "header longer than file": (_raw_safetensors(_ok_header(), b"", length=5000), "truncated"),
    "no brace": (_raw_safetensors({}, b"", prefix=b"[1, 2, 3]"), "does not start"),
    "not utf-8": (_raw_safetensors({}, b"", prefix=b"{\"\xff\": 1}"), "UTF-8"),
    "duplicate key": (_raw_safetensors({}, b"\0" * 16, prefix=(
        b'{"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},'
        b' "a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}')), "twice"),
    "bad dtype": (_raw_safetensors({"a": {"dtype": "Q4", "shape": [4], "data_offsets": [0, 4]}}, b"\0" * 4), "unknown dtype"),
    "negative shape": (_raw_safetensors({"a": {"dtype": "U8", "shape": [-4], "data_offsets": [0, 4]}}, b"\0" * 4), "invalid shape"),
    "span mismatch": (_raw_safetensors({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}, b"\0" * 8), "offsets span"),
    "overlap": (_raw_safetensors({
        "a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
        "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}, b"\0" * 16), "overlaps"),
    "hole": (_raw_safetensors({
        "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
        "b": {"dtype": "F32", "shape": [2], "data_offsets": [16, 24]}}, b"\0" * 24), "hole"),
    "trailing bytes": (_raw_safetensors(_ok_header(), b"\0" * 40), "trailing"),
    "metadata not str": (_raw_safetensors({"__metadata__": {"x": 1}}, b""), "__metadata__"),
    "extra key": (_raw_safetensors({"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1], "x": 1}}, b"\0"), "exactly"),
    "shape overflow": (_raw_safetensors({"a": {"dtype": "F64", "shape": [2**40, 2**40], "data_offsets": [0, 8]}}, b"\0" * 8), "overflows"),
    "too short": (b"\x01\x02", "too short"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_malformed_headers_are_refused_with_a_reason(case: str) -> None:
    data, expected = BAD_FILES[case]
    with pytest.raises(WeightsFormatError) as err:
        safetensors_header_read(BytesSource(data, name="bad.safetensors"))
    assert "bad.safetensors" in str(err.value)
    assert expected in str(err.value)


def test_huge_header_length_reads_only_eight_bytes() -> None:
    source = CountingSource(BytesSource(_raw_safetensors(_ok_header(), b"\0" * 24, length=2**63), name="x"))
    with pytest.raises(WeightsFormatError):
        safetensors_header_read(source)
    assert source.bytes_read == 8


def test_row_reads_fetch_only_those_rows_and_decode_bf16(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    w = rng.standard_normal((64, 32)).astype(np.float32)
    tm.safetensors_write(tmp_path / "m.safetensors", {"w": w, "z": np.zeros(3, np.float32)}, "BF16")
    model = model_open(tmp_path / "m.safetensors")
    before = model.bytes_read
    rows = model.tensor("w", rows=[5, 6, 40])
    assert model.bytes_read - before == 3 * 32 * 2  # three bf16 rows, nothing else
    assert np.allclose(rows, w[[5, 6, 40]], rtol=1e-2, atol=1e-2)
    assert np.allclose(model.tensor("w", rows=slice(10, 12)), w[10:12], rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("dtype,tol", [("F32", 0.0), ("F16", 1e-3), ("BF16", 1e-2)])
def test_dtypes_decode_to_float32(tmp_path: Path, dtype: str, tol: float) -> None:
    w = np.linspace(-3, 3, 48, dtype=np.float32).reshape(6, 8)
    tm.safetensors_write(tmp_path / "m.safetensors", {"w": w}, dtype)
    out = model_open(tmp_path / "m.safetensors").tensor("w")
    assert out.dtype == np.float32 and out.shape == (6, 8)
    assert np.allclose(out, w, rtol=tol, atol=tol)


def test_sharded_folder_with_index_opens_all_shards(tmp_path: Path) -> None:
    model = tm.llama_make(seed=1, d=64, f=128, layers=2, heads=2, kv_heads=1)
    tm.model_write(model, tmp_path / "m", shards=3)
    opened = model_open(tmp_path / "m")
    assert set(opened.tensors) == set(model.tensors)
    assert len({ref.source.name for ref in opened.tensors.values()}) == 3
    assert opened.config["model_type"] == "llama" and "tokenizer.json" in opened.tokenizer_files


def test_shards_held_elsewhere_are_read_by_range_and_give_the_same_fingerprint(tmp_path: Path) -> None:
    """Object storage: the folder holds config, tokenizer and index; the shards are byte sources."""
    from compliance.engine.lineage import fingerprint_build

    model = tm.llama_make(seed=1, d=64, f=128, layers=2, heads=2, kv_heads=1)
    tm.model_write(model, tmp_path / "local", shards=2)
    remote_dir = tmp_path / "remote"
    remote_dir.mkdir()
    for path in (tmp_path / "local").iterdir():
        if path.suffix != ".safetensors":
            (remote_dir / path.name).write_bytes(path.read_bytes())

    def remote() -> dict:
        return {p.name: CountingSource(BytesSource(p.read_bytes(), name=p.name))
                for p in (tmp_path / "local").glob("*.safetensors")}

    opened = model_open(remote_dir, remote=remote())
    assert set(opened.tensors) == set(model.tensors)
    np.testing.assert_array_equal(opened.tensor("model.layers.0.mlp.up_proj.weight"),
                                  model_open(tmp_path / "local").tensor("model.layers.0.mlp.up_proj.weight"))
    local_fp = fingerprint_build(path=tmp_path / "local")
    remote_fp = fingerprint_build(path=remote_dir, remote=remote())
    assert remote_fp.meta["bytes_read"] == local_fp.meta["bytes_read"] > 0
    for index, layer in local_fp.layers.items():
        for family, rows in layer.families.items():
            np.testing.assert_array_equal(remote_fp.layers[index].families[family].rows, rows.rows)
    # A remote name is a plain file name of the folder, like an index entry.
    with pytest.raises(WeightsFormatError, match="plain file name"):
        model_open(remote_dir, remote={"../x.safetensors": BytesSource(b"")})


class _BatchingSource(BytesSource):
    """A source that, like object storage, takes several ranges at once; it records each batch."""

    def __init__(self, data: bytes, name: str) -> None:
        super().__init__(data, name=name)
        self.batches: list[list[tuple[int, int]]] = []

    def read_many(self, ranges):
        self.batches.append(list(ranges))
        return [self.data[o:o + n] for o, n in ranges]


def test_row_runs_go_to_a_batching_source_together_bounded_and_give_the_same_rows(tmp_path, monkeypatch):
    """Rows that are not adjacent (the embedding's sampled tokens, the first rows of each attention
    head) are several ranges: a source with `read_many` (object storage, which then sends them at
    once) gets them together, in groups that close once they hold READ_MANY_BYTES, and the rows
    are the same bit for bit as read range by range, whatever the order they were asked in."""
    from compliance.engine import weights

    rng = np.random.default_rng(7)
    w = rng.standard_normal((300, 32)).astype(np.float32)
    tm.safetensors_write(tmp_path / "m.safetensors", {"w": w, "v": w[:80] * 2}, "BF16")
    raw = (tmp_path / "m.safetensors").read_bytes()
    monkeypatch.setattr(weights, "READ_MANY_BYTES", 1024)
    source = _BatchingSource(raw, name="m.safetensors")
    (tmp_path / "remote").mkdir()
    (tmp_path / "remote" / "config.json").write_text("{}")
    remote = model_open(tmp_path / "remote", remote={"m.safetensors": CountingSource(source)})
    local = model_open(tmp_path / "m.safetensors")
    rows = [290, 3, 4, 5, 40, 41, 100, 7, 299, 150, 151, 152, 153, 0, 200, 201, 250, 3]
    opened_remote, opened_local = remote.bytes_read, local.bytes_read
    np.testing.assert_array_equal(remote.tensor("w", rows=rows), local.tensor("w", rows=rows))
    # 10 runs of 64-byte rows (0, 3-5, 7, 40-41, 100, 150-153, 200-201, 250, 290, 299), in groups.
    ranges = [r for batch in source.batches for r in batch]
    assert len(ranges) == 10 and len(source.batches) >= 2 and any(len(b) > 1 for b in source.batches)
    assert all(sum(n for _, n in b[:-1]) < 1024 for b in source.batches)
    assert remote.bytes_read - opened_remote == local.bytes_read - opened_local == 17 * 32 * 2
    # Rows of several tensors asked together (a family's blocks) share the batches.
    source.batches.clear()
    monkeypatch.setattr(weights, "READ_MANY_BYTES", 1 << 20)
    both = remote.tensors_rows([("w", [0, 9]), ("v", [1, 2, 60]), ("w", slice(20, 22))])
    for got, (name, rows) in zip(both, [("w", [0, 9]), ("v", [1, 2, 60]), ("w", slice(20, 22))], strict=True):
        np.testing.assert_array_equal(got, local.tensor(name, rows=rows))
    assert len(source.batches) == 1 and len(source.batches[0]) == 5


def test_index_pointing_outside_the_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    save_file({"w": np.zeros(2, np.float32)}, str(folder / "a.safetensors"))
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"w": "../a.safetensors"}}))
    with pytest.raises(WeightsFormatError, match="plain file name"):
        model_open(folder)


def test_pickle_checkpoints_are_never_loaded(tmp_path: Path) -> None:
    only = tmp_path / "only"
    only.mkdir()
    (only / "pytorch_model.bin").write_bytes(b"\x80\x02cos\nsystem\n")
    with pytest.raises(WeightsFormatError, match="never loaded"):
        model_open(only)
    with pytest.raises(WeightsFormatError, match="never loaded"):
        model_open(only / "pytorch_model.bin")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    save_file({"w": np.zeros(2, np.float32)}, str(mixed / "model.safetensors"))
    (mixed / "pytorch_model.bin").write_bytes(b"\x80\x02")
    opened = model_open(mixed)
    assert [s["file"] for s in opened.skipped] == ["pytorch_model.bin"]
    assert "unsafe" in opened.skipped[0]["reason"]


@pytest.mark.parametrize("qtype,tol", [("F16", 2e-3), ("Q8_0", 3e-2)])
def test_gguf_rows_come_back_in_hugging_face_order(tmp_path: Path, qtype: str, tol: float) -> None:
    model = tm.llama_make(seed=3, d=64, f=128, layers=2, heads=4, kv_heads=2)
    path = tm.gguf_write(model, tmp_path / "m.gguf", qtype=qtype)
    header = gguf_header_read(path)
    assert header.architecture == "llama"
    assert header.tensors["blk.0.ffn_up.weight"].shape == (128, 64)
    assert header.metadata["tokenizer.ggml.tokens"][:2] == ["<s>", "</s>"]
    opened = model_open(path)
    q = opened.tensor("blk.1.attn_q.weight")  # llama.cpp permuted these rows for its rotary layout
    k = opened.tensor("blk.1.attn_k.weight", rows=[0, 17, 31])
    scale = float(np.abs(model.tensors["model.layers.1.self_attn.q_proj.weight"]).max())
    assert np.allclose(q, model.tensors["model.layers.1.self_attn.q_proj.weight"], atol=tol * scale)
    assert np.allclose(k, model.tensors["model.layers.1.self_attn.k_proj.weight"][[0, 17, 31]], atol=tol * scale)
    assert opened.config["hidden_size"] == 64 and opened.config["num_hidden_layers"] == 2


def test_truncated_or_garbage_gguf_is_a_format_error(tmp_path: Path) -> None:
    model = tm.llama_make(seed=3, d=64, f=128, layers=1, heads=2, kv_heads=1)
    path = tm.gguf_write(model, tmp_path / "m.gguf")
    data = path.read_bytes()
    (tmp_path / "cut.gguf").write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsFormatError, match="cut.gguf"):
        gguf_header_read(tmp_path / "cut.gguf")
    (tmp_path / "junk.gguf").write_bytes(b"GGUF" + b"\xff" * 200)
    with pytest.raises(WeightsFormatError, match="junk.gguf"):
        gguf_header_read(tmp_path / "junk.gguf")
    (tmp_path / "nope.gguf").write_bytes(b"NOPE" * 50)
    with pytest.raises(WeightsFormatError, match="magic"):
        gguf_header_read(tmp_path / "nope.gguf")


def test_fingerprint_reads_a_tiny_share_of_a_large_sparse_checkpoint(tmp_path: Path) -> None:
    """A 2.2 GB (apparent size) Llama-shaped checkpoint: real header, sparse data, no disk used."""
    from compliance.engine.lineage import fingerprint_build

    d, f, layers, vocab = 2048, 8192, 24, 32000
    header: dict = {}
    offset = 0

    def add(name: str, shape: list[int]) -> None:
        nonlocal offset
        n = int(np.prod(shape)) * 2
        header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n

    add("model.embed_tokens.weight", [vocab, d])
    for i in range(layers):
        p = f"model.layers.{i}."
        add(p + "input_layernorm.weight", [d])
        for n, rows in (("q_proj", d), ("k_proj", 512), ("v_proj", 512), ("o_proj", d)):
            add(p + f"self_attn.{n}.weight", [rows, d])
        add(p + "post_attention_layernorm.weight", [d])
        add(p + "mlp.gate_proj.weight", [f, d])
        add(p + "mlp.up_proj.weight", [f, d])
        add(p + "mlp.down_proj.weight", [d, f])
    raw = json.dumps(header).encode()
    folder = tmp_path / "big"
    folder.mkdir()
    path = folder / "model.safetensors"
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", len(raw)) + raw)
        handle.truncate(8 + len(raw) + offset)
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": d}))
    fp = fingerprint_build(path=folder)
    total = fp.meta["total_bytes"]
    assert total > 2e9
    assert fp.meta["bytes_read"] < 0.06 * total  # 16 of 24 layers sampled: ~5 % here, 0.1-0.3 % at 100B
    assert len(fp.layers) == 16


def test_gguf_type_without_a_dequantiser_is_reported_not_guessed(tmp_path: Path) -> None:
    import gguf

    qtype = gguf.GGMLQuantizationType.Q8_K  # the gguf package has no numpy dequantiser for it
    block, type_size = gguf.GGML_QUANT_SIZES[qtype]
    writer = gguf.GGUFWriter(str(tmp_path / "q.gguf"), "llama")
    writer.add_tensor("blk.0.ffn_up.weight", np.zeros((4, 2 * type_size), dtype=np.uint8), raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    opened = model_open(tmp_path / "q.gguf")
    assert opened.tensors["blk.0.ffn_up.weight"].shape == (4, 2 * block)
    with pytest.raises(WeightsFormatError, match="cannot be dequantised"):
        opened.tensor("blk.0.ffn_up.weight", rows=[0])


def test_deeply_nested_header_is_a_format_error() -> None:
    data = _raw_safetensors({}, b"", prefix=b"{\"a\":" + b"[" * 100_000 + b"]" * 100_000 + b"}")
    with pytest.raises(WeightsFormatError, match="bad.safetensors"):
        safetensors_header_read(BytesSource(data, name="bad.safetensors"))


def test_fp8_weights_are_decoded_with_their_block_scales(tmp_path: Path) -> None:
    """DeepSeek-V3 layout: F8_E4M3 weights times a float32 `weight_scale_inv` per 128 x 128 block."""
    model = tm.llama_make(seed=5, d=256, f=384, layers=1, heads=2, kv_heads=1)
    folder = tm.fp8_write(model, tmp_path / "fp8", block=128)
    opened = model_open(folder)
    name = "model.layers.0.mlp.up_proj.weight"
    assert opened.tensors[name].dtype == "F8_E4M3"
    original = model.tensors[name]
    rows = opened.tensor(name, rows=[0, 200, 383])
    assert np.corrcoef(rows.ravel(), original[[0, 200, 383]].ravel())[0, 1] > 0.99  # FP8 keeps 3 mantissa bits
    whole = opened.tensor(name)
    assert whole.shape == original.shape
    assert np.abs(whole - original).max() < 0.08 * np.abs(original).max()


def test_a_gguf_header_read_by_range_is_the_local_parse_and_reads_only_the_header(tmp_path: Path) -> None:
    from compliance.engine.weights import GGUF_HEADER_FIRST_READ, gguf_header_read_source

    model = tm.llama_make(seed=3, d=256, f=1024, layers=4, heads=4, kv_heads=2)
    path = tm.gguf_write(model, tmp_path / "m.gguf")
    local = gguf_header_read(path)
    source = LocalFileSource(path)
    ranged = gguf_header_read_source(source)
    assert ranged.metadata == local.metadata and ranged.tensors == local.tensors
    assert ranged.data_start == local.data_start and ranged.file_size == path.stat().st_size
    # One 1 MiB prefix (plus the magic) holds this header; the tensors were never fetched.
    assert source.bytes_read <= GGUF_HEADER_FIRST_READ + 4 < path.stat().st_size
    opened = model_open(tmp_path / "elsewhere" / "m.gguf", remote={"m.gguf": LocalFileSource(path)})
    assert np.allclose(opened.tensor("blk.1.ffn_up.weight", rows=[3]), model_open(path).tensor(
        "blk.1.ffn_up.weight", rows=[3]))


def test_a_gguf_header_larger_than_the_first_read_is_fetched_whole_before_it_counts(tmp_path: Path,
                                                                                     monkeypatch) -> None:
    from compliance.engine import weights

    model = tm.llama_make(seed=3, d=64, f=128, layers=2, heads=4, kv_heads=2)
    path = tm.gguf_write(model, tmp_path / "m.gguf")
    local = gguf_header_read(path)
    # A first read of 64 bytes cuts the header: zeros from the hole must not decide, the prefix grows.
    monkeypatch.setattr(weights, "GGUF_HEADER_FIRST_READ", 64)
    source = LocalFileSource(path)
    assert weights.gguf_header_read_source(source).tensors == local.tensors
    assert local.data_start <= source.bytes_read - 4 < 2 * local.data_start + 64


def test_truncated_or_garbage_gguf_read_by_range_is_a_format_error(tmp_path: Path) -> None:
    from compliance.engine.weights import gguf_header_read_source

    model = tm.llama_make(seed=3, d=64, f=128, layers=1, heads=2, kv_heads=1)
    data = tm.gguf_write(model, tmp_path / "m.gguf").read_bytes()
    for name, blob, message in (("cut.gguf", data[: len(data) // 2], "cut.gguf"),
                                ("junk.gguf", b"GGUF" + b"\xff" * 200, "junk.gguf"),
                                ("nope.gguf", b"NOPE" * 50, "magic")):
        (tmp_path / name).write_bytes(blob)
        with pytest.raises(WeightsFormatError, match=message):
            gguf_header_read_source(LocalFileSource(tmp_path / name))
