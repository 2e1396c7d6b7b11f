"""The registry of known models: fingerprint bundles stored with their SHA-256."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

from django.core.files import File
from django.db import transaction

from compliance.models import ReferenceModel
from portal.services import audit_record


def reference_bundle_attach(*, reference: ReferenceModel, model_path: Path, actor="system") -> ReferenceModel:
    """Fingerprint a model (directory, GGUF, safetensors or an existing bundle) and store the
    bundle on the reference; the weights themselves are not kept."""
    from compliance.engine.lineage import fingerprint_build, fingerprint_is_bundle, fingerprint_load, fingerprint_save

    model_path = Path(model_path)
    with tempfile.TemporaryDirectory(prefix="bundle-") as tmp:
        bundle_path = Path(tmp) / "bundle.npz"
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
