"""No tracked file points at a folder that exists only on one machine.

A fresh clone must run its tests and benchmarks anywhere: a default, a fallback or a document
that names somebody's home or work folder works only where the project was first built (issue
#18: a benchmark corpus, an index and the shared data were all found that way). System paths the
code really uses are allowed one by one, each with its reason, so a new one is a decision.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Top-level folders that hold a person's or a machine's own files, never the project's.
MACHINE_ROOTS = frozenset({"home", "root", "work", "Users", "mnt", "media", "srv", "scratch", "workspace",
                           "workspaces", "data", "nfs", "shared", "refwheels"})
# Top-level folders of the system itself: a path under one is fine only if allowed below.
SYSTEM_ROOTS = frozenset({"usr", "etc", "dev", "proc", "sys", "bin", "sbin", "lib", "lib64", "opt", "var", "tmp",
                          "run", "nix", "Library", "Applications"})
# System paths the code and its documents really use, each the same on every Debian machine.
ALLOWED_SYSTEM_PATHS = (
    "/usr/bin/env",  # shebang lines
    "/bin/sh",  # shebang lines
    "/usr/bin/chromium",  # Debian's Chromium: the default browser, overridden by an environment variable
    "/dev/null",  # discarding output in shell lines and peer-tool commands
    "/dev/urandom",  # a random secret in .ci/run
    "/proc",  # reading a process's memory and state in tests and benchmarks
    "/etc/passwd",  # a path-traversal target that uploads and archives must refuse
    "/etc/shadow",  # the same
    "/etc/postgresql",  # .ci/run starts the cluster Debian's postgresql package installs
    "/var/lib/redis",  # .ci/run's redis-server data folder, as Debian's redis-server package lays it out
    "/var/log/redis",  # .ci/run's redis-server log, the same
    "/tmp",  # examples of scratch output; nothing reads from it
    # bench/submission_e2e.py draws its source tree from these where the machine has them (Debian's
    # C headers, Perl, CMake and Node modules, Python packages; the tool library's machines keep a
    # PyTorch CPU wheel in /opt/wheels); each is skipped when absent, and what each gave is reported.
    "/usr/include",
    "/usr/share/perl",
    "/usr/share/cmake-",
    "/usr/lib/node_modules",
    "/usr/lib/python3/dist-packages",
    "/opt/wheels",
)
# A path starts after a space, quote, bracket, '=' or a line start; not inside a URL, a relative
# path ("var/bench", "a/b"), a template ("{ROOT}/var", "$(VENV)/bin") or a closing HTML tag.
ABSOLUTE_PATH = re.compile(r"(?<![\w.~/:<>}\])$@*%-])/[A-Za-z0-9_.+-]+(?:/[A-Za-z0-9_.+-]*)*")
WINDOWS_HOME = re.compile(r"\b[A-Za-z]:\\\\?(?:Users|Documents and Settings)\\\\?", re.IGNORECASE)


def _tracked_text_files() -> list[Path]:
    names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    files = []
    for name in names:
        path = ROOT / name.decode()
        if not name or not path.is_file() or path.name == ".gitignore":  # there "/var/" means the repository's root
            continue
        head = path.read_bytes()[:8192]
        if b"\0" not in head:  # binary files (fonts, images, .mo) name no folder a reader follows
            files.append(path)
    return files


def path_problem(path: str) -> str | None:
    """Why an absolute path found in a tracked file must not be there, or None when it may."""
    path = path.rstrip(".,;:")  # sentence punctuation after a path
    top, _, rest = path.strip("/").partition("/")
    if top in MACHINE_ROOTS:
        return "a folder of one machine (a home or work folder)"
    if top in SYSTEM_ROOTS and rest and not any(path == allowed or path.startswith(allowed.rstrip("/") + "/")
                                                for allowed in ALLOWED_SYSTEM_PATHS):
        # A system folder alone ("/etc", "/tmp") points at nothing of one machine; a path inside one must be listed.
        return "a system path not in ALLOWED_SYSTEM_PATHS (add it there with why, if the code really needs it)"
    return None


def paths_in(text: str) -> list[tuple[int, str, str]]:
    """(line number, path, problem) for every absolute path in `text` that must not be there."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        for match in ABSOLUTE_PATH.finditer(line):
            problem = path_problem(match.group(0))
            if problem:
                found.append((number, match.group(0), problem))
        found.extend((number, match.group(0), "a Windows user folder") for match in WINDOWS_HOME.finditer(line))
    return found


def test_the_scan_finds_machine_folders_and_unlisted_system_paths() -> None:
    """The scan itself: what issue #18 found is caught, and what the code may use is not."""
    # Split so this file does not hold the paths it forbids.
    home, work, usr, etc, users = "/" + "home", "/" + "work", "/" + "usr", "/" + "etc", "C:\\" + "Users"
    caught = paths_in(
        f'parser.add_argument("--corpus", default="{work}/refwheels/src")\n'
        f"Corpus: {work}/refwheels/src; 11716 files\n"
        f"SHARED = Path('{work}/shared/data')\n"
        f"cp x {home}/alice/data\n"
        f"--out={work}\n"
        f"{users}\\alice\\corpus\n"
        f"ls {usr}/local/lib/linux\n"
        f"{etc}/passwdx\n"
    )
    assert [line for line, _, _ in caught] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert caught[-1][2].startswith("a system path not in ALLOWED_SYSTEM_PATHS")
    assert paths_in(
        "#!/usr/bin/env bash\n"
        'CHROMIUM = os.environ.get("PORTAL_CHROMIUM", "/usr/bin/chromium")\n'
        "see https://example.org/home/page and var/bench/corpus, {ROOT}/var/x, $(VENV)/bin/python\n"
        "<option>a</option> 38 files /s, 9.6 /min\n"
        "tar -xzOf f > /dev/null; python bench/codematch.py --out bench/out/codematch.json\n"
        "a link that points to /etc is refused; /etc/passwd, /tmp/x.json.\n"
    ) == []


def test_no_tracked_file_names_a_folder_of_one_machine() -> None:
    files = _tracked_text_files()
    assert len(files) > 100, "git ls-files found the repository"  # a scan of nothing would pass
    offenders = []
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        offenders += [f"{path.relative_to(ROOT)}:{line}: {found} ({problem})" for line, found, problem in paths_in(text)]
    assert not offenders, "absolute paths that exist only on some machines:\n" + "\n".join(offenders)
