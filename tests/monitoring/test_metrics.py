"""`GET /metrics`: off without a token, bearer-protected, Prometheus text with every family, and a
fixed number of queries per scrape."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from acme_client.models import AcmeOrder
from certificates.models import Certificate
from monitoring.models import Notification
from saleschannels.models import ChannelStatus, SalesChannel

URL = "/metrics"
TOKEN = "s3cret-scrape-token"


@pytest.fixture
def metrics_on(settings):
    settings.CERTMGR_METRICS_TOKEN = TOKEN


def scrape(client, token: str = TOKEN, **headers):
    return client.get(URL, HTTP_AUTHORIZATION=f"Bearer {token}", **headers)


def families(response) -> dict:
    return {
        family.name: family for family in text_string_to_metric_families(response.content.decode())
    }


def samples(family) -> dict[tuple, float]:
    """(name, sorted labels) -> value."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for sample in family.samples
    }


def test_it_is_off_while_no_token_is_set(client, settings, db):
    settings.CERTMGR_METRICS_TOKEN = ""
    response = scrape(client, token="")
    assert response.status_code == 404
    assert b"cert-alert" not in response.content


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x", f"{TOKEN}"],
)
def test_it_refuses_a_missing_or_wrong_token(client, metrics_on, db, authorization):
    headers = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}
    response = client.get(URL, **headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"certmgr_" not in response.content


def test_it_reads_the_token_at_request_time(client, settings, db):
    settings.CERTMGR_METRICS_TOKEN = ""
    assert scrape(client).status_code == 404
    settings.CERTMGR_METRICS_TOKEN = TOKEN
    assert scrape(client).status_code == 200


def test_it_is_not_served_on_a_shop_host(client, metrics_on, acme):
    SalesChannel.objects.create(institution=acme, name="Shop", hostname="shop.acme.test")
    assert scrape(client, HTTP_HOST="shop.acme.test").status_code == 404


def test_it_exposes_every_family_with_its_values(client, metrics_on, acme, opera, make_certificate):
    soon = make_certificate(
        acme, name='Main "shop"', hostnames=["shop.acme.test", "www.acme.test"], days_left=3
    )
    make_certificate(opera, name="Opera", hostnames=["tickets.opera.test"], days_left=-1)
    make_certificate(opera, name="Opera next", hostnames=["tickets.opera.test"], days_left=80)
    SalesChannel.objects.create(
        institution=acme,
        name="Main",
        hostname="shop.acme.test",
        ssl_mode="uploaded",
        certificate=soon,
        active_certificate=soon,
        probe_status="ok",
    )
    SalesChannel.objects.create(
        institution=opera,
        name="Tickets",
        hostname="tickets.opera.test",
        ssl_mode="managed",
        renewal_failures=2,
        probe_status="mismatch",
        status="renewal_failing",
        status_reason="acme_connection",
    )
    SalesChannel.objects.create(institution=opera, name="Plain", hostname="plain.opera.test")
    SalesChannel.objects.filter(hostname="shop.acme.test").update(status="uploaded")
    for status in ("valid", "valid", "failed", "pending"):
        AcmeOrder.objects.create(
            hostname="tickets.opera.test", directory_url="https://ca.test/dir", status=status
        )
    Notification.objects.create(
        institution=acme, kind="certificate_expiry", certificate=soon, threshold="7d"
    )
    Notification.objects.create(
        institution=acme, kind="certificate_expiry", certificate=soon, threshold="30d"
    )

    response = scrape(client)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    assert b"cert-alert" not in response.content
    found = families(response)

    expiry = samples(found["certmgr_certificate_expiry_timestamp_seconds"])
    assert len(expiry) == 3
    key = (
        "certmgr_certificate_expiry_timestamp_seconds",
        (
            ("hostnames", "shop.acme.test,www.acme.test"),
            ("id", str(soon.pk)),
            ("institution", "Acme Tickets"),
            ("kind", "ssl"),
            ("name", 'Main "shop"'),
        ),
    )
    assert expiry[key] == soon.expires_at.timestamp()

    by_status = {
        sample.labels["status"]: sample.value for sample in found["certmgr_certificates"].samples
    }
    assert by_status == {
        "valid": 1,
        "expiring": 0,
        "critical": 1,
        "expired": 1,
        "not_yet_valid": 0,
        "unverified": 0,
    }

    failures = {
        sample.labels["hostname"]: sample.value
        for sample in found["certmgr_channel_renewal_failures"].samples
    }
    assert failures == {"shop.acme.test": 0, "tickets.opera.test": 2, "plain.opera.test": 0}
    probe = {
        sample.labels["hostname"]: sample.value
        for sample in found["certmgr_channel_probe_ok"].samples
    }
    assert probe == {"shop.acme.test": 1, "tickets.opera.test": 0}  # no SSL: not probed

    channel_status = found["certmgr_channel_status"]
    assert channel_status.type == "gauge"
    by_channel_status = {s.labels["status"]: s.value for s in channel_status.samples}
    assert by_channel_status == {
        status: {"uploaded": 1, "renewal_failing": 1, "none": 1}.get(status, 0)
        for status in ChannelStatus.values
    }
    assert len(by_channel_status) == len(ChannelStatus)  # every status, zeros included

    renewals = found["certmgr_renewals"]
    assert renewals.type == "counter"
    assert {s.labels["result"]: s.value for s in renewals.samples if s.name.endswith("_total")} == {
        "issued": 2,
        "failed": 1,
    }
    notifications = found["certmgr_notifications"]
    assert notifications.type == "counter"
    assert {
        s.labels["kind"]: s.value for s in notifications.samples if s.name.endswith("_total")
    } == {"certificate_expiry": 2, "renewal_failing": 0, "probe_problem": 0}


def test_a_scrape_costs_the_same_queries_whatever_the_number_of_certificates(
    client, metrics_on, acme, opera
):
    def scrape_queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            response = scrape(client)
        assert response.status_code == 200
        return len(captured.captured_queries)

    def add(count: int, *, batch: str) -> None:
        expires_at = timezone.now() + timedelta(days=40)
        for institution in (acme, opera):
            Certificate.objects.bulk_create(
                Certificate(institution=institution, name=f"{batch}{n}", expires_at=expires_at)
                for n in range(count)
            )
            SalesChannel.objects.bulk_create(
                SalesChannel(
                    institution=institution,
                    name=f"{batch}{n}",
                    hostname=f"{batch}{n}.{institution.slug}.test",
                    ssl_mode="uploaded",
                )
                for n in range(count)
            )

    add(1, batch="a")
    few = scrape_queries()
    add(200, batch="b")
    assert scrape_queries() == few == 6
    found = families(scrape(client))
    assert len(found["certmgr_certificate_expiry_timestamp_seconds"].samples) == 402
    assert len(found["certmgr_channel_probe_ok"].samples) == 402
    assert {s.labels["status"]: s.value for s in found["certmgr_channel_status"].samples}[
        "none"
    ] == 402  # created with the default status
