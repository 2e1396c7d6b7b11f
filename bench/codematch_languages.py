"""Copied-code matching on non-Python code: the regex tokenizer against tree-sitter, in one run.

    nice -n 10 .venv/bin/python bench/codematch_languages.py [--work DIR] [--per-language 2500]
                                                             [--sources 25] [--negatives 60]
    .venv/bin/python bench/codematch_languages.py --quick   # C (libc6-dev) and JavaScript only, small sets

Inputs, fetched by name and version into var/bench/ (bench/inputs.py) and reused when there:
C headers from Debian's libc6-dev, linux-libc-dev, libssl-dev, libpython3.11-dev, libicu-dev,
libxml2-dev and libxslt1-dev, Go's standard library from golang-1.19-src, Rust's library and
compiler from rust-src (`apt-get download NAME=VERSION`, unpacked with `dpkg-deb -x`: no root,
about 60 MB in all), JavaScript from the npm package of the npm registry (`npm pack
npm@VERSION`, with its bundled dependencies). Held-out files come from this virtualenv.
--quick fetches libc6-dev and npm only (about 5 MB). Raw JSON goes to
bench/out/codematch-languages[-quick].json.

Per language, a reference set (at most --per-language files, picked by sha1 of
the path) is copied into WORK/ref/<language> and indexed twice with
`code_index_add`: once with `code_tokens` as committed (tree-sitter), once
with the regex tokenizer (`_other_tokens`) patched in for both indexing and
scanning. Held-out files of the same language (never indexed) are the hosts
for partial copies and the negatives:

  C           reference usr/include/**/*.h         held out: C/C++ files in this venv
                                                    (Cython output skipped: it copies CPython)
  Go          reference go/src minus cmd/           held out: go/src/cmd (minus vendor/,
                                                    types2: a copy of go/types, testdata/)
  Rust        reference library/ and compiler/      held out: clippy, rustfmt, rustdoc sources
  JavaScript  reference npm and its node_modules    held out: JavaScript in this venv

Labelled set: --sources reference files of 80-2,000 lines per language, each as
  exact        the file under another name
  renamed      every identifier tree-sitter sees (minus keywords) renamed, letters rotated
  reformatted  comments cut out, indentation redone with tabs, lines joined after
               , ( { = :, and `) {` braces moved to their own line (not in Go,
               where that changes the program); preprocessor lines left alone
  partial-N    N = 30, 60 lines from the middle of the file pasted into the
               middle of a held-out file of the same language (not a minified
               one: no line over 300 characters)
and --negatives held-out files. A positive is found when a match names the
source file (or lists it as a sibling) and, for partial-N, overlaps the pasted
lines. Precision counts every match: wrong origin, wrong lines, or any match
on a negative is a false positive.

Speed: tokens per second of both tokenizers over every reference file (same
process, one after the other), and tokenize time of one real file per
language repeated to 16 KiB, 128 KiB, 1 MiB and 2 MiB.
"""

from __future__ import annotations

import argparse
import codecs
import hashlib
import os
import re
import shutil
import sys
import time
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.inputs import VAR_BENCH, Pinned, debs_fetch, npm_fetch, out_write  # noqa: E402
from compliance.engine.codematch import index as index_module  # noqa: E402
from compliance.engine.codematch import scan as scan_module  # noqa: E402
from compliance.engine.codematch import tokens as tokens_module  # noqa: E402
from compliance.engine.codematch import CodeMatcher, code_index_add  # noqa: E402
from compliance.engine.codematch.tokens import _C_LIKE_KEYWORDS, _other_tokens, code_tokens  # noqa: E402

