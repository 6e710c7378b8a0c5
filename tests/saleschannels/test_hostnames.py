"""Hostname normalisation and certificate coverage (pure rules)."""

import pytest

from saleschannels.coverage import certificate_covers_hostname
from saleschannels.hostnames import HostnameError, hostname_normalize


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("Shop.Example.COM", "shop.example.com"),
        ("shop.example.com.", "shop.example.com"),
        ("  tickets.example.org ", "tickets.example.org"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
    ],
)
def test_it_stores_hostnames_lower_case_in_idna_form(value, stored):
    assert hostname_normalize(value) == stored


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("", "Enter"),
        ("https://shop.example.com/", "without scheme"),
        ("shop.example.com:8443", "without scheme, port"),
        ("*.example.com", "wildcards"),
        ("localhost", "fully qualified"),
        ("192.168.1.10", "not an IP address"),
        ("-shop.example.com", "not a valid hostname"),
        ("shop..example.com", "not a valid hostname"),
        ("shop_1.example.com", "not a valid hostname"),
        ("a" * 64 + ".example.com", "not a valid hostname"),
        (("a" * 60 + ".") * 5 + "com", "longer than 253"),
    ],
)
def test_it_refuses_what_is_not_a_dns_name(value, words):
    with pytest.raises(HostnameError, match=words):
        hostname_normalize(value)


@pytest.mark.parametrize(
    ("domains", "hostname", "covered"),
    [
        (["shop.example.com"], "shop.example.com", True),
        (["SHOP.example.com"], "shop.example.com", True),
        (["other.example.com", "shop.example.com"], "shop.example.com", True),
        (["*.example.com"], "shop.example.com", True),
        (["*.example.com"], "example.com", False),
        (["*.example.com"], "a.shop.example.com", False),
        (["example.com"], "shop.example.com", False),
        (["*.shop.example.com"], "shop.example.com", False),
        ([], "shop.example.com", False),
    ],
)
def test_a_certificate_covers_its_names_and_one_wildcard_label(domains, hostname, covered):
    assert certificate_covers_hostname(domains, hostname) is covered
