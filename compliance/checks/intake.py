"""Intake: the content's real type, its hash against the one recorded at upload, and safety.

The analysis is ``compliance.engine.intake.artifact_inspect``; this module maps its
report onto findings and the artifact's quarantine state.

Weights (safetensors, GGUF) held in object storage are not downloaded: one HEAD compares what
the store says identifies the object with what it said at upload (its SHA-256 checksum, version,
ETag, size; ``projects.storage.stored_object_verify``), and the header checks read by byte range
(``compliance.engine.intake.weights_source_inspect``). Everything else, and any object whose store
keeps no checksum or version, is read whole and re-hashed as on local storage. The run's summary
says which (``verified``).
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


_WEIGHTS_SUFFIXES = (".safetensors", ".gguf")


def _weights_by_range(*, artifact, limits):
    """(report, how the bytes were verified) for weights on object storage whose store identifies
    them; (None, None) when the file must be read whole instead. Raises CheckFailed when the object
    is not the one stored at upload."""
    from compliance.engine.intake import weights_source_inspect
    from projects.storage import StoredObjectChanged, stored_object_verify, stored_range_reader

    if not artifact.original_name.lower().endswith(_WEIGHTS_SUFFIXES) and artifact.kind != "weights":
        return None, None
    try:
        evidence = stored_object_verify(stored_name=artifact.file.name, identity=artifact.stored_identity)
        if evidence is None:
            return None, None
        reader = stored_range_reader(stored_name=artifact.file.name, name=artifact.original_name.rsplit("/", 1)[-1],
                                     identity=artifact.stored_identity)
        report = weights_source_inspect(source=reader, declared_kind=artifact.kind, sha256=artifact.sha256,
                                        limits=limits)
    except StoredObjectChanged as exc:
        raise CheckFailed(f"{artifact.original_name}: {exc}; the stored copy was altered or damaged") from exc
    if report is None:
        return None, None
    evidence["text"] = _verified_text(evidence)
    evidence["bytes_read"] = reader.bytes_read
    return report, evidence


def _verified_text(evidence: dict) -> str:
    """How the bytes were verified, in one sentence for the record."""
    if evidence.get("checksum_is_file_sha256"):
        how = ("the store checked the file's SHA-256 on receipt and still reports it (x-amz-checksum-sha256), "
               "equal to the SHA-256 taken while the upload streamed in")
    elif evidence.get("checksum_sha256"):
        how = ("the store checked each part's SHA-256 on receipt and still reports the same checksum of them "
               "(x-amz-checksum-sha256); the bytes sent were hashed as sent and gave the upload's SHA-256")
    else:
        how = "the object is the version stored at upload (S3 versions never change)"
    return f"not downloaded: {how}; compared with one HEAD: {', '.join(evidence['compared'])}"


def run(ctx: CheckContext) -> CheckOutcome:
    from compliance.engine.intake import artifact_inspect
    from compliance.engine.intake_common import IntakeLimits

    artifact = ctx.artifact
    # The programme's per-artifact cap applies here too (upload already enforced it; storage may differ).
    limits = IntakeLimits(max_bytes=artifact.submission.project.programme.max_artifact_bytes)
    ctx.progress(0.05, "reading the file")
    report, verified = _weights_by_range(artifact=artifact, limits=limits)
    if report is None:
        with ctx.local_path() as path:
            report = artifact_inspect(path=path, declared_kind=artifact.kind,
                                      limits=limits)
        verified = {"method": "SHA-256 recomputed", "text": "every stored byte read and hashed again"}
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
               "verdict": data["verdict"], "findings": len(findings), "verified": verified}
    kinds = ((data.get("details") or {}).get("archive") or {}).get("member_kinds")
    if isinstance(kinds, dict):
        # The archive's regular files (directories and links are not read): what the licence and
        # copied-code checks measure their progress against.
        summary["archive_files"] = sum(n for n in kinds.values() if isinstance(n, int))
    return CheckOutcome(
        verdict=data["verdict"],
        summary=summary,
        findings=findings,
        engine_version=engine_version(),
        inputs={"sha256": artifact.sha256, "declared_kind": artifact.kind},
    )
