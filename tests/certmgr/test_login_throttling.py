"""Login throttling (django-axes, settings AXES_*, certmgr/login_throttle.py): five failed logins
for one username from one address lock that pair out for 15 minutes with a clear page; others
are unaffected. Thirty failed logins from one address, whatever the usernames, lock that
address out for every user; other addresses are unaffected."""

from datetime import timedelta

import pytest
import time_machine
from axes.exceptions import AxesBackendRequestParameterRequired
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from tests.support import PASSWORD

pytestmark = pytest.mark.django_db

LIMIT = 5
LOCKED_OUT = "Too many failed logins for <strong>alice</strong> from your address"
ADDRESS_LIMIT = 30
ADDRESS_LOCKED_OUT = "Too many failed logins from your address, whatever the username"
WRONG_CREDENTIALS = "Please enter a correct username and password"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Dozens of password checks per test: a cheap hasher keeps them quick (users of these tests
    are created after this runs). What is throttled does not depend on the hasher."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def log_in(client, username, password, **extra):
    return client.post(
        reverse("login"), {"username": username, "password": password, "next": "/"}, **extra
    )


def logged_in_as(client) -> str | None:
    response = client.get(reverse("home"))
    return response.wsgi_request.user.get_username() if response.status_code == 200 else None


def fail(client, times, username="alice", **extra):
    return [log_in(client, username, "not the password", **extra) for _ in range(times)]


def test_four_failures_show_the_ordinary_form_error(client, alice):
    for response in fail(client, LIMIT - 1):
        assert response.status_code == 200
        assert WRONG_CREDENTIALS in response.content.decode()
    assert log_in(client, "alice", PASSWORD).status_code == 302
    assert logged_in_as(client) == "alice"


def test_the_fifth_failure_locks_out_with_a_clear_page(client, alice):
    *_, fifth = fail(client, LIMIT)
    assert fifth.status_code == 429
    assert "registration/locked_out.html" in [t.name for t in fifth.templates]
    page = fifth.content.decode()
    assert LOCKED_OUT in page
    assert "locked for 15 minutes" in page
    assert f'href="{reverse("login")}"' in page


def test_the_right_password_is_refused_while_locked_out(client, alice):
    fail(client, LIMIT)
    response = log_in(client, "alice", PASSWORD)
    assert response.status_code == 429
    assert LOCKED_OUT in response.content.decode()
    assert logged_in_as(client) is None


def test_another_user_from_the_same_address_is_not_affected(client, alice, bob):
    fail(client, LIMIT)
    assert log_in(client, "bob", PASSWORD).status_code == 302
    assert logged_in_as(client) == "bob"


def test_the_same_user_from_another_address_is_not_affected(client, alice):
    fail(client, LIMIT)  # from the test client's 127.0.0.1
    assert log_in(client, "alice", PASSWORD, REMOTE_ADDR="192.0.2.10").status_code == 302
    assert logged_in_as(client) == "alice"


def test_login_works_again_after_the_cool_off(client, alice):
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        fail(client, LIMIT)
        traveller.shift(timedelta(minutes=14))
        assert log_in(client, "alice", PASSWORD).status_code == 429
        # That refused attempt started the wait again.
        traveller.shift(timedelta(minutes=14))
        assert log_in(client, "alice", PASSWORD).status_code == 429
        traveller.shift(timedelta(minutes=16))
        response = log_in(client, "alice", PASSWORD)
    assert response.status_code == 302
    assert logged_in_as(client) == "alice"


def test_a_successful_login_resets_the_count(client, alice):
    fail(client, LIMIT - 1)
    assert log_in(client, "alice", PASSWORD).status_code == 302
    client.post(reverse("logout"))
    for response in fail(client, LIMIT - 1):
        assert response.status_code == 200


def test_the_admin_login_is_throttled_too(client, sam):
    for _ in range(LIMIT):
        response = client.post(
            reverse("admin:login"), {"username": "sam", "password": "not the password"}
        )
    assert response.status_code == 429
    response = client.post(reverse("admin:login"), {"username": "sam", "password": PASSWORD})
    assert response.status_code == 429


