"""Fixed strings of the dossier, in English, translated through the catalogue.

Only our own words are translated; whatever a vendor or reviewer typed is shown as typed.
The English here is the msgid; the Korean (and any later language) is in
``locale/<lang>/LC_MESSAGES/django.po``, the catalogue the portal's pages use, so the dossier
and the pages say the same words. The dossier's own enumerations (check verdict, policy
outcome, check name) fall back to the raw value when unknown, so a new value shows up rather
than vanishing. The models' vocabularies (statuses, severity, artifact kind) are not here:
they travel in ``DossierContext.vocabulary``. Without Django settings (a bare renderer) the
English is used.
"""

from __future__ import annotations

__all__ = ["LANGUAGES", "LABELS", "ENUMS", "label_for", "enum_label", "cache_notes"]

LANGUAGES = ("en", "ko")

LABELS: dict[str, str] = {
    "document_title": "Compliance dossier",
    "programme": "Programme",
    "ministry": "Ministry",
    "project": "Project",
    "vendor": "Vendor consortium",
    "consortium_members": "Consortium members",
    "submission": "Submission",
    "submission_version": "Submission version",
    "submitted_at": "Submitted",
    "submitted_by": "Submitted by",
    "issued_at": "Date of issue",
    "dossier_number": "Dossier number",
    "overall_status": "Overall status",
    "decision": "Decision",
    "sign_off": "Reviewer sign-off",
    "no_sign_off": "Not yet signed off by a reviewer.",
    "name": "Name",
    "role": "Role",
    "signed_at": "Signed",
    "statement": "Statement",
    "contents": "Contents",
    "page": "Page",
    "of": "of",
    "summary": "Summary for the minister",
    "summary_intro": "What the vendor claimed, what the checks found, and what the reviewers decided.",
    "topic": "Topic",
    "claimed": "Claimed",
    "found": "Found",
    "decided": "Decided",
    "open_risks": "Open risks",
    "no_open_risks": "No open risk: no finding above information is open or confirmed.",
    "open_risks_intro": "Findings above information that are open or that a reviewer confirmed, most severe first.",
    "findings_by_status": "Findings by status",
    "status": "Status",
    "total": "Total",
    "findings_by_severity": "Findings by severity",
    "declaration": "Declaration",
    "from_scratch_claim": "Claims training from scratch",
    "yes": "yes",
    "no": "no",
    "component": "Component",
    "declared_base": "Declared base model",
    "none_from_scratch": "none (from scratch)",
    "licence": "Licence",
    "notes": "Notes",
    "compute": "Compute",
    "data_summary": "Training data",
    "signed_by": "Signed by",
    "artifacts": "Artifacts",
    "kind": "Kind",
    "file": "File",
    "size": "Size",
    "sha256": "SHA-256",
    "uploaded_at": "Uploaded",
    "uploader": "Uploader",
    "checks": "Checks",
    "method": "Method",
    "engine_version": "Engine version",
    "inputs": "Inputs",
    "started_at": "Started",
    "duration": "Duration",
    "verdict": "Verdict",
    "result": "Result",
    "lineage": "Weight lineage",
    "reference_model": "Reference model",
    "statistic": "Statistic",
    "p_value": "p-value",
    "conclusion": "Conclusion",
    "layer_map": "Layer map",
    "training_chain": "Training chain: each checkpoint against the previous one and the registered models",
    "chain_link": "Derives from the previous checkpoint",
    "chain_caption": "One column per checkpoint, by training step. First row: the lineage test of each checkpoint against the one before it; green where it derives from it, as a real training run does. Other rows: the same test against each registered model; red where the checkpoint derives from that model, which a run from scratch never shows. Grey: the test could not decide. Each cell gives the test's calibrated p-value.",
    "step": "Step",
    "candidate": "Candidate",
    "reference": "Reference",
    "significant_layers": "Layers matching at p < 0.01",
    "more_layers": "{count} more layers are listed in the attached findings.json.",
    "licences": "Licence inventory",
    "subject": "Subject",
    "expression": "Expression",
    "policy_outcome": "Policy outcome",
    "obligations": "Obligations",
    "origin": "Origin",
    "code_matches": "Code matches",
    "path": "Path",
    "similarity": "Similarity",
    "lines": "Lines",
    "scope": "Scope",
    "findings": "Findings",
    "severity": "Severity",
    "category": "Category",
    "title": "Title",
    "explanation": "Explanation",
    "evidence": "Evidence",
    "vendor_reply": "Vendor reply",
    "reviewer_decision": "Reviewer decision",
    "justification": "Justification",
    "reviewer": "Reviewer",
    "no_findings": "No findings.",
    "more_findings": "{count} more {severity} findings are not printed; all {total} are in the attached findings.json.",
    "more_rows": "{count} more rows in the attached findings JSON.",
    "more_checks": "{count} more checks in the attached findings JSON.",
    "thread": "Conversation",
    "attachment": "Attachment",
    "more_messages": "{count} earlier messages are not printed; the attached findings.json has them all.",
    "reused": "Reused result",
    "reused_from": "Not run again in this version: the result of check run {run} of v{version} is reused, because "
                   "the file's SHA-256 ({sha256}), the engine version ({engine}) and every input the check reads "
                   "(the declaration and policy parts it uses) are identical.",
    "reused_files": "{reused} of {files} files' results reused (same content, same engine version)",
    "reused_lineage": "Lineage report reused from {source}: the same weights (SHA-256) were tested against the same "
                      "reference models by the same engine version; the findings follow this submission's declaration.",
    "reused_lineage_short": "Lineage report reused from {source} (same weights, reference models and engine version)",
    "reused_lineage_version": "v{version} of this project",
    "reused_lineage_other": "another submission",
    "challenges": "Public challenges",
    "challenges_intro": "Challenges filed by the public against this project and confirmed by e-mail, with the outcome the programme published.",
    "no_challenges": "No public challenges.",
    "challenge_claim": "Claim",
    "challenge_outcome": "Status",
    "challenge_summary": "Published summary",
    "challenge_filed": "Filed",
    "challenge_retest": "Portal's re-test",
    "challenge_decided_on": "decided {date}",
    "challenge_reply_due": "Under examination; the vendor's reply is due on {date}.",
    "challenge_not_decided": "Not decided yet.",
    "retest_lineage": "Compared with {reference}: {verdict}, permutation p = {p}. Raw cosine of norm gains {raw} "
                      "(pairing shuffled: {shuffled}); centred correlation {pearson}.",
    "retest_code": "Compared with {name}: {regions} copied regions, {lines} lines, in {files} of {scanned} files read.",
    "retest_code_none": "Compared with {name}: no copied code in {scanned} files read.",
    "retest_licence_denied": "Under the programme's policy a denied licence is present ({lines} inventory lines "
                             "flagged or cited).",
    "retest_licence_review": "Under the programme's policy licences need a reviewer's decision ({lines} inventory "
                             "lines flagged or cited).",
    "retest_licence_compliant": "Compliant under the programme's policy ({lines} inventory lines cited).",
    "retest_pending_decided": "Re-test result pending; the decision stands.",
    "retest_running": "Re-test running.",
    "retest_inconclusive": "Inconclusive: {reason}",
    "retest_none": "Not re-tested.",
    "audit_trail": "Audit trail (excerpt)",
    "audit_intro": "The most recent {shown} of {total} events of the hash-chained audit log for this submission.",
    "time": "Time",
    "actor": "Actor",
    "action": "Action",
    "target": "Target",
    "entry_hash": "Entry hash",
    "verification": "How to verify this file",
    "verify_step_hash": "Compute the SHA-256 of this PDF file (for example `sha256sum dossier.pdf` or `certutil -hashfile dossier.pdf SHA256`).",
    'verify_step_portal': "Enter the hash or upload the file on the portal's verification page: {url}. The page says whether the portal issued this exact file and for which submission.",
    "verify_step_signature": "Open the signature panel of a PDF reader: the file carries a PAdES signature by the portal that covers the whole document. Any change after signing breaks it.",
    "verify_step_fingerprint": "The signing certificate is {subject}; its SHA-256 fingerprint is {fingerprint}.",
    "verify_step_attachments": "The machine-readable evidence is attached to this PDF: {names}. Their SHA-256 values are listed in manifest.json.",
    "attachments": "Attachments",
    "attachment_findings": "All checks, findings, decisions and audit events as JSON",
    "attachment_bom": "CycloneDX 1.6 ML-BOM of the submitted model",
    "attachment_manifest": "Hashes of the submitted artifacts and of the other attachments",
    "attachment_checkpoint": "The signed audit checkpoint this dossier was issued under",
    'verify_step_checkpoint': "This dossier was issued under audit checkpoint {number}: the portal's audit log then held {count} events, the newest with hash {head}. The signed checkpoint is attached as audit-checkpoint.json; `python manage.py audit_verify --dossier FILE` checks that the log still holds it (no event removed or rewritten since).",
    "generated_by": "Generated by {portal}",
    "not_recorded": "not recorded",
    "clipped": " … ({count} more characters, full text in the attached JSON)",
    "derived_found": "{verdict}: {summary}",
    "pending_decisions": "{count} finding(s) awaiting a decision",
    "decisions_made": "{count} finding(s) decided",
    "declaration_claims": "from scratch: {from_scratch}; declared base models: {bases}",
    "found_code": "{lines} copied lines in {regions} regions: {origins}",
    "found_code_origin": "{origin} {lines} lines, {declared}",
    "found_code_none": "No copied code found in {files} files",
    "found_more_origins": "{count} more origins",
    "declared": "declared",
    "not_declared": "not declared",
    "found_lineage": "{reference}: {verdict}, p = {p}",
    "found_licences": "{count} licence(s): {keys}",
    "found_intake": "detected as {kind}; {count} finding(s)",
    "found_intake_rehashed": "detected as {kind}; {count} finding(s); every stored byte hashed again and equal to the upload's SHA-256",
    "found_intake_store": "detected as {kind}; {count} finding(s); not downloaded: the store's {compared} compared with those recorded at upload",
    "claimed_from_scratch": "trained from scratch",
    "claimed_code": "declared third-party code: {entries}",
    "claimed_no_code": "no third-party code declared",
}

