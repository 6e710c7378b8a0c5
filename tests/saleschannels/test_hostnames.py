"""Hostname normalisation and certificate coverage (pure rules)."""

import pytest

from saleschannels.coverage import certificate_covers_hostname
from saleschannels.hostnames import (
    MAX_LENGTH,
    HostnameError,
    hostname_normalize,
    hostname_reserved,
)


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
        (("a" * 60 + ".") * 5 + "com", "at most 251 characters"),
    ],
)
def test_it_refuses_what_is_not_a_dns_name(value, words):
    with pytest.raises(HostnameError, match=words):
        hostname_normalize(value)


# Every spelling the C library's resolver reads as an address (inet_aton, inet_pton).
@pytest.mark.parametrize(
    "value",
    [
        "127.0.0.1",
        "127.1",
        "0x7f.0x1",
        "0X7F.0X1",
        "127.0.0.0x1",
        "169.254.169.0xfe",
        "2130706433",
        "0177.0.0.1",
        "017700000001",
        "0x7f000001",
        "10.0.0.1.",
        "１２７。０。０。１",  # full-width digits and ideographic full stops, mapped by IDNA
        "shop.example.1",
        "shop.example.0x1",
        "::1",
        "[::1]",
        "[::1]:443",
        "::ffff:127.0.0.1",
        "[64:ff9b::7f00:1]",
        "fe80::1%eth0",
    ],
)
def test_it_refuses_any_spelling_a_resolver_reads_as_an_ip_address(value):
    with pytest.raises(HostnameError, match="^Enter a hostname, not an IP address.$"):
        hostname_normalize(value)


@pytest.mark.parametrize(
    "value", ["shop.localhost", "a.b.localhost", "SHOP.LOCALHOST.", "localhost.localhost"]
)
def test_it_refuses_names_under_localhost(value):
    with pytest.raises(HostnameError, match="point at the machine itself"):
        hostname_normalize(value)


@pytest.mark.parametrize(
    "value",
    [
        "shop.acme.test",  # the demo's and the tests' names stay allowed
        "127.0.0.1.nip.io",  # a DNS name (what it resolves to is the probe's concern)
        "0x7f.example.com",
        "shop.0xa.cafe",
        "localhost.example.com",
        "shop.localhost.example",
        "1.example",
    ],
)
def test_it_keeps_dns_names_that_merely_contain_numbers_or_localhost(value):
    assert hostname_normalize(value) == value


# 3 labels of 63, one of 54 and "test", with their dots: 251 characters.
LONGEST = ".".join(["a" * 63] * 3 + ["b" * 54, "test"])


def test_the_longest_hostname_keeps_its_edge_file_names_within_255_bytes():
    assert len(LONGEST) == MAX_LENGTH == 251
    assert hostname_normalize(LONGEST) == LONGEST
    assert len(f"{LONGEST}.key".encode()) == 255


@pytest.mark.parametrize("length", [252, 253])  # valid DNS names, too long for a file name
def test_it_refuses_a_hostname_whose_edge_file_name_would_be_too_long(length):
    value = LONGEST.replace("b" * 54, "b" * (54 + length - MAX_LENGTH))
    assert len(value) == length
    with pytest.raises(HostnameError, match="at most 251 characters"):
        hostname_normalize(value)


@pytest.mark.parametrize(
    ("hostname", "reserved", "matched"),
    [
        ("certmgr.example.com", ["certmgr.example.com"], "certmgr.example.com"),
        ("x.certmgr.example.com", ["localhost", "certmgr.example.com"], "certmgr.example.com"),
        ("a.b.platform.test", [".platform.test"], ".platform.test"),
        ("platform.test", [" Platform.Test. "], "Platform.Test."),
        ("xn--bcher-kva.example", ["bücher.example"], "bücher.example"),
        ("shop.example.com", ["certmgr.example.com"], None),
        ("notcertmgr.example.com", ["certmgr.example.com"], None),
        ("example.com", ["certmgr.example.com"], None),  # a parent is not reserved
        ("shop.example.com", ["*", "127.0.0.1", "[::1]", ""], None),
    ],
)
def test_reserved_domains_include_their_subdomains(hostname, reserved, matched):
    assert hostname_reserved(hostname, reserved) == matched


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
