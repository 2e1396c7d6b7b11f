"""Intake: the content's real type, its hash against the one recorded at upload, and safety.

The analysis is ``compliance.engine.intake.artifact_inspect``; this module maps its
report onto findings and the artifact's quarantine state.
"""

from __future__ import annotations

from compliance.checks import CheckContext, CheckFailed, CheckOutcome

def engine_version() -> str:
    from compliance.engine.intake import INTAKE_ENGINE_VERSION

    return f"intake-{INTAKE_ENGINE_VERSION}"


def reuse_inputs(artifact) -> dict:
    """What ``run`` reads: the bytes, the declared kind, the programme's size cap, and the names
    (on local storage the engine sees the stored file's name, which its findings quote: a file
    uploaded again is stored under another name, a carried-over one keeps its stored object)."""
    return {"sha256": artifact.sha256, "name": artifact.original_name, "stored_name": artifact.file.name,
            "declared_kind": artifact.kind,
            "max_bytes": artifact.submission.project.programme.max_artifact_bytes}


def run(ctx: CheckContext) -> CheckOutcome:
    from compliance.engine.intake import artifact_inspect
    from compliance.engine.intake_common import IntakeLimits

    artifact = ctx.artifact
    # The programme's per-artifact cap applies here too (upload already enforced it; storage may differ).
    limits = IntakeLimits(max_bytes=artifact.submission.project.programme.max_artifact_bytes)
    ctx.progress(0.05, "reading the file")
    with ctx.local_path() as path:
        report = artifact_inspect(path=path, declared_kind=artifact.kind,
                                  limits=limits)
    data = report.to_dict()
    ctx.progress(0.9, "recording findings")
    findings = [
        {
            "severity": f["severity"],
            "category": "intake",
            "code": f["code"],
            "title": f["message"][:300],
            "explanation": f["message"],
            "evidence": f.get("evidence") or {},
            # The file the sentence names (compliance.finding_texts), when the engine's evidence
            # does not name one: the artifact itself.
            "params": ({} if {"file", "member", "archive"} & set(f.get("evidence") or {})
                       else {"place": artifact.original_name}),
        }
        for f in data.get("findings", [])
    ]
    # sha256 is None when the engine refused to read the file at all (too large, not a regular
    # file); its findings say why, and they reject the file.
    if data["sha256"] is not None and data["sha256"] != artifact.sha256:
        # Storage changed the bytes after upload: nothing else about this file can be trusted.
        raise CheckFailed(
            f"{artifact.original_name}: stored file's SHA-256 {data['sha256'][:16]}… differs from the "
            f"{artifact.sha256[:16]}… recorded at upload; the stored copy was altered or damaged"
        )
    summary = {"sha256": data["sha256"], "size": data.get("size"), "detected_kind": data["kind"],
               "verdict": data["verdict"], "findings": len(findings)}
    return CheckOutcome(
        verdict=data["verdict"],
        summary=summary,
        findings=findings,
        engine_version=engine_version(),
        inputs={"sha256": artifact.sha256, "declared_kind": artifact.kind},
    )
