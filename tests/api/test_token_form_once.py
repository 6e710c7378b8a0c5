"""A token's creation form makes one token however often it is sent (README, "API"): a reload
of the page that showed the secret re-sends the form, and a double click sends it twice at
once. Both are recognised by the form's id and create nothing more."""

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connections
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from api.forms import ApiTokenForm
from api.models import ApiToken
from core.models import AuditEvent
from institutions.models import Membership

SENT_AGAIN = "No new token: this form was sent before"


def _form_id(page: str) -> str:
    return re.search(r'name="form_id" value="([0-9a-f-]{36})"', page).group(1)


def _data(form_id: str) -> dict:
    expires_on = (timezone.now().date() + timedelta(days=30)).isoformat()
    return {"name": "onboarding", "role": "manager", "expires_on": expires_on, "form_id": form_id}


@pytest.mark.django_db
def test_each_blank_form_has_an_id_of_its_own(as_alice, acme):
    url = reverse("api_tokens", args=[acme.slug])
    first = _form_id(as_alice.get(url).content.decode())
    second = _form_id(as_alice.get(url).content.decode())

    assert first != second
    created = as_alice.post(url, _data(first)).content.decode()
    assert _form_id(created) not in (first, second)


@pytest.mark.django_db
def test_a_reload_of_the_created_page_makes_no_second_token_and_shows_no_secret(as_alice, acme):
    url = reverse("api_tokens", args=[acme.slug])
    data = _data(_form_id(as_alice.get(url).content.decode()))
    secret = as_alice.post(url, data).context["created"].secret

    again = as_alice.post(url, data)  # what the browser sends on reload

    assert again.status_code == 200
    page = again.content.decode()
    assert SENT_AGAIN in page
    assert "It created the token “onboarding” (starting with" in page
    assert secret not in page
    assert again.context["created"] is None
    assert ApiToken.objects.count() == 1
    assert AuditEvent.objects.filter(action=AuditEvent.Action.API_TOKEN_CREATE).count() == 1


@pytest.mark.django_db
def test_a_form_id_is_per_institution(alice, acme, opera):
    Membership.objects.create(user=alice, institution=opera, role=Membership.Role.MANAGER)
    client = Client()
    client.force_login(alice)
    data = _data(_form_id(client.get(reverse("api_tokens", args=[acme.slug])).content.decode()))

    client.post(reverse("api_tokens", args=[acme.slug]), data)
    other = client.post(reverse("api_tokens", args=[opera.slug]), data)

    assert other.context["created"] is not None
    assert ApiToken.objects.filter(name="onboarding").count() == 2


@pytest.mark.django_db(transaction=True)
def test_one_form_sent_four_times_at_once_makes_one_token(alice, acme, monkeypatch):
    """Every request's form is valid before any writes: the unique constraint decides."""
    senders = 4
    barrier = threading.Barrier(senders, timeout=30)
    clean = ApiTokenForm.clean

    def clean_then_wait(form):
        cleaned = clean(form)
        barrier.wait()
        return cleaned

    monkeypatch.setattr(ApiTokenForm, "clean", clean_then_wait)
    url = reverse("api_tokens", args=[acme.slug])
    client = Client()
    client.force_login(alice)
    data = _data(_form_id(client.get(url).content.decode()))

    def post(_):
        browser = Client(raise_request_exception=False)
        browser.force_login(alice)
        try:
            return browser.post(url, data)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(senders) as pool:
        responses = list(pool.map(post, range(senders)))

    assert [r.status_code for r in responses] == [200] * senders
    # The page text, not response.context: the test client's context capture is shared by
    # the threads.
    assert sum("Token “onboarding” created" in r.content.decode() for r in responses) == 1
    assert sum(SENT_AGAIN in r.content.decode() for r in responses) == senders - 1
    assert ApiToken.objects.count() == 1
