"""The pre-flight checks before an order (README, "Onboarding a hostname"), for real: a Pebble
CA, its DNS server pebble-challtestsrv (whose records the tests set) and the live app.

For each problem a tenant's DNS or network can have - the name points elsewhere, CAA names
another CA (at the name or at a parent), CAA binds the CA to another ACME account, the CAA
lookup fails, nothing answers on the HTTP-01 port - the channel waits in the status of the
failing check, its page says what was found and what to do in plain words, and the CA never
hears of it (Pebble counts no order). Once the problem is fixed, *Check now* queues the order
and the certificate is issued: one order in all. A hostname that is a CNAME to the edge's
name passes the DNS check by that rule alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.urls import reverse
from django.utils.html import escape

from acme_client import protocol, services, tasks
from acme_client.models import AcmeAccount, AcmeOrder
from certificates.models import Certificate
from saleschannels.findings import Reason
from saleschannels.models import ChannelStatus, SalesChannel
from tests.pebble import PebbleServer
from tests.support import port_free

pytestmark = pytest.mark.django_db(transaction=True)

HOST = "shop.acme.test"
PARENT = "acme.test"
ELSEWHERE = "203.0.113.9"
EDGE_NAME = "edge.platform.test"


@dataclass
class Setup:
    """What a case may need: the CA and its DNS, and the settings of the app."""

    pebble: PebbleServer
    settings: object

    @property
    def dns(self):
        return self.pebble.dns

    @property
    def http_port(self) -> int:
        return self.pebble.http_port

    def account_uri(self) -> str:
        """The platform's ACME account at Pebble, registered now if it has none yet."""
        if not AcmeAccount.objects.exclude(uri="").exists():
            services.account_client(deadline=protocol.deadline_in(30))
        return AcmeAccount.objects.get().uri


@dataclass(frozen=True)
class Case:
    """A problem: how to cause it and fix it, and what the channel then says (`{port}` and
    `{account}` in the texts are filled in from the case's own values)."""

    cause: Callable[[Setup], dict]
    fix: Callable[[Setup], None]
    status: str
    reason: Reason
    words: str
    advice: str


def _points_elsewhere(setup: Setup) -> dict:
    setup.dns.a_set(HOST, [ELSEWHERE])
    return {}


def _caa(name: str, value: str) -> Callable[[Setup], dict]:
    def cause(setup: Setup) -> dict:
        setup.dns.caa_set(name, [("issue", value)])
        return {}

    return cause


def _caa_for_another_account(setup: Setup) -> dict:
    ours = setup.account_uri()
    other = ours.rsplit("/", 1)[0] + "/999999"
    assert other != ours
    setup.dns.caa_set(HOST, [("issue", f"letsencrypt.org; accounturi={other}")])
    return {"account": ours}


def _caa_servfail(setup: Setup) -> dict:
    # At the parent: the name itself still answers its A query (the DNS check passes), and
    # has no CAA record, so the climb asks the parent, which fails.
    setup.dns.servfail_set(PARENT)
    return {}


def _http_port_closed(setup: Setup) -> dict:
    port = port_free()
    setup.settings.ACME_HTTP01_PORT = port
    return {"port": port}


def _http_port_restored(setup: Setup) -> None:
    setup.settings.ACME_HTTP01_PORT = setup.http_port


CASES = {
    "a_record_elsewhere": Case(
        cause=_points_elsewhere,
        fix=lambda setup: setup.dns.a_clear(HOST),  # back to Pebble's DNS default, 127.0.0.1
        status=ChannelStatus.WAITING_DNS,
        reason=Reason.DNS_ELSEWHERE,
        words=f"{HOST} points at {ELSEWHERE}, not at the platform (127.0.0.1).",
        advice="Change its A/AAAA records to 127.0.0.1.",
    ),
    "caa_names_another_ca": Case(
        cause=_caa(HOST, "sectigo.com"),
        fix=lambda setup: setup.dns.caa_clear(HOST),
        status=ChannelStatus.WAITING_CAA,
        reason=Reason.CAA_FORBIDS,
        words=f"The CAA records at {HOST} allow only sectigo.com, not letsencrypt.org.",
        advice=f'Add a CAA record at {HOST}: 0 issue "letsencrypt.org".',
    ),
    "caa_on_a_parent_names_another_ca": Case(
        cause=_caa(PARENT, "sectigo.com"),
        fix=lambda setup: setup.dns.caa_clear(PARENT),
        status=ChannelStatus.WAITING_CAA,
        reason=Reason.CAA_FORBIDS,
        words=f"The CAA records at {PARENT} allow only sectigo.com, not letsencrypt.org.",
        advice=f'Add a CAA record at {PARENT}: 0 issue "letsencrypt.org".',
    ),
    "caa_for_another_account": Case(
        cause=_caa_for_another_account,
        fix=lambda setup: setup.dns.caa_clear(HOST),
        status=ChannelStatus.WAITING_CAA,
        reason=Reason.CAA_ACCOUNT,
        words=(
            f"The CAA records at {HOST} allow letsencrypt.org only for another ACME account, "
            "not the platform's."
        ),
        advice=(
            f'Add a CAA record at {HOST}: 0 issue "letsencrypt.org; accounturi={{account}}", '
            "or drop accounturi from the existing one."
        ),
    ),
    "caa_lookup_servfail": Case(
        cause=_caa_servfail,
        fix=lambda setup: setup.dns.servfail_clear(PARENT),
        status=ChannelStatus.WAITING_CAA,
        reason=Reason.CAA_SERVFAIL,
        words=(
            f"The CAA lookup for {PARENT} failed (SERVFAIL); a CA refuses to issue until it "
            "succeeds."
        ),
        advice=(
            "Check the domain's DNS servers and DNSSEC: they must answer CAA queries, even "
            "with no record. Checked again automatically."
        ),
    ),
    "http_port_closed": Case(
        cause=_http_port_closed,
        fix=_http_port_restored,
        status=ChannelStatus.WAITING_HTTP,
        reason=Reason.HTTP_REFUSED,
        words="Nothing accepts connections on port {port} of 127.0.0.1.",
        advice=("Open port {port} to the platform's edge: the CA validates over plain HTTP first."),
    ),
}


