"""How hostnames are shown (core/hostname_display.py): IDN labels in Unicode, bad input as it is
stored, and the only places a name may wrap."""

import pytest

from core.hostname_display import (
    hostname_is_idn,
    hostname_text,
    hostname_unicode,
    hostname_wrap_points,
)


def test_an_idn_reads_in_unicode():
    assert hostname_unicode("xn--bcher-kva.example") == "bücher.example"
    assert hostname_unicode("shop.xn--mnchen-3ya.xn--tickets--7za.test") == (
        "shop.münchen.tickets-ä.test"
    )
    assert hostname_is_idn("xn--bcher-kva.example")


def test_an_ascii_name_is_unchanged():
    assert hostname_unicode("shop.acme-tickets.test") == "shop.acme-tickets.test"
    assert not hostname_is_idn("shop.acme-tickets.test")


def test_an_upper_case_prefix_is_decoded_too():
    assert hostname_unicode("XN--BCHER-KVA.example") == "bücher.example"


@pytest.mark.parametrize(
    "hostname",
    [
        "xn--.example",  # no Punycode after the prefix
        "xn--a.example",  # decodes to a control character
        "xn--ls8h.example",  # an emoji: disallowed by IDNA 2008
        "xn--zz-zzz.example",  # decodes to a disallowed symbol
        "xn--" + "a" * 80 + ".example",  # longer than a label may be
        "*.example",
        "",
        ".",
        "no dots at all",
        "<script>.example",
    ],
)
def test_bad_input_falls_back_to_the_ascii_form(hostname):
    assert hostname_unicode(hostname) == hostname
    assert hostname_text(hostname) == hostname


def test_only_the_bad_label_stays_ascii():
    assert hostname_unicode("xn--a.xn--bcher-kva.example") == "xn--a.bücher.example"


def test_a_lookalike_is_shown_with_its_ascii_form():
    # Cyrillic letters that read as "apple": the ASCII form beside it tells them apart.
    assert hostname_text("xn--80ak6aa92e.com") == "аррӏе.com (xn--80ak6aa92e.com)"


def test_a_name_wraps_only_after_its_dots():
    assert hostname_wrap_points("shop.acme-tickets.test") == ["shop.", "acme-tickets.", "test"]
    assert hostname_wrap_points("localhost") == ["localhost"]
    assert hostname_wrap_points("example.") == ["example.", ""]
