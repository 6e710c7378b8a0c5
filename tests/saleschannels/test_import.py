"""Bulk onboarding (README, "Importing sales channels"): sales channels from a CSV file, by
`manage.py import_channels` and by the import page, with a preview, every refusal in plain
words naming its row and column, and nothing imported when any row is refused."""

import re

import pytest
from django.core.management import ManagementUtility
from django.db import connection, connections
from django.urls import reverse

from acme_client.imports import channels_import, channels_import_plan
from acme_client.models import AcmeOrder
from core.models import AuditEvent
from institutions.models import Institution
from saleschannels import services
from saleschannels.forms import ChannelForm
from saleschannels.hostnames import MAX_LENGTH
from saleschannels.imports import (
    MAX_BYTES,
    MAX_ROWS,
    UNVERIFIED_NOTE,
    ImportFileError,
    ImportRefused,
    import_parse,
)
from saleschannels.models import SalesChannel
from tests.support import upload

pytestmark = pytest.mark.django_db

HEADER = "institution,name,hostname,ssl_mode"
IMPORT_URL = "/saleschannels/import/"


def csv_of(*rows: str, header: str = HEADER) -> bytes:
    return "\r\n".join([header, *rows]).encode()


def plan_for(data: bytes, user):
    return channels_import_plan(data, institutions=Institution.objects.managed_by(user))


def errors_for(data: bytes, user) -> list[str]:
    return [str(error) for error in plan_for(data, user).errors]


# --- the file -------------------------------------------------------------------------------


def test_the_rows_are_read_with_or_without_a_byte_order_mark():
    data = csv_of("acme-tickets, Box office ,Tickets.Acme.test,Managed", "", "a,b,c,none,,")
    for raw in (data, b"\xef\xbb\xbf" + data):
        rows = import_parse(raw)
        assert [(r.number, r.institution, r.name, r.hostname, r.ssl_mode) for r in rows] == [
            (2, "acme-tickets", "Box office", "Tickets.Acme.test", "Managed"),
            # the blank line is row 3 of the spreadsheet, and the empty cells at the end of a
            # row are not columns
            (4, "a", "b", "c", "none"),
        ]


def test_quoted_cells_may_hold_commas_and_line_breaks():
    rows = import_parse(csv_of('acme-tickets,"Opera, ""main""\nstage",shop.acme.test,none'))
    assert rows[0].name == 'Opera, "main"\nstage'


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", f"The file is empty: its first row must be the header {HEADER}."),
        (
            b"slug,name,hostname,mode\r\nacme-tickets,a,b.test,none",
            f"The first row must be the header {HEADER} (these four columns, in this order).",
        ),
        (
            b"institution;name;hostname;ssl_mode\r\nacme-tickets;a;b.test;none",
            "The columns are separated by semicolons: save the file with commas, under the "
            f"header {HEADER}.",
        ),
        (
            HEADER.encode() + b"\r\n\r\n",
            "The file has no rows under its header: nothing to import.",
        ),
        (
            csv_of("acme-tickets,Caf\xe9,cafe.test,none").decode().encode("latin-1"),
            "The file is not UTF-8 text (line 2 holds bytes that are not UTF-8): save it as "
            "CSV UTF-8.",
        ),
        (
            csv_of("acme-tickets,a\x00b,shop.test,none"),
            "The file holds NUL characters, so it is not CSV text: save it as CSV (UTF-8).",
        ),
        (
            csv_of('acme-tickets,"a"b,shop.test,none'),
            "Line 2 of the file is not readable as CSV (',' expected after '\"'): check its "
            "quotes.",
        ),
    ],
)
def test_a_file_that_is_not_the_expected_csv_is_refused_as_a_whole(data, words):
    with pytest.raises(ImportFileError) as refused:
        import_parse(data)
    assert str(refused.value) == words


def test_the_file_is_bounded_in_bytes_and_rows():
    with pytest.raises(ImportFileError) as refused:
        import_parse(b"x" * (MAX_BYTES + 1))
    assert str(refused.value) == (
        "The file has 2,097,153 bytes; at most 2 MiB are imported at once: split it into "
        "several files."
    )
    rows = [f"acme-tickets,S,s{n}.test,none" for n in range(MAX_ROWS + 1)]
    assert len(import_parse(csv_of(*rows[:MAX_ROWS]))) == MAX_ROWS
    with pytest.raises(ImportFileError) as refused:
        import_parse(csv_of(*rows))
    assert str(refused.value) == "The file has more than 10,000 rows: split it into several files."


