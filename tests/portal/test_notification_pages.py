"""The notification pages and API as a person uses them: the header count, the list, following a
notification to its page, marking read; and nobody ever sees or marks another person's
notification (404, like a missing one)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from portal.models import Notification, NotificationPreference, Profile
from portal.notifications import notify

pytestmark = pytest.mark.django_db

Kind = Notification.Kind


@pytest.fixture
def two_for_vendor(world):
    """Two unread notifications for the vendor member, one for the reviewer."""
    mine = [notify(kind=Kind.SUBMISSION_DECIDED, recipients=[world.vendor_user], url=f"/submissions/{n}/",
                   params={"submission": f"alpha v{n}", "decision_label": "Approved"}, actor=world.reviewer)[0]
            for n in (1, 2)]
    theirs = notify(kind=Kind.CHECKS_FINISHED, recipients=[world.reviewer], url="/submissions/1/",
                    params={"submission": "alpha v1", "open_risks": 2})[0]
    return mine, theirs


def test_header_shows_the_unread_count_for_screen_readers_too(client, world, two_for_vendor):
    client.force_login(world.vendor_user)
    html = client.get(reverse("project-list")).content.decode()
    assert 'id="notification-badge"' in html
    assert '<span class="count" aria-hidden="true">2</span>' in html
    assert "2 unread notifications" in html


def test_header_count_costs_one_query(client, world, two_for_vendor, django_assert_num_queries):
    from django.test import RequestFactory

    from portal.context_processors import notification_badge

    request = RequestFactory().get("/")
    request.user = world.vendor_user
    with django_assert_num_queries(1):
        assert notification_badge(request) == {"notification_unread": 2}


def test_list_page_shows_own_notifications_in_the_readers_language(client, world, two_for_vendor):
    client.force_login(world.vendor_user)
    html = client.get(reverse("notification-list")).content.decode()
    assert "alpha v1 was decided: Approved" in html and "alpha v2 was decided: Approved" in html
    assert "open risks" not in html  # the reviewer's notification is not listed
    client.post(reverse("set_language"), {"language": "ko", "next": "/"})
    html = client.get(reverse("notification-list")).content.decode()
    assert "alpha v1에 대한 결정: 승인" in html


def test_opening_a_notification_marks_it_read_and_goes_to_its_page(client, world, two_for_vendor):
    mine, _theirs = two_for_vendor
    client.force_login(world.vendor_user)
    response = client.get(reverse("notification-open", args=[mine[0].pk]))
    assert response.status_code == 302 and response["Location"] == "/submissions/1/"
    mine[0].refresh_from_db()
    assert mine[0].read_at is not None
    assert '<span class="count" aria-hidden="true">1</span>' in client.get(reverse("notification-list")).content.decode()


def test_mark_one_and_all_read_by_post_only(client, world, two_for_vendor):
    mine, theirs = two_for_vendor
    client.force_login(world.vendor_user)
    assert client.get(reverse("notification-read", args=[mine[0].pk])).status_code == 405
    assert client.post(reverse("notification-read", args=[mine[0].pk])).status_code == 302
    assert Notification.objects.filter(recipient=world.vendor_user, read_at__isnull=True).count() == 1
    assert client.post(reverse("notification-read-all")).status_code == 302
    assert Notification.objects.filter(recipient=world.vendor_user, read_at__isnull=True).count() == 0
    theirs.refresh_from_db()
    assert theirs.read_at is None  # "all" is all of mine, never someone else's


@pytest.mark.parametrize("name", ["notification-open", "notification-read"])
def test_another_persons_notification_answers_404_and_stays_unread(client, world, two_for_vendor, name):
    _mine, theirs = two_for_vendor
    client.force_login(world.vendor_user)
    response = client.get(reverse(name, args=[theirs.pk])) if name == "notification-open" else \
        client.post(reverse(name, args=[theirs.pk]))
    assert response.status_code == 404
    missing = client.post(reverse("notification-read", args=[theirs.pk + 1000]))
    assert missing.status_code == 404
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_anonymous_visitors_are_sent_to_log_in(client, two_for_vendor):
    for url in [reverse("notification-list"), reverse("notification-settings")]:
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_settings_page_saves_email_choices_and_language(client, world):
    client.force_login(world.vendor_user)
    html = client.get(reverse("notification-settings")).content.decode()
    # Every choice is a labelled control inside a fieldset named after its kind.
    assert "<legend>Finding decided</legend>" in html
    assert 'for="id_language"' in html
    data = {"language": "ko"}
    for kind in Kind.values:
        data[f"email_{kind}"] = "digest"
    data["email_finding_decided"] = "never"
    response = client.post(reverse("notification-settings"), data)
    assert response.status_code == 302
    assert Profile.objects.get(user=world.vendor_user).language == "ko"
    assert NotificationPreference.objects.get(user=world.vendor_user, kind=Kind.FINDING_DECIDED).email == "never"
    bad = dict(data, email_finding_decided="hourly")
    assert client.post(reverse("notification-settings"), bad).status_code == 200  # the form shows the error
    assert NotificationPreference.objects.get(user=world.vendor_user, kind=Kind.FINDING_DECIDED).email == "never"


# --- API ------------------------------------------------------------------------------------------

def test_api_lists_only_my_notifications_with_their_text(client, world, two_for_vendor):
    client.force_login(world.vendor_user)
    data = client.get("/api/notifications/").json()
    assert data["count"] == 2
    assert {r["text"] for r in data["results"]} == {"alpha v1 was decided: Approved", "alpha v2 was decided: Approved"}
    assert all(r["actor"] == "reviewer" and r["is_read"] is False for r in data["results"])


def test_api_marks_read_and_refuses_another_persons(client, world, two_for_vendor):
    mine, theirs = two_for_vendor
    client.force_login(world.vendor_user)
    response = client.post(f"/api/notifications/{mine[0].pk}/read/")
    assert response.status_code == 200 and response.json()["is_read"] is True
    assert client.get("/api/notifications/?unread=1").json()["count"] == 1
    assert client.get(f"/api/notifications/{theirs.pk}/").status_code == 404
    assert client.post(f"/api/notifications/{theirs.pk}/read/").status_code == 404
    assert client.post("/api/notifications/read-all/").json() == {"marked": 1}
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_api_anonymous_is_refused(client, two_for_vendor):
    assert client.get("/api/notifications/").status_code in (401, 403)


def test_api_list_query_count_is_pinned(client, world, two_for_vendor, django_assert_max_num_queries):
    for n in range(20):
        notify(kind=Kind.CHECKS_FINISHED, recipients=[world.vendor_user], url=f"/submissions/{n}/",
               params={"submission": f"alpha v{n}", "open_risks": n}, actor=world.reviewer)
    client.force_login(world.vendor_user)
    # session + user, the count and the page (actors joined): the same for 2 or 22 rows.
    with django_assert_max_num_queries(4):
        assert client.get("/api/notifications/").status_code == 200


def test_schema_documents_the_notification_endpoints(client, world):
    client.force_login(world.admin)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    for path in ["/api/notifications/", "/api/notifications/{id}/read/", "/api/notifications/read-all/"]:
        assert path in schema


def test_list_page_query_count_does_not_grow_with_rows(client, world, two_for_vendor):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(world.vendor_user)

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(reverse("notification-list")).status_code == 200
        return len(ctx.captured_queries)

    few = count()
    for n in range(20):
        notify(kind=Kind.CHECKS_FINISHED, recipients=[world.vendor_user], url=f"/submissions/{n}/",
               params={"submission": f"alpha v{n}", "open_risks": n}, actor=world.reviewer)
    assert count() == few
    # session, user, profile (role), the header count, the page's count and rows (actors joined)
    assert few == 6


def test_header_language_switcher_also_sets_the_email_language(client, world):
    client.force_login(world.vendor_user)
    response = client.post(reverse("set_language"), {"language": "ko", "next": "/projects/"})
    assert response.status_code == 302
    assert Profile.objects.get(user=world.vendor_user).language == "ko"
    client.post(reverse("set_language"), {"language": "xx", "next": "/projects/"})  # not a language we speak
    assert Profile.objects.get(user=world.vendor_user).language == "ko"


def test_admin_lists_notifications_read_only(client, world, two_for_vendor):
    mine, _theirs = two_for_vendor
    client.force_login(world.admin)
    assert client.get("/admin/portal/notification/").status_code == 200
    assert client.get("/admin/portal/notification/add/").status_code == 403
    client.post(f"/admin/portal/notification/{mine[0].pk}/change/", {"url": "/elsewhere/"})
    mine[0].refresh_from_db()
    assert mine[0].url == "/submissions/1/"
    client.post(f"/admin/portal/notification/{mine[0].pk}/delete/", {"post": "yes"})
    assert Notification.objects.filter(pk=mine[0].pk).exists()