VENV = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".venv")
# Debian bookworm's versions on 6 Dec 2026 (`apt-cache policy`); sizes are the .deb's. The C set is what
# most of the published run's system header folder came from, less Node.js's and LLVM's bundled headers;
# libxml2 and libxslt are there because lxml's vendored copies of them are that run's "wrong" matches.
C_HEADERS = (Pinned("libc6-dev", "2.36-9+deb12u14", 1.9), Pinned("linux-libc-dev", "6.1.192-3", 2.5),
             Pinned("libssl-dev", "3.0.22-1~deb12u2", 2.5), Pinned("libpython3.11-dev", "3.11.2-6+deb12u9", 4.7),
             Pinned("libicu-dev", "72.1-3+deb12u1", 10.3), Pinned("libxml2-dev", "2.9.14+dfsg-1.3~deb12u6", 0.8),
             Pinned("libxslt1-dev", "1.1.35-1+deb12u4", 0.3))
C_HEADERS_QUICK = C_HEADERS[:1]
GO_SOURCES = Pinned("golang-1.19-src", "1.19.8-2", 18.3)
RUST_SOURCES = Pinned("rust-src", "1.63.0+dfsg1-2", 18.2)
# The npm that Node 20.20's nodejs package ships; its tarball bundles its dependencies' JavaScript.
JAVASCRIPT = Pinned("npm", "11.19.1", 2.5)
PARTIAL_SIZES = (30, 60)


def _sha(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def _walk(root: str, suffixes: tuple[str, ...], skip=lambda path: False) -> list[str]:
    found = []
    for directory, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names):
            path = os.path.join(directory, name)
            if name.endswith(suffixes) and not skip(path) and os.path.isfile(path) and 200 < os.path.getsize(path) < 1_000_000:
                found.append(path)
    return found


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.read()


def _not_cython(path: str) -> bool:
    return "Generated by Cython" not in _read(path)[:2000]


def languages(*, quick: bool) -> dict[str, dict]:
    """Reference and held-out files per language, from the fetched packages and this virtualenv.

    Each list is (root, files): files are picked and reported by their path under the root, so
    the pick is the same wherever the project and var/bench lie.
    """
    out = {}
    c_held = [p for p in _walk(VENV, (".c", ".h")) if _not_cython(p)]
    c_roots = [os.path.join(root, "usr", "include") for root in debs_fetch(items=C_HEADERS_QUICK if quick else C_HEADERS)]
    out["c"] = {"suffix": ".h", "reference": [(root, _walk(root, (".h",))) for root in c_roots],
                "held": (VENV, c_held)}
    if not quick:
        go_root, rust_root = debs_fetch(items=(GO_SOURCES, RUST_SOURCES))
        go_src = os.path.join(go_root, "usr", "share", "go-1.19", "src")
        go_ref = _walk(go_src, (".go",), skip=lambda p: "/cmd/" in p or "/testdata/" in p)
        go_held = _walk(os.path.join(go_src, "cmd"), (".go",),
                        skip=lambda p: "/vendor/" in p or "/types2/" in p or "/testdata/" in p)
        out["go"] = {"suffix": ".go", "reference": [(go_src, go_ref)], "held": (go_src, go_held)}
        rust_src = os.path.join(rust_root, "usr", "src", "rustc-1.63.0")
        rust_ref = _walk(os.path.join(rust_src, "library"), (".rs",)) + _walk(os.path.join(rust_src, "compiler"), (".rs",))
        rust_held = []
        for sub in ("src/tools/clippy/clippy_lints/src", "src/tools/rustfmt/src", "src/librustdoc"):
            rust_held += _walk(os.path.join(rust_src, sub), (".rs",))
        out["rust"] = {"suffix": ".rs", "reference": [(rust_src, rust_ref)], "held": (rust_src, rust_held)}
    npm = str(npm_fetch(item=JAVASCRIPT))
    js_ref = _walk(npm, (".js",))
    js_held = _walk(VENV, (".js",), skip=lambda p: p.endswith(".min.js"))
    out["javascript"] = {"suffix": ".js", "reference": [(npm, js_ref)], "held": (VENV, js_held)}
    for lang, spec in out.items():
        if not any(files for _, files in spec["reference"]):
            raise SystemExit(f"{lang}: no reference files in {[root for root, _ in spec['reference']]}")
    return out