# --- the rows -------------------------------------------------------------------------------

TOO_LONG_NAME = "a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 61 + ".test"  # 256
assert MAX_LENGTH < len(TOO_LONG_NAME) <= 260


@pytest.mark.parametrize(
    ("row", "words"),
    [
        (
            "acme-tickets,Shop,shop.acme.test",
            "Row 2: 3 columns; every row has 4: institution, name, hostname, ssl_mode.",
        ),
        (
            "acme-tickets,Shop,shop.acme.test,none,extra",
            "Row 2: 5 columns; every row has 4: institution, name, hostname, ssl_mode.",
        ),
        (
            ",Shop,shop.acme.test,none",
            "Row 2, institution: empty: give the slug of the sales channel's institution.",
        ),
        (
            "nowhere,Shop,shop.acme.test,none",
            "Row 2, institution: there is no institution “nowhere” that you manage.",
        ),
        (
            "acme-tickets,,shop.acme.test,none",
            "Row 2, name: empty: every sales channel needs a name.",
        ),
        (
            f"acme-tickets,{'n' * 201},shop.acme.test,none",
            "Row 2, name: Ensure this value has at most 200 characters (it has 201).",
        ),
        (
            "acme-tickets,Shop,,none",
            "Row 2, hostname: empty: give the shop's hostname, e.g. tickets.example.com.",
        ),
        ("acme-tickets,Shop,127.1,none", "Row 2, hostname: Enter a hostname, not an IP address."),
        (
            "acme-tickets,Shop,0x7f.0x1,none",
            "Row 2, hostname: Enter a hostname, not an IP address.",
        ),
        (
            "acme-tickets,Shop,2130706433,none",
            "Row 2, hostname: Enter a hostname, not an IP address.",
        ),
        ("acme-tickets,Shop,[::1],none", "Row 2, hostname: Enter a hostname, not an IP address."),
        (
            "acme-tickets,Shop,shop.localhost,none",
            "Row 2, hostname: Names under .localhost point at the machine itself, not at a shop.",
        ),
        (
            "acme-tickets,Shop,https://shop.acme.test,none",
            "Row 2, hostname: Enter the hostname alone, without scheme, port or path.",
        ),
        (
            "acme-tickets,Shop,*.acme.test,none",
            "Row 2, hostname: A sales channel is served on one hostname; wildcards are not "
            "allowed.",
        ),
        ("acme-tickets,Shop,testserver.test,none", None),  # a control: accepted
        (
            "acme-tickets,Shop,shop.platform.test,none",
            "Row 2, hostname: shop.platform.test is reserved for the platform (platform.test and "
            "the names under it): choose the shop's own hostname.",
        ),
        (
            f"acme-tickets,Shop,{TOO_LONG_NAME},none",
            "Row 2, hostname: A hostname here has at most 251 characters: it becomes the file name "
            "of its certificate on the TLS edge.",
        ),
        (
            f"acme-tickets,Shop,{'a' * 261}.test,none",
            "Row 2, hostname: Ensure this value has at most 260 characters (it has 266).",
        ),
        (
            "acme-tickets,Shop,shop.acme.test,uploaded",
            "Row 2, ssl_mode: “uploaded” needs a certificate, which a file cannot bind: import the "
            "row as none, then choose the certificate on the channel's SSL Management page.",
        ),
        (
            "acme-tickets,Shop,shop.acme.test,letsencrypt",
            "Row 2, ssl_mode: “letsencrypt” is not an SSL mode: write none or managed.",
        ),
        ("acme-tickets,Shop,shop.acme.test,", "Row 2, ssl_mode: empty: write none or managed."),
    ],
)
def test_each_refusal_names_its_row_and_column_in_plain_words(alice, settings, row, words):
    settings.CERTMGR_RESERVED_DOMAINS = ["platform.test"]
    assert errors_for(csv_of(row), alice) == ([words] if words else [])


