"""The expiry banner on every back-office page (middleware + base template)."""

import re
from datetime import timedelta

import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

LIST = reverse("certificate_list")


def banner(response) -> tuple[str, int] | None:
    match = re.search(
        r'<div class="cert-alert" data-level="(\w+)" data-count="(\d+)"', response.content.decode()
    )
    return (match[1], int(match[2])) if match else None


def test_there_is_no_banner_while_everything_is_valid(as_alice, acme, make_certificate):
    make_certificate(acme, days_left=60)
    assert banner(as_alice.get(LIST)) is None


def test_the_banner_moves_from_critical_to_expired_as_time_passes(
    client, alice, acme, make_certificate
):
    certificate = make_certificate(acme, days_left=20)
    with time_machine.travel(certificate.expires_at - timedelta(days=10)):
        client.force_login(alice)
        assert banner(client.get(LIST)) is None
    with time_machine.travel(certificate.expires_at - timedelta(days=3)):
        client.force_login(alice)
        assert banner(client.get(LIST)) == ("critical", 1)
    with time_machine.travel(certificate.expires_at + timedelta(minutes=1)):
        client.force_login(alice)
        response = client.get(LIST)
        assert banner(response) == ("expired", 1)
        assert "?status=expired" in response.content.decode()


def test_the_expired_banner_wins_and_counts_only_visible_certificates(
    client, alice, charlie, acme, opera, make_certificate
):
    make_certificate(acme, days_left=-2)
    make_certificate(acme, days_left=-1)
    make_certificate(acme, days_left=2)
    make_certificate(opera, days_left=-5)
    client.force_login(alice)
    assert banner(client.get(LIST)) == ("expired", 2)
    client.force_login(charlie)
    assert banner(client.get(LIST)) == ("expired", 1)


def test_the_banner_is_on_every_back_office_page(as_alice, acme, make_certificate):
    certificate = make_certificate(acme, days_left=-1)
    for url in (
        LIST,
        certificate.get_absolute_url(),
        reverse("certificate_new"),
        reverse("certificate_upload_ssl"),
    ):
        assert banner(as_alice.get(url)) == ("expired", 1), url


def test_it_is_not_added_to_downloads_or_anonymous_pages(client, as_alice, acme, make_certificate):
    certificate = make_certificate(acme, days_left=-1)
    download = as_alice.get(reverse("certificate_download", args=[certificate.pk]))
    assert b"cert-alert" not in download.content
    client.logout()
    assert banner(client.get(reverse("login"))) is None


def test_the_banner_costs_at_most_one_query_whatever_the_number_of_certificates(
    as_alice, acme, make_certificate
):
    def page_queries() -> list[str]:
        with CaptureQueriesContext(connection) as queries:
            as_alice.get(reverse("certificate_new"))
        return [query["sql"] for query in queries.captured_queries]

    make_certificate(acme, days_left=-1)
    with_one = page_queries()
    for _ in range(10):
        make_certificate(acme, days_left=-1)
    with_eleven = page_queries()
    assert len(with_eleven) == len(with_one)
    assert len([sql for sql in with_eleven if "COUNT(" in sql.upper()]) == 1  # one statement


def test_the_banner_is_not_computed_for_pages_that_do_not_render_it(
    as_alice, acme, make_certificate
):
    certificate = make_certificate(acme, days_left=-1)
    with CaptureQueriesContext(connection) as queries:
        as_alice.get(reverse("certificate_download", args=[certificate.pk]))
    assert not any("COUNT(" in query["sql"].upper() for query in queries.captured_queries)


def test_staff_see_the_banner_in_the_django_admin(client, sam, acme, make_certificate):
    sam.is_superuser = True
    sam.save()
    make_certificate(acme, days_left=-1)
    client.force_login(sam)
    assert banner(client.get(reverse("admin:index"))) == ("expired", 1)
