"""bench/submission_e2e.py, scaled down: one submission goes through the real workers (intake,
lineage, licences, copied code, the signed dossier), then version 2 with 1 % of its source files
changed, and the figures it prints are the ones the benchmark publishes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.worker
@pytest.mark.slow
def test_a_scaled_down_submission_runs_every_stage_for_real_and_reports_both_versions(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    out = tmp_path / "e2e.json"
    proc = subprocess.run(
        [sys.executable, "bench/submission_e2e.py", "--files", "100", "--references", "2", "--model", "small",
         "--no-cache-baseline", "--no-scancode-baseline", "--timeout", "1200", "--work", str(tmp_path / "work"),
         "--out", str(out), "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=2400)
    assert proc.returncode == 0, proc.stderr[-4000:]
    printed = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert printed == json.loads(out.read_text())
    run = printed["runs"][0]
    assert printed["total_s"] == run["v1"]["total_s"] > 0
    assert printed["version2_total_s"] == run["v2"]["total_s"] > 0
    assert set(printed["stages"]) == {"intake", "lineage", "licenses", "code", "dossier"}

    v1 = run["v1"]["stages"]
    # Every artifact went through intake and was accepted; every later check ran on a worker, none reused.
    assert v1["intake"]["states"] == {"succeeded": run["v1"]["artifacts"]}
    for check in ("lineage", "licenses", "code"):
        assert v1[check]["states"] == {"succeeded": v1[check]["runs"]}, check
        assert v1[check]["reused_runs"] == 0 and v1[check]["busy_s"] > 0, check
    assert v1["lineage"]["verdicts"] and v1["code"]["summary"]["files_with_matches"] >= 1  # the copied corpus files
    # The planted GPL/AGPL files and the copied corpus code are found.
    assert run["v1"]["findings"].get("undeclared_third_party_code", 0) >= 1
    assert v1["dossier"]["state"] == "ready" and v1["dossier"]["bytes"] > 0
    assert 0 < v1["dossier"]["render_and_sign_s"] <= run["v1"]["total_s"]
    assert run["v1"]["workers"]["checks"]["cpu_s"] > 0 and run["v1"]["workers"]["checks"]["peak_rss_tree_mb"] > 0
    # The licences + copied-code window (the "under 5 minutes" aim) with how busy the cores were.
    window = run["v1"]["scans_window"]
    assert window["start_s"] < window["end_s"] and window["window_s"] == round(window["end_s"] - window["start_s"], 1)
    assert 0 < window["cores_busy"] <= (os.cpu_count() or 1) + 0.05
    assert window["scanner_cpu_s"] >= 0 and window["other_cpu_s"] == round(
        window["cores_busy"] * window["window_s"] - window["scanner_cpu_s"], 1)

    # Version 2: the carried-over weights are not checked again; the new source archive is.
    v2 = run["v2"]["stages"]
    assert run["inputs"]["v2_changed_files"] == 1
    assert v2["lineage"]["reused_runs"] == 1
    assert v2["code"]["states"] == {"succeeded": 1} and v2["code"]["reused_runs"] == 0
    assert v2["dossier"]["state"] == "ready"
    # The 1.8 GB checkpoint stayed sparse in storage (moved, not copied).
    assert run["storage"]["allocated_bytes"] < run["storage"]["apparent_bytes"] / 4


class _CountingBuffer:
    """A moto object's stored buffer that counts the bytes read from it: the test's own view of
    what an endpoint read to answer, independent of the bench's counters."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.bytes_read = 0

    def read(self, size: int = -1) -> bytes:
        data = self.inner.read(size)
        self.bytes_read += len(data)
        return data

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


def _signed_get(url: str, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    """One GET as sent on the wire (SigV4-signed, as moto's server wants to know the service), and
    the answer as received: status, headers, body."""
    import http.client
    from urllib.parse import urlsplit

    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method="GET", url=url + path, headers=headers)
    S3SigV4Auth(Credentials("bench", "bench"), "s3", "us-east-1").add_auth(request)
    where = urlsplit(url)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=60)
    try:
        connection.request("GET", path, headers=dict(request.headers.items()))
        response = connection.getresponse()
        # Per-response identifiers and the clock differ between two answers to the same request.
        body = re.sub(rb"<(RequestId|HostId)>[^<]*</(RequestId|HostId)>", b"", response.read())
        varying = {"date", "x-amzn-requestid", "x-amz-request-id", "x-amz-id-2", "server"}
        return response.status, {k.lower(): v for k, v in response.getheaders() if k.lower() not in varying}, body
    finally:
        connection.close()