@pytest.mark.parametrize(
    "hostname",
    ["127.1", "0x7f.0x1", "[::1]", "localhost", "shop.platform.test", "testserver", "a..b", "x"],
)
def test_the_hostname_rules_and_words_are_the_channel_forms(alice, acme, settings, hostname):
    settings.CERTMGR_RESERVED_DOMAINS = ["platform.test"]
    form = ChannelForm({"institution": acme.pk, "name": "Shop", "hostname": hostname}, user=alice)
    assert not form.is_valid()
    (planned,) = plan_for(csv_of(f"acme-tickets,Shop,{hostname},none"), alice).rows
    assert [error.message for error in planned.errors] == form.errors["hostname"]


def test_a_hostname_is_on_one_row_and_held_by_no_channel(alice, acme):
    SalesChannel.objects.create(institution=acme, name="Old", hostname="old.acme.test")
    errors = errors_for(
        csv_of(
            "acme-tickets,A,shop.acme.test,none",
            "acme-tickets,B,SHOP.acme.test.,managed",
            "acme-tickets,C,Old.Acme.test,none",
            "acme-tickets,D,bücher.acme.test,none",
            "acme-tickets,E,xn--bcher-kva.acme.test,none",
        ),
        alice,
    )
    assert errors == [
        "Row 3, hostname: shop.acme.test is on row 2 already: a hostname belongs to one sales "
        "channel.",
        "Row 4, hostname: This hostname is already used by a sales channel.",
        "Row 6, hostname: xn--bcher-kva.acme.test is on row 5 already: a hostname belongs to "
        "one sales channel.",
    ]


def test_another_institutions_slug_reads_exactly_like_an_unknown_one(alice, opera):
    plan = plan_for(
        csv_of("opera-house,Shop,a.opera.test,none", "no-such,Shop,b.opera.test,none"), alice
    )
    assert [error.message for error in plan.errors] == [
        "there is no institution “opera-house” that you manage.",
        "there is no institution “no-such” that you manage.",
    ]
    assert all(planned.institution is None for planned in plan.rows)


def test_a_viewer_manages_no_institution_to_import_into(bob, acme):
    assert errors_for(csv_of("acme-tickets,Shop,shop.acme.test,none"), bob) == [
        "Row 2, institution: there is no institution “acme-tickets” that you manage."
    ]


def test_a_row_has_all_its_errors_in_the_order_of_its_columns(alice):
    assert errors_for(csv_of("nowhere,,127.1,uploaded"), alice) == [
        "Row 2, institution: there is no institution “nowhere” that you manage.",
        "Row 2, name: empty: every sales channel needs a name.",
        "Row 2, hostname: Enter a hostname, not an IP address.",
        "Row 2, ssl_mode: “uploaded” needs a certificate, which a file cannot bind: import the "
        "row as none, then choose the certificate on the channel's SSL Management page.",
    ]


# --- creating -------------------------------------------------------------------------------


def test_the_import_creates_each_channel_through_the_forms_path(alice, acme):
    plan = plan_for(
        csv_of(
            "acme-tickets,Box office,Bücher.Acme.test,none",
            "acme-tickets,Season,season.acme.test,managed",
        ),
        alice,
    )
    assert [planned.outcome for planned in plan.rows] == [
        "Creates Bücher.Acme.test (stored as xn--bcher-kva.acme.test), without SSL.",
        "Creates season.acme.test, managed: a certificate is ordered once Acme Tickets proves "
        "it controls the name.",
    ]
    result = channels_import(plan, actor=alice)

    box_office, season = result.created
    assert (box_office.name, box_office.hostname, box_office.ssl_mode, box_office.status) == (
        "Box office",
        "xn--bcher-kva.acme.test",
        "none",
        "none",
    )
    season.refresh_from_db()
    assert (season.ssl_mode, season.status, season.hostname_verified_at) == (
        "managed",
        "unverified",
        None,
    )
    audit = AuditEvent.objects.filter(actor=alice).values_list("action", "target_id", "details")
    assert sorted(audit) == sorted(
        [
            (
                "channel.create",
                box_office.pk,
                {"hostname": box_office.hostname, "ssl_mode": "none"},
            ),
            ("channel.create", season.pk, {"hostname": season.hostname, "ssl_mode": "managed"}),
        ]
    )
    # Unverified: nothing is ordered until the institution proves it controls the name.
    assert not AcmeOrder.objects.exists()


