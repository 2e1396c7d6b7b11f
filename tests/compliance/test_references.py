"""The registry of reference models: old float16 bundles are rewritten compact, with an audit entry."""

from __future__ import annotations

import hashlib
import zipfile

import pytest
from django.core.files.base import ContentFile

from compliance.engine.lineage import fingerprint_build, fingerprint_load, fingerprint_save
from compliance.models import ReferenceModel
from compliance.references import reference_bundles_compact
from portal.models import AuditEvent
from tests.compliance.engine.lineage import tinymodels

pytestmark = pytest.mark.django_db


def test_old_bundles_are_rewritten_compact_and_new_ones_left_alone(tmp_path):
    fp = fingerprint_build(path=tinymodels.model_write(tinymodels.llama_make(seed=51), tmp_path / "m"))
    old = fingerprint_save(fp, tmp_path / "old.npz", compact=False).read_bytes()
    new = fingerprint_save(fp, tmp_path / "new.lineage").read_bytes()
    stale = ReferenceModel(name="lab/old", publisher="Lab", bundle_sha256=hashlib.sha256(old).hexdigest())
    stale.bundle.save("old.npz", ContentFile(old))
    fresh = ReferenceModel(name="lab/new", publisher="Lab", bundle_sha256=hashlib.sha256(new).hexdigest())
    fresh.bundle.save("new.npz", ContentFile(new))

    assert reference_bundles_compact(actor="operator") == ["lab/old"]
    stale.refresh_from_db()
    with stale.bundle.open("rb") as fh:
        data = fh.read()
    assert hashlib.sha256(data).hexdigest() == stale.bundle_sha256
    assert len(data) < len(old) / 2
    (tmp_path / "got").write_bytes(data)
    with zipfile.ZipFile(tmp_path / "got") as archive:
        assert "document.json.zst" in archive.namelist()
    assert fingerprint_load(tmp_path / "got").name == fp.name
    assert AuditEvent.objects.filter(action="reference.fingerprint", object_label="lab/old").exists()
    assert not AuditEvent.objects.filter(action="reference.fingerprint", object_label="lab/new").exists()
    assert reference_bundles_compact() == []  # nothing left to do
