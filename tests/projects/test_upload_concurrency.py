"""Two chunks of one upload sent at once, against the real server (issue #11).

A gunicorn subprocess with two worker processes of four threads each serves the portal, so the
two chunks of a round may land in different processes, as they do in production: the lock must
hold across processes and the SHA-256 state must travel with the session. 30 rounds; in each,
two different chunks are sent at the same offset at the same moment, twice (the first half and
the last half of the file). Exactly one is answered 200, the other 409 with the offset the
upload stands at, and the stored file, its recorded SHA-256 and the recorded offset agree with
the chunks answered 200 and with each other.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, _worker_env

ROUNDS = 30
# Large enough that both requests are in flight together (staging, append, hash and fsync take
# a few ms), small enough that 30 rounds stay quick.
CHUNK = 256 * 1024


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def web_server(transactional_db, settings, tmp_path):
    """The portal under gunicorn, on this test's database and storage folders."""
    port = _free_port()
    env = _worker_env()
    env["PORTAL_MEDIA_ROOT"] = str(settings.MEDIA_ROOT)
    env["PORTAL_UPLOAD_PARTIAL_DIR"] = str(settings.UPLOAD_PARTIAL_DIR)
    log = open(tmp_path / "gunicorn.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "portal.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2",
         "--threads", "4", "--timeout", "120"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError((tmp_path / "gunicorn.log").read_text()[-3000:])
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError("gunicorn did not start: "
                                       + (tmp_path / "gunicorn.log").read_text()[-3000:]) from exc
                time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _request(port: int, token: str, method: str, path: str, body: bytes = b"", headers: dict | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.request(method, path, body=body, headers={"Authorization": f"Token {token}",
                                                             "Content-Length": str(len(body)), **(headers or {})})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


def _race(port: int, token: str, session_id: str, offset: int, bodies: list[bytes]) -> list[tuple[int, dict]]:
    """Send the bodies as chunks at the same offset, released together."""
    barrier = threading.Barrier(len(bodies))
    results: list = [None] * len(bodies)

    def send(i: int) -> None:
        barrier.wait()
        results[i] = _request(port, token, "PATCH", f"/api/uploads/{session_id}/chunk/", bodies[i],
                              {"Content-Type": "application/offset+octet-stream", "Upload-Offset": str(offset)})

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_concurrent_chunks_never_corrupt_an_upload(web_server, settings):
    from projects import services
    from projects.models import Artifact, UploadSession
    from tests.factories import build_world

    world = build_world()
    draft = services.submission_open(user=world.vendor_user, project=world.project)
    from portal.tokens import token_create

    _, token = token_create(user=world.vendor_user, name="upload race", expires_in_days=7)
    accepted: dict[str, bytes] = {}
    for round_ in range(ROUNDS):
        status, session = _request(web_server, token, "POST", "/api/uploads/", json.dumps(
            {"submission": draft.pk, "kind": "other", "filename": f"round-{round_}.bin", "size": 2 * CHUNK}).encode(),
            {"Content-Type": "application/json"})
        assert status == 201, session
        kept = b""
        for offset in (0, CHUNK):
            bodies = [os.urandom(CHUNK), os.urandom(CHUNK)]
            results = _race(web_server, token, session["id"], offset, bodies)
            statuses = sorted(status for status, _body in results)
            assert statuses == [200, 409], (round_, offset, results)
            winner = next(i for i, (status, _body) in enumerate(results) if status == 200)
            loser_body = results[1 - winner][1]
            # The loser learns where the upload stands: after the winner's chunk.
            assert loser_body["received"] == offset + CHUNK, (round_, loser_body)
            kept += bodies[winner]
            answer = results[winner][1]
            assert answer["received"] == offset + CHUNK
        assert answer["artifact"]["sha256"] == hashlib.sha256(kept).hexdigest(), round_
        accepted[session["id"]] = kept
    assert Artifact.objects.filter(submission=draft).count() == ROUNDS
    for session_id, kept in accepted.items():
        upload = UploadSession.objects.select_related("artifact").get(pk=session_id)
        stored = Path(upload.artifact.file.path).read_bytes()
        # The chunks answered 200, and only they, are what was stored; the hash and offset agree.
        assert stored == kept
        assert upload.artifact.sha256 == hashlib.sha256(stored).hexdigest()
        assert upload.received == upload.size == upload.artifact.size == len(stored)
    assert not [p for p in Path(settings.UPLOAD_PARTIAL_DIR).iterdir()], "no partial or staged file left behind"
