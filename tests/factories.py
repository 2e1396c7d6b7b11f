"""Test data built through the real services (so permissions and audit entries are real)."""

from __future__ import annotations

import datetime
import io
from dataclasses import dataclass
from decimal import Decimal

import factory

from portal.models import Organisation, Role
from portal.services import user_create
from projects import services, uploads
from projects.models import Programme, Project, Submission

PASSWORD = "correct-horse-battery-staple"


class OrganisationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organisation
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Organisation {n}")
    name_ko = factory.Sequence(lambda n: f"기관 {n}")
    kind = Organisation.Kind.VENDOR


def make_user(username: str, role: str, organisation: Organisation):
    return user_create(username=username, password=PASSWORD, organisation=organisation, role=role,
                       email=f"{username}@example.org", display_name=username.title())


@dataclass
class World:
    """Everyone of the permission matrix, and a project of each vendor."""

    ministry: Organisation
    vendor_a: Organisation
    vendor_b: Organisation
    admin: object
    officer: object
    reviewer: object
    reviewer_unassigned: object
    auditor: object
    vendor_user: object
    other_vendor_user: object
    programme: Programme
    project: Project
    other_project: Project

    def users(self) -> dict:
        return {"admin": self.admin, "officer": self.officer, "reviewer": self.reviewer,
                "reviewer_unassigned": self.reviewer_unassigned, "auditor": self.auditor,
                "vendor": self.vendor_user, "other_vendor": self.other_vendor_user}


def build_world(prefix: str = "") -> World:
    ministry = OrganisationFactory(name=f"{prefix}Ministry", kind=Organisation.Kind.MINISTRY)
    vendor_a = OrganisationFactory(name=f"{prefix}Vendor A")
    vendor_b = OrganisationFactory(name=f"{prefix}Vendor B")
    admin = make_user(f"{prefix}admin", Role.ADMIN, ministry)
    officer = make_user(f"{prefix}officer", Role.OFFICER, ministry)
    reviewer = make_user(f"{prefix}reviewer", Role.REVIEWER, ministry)
    reviewer_unassigned = make_user(f"{prefix}reviewer2", Role.REVIEWER, ministry)
    auditor = make_user(f"{prefix}auditor", Role.AUDITOR, ministry)
    vendor_user = make_user(f"{prefix}vendor-a", Role.VENDOR, vendor_a)
    other_vendor_user = make_user(f"{prefix}vendor-b", Role.VENDOR, vendor_b)
    programme = services.programme_create(
        user=admin, name="Test programme", code=f"{prefix}prog".lower() or "prog", ministry=ministry,
        budget_krw=Decimal("1000000000"), starts_on=datetime.date(2026, 1, 1), ends_on=datetime.date(2027, 12, 31),
        max_artifact_bytes=10 * 1024 * 1024)
    project = services.project_create(user=admin, programme=programme, code="alpha", title="Alpha model",
                                      vendor=vendor_a, funding_krw=Decimal("500000000"),
                                      milestones=[("Overdue checkpoint", datetime.date(2026, 2, 1))])
    other_project = services.project_create(user=admin, programme=programme, code="beta", title="Beta model",
                                            vendor=vendor_b, funding_krw=Decimal("400000000"))
    services.reviewer_assign(user=admin, project=project, reviewer=reviewer)
    return World(ministry, vendor_a, vendor_b, admin, officer, reviewer, reviewer_unassigned, auditor, vendor_user,
                 other_vendor_user, programme, project, other_project)


def upload_bytes(*, user, submission: Submission, name: str, data: bytes, kind: str = "other"):
    return uploads.artifact_upload_file(user=user, submission=submission, kind=kind, filename=name,
                                        fileobj=io.BytesIO(data))


def signed_submission(*, world: World, files: dict[str, tuple[str, bytes]] | None = None,
                      submit: bool = False, third_party_code: list[dict] | None = None,
                      carry_over: bool = False, base_models: list[dict] | None = None) -> Submission:
    """A draft of the world's project with files uploaded and the declaration signed. It starts
    empty unless ``carry_over`` (the portal's default carries the previous version over)."""
    submission = services.submission_open(user=world.vendor_user, project=world.project, carry_over=carry_over)
    for name, (kind, data) in (files or {"notes.txt": ("other", b"plain notes\n")}).items():
        upload_bytes(user=world.vendor_user, submission=submission, name=name, data=data, kind=kind)
    services.declaration_update(user=world.vendor_user, submission=submission, from_scratch=not base_models,
                                base_models=base_models or [],
                                gpu_hours=Decimal("10"), training_flops=1e20, data_summary="test data",
                                third_party_code=third_party_code)
    services.declaration_sign(user=world.vendor_user, submission=submission, signatory_name="Vendor A Signer",
                              attest=True)
    if submit:
        services.submission_submit(user=world.vendor_user, submission=submission)
        submission.refresh_from_db()
    return submission




def check_runs_wait(submission_id: int, timeout: float = 180.0) -> None:
    """Wait until the submission has check runs and every one has finished (on the real worker);
    fail naming each run's state otherwise."""
    import time

    from compliance.models import CheckRun

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = CheckRun.objects.filter(submission_id=submission_id)
        if runs.exists() and not runs.exclude(state__in=CheckRun.FINISHED_STATES).exists():
            return
        time.sleep(0.5)
    raise AssertionError(list(CheckRun.objects.filter(submission_id=submission_id).values("check_name", "state")))
