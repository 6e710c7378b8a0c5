"""Every back-office page carries the Content-Security-Policy (no 'unsafe-inline' or
'unsafe-eval'), frame denial, Referrer-Policy and nosniff, and its HTML has nothing that policy
would block: no inline <script> body, no <style> element, no style= attribute, no on*= event
handler, no javascript: URL.

The pages are found by following the links of the pages themselves, from the dashboard as a
manager and from the admin index as staff, so a new page linked from anywhere is covered
without editing this test; the pages only reached by a form or an error are added by hand.
"""

from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
from django.urls import resolve, reverse

from certificates import services
from certificates.models import CertificateRequest
from saleschannels.models import SalesChannel

pytestmark = pytest.mark.django_db

# Enough for every page of the small world below; a cap keeps a link loop from running away.
CRAWL_LIMIT = 300
NOT_FOLLOWED = ("/accounts/logout/", "/admin/logout/", "/static/")


class InlineCodeFinder(HTMLParser):
    """Collects what a strict CSP blocks in a page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        names = dict(attrs)
        for name, value in attrs:
            if name == "style":
                self.problems.append(f"<{tag} style={value!r}>")
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}={value!r}>")
            if name in ("href", "src", "action") and (value or "").strip().lower().startswith(
                "javascript:"
            ):
                self.problems.append(f"<{tag} {name}={value!r}>")
        if tag == "style":
            self.problems.append("<style> element")
        if tag == "script":
            if not names.get("src"):
                self.problems.append("<script> without src")
            self._in_script = True

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.problems.append(f"inline script body {data.strip()[:60]!r}")


def inline_code(html: str) -> list[str]:
    finder = InlineCodeFinder()
    finder.feed(html)
    finder.close()
    return finder.problems


class LinkFinder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.links.append(href)


def links_of(html: str, base: str) -> list[str]:
    finder = LinkFinder()
    finder.feed(html)
    resolved = []
    for href in finder.links:
        url = urlsplit(urljoin(base, href))
        if url.netloc in ("", "testserver") and url.scheme in ("", "http"):
            resolved.append(url.path + (f"?{url.query}" if url.query else ""))
    return resolved


def csp_directives(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


def assert_page_is_hardened(path: str, response) -> None:
    directives = csp_directives(response["Content-Security-Policy"])
    assert directives["script-src"] == ["'self'"], path
    assert directives["style-src"] == ["'self'"], path
    assert directives["default-src"] == ["'self'"], path
    assert directives["frame-ancestors"] == ["'none'"], path
    assert directives["object-src"] == ["'none'"], path
    assert directives["base-uri"] == ["'none'"], path
    assert "unsafe" not in response["Content-Security-Policy"], path
    assert response["X-Frame-Options"] == "DENY", path
    assert response["Referrer-Policy"] == "same-origin", path
    assert response["X-Content-Type-Options"] == "nosniff", path
    if response["Content-Type"].startswith("text/html"):
        assert inline_code(response.content.decode()) == [], path


def crawl(client, start: str, *, prefix: str = "/") -> dict[str, int]:
    """GET every page linked from `start` under `prefix` (one query string per path), checking
    each; returns path -> status."""
    seen_paths: set[str] = set()
    visited: dict[str, int] = {}
    queue = [start]
    while queue:
        target = queue.pop(0)
        path = target.split("?", 1)[0]
        if path in seen_paths or not path.startswith(prefix) or path.startswith(NOT_FOLLOWED):
            continue
        seen_paths.add(path)
        assert len(visited) < CRAWL_LIMIT, "crawl limit reached"
        response = client.get(target)
        visited[path] = response.status_code
        assert response.status_code in (200, 302), (target, response.status_code)
        assert_page_is_hardened(target, response)
        if response["Content-Type"].startswith("text/html"):
            queue.extend(links_of(response.content.decode(), target))
    return visited


@pytest.fixture
def world(acme, alice, make_certificate):
    """One of everything a manager's pages show."""
    shop = make_certificate(acme, name="Shop", hostnames=["shop.acme.test"], days_left=20)
    make_certificate(acme, name="Expired", days_left=-3)
    SalesChannel.objects.create(
        institution=acme,
        name="Main shop",
        hostname="shop.acme.test",
        ssl_mode="uploaded",
        certificate=shop,
        active_certificate=shop,
    )
    services.certificate_request_create(
        institution=acme,
        kind=CertificateRequest.Kind.APPLE_MERCHANT_IDENTITY,
        merchant_identifier="merchant.test.csp",
        name="merchant identity",
        actor=alice,
    )


def url_names(visited: dict[str, int]) -> set[str]:
    return {resolve(path).url_name for path in visited}


def test_every_page_a_manager_reaches_is_hardened(client, alice, world):
    client.force_login(alice)
    visited = crawl(client, reverse("home"))
    assert {
        "home",
        "certificate_list",
        "certificate_detail",
        "certificate_download",
        "certificate_new",
        "certificate_upload_ssl",
        "certificate_upload_identity_proof",
        "certificate_upload_merchant_identity",
        "certificate_upload_payment_processing",
        "certificate_request_new",
        "certificate_request_detail",
        "channel_list",
        "channel_detail",
        "channel_new",
        "channel_edit",
        "channel_ssl",
        "channel_apple_pay",
        "institution_list",
    } <= url_names(visited)


def test_every_admin_page_staff_reach_is_hardened(client, django_user_model, world):
    root = django_user_model.objects.create_superuser(username="root", password="unused")
    client.force_login(root)
    visited = crawl(client, reverse("admin:index"), prefix="/admin/")
    assert {
        "index",
        "certificates_certificate_changelist",
        "certificates_certificate_change",
        "saleschannels_saleschannel_change",
        "axes_accessattempt_changelist",
    } <= url_names(visited)


def test_pages_reached_without_a_link_are_hardened(client, alice, bob, world):
    anonymous = client.get(reverse("login"))
    assert_page_is_hardened("login", anonymous)

    for _ in range(5):
        locked = client.post(reverse("login"), {"username": "bob", "password": "wrong"})
    assert locked.status_code == 429
    assert_page_is_hardened("lockout page", locked)

    client.force_login(alice)
    missing = client.get("/certificates/999999/")
    assert missing.status_code == 404
    assert_page_is_hardened("404", missing)

    client.force_login(bob)  # a viewer
    forbidden = client.get(reverse("certificate_upload_ssl"))
    assert forbidden.status_code == 403
    assert_page_is_hardened("403", forbidden)

    invalid = client.post(reverse("channel_new"), {})
    assert_page_is_hardened("form with errors", invalid)


def test_the_finder_sees_what_a_strict_policy_blocks():
    assert inline_code('<p style="color: red">x</p>') == ["<p style='color: red'>"]
    assert inline_code('<button onclick="go()">x</button>') == ["<button onclick='go()'>"]
    assert inline_code("<script>alert(1)</script>") == [
        "<script> without src",
        "inline script body 'alert(1)'",
    ]
    assert inline_code("<style>p {}</style>") == ["<style> element"]
    assert inline_code('<a href="javascript:go()">x</a>') == ["<a href='javascript:go()'>"]
    assert inline_code('<script src="/static/x.js"></script><svg><rect fill="red"/></svg>') == []
