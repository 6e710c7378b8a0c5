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


def banners(response) -> dict[str, str]:
    """{level: role} of each part of the banner."""
    found = re.findall(
        r'<div class="cert-alert" data-level="(\w+)" data-count="\d+" role="(\w+)"',
        response.content.decode(),
    )
    return dict(found)


def serve(institution, certificate, hostname):
    from saleschannels.models import SalesChannel

    SalesChannel.objects.create(
        institution=institution,
        name=hostname,
        hostname=hostname,
        ssl_mode="uploaded",
        certificate=certificate,
        active_certificate=certificate,
    )


def test_an_expired_certificate_no_channel_serves_is_not_said_to_break_webshops(
    as_alice, acme, make_certificate
):
    make_certificate(acme, days_left=-1)
    page = as_alice.get(LIST).content.decode()
    assert "1 certificate expired." in page
    assert "No sales channel serves it, so no visitor sees an error: replace or delete it." in page
    assert "security errors" not in page


def test_served_expired_certificates_are_said_to_break_webshops(as_alice, acme, make_certificate):
    serve(acme, make_certificate(acme, days_left=-1), "a.acme.test")
    page = as_alice.get(LIST).content.decode()
    assert "Webshops using it show security errors to their visitors." in page
    make_certificate(acme, days_left=-2)
    make_certificate(acme, days_left=-3)
    page = as_alice.get(LIST).content.decode()
    assert "3 certificates expired." in page
    assert "1 of them is still served: visitors of that webshop see security errors." in page


def test_expired_is_a_red_alert_and_expiring_within_days_an_amber_status(
    as_alice, acme, make_certificate, settings
):
    make_certificate(acme, days_left=3)
    response = as_alice.get(LIST)
    assert banners(response) == {"critical": "status"}
    assert "1 certificate expires within 7 days." in response.content.decode()
    assert 'role="alert"' not in response.content.decode()

    make_certificate(acme, days_left=-1)
    response = as_alice.get(LIST)
    assert banners(response) == {"expired": "alert", "critical": "status"}
    assert "1 more certificate expires within 7 days." in response.content.decode()
    css = (settings.BASE_DIR / "static" / "cert-alert.css").read_text()
    assert '[data-level="critical"] { background: #fef3c7' in css  # amber, not red


def test_without_anything_to_say_no_page_carries_role_alert(as_alice, acme, make_certificate):
    make_certificate(acme, days_left=60)
    assert 'role="alert"' not in as_alice.get(LIST).content.decode()
