"""Deleting identity proofs under simultaneous requests: Apple Pay's file never disappears.

Two managers each open the delete page of one of the institution's two valid proofs: the
latest, which channels serve by default (its page says the other takes over), and the other
(served nowhere, so its page raises nothing). Both confirm at once, held at a barrier after
their page's check so that both services run together: proof deletions take turns on the
institution's row, so whichever comes second finds the proof it deletes served with none to
take over and is refused, and the channel keeps serving a file.
"""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connections
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from certificates import services, views
from certificates.apple import WELL_KNOWN_PATH
from certificates.models import Certificate
from core.models import AuditEvent
from saleschannels import services as channel_services
from tests.support import confirm_field

# Each request runs in a thread with a connection of its own: they must see each other's
# commits, so the test database is not wrapped in one transaction.
pytestmark = pytest.mark.django_db(transaction=True)

SHOP = "shop.acme.test"


def proof_upload(institution, name: str):
    return services.identity_proof_upload(
        institution=institution,
        name=name,
        content=f"{name}\n".encode(),
        expires_at=timezone.now() + timedelta(days=365),
        actor=None,
    )


def test_the_two_last_proofs_deleted_at_once_leave_one_served(acme, alice, monkeypatch):
    proofs = [proof_upload(acme, "older"), proof_upload(acme, "latest")]
    channel = channel_services.channel_create(
        institution=acme, name="Shop", hostname=SHOP, actor=alice
    )
    channel_services.channel_hostname_verified_mark(channel=channel, method="txt", actor=None)
    channel_services.channel_set_apple_pay(
        channel=channel, enabled=True, identity_proof=None, actor=alice
    )
    clients, confirmations = [], []
    shown = ["No sales channel serves it as its Apple Pay file.", "is served there instead"]
    for proof, impact in zip(proofs, shown, strict=True):
        client = Client(raise_request_exception=False)  # a 500 is an answer to count
        client.force_login(alice)
        page = client.get(reverse("certificate_delete", args=[proof.pk]))
        assert impact in page.content.decode()
        clients.append(client)
        confirmations.append(confirm_field(page))

    barrier = threading.Barrier(len(proofs), timeout=30)
    deletion_read = views.certificate_deletion

    def deletion_read_then_wait(certificate, now):
        deletion = deletion_read(certificate, now)
        barrier.wait()  # both pages' checks have passed: now both services run
        return deletion

    monkeypatch.setattr(views, "certificate_deletion", deletion_read_then_wait)

    def confirm(index: int):
        try:
            url = reverse("certificate_delete", args=[proofs[index].pk])
            return clients[index].post(url, confirmations[index])
        finally:
            connections.close_all()  # this thread's connection

    with ThreadPoolExecutor(len(proofs)) as pool:
        responses = list(pool.map(confirm, range(len(proofs))))

    assert [response.status_code for response in responses] == [302, 302]
    kept = Certificate.objects.filter(pk__in=[proof.pk for proof in proofs])
    assert kept.count() == 1
    assert AuditEvent.objects.filter(action=AuditEvent.Action.CERTIFICATE_DELETE).count() == 1
    refused = [r for r in responses if r["Location"] != reverse("certificate_list")]
    assert [r["Location"] for r in refused] == [reverse("certificate_delete", args=[kept.get().pk])]
    served = Client().get(WELL_KNOWN_PATH, HTTP_HOST=SHOP)
    assert served.status_code == 200 and served.content == bytes(kept.get().content)
