"""A real S3 endpoint for the tests: moto's S3 served over HTTP on a loopback port.

The server runs in a thread of the test process (moto's own WSGI application under
werkzeug, as ``moto_server`` runs it), so the web side (test client, live server) and the
real worker subprocess talk to it over HTTP exactly as they would to any S3-compatible
store. A thin WSGI layer in front of moto is the tests' outside view of what was read:
it logs every request (method, key, ``Range`` header, bytes sent), and can serve an
object slowly, as a congested store would, so a worker can be killed mid-read.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import unquote

import pytest

BUCKET_PREFIX = "portal-test"


@dataclass
class S3Request:
    method: str
    key: str
    range: str | None
    bytes_sent: int = 0


@dataclass
class S3Endpoint:
    """The running endpoint, its request log and its speed."""

    url: str
    requests: list[S3Request] = field(default_factory=list)
    # Bytes per second for GET bodies; None serves at full speed.
    slow_bytes_per_s: float | None = None
    # Seconds before a GET is answered (a real store's first-byte latency); None answers at once.
    latency_s: float | None = None
    # GETs being answered now, and the most at once since the bucket was made.
    in_flight: int = 0
    most_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def gets(self, bucket: str, key: str) -> list[S3Request]:
        with self.lock:
            return [r for r in self.requests if r.method == "GET" and r.key == f"{bucket}/{key}"]

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")


class _LoggingApp:
    """WSGI middleware: records each request and counts (and optionally paces) the body bytes sent."""

    def __init__(self, app, endpoint: S3Endpoint):
        self.app = app
        self.endpoint = endpoint

    def __call__(self, environ, start_response):
        entry = S3Request(method=environ["REQUEST_METHOD"], key=unquote(environ.get("PATH_INFO", "")).lstrip("/"),
                          range=environ.get("HTTP_RANGE"))
        is_get = entry.method == "GET"
        with self.endpoint.lock:
            self.endpoint.requests.append(entry)
            if is_get:
                self.endpoint.in_flight += 1
                self.endpoint.most_in_flight = max(self.endpoint.most_in_flight, self.endpoint.in_flight)
        try:
            if is_get and self.endpoint.latency_s:
                time.sleep(self.endpoint.latency_s)
            body = self.app(environ, start_response)
        except BaseException:
            self._get_done(is_get)
            raise
        # A GET stops counting as in flight just before its last piece is handed to the server: the
        # client can send its next request as soon as it holds that piece, before this generator resumes
        # to finish, so counting it down any later would count the two as running at once.
        done = False
        try:
            pieces = self._pieces(body, entry)
            piece = next(pieces, None)
            while piece is not None:
                following = next(pieces, None)
                if following is None:
                    done = True
                    self._get_done(is_get)
                entry.bytes_sent += len(piece)
                yield piece
                piece = following
        finally:
            if hasattr(body, "close"):
                body.close()
            if not done:
                self._get_done(is_get)

    def _pieces(self, body, entry: S3Request):
        for chunk in body:
            # 64 KiB pieces so a slow endpoint is slow evenly, not in one pause per response.
            for start in range(0, len(chunk), 65536) if chunk else [0]:
                piece = chunk[start:start + 65536]
                rate = self.endpoint.slow_bytes_per_s
                if rate and entry.method == "GET" and piece:
                    time.sleep(len(piece) / rate)
                yield piece

    def _get_done(self, is_get: bool) -> None:
        if is_get:
            with self.endpoint.lock:
                self.endpoint.in_flight -= 1


@pytest.fixture(scope="session")
def s3_endpoint():
    """moto's S3 over HTTP on a free loopback port, for the whole session."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request drowns a failure's report
    endpoint = S3Endpoint(url="")
    app = _LoggingApp(DomainDispatcherApplication(create_backend_app), endpoint)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
    endpoint.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, name="moto-s3", daemon=True)
    thread.start()
    yield endpoint
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture
def s3_storage(s3_endpoint, settings, monkeypatch):
    """A fresh bucket, with default storage pointed at it here and in any worker started after this
    (the worker reads the same variables the README documents for production)."""
    bucket = f"{BUCKET_PREFIX}-{secrets.token_hex(4)}"
    s3_endpoint.client().create_bucket(Bucket=bucket)
    env = {"PORTAL_S3_BUCKET": bucket, "PORTAL_S3_ENDPOINT_URL": s3_endpoint.url,
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    # The same STORAGES entry portal/settings.py builds from these variables.
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "storages.backends.s3.S3Storage",
                    "OPTIONS": {"bucket_name": bucket, "endpoint_url": s3_endpoint.url, "default_acl": None,
                                "querystring_auth": True, "file_overwrite": False}},
    }
    with s3_endpoint.lock:
        s3_endpoint.requests.clear()
        s3_endpoint.most_in_flight = 0
    s3_endpoint.slow_bytes_per_s = s3_endpoint.latency_s = None
    yield bucket
    s3_endpoint.slow_bytes_per_s = s3_endpoint.latency_s = None


@pytest.fixture
def s3_worker(s3_storage, transactional_db, settings, tmp_path):
    """A real worker whose storage is the bucket (started after s3_storage set its environment)."""
    from tests.conftest import WorkerProcess, _purge_broker

    _purge_broker()
    worker = WorkerProcess(tmp_path / "worker.log", settings.MEDIA_ROOT, settings.UPLOAD_PARTIAL_DIR)
    worker.start()
    yield worker
    worker.stop()


def bucket_keys(endpoint: S3Endpoint, bucket: str) -> list[str]:
    pages = endpoint.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))




def world_with_reference(tmp_path, capsys):
    """A world whose programme takes files up to 256 MiB and whose policy lists one registered
    reference, a tiny Llama (``open-lab/base-7b``, Apache-2.0, from scratch required); returns the
    world and that base model, to derive the vendor's weights from."""
    from django.core.management import call_command

    from compliance.models import ReferenceModel
    from compliance.services.policy import programme_policy_update
    from tests.compliance.engine.lineage import tinymodels
    from tests.factories import build_world

    world = build_world()
    world.programme.max_artifact_bytes = 256 * 1024 * 1024
    world.programme.save()
    base = tinymodels.llama_make(seed=11, d=512, f=4096, layers=4)
    tinymodels.model_write(base, tmp_path / "base")
    call_command("add_reference_model", str(tmp_path / "base"), "--name", "open-lab/base-7b", "--publisher",
                 "Open Lab", "--license", "Apache-2.0")
    capsys.readouterr()
    programme_policy_update(user=world.admin, programme=world.programme, allowed="Apache-2.0", denied="",
                            review="", from_scratch_required=True,
                            reference_models=ReferenceModel.objects.filter(name="open-lab/base-7b"))
    return world, base
