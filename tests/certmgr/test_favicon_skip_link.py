"""The favicon (no 404 at /favicon.ico, within the Content-Security-Policy) and the skip link,
the first thing a keyboard reaches on every back-office page (issue 17)."""

import re
from pathlib import Path

from django.contrib.staticfiles import finders
from django.templatetags.static import static
from django.urls import reverse


def test_favicon_ico_is_answered_at_the_root(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] in ("image/x-icon", "image/vnd.microsoft.icon")
    assert b"".join(response.streaming_content)[:4] == b"\x00\x00\x01\x00"  # ICO header


def test_pages_link_the_svg_favicon_which_is_served(client, as_alice):
    page = as_alice.get(reverse("certificate_list"))
    (href,) = re.findall(
        r'<link rel="icon" href="([^"]+)" type="image/svg\+xml">', page.content.decode()
    )
    # The test server does not serve /static/ (WhiteNoise serves the collected files): the
    # file the link names is one of the static files.
    assert href == static("favicon.svg")
    assert "<svg" in Path(finders.find("favicon.svg")).read_text()
    # Same origin: within img-src 'self' (README, "Production").
    assert href.startswith("/") and not href.startswith("//")
    assert "img-src 'self'" in page["Content-Security-Policy"]


def test_the_skip_link_is_the_first_focusable_element_of_every_page(client, as_alice):
    for url in (
        reverse("home"),
        reverse("certificate_list"),
        reverse("certificate_upload_ssl"),
        reverse("channel_list"),
        reverse("institution_list"),
    ):
        html = as_alice.get(url).content.decode()
        body = html[html.index("<body") :]
        first = re.search(r"<(a|button|input|select|textarea)\b[^>]*>", body)
        assert first[0] == '<a class="skip-link" href="#content">', url
        assert '<main id="content" tabindex="-1">' in html
    client.logout()
    html = client.get(reverse("login")).content.decode()
    assert '<a class="skip-link" href="#content">Skip to content</a>' in html
