"""Console sessions and their users, read as SQL (config.sessions, config.authentication.ModelBackend):
the same answers as Django's database sessions and model backend."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone


def is_logged_in(client) -> bool:
    response = client.get("/")
    return response.status_code == 200


@pytest.mark.django_db
def test_it_reads_the_session_and_its_user_in_one_statement_each(client, alice):
    client.login(username="alice", password="alice-password-1")
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/status/bar/").status_code == 200
    reads = [q["sql"] for q in queries.captured_queries]
    assert sum("django_session" in sql for sql in reads) == 1
    assert sum("auth_user" in sql for sql in reads) == 1
    user = client.get("/").wsgi_request.user
    assert (user.pk, user.username, user.is_active, user.is_superuser) == (alice.pk, "alice", True, False)
    assert user.date_joined == type(alice).objects.get(pk=alice.pk).date_joined  # aware, as the ORM gives it


@pytest.mark.django_db
def test_it_logs_out_an_expired_session(client, alice):
    client.login(username="alice", password="alice-password-1")
    assert is_logged_in(client)
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_it_logs_out_a_deactivated_user_and_one_whose_password_changed(client, alice):
    client.login(username="alice", password="alice-password-1")
    type(alice).objects.filter(pk=alice.pk).update(is_active=False)
    assert not is_logged_in(client)
    type(alice).objects.filter(pk=alice.pk).update(is_active=True)
    client.login(username="alice", password="alice-password-1")
    assert is_logged_in(client)
    alice.set_password("another-password-2")
    alice.save()
    assert not is_logged_in(client)  # the session's auth hash no longer matches


@pytest.mark.django_db
def test_it_ends_the_session_at_logout_and_ignores_unknown_keys(client, alice):
    client.login(username="alice", password="alice-password-1")
    key = client.cookies["sessionid"].value
    client.post("/accounts/logout/")
    assert not Session.objects.filter(session_key=key).exists()
    client.cookies["sessionid"] = key
    assert not is_logged_in(client)
    client.cookies["sessionid"] = "x" * 32
    assert not is_logged_in(client)
