"""Saved filters: saved from a list page, listed above it as links, private to their owner."""

from __future__ import annotations

import pytest

from portal.models import SavedFilter

pytestmark = pytest.mark.django_db


def _save(client, *, page: str, name: str, querystring: str):
    return client.post("/saved-filters/", {"page": page, "name": name, "querystring": querystring})


def test_save_this_filter_then_follow_it(client, world):
    client.force_login(world.officer)
    page = client.get("/queue/?severity=high&sort=-waiting&page=2").content.decode()
    # The form carries the page's filters and sort, not its page number.
    assert 'name="querystring" value="severity=high&amp;sort=-waiting"' in page
    assert "Save this filter" in page
    response = _save(client, page="queue", name="High, longest first", querystring="severity=high&sort=-waiting")
    assert response.status_code == 302 and response["Location"] == "/queue/?severity=high&sort=-waiting"
    saved = SavedFilter.objects.get(user=world.officer)
    assert (saved.page, saved.name, saved.querystring) == ("queue", "High, longest first", "severity=high&sort=-waiting")
    listed = client.get("/queue/").content.decode()
    assert '<a href="/queue/?severity=high&amp;sort=-waiting">High, longest first</a>' in listed
    assert "High, longest first" not in client.get("/projects/").content.decode(), "listed on its own page only"


def test_saving_under_the_same_name_replaces_and_the_page_and_export_params_are_dropped(client, world):
    client.force_login(world.officer)
    _save(client, page="projects", name="Mine", querystring="phase=1")
    _save(client, page="projects", name="Mine", querystring="phase=2&page=3&export=csv&status=")
    assert list(SavedFilter.objects.values_list("querystring", flat=True)) == ["phase=2"]


def test_another_users_saved_filter_is_neither_shown_nor_deletable(client, world):
    client.force_login(world.officer)
    client.get(_save(client, page="projects", name="Officer's view", querystring="phase=2")["Location"])
    mine = SavedFilter.objects.get()
    client.force_login(world.admin)
    assert "Officer&#x27;s view" not in client.get("/projects/").content.decode()
    assert client.post(f"/saved-filters/{mine.pk}/delete/").status_code == 404
    client.force_login(world.vendor_user)
    assert client.post(f"/saved-filters/{mine.pk}/delete/").status_code == 404
    assert SavedFilter.objects.filter(pk=mine.pk).exists()
    client.force_login(world.officer)
    page = client.get("/projects/").content.decode()
    assert f'action="/saved-filters/{mine.pk}/delete/"' in page
    response = client.post(f"/saved-filters/{mine.pk}/delete/")
    assert response.status_code == 302 and response["Location"] == "/projects/"
    assert not SavedFilter.objects.exists()
    assert client.post("/saved-filters/999999/delete/").status_code == 404


def test_deleting_needs_post_and_anonymous_users_are_sent_to_log_in(client, world):
    client.force_login(world.officer)
    _save(client, page="audit", name="Downloads", querystring="action=dossier.download")
    saved = SavedFilter.objects.get()
    assert client.get(f"/saved-filters/{saved.pk}/delete/").status_code == 405
    client.logout()
    assert client.post("/saved-filters/", {"page": "audit", "name": "x"}).status_code == 302
    assert client.post(f"/saved-filters/{saved.pk}/delete/")["Location"].startswith("/accounts/login/")
    assert SavedFilter.objects.count() == 1


def test_a_filter_needs_a_name_and_a_known_page(client, world):
    client.force_login(world.vendor_user)
    response = _save(client, page="projects", name="  ", querystring="phase=1")
    assert response.status_code == 302 and response["Location"] == "/projects/"
    assert not SavedFilter.objects.exists()
    assert _save(client, page="nowhere", name="x", querystring="").status_code == 404
    # A vendor saves filters of the pages they have.
    _save(client, page="projects", name="Phase 1", querystring="phase=1")
    assert '<a href="/projects/?phase=1">Phase 1</a>' in client.get("/projects/").content.decode()