def test_the_bench_endpoint_answers_a_ranged_get_as_moto_does_reading_only_the_range() -> None:
    import threading

    import boto3
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from moto.s3.models import s3_backends
    from werkzeug.serving import make_server

    from bench.submission_e2e import S3Endpoint

    bench = S3Endpoint()
    # moto's own server, unwrapped, in the same process: the same backend, so the same stored object.
    plain = make_server("127.0.0.1", 0, DomainDispatcherApplication(create_backend_app), threaded=True,
                        request_handler=MotoRequestHandler)
    threading.Thread(target=plain.serve_forever, daemon=True).start()
    plain_url = f"http://127.0.0.1:{plain.server_port}"
    try:
        client = boto3.client("s3", endpoint_url=bench.url, region_name="us-east-1", aws_access_key_id="bench",
                              aws_secret_access_key="bench")
        client.create_bucket(Bucket="ranges")
        # 20 MiB: above moto's 16 MiB in-memory limit, so on disk like the bench's shard; with a checksum.
        data = os.urandom(20 * 1024 * 1024)
        client.put_object(Bucket="ranges", Key="model.safetensors", Body=data, ChecksumAlgorithm="SHA256")
        stored = s3_backends[DEFAULT_ACCOUNT_ID]["aws"].get_object("ranges", "model.safetensors")
        stored._value_buffer = buffer = _CountingBuffer(stored._value_buffer)
        size = len(data)

        single_ranges = {  # Range header -> the bytes a store answers with
            "bytes=100-199": data[100:200],
            f"bytes={size - 1000}-": data[-1000:],
            "bytes=-65536": data[-65536:],
            f"bytes=8-{10 * size}": data[8:],
        }
        for range_header, expected in single_ranges.items():
            for extra in ({}, {"x-amz-checksum-mode": "ENABLED"}):
                headers = {"Range": range_header, **extra}
                before = bench.mark()
                buffer.bytes_read = 0
                status, got_headers, body = _signed_get(bench.url, "/ranges/model.safetensors", headers)
                read_by_bench = buffer.bytes_read
                buffer.bytes_read = 0
                assert (status, got_headers, body) == _signed_get(plain_url, "/ranges/model.safetensors", headers), headers
                assert buffer.bytes_read == size  # moto alone reads the whole object for any range
                assert status == 206 and body == expected and int(got_headers["content-length"]) == len(expected)
                assert got_headers["accept-ranges"] == "bytes" and got_headers["etag"] == stored.etag
                assert not any(h.startswith("x-amz-checksum-sha256") for h in got_headers)  # partial: no checksum
                # The bench's endpoint read the range only, and its counters say what it read and served.
                assert read_by_bench == len(expected), headers
                since = bench.since(before, suffix=".safetensors")
                assert since["weights_bytes_served"] == since["weights_bytes_read_from_store_for_ranges"] == len(expected)
                assert since["weights_get_requests"] == 1

        # Everything else is moto's own answer: the whole object as one range (its checksum kept), a
        # range past the end (416), a failed precondition (412), a list of ranges (moto sends it all).
        for headers in ({"Range": "bytes=0-", "x-amz-checksum-mode": "ENABLED"}, {"Range": f"bytes={size}-"},
                        {"Range": "bytes=0-9", "If-Match": '"not-the-etag"'}, {"Range": "bytes=0-9,20-29"},
                        {}):
            assert _signed_get(bench.url, "/ranges/model.safetensors", headers) == \
                _signed_get(plain_url, "/ranges/model.safetensors", headers), headers
        whole = _signed_get(bench.url, "/ranges/model.safetensors", {"Range": "bytes=0-", "x-amz-checksum-mode": "ENABLED"})
        assert whole[0] == 206 and whole[2] == data and "x-amz-checksum-sha256" in whole[1]
    finally:
        bench.stop()
        plain.shutdown()
