#!/usr/bin/env python3
"""Write a training-evidence/1 bundle from a training run's checkpoints and log.

Standard library only, so it runs in any training environment:

    python scripts/training_evidence_write.py OUT \
        --checkpoint 0=runs/a/checkpoint-0 --checkpoint 2000=runs/a/checkpoint-2000 ... \
        (--log train_log.jsonl | --trainer-state runs/a/checkpoint-20000/trainer_state.json) \
        [--tokenizer runs/a/tokenizer.json] [--compute-flops 3.1e21] [--archive]

    # or every Hugging Face Trainer checkpoint of a run, step from the folder name:
    python scripts/training_evidence_write.py OUT --checkpoints-of runs/a --trainer-state \
        runs/a/checkpoint-20000/trainer_state.json

A checkpoint is a Hugging Face folder (config.json and safetensors; pickled .bin files are not
copied: the portal never loads them) or a fingerprint bundle (.npz) made by
`python manage.py fingerprint CHECKPOINT -o step_N.npz` for checkpoints too large to upload.
Files are hard-linked when OUT is on the same file system, else copied. `--archive` also writes
OUT.tar (no compression: safetensors do not compress). docs/training-evidence.md has the format.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import sys
import tarfile
from pathlib import Path

FORMAT = "training-evidence/1"
CHECKPOINT_FILES = ("config.json", "model.safetensors.index.json", "generation_config.json")


def _link_or_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def checkpoint_add(out: Path, step: int, source: Path) -> str:
    """Place one checkpoint under checkpoints/step_N and return its path in the bundle."""
    relative = f"checkpoints/step_{step}"
    target = out / relative
    if source.is_file():
        if source.suffix != ".npz":
            sys.exit(f"{source}: a checkpoint file must be a fingerprint bundle (.npz from manage.py fingerprint -o)")
        _link_or_copy(source, target / "fingerprint.npz")
        return relative
    weights = sorted(source.glob("*.safetensors"))
    if not weights or not (source / "config.json").is_file():
        sys.exit(f"{source}: needs config.json and .safetensors files (convert pickled checkpoints first)")
    for path in weights + [source / n for n in CHECKPOINT_FILES if (source / n).is_file()]:
        _link_or_copy(path, target / path.name)
    return relative


def log_from_trainer_state(path: Path) -> list[dict]:
    """Hugging Face Trainer's trainer_state.json: log_history entries that carry a training loss."""
    state = json.loads(path.read_text(encoding="utf-8"))
    rows = []
    for entry in state.get("log_history", []):
        if "loss" in entry and "step" in entry:
            row = {"step": int(entry["step"]), "loss": float(entry["loss"])}
            if "learning_rate" in entry:
                row["lr"] = float(entry["learning_rate"])
            if "num_input_tokens_seen" in entry:
                row["tokens"] = int(entry["num_input_tokens_seen"])
            rows.append(row)
    return rows


def log_from_jsonl(path: Path) -> list[dict]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        entry = json.loads(line)
        if "step" not in entry or "loss" not in entry:
            sys.exit(f"{path}, line {number}: every line needs 'step' and 'loss'")
        rows.append({k: entry[k] for k in ("step", "loss", "lr", "tokens") if k in entry})
    return rows


def log_check(rows: list[dict]) -> None:
    """Refuse what the portal refuses, here rather than after an upload."""
    if not rows:
        sys.exit("the log is empty")
    for prev, cur in zip(rows, rows[1:]):
        if cur["step"] <= prev["step"]:
            sys.exit(f"log: step {cur['step']} follows step {prev['step']}; keep only the entries of the run that "
                     "continued (after a resume, drop the re-logged steps)")
    if any(not math.isfinite(r["loss"]) for r in rows):
        sys.exit("log: a loss is not finite (NaN or inf)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="the bundle folder to create")
    parser.add_argument("--checkpoint", action="append", default=[], metavar="STEP=PATH",
                        help="a checkpoint folder or fingerprint bundle and its step; repeatable")
    parser.add_argument("--checkpoints-of", type=Path, help="a run folder holding checkpoint-<step> folders")
    log = parser.add_mutually_exclusive_group(required=True)
    log.add_argument("--log", type=Path, help="JSON lines with step and loss (lr, tokens optional)")
    log.add_argument("--trainer-state", type=Path, help="a Hugging Face Trainer trainer_state.json")
    parser.add_argument("--tokenizer", type=Path, help="tokenizer.json of the run")
    parser.add_argument("--compute-flops", type=float, help="total training compute you declare, in FLOPs")
    parser.add_argument("--archive", action="store_true", help="also write OUT.tar")
    args = parser.parse_args()

    pairs = []
    for item in args.checkpoint:
        step, _, path = item.partition("=")
        pairs.append((int(step), Path(path)))
    if args.checkpoints_of:
        for folder in args.checkpoints_of.iterdir():
            if match := re.fullmatch(r"checkpoint-(\d+)", folder.name):
                pairs.append((int(match.group(1)), folder))
    pairs.sort()
    if len({s for s, _ in pairs}) != len(pairs) or not pairs:
        sys.exit("give at least one checkpoint, each step once (the first one should be the initialisation, step 0)")
    if args.out.exists():
        sys.exit(f"{args.out} exists; choose a new folder")
    rows = log_from_trainer_state(args.trainer_state) if args.trainer_state else log_from_jsonl(args.log)
    log_check(rows)

    args.out.mkdir(parents=True)
    checkpoints = [{"step": step, "path": checkpoint_add(args.out, step, path)} for step, path in pairs]
    (args.out / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    manifest = {"format": FORMAT, "claim": "from_scratch", "checkpoints": checkpoints, "log": "train_log.jsonl"}
    if args.tokenizer:
        _link_or_copy(args.tokenizer, args.out / "tokenizer.json")
        manifest["tokenizer"] = "tokenizer.json"
    if args.compute_flops:
        manifest["compute_flops"] = args.compute_flops
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    if args.archive:
        with tarfile.open(f"{args.out}.tar", "w") as archive:
            archive.add(args.out, arcname=args.out.name)
    print(f"{args.out}: {len(checkpoints)} checkpoints (steps {pairs[0][0]}..{pairs[-1][0]}), {len(rows)} log entries")


if __name__ == "__main__":
    main()
