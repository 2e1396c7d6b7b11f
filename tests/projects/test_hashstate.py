"""The resumable SHA-256 gives hashlib's answer however the bytes are split and its state saved."""

from __future__ import annotations

import hashlib
import os
import random

from projects.hashstate import SHA256_CTX_BYTES, ResumableSha256, sha256_state_available


def test_saved_and_resumed_state_gives_hashlibs_digest():
    assert sha256_state_available(), "OpenSSL's SHA256_* functions are exported by this machine's libcrypto"
    rng = random.Random(11)
    data = os.urandom(3 * 1024 * 1024 + 13)
    for _ in range(20):
        cuts = sorted(rng.sample(range(1, len(data)), rng.randint(1, 6)))
        state = None
        for start, end in zip([0, *cuts], [*cuts, len(data)]):
            digest = ResumableSha256(state)
            digest.update(data[start:end])
            state = bytes(digest.state())  # what the database row holds
            assert len(state) == SHA256_CTX_BYTES
        assert ResumableSha256(state).hexdigest() == hashlib.sha256(data).hexdigest()
    assert ResumableSha256().hexdigest() == hashlib.sha256(b"").hexdigest()
