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
