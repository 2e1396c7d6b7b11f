"""Signing a declaration through the API takes a real yes and a real name (issue #10): the API
accepted a form-encoded ``attest=false`` as a signature and stored a null name as "None"."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from projects import services
from projects.models import Declaration

pytestmark = pytest.mark.django_db


@pytest.fixture
def sign(world):
    draft = services.submission_open(user=world.vendor_user, project=world.project)
    client = APIClient()
    client.force_login(world.vendor_user)

    def _sign(data, format):
        return client.post(f"/api/submissions/{draft.pk}/sign/", data, format=format)

    _sign.declaration = lambda: Declaration.objects.get(submission=draft)
    return _sign


@pytest.mark.parametrize("data, format, field, words", [
    ({"signatory_name": "Kim", "attest": "false"}, "multipart", "attest", "Confirm"),
    ({"signatory_name": "Kim", "attest": "false"}, "json", "attest", "Confirm"),
    ({"signatory_name": "Kim", "attest": False}, "json", "attest", "Confirm"),
    ({"signatory_name": "Kim", "attest": "0"}, "multipart", "attest", "Confirm"),
    ({"signatory_name": "Kim"}, "multipart", "attest", "Confirm"),
    ({"signatory_name": "Kim"}, "json", "attest", "Confirm"),
    ({"signatory_name": "Kim", "attest": None}, "json", "attest", "null"),
    ({"signatory_name": "Kim", "attest": "maybe"}, "json", "attest", "valid boolean"),
    ({"attest": "true"}, "multipart", "signatory_name", "required"),
    ({"attest": True}, "json", "signatory_name", "required"),
    ({"signatory_name": None, "attest": True}, "json", "signatory_name", "null"),
    ({"signatory_name": "   ", "attest": True}, "json", "signatory_name", "blank"),
    ({"signatory_name": "", "attest": "true"}, "multipart", "signatory_name", "blank"),
])
def test_no_signature_without_a_yes_and_a_name(sign, data, format, field, words):
    response = sign(data, format)
    assert response.status_code == 400, response.content
    assert words in str(response.json()[field])
    declaration = sign.declaration()
    assert not declaration.is_signed and declaration.signatory_name == "" and declaration.signed_sha256 == ""


@pytest.mark.parametrize("data, format", [
    ({"signatory_name": " Kim Min-ji ", "attest": "true"}, "multipart"),
    ({"signatory_name": "Kim Min-ji", "attest": "on"}, "multipart"),
    ({"signatory_name": "Kim Min-ji", "attest": True}, "json"),
])
def test_form_encoded_and_json_signatures_alike(sign, data, format):
    response = sign(data, format)
    assert response.status_code == 200, response.content
    declaration = sign.declaration()
    assert declaration.is_signed and declaration.signatory_name == "Kim Min-ji"
    assert response.json()["signed_sha256"] == declaration.signed_sha256


def test_the_service_refuses_a_truthy_non_boolean(world):
    """Commands and the admin call the service directly: the text "false" is not a yes there either."""
    from django.core.exceptions import ValidationError

    draft = services.submission_open(user=world.vendor_user, project=world.project)
    with pytest.raises(ValidationError, match="Confirm"):
        services.declaration_sign(user=world.vendor_user, submission=draft, signatory_name="Kim", attest="false")
    with pytest.raises(ValidationError, match="full name"):
        services.declaration_sign(user=world.vendor_user, submission=draft, signatory_name=None, attest=True)
    assert not Declaration.objects.get(submission=draft).is_signed
