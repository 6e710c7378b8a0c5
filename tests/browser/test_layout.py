"""Through a real browser, at a phone's size (390×844) and a laptop's (1280×800): every page of
the back office fits its screen (issue 17, README "Tests").

The pages are not listed here: they are every URL pattern of the project (tests/urlwalk.py),
filled with the objects of the isolation walk's fixture (tests/certmgr/test_isolation.py: one
of every kind an institution owns, certificates and Apple Pay files, a pending CSR, channels in
several states) and a few more that stretch a page: long hostnames, an IDN hostname, long
names. A manager visits every page a manager can open, the platform's staff every page
including the admin's. A page fails when

* the document is wider than the window (`scrollWidth > innerWidth`);
* a visible link, button or form field lies partly outside the window, unless it sits in a
  container made to scroll sideways (the dashboard's chart, the admin's result lists);
* a hostname breaks anywhere but after a dot (core/templatetags/hostnames.py).

A screenshot of each page at each size is saved as
var/artifacts/screens/<user>-<page>[-<n>]-<width>.png for people and CI to look at.
"""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from certificates.models import Certificate
from saleschannels import services as channel_services
from saleschannels.models import SalesChannel
from tests.browser.conftest import log_in
from tests.certmgr.test_isolation import Tenant, tenants, walk_plan  # noqa: F401 - a fixture
from tests.support import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SIZES = {390: 844, 1280: 800}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Long enough to wrap on a phone; no label longer than a phone's line.
LONG_HOSTNAME = "box-office.summer-festival-2027.open-air-theatre.acme-tickets-and-events.example"
IDN_HOSTNAME = "tickets.xn--bcherei-mnchen-gsbi.example"  # tickets.bücherei-münchen.example

# What does not fit: the document's width, then each link, button or field outside the window
# and not inside a container that scrolls sideways.
MISFITS = """() => {
  const width = window.innerWidth;
  const found = [];
  const scrollWidth = document.documentElement.scrollWidth;
  if (scrollWidth > width) found.push(`the document is ${scrollWidth}px wide`);
  const inScroller = (element) => {
    for (let parent = element.parentElement; parent; parent = parent.parentElement) {
      if (["auto", "scroll"].includes(getComputedStyle(parent).overflowX)) return true;
    }
    return false;
  };
  const controls = "a[href], button, input:not([type=hidden]), select, textarea, summary";
  for (const element of document.querySelectorAll(controls)) {
    const box = element.getBoundingClientRect();
    if (box.width === 0 && box.height === 0) continue;  // not shown
    if (getComputedStyle(element).visibility === "hidden") continue;
    if (box.right <= width + 0.5 && box.left >= -0.5) continue;
    if (inScroller(element)) continue;
    const text = (element.textContent || element.name || element.type || "").trim();
    found.push(`<${element.tagName.toLowerCase()}> "${text.slice(0, 40)}" spans `
      + `${Math.round(box.left)}..${Math.round(box.right)}px`);
  }
  return found;
}"""

# Every line break inside a shown hostname, as "<text before>|<text after>": each must come
# right after a dot.
HOSTNAME_BREAKS = """() => {
  const breaks = [];
  for (const element of document.querySelectorAll(".hostname, .dotted")) {
    const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
    let top = null, line = "";
    while (walker.nextNode()) {
      const node = walker.currentNode;
      for (let i = 0; i < node.length; i++) {
        const range = document.createRange();
        range.setStart(node, i);
        range.setEnd(node, i + 1);
        const rect = range.getClientRects()[0];
        if (!rect) continue;
        if (top !== null && rect.top > top + 1) breaks.push(`${line}|${node.data.slice(i)}`);
        if (top === null || rect.top > top + 1) line = "";
        top = rect.top;
        line += node.data[i];
      }
    }
  }
  return breaks;
}"""


@pytest.fixture
def stretched(tenants, alice, make_certificate) -> Tenant:  # noqa: F811 - the fixture
    """Acme's objects from the isolation walk, and some that stretch a page: a certificate
    with long and IDN names, channels on them in states the walk's fixture does not have."""
    acme = tenants["acme"]
    institution = acme.institution
    certificate = make_certificate(
        institution,
        name="Acme summer festival open-air theatre certificate for the box office",
        # The first is the subject's common name: 64 characters at most.
        hostnames=("www.acme-tickets-and-events.example", LONG_HOSTNAME, IDN_HOSTNAME),
        days_left=5,
    )
    for name, hostname, status in [
        ("Acme summer festival open-air theatre", LONG_HOSTNAME, "issuing"),
        ("Stadtbücherei München", IDN_HOSTNAME, "waiting_dns"),
        ("Acme www", "www.acme-tickets-and-events.example", "none"),
    ]:
        channel = channel_services.channel_create(
            institution=institution, name=name, hostname=hostname, actor=alice
        )
        if status != "none":
            SalesChannel.objects.filter(pk=channel.pk).update(
                ssl_mode=SalesChannel.SslMode.MANAGED,
                active_certificate=certificate,
                status=status,
                renewal_next_attempt_at=timezone.now() + timedelta(minutes=5),
            )
        acme.channels.append(channel)
    acme.certificates.append(Certificate.objects.get(pk=certificate.pk))
    return acme


def pages(tenant: Tenant, user) -> list[tuple[str, str]]:
    """(name, path) of every page of the walk that shows `user` an HTML page: every object of
    the back office's pages (a certificate's page differs by kind), the first of the admin's
    (its pages differ by model only)."""
    client = Client()
    client.force_login(user)
    found = []
    for stop in walk_plan(tenant):
        urls = stop.urls()
        if stop.kind is None or stop.route.description.startswith("admin/"):
            urls = urls[:1]  # not the list again, filtered by institution
        for number, url in enumerate(urls):
            response = client.get(url)
            assert response.status_code < 500, url
            if response.status_code != 200:
                continue  # a redirect, a download's 404 for this kind, a POST-only page
            if not response["Content-Type"].startswith("text/html"):
                continue  # a download, /metrics
            name = re.sub(r"[^a-z0-9]+", "-", (stop.route.name or stop.route.description).lower())
            found.append((f"{name.strip('-')}-{number}" if number else name.strip("-"), url))
    return found


@pytest.mark.parametrize("who", ["alice", "sam"])
def test_every_page_fits_a_phone_and_a_laptop(browser_page, stretched, who, request, settings):
    user = request.getfixturevalue(who)
    walk = pages(stretched, user)
    assert len(walk) > (60 if who == "sam" else 25), walk
    screens = settings.VAR_DIR / "artifacts" / "screens"
    screens.mkdir(parents=True, exist_ok=True)
    page = browser_page
    log_in(page, who, PASSWORD, next_path="/")
    problems = []
    for name, url in walk:
        page.set_viewport_size({"width": 1280, "height": 800})
        response = page.goto(url)
        assert response.status == 200, url
        for width, height in SIZES.items():
            page.set_viewport_size({"width": width, "height": height})
            problems += [f"{url} at {width}px: {misfit}" for misfit in page.evaluate(MISFITS)]
            problems += [
                f"{url} at {width}px: a hostname breaks at {where!r}"
                for where in page.evaluate(HOSTNAME_BREAKS)
                if not where.split("|")[0].endswith(".")
            ]
            screenshot = screens / f"{who}-{name}-{width}.png"
            page.screenshot(path=str(screenshot), full_page=True)
            assert screenshot.read_bytes().startswith(PNG_SIGNATURE)
    assert not problems, "\n".join(problems)