# The dossier's own enumerations only. Submission status, finding status, severity and artifact
# kind are the models' choices, worded by their gettext translations (DossierContext.vocabulary):
# a second mapping here once printed "Cleared with conditions" for "Changes requested". The
# verdicts the checks write are compliance.finding_texts.VERDICT_LABELS, the pages' words.
ENUMS: dict[str, dict[str, str]] = {
    "verdict": {
        "pass": "Pass",
        "fail": "Fail",
        "error": "Error",
        "succeeded": "Completed",
        "failed": "Failed",
        "queued": "Queued",
        "running": "Running",
        "waiting": "Waiting for intake",
        "blocked": "Not run: intake did not accept the file",
    },
    "policy": {
        "allowed": "Allowed",
        "denied": "Denied",
        "review": "Review required",
    },
    # Finding categories (Finding.category: the check's name, or the policy's and copyright's own).
    "category": {
        "intake": "Intake safety",
        "lineage": "Weight lineage",
        "licenses": "Licences",
        "license-policy": "Licence policy",
        "copyright": "Copyright",
        "code": "Code provenance",
        "training_evidence": "Training evidence",
    },
    "check": {
        "intake": "Intake safety",
        "lineage": "Weight lineage",
        "licenses": "Licences",
        "licence": "Licences",
        "code": "Code provenance",
        "training_evidence": "Training evidence",
    },
}