class TestBehindTheProxy:
    """CERTMGR_BEHIND_PROXY: every request comes from the proxy's address; the client is the
    X-Forwarded-For entry the proxy appended (the last), whatever the client put before it."""

    PROXY = {"REMOTE_ADDR": "10.0.0.2"}

    @pytest.fixture(autouse=True)
    def _behind_proxy(self, settings):
        settings.CERTMGR_BEHIND_PROXY = True

    def test_forged_entries_do_not_escape_the_lock_out(self, client, alice):
        for attempt in range(LIMIT):
            response = log_in(
                client,
                "alice",
                "not the password",
                HTTP_X_FORWARDED_FOR=f"198.18.0.{attempt}, 203.0.113.9",
                **self.PROXY,
            )
        assert response.status_code == 429
        response = log_in(
            client, "alice", PASSWORD, HTTP_X_FORWARDED_FOR="198.18.0.99, 203.0.113.9", **self.PROXY
        )
        assert response.status_code == 429

    def test_another_client_through_the_same_proxy_is_not_affected(self, client, alice):
        fail(client, LIMIT, HTTP_X_FORWARDED_FOR="203.0.113.9", **self.PROXY)
        response = log_in(
            client, "alice", PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.7", **self.PROXY
        )
        assert response.status_code == 302
        assert logged_in_as(client) == "alice"

    def test_without_the_setting_the_header_is_ignored(self, client, alice, settings):
        settings.CERTMGR_BEHIND_PROXY = False
        for attempt in range(LIMIT):
            response = log_in(
                client,
                "alice",
                "not the password",
                HTTP_X_FORWARDED_FOR=f"198.51.100.{attempt}",
                **self.PROXY,
            )
        # All five counted against the address that really connected.
        assert response.status_code == 429

    def test_an_entry_that_is_no_address_counts_the_peer(self, client, alice):
        """The proxy always appends an address: anything else came from a client that reached
        the application another way, which is then the peer (PostgreSQL stores addresses in
        an `inet` column, which would refuse the text)."""
        for attempt in range(LIMIT):
            response = log_in(
                client,
                "alice",
                "not the password",
                HTTP_X_FORWARDED_FOR=f"203.0.113.9, not-an-address-{attempt}",
                REMOTE_ADDR="198.51.100.4",
            )
        assert response.status_code == 429
        response = log_in(client, "alice", PASSWORD, REMOTE_ADDR="198.51.100.4")
        assert response.status_code == 429


def test_the_test_clients_login_needs_a_request(client, alice):
    """Throttling needs the request: Django's `client.login()` passes none and is refused
    loudly rather than let through unthrottled; tests log in with `force_login`, or give
    `client.login` a request."""
    with pytest.raises(AxesBackendRequestParameterRequired):
        client.login(username="alice", password=PASSWORD)
    assert client.login(request=HttpRequest(), username="alice", password=PASSWORD)
    assert logged_in_as(client) == "alice"


def spray(client, usernames, **extra):
    """One wrong password for each of `usernames`, as a password sprayer tries them."""
    return [log_in(client, username, "not the password", **extra) for username in usernames]


def strangers(count, prefix="stranger"):
    return [f"{prefix}{number}" for number in range(count)]