@pytest.fixture
def queued(monkeypatch) -> list[tuple]:
    """The issuances queued (the task's delay): the in-memory broker runs nothing, the test
    runs them (`run_queued`)."""
    calls: list[tuple] = []
    monkeypatch.setattr(tasks.issue_certificate, "delay", lambda *args: calls.append(args))
    return calls


def run_queued(queued: list[tuple], channel: SalesChannel) -> int | None:
    """Run the one issuance queued for `channel`, as a worker would; the certificate's id."""
    assert [args[0] for args in queued] == [channel.pk], queued
    args = queued.pop()
    return tasks.issue_certificate(*args)


def manage(client, channel: SalesChannel) -> None:
    """The manager chooses *Managed* on SSL Management: the first order is queued."""
    response = client.post(reverse("channel_ssl", args=[channel.pk]), {"mode": "managed"})
    assert response.status_code == 302


def page(client, channel: SalesChannel) -> str:
    response = client.get(channel.get_absolute_url())
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def setup(pebble, settings) -> Setup:
    settings.CERTMGR_PROBE_TIMEOUT = 5.0
    return Setup(pebble=pebble, settings=settings)


@pytest.fixture
def channel(acme, make_verified_channel) -> SalesChannel:
    return make_verified_channel(acme, hostname=HOST)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_failing_check_places_no_order_says_why_and_check_now_orders_once_fixed(
    case: Case, setup: Setup, as_alice, channel, queued
):
    values = case.cause(setup)
    words, advice = case.words.format(**values), case.advice.format(**values)

    manage(as_alice, channel)
    assert run_queued(queued, channel) is None

    channel.refresh_from_db()
    assert (channel.status, channel.status_reason) == (case.status, case.reason.value)
    assert not channel.renewal_claim and channel.status_next_attempt_at is not None
    assert not AcmeOrder.objects.exists()
    assert setup.pebble.orders_count() == 0
    shown = page(as_alice, channel)
    assert ChannelStatus(case.status).label in shown
    assert escape(words) in shown, words
    assert escape(advice) in shown, advice

    case.fix(setup)
    checked = as_alice.post(reverse("channel_check", args=[channel.pk]), follow=True)
    assert f"Every check of {HOST} passes." in checked.content.decode()
    certificate_id = run_queued(queued, channel)

    assert certificate_id is not None, SalesChannel.objects.get(pk=channel.pk).renewal_last_error
    channel.refresh_from_db()
    assert channel.active_certificate_id == certificate_id
    assert channel.active_certificate.source == Certificate.Source.MANAGED
    assert channel.status == ChannelStatus.ACTIVE
    assert AcmeOrder.objects.get().status == AcmeOrder.Status.VALID
    assert setup.pebble.orders_count() == 1
    assert escape(words) not in page(as_alice, channel)


def test_a_cname_to_the_edge_name_passes_the_dns_check_by_that_rule(
    setup: Setup, as_alice, channel, queued, settings
):
    settings.CERTMGR_EDGE_CNAME = EDGE_NAME
    # Not the address the name ends at: only the CNAME rule can pass.
    settings.CERTMGR_EDGE_ADDRESSES = ["192.0.2.1"]
    setup.dns.a_set(EDGE_NAME, ["127.0.0.1"])
    setup.dns.cname_set(HOST, EDGE_NAME)

    manage(as_alice, channel)
    certificate_id = run_queued(queued, channel)

    channel.refresh_from_db()
    dns = next(item for item in channel.checks if item["check"] == "dns")
    assert dns["reason"] == Reason.DNS_EDGE_CNAME, channel.checks
    assert certificate_id is not None, (channel.status, channel.status_reason, channel.checks)
    assert channel.active_certificate_id == certificate_id
    assert setup.pebble.orders_count() == 1
    assert escape(f"{HOST} is a CNAME to the platform ({EDGE_NAME}).") in page(as_alice, channel)