def test_nothing_is_imported_when_any_row_is_refused(alice, acme):
    plan = plan_for(
        csv_of("acme-tickets,A,a.acme.test,managed", "acme-tickets,B,127.1,none"), alice
    )
    assert not plan.ok
    with pytest.raises(ImportRefused):
        channels_import(plan, actor=alice)
    assert not SalesChannel.objects.exists()
    assert not AuditEvent.objects.exists()


def test_a_hostname_taken_after_the_check_undoes_the_whole_import(alice, acme, opera):
    plan = plan_for(
        csv_of(
            "acme-tickets,A,a.acme.test,managed",
            "acme-tickets,B,b.acme.test,none",
            "acme-tickets,C,c.acme.test,none",
        ),
        alice,
    )
    assert plan.ok
    services.channel_create(institution=opera, name="Quick", hostname="b.acme.test", actor=None)

    with pytest.raises(ImportRefused) as refused:
        channels_import(plan, actor=alice)

    assert [str(error) for error in refused.value.plan.errors] == [
        "Row 3, hostname: This hostname is already used by a sales channel."
    ]
    assert list(SalesChannel.objects.values_list("hostname", flat=True)) == ["b.acme.test"]
    assert not AuditEvent.objects.filter(actor=alice).exists()


# --- the command ----------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _connections_kept(monkeypatch):
    """manage.py closes the database connections when a command ends, the test's too."""
    monkeypatch.setattr(connections, "close_all", lambda: None)


def run_command(*argv: str) -> int:
    """manage.py as the shell runs it: its exit code (0 when it returns)."""
    try:
        ManagementUtility(["manage.py", "import_channels", *argv]).execute()
    except SystemExit as exit_:
        return exit_.code
    return 0


def test_the_command_imports_a_file_for_any_institution(tmp_path, capsys, acme, opera):
    path = tmp_path / "channels.csv"
    path.write_bytes(
        b"\xef\xbb\xbf"
        + csv_of(
            "acme-tickets,Box office,tickets.acme.test,managed",
            "opera-house,Opera,shop.opera.test,none",
        )
    )

    assert run_command(str(path)) == 0

    out = capsys.readouterr()
    assert out.out.splitlines() == [
        "created tickets.acme.test (Box office, acme-tickets, managed)",
        "created shop.opera.test (Opera, opera-house, without SSL)",
        f"2 sales channels (1 managed, 1 without SSL) created. {UNVERIFIED_NOTE}",
    ]
    assert "Row" not in out.err
    assert "Error" not in out.err
    assert sorted(SalesChannel.objects.values_list("hostname", "ssl_mode")) == [
        ("shop.opera.test", "none"),
        ("tickets.acme.test", "managed"),
    ]
    # Recorded as the platform's doing: no user ran it.
    assert set(AuditEvent.objects.values_list("actor", flat=True)) == {None}


def test_the_command_dry_run_checks_only(tmp_path, capsys, acme):
    path = tmp_path / "channels.csv"
    path.write_bytes(csv_of("acme-tickets,Box office,tickets.acme.test,managed"))

    assert run_command(str(path), "--dry-run") == 0

    assert capsys.readouterr().out.splitlines() == [
        "would create tickets.acme.test (Box office, acme-tickets, managed)",
        "1 sales channel (1 managed, 0 without SSL) checked: nothing imported (--dry-run). "
        f"{UNVERIFIED_NOTE}",
    ]
    assert not SalesChannel.objects.exists()


@pytest.mark.parametrize("dry_run", [[], ["--dry-run"]])
def test_the_command_prints_every_error_and_exits_1(tmp_path, capsys, acme, dry_run):
    path = tmp_path / "channels.csv"
    path.write_bytes(
        csv_of(
            "acme-tickets,Box office,tickets.acme.test,managed",
            "acme-tickets,Season,tickets.acme.test,uploaded",
            "nowhere,Opera,shop.opera.test,none",
        )
    )

    assert run_command(str(path), *dry_run) == 1

    out = capsys.readouterr()
    assert out.out == ""
    assert out.err.splitlines() == [
        "Row 3, hostname: tickets.acme.test is on row 2 already: a hostname belongs to one "
        "sales channel.",
        "Row 3, ssl_mode: “uploaded” needs a certificate, which a file cannot bind: import the "
        "row as none, then choose the certificate on the channel's SSL Management page.",
        "Row 4, institution: there is no institution “nowhere” that you manage.",
        "CommandError: 3 errors in 2 rows: nothing was imported.",
    ]
    assert not SalesChannel.objects.exists()


