"""Anonymous dossier verification streams the upload to disk while hashing it (issue #12: a 63 MB
fake PDF was read into memory whole, per request).

The memory test sends a 20 MB body from a file on disk through Django's WSGI handler, so the
only allocations tracemalloc sees are the portal's own while it receives, hashes and checks the
file; the peak must stay a small fraction of the file's size. A real dossier still verifies by
file (page and API) and by hash.
"""

from __future__ import annotations

import hashlib
import io
import json
import tracemalloc

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.test.client import ClientHandler

from compliance.dossiers import dossier_render_now
from tests.factories import signed_submission

pytestmark = pytest.mark.django_db

BOUNDARY = "----portal-verify-boundary"
UPLOAD_BYTES = 20 * 1024 * 1024
# Django's parser and our handler work in 64 KB chunks and hashing reads 1 MB at a time; 4 MB
# (a fifth of the file) leaves room for pyHanko, the template and the ORM, and is still far
# below what reading the file whole costs (its full size, 20 MB, at least).
PEAK_LIMIT_BYTES = 4 * 1024 * 1024


def _multipart_on_disk(tmp_path, *, size: int, name: str = "body.bin") -> tuple[object, str, int]:
    """A multipart body holding a ``size``-byte fake PDF as ``file``, written to disk in chunks;
    returns (path, the file's SHA-256, body length)."""
    path = tmp_path / name
    digest = hashlib.sha256()
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.pdf\"\r\n"
            f"Content-Type: application/pdf\r\n\r\n").encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    chunk = b"0" * (1024 * 1024)
    with path.open("wb") as out:
        out.write(head)
        first = b"%PDF-1.7\n" + chunk[9:]
        out.write(first)
        digest.update(first)
        for _ in range(size // len(chunk) - 2):
            out.write(chunk)
            digest.update(chunk)
        # Ends like a PDF, its cross-reference pointer aimed into the run of digits (pyHanko
        # spent about 3 s of CPU per MB reading such a file before the verifier learnt to refuse it).
        last = chunk[:-19] + b"\nstartxref\n9\n%%EOF\n"
        out.write(last)
        digest.update(last)
        out.write(tail)
    return path, digest.hexdigest(), path.stat().st_size


def _post_from_disk(path, length: int, url: str, *, traced: bool = True):
    """POST the body in ``path`` through Django's handler (as the test client does, but reading
    the body from the file rather than from bytes built in memory); returns the response and the
    peak of Python allocations while it was handled."""
    with path.open("rb") as body:
        environ = {"REQUEST_METHOD": "POST", "PATH_INFO": url, "SCRIPT_NAME": "", "QUERY_STRING": "",
                   "SERVER_NAME": "testserver", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
                   "REMOTE_ADDR": "192.0.2.99", "HTTP_HOST": "testserver", "wsgi.url_scheme": "http",
                   "wsgi.input": body, "wsgi.errors": io.StringIO(), "wsgi.version": (1, 0),
                   "wsgi.multithread": False, "wsgi.multiprocess": False, "wsgi.run_once": False,
                   "CONTENT_TYPE": f"multipart/form-data; boundary={BOUNDARY}", "CONTENT_LENGTH": str(length)}
        if not traced:
            return ClientHandler(enforce_csrf_checks=False)(environ), None
        tracemalloc.start()
        try:
            response = ClientHandler(enforce_csrf_checks=False)(environ)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    return response, peak


@pytest.mark.parametrize("url", ["/verify/", "/api/dossiers/verify/"])
def test_a_20_mb_upload_is_hashed_on_disk_and_memory_stays_bounded(tmp_path, url):
    # A first, small request imports pyHanko, the templates and the rest once; their memory is
    # not the upload's.
    warm, _, warm_length = _multipart_on_disk(tmp_path, size=2 * 1024 * 1024, name="warm.bin")
    _post_from_disk(warm, warm_length, url, traced=False)
    path, sha256, length = _multipart_on_disk(tmp_path, size=UPLOAD_BYTES)
    response, peak = _post_from_disk(path, length, url)
    assert response.status_code == 200
    body = response.content.decode()
    # The answer is about this exact file: its digest, and that the portal never issued it.
    assert sha256 in body
    if url.startswith("/api/"):
        result = json.loads(body)
        assert result["size"] == UPLOAD_BYTES and result["ok"] is False and result["issued"] is False
        assert any("does not point at a cross-reference section" in r for r in result["reasons"])
    else:
        assert "Not valid" in body
    assert peak < PEAK_LIMIT_BYTES, f"peak {peak / 2**20:.1f} MiB for a {UPLOAD_BYTES / 2**20:.0f} MiB upload"


def test_a_real_dossier_still_verifies_by_file_and_by_hash(world, tmp_path, settings, dossier_signing_key):
    submission = signed_submission(world=world, submit=True)
    dossier, pdf = dossier_render_now(submission=submission, lang="en")
    sha256 = hashlib.sha256(pdf).hexdigest()
    anonymous = Client(REMOTE_ADDR="192.0.2.98")

    page = anonymous.post("/verify/", {"file": SimpleUploadedFile(f"{dossier.number}.pdf", pdf)})
    assert page.status_code == 200
    text = page.content.decode()
    assert "Valid: issued by this portal, unaltered, signature valid" in text and sha256 in text

    api = anonymous.post("/api/dossiers/verify/", {"file": SimpleUploadedFile("d.pdf", pdf)}).json()
    assert api["ok"] is True and api["sha256"] == sha256 and api["dossier_number"] == dossier.number
    assert api["audit_checkpoint"]["ok"] is True

    by_hash = anonymous.post("/api/dossiers/verify/", {"sha256": sha256}, content_type="application/json").json()
    assert by_hash["issued"] is True and by_hash["dossier_number"] == dossier.number
    # One byte changed: no longer the issued file, and the page says so.
    altered = bytearray(pdf)
    altered[len(altered) // 2] ^= 0x01
    changed = anonymous.post("/api/dossiers/verify/", {"file": SimpleUploadedFile("d.pdf", bytes(altered))}).json()
    assert changed["ok"] is False and changed["issued"] is False


def test_a_forged_forwarded_for_header_gets_no_fresh_budget(settings):
    """DRF's default identity took any X-Forwarded-For the client sent; the budget follows the
    address the operator trusts (PORTAL_CLIENT_IP_HEADERS: REMOTE_ADDR by default)."""
    settings.PORTAL_VERIFY_UPLOAD_RATE = "2/hour"
    pdf = b"%PDF-1.7\n" + b"0" * (100 * 1024) + b"\n%%EOF\n"
    answers = [Client(REMOTE_ADDR="198.51.100.77", HTTP_X_FORWARDED_FOR=f"10.0.0.{i}")
               .post("/verify/", {"file": SimpleUploadedFile("d.pdf", pdf)}).status_code for i in range(3)]
    assert answers == [200, 200, 429]
