"""onboarding/dns.py: the resolver, the CNAME chain and addresses, and the DNS finding.

Unit tests read real dnspython messages from tests/onboarding/conftest.py's FakeResolver;
the others ask a real DNS server, pebble-challtestsrv, through resolver_make().
"""

from __future__ import annotations

import socket

import dns.message
import dns.rdatatype
import dns.resolver
import pytest

from onboarding.dns import (
    AddressAnswer,
    addresses_lookup,
    edge_check,
    resolver_make,
    txt_lookup,
)
from saleschannels.findings import Check, Reason

EDGE = ["203.0.113.1", "2001:db8:e::1"]
EDGE_CNAME = "edge.certmgr.test"


def _check(answer: AddressAnswer, *, edge=EDGE, edge_cname=EDGE_CNAME):
    return edge_check(answer, edge_addresses=edge, edge_cname=edge_cname)


# resolver_make


def test_resolver_make_reads_every_server_form():
    resolver = resolver_make(
        ["192.0.2.53", "192.0.2.54:5353", "[2001:db8::53]:5300", "2001:0db8::1", "[2001:db8::2]"],
        1.5,
    )
    assert [(server.address, server.port) for server in resolver.nameservers] == [
        ("192.0.2.53", 53),
        ("192.0.2.54", 5353),
        ("2001:db8::53", 5300),
        ("2001:db8::1", 53),
        ("2001:db8::2", 53),
    ]
    assert resolver.lifetime == 1.5
    assert resolver.timeout <= 1.5


@pytest.mark.parametrize(
    "entry",
    [
        "dns.example.test",
        "192.0.2.1:0",
        "192.0.2.1:65536",
        "192.0.2.1:dns",
        "[192.0.2.1]:53",
        "[2001:db8::1",
        "2001:db8::1]:53",
        "",
    ],
)
def test_resolver_make_refuses_an_invalid_server(entry):
    with pytest.raises(ValueError, match="CERTMGR_DNS_RESOLVERS") as raised:
        resolver_make([entry], 2.0)
    assert repr(entry) in str(raised.value)


@pytest.mark.parametrize("timeout", [0, -1, "2"])
def test_resolver_make_refuses_an_invalid_timeout(timeout):
    with pytest.raises(ValueError, match="CERTMGR_DNS_TIMEOUT"):
        resolver_make([], timeout)


def test_resolver_make_without_servers_uses_the_system_configuration(monkeypatch):
    def configured(self, f="/etc/resolv.conf"):
        self.nameservers = ["192.0.2.99"]

    monkeypatch.setattr(dns.resolver.Resolver, "read_resolv_conf", configured)
    resolver = resolver_make([], 3.0)
    assert resolver.nameservers == ["192.0.2.99"]
    assert resolver.lifetime == 3.0


def test_resolver_make_without_resolv_conf_asks_the_local_machine(monkeypatch):
    def missing(self, f="/etc/resolv.conf"):
        raise dns.resolver.NoResolverConfiguration(f"cannot open {f}")

    monkeypatch.setattr(dns.resolver.Resolver, "read_resolv_conf", missing)
    resolver = resolver_make([], 2.0)
    assert resolver.nameservers == ["127.0.0.1", "::1"]


# addresses_lookup, with the fake resolver


def test_lookup_follows_the_chain_and_sorts_addresses(fake_dns):
    fake_dns.add("Shop.Example.test", "CNAME", "A.CDN.test.")
    fake_dns.add("a.cdn.test", "CNAME", "b.cdn.test.")
    fake_dns.add("b.cdn.test", "A", "192.0.2.20", "192.0.2.3", "192.0.2.20")
    fake_dns.add("b.cdn.test", "AAAA", "2001:db8::20", "2001:0db8::3")
    answer = addresses_lookup(fake_dns, "SHOP.example.test.")
    assert answer == AddressAnswer(
        hostname="shop.example.test",
        cnames=("a.cdn.test", "b.cdn.test"),
        addresses=("192.0.2.3", "192.0.2.20", "2001:db8::3", "2001:db8::20"),
    )
    assert fake_dns.asked == [
        ("shop.example.test", "CNAME"),
        ("a.cdn.test", "CNAME"),
        ("b.cdn.test", "CNAME"),
        ("b.cdn.test", "A"),
        ("b.cdn.test", "AAAA"),
    ]


def test_lookup_says_a_cname_loop(fake_dns):
    fake_dns.add("shop.example.test", "CNAME", "a.cdn.test.")
    fake_dns.add("a.cdn.test", "CNAME", "shop.example.test.")
    answer = addresses_lookup(fake_dns, "shop.example.test")
    assert answer.failure == Reason.DNS_CNAME_LOOP
    assert answer.cnames == ("a.cdn.test", "shop.example.test")
    finding = _check(answer)
    assert finding.words == "The CNAME chain of shop.example.test loops or is too long."