def test_the_command_refuses_an_unreadable_or_malformed_file(tmp_path, capsys):
    missing = tmp_path / "missing.csv"
    assert run_command(str(missing)) == 1
    assert capsys.readouterr().err == (
        f"CommandError: Cannot read {missing}: No such file or directory\n"
    )
    semicolons = tmp_path / "excel.csv"
    semicolons.write_bytes(b"institution;name;hostname;ssl_mode\r\nx;y;z.test;none\r\n")
    assert run_command(str(semicolons)) == 1
    assert capsys.readouterr().err == (
        f"CommandError: {semicolons}: The columns are separated by semicolons: save the file "
        f"with commas, under the header {HEADER}.\n"
    )


# --- the page -------------------------------------------------------------------------------


def preview(client, data: bytes, name: str = "channels.csv"):
    return client.post(IMPORT_URL, {"file": upload(name, data)})


def confirm_of(response) -> dict:
    plan = response.context["plan"]
    assert plan.ok
    return {"confirm": plan.digest}


def test_the_list_links_to_the_import_for_managers_only(client, alice, bob):
    client.force_login(alice)
    assert f'href="{IMPORT_URL}"' in client.get(reverse("channel_list")).content.decode()
    client.force_login(bob)
    assert IMPORT_URL not in client.get(reverse("channel_list")).content.decode()


def test_reverse_names_the_page():
    assert reverse("channel_import") == IMPORT_URL


def test_a_viewer_gets_403(client, bob, acme):
    client.force_login(bob)
    assert client.get(IMPORT_URL).status_code == 403
    response = preview(client, csv_of("acme-tickets,Shop,shop.acme.test,none"))
    assert response.status_code == 403
    assert client.post(IMPORT_URL, {"confirm": "0" * 32}).status_code == 403
    assert not SalesChannel.objects.exists()


def test_anonymous_is_sent_to_login(client):
    response = client.get(IMPORT_URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_a_manager_previews_then_confirms(client, alice, acme):
    client.force_login(alice)
    assert client.get(IMPORT_URL).status_code == 200
    data = csv_of(
        "acme-tickets,Box office,tickets.acme.test,managed",
        "acme-tickets,Season,season.acme.test,none",
    )
    page = preview(client, data)

    html = page.content.decode()
    assert page.status_code == 200
    for text in (
        "2 sales channels will be created: 1 managed, 1 without SSL.",
        "Creates tickets.acme.test, managed: a certificate is ordered once Acme Tickets proves "
        "it controls the name.",
        "Creates season.acme.test, without SSL.",
        "Proof of ownership",
        'name="confirm"',
    ):
        assert text in html, text
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)  # CSP: no inline script
    assert not SalesChannel.objects.exists()  # a preview creates nothing

    done = client.post(IMPORT_URL, confirm_of(page), follow=True)

    assert done.redirect_chain == [(reverse("channel_list"), 302)]
    shown = [str(message) for message in done.context["messages"]]
    assert shown == ["2 sales channels imported: 1 managed, 1 without SSL.", UNVERIFIED_NOTE]
    assert sorted(SalesChannel.objects.values_list("hostname", "ssl_mode", "status")) == [
        ("season.acme.test", "none", "none"),
        ("tickets.acme.test", "managed", "unverified"),
    ]
    assert set(AuditEvent.objects.values_list("actor", flat=True)) == {alice.pk}
    # Confirming again imports nothing more: the preview kept was used.
    again = client.post(IMPORT_URL, confirm_of(page))
    assert "This preview is no longer the one kept for you" in again.content.decode()
    assert SalesChannel.objects.count() == 2


