"""artifact_inspect end to end: hashing, kind from bytes, verdicts on the hostile corpus, model folders, the command."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

from tests.shared import shared_data

import pytest

from compliance.engine.intake import (
    ArtifactNotFoundError,
    UploadTooLargeError,
    artifact_inspect,
    kind_detect,
    stream_hash_copy,
)
from compliance.engine.intake_common import IntakeLimits, MiB
from tests.compliance.engine import hostile

REPO = Path(__file__).resolve().parents[3]
MIXTRAL = ("model-configs", "Mixtral-8x7B-v0.1")


def codes(report) -> list[str]:
    return [f.code for f in report.findings]


# --------------------------------------------------------------------------- hashing

def test_stream_hash_copy_matches_hashlib_and_copies(tmp_path: Path) -> None:
    data = os.urandom(3 * MiB + 17)
    out = io.BytesIO()
    digest, size = stream_hash_copy(src=io.BytesIO(data), dst=out, limit_bytes=10 * MiB)
    assert (digest, size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert out.getvalue() == data


def test_stream_hash_copy_works_without_readinto() -> None:
    class ChunkedUpload:  # like a web framework's upload object: read() only
        def __init__(self, data: bytes) -> None:
            self._stream = io.BytesIO(data)

        def read(self, n: int) -> bytes:
            return self._stream.read(min(n, 1000))

    digest, size = stream_hash_copy(src=ChunkedUpload(b"x" * 5000), dst=None, limit_bytes=10_000, chunk=4096)
    assert digest == hashlib.sha256(b"x" * 5000).hexdigest() and size == 5000


def test_stream_hash_copy_stops_at_the_limit_without_writing_past_it() -> None:
    out = io.BytesIO()
    with pytest.raises(UploadTooLargeError, match="2,097,152-byte limit"):
        stream_hash_copy(src=io.BytesIO(bytes(5 * MiB)), dst=out, limit_bytes=2 * MiB, chunk=MiB)
    assert len(out.getvalue()) <= 2 * MiB


# --------------------------------------------------------------------------- kinds

@pytest.fixture
def corpus(tmp_path: Path) -> dict[str, Path]:
    """One file per detectable kind, named misleadingly (.bin) so names cannot help."""
    made: dict[str, Path] = {}

    def put(kind: str, data: bytes) -> None:
        path = tmp_path / f"{kind}.bin"
        path.write_bytes(data)
        made[kind] = path

    made["safetensors"] = hostile.safetensors_valid(tmp_path / "safetensors.bin")
    made["gguf"] = hostile.gguf_valid(tmp_path / "gguf.bin")
    made["pytorch_zip"] = hostile.zip_torch_checkpoint(tmp_path / "pytorch_zip.bin", hostile.pickle_torch_state_dict())
    made["zip"] = hostile.zip_nested(tmp_path / "zip.bin", depth=1)
    made["tar"] = hostile.tar_zst_write(tmp_path / "t.zst", {"a.txt": b"a"})  # placeholder, replaced below
    tar_path = tmp_path / "tar.bin"
    import tarfile

    with tarfile.open(tar_path, "w") as archive:
        info = tarfile.TarInfo("a.txt")
        info.size = 1
        archive.addfile(info, io.BytesIO(b"a"))
    made["tar"] = tar_path
    put("tar_gz", hostile.gzip_bytes(tar_path.read_bytes()))
    made["tar_zst"] = hostile.tar_zst_write(tmp_path / "tar_zst.bin", {"a.txt": b"a"})
    put("gzip", hostile.gzip_bytes(b"hello world\n" * 10))
    import zstandard

    put("zstd", zstandard.ZstdCompressor().compress(b"hello world\n" * 10))
    put("pickle", hostile.pickle_torch_state_dict())
    put("json", shared_data(*MIXTRAL, "config.json").read_bytes())
    put("yaml", b"model:\n  layers: 32\n  heads: [8, 8]\n")
    put("toml", b'[project]\nname = "demo"\nversion = "1.0"\n')
    put("markdown", b"---\nlicense: apache-2.0\n---\n# Model card\n\nTrained from scratch.\n")
    put("text", "Apache License\nVersion 2.0, January 2004\n한국어 설명\n".encode())
    put("pdf", b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n%%EOF\n")
    put("unknown", bytes(range(256)) * 4)
    return made


KINDS = ["safetensors", "gguf", "pytorch_zip", "zip", "tar", "tar_gz", "tar_zst", "gzip", "zstd", "pickle",
         "json", "yaml", "toml", "markdown", "text", "pdf", "unknown"]


@pytest.mark.parametrize("kind", KINDS)
def test_kind_is_detected_from_bytes_not_names(corpus: dict[str, Path], kind: str) -> None:
    assert kind_detect(path=corpus[kind]).kind == kind


def test_protocol0_command_pickle_is_not_mistaken_for_text(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(hostile.PICKLE_OS_SYSTEM_P0)  # pure ASCII, yet a pickle
    assert kind_detect(path=path).kind == "pickle"
    assert artifact_inspect(path=path).verdict == "rejected"


def test_text_with_a_brace_at_byte_eight_is_not_safetensors(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"Example {braces} in prose\n")
    assert kind_detect(path=path).kind == "text"


# --------------------------------------------------------------------------- verdicts on good files

@pytest.mark.parametrize("kind", ["safetensors", "gguf", "json", "yaml", "toml", "markdown", "text", "pdf", "tar", "tar_zst", "zip"])
def test_honest_files_are_accepted(corpus: dict[str, Path], kind: str) -> None:
    report = artifact_inspect(path=corpus[kind])
    assert report.verdict == "accepted", report.to_dict()["findings"]
    assert report.sha256 == hashlib.sha256(corpus[kind].read_bytes()).hexdigest()
    assert report.size == corpus[kind].stat().st_size


@pytest.mark.parametrize("kind", ["pickle", "pytorch_zip"])
def test_honest_pickles_are_quarantined_never_accepted(corpus: dict[str, Path], kind: str) -> None:
    report = artifact_inspect(path=corpus[kind], declared_kind="weights")
    assert report.verdict == "quarantined"
    assert codes(report) == ["pickle_format"]


# --------------------------------------------------------------------------- hostile corpus

def _hostile_cases(tmp_path: Path, token: str) -> list[tuple[Path, str, str]]:
    """(file, expected finding code, expected verdict) for every hostile artifact."""
    small = 4 * MiB
    return [
        (hostile.zip_bomb_claimed(tmp_path / "bomb.zip"), "archive_size_mismatch", "rejected"),
        (hostile.zip_bomb_lying(tmp_path / "liar.zip", real=small), "archive_size_mismatch", "rejected"),
        (hostile.zip_overlapping(tmp_path / "overlap.zip"), "archive_overlapping_members", "rejected"),
        (hostile.zip_slip(tmp_path / "slip.zip", token), "archive_path_traversal", "rejected"),
        (hostile.zip_slip(tmp_path / "abs.zip", token), "archive_absolute_path", "rejected"),
        (hostile.tar_hostile(tmp_path / "slip.tar", token), "archive_path_traversal", "rejected"),
        (hostile.tar_hostile(tmp_path / "links.tar.gz", token, "w:gz"), "archive_symlink", "rejected"),
        (hostile.tar_hostile(tmp_path / "hard.tar", token), "archive_hardlink", "rejected"),
        (hostile.tar_hostile(tmp_path / "dev.tar", token), "archive_special_file", "rejected"),
        (hostile.zip_symlink(tmp_path / "link.zip"), "archive_symlink", "rejected"),
        (hostile.zip_invalid_utf8(tmp_path / "names.zip"), "archive_name_invalid_utf8", "quarantined"),
        (hostile.tar_invalid_utf8(tmp_path / "names.tar"), "archive_name_invalid_utf8", "quarantined"),
        (hostile.tar_huge_pax_header(tmp_path / "pax.tar"), "archive_header_too_large", "rejected"),
        (hostile.zip_nested(tmp_path / "deep.zip", depth=6), "archive_nesting_too_deep", "rejected"),
        (hostile.zip_torch_checkpoint(tmp_path / "evil.pt", hostile.PICKLE_OS_SYSTEM_P4_MEMO), "pickle_imports_callable", "rejected"),
        (_write(tmp_path / "evil.bin", hostile.PICKLE_OS_SYSTEM_P0), "pickle_imports_callable", "rejected"),
        (_write(tmp_path / "cut.pkl", hostile.PICKLE_OS_SYSTEM_P4_MEMO[:-3]), "pickle_scan_failed", "rejected"),
        (hostile.safetensors_overlapping(tmp_path / "overlap.safetensors"), "safetensors_overlapping_offsets", "rejected"),
        (hostile.safetensors_huge_length(tmp_path / "huge.safetensors"), "safetensors_header_length_invalid", "rejected"),
        (hostile.truncate(hostile.safetensors_valid(tmp_path / "cut.safetensors"), 100), "safetensors_truncated", "rejected"),
        (hostile.truncate(hostile.gguf_valid(tmp_path / "cut.gguf"), 200), "gguf_invalid", "rejected"),
        (hostile.truncate(hostile.zip_slip(tmp_path / "cut.zip", token), 200), "archive_corrupt", "rejected"),
        (_write(tmp_path / "deep.json", b"[" * 100_000 + b"]" * 100_000), "structured_too_deep", "rejected"),
        (_write(tmp_path / "dup.json", b'{"a": 1, "a": 2}'), "json_duplicate_keys", "quarantined"),
        (_write(tmp_path / "bad.txt", b"caf\xc3\xa9 \xff\xfe\n"), "text_invalid_utf8", "accepted"),
        (_write(tmp_path / "evil.pdf", b"%PDF-1.4\n<< /OpenAction << /S /JavaScript /JS (app.alert(1)) >> >>\n"), "pdf_active_content", "quarantined"),
        # Names are claims: weights that do not parse as their extension's format are rejected.
        (hostile.not_safetensors(tmp_path / "model.safetensors"), "weights_unparseable", "rejected"),
        (hostile.random_bytes(tmp_path / "model.gguf"), "weights_unparseable", "rejected"),
        (_write(tmp_path / "pytorch_model.bin", b"PK not really a checkpoint"), "weights_unparseable", "rejected"),
        # A compression bomb is held for a reviewer, not passed with a low note.
        (hostile.zip_one_byte_bomb(tmp_path / "aaaa.zip", size=8 * MiB), "archive_compression_bomb", "quarantined"),
    ]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_hostile_corpus_every_file_gets_its_finding_and_nothing_escapes(tmp_path: Path, monkeypatch) -> None:
    token = f"hostile-{uuid.uuid4().hex[:12]}"
    corpus_dir = tmp_path / "corpus"
    corpus_dir.mkdir()
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    cases = _hostile_cases(corpus_dir, token)
    before = {p: p.stat().st_size for p in corpus_dir.rglob("*")}
    failures = []
    for path, code, verdict in cases:
        report = artifact_inspect(path=path)
        if code not in codes(report) or report.verdict != verdict:
            failures.append((path.name, code, verdict, report.verdict, codes(report)))
        json.dumps(report.to_dict())  # always JSON-ready, even with invalid UTF-8 names
    assert failures == []
    # Nothing was written anywhere: the corpus is unchanged, the working
    # directory is empty, and no file carries the token outside the corpus.
    assert {p: p.stat().st_size for p in corpus_dir.rglob("*")} == before
    assert list(work.iterdir()) == []
    stray = [p for p in tmp_path.parent.rglob(f"*{token}*")]
    assert stray == []
    assert [n for n in os.listdir("/tmp") if token in n] == []


def test_declared_kind_mismatch(corpus: dict[str, Path]) -> None:
    disguised = artifact_inspect(path=corpus["pickle"], declared_kind="safetensors")
    mismatch = next(f for f in disguised.findings if f.code == "declared_kind_mismatch")
    assert mismatch.severity == "high" and disguised.verdict == "rejected"
    assert mismatch.evidence == {"declared": "safetensors", "detected": "pickle", "expected": ["safetensors"]}
    config_as_zip = artifact_inspect(path=corpus["zip"], declared_kind="config")
    assert "declared_kind_mismatch" in codes(config_as_zip) and config_as_zip.verdict == "quarantined"
    assert artifact_inspect(path=corpus["json"], declared_kind="config").verdict == "accepted"
    assert artifact_inspect(path=corpus["tar_zst"], declared_kind="source archive").verdict == "accepted"
    assert codes(artifact_inspect(path=corpus["json"], declared_kind="spaceship")) == ["declared_kind_unknown"]


def test_the_extension_is_the_declared_kind_when_the_vendor_gives_none(tmp_path: Path, corpus: dict[str, Path]) -> None:
    text = hostile.not_safetensors(tmp_path / "model.safetensors")
    for declared in (None, "other", "weights"):
        report = artifact_inspect(path=text, declared_kind=declared)
        finding = next(f for f in report.findings if f.code == "weights_unparseable")
        assert finding.severity == "critical" and report.verdict == "rejected", declared
        assert finding.evidence["extension_kind"] == "safetensors" and finding.evidence["detected"] == "text"
    # A pickle behind a config's name: binary where text was promised, with no kind declared.
    disguised = _write(tmp_path / "config.json", hostile.pickle_torch_state_dict())
    report = artifact_inspect(path=disguised)
    assert "extension_kind_mismatch" in codes(report) and report.verdict == "quarantined"
    assert report.details["declared_kind"] == {"kind": "json", "declared_by": "extension"}
    # With a kind declared by the vendor, that declaration is the one judged (no second finding).
    assert "extension_kind_mismatch" not in codes(artifact_inspect(path=disguised, declared_kind="config"))
    # Honest files under their usual names stay accepted.
    for kind, name in (("safetensors", "model.safetensors"), ("gguf", "model.gguf"), ("json", "config.json"),
                       ("yaml", "config.yaml"), ("zip", "src.zip"), ("tar_zst", "src.tar.zst")):
        honest = shutil.copy(corpus[kind], tmp_path / name)
        assert artifact_inspect(path=honest).verdict == "accepted", (name, codes(artifact_inspect(path=honest)))
    # A GGUF renamed .safetensors is valid weights, but not what its name promises.
    renamed = shutil.copy(corpus["gguf"], tmp_path / "renamed.safetensors")
    assert "weights_unparseable" in codes(artifact_inspect(path=renamed))


def test_a_zipped_real_config_is_compressible_but_no_bomb(tmp_path: Path) -> None:
    """The legitimate end of the scale: a real config, zipped at the highest level, stays accepted."""
    for name in ("config.json", "tokenizer.json"):  # 1 KB and 1.8 MB: the bomb rule applies to the second
        archive = hostile.zip_realistic_config(tmp_path / f"{name}.zip", shared_data(*MIXTRAL, name).read_bytes())
        report = artifact_inspect(path=archive)
        assert report.verdict == "accepted", report.to_dict()["findings"]
        ratio = report.details["archive"]["declared_bytes"] / archive.stat().st_size
        assert 1 < ratio < 1000, (name, ratio)  # 1.4x (zip headers dominate) and ~4x


def test_a_model_folder_with_a_mislabelled_shard_is_rejected(tmp_path: Path) -> None:
    folder = _model_folder(tmp_path / "model")
    hostile.not_safetensors(folder / "model-00002-of-00002.safetensors")
    report = artifact_inspect(path=folder, declared_kind="weights")
    assert report.verdict == "rejected"
    bad = next(f for f in report.findings if f.code == "weights_unparseable")
    assert bad.evidence["file"] == "model-00002-of-00002.safetensors"


def test_missing_path_raises(tmp_path: Path) -> None:
    with pytest.raises(ArtifactNotFoundError, match="no such file"):
        artifact_inspect(path=tmp_path / "nope.safetensors")


def test_fifo_is_not_read(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    report = artifact_inspect(path=fifo)  # would block forever if opened
    assert codes(report) == ["artifact_not_regular_file"] and report.verdict == "rejected"


def test_size_limit(tmp_path: Path) -> None:
    path = _write(tmp_path / "big.bin", bytes(2 * MiB))
    report = artifact_inspect(path=path, limits=IntakeLimits(max_bytes=MiB))
    assert codes(report) == ["artifact_too_large"] and report.sha256 is None


# --------------------------------------------------------------------------- model folders

def _model_folder(root: Path) -> Path:
    root.mkdir()
    shutil.copy(shared_data(*MIXTRAL, "config.json"), root / "config.json")
    shutil.copy(shared_data(*MIXTRAL, "tokenizer.json"), root / "tokenizer.json")
    hostile.safetensors_valid(root / "model-00001-of-00002.safetensors")
    hostile.safetensors_valid(root / "model-00002-of-00002.safetensors")
    index = {"metadata": {"total_size": 96}, "weight_map": {"w": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    (root / "model.safetensors.index.json").write_text(json.dumps(index))
    (root / "README.md").write_text("---\nlicense: apache-2.0\n---\n# Demo model\n")
    return root


def test_model_folder_is_inspected_file_by_file(tmp_path: Path) -> None:
    folder = _model_folder(tmp_path / "model")
    report = artifact_inspect(path=folder, declared_kind="weights")
    assert report.kind == "directory" and report.verdict == "accepted", report.to_dict()["findings"]
    assert {f.name: f.kind for f in report.files} == {
        "README.md": "markdown",
        "config.json": "json",
        "model-00001-of-00002.safetensors": "safetensors",
        "model-00002-of-00002.safetensors": "safetensors",
        "model.safetensors.index.json": "json",
        "tokenizer.json": "json",
    }
    assert report.size == sum(p.stat().st_size for p in folder.iterdir())


def test_model_folder_with_missing_shard_and_a_pickle(tmp_path: Path) -> None:
    folder = _model_folder(tmp_path / "model")
    (folder / "model-00002-of-00002.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(hostile.PICKLE_OS_SYSTEM_P0)
    report = artifact_inspect(path=folder)
    assert {"hf_index_missing_shard", "pickle_imports_callable"} <= set(codes(report))
    evil = next(f for f in report.findings if f.code == "pickle_imports_callable")
    assert evil.evidence["file"] == "pytorch_model.bin"
    assert report.verdict == "rejected"


def test_model_folder_symlink_outside_is_flagged(tmp_path: Path) -> None:
    folder = _model_folder(tmp_path / "model")
    secret = _write(tmp_path / "secret.txt", b"secret")
    (folder / "notes.txt").symlink_to(secret)
    report = artifact_inspect(path=folder)
    assert "directory_symlink_outside" in codes(report)


# --------------------------------------------------------------------------- command

def _run_command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "manage.py", "inspect_artifact", *args], cwd=REPO, capture_output=True, text=True, timeout=120)


def test_command_prints_stable_json_and_exits_zero_even_when_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path / "evil.bin", hostile.PICKLE_OS_SYSTEM_P0)
    result = _run_command(str(path), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert {"sha256", "size", "kind", "verdict", "findings"} <= set(data)
    assert data["verdict"] == "rejected" and data["kind"] == "pickle"
    assert data["sha256"] == hashlib.sha256(hostile.PICKLE_OS_SYSTEM_P0).hexdigest()
    assert set(data["findings"][0]) == {"severity", "code", "message", "evidence"}
    assert result.stdout.strip() == json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False)


def test_command_gives_the_new_verdicts_from_the_name_alone(tmp_path: Path) -> None:
    """inspect_artifact PATH --json, no declared kind: the extension and the bytes decide."""
    cases = {
        hostile.not_safetensors(tmp_path / "model.safetensors"): ("rejected", "weights_unparseable"),
        hostile.random_bytes(tmp_path / "model.gguf"): ("rejected", "weights_unparseable"),
        hostile.zip_one_byte_bomb(tmp_path / "bomb.zip", size=4 * MiB): ("quarantined", "archive_compression_bomb"),
        hostile.zip_realistic_config(tmp_path / "config.zip", shared_data(*MIXTRAL, "config.json").read_bytes()): ("accepted", None),
    }
    for path, (verdict, code) in cases.items():
        result = _run_command(str(path), "--json")
        assert result.returncode == 0, result.stderr
        data = json.loads(result.stdout)
        assert data["verdict"] == verdict, (path.name, data["findings"])
        assert code is None or code in [f["code"] for f in data["findings"]]
        assert result.stdout.strip() == json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False)


def test_command_missing_path_exits_two(tmp_path: Path) -> None:
    result = _run_command(str(tmp_path / "missing.bin"), "--json")
    assert result.returncode == 2
    assert "no such file or directory" in result.stderr


def test_zip_hidden_behind_another_format_is_found(tmp_path: Path) -> None:
    inner = io.BytesIO()
    import zipfile

    with zipfile.ZipFile(inner, "w") as archive:
        archive.writestr("payload.py", "import os")
    path = _write(tmp_path / "card.md", b"# Model card\n\nNothing to see.\n" + inner.getvalue())
    report = artifact_inspect(path=path)
    finding = next(f for f in report.findings if f.code == "hidden_zip_archive")
    assert finding.evidence["members"] == ["payload.py"] and report.verdict == "quarantined"


def test_invalid_utf8_in_folder_names_and_tensor_names(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    bad_name = os.fsdecode(b"notes-\xff.txt")
    (folder / bad_name).write_text("hello")
    header = b'{"w\xff": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}'
    (folder / "model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + bytes(4))
    report = artifact_inspect(path=folder)
    text = json.dumps(report.to_dict(), ensure_ascii=False)  # printable, no surrogates
    assert "notes-\\\\xff.txt" in text
    finding = next(f for f in report.findings if f.code == "safetensors_invalid")
    assert "UTF-8" in finding.message and report.verdict == "rejected"


def test_an_unexpected_parser_failure_rejects_rather_than_passes(tmp_path: Path, monkeypatch) -> None:
    from compliance.engine import structured

    def broken(**_kwargs):
        raise RuntimeError("parser bug")

    monkeypatch.setattr(structured, "structured_parse", broken)
    report = artifact_inspect(path=_write(tmp_path / "config.json", b'{"a": 1}'))
    assert codes(report) == ["inspection_failed"] and report.verdict == "rejected"
    assert report.sha256 == hashlib.sha256(b'{"a": 1}').hexdigest()  # the bytes are still identified


def test_numpy_object_arrays_are_pickles_behind_a_header(tmp_path: Path) -> None:
    import numpy as np
    import zipfile

    objects = tmp_path / "meta.npy"
    np.save(objects, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    report = artifact_inspect(path=objects)
    assert report.kind == "npy" and report.verdict == "rejected"
    assert {"npy_object_dtype", "pickle_imports_callable"} <= set(codes(report))
    numeric = tmp_path / "emb.npy"
    np.save(numeric, np.zeros((4, 4), np.float32))
    assert artifact_inspect(path=numeric).verdict == "accepted"
    bundle = tmp_path / "arrays.npz"
    np.savez(bundle, ok=np.zeros(3), bad=np.array([None], dtype=object))
    assert "npy_object_dtype" in codes(artifact_inspect(path=bundle))
    assert zipfile.is_zipfile(bundle)


def test_model_directory_uploaded_as_an_archive_gets_the_shard_check(tmp_path: Path) -> None:
    import tarfile

    folder = _model_folder(tmp_path / "model")
    (folder / "model-00002-of-00002.safetensors").unlink()
    archive = tmp_path / "model.tar.zst"
    raw = tmp_path / "model.tar"
    with tarfile.open(raw, "w") as tar:
        tar.add(folder, arcname="model")
    import zstandard

    archive.write_bytes(zstandard.ZstdCompressor().compress(raw.read_bytes()))
    report = artifact_inspect(path=archive, declared_kind="model_directory")
    missing = next(f for f in report.findings if f.code == "hf_index_missing_shard")
    assert missing.evidence["missing"] == ["model-00002-of-00002.safetensors"]
    assert report.verdict == "rejected"
    (folder / "model-00002-of-00002.safetensors").write_bytes((folder / "model-00001-of-00002.safetensors").read_bytes())
    import zipfile

    complete = tmp_path / "model.zip"
    with zipfile.ZipFile(complete, "w", zipfile.ZIP_DEFLATED) as zipped:
        for file in sorted(folder.iterdir()):
            zipped.write(file, arcname=file.name)
    assert artifact_inspect(path=complete, declared_kind="model_directory").verdict == "accepted"


def test_a_bert_vocab_txt_is_text_not_broken_json(tmp_path):
    """Regression: "[PAD]\\n[unused0]..." starts with "[" but is a plain word list."""
    from compliance.engine.intake import artifact_inspect, kind_detect

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[PAD]\n[unused0]\n[unused1]\n[CLS]\n[SEP]\n!\n\"\n#\nthe\n##s\n")
    assert kind_detect(path=vocab).kind == "text"
    report = artifact_inspect(path=vocab, declared_kind="tokenizer").to_dict()
    assert report["verdict"] == "accepted", report["findings"]
