"""The registry and vendor pages: forms refuse bad input with a message and leave nothing half-made."""

from __future__ import annotations

import io

import pytest
from django.urls import reverse

from projects.models import Artifact, Milestone, Programme, Project, Submission
from tests.factories import signed_submission

pytestmark = pytest.mark.django_db


def test_programme_form_refuses_a_period_that_ends_before_it_starts(client, world):
    client.force_login(world.officer)
    response = client.post(reverse("programme-create"), {
        "name": "Bad", "code": "bad", "ministry": world.ministry.pk, "budget_krw": "10",
        "starts_on": "2026-12-31", "ends_on": "2026-01-01", "max_artifact_bytes": 1000})
    assert response.status_code == 200
    assert "must end after it starts" in response.content.decode()
    assert not Programme.objects.filter(code="bad").exists()


def test_programme_then_policy_then_project(client, world):
    client.force_login(world.officer)
    response = client.post(reverse("programme-create"), {
        "name": "Next", "code": "next", "ministry": world.ministry.pk, "budget_krw": "10",
        "starts_on": "2026-01-01", "ends_on": "2026-12-31", "max_artifact_bytes": 1000})
    programme = Programme.objects.get(code="next")
    assert response.url == reverse("policy-edit", args=[programme.pk])
    bad_policy = client.post(reverse("policy-edit", args=[programme.pk]), {
        "allowed_licenses": "MIT\nNOT-A-LICENCE", "denied_licenses": "", "review_licenses": "",
        "from_scratch_required": "on"})
    assert "unknown licence identifier" in bad_policy.content.decode()
    good_policy = client.post(reverse("policy-edit", args=[programme.pk]), {
        "allowed_licenses": "MIT\nApache-2.0 OR MIT", "denied_licenses": "LicenseRef-scancode-llama-3.1",
        "review_licenses": "", "from_scratch_required": "on", "denied_categories": ["non-commercial"]})
    assert good_policy.status_code == 302
    assert programme.policy.as_engine_policy()["denied"] == ["LicenseRef-scancode-llama-3.1"]
    bad_project = client.post(reverse("project-create"), {
        "programme": programme.pk, "code": "x", "title": "X", "vendor": world.vendor_a.pk, "funding_krw": "5",
        "phase": 1, "milestones": "not-a-date Milestone"})
    assert "YYYY-MM-DD" in bad_project.content.decode()
    assert not Project.objects.filter(programme=programme).exists()
    client.post(reverse("project-create"), {
        "programme": programme.pk, "code": "x", "title": "X", "vendor": world.vendor_a.pk, "funding_krw": "5",
        "phase": 1, "milestones": "2026-03-01 First checkpoint", "consortium": "A\nB"})
    project = Project.objects.get(programme=programme, code="x")
    assert project.consortium_members == ["A", "B"]
    assert Milestone.objects.get(project=project).title == "First checkpoint"


def test_vendor_flow_through_the_pages(client, world):
    client.force_login(world.vendor_user)
    client.post(reverse("submission-open", args=[world.project.pk]), {"note": "v1"})
    submission = Submission.objects.get(project=world.project)
    upload = io.BytesIO(b'{"model_type": "llama"}')
    upload.name = "config.json"
    response = client.post(reverse("artifact-upload", args=[submission.pk]), {"kind": "config", "file": upload},
                           follow=True)
    assert "SHA-256" in response.content.decode()
    assert Artifact.objects.filter(submission=submission, original_name="config.json").exists()
    bad = client.post(reverse("declaration-save", args=[submission.pk]),
                      {"base_models": "engine | x", "from_scratch": ""}, follow=True)
    assert "component must be one of" in bad.content.decode()
    client.post(reverse("declaration-save", args=[submission.pk]), {"base_models": "", "from_scratch": "on",
                                                                    "gpu_hours": "12.5"})
    unsigned_submit = client.post(reverse("submission-submit", args=[submission.pk]), follow=True)
    assert "Sign the declaration" in unsigned_submit.content.decode()
    client.post(reverse("declaration-sign", args=[submission.pk]), {"signatory_name": "Kim", "attest": "on"})
    done = client.post(reverse("submission-submit", args=[submission.pk]))
    assert done.url == reverse("submission-detail", args=[submission.pk])
    submission.refresh_from_db()
    assert submission.status in {"checking", "checked", "submitted"}


def test_another_vendor_cannot_touch_the_draft(client, world):
    submission = signed_submission(world=world)
    client.force_login(world.other_vendor_user)
    for name in ("submission-edit", "declaration-save", "declaration-sign", "submission-submit", "artifact-upload"):
        method = client.get if name == "submission-edit" else client.post
        assert method(reverse(name, args=[submission.pk])).status_code == 404, name
    artifact = submission.artifacts.first()
    assert client.post(reverse("artifact-delete", args=[artifact.pk])).status_code == 404
    assert Artifact.objects.filter(pk=artifact.pk).exists()


def test_invite_gives_a_one_time_link(client, world):
    client.force_login(world.officer)
    response = client.post(reverse("project-invite", args=[world.project.pk]),
                           {"username": "new-member", "email": "n@vendor.example"}, follow=True)
    page = response.content.decode()
    assert "/accounts/reset/" in page
    link = page.split("/accounts/reset/")[1].split(" ")[0].split("<")[0]
    client.logout()
    form = client.get(f"/accounts/reset/{link}", follow=True)
    assert form.status_code == 200 and "new_password1" in form.content.decode()
