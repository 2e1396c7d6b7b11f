"""Tokenizer readers (tokenizer.json, SentencePiece protobuf, vocab.txt, GGUF) and comparison."""

from __future__ import annotations

from pathlib import Path

from compliance.engine.lineage.tokenizers import tokenizer_compare, tokenizer_from_gguf, tokenizer_load
from tests.compliance.engine.lineage import tinymodels as tm


def _sp_piece(piece: str, ptype: int = 1) -> bytes:
    body = b"\x0a" + bytes([len(piece.encode())]) + piece.encode() + b"\x15\x00\x00\x80\xbf" + b"\x18" + bytes([ptype])
    return b"\x0a" + bytes([len(body)]) + body


def test_sentencepiece_model_is_read_without_sentencepiece(tmp_path: Path) -> None:
    data = _sp_piece("<unk>", 2) + _sp_piece("<s>", 3) + _sp_piece("\u2581the") + _sp_piece("ing")
    (tmp_path / "tokenizer.model").write_bytes(data + b"\x12\x00")  # trailing trainer_spec field
    tok = tokenizer_load({"tokenizer.model": tmp_path / "tokenizer.model"})
    assert tok is not None and tok.vocab == ["<unk>", "<s>", "\u2581the", "ing"]
    assert tok.special == ["<unk>", "<s>"]


def test_compare_reports_jaccard_same_ids_and_merge_prefix(tmp_path: Path) -> None:
    vocab = tm.vocab_default()
    tm.tokenizer_json_write(tmp_path / "a.json", vocab, tm.merges_default(vocab))
    shifted = vocab[:500] + [t + "_x" for t in vocab[500:]]
    tm.tokenizer_json_write(tmp_path / "b.json", shifted, tm.merges_default(vocab)[:100] + ["z z"])
    a = tokenizer_load({"tokenizer.json": tmp_path / "a.json"})
    b = tokenizer_load({"tokenizer.json": tmp_path / "b.json"})
    cmp = tokenizer_compare(a, b)
    assert cmp["same_id_matches"] == 500
    assert cmp["jaccard"] == round(500 / (1024 + 524), 4)
    assert cmp["shared_merge_prefix"] == 100
    assert set(cmp["shared_special_tokens"]) == {"<s>", "</s>", "<unk>", "<pad>"}
    assert tokenizer_compare(a, None)["available"] is False


def test_wordpiece_vocab_and_gguf_metadata(tmp_path: Path) -> None:
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\nhello\n##lo\n", encoding="utf-8")
    tok = tokenizer_load({"vocab.txt": tmp_path / "vocab.txt"})
    assert tok is not None and tok.kind == "WordPiece" and tok.special == ["[PAD]", "[UNK]"]
    g = tokenizer_from_gguf({"tokenizer.ggml.tokens": ["<s>", "a"], "tokenizer.ggml.token_type": [3, 1],
                             "tokenizer.ggml.merges": ["a b"], "tokenizer.ggml.model": "gpt2"})
    assert g is not None and g.special == ["<s>"] and g.merges == ["a b"]
    assert tokenizer_from_gguf({}) is None
