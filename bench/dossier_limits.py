"""Dossier render time at the field limits, and with data from before the limits.

    .venv/bin/python bench/dossier_limits.py [--langs en,ko] [--quick] [--out results.json]

`--quick` (what `make bench` runs): English, the case at the limits only. Raw JSON goes to
bench/out/dossier_limits[-quick].json unless --out names another file.

Renders compliance.dossier.sample.sample_context_at_limits (data summary 20,000 characters,
100 base models, 100 third-party entries, 250 findings with 10,000-character replies,
255-character file names, 500 licence and 500 code-match rows) and its legacy variant
(1 MB summary, 1,000 + 1,000 rows, 100,000-character replies), after one warm-up render.
Prints pages and seconds; the dossier worker's limit is 60 s for any submission within the
limits (issue #10).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.inputs import out_write  # noqa: E402
from compliance.dossier.render import dossier_render  # noqa: E402
from compliance.dossier.sample import sample_context_at_limits, sample_context_build  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--langs", default="en")
    parser.add_argument("--quick", action="store_true", help="English, the case at the limits only")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    if args.quick:
        args.langs = "en"
    dossier_render(context=sample_context_build(findings=1))  # fonts and templates loaded once
    rows = []
    for lang in args.langs.split(","):
        for legacy in (False,) if args.quick else (False, True):
            context = sample_context_at_limits(lang=lang, legacy=legacy)
            started = time.perf_counter()
            result = dossier_render(context=context)
            seconds = time.perf_counter() - started
            findings_json = next(a for a in result.attachments if a.name == "findings.json")
            rows.append({"case": "legacy" if legacy else "limits", "lang": lang, "pages": result.pages,
                         "render_s": round(seconds, 2), "findings_json_bytes": len(findings_json.data)})
            print(f"| {rows[-1]['case']} | {lang} | {result.pages} | {seconds:.1f} s | {len(findings_json.data) / 1e6:.2f} MB |", flush=True)
    out_write(name="dossier_limits-quick" if args.quick else "dossier_limits", data=rows, out=args.out or None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
