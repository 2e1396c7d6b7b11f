"""A SHA-256 whose running state can be saved in the database and resumed in another process.

A chunked upload's chunks may land on any web process of any host, so the hash of the bytes
received so far must travel with the upload session. ``hashlib`` objects cannot be saved
(no pickling, no export of their state), so this module drives OpenSSL's own SHA-256 (the
library ``hashlib`` itself uses) through its public ``SHA256_CTX`` API, whose state is a
plain 112-byte struct (``openssl/sha.h``: 8 words of state, a 64-bit length, a 64-byte
block buffer, two counters). The functions are deprecated in OpenSSL 3 but exported, and
``sha256_state_available()`` proves them against ``hashlib`` before they are trusted; where
they are missing the caller rebuilds the hash by re-reading what it stored (slower, same
answer). Speed is OpenSSL's: ~300 MB/s on this machine, the same as ``hashlib``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import hashlib

# sizeof(SHA256_CTX): (8 + 2 + 16 + 2) unsigned ints of 4 bytes.
SHA256_CTX_BYTES = 112


@functools.lru_cache(maxsize=1)
def _libcrypto():
    names = [ctypes.util.find_library("crypto"), "libcrypto.so.3", "libcrypto.so", "libcrypto.dylib"]
    for name in filter(None, names):
        try:
            lib = ctypes.CDLL(name)
            lib.SHA256_Init.argtypes = [ctypes.c_void_p]
            lib.SHA256_Update.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
            lib.SHA256_Final.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
            return lib
        except (OSError, AttributeError):
            continue
    return None


class ResumableSha256:
    """SHA-256 with ``state()`` to save and ``ResumableSha256(state)`` to resume."""

    def __init__(self, state: bytes | None = None):
        lib = _libcrypto()
        if lib is None:
            raise RuntimeError("OpenSSL's SHA256_* functions are not available")
        self._lib = lib
        if state is None:
            self._ctx = ctypes.create_string_buffer(SHA256_CTX_BYTES)
            lib.SHA256_Init(self._ctx)
        else:
            if len(state) != SHA256_CTX_BYTES:
                raise ValueError(f"a SHA-256 state is {SHA256_CTX_BYTES} bytes, not {len(state)}")
            self._ctx = ctypes.create_string_buffer(bytes(state), SHA256_CTX_BYTES)

    def update(self, data: bytes) -> None:
        self._lib.SHA256_Update(self._ctx, data, len(data))

    def state(self) -> bytes:
        return self._ctx.raw

    def hexdigest(self) -> str:
        # Final() consumes the context: finish a copy so this object stays usable.
        ctx = ctypes.create_string_buffer(self._ctx.raw, SHA256_CTX_BYTES)
        out = ctypes.create_string_buffer(32)
        self._lib.SHA256_Final(out, ctx)
        return out.raw.hex()


@functools.lru_cache(maxsize=1)
def sha256_state_available() -> bool:
    """True when a saved and resumed state gives hashlib's answer (checked once per process)."""
    try:
        data = bytes(range(256)) * 5  # spans several 64-byte blocks and a partial one
        first = ResumableSha256()
        first.update(data[:77])
        resumed = ResumableSha256(first.state())
        resumed.update(data[77:])
        return resumed.hexdigest() == hashlib.sha256(data).hexdigest()
    except (RuntimeError, OSError, AttributeError, ValueError):
        return False