# --- transformations ------------------------------------------------------------

def _grammar_for(path: str):
    suffix = os.path.splitext(path)[1]
    return tokens_module._grammar(tokens_module._SUFFIX_GRAMMAR[suffix])


def _nodes(path: str, text: str):
    grammar = _grammar_for(path)
    tree = tokens_module._parser(grammar).parse(text.encode("utf-8"))
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.children))


def _rotate(word: str) -> str:
    return codecs.encode(word, "rot13")


def renamed(path: str, text: str) -> str:
    grammar = _grammar_for(path)
    names, other = set(), set()
    for node in _nodes(path, text):
        if node.child_count:
            continue
        word = node.text.decode("utf-8", "replace")
        if node.is_named and (node.type.endswith("identifier") or node.type in ("variable_name", "word")):
            names.add(word)
        else:
            other.add(word)
    names = {n for n in names - other - set(grammar.anonymous_text) if re.fullmatch(r"[A-Za-z_]\w*", n)}
    reserved = set(grammar.anonymous_text) | _C_LIKE_KEYWORDS | other

    def new_name(match):
        word = match.group()
        if word not in names:
            return word
        rotated = _rotate(word)
        return rotated if rotated not in reserved else "z" + rotated

    return re.sub(r"\b[A-Za-z_]\w*\b", new_name, text)


def comments_removed(path: str, text: str) -> str:
    data = text.encode("utf-8")
    spans = [(n.start_byte, n.end_byte) for n in _nodes(path, text)
             if n.type in ("comment", "line_comment", "block_comment")]
    out, last = [], 0
    for start, end in spans:
        out.append(data[last:start])
        out.append(b" ")
        last = end
    out.append(data[last:])
    return b"".join(out).decode("utf-8", "replace")


def reformatted(path: str, text: str) -> str:
    text = comments_removed(path, text)
    out: list[str] = []
    joinable = False
    in_macro = False
    for line in text.split("\n"):
        stripped = line.strip()
        macro_line = in_macro or stripped.startswith("#")
        in_macro = macro_line and line.rstrip().endswith("\\")
        if macro_line:
            out.append(line)
            joinable = False
            continue
        if joinable and out[-1].rstrip().endswith((",", "(", "{", "=", ":")):
            out[-1] = out[-1].rstrip() + " " + stripped
        else:
            out.append("\t" * (len(line) - len(line.lstrip())) + stripped)
        if not path.endswith(".go") and out[-1].endswith(") {"):
            out[-1] = out[-1][:-2]
            out.append("{")
        joinable = True
    return "\n".join(out)


def partial(text: str, size: int, host: str, seed: str):
    lines = text.split("\n")
    if len(lines) < size + 20:
        return None
    start = 10 + int(_sha(seed), 16) % (len(lines) - size - 19)
    chunk = lines[start - 1: start - 1 + size]
    host_lines = host.split("\n")
    cut = len(host_lines) // 2
    vendor = host_lines[:cut] + chunk + host_lines[cut:]
    return "\n".join(vendor), (cut + 1, cut + size), (start, start + size - 1)


# --- evaluation -------------------------------------------------------------------

def match_evaluate(matches, *, origin: tuple[str, str], vendor_lines=None, origin_lines=None) -> tuple[int, int]:
    true_positives = false_positives = 0
    for m in matches:
        name, path = origin
        # Identical files in several places (usr/include's per-architecture
        # copies) form a cluster; a cluster longer than its listed siblings may hold the source.
        right_origin = m.origin.name == name and (m.origin.path == path or path in m.origin.siblings
                                                  or m.origin.sibling_count > len(m.origin.siblings))
        right_lines = vendor_lines is None or (m.lines[0] <= vendor_lines[1] and m.lines[1] >= vendor_lines[0])
        if right_origin and right_lines:
            true_positives += 1
        else:
            false_positives += 1
    return true_positives, false_positives


