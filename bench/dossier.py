"""Dossier benchmark: render, sign and verify, against peer tools, same run.

    .venv/bin/python bench/dossier.py [--sizes 10,1000,10000] [--uncapped-max 1000] [--out results.json]
    .venv/bin/python bench/dossier.py --quick     # 10 and 100 findings, uncapped up to 10

For each number of findings N (fictional context from compliance.dossier.sample):

  render      dossier_render: PDF/A-3b, 3 attachments, the first
              FINDINGS_PER_SEVERITY findings per severity printed (the shipped
              setting: 50 until Dec 2026, 10 since; see bench/dossier_limits.py)
  uncapped    the same with every finding printed (findings_per_severity=N),
              for N <= --uncapped-max: what the cap saves
  chromium    the very same HTML printed by headless Chromium (--print-to-pdf),
              the engine AI Verify (Puppeteer) and VerifyWise (Playwright)
              use; no PDF/A, no attachments, one process start included
  sign        dossier_sign (pyHanko PAdES, incremental) of the rendered file
  cms         peer for signing: a detached CMS/PKCS#7 signature over the same
              bytes with `cryptography` (no PDF parsing): the floor
  verify      dossier_verify (pyHanko validation + container and manifest checks)
  pdfsig      peer for verifying: poppler's `pdfsig` on the same file

Inputs are built in the run (a fictional context, a throwaway signing key); the peers are
Debian's chromium and poppler-utils (`apt-get install chromium poppler-utils`), left out of
the table when absent. Prints a Markdown table and writes the numbers as JSON to
bench/out/dossier[-quick].json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.inputs import out_write  # noqa: E402
from compliance.dossier.render import dossier_html_render, dossier_render  # noqa: E402
from compliance.dossier.fetcher import STATIC_ROOT  # noqa: E402
from compliance.dossier.sample import sample_context_build  # noqa: E402
from compliance.dossier.signing import dossier_sign, signing_identity_load_or_create  # noqa: E402
from compliance.dossier.verify import dossier_verify  # noqa: E402


def timed(fn, *args, **kwargs):
    started = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - started


def chromium_print(*, html: str, folder: str) -> tuple[float | None, int | None]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not browser:
        return None, None
    # The HTML names the fonts by absolute file:// URL under static/;
    # --allow-file-access-from-files lets Chromium load them from a page in /tmp.
    page = os.path.join(folder, "dossier.html")
    out = os.path.join(folder, "chromium.pdf")
    with open(page, "w", encoding="utf-8") as handle:
        handle.write(html)
    try:
        started = time.perf_counter()
        subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files", "--no-pdf-header-footer",
             f"--print-to-pdf={out}", "file://" + page],
            capture_output=True, timeout=900, check=False,
        )
        elapsed = time.perf_counter() - started
    finally:
        os.unlink(page)
    return (elapsed, os.path.getsize(out)) if os.path.exists(out) else (None, None)


def cms_signer_load(*, key_path: str, cert_path: str):
    """Key and certificate loaded once, outside the timing (pyHanko's signer is too)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(open(key_path, "rb").read(), password=None)
    cert = x509.load_pem_x509_certificate(open(cert_path, "rb").read())
    return key, cert


def cms_sign(*, data: bytes, key, cert) -> bytes:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.serialization import pkcs7

    return (
        pkcs7.PKCS7SignatureBuilder().set_data(data).add_signer(cert, key, hashes.SHA256())
        .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary])
    )


