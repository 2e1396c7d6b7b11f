"""The OpenAPI schema the portal serves is valid and documents the upload protocol."""

import pytest
import yaml
from openapi_spec_validator import validate

pytestmark = pytest.mark.django_db


def test_schema_is_valid_openapi(client, world):
    client.force_login(world.admin)
    response = client.get("/api/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    validate(schema)
    paths = schema["paths"]
    for path in ("/api/programmes/", "/api/projects/", "/api/submissions/{id}/submit/", "/api/uploads/{id}/chunk/",
                 "/api/findings/{id}/decide/", "/api/check-runs/", "/api/submission-decisions/"):
        assert path in paths, path
    chunk = paths["/api/uploads/{id}/chunk/"]["patch"]
    assert any(p["name"] == "Upload-Offset" for p in chunk["parameters"])


def test_docs_page_is_served_without_a_cdn(client, world):
    client.force_login(world.admin)
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "cdn." not in html and "unpkg" not in html and "jsdelivr" not in html


def test_schema_documents_the_refusals(client, world):
    """Clients (and the fuzz, test_api_schemathesis.py) meet 400/401/403/404 on every operation
    that can give them; anonymous verification documents its size cap and its throttle."""
    schema = yaml.safe_load(client.get("/api/schema/").content)
    paths = schema["paths"]
    assert set(paths["/api/submissions/{id}/submit/"]["post"]["responses"]) == {"200", "400", "401", "403", "404"}
    assert set(paths["/api/projects/"]["get"]["responses"]) == {"200", "400", "401", "403", "404"}
    assert set(paths["/api/dossiers/verify/"]["post"]["responses"]) == {"200", "400", "413", "429"}
    export = paths["/api/projects/export/"]["get"]["responses"]
    assert list(export["400"]["content"]) == ["application/json"]
    # Public challenges: filed without an account (size cap and throttle documented), the register public.
    assert set(paths["/api/public-challenges/"]["post"]["responses"]) == {"201", "400", "413", "429"}
    assert set(paths["/api/public-challenges/"]["post"]["requestBody"]["content"]) >= {"multipart/form-data"}
    assert "401" not in paths["/api/public-challenges/"]["get"]["responses"]
    challenge = schema["components"]["schemas"]["Challenge"]
    assert "contact_email" in challenge["properties"] and "contact_email" not in challenge["required"]
    for step in ("accept", "reject", "merge", "retest", "decide", "reply"):
        assert set(paths[f"/api/challenges/{{id}}/{step}/"]["post"]["responses"]) == {"200", "400", "401", "403",
                                                                                     "404"}
    programme = next(p for p in paths["/api/projects/"]["get"]["parameters"] if p["name"] == "programme")
    assert programme["schema"] == {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}