def test_lookup_allows_eight_cnames_but_not_nine(fake_dns):
    for hop in range(8):
        fake_dns.add(f"n{hop}.test", "CNAME", f"n{hop + 1}.test.")
    fake_dns.add("n8.test", "A", "192.0.2.8")
    assert addresses_lookup(fake_dns, "n0.test").addresses == ("192.0.2.8",)
    fake_dns.records.clear()
    for hop in range(9):
        fake_dns.add(f"n{hop}.test", "CNAME", f"n{hop + 1}.test.")
    fake_dns.add("n9.test", "A", "192.0.2.9")
    assert addresses_lookup(fake_dns, "n0.test").failure == Reason.DNS_CNAME_LOOP


def test_lookup_nxdomain_names_the_missing_name(fake_dns):
    fake_dns.add("shop.example.test", "CNAME", "gone.cdn.test.")
    answer = addresses_lookup(fake_dns, "shop.example.test")
    assert answer.failure == Reason.DNS_NXDOMAIN
    assert answer.failed_name == "gone.cdn.test"
    finding = _check(answer)
    assert finding.words == "gone.cdn.test does not exist in DNS (NXDOMAIN)."
    assert finding.advice == (
        "Create an A record pointing at 203.0.113.1 and 2001:db8:e::1, or make it a CNAME to "
        "edge.certmgr.test."
    )


def test_lookup_of_a_name_without_addresses(fake_dns):
    fake_dns.add("shop.example.test", "MX", "10 mail.example.test.")
    answer = addresses_lookup(fake_dns, "shop.example.test")
    assert answer.failure == Reason.DNS_NO_ADDRESS
    assert _check(answer).words == "shop.example.test exists in DNS but has no A or AAAA record."


@pytest.mark.parametrize(
    ("how", "reason"), [("servfail", Reason.DNS_SERVFAIL), ("timeout", Reason.DNS_TIMEOUT)]
)
def test_lookup_failures(fake_dns, how, reason):
    fake_dns.add("shop.example.test", "CNAME", "a.cdn.test.")
    fake_dns.fail("a.cdn.test", how)
    answer = addresses_lookup(fake_dns, "shop.example.test")
    assert (answer.failure, answer.failed_name) == (reason, "a.cdn.test")
    finding = _check(answer)
    assert (finding.check, finding.reason, finding.ok) == (Check.DNS, reason, False)
    assert finding.params["name"] == "a.cdn.test"


def test_lookup_keeps_addresses_when_only_aaaa_fails(fake_dns):
    class AaaaBroken(type(fake_dns)):
        def resolve(self, qname, rdtype="A", *args, **kwargs):
            if rdtype == dns.rdatatype.AAAA:
                query = dns.message.make_query(qname, rdtype)
                raise dns.resolver.NoNameservers(request=query, errors=[])
            return super().resolve(qname, rdtype, *args, **kwargs)

    broken = AaaaBroken()
    broken.add("shop.example.test", "A", "203.0.113.1")
    answer = addresses_lookup(broken, "shop.example.test")
    assert answer.addresses == ("203.0.113.1",)
    assert answer.failure is None


# edge_check


def test_edge_compares_addresses_as_addresses():
    answer = AddressAnswer("shop.example.test", addresses=("203.0.113.1", "2001:db8:e::1"))
    finding = _check(answer, edge=["203.0.113.1", "2001:0DB8:000E::0001"])
    assert (finding.reason, finding.ok) == (Reason.DNS_EDGE, True)
    assert finding.words == (
        "shop.example.test points at the platform (203.0.113.1 and 2001:db8:e::1)."
    )


def test_edge_cname_anywhere_in_the_chain_passes():
    answer = AddressAnswer(
        "shop.example.test", cnames=("a.cdn.test", "edge.certmgr.test"), addresses=("192.0.2.7",)
    )
    finding = _check(answer, edge_cname="Edge.Certmgr.test.")
    assert finding.reason == Reason.DNS_EDGE_CNAME
    assert finding.words == "shop.example.test is a CNAME to the platform (edge.certmgr.test)."


def test_elsewhere_lists_only_the_foreign_addresses():
    answer = AddressAnswer("shop.example.test", addresses=("192.0.2.10", "203.0.113.1"))
    finding = _check(answer)
    assert finding.reason == Reason.DNS_ELSEWHERE
    assert finding.params == {
        "hostname": "shop.example.test",
        "found": ["192.0.2.10"],
        "edge": ["203.0.113.1", "2001:db8:e::1"],
        "cname_hint": ", or make it a CNAME to edge.certmgr.test",
    }
    assert finding.words == (
        "shop.example.test points at 192.0.2.10, not at the platform "
        "(203.0.113.1 and 2001:db8:e::1)."
    )
    assert finding.advice == (
        "Change its A/AAAA records to 203.0.113.1 and 2001:db8:e::1, or make it a CNAME to "
        "edge.certmgr.test."
    )


def test_elsewhere_without_edge_cname_has_no_hint():
    finding = _check(AddressAnswer("shop.example.test", addresses=("192.0.2.10",)), edge_cname="")
    assert finding.advice == "Change its A/AAAA records to 203.0.113.1 and 2001:db8:e::1."


def test_elsewhere_with_an_edge_name_only_names_it():
    finding = _check(AddressAnswer("shop.example.test", addresses=("192.0.2.10",)), edge=[])
    assert finding.words == (
        "shop.example.test points at 192.0.2.10, not at the platform (edge.certmgr.test)."
    )


