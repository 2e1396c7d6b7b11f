"""Tokenizer reading and comparison: supporting evidence for lineage, never decisive alone.

Reads tokenizer.json (BPE, WordPiece, Unigram), a SentencePiece tokenizer.model (a small
protobuf parser, so no sentencepiece dependency), vocab.txt (WordPiece) and GGUF metadata
(tokenizer.ggml.*). Compares as Sionic AI's Solar/GLM probe did: vocabulary Jaccard, tokens at
the same id, shared merge-list prefix, special tokens.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# A tokenizer.json above 64 MB is not a tokenizer anyone ships (Solar's is about 30 MB).
TOKENIZER_FILE_CAP = 64_000_000


@dataclass
class TokenizerData:
    """Vocabulary in id order, merges in rank order, special tokens, and where they came from."""

    kind: str
    vocab: list[str]
    merges: list[str] = field(default_factory=list)
    special: list[str] = field(default_factory=list)
    source: str = ""

    def summary(self) -> dict[str, Any]:
        """Small JSON summary (hashes, not the full lists)."""
        return {
            "kind": self.kind,
            "source": self.source,
            "vocab_size": len(self.vocab),
            "vocab_sha256": hashlib.sha256("\n".join(self.vocab).encode("utf-8", "replace")).hexdigest(),
            "merges": len(self.merges),
            "merges_sha256_first1000": hashlib.sha256("\n".join(self.merges[:1000]).encode("utf-8", "replace")).hexdigest()
            if self.merges else None,
            "special_tokens": self.special[:32],
        }


def _read_capped(path: Path) -> bytes:
    size = path.stat().st_size
    if size > TOKENIZER_FILE_CAP:
        raise ValueError(f"{path.name}: {size} bytes is larger than any real tokenizer file (cap {TOKENIZER_FILE_CAP})")
    return path.read_bytes()


def _from_tokenizer_json(path: Path) -> TokenizerData:
    doc = json.loads(_read_capped(path).decode("utf-8"))
    model = doc.get("model") or {}
    kind = str(model.get("type") or "unknown")
    vocab_raw = model.get("vocab") or {}
    if isinstance(vocab_raw, dict):
        size = max(vocab_raw.values(), default=-1) + 1
        vocab = [""] * size
        for token, idx in vocab_raw.items():
            if isinstance(idx, int) and 0 <= idx < size:
                vocab[idx] = token
    else:  # Unigram: [[piece, score], ...]
        vocab = [str(item[0]) for item in vocab_raw]
    added = doc.get("added_tokens") or []
    special = []
    for tok in added:
        idx, content = tok.get("id"), tok.get("content")
        if isinstance(idx, int) and isinstance(content, str):
            while len(vocab) <= idx:
                vocab.append("")
            vocab[idx] = content
            if tok.get("special"):
                special.append(content)
    merges = [m if isinstance(m, str) else " ".join(m) for m in (model.get("merges") or [])]
    return TokenizerData(kind=kind, vocab=vocab, merges=merges, special=special, source=path.name)


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated protobuf varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("protobuf varint too long")


def _proto_fields(buf: bytes) -> list[tuple[int, int, Any]]:
    out = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + length], pos + length
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        out.append((number, wire, value))
    return out


def _from_sentencepiece(path: Path) -> TokenizerData:
    """SentencePiece ModelProto: field 1 = repeated SentencePiece {1: piece, 2: score, 3: type}."""
    vocab, special = [], []
    for number, wire, value in _proto_fields(_read_capped(path)):
        if number == 1 and wire == 2:
            piece, ptype = "", 1
            for n2, w2, v2 in _proto_fields(value):
                if n2 == 1 and w2 == 2:
                    piece = v2.decode("utf-8", "replace")
                elif n2 == 3 and w2 == 0:
                    ptype = v2
            vocab.append(piece)
            if ptype in (2, 3, 4):  # UNKNOWN, CONTROL, USER_DEFINED
                special.append(piece)
    return TokenizerData(kind="SentencePiece", vocab=vocab, special=special, source=path.name)


def _from_vocab_txt(path: Path) -> TokenizerData:
    vocab = _read_capped(path).decode("utf-8", "replace").splitlines()
    special = [t for t in vocab if t.startswith("[") and t.endswith("]") and t.upper() == t][:32]
    return TokenizerData(kind="WordPiece", vocab=vocab, special=special, source=path.name)


def tokenizer_from_gguf(metadata: dict[str, Any]) -> TokenizerData | None:
    """Tokenizer carried in GGUF metadata (tokenizer.ggml.tokens / merges / token_type)."""
    tokens = metadata.get("tokenizer.ggml.tokens")
    if not isinstance(tokens, list):
        return None
    types = metadata.get("tokenizer.ggml.token_type") or []
    special = [t for t, ty in zip(tokens, types) if ty in (3, 4)]  # CONTROL, USER_DEFINED
    merges = metadata.get("tokenizer.ggml.merges") or []
    return TokenizerData(
        kind=str(metadata.get("tokenizer.ggml.model", "gguf")), vocab=[str(t) for t in tokens],
        merges=[str(m) for m in merges], special=special[:64], source="gguf metadata",
    )


def tokenizer_load(files: dict[str, Path]) -> TokenizerData | None:
    """Load the best available tokenizer file from `{filename: path}`; None if there is none or it is unreadable."""
    for name, loader in (("tokenizer.json", _from_tokenizer_json), ("tokenizer.model", _from_sentencepiece),
                         ("vocab.txt", _from_vocab_txt)):
        if name in files:
            try:
                return loader(files[name])
            except (ValueError, KeyError, TypeError, UnicodeDecodeError):
                continue
    return None


def tokenizer_compare(a: TokenizerData | None, b: TokenizerData | None) -> dict[str, Any]:
    """Vocabulary Jaccard, same-id matches, shared merge prefix and shared special tokens."""
    if a is None or b is None:
        return {"available": False, "note": "tokenizer missing on one side"}
    set_a, set_b = set(a.vocab), set(b.vocab)
    inter = len(set_a & set_b)
    union = len(set_a | set_b) or 1
    same_id = sum(1 for x, y in zip(a.vocab, b.vocab) if x == y and x)
    prefix = 0
    for x, y in zip(a.merges, b.merges):
        if x != y:
            break
        prefix += 1
    return {
        "available": True,
        "vocab_sizes": [len(a.vocab), len(b.vocab)],
        "identical_vocab": a.vocab == b.vocab,
        "jaccard": round(inter / union, 4),
        "overlap_vs_smaller": round(inter / max(1, min(len(set_a), len(set_b))), 4),
        "same_id_matches": same_id,
        "same_id_ratio": round(same_id / max(1, min(len(a.vocab), len(b.vocab))), 4),
        "merges": [len(a.merges), len(b.merges)],
        "shared_merge_prefix": prefix,
        "shared_special_tokens": sorted(set(a.special) & set(b.special))[:32],
        "note": "supporting evidence only: tokenizers are often reused by independently trained models",
    }
