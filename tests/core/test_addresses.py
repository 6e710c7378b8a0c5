"""The one rule for addresses certmgr connects to on a tenant's behalf (core/addresses.py)."""

import ipaddress

import pytest

from core.addresses import address_is_public, addresses_not_public

PUBLIC = [
    "93.184.215.14",
    "8.8.8.8",
    "2606:4700:4700::1111",
    "2a00:1450:4001:80b::200e",
    # IPv6 forms carrying a public IPv4 address reach that address.
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",  # NAT64, RFC 6052
    "2002:808:808::1",  # 6to4, RFC 3056
]

INTERNAL = [
    # IPv4 ranges is_global already refuses
    "127.0.0.1",
    "10.0.0.5",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "192.0.2.1",
    "255.255.255.255",
    "240.0.0.1",
    # multicast, which Python 3.11's is_global calls global
    "224.0.0.1",
    "239.255.255.250",
    # plain IPv6 special ranges
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "2001:db8::1",
    "100::1",
    # called global by Python 3.11's is_global
    "::127.0.0.1",  # IPv4-compatible, RFC 4291 2.5.5.1 (deprecated)
    "::8.8.8.8",  # idem: nothing legitimate uses it
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b:1::808:808",  # local-use NAT64, RFC 8215: not globally reachable
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "2002:a00:5::1",  # 6to4 of 10.0.0.5
    "::ffff:0:7f00:1",  # IPv4-translated, RFC 2765
    "fec0::1",  # site-local, deprecated (RFC 3879)
    "ff0e::1",  # global-scope multicast
    "5f00::1",  # SRv6 SIDs, RFC 9602
    # IPv4-mapped internal addresses
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.5",
    "::ffff:169.254.169.254",
    # Teredo, RFC 4380 (2001::/32 is not globally reachable)
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    # a zone makes an address link-scoped
    "fe80::1%eth0",
    "2a00:1450:4001:80b::200e%1",
]


@pytest.mark.parametrize("address", PUBLIC)
def test_a_public_address_may_be_connected_to(address):
    assert address_is_public(address)
    assert address_is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", INTERNAL)
def test_an_internal_address_is_refused(address):
    assert not address_is_public(address)
    assert not address_is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "text", ["localhost", "0x7f.1", "127.1", "2130706433", "", "::ffff:999.0.0.1", "[::1]"]
)
def test_what_is_not_an_ip_address_is_not_public(text):
    # Resolvers read some of these as 127.0.0.1: the rule applies to what they resolve to.
    assert not address_is_public(text)


def test_the_internal_ones_of_a_list_are_named_once_in_order():
    found = ["93.184.215.14", "127.0.0.1", "::127.0.0.1", "127.0.0.1", "10.0.0.5"]
    assert addresses_not_public(found) == ["10.0.0.5", "127.0.0.1", "::127.0.0.1"]
    assert addresses_not_public(ipaddress.ip_address(a) for a in PUBLIC) == []
