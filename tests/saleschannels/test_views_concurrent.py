"""Sales-channel pages under simultaneous requests: one hostname, one channel, no 500.

The form's "is this hostname free?" and the insert are two steps; several requests can pass
the first together. Each test holds every request at a barrier right after its form has found
the hostname free, so that all of them then write at once: the unique index decides, and the
losers must get the form back with the error on the hostname field.
"""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections
from django.test import Client
from django.urls import reverse

from core.models import AuditEvent
from saleschannels.forms import ChannelForm
from saleschannels.models import SalesChannel

# Each request runs in a thread with a connection of its own: they must see each other's
# commits, so the test database is not wrapped in one transaction.
pytestmark = pytest.mark.django_db(transaction=True)

REQUESTS = 8
HOSTNAME = "race.acme.test"
TAKEN = "This hostname is already used by a sales channel."


@pytest.fixture
def all_forms_valid_first(monkeypatch):
    """Every request's form passes its hostname check before any request writes."""
    barrier = threading.Barrier(REQUESTS, timeout=30)
    clean_hostname = ChannelForm.clean_hostname

    def clean_hostname_then_wait(form):
        hostname = clean_hostname(form)
        barrier.wait()
        return hostname

    monkeypatch.setattr(ChannelForm, "clean_hostname", clean_hostname_then_wait)


def simultaneously(user, posts: list[tuple[str, dict]]) -> list:
    """POST each (url, data) from a thread of its own, all at once; the responses in order."""
    clients = []
    for _ in posts:
        client = Client(raise_request_exception=False)  # a 500 is an answer to count
        client.force_login(user)
        clients.append(client)

    def post(index: int):
        try:
            return clients[index].post(*posts[index])
        finally:
            connections.close_all()  # this thread's connection

    with ThreadPoolExecutor(len(posts)) as pool:
        return list(pool.map(post, range(len(posts))))


def test_simultaneous_creations_of_one_hostname_make_one_channel_and_form_errors(
    alice, acme, all_forms_valid_first
):
    data = [
        (
            reverse("channel_new"),
            {"institution": acme.pk, "name": f"Shop {n}", "hostname": HOSTNAME},
        )
        for n in range(REQUESTS)
    ]

    responses = simultaneously(alice, data)

    assert sorted(r.status_code for r in responses) == [200] * (REQUESTS - 1) + [302]
    for response in responses:
        if response.status_code == 200:
            assert response.context["form"].errors["hostname"] == [TAKEN]
            assert TAKEN in response.content.decode()
    channel = SalesChannel.objects.get()
    assert channel.hostname == HOSTNAME
    assert AuditEvent.objects.filter(action="channel.create").count() == 1


def test_simultaneous_moves_to_one_hostname_move_one_channel_and_form_errors(
    alice, acme, all_forms_valid_first
):
    channels = [
        SalesChannel.objects.create(institution=acme, name=f"Shop {n}", hostname=f"{n}.acme.test")
        for n in range(REQUESTS)
    ]
    data = [
        (reverse("channel_edit", args=[c.pk]), {"name": c.name, "hostname": HOSTNAME})
        for c in channels
    ]

    responses = simultaneously(alice, data)

    assert sorted(r.status_code for r in responses) == [200] * (REQUESTS - 1) + [302]
    for channel, response in zip(channels, responses, strict=True):
        channel.refresh_from_db()
        if response.status_code == 302:
            assert channel.hostname == HOSTNAME
        else:
            assert response.context["form"].errors["hostname"] == [TAKEN]
            assert channel.hostname == f"{channels.index(channel)}.acme.test"  # unchanged
    assert AuditEvent.objects.filter(action="channel.update").count() == 1
