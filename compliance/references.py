"""The registries of known models (fingerprint bundles stored with their SHA-256) and of
known code (corpora indexed for the copied-code check)."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

from django.core.files import File
from django.db import transaction

from compliance.models import CodeCorpus, ReferenceModel
from portal.services import audit_record


def reference_bundle_attach(*, reference: ReferenceModel, model_path: Path, actor="system") -> ReferenceModel:
    """Fingerprint a model (directory, GGUF, safetensors or an existing bundle of either format) and
    store it on the reference as a compact bundle (format 3, with the screening sketch the lineage
    check ranks the registry by); the weights themselves are not kept."""
    from compliance.engine.lineage import fingerprint_build, fingerprint_is_bundle, fingerprint_load, fingerprint_save

    model_path = Path(model_path)
    with tempfile.TemporaryDirectory(prefix="bundle-") as tmp:
        bundle_path = Path(tmp) / "bundle.lineage"
        if fingerprint_is_bundle(model_path):
            fingerprint = fingerprint_load(model_path)
        else:
            fingerprint = fingerprint_build(path=model_path)
        fingerprint_save(fingerprint, bundle_path)
        digest = hashlib.sha256(bundle_path.read_bytes()).hexdigest()
        with transaction.atomic(), open(bundle_path, "rb") as fh:
            reference.bundle.save(f"{reference.name.replace('/', '__')}.npz", File(fh), save=False)
            reference.bundle_sha256 = digest
            reference.save()
            audit_record(actor=actor, action="reference.fingerprint", object_type="reference_model",
                         object_id=reference.pk, object_label=reference.name, data={"bundle_sha256": digest})
    return reference


def reference_bundles_compact(*, actor="system") -> list[str]:
    """Rewrite every reference bundle still in the float16 format 2 (about 127 MB at d = 4096) as a
    compact format-3 bundle (about 19 MB, with its screening sketch), through
    reference_bundle_attach so the new SHA-256 and an audit entry are recorded. Format-2 bundles
    keep working without this (they load, and are sketched on the fly at every screening);
    compacting saves the storage and that time. Returns the names of the references rewritten."""
    import zipfile

    from compliance.checks import storage_place

    done = []
    for reference in ReferenceModel.objects.exclude(bundle=""):
        with tempfile.TemporaryDirectory(prefix="bundle-old-") as tmp:
            placed = storage_place(reference.bundle.name, Path(tmp) / "old.npz")
            with zipfile.ZipFile(placed) as archive:
                if "document.json.npy" not in archive.namelist():
                    continue
            reference_bundle_attach(reference=reference, model_path=placed, actor=actor)
        done.append(reference.name)
    return done


def code_corpus_record(*, summary: dict) -> CodeCorpus:
    """Record what `code_index_add` indexed (its summary dict) in the staff-managed registry of
    code corpora, which mirrors the index: the copied-code check and the policy form read it."""
    from django.utils import timezone

    corpus, _ = CodeCorpus.objects.update_or_create(
        name=summary["name"], version=summary.get("version") or "",
        defaults={"license_expression": summary.get("license_expression") or "",
                  "origin": str(summary.get("root", "")), "files": summary.get("files", 0),
                  "fingerprints": summary.get("fingerprints", 0), "indexed_at": timezone.now()})
    return corpus