def test_refused_rows_show_their_errors_and_no_confirm_button(client, alice, acme, opera):
    client.force_login(alice)
    page = preview(
        client,
        csv_of(
            "acme-tickets,Box office,tickets.acme.test,managed",
            "opera-house,Opera,shop.opera.test,none",
        ),
    )
    html = page.content.decode()
    assert "1 error in 1 row: nothing will be imported." in html
    assert "Row 3, institution: there is no institution “opera-house” that you manage." in html
    assert "institution: there is no institution “opera-house” that you manage." in html
    assert 'name="confirm"' not in html
    assert "Opera House" not in html  # the other institution's name never shows
    # Nothing kept to confirm: a confirmation with the digest of these rows imports nothing.
    response = client.post(IMPORT_URL, {"confirm": page.context["plan"].digest})
    assert "This preview is no longer the one kept for you" in response.content.decode()
    assert not SalesChannel.objects.exists()


def test_a_file_refused_as_a_whole_says_why_on_the_field(client, alice, acme):
    client.force_login(alice)
    response = preview(client, b"institution;name;hostname;ssl_mode\r\na;b;c.test;none")
    assert response.context["form"].errors["file"] == [
        "The columns are separated by semicolons: save the file with commas, under the header "
        f"{HEADER}."
    ]
    response = client.post(IMPORT_URL, {})
    assert response.context["form"].errors["file"] == ["This field is required."]


def test_only_the_last_preview_can_be_confirmed(client, alice, acme):
    client.force_login(alice)
    first = preview(client, csv_of("acme-tickets,One,one.acme.test,none"))
    second = preview(client, csv_of("acme-tickets,Two,two.acme.test,none"))

    stale = client.post(IMPORT_URL, confirm_of(first))
    assert "This preview is no longer the one kept for you" in stale.content.decode()
    assert not SalesChannel.objects.exists()

    client.post(IMPORT_URL, confirm_of(second))
    assert list(SalesChannel.objects.values_list("hostname", flat=True)) == ["two.acme.test"]


def test_a_change_since_the_preview_is_checked_again_at_confirmation(client, alice, acme, opera):
    client.force_login(alice)
    page = preview(
        client,
        csv_of("acme-tickets,One,one.acme.test,managed", "acme-tickets,Two,two.acme.test,none"),
    )
    services.channel_create(institution=opera, name="Quick", hostname="two.acme.test", actor=None)

    response = client.post(IMPORT_URL, confirm_of(page))

    assert response.status_code == 200
    html = response.content.decode()
    assert "Row 3, hostname: This hostname is already used by a sales channel." in html
    assert list(SalesChannel.objects.values_list("hostname", flat=True)) == ["two.acme.test"]


def test_another_institutions_manager_cannot_import_into_it(client, charlie, acme, opera):
    client.force_login(charlie)
    page = preview(client, csv_of("acme-tickets,Shop,shop.acme.test,none"))
    html = page.content.decode()
    assert "Row 2, institution: there is no institution “acme-tickets” that you manage." in html
    assert "Acme Tickets" not in html
    assert not SalesChannel.objects.exists()


# --- cost -----------------------------------------------------------------------------------


def rows_of(count: int, mode: str = "managed") -> bytes:
    return csv_of(*(f"acme-tickets,Shop {n},shop{n}.acme.test,{mode}" for n in range(count)))


class QueryCounter:
    """Every query run, however many (CaptureQueriesContext keeps the last 9,000 only)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def test_checking_a_thousand_rows_takes_a_constant_number_of_queries(
    alice, acme, django_assert_max_num_queries
):
    data = rows_of(1000)
    for n in range(0, 1000, 7):  # some taken, so that the uniqueness query finds rows
        SalesChannel.objects.create(institution=acme, name="Old", hostname=f"shop{n}.acme.test")
    with django_assert_max_num_queries(3):  # institutions, then hostnames in 2 chunks of 500
        plan = plan_for(data, alice)
    assert len(plan.errors) == len(range(0, 1000, 7))


def test_importing_a_thousand_rows_costs_a_bounded_number_of_queries_per_row(alice, acme):
    """Each channel is created through the form's service and switched through the SSL
    page's: a fixed number of queries per row, whatever the number of rows (no N+1)."""
    counts = {}
    for size in (10, 1000):
        SalesChannel.objects.all().delete()
        plan = plan_for(rows_of(size), alice)
        counter = QueryCounter()
        with connection.execute_wrapper(counter):
            result = channels_import(plan, actor=alice)
        assert len(result.created) == size
        counts[size] = counter.count
    per_row = (counts[1000] - counts[10]) / 990
    assert per_row <= 16, counts
    assert counts[1000] <= 16 * 1000 + 10, counts
