"""Per-file result cache: what an engine answered for one file's bytes, shared by every scan.

A scan of 50,000 files in version 2 of a submission repeats 99 % of version 1's files, and the
same LICENSE or vendored module recurs across vendors. Each engine result for one file is
stored under a namespace and a key:

- the namespace names everything besides the bytes the answer depends on: the engine and its
  version, its rule set (ScanCode's release and rule count), for copied code the index's
  identity and the corpora compared with. A new engine, new rules or a re-indexed corpus is a new
  namespace, so stale answers are never read; they are simply no longer asked for.
- the key is the SHA-256 (hex) of the file's content, and of the part of its name the engine
  reads when it reads one (`content_key`): the licence detector reads the base name (LICENSE
  gets the full matcher, typecode sniffs by extension), the copied-code matcher the whole path
  (its labels fall back on the vendor's path).

The protocol is two batch calls so a backend answers 500 keys per query; `MemoryFileResultCache`
is the in-process one (engine tests, the CLI); the portal's, shared by every worker on every
host, is `compliance.services.filecache.DbFileResultCache`. A backend must tolerate two writers
putting the same key (the first value stays: both are the same answer).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Protocol


class FileResultCache(Protocol):
    def get_many(self, *, namespace: str, keys: Iterable[str]) -> dict[str, dict]:
        """The stored values of those keys that have one."""

    def put_many(self, *, namespace: str, values: dict[str, dict]) -> None:
        """Store values; a key already stored keeps its value."""


def content_key(*, data: bytes, name: str | None = None) -> str:
    """SHA-256 hex of the bytes, or of the name read by the engine and the bytes' own hash."""
    digest = hashlib.sha256(data).hexdigest()
    if name is None:
        return digest
    return hashlib.sha256(f"{name}\0{digest}".encode("utf-8", "surrogateescape")).hexdigest()


class MemoryFileResultCache:
    """A dict-backed cache for one process; counts its calls so tests can see batching."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, str], str] = {}
        self.get_calls = 0
        self.put_calls = 0

    def get_many(self, *, namespace: str, keys: Iterable[str]) -> dict[str, dict]:
        self.get_calls += 1
        found = {}
        for key in keys:
            value = self.values.get((namespace, key))
            if value is not None:
                found[key] = json.loads(value)
        return found

    def put_many(self, *, namespace: str, values: dict[str, dict]) -> None:
        self.put_calls += 1
        for key, value in values.items():
            # Stored as JSON text, as a database stores it: what comes back is a copy, tuples as lists.
            self.values.setdefault((namespace, key), json.dumps(value))