def _translated(lang: str, text: str) -> str:
    from django.conf import settings

    if lang == "en" or not settings.configured:
        return text
    from django.utils import translation

    with translation.override(lang):
        return translation.gettext(text)


def label_for(lang: str, key: str, **values: object) -> str:
    """Fixed label ``key`` in ``lang`` (English if untranslated), formatted with ``values``."""
    text = _translated(lang, LABELS[key])
    return text.format(**values) if values else text


def enum_label(lang: str, enum: str, value: object) -> str:
    """Translated enum value, or the value itself when unknown."""
    if enum == "verdict":
        from compliance.finding_texts import VERDICT_LABELS

        if str(value) in VERDICT_LABELS:
            return _translated(lang, VERDICT_LABELS[str(value)])
    english = ENUMS.get(enum, {}).get(str(value))
    return _translated(lang, english) if english else str(value)


def _count(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def cache_notes(lang: str, cache: object, *, short: bool = False) -> list[str]:
    """A check run's ``summary["cache"]`` in words: how many files' results came from the per-file
    cache (licences, code), or where the lineage report came from (``short``: the page's table
    cell, without the dossier's explanation). Nothing for an absent or malformed entry, or a
    lineage report computed by the run itself."""
    if not isinstance(cache, dict):
        return []
    files, reused = _count(cache.get("files")), cache.get("reused")
    if files is not None and not isinstance(reused, bool) and _count(reused) is not None:
        return [label_for(lang, "reused_files", reused=f"{_count(reused):,}", files=f"{files:,}")]
    if reused is True:
        version = _count(cache.get("from_version"))
        source = (label_for(lang, "reused_lineage_version", version=version) if version is not None
                  else label_for(lang, "reused_lineage_other"))
        return [label_for(lang, "reused_lineage_short" if short else "reused_lineage", source=source)]
    return []