def pdfsig_verify(*, pdf: bytes, folder: str) -> float | None:
    tool = shutil.which("pdfsig")
    if not tool:
        return None
    path = os.path.join(folder, "signed.pdf")
    with open(path, "wb") as handle:
        handle.write(pdf)
    started = time.perf_counter()
    subprocess.run([tool, path], capture_output=True, timeout=300, check=False)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 and 100 findings: checks the run, not the figures")
    parser.add_argument("--sizes", default=None, help="findings per dossier (10,1000,10000; quick 10,100)")
    parser.add_argument("--uncapped-max", type=int, default=None, help="largest N also rendered uncapped (1,000; quick 10)")
    parser.add_argument("--out", default=None, help="raw JSON (default bench/out/dossier[-quick].json)")
    args = parser.parse_args()
    args.sizes = args.sizes or ("10,100" if args.quick else "10,1000,10000")
    args.uncapped_max = args.uncapped_max if args.uncapped_max is not None else (10 if args.quick else 1000)
    sizes = [int(s) for s in args.sizes.split(",")]

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        identity = signing_identity_load_or_create(key_path=os.path.join(folder, "k.pem"), cert_path=os.path.join(folder, "c.pem"))
        cms_key, cms_cert = cms_signer_load(key_path=identity.key_path, cert_path=identity.cert_path)
        # Warm-up: font loading and template compilation happen once per process.
        dossier_render(context=sample_context_build(findings=1))
        # Chromium's fixed cost (process start, an empty page) so its per-page cost can be read off.
        chromium_empty_s, _ = chromium_print(html="<!DOCTYPE html><p>x</p>", folder=folder)
        for n in sizes:
            context = sample_context_build(findings=n)
            result, render_s = timed(dossier_render, context=context)
            uncapped_s = uncapped_pages = None
            if n <= args.uncapped_max:
                full, uncapped_s = timed(dossier_render, context=context, findings_per_severity=n)
                uncapped_pages = full.pages
            html = dossier_html_render(context=context, static_base=STATIC_ROOT.as_uri() + "/")
            chromium_s, chromium_size = chromium_print(html=html, folder=folder)
            signed, sign_s = timed(dossier_sign, pdf_bytes=result.pdf_bytes, identity=identity)
            _, cms_s = timed(cms_sign, data=result.pdf_bytes, key=cms_key, cert=cms_cert)
            sha = hashlib.sha256(signed).hexdigest()
            verdict, verify_s = timed(
                dossier_verify, pdf_bytes=signed, trusted_certs=[identity.cert_pem], known_hashes={sha: {"submission": 42}}.get
            )
            assert verdict.ok, verdict.reasons
            pdfsig_s = pdfsig_verify(pdf=signed, folder=folder)
            rows.append(
                {
                    "load_average_1min": round(os.getloadavg()[0], 2),
                    "findings": n,
                    "pages": result.pages,
                    "findings_printed": result.findings_shown,
                    "pdf_bytes": len(signed),
                    "attachments_bytes": sum(len(a.data) for a in result.attachments),
                    "render_s": round(render_s, 3),
                    "uncapped_render_s": None if uncapped_s is None else round(uncapped_s, 3),
                    "uncapped_pages": uncapped_pages,
                    "chromium_print_s": None if chromium_s is None else round(chromium_s, 3),
                    "chromium_pdf_bytes": chromium_size,
                    "sign_s": round(sign_s, 4),
                    "cms_sign_s": round(cms_s, 4),
                    "verify_s": round(verify_s, 4),
                    "pdfsig_s": None if pdfsig_s is None else round(pdfsig_s, 4),
                }
            )
            print(f"done N={n}", file=sys.stderr)

    def ratio(a, b):
        return "—" if a is None or b in (None, 0) else f"{a / b:.2f}x"

    print(f"Machine: {os.cpu_count()} CPUs; 1-minute load average per row: {[r['load_average_1min'] for r in rows]}\n")
    if chromium_empty_s is not None:
        print(f"Chromium start + empty page: {chromium_empty_s:.2f} s (included in the Chromium column).\n")
    print("| findings | pages (printed) | PDF size | attachments | render | uncapped render (pages) | Chromium print (same HTML) | render / Chromium | sign | CMS floor | verify | pdfsig | verify / pdfsig |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        uncapped = "—" if r["uncapped_render_s"] is None else f"{r['uncapped_render_s']:.2f} s ({r['uncapped_pages']})"
        chromium = "—" if r["chromium_print_s"] is None else f"{r['chromium_print_s']:.2f} s"
        pdfsig = "—" if r["pdfsig_s"] is None else f"{r['pdfsig_s'] * 1000:.0f} ms"
        print(
            f"| {r['findings']:,} | {r['pages']} ({r['findings_printed']}) | {r['pdf_bytes'] / 1e6:.2f} MB | {r['attachments_bytes'] / 1e6:.2f} MB "
            f"| {r['render_s']:.2f} s | {uncapped} | {chromium} | {ratio(r['render_s'], r['chromium_print_s'])} "
            f"| {r['sign_s'] * 1000:.0f} ms | {r['cms_sign_s'] * 1000:.0f} ms | {r['verify_s'] * 1000:.0f} ms | {pdfsig} | {ratio(r['verify_s'], r['pdfsig_s'])} |"
        )
    out_write(name="dossier-quick" if args.quick else "dossier", out=args.out,
              data={"mode": "quick" if args.quick else "full", "chromium_empty_page_s": chromium_empty_s, "rows": rows})
    print(json.dumps({"chromium_empty_page_s": chromium_empty_s, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