class TestOneAddressAcrossUsernames:
    """CERTMGR_LOGIN_ADDRESS_FAILURE_LIMIT: failures from one address count together whatever
    the usernames, so one address cannot try a password across many accounts."""

    def test_the_limit_is_thirty_by_default(self, settings):
        assert settings.CERTMGR_LOGIN_ADDRESS_FAILURE_LIMIT == ADDRESS_LIMIT

    def test_thirty_usernames_tried_lock_the_address_for_everyone(self, client, alice):
        *before, last = spray(client, strangers(ADDRESS_LIMIT))
        for response in before:
            assert response.status_code == 200
            assert WRONG_CREDENTIALS in response.content.decode()
        assert last.status_code == 429
        assert "registration/locked_out.html" in [t.name for t in last.templates]
        page = last.content.decode()
        assert ADDRESS_LOCKED_OUT in page
        assert "locked for every user for 15 minutes" in page
        # Alice never failed, yet from this address even her right password is refused.
        response = log_in(client, "alice", PASSWORD)
        assert response.status_code == 429
        assert ADDRESS_LOCKED_OUT in response.content.decode()
        assert "alice" not in response.content.decode()
        assert logged_in_as(client) is None

    def test_another_address_is_not_affected(self, client, alice):
        spray(client, strangers(ADDRESS_LIMIT))
        assert log_in(client, "alice", PASSWORD, REMOTE_ADDR="192.0.2.10").status_code == 302
        assert logged_in_as(client) == "alice"

    def test_the_admin_login_is_locked_too(self, client, sam):
        spray(client, strangers(ADDRESS_LIMIT))
        response = client.post(reverse("admin:login"), {"username": "sam", "password": PASSWORD})
        assert response.status_code == 429

    def test_an_office_under_the_limit_logs_in_as_usual(self, client, alice):
        """Seven colleagues behind one NAT, each mistyping four times: 28 failures."""
        for username in strangers(7, prefix="colleague"):
            for response in fail(client, LIMIT - 1, username=username):
                assert response.status_code == 200
        assert log_in(client, "alice", PASSWORD).status_code == 302
        assert logged_in_as(client) == "alice"

    def test_the_pair_limit_still_comes_first(self, client, alice, bob):
        fail(client, LIMIT)
        response = log_in(client, "alice", PASSWORD)
        assert response.status_code == 429
        assert LOCKED_OUT in response.content.decode()
        assert log_in(client, "bob", PASSWORD).status_code == 302

    def test_a_successful_login_does_not_clear_the_others_failures(self, client, alice):
        """A sprayer holding one account of their own cannot wipe the address's count by
        logging in with it: only that account's failures go."""
        spray(client, strangers(ADDRESS_LIMIT - 1))
        assert log_in(client, "alice", PASSWORD).status_code == 302
        client.post(reverse("logout"))
        assert spray(client, ["one-more"])[0].status_code == 429

    def test_the_limit_is_configurable(self, client, alice, settings):
        settings.CERTMGR_LOGIN_ADDRESS_FAILURE_LIMIT = 8
        *before, last = spray(client, strangers(8))
        assert {response.status_code for response in before} == {200}
        assert last.status_code == 429
        assert log_in(client, "alice", PASSWORD).status_code == 429

    def test_the_address_is_let_in_again_after_the_cool_off(self, client, alice):
        with time_machine.travel(timezone.now(), tick=False) as traveller:
            spray(client, strangers(ADDRESS_LIMIT))
            traveller.shift(timedelta(minutes=14))
            assert log_in(client, "alice", PASSWORD).status_code == 429
            traveller.shift(timedelta(minutes=16))
            response = log_in(client, "alice", PASSWORD)
        assert response.status_code == 302
        assert logged_in_as(client) == "alice"

    def test_an_ipv6_client_counts_as_its_slash_64(self, client, alice):
        """One site holds a whole /64: trying each username from a fresh address in it does
        not escape the count. Another /64 is another client."""
        for number, username in enumerate(strangers(ADDRESS_LIMIT)):
            response = log_in(
                client, username, "not the password", REMOTE_ADDR=f"2001:db8:1:2::{number + 1:x}"
            )
        assert response.status_code == 429
        response = log_in(client, "alice", PASSWORD, REMOTE_ADDR="2001:db8:1:2:ffff::9")
        assert response.status_code == 429
        response = log_in(client, "alice", PASSWORD, REMOTE_ADDR="2001:db8:1:3::1")
        assert response.status_code == 302

    def test_an_ipv4_mapped_address_counts_as_its_ipv4(self, client, alice):
        spray(client, strangers(ADDRESS_LIMIT), REMOTE_ADDR="::ffff:192.0.2.20")
        assert log_in(client, "alice", PASSWORD, REMOTE_ADDR="192.0.2.20").status_code == 429