def _regex_tokens(*, path: str, text: str):
    if path.lower().endswith(tokens_module.PYTHON_SUFFIXES):
        return tokens_module._python_tokens(text)
    return _other_tokens(text)


class _Tokenizer:
    """Patch the tokenizer that indexing and scanning use."""

    def __init__(self, function):
        self.function = function

    def __enter__(self):
        self.saved = (index_module.code_tokens, scan_module.code_tokens)
        index_module.code_tokens = scan_module.code_tokens = self.function

    def __exit__(self, *exc):
        index_module.code_tokens, scan_module.code_tokens = self.saved


TOKENIZERS = {"regex": _regex_tokens, "tree-sitter": code_tokens}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="C and JavaScript, small sets: checks the run, not the figures")
    parser.add_argument("--work", default=None, help="copies and indexes (default var/bench/codematch-languages[-quick])")
    parser.add_argument("--per-language", type=int, default=None, help="reference files per language (2,500; quick 300)")
    parser.add_argument("--sources", type=int, default=None, help="labelled sources per language (25; quick 3)")
    parser.add_argument("--negatives", type=int, default=None, help="negatives per language (60; quick 10)")
    parser.add_argument("--out", default=None, help="raw JSON (default bench/out/codematch-languages[-quick].json)")
    args = parser.parse_args()
    for name, full_value, quick_value in (("per_language", 2500, 300), ("sources", 25, 3), ("negatives", 60, 10)):
        if getattr(args, name) is None:
            setattr(args, name, quick_value if args.quick else full_value)
    args.work = args.work or str(VAR_BENCH / ("codematch-languages-quick" if args.quick else "codematch-languages"))
    raw = {"mode": "quick" if args.quick else "full", "inputs": {}, "tokenizer_speed": [], "growth": [], "rows": []}

    langs = languages(quick=args.quick)
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    print(f"# codematch languages benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")

    # Reference sets, copied so the index holds exactly the picked files.
    reference_texts: dict[str, list[tuple[str, str]]] = {}
    for lang, spec in langs.items():
        picked = []
        for root, files in spec["reference"]:
            for path in files:
                picked.append((path, os.path.relpath(path, root)))
        picked.sort(key=lambda item: _sha(item[1]))
        picked = picked[: args.per_language]
        target = os.path.join(args.work, "ref", lang)
        texts = []
        for path, rel in picked:
            destination = os.path.join(target, rel)
            os.makedirs(os.path.dirname(destination), exist_ok=True)
            shutil.copyfile(path, destination)
            texts.append((rel, _read(destination)))
        reference_texts[lang] = texts
        print(f"- {lang}: {len(texts)} reference files, {sum(len(t) for _, t in texts) / 1e6:.1f} MB; "
              f"{len(spec['held'][1])} held-out files")
        raw["inputs"][lang] = {"reference_files": len(texts), "held_out_files": len(spec["held"][1])}

    # Tokenizer speed over every reference file, both tokenizers, and parse errors.
    print("\n## Tokenizer speed over the reference files\n")
    print("| language | files | MB | regex tokens | regex tokens/s | tree-sitter tokens | tree-sitter tokens/s | "
          "files with a parse error |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for lang, texts in reference_texts.items():
        row = [lang, str(len(texts)), f"{sum(len(t) for _, t in texts) / 1e6:.1f}"]
        for _name, function in TOKENIZERS.items():
            started = time.perf_counter()
            count = sum(len(function(path=rel, text=text)) for rel, text in texts)
            elapsed = time.perf_counter() - started
            row += [f"{count:,}", f"{count / elapsed:,.0f}"]
        errors = 0
        for rel, text in texts:
            grammar = _grammar_for(rel)
            errors += tokens_module._parser(grammar).parse(text.encode("utf-8")).root_node.has_error
        row.append(f"{errors} ({100 * errors / len(texts):.0f} %)")
        print("| " + " | ".join(row) + " |")
        raw["tokenizer_speed"].append(row)

    # Growth with file size.
    print("\n## Tokenize time against file size (one real file repeated)\n")
    print("| language | size | regex ms | tree-sitter ms | regex us/KiB | tree-sitter us/KiB |")
    print("| --- | --- | --- | --- | --- | --- |")
    for lang, texts in reference_texts.items():
        base_rel, base = sorted(texts, key=lambda item: abs(len(item[1]) - 20_000))[0]
        for size in (16 << 10, 128 << 10) if args.quick else (16 << 10, 128 << 10, 1 << 20, 2 << 20):
            text = (base + "\n") * (size // (len(base) + 1) + 1)
            text = text[:size]
            timings = []
            for function in TOKENIZERS.values():
                best = float("inf")
                for _ in range(3 if size <= 128 << 10 else 1):
                    started = time.perf_counter()
                    function(path=base_rel, text=text)
                    best = min(best, time.perf_counter() - started)
                timings.append(best)
            kib = size / 1024
            raw["growth"].append({"language": lang, "bytes": size, "regex_s": timings[0], "tree_sitter_s": timings[1]})
            print(f"| {lang} | {kib:,.0f} KiB | {timings[0] * 1000:,.1f} | {timings[1] * 1000:,.1f} | "
                  f"{timings[0] * 1e6 / kib:,.0f} | {timings[1] * 1e6 / kib:,.0f} |")

    # Labelled set per language.
    cases = []  # (lang, transformation, vendor path, text, origin, vendor lines)
    for lang, spec in langs.items():
        suffix = spec["suffix"]
        texts = [(rel, text) for rel, text in reference_texts[lang] if 80 <= text.count("\n") <= 2000]
        sources = texts[: args.sources]
        held_root, held_files = spec["held"]
        held = sorted(held_files, key=lambda p: _sha(os.path.relpath(p, held_root)))
        # A host is where someone pastes code: not a minified bundle, where the
        # middle line may sit inside a multi-line template string.
        host_paths = [p for p in held if max(map(len, _read(p).split("\n"))) <= 300][: args.sources]
        hosts = [_read(p) for p in host_paths]
        negatives = [p for p in held if p not in host_paths][: args.negatives]
        for number, (rel, text) in enumerate(sources):
            origin = (lang, rel)
            vendor = f"vendor/{lang}/copy{number}{os.path.splitext(rel)[1] or suffix}"
            cases.append((lang, "exact", vendor, text, origin, None))
            cases.append((lang, "renamed", vendor, renamed(vendor, text), origin, None))
            cases.append((lang, "reformatted", vendor, reformatted(vendor, text), origin, None))
            host = hosts[number % len(hosts)]
            for size in PARTIAL_SIZES:
                made = partial(text, size, host, seed=f"{rel}{size}")
                if made:
                    vendor_text, vendor_lines, _ = made
                    cases.append((lang, f"partial-{size}", f"vendor/{lang}/host{number}{suffix}", vendor_text, origin,
                                  vendor_lines))
        for path in negatives:
            cases.append((lang, "negative", f"vendor/{lang}/{os.path.basename(path)}", _read(path), None, None))

    print(f"\n## Labelled set: {len(cases)} vendor files\n")
    results: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # cases, found, right, wrong
    coverage: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    index_seconds = {}
    wrong_examples = defaultdict(list)
    for name, function in TOKENIZERS.items():
        index_dir = os.path.join(args.work, f"index-{name}")
        with _Tokenizer(function):
            started = time.perf_counter()
            files = 0
            for lang in langs:
                summary = code_index_add(index_dir=index_dir, source=os.path.join(args.work, "ref", lang), name=lang,
                                         version="bench", license_expression="NOASSERTION")
                files += summary.files
            index_seconds[name] = (files, time.perf_counter() - started)
            matcher = CodeMatcher(index_dir=index_dir)
            try:
                for lang, transformation, vendor, text, origin, vendor_lines in cases:
                    matches = matcher.file_match(path=vendor, text=text)
                    cell = results[(lang, transformation, name)]
                    cell[0] += 1
                    if origin is None:
                        cell[1] += bool(matches)
                        cell[3] += len(matches)
                        for m in matches:
                            wrong_examples[(name, lang)].append(f"negative {vendor} -> {m.origin.path} "
                                                                f"lines {m.lines} score {m.score}")
                        continue
                    right, wrong = match_evaluate(matches, origin=origin, vendor_lines=vendor_lines)
                    first, last = vendor_lines or (1, text.count("\n") + 1)
                    covered = set()
                    for m in matches:
                        if match_evaluate([m], origin=origin, vendor_lines=vendor_lines)[0]:
                            covered |= set(range(max(first, m.lines[0]), min(last, m.lines[1]) + 1))
                    coverage[(lang, transformation, name)].append(len(covered) / (last - first + 1))
                    cell[1] += right > 0
                    cell[2] += right
                    cell[3] += wrong
                    if wrong and len(wrong_examples[(name, lang)]) < 200:
                        for m in matches:
                            if match_evaluate([m], origin=origin, vendor_lines=vendor_lines)[0]:
                                continue
                            wrong_examples[(name, lang)].append(
                                f"{transformation} {vendor} (source {origin[1]}, lines {vendor_lines}) -> "
                                f"{m.origin.name}:{m.origin.path} lines {m.lines} score {m.score}")
            finally:
                matcher.close()

    for name, (files, seconds) in index_seconds.items():
        print(f"- index with {name}: {files} files in {seconds:.0f} s")
    transformations = ["exact", "renamed", "reformatted"] + [f"partial-{n}" for n in PARTIAL_SIZES] + ["negative"]
    print("\nCoverage: mean share of the copied lines inside a right match (0 when not found).")
    print("\n| language | transformation | cases | regex found | regex right / wrong | regex precision | regex coverage | "
          "tree-sitter found | tree-sitter right / wrong | tree-sitter precision | tree-sitter coverage |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    totals = {name: [0, 0] for name in TOKENIZERS}
    for lang in langs:
        for transformation in transformations:
            row = [lang, transformation]
            for name in TOKENIZERS:
                count, found, right, wrong = results[(lang, transformation, name)]
                if name == "regex":
                    row.append(str(count))
                if count == 0:
                    row += ["-", "-", "-", "-"]
                    continue
                totals[name][0] += right
                totals[name][1] += wrong
                if transformation == "negative":
                    row += [f"{found} with any match", f"0 / {wrong}", "-", "-"]
                else:
                    precision = f"{100 * right / (right + wrong):.1f} %" if right + wrong else "-"
                    shares = coverage[(lang, transformation, name)]
                    row += [f"{found} ({100 * found / count:.0f} %)", f"{right} / {wrong}", precision,
                            f"{100 * sum(shares) / len(shares):.0f} %"]
            print("| " + " | ".join(row) + " |")
            raw["rows"].append(row)
    for name, (right, wrong) in totals.items():
        print(f"\nOverall precision, {name}: {right} right / {right + wrong} matches = "
              f"{100 * right / max(1, right + wrong):.1f} %")
    raw["index_seconds"] = {name: {"files": files, "seconds": round(seconds, 1)} for name, (files, seconds) in index_seconds.items()}
    raw["precision"] = {name: {"right": right, "matches": right + wrong} for name, (right, wrong) in totals.items()}
    raw["wrong_matches"] = {f"{name}/{lang}": lines for (name, lang), lines in sorted(wrong_examples.items())}
    out_write(name="codematch-languages-quick" if args.quick else "codematch-languages", data=raw, out=args.out)
    print("\n## Wrong matches (for checking by hand)\n")
    for (name, lang), lines in sorted(wrong_examples.items()):
        print(f"### {name} / {lang}: {len(lines)}\n")
        for line in lines[:40]:
            print(f"- {line}")
        print()


if __name__ == "__main__":
    main()
