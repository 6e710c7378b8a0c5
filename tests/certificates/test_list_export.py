"""The certificates list as CSV (certificates/export.py) and the list's date filters that
cannot be read (certificates/filters.py)."""

import csv

from django.urls import reverse

from certificates.export import HEADER, cell_safe
from certificates.models import Certificate
from saleschannels.models import SalesChannel

LIST = reverse("certificate_list")
EXPORT = reverse("certificate_list_export")


def exported(client, query=None) -> list[dict]:
    response = client.get(EXPORT, query or {})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="certificates-')
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.reader(text.splitlines()))
    assert rows[0] == HEADER
    return [dict(zip(HEADER, row, strict=True)) for row in rows[1:]]


def test_it_exports_the_filtered_list_of_the_users_institutions_only(
    as_alice, acme, opera, make_certificate
):
    used = make_certificate(acme, name="Shop", hostnames=["shop.acme.test"], days_left=20)
    make_certificate(acme, name="Gone", hostnames=["gone.acme.test"], days_left=-3)
    make_certificate(opera, name="Opera shop", days_left=20)
    SalesChannel.objects.create(
        institution=acme,
        name="Shop",
        hostname="shop.acme.test",
        ssl_mode="uploaded",
        certificate=used,
        active_certificate=used,
    )
    rows = exported(as_alice)
    assert [row["Name"] for row in rows] == ["Gone", "Shop"]  # soonest first, as the list
    shop = rows[1]
    assert shop["Type"] == "SSL"
    assert shop["Institution"] == "Acme Tickets"
    assert shop["Common name"] == "shop.acme.test"
    assert shop["Hostnames"] == "shop.acme.test"
    assert "Test Intermediate CA" in shop["Issuer"]
    assert shop["Expires (UTC)"] == f"{used.expires_at:%Y-%m-%d %H:%M:%S}"
    assert shop["Not before (UTC)"] == f"{used.not_before:%Y-%m-%d %H:%M:%S}"
    assert shop["Days left"] == "20"
    assert shop["Status"] == "Expiring"
    assert shop["Used by"] == "shop.acme.test"
    assert rows[0]["Days left"] == "-3" and rows[0]["Status"] == "Expired"

    assert [row["Name"] for row in exported(as_alice, {"status": "expired"})] == ["Gone"]
    assert [row["Name"] for row in exported(as_alice, {"q": "shop"})] == ["Shop"]
    # Naming another institution finds nothing of it.
    assert exported(as_alice, {"institution": opera.slug}) == []


def test_the_list_links_the_export_with_its_filters(as_alice):
    page = as_alice.get(LIST, {"status": "expired", "q": "shop", "page": "2"}).content.decode()
    assert f'href="{EXPORT}?status=expired&amp;q=shop"' in page
    assert f'href="{EXPORT}"' in as_alice.get(LIST).content.decode()


def test_it_never_carries_key_material(as_alice, acme, make_certificate):
    certificate = make_certificate(acme, name="Shop", days_left=20)
    text = b"".join(as_alice.get(EXPORT).streaming_content).decode()
    assert "PRIVATE KEY" not in text and "BEGIN" not in text
    assert certificate.private_key_encrypted not in text


def test_cells_a_spreadsheet_would_run_are_quoted(as_alice, acme, make_certificate):
    for name in ("=HYPERLINK(1)", "+1", "-1", "@SUM(A1)", "\tx"):
        assert cell_safe(name) == "'" + name
    assert cell_safe("Shop = fine") == "Shop = fine"
    assert cell_safe(-6) == -6  # a number of ours stays a number
    make_certificate(acme, name='=cmd|"/c calc"!A1', days_left=20)
    (row,) = exported(as_alice)
    assert row["Name"] == '\'=cmd|"/c calc"!A1'


def test_anonymous_is_sent_to_log_in(client):
    response = client.get(EXPORT)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_a_date_filter_that_is_not_a_date_is_said_and_not_applied(as_alice, acme, make_certificate):
    make_certificate(acme, name="Shop", days_left=20)
    response = as_alice.get(LIST, {"expires_after": "2030-13-45"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "“2030-13-45” is not a date: write it as year-month-day, e.g. 2030-06-30." in page
    assert "This filter is not applied." in page
    assert 'aria-describedby="id_expires_after_errors"' in page
    assert [row["certificate"].name for row in response.context["rows"]] == ["Shop"]
    # The other filter still applies.
    response = as_alice.get(LIST, {"expires_after": "nonsense", "expires_before": "2000-01-01"})
    assert response.context["rows"] == []
    assert "“nonsense” is not a date" in response.content.decode()
    # Out of range, and the same in the export (applied as the list applies it).
    assert (
        "is out of range" in as_alice.get(LIST, {"expires_before": "0001-01-01"}).content.decode()
    )
    assert [row["Name"] for row in exported(as_alice, {"expires_after": "x"})] == ["Shop"]
    # A valid one says nothing.
    assert "not a date" not in as_alice.get(LIST, {"expires_after": "2000-01-01"}).content.decode()


def test_certificates_of_every_kind_are_exported(as_alice, acme, make_certificate):
    make_certificate(acme, name="Shop", days_left=20)
    Certificate.objects.create(
        institution=acme,
        kind=Certificate.Kind.APPLE_IDENTITY_PROOF,
        name="Proof",
        content=b"proof",
        expires_at=Certificate.objects.get().expires_at,
        expiry_source=Certificate.ExpirySource.MANUAL,
    )
    kinds = {row["Name"]: row["Type"] for row in exported(as_alice)}
    assert kinds == {"Shop": "SSL", "Proof": "Apple Pay identity proof"}