def test_nothing_configured_resolving_is_the_pass():
    answer = AddressAnswer("shop.example.test", addresses=("192.0.2.10",))
    finding = _check(answer, edge=[], edge_cname="")
    assert (finding.reason, finding.ok) == (Reason.DNS_RESOLVES, True)
    assert finding.params == {"hostname": "shop.example.test", "addresses": ["192.0.2.10"]}


def test_an_invalid_edge_address_is_a_configuration_error():
    with pytest.raises(ValueError):
        _check(AddressAnswer("shop.example.test", addresses=("192.0.2.1",)), edge=["edge"])


# Against a real DNS server: pebble-challtestsrv.


def test_real_a_pointing_elsewhere(challtestsrv, real_resolver):
    challtestsrv.a_set("shop.example.test", ["192.0.2.10"])
    finding = _check(addresses_lookup(real_resolver, "shop.example.test"))
    assert finding.reason == Reason.DNS_ELSEWHERE
    assert finding.words == (
        "shop.example.test points at 192.0.2.10, not at the platform "
        "(203.0.113.1 and 2001:db8:e::1)."
    )


def test_real_a_on_the_edge(challtestsrv, real_resolver):
    challtestsrv.a_set("shop.example.test", ["203.0.113.1"])
    answer = addresses_lookup(real_resolver, "Shop.Example.Test")
    assert answer == AddressAnswer("shop.example.test", addresses=("203.0.113.1",))
    assert _check(answer).reason == Reason.DNS_EDGE


def test_real_cname_chain_to_the_edge_name(challtestsrv, real_resolver):
    challtestsrv.cname_set("shop.example.test", "shops.cdn.test")
    challtestsrv.cname_set("shops.cdn.test", EDGE_CNAME)
    challtestsrv.a_set(EDGE_CNAME, ["203.0.113.1"])
    answer = addresses_lookup(real_resolver, "shop.example.test")
    assert answer.cnames == ("shops.cdn.test", "edge.certmgr.test")
    assert answer.addresses == ("203.0.113.1",)
    finding = _check(answer)
    assert finding.reason == Reason.DNS_EDGE_CNAME
    assert finding.words == "shop.example.test is a CNAME to the platform (edge.certmgr.test)."


def test_real_aaaa_mixed(challtestsrv, real_resolver):
    challtestsrv.a_set("shop.example.test", ["203.0.113.1"])
    challtestsrv.aaaa_set("shop.example.test", ["2001:0db8:000e::1", "2001:db8:bad::1"])
    answer = addresses_lookup(real_resolver, "shop.example.test")
    assert answer.addresses == ("203.0.113.1", "2001:db8:e::1", "2001:db8:bad::1")
    finding = _check(answer)
    assert finding.reason == Reason.DNS_ELSEWHERE
    assert finding.params["found"] == ["2001:db8:bad::1"]


def test_real_name_without_address(challtestsrv, real_resolver):
    # challtestsrv never answers NXDOMAIN (see tests/challtestsrv.py): with its default
    # addresses cleared, a name without records is the empty answer of a name without
    # addresses. NXDOMAIN itself is covered with the fake resolver above.
    answer = addresses_lookup(real_resolver, "nothing.example.test")
    assert answer.failure == Reason.DNS_NO_ADDRESS
    assert _check(answer).advice == (
        "Add an A record pointing at 203.0.113.1 and 2001:db8:e::1, or make it a CNAME to "
        "edge.certmgr.test."
    )


def test_real_servfail(challtestsrv, real_resolver):
    challtestsrv.cname_set("shop.example.test", "broken.cdn.test")
    challtestsrv.servfail_set("broken.cdn.test")
    answer = addresses_lookup(real_resolver, "shop.example.test")
    assert (answer.failure, answer.failed_name) == (Reason.DNS_SERVFAIL, "broken.cdn.test")
    assert _check(answer).words == (
        "The DNS servers for broken.cdn.test answered with an error (SERVFAIL)."
    )
    challtestsrv.servfail_clear("broken.cdn.test")
    challtestsrv.a_set("broken.cdn.test", ["203.0.113.1"])
    assert _check(addresses_lookup(real_resolver, "shop.example.test")).ok


def test_real_timeout_from_a_server_that_never_answers():
    # A bound UDP socket that nobody reads: queries reach it and are never answered.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        resolver = resolver_make([f"127.0.0.1:{port}"], 0.3)
        answer = addresses_lookup(resolver, "shop.example.test")
    assert (answer.failure, answer.failed_name) == (Reason.DNS_TIMEOUT, "shop.example.test")
    assert _check(answer).words == "No DNS server answered for shop.example.test in time."


def test_real_txt_lookup(challtestsrv, real_resolver):
    challtestsrv.txt_set("_x.example.test", "one")
    challtestsrv.txt_add("_x.example.test", "two")
    answer = txt_lookup(real_resolver, "_x.example.test")
    assert sorted(answer.values) == ["one", "two"]
    assert answer.failure is None
    assert txt_lookup(real_resolver, "_y.example.test").values == ()
