"""Anonymous dossier verification: memory and CPU for large and hostile uploads (issue #12).

    .venv/bin/python bench/verify_upload.py            # sizes 5, 20, 60 MB; hostile 0.5, 1, 2 MB
    .venv/bin/python bench/verify_upload.py --quick    # 5, 20 MB; hostile 0.5, 1 MB

Three measurements, each against a baseline measured in the same run:

  memory   tracemalloc peak of ``dossier_verify`` on a fake PDF of N MB read from disk
           (``pdf_file=``, what /verify/ does now) against reading it whole first and passing
           the bytes (``pdf_bytes=``, what /verify/ did before: ``upload.read()``)
  hostile  CPU seconds to answer a fake PDF whose ``startxref`` points into a run of digits:
           ``dossier_verify`` (which refuses it before any parser) against pyHanko's
           ``PdfFileReader`` reading the same bytes (what the verifier did before), whose
           byte-at-a-time scan grows with the file
  real     a real signed dossier (the sample context, rendered and signed in the run) verified
           from a file against from bytes: the streaming path must cost no more time

Prints a Markdown table and writes JSON to bench/out/verify_upload[-quick].json.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.inputs import out_write  # noqa: E402
from compliance.dossier.verify import dossier_verify  # noqa: E402

MB = 1024 * 1024


def fake_pdf(path: str, size: int) -> None:
    """%PDF- header, digits, and an end whose startxref points into the digits."""
    chunk = b"0" * MB
    with open(path, "wb") as out:
        out.write(b"%PDF-1.7\n")
        written = 9
        while written < size - MB:
            out.write(chunk)
            written += MB
        tail = b"\nstartxref\n9\n%%EOF\n"
        out.write(b"0" * (size - written - len(tail)) + tail)


def peak_of(fn) -> tuple[int, float]:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1], time.perf_counter() - started
    finally:
        tracemalloc.stop()


def cpu_of(fn) -> float:
    started = time.process_time()
    try:
        fn()
    except Exception:  # pyHanko refuses the file in the end; the time to get there is the cost
        pass
    return time.process_time() - started


def memory_rows(sizes: list[int], folder: str) -> list[dict]:
    rows = []
    for size_mb in sizes:
        path = os.path.join(folder, f"fake-{size_mb}.pdf")
        fake_pdf(path, size_mb * MB)

        def from_file(path=path):
            with open(path, "rb") as handle:
                dossier_verify(pdf_file=handle, trusted_certs=[], known_hashes=None)

        def from_bytes(path=path):
            with open(path, "rb") as handle:
                dossier_verify(pdf_bytes=handle.read(), trusted_certs=[], known_hashes=None)

        from_file()  # imports once, outside the measurement
        streamed, _ = peak_of(from_file)
        whole, _ = peak_of(from_bytes)
        rows.append({"size_mb": size_mb, "streamed_peak_mib": round(streamed / MB, 2),
                     "whole_peak_mib": round(whole / MB, 2), "ratio": round(whole / max(streamed, 1), 1)})
        os.remove(path)
    return rows


def hostile_rows(sizes: list[float], folder: str) -> list[dict]:
    from pyhanko.pdf_utils.reader import PdfFileReader

    rows = []
    for size_mb in sizes:
        path = os.path.join(folder, f"hostile-{size_mb}.pdf")
        fake_pdf(path, int(size_mb * MB))
        data = open(path, "rb").read()
        guarded = cpu_of(lambda path=path: dossier_verify(pdf_file=open(path, "rb"), trusted_certs=[], known_hashes=None))
        pyhanko = cpu_of(lambda data=data: PdfFileReader(io.BytesIO(data), strict=False))
        rows.append({"size_mb": size_mb, "guarded_cpu_s": round(guarded, 3), "pyhanko_cpu_s": round(pyhanko, 2),
                     "ratio": round(pyhanko / max(guarded, 1e-4))})
        os.remove(path)
    return rows


def real_row(folder: str) -> dict:
    from compliance.dossier.render import dossier_render
    from compliance.dossier.sample import sample_context_build
    from compliance.dossier.signing import dossier_sign, signing_identity_load_or_create

    identity = signing_identity_load_or_create(key_path=os.path.join(folder, "k.pem"),
                                               cert_path=os.path.join(folder, "c.pem"))
    rendered = dossier_render(context=sample_context_build(findings=100))
    signed = dossier_sign(pdf_bytes=rendered.pdf_bytes, identity=identity)
    path = os.path.join(folder, "real.pdf")
    with open(path, "wb") as out:
        out.write(signed)
    certs = [identity.cert_pem]
    times = {"file": [], "bytes": []}
    for _ in range(3):
        started = time.perf_counter()
        with open(path, "rb") as handle:
            ok_file = dossier_verify(pdf_file=handle, trusted_certs=certs, known_hashes=None).ok
        times["file"].append(time.perf_counter() - started)
        started = time.perf_counter()
        ok_bytes = dossier_verify(pdf_bytes=signed, trusted_certs=certs, known_hashes=None).ok
        times["bytes"].append(time.perf_counter() - started)
    return {"size_kb": len(signed) // 1024, "ok": ok_file and ok_bytes, "file_s": round(min(times["file"]), 3),
            "bytes_s": round(min(times["bytes"]), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sizes = [5, 20] if args.quick else [5, 20, 60]
    hostile = [0.5, 1] if args.quick else [0.5, 1, 2]
    with tempfile.TemporaryDirectory() as folder:
        results = {"memory": memory_rows(sizes, folder), "hostile": hostile_rows(hostile, folder),
                   "real": real_row(folder)}
    print("| fake PDF | peak, from the file | peak, read whole first | ratio |")
    print("| ---: | ---: | ---: | ---: |")
    for r in results["memory"]:
        print(f"| {r['size_mb']} MB | {r['streamed_peak_mib']} MiB | {r['whole_peak_mib']} MiB | {r['ratio']}x |")
    print()
    print("| hostile PDF (startxref into digits) | CPU, dossier_verify | CPU, pyHanko reading it | ratio |")
    print("| ---: | ---: | ---: | ---: |")
    for r in results["hostile"]:
        print(f"| {r['size_mb']} MB | {r['guarded_cpu_s']} s | {r['pyhanko_cpu_s']} s | {r['ratio']}x |")
    print()
    real = results["real"]
    print(f"real signed dossier ({real['size_kb']} KB, ok={real['ok']}): from the file {real['file_s']} s, "
          f"from bytes {real['bytes_s']} s (best of 3)")
    results["load_average_1min"] = round(os.getloadavg()[0], 2)
    out_write(name="verify_upload-quick" if args.quick else "verify_upload", data=results)


if __name__ == "__main__":
    main()
