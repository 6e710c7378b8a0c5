"""The certificates window: columns, filters, search, sort, pagination and a fixed query count."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from saleschannels.models import SalesChannel
from tests.support import page_html

URL = reverse("certificate_list")


def names(response) -> list[str]:
    return [row["certificate"].name for row in response.context["rows"]]


def test_it_lists_every_column(as_alice, acme, make_certificate):
    certificate = make_certificate(acme, name="Main shop", hostnames=["shop.acme.test"])
    SalesChannel.objects.create(
        institution=acme,
        name="Main",
        hostname="shop.acme.test",
        ssl_mode="uploaded",
        certificate=certificate,
        active_certificate=certificate,
    )
    html = page_html(as_alice.get(URL))
    for text in ("Main shop", "SSL", "Acme Tickets", "shop.acme.test", "badge-valid"):
        assert text in html
    assert certificate.expires_at.strftime("%Y-%m-%d") in html


def test_it_sorts_by_expiry_soonest_first(as_alice, acme, make_certificate):
    make_certificate(acme, name="later", days_left=80)
    make_certificate(acme, name="sooner", days_left=10)
    make_certificate(acme, name="gone", days_left=-3)
    assert names(as_alice.get(URL)) == ["gone", "sooner", "later"]
    assert names(as_alice.get(URL, {"sort": "-expires_at"})) == ["later", "sooner", "gone"]
    assert names(as_alice.get(URL, {"sort": "name"})) == ["gone", "later", "sooner"]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("valid", ["valid"]),
        ("expiring", ["expiring"]),
        ("critical", ["critical"]),
        ("expired", ["expired"]),
    ],
)
def test_it_filters_by_status(as_alice, acme, make_certificate, status, expected):
    make_certificate(acme, name="valid", days_left=80)
    make_certificate(acme, name="expiring", days_left=20)
    make_certificate(acme, name="critical", days_left=3)
    make_certificate(acme, name="expired", days_left=-1)
    assert names(as_alice.get(URL, {"status": status})) == expected


def test_it_filters_by_kind_and_institution_and_searches(
    client, sam, acme, opera, make_certificate
):
    make_certificate(acme, name="Acme shop", hostnames=["shop.acme.test"])
    make_certificate(opera, name="Opera shop", hostnames=["tickets.opera.test"])
    client.force_login(sam)
    assert names(client.get(URL, {"institution": "opera-house"})) == ["Opera shop"]
    assert names(client.get(URL, {"q": "tickets.opera"})) == ["Opera shop"]
    assert names(client.get(URL, {"q": "ACME SHOP"})) == ["Acme shop"]
    assert names(client.get(URL, {"q": "no-such-shop"})) == []
    assert len(names(client.get(URL, {"kind": "ssl"}))) == 2
    assert names(client.get(URL, {"kind": "apple_identity_proof"})) == []


def test_it_shows_only_the_users_institutions(client, charlie, acme, opera, make_certificate):
    make_certificate(acme, name="Acme shop")
    make_certificate(opera, name="Opera shop")
    client.force_login(charlie)
    assert names(client.get(URL)) == ["Opera shop"]
    assert names(client.get(URL, {"institution": "acme-tickets"})) == []


def test_it_paginates(as_alice, acme, make_certificate):
    for index in range(27):
        make_certificate(acme, name=f"cert {index:02}", days_left=10 + index)
    first = as_alice.get(URL)
    second = as_alice.get(URL, {"page": 2})
    assert len(first.context["rows"]) == 25
    assert names(second) == ["cert 25", "cert 26"]
    assert 'rel="next"' in page_html(first)


def test_its_query_count_does_not_depend_on_the_number_of_certificates(
    as_alice, acme, make_certificate
):
    def count_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert as_alice.get(URL).status_code == 200
        return len(queries)

    for index in range(2):
        certificate = make_certificate(acme, name=f"a{index}", hostnames=[f"a{index}.test"])
        SalesChannel.objects.create(
            institution=acme, name=f"a{index}", hostname=f"a{index}.test", certificate=certificate
        )
    few = count_queries()
    for index in range(12):
        certificate = make_certificate(
            acme, name=f"b{index}", hostnames=[f"b{index}.test"], days_left=-1
        )
        SalesChannel.objects.create(
            institution=acme, name=f"b{index}", hostname=f"b{index}.test", certificate=certificate
        )
    assert count_queries() == few
