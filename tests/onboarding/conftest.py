"""Fixtures for the onboarding checks: a real DNS server (pebble-challtestsrv) and a fake
resolver that answers with real dnspython messages built from a small zone table."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import dns.rrset
import pytest

from onboarding.dns import resolver_make
from tests.challtestsrv import ChallTestSrv, challtestsrv_run

# Generous: the server is local, and a slow CI machine must not turn a test into a timeout.
DNS_TIMEOUT = 5.0


@pytest.fixture
def challtestsrv(tmp_path: Path) -> Iterator[ChallTestSrv]:
    """pebble-challtestsrv alone; names without records have no address."""
    with challtestsrv_run(tmp_path / "challtestsrv") as server:
        yield server


@pytest.fixture
def real_resolver(challtestsrv: ChallTestSrv) -> dns.resolver.Resolver:
    """onboarding.dns's resolver, asking only the challtestsrv."""
    return resolver_make([challtestsrv.dns_address], DNS_TIMEOUT)


def _name(text: str) -> dns.name.Name:
    return dns.name.from_text(text.lower())


class FakeResolver:
    """Answers `resolve()` as a recursive resolver would, from `add()`ed records.

    The answers are real dnspython messages and Answer objects (CNAMEs chased for other
    types, NXDOMAIN for a name that has no record and was not `exists()`-marked), so the
    code under test reads them exactly as it reads the network's. `fail(name, "servfail")`
    or `fail(name, "timeout")` makes every query reaching that name raise what dnspython's
    Resolver raises then. `asked` lists the (name, type) queries in order.
    """

    def __init__(self) -> None:
        self.records: dict[tuple[dns.name.Name, dns.rdatatype.RdataType], list[str]] = {}
        self.names: set[dns.name.Name] = set()
        self.failures: dict[dns.name.Name, str] = {}
        self.asked: list[tuple[str, str]] = []

    def add(self, name: str, rdtype: str, *values: str) -> FakeResolver:
        """Records in zone-file syntax, e.g. add("shop.test", "CAA", '0 issue "ca.test"')."""
        key = (_name(name), dns.rdatatype.from_text(rdtype))
        self.records.setdefault(key, []).extend(values)
        self.names.add(key[0])
        return self

    def exists(self, name: str) -> FakeResolver:
        """`name` exists without records (NODATA, not NXDOMAIN)."""
        self.names.add(_name(name))
        return self

    def fail(self, name: str, how: str) -> FakeResolver:
        assert how in {"servfail", "timeout"}
        self.failures[_name(name)] = how
        return self

    def resolve(self, qname, rdtype=dns.rdatatype.A, rdclass=None, raise_on_no_answer=True, **_):
        qname = _name(str(qname)) if not isinstance(qname, dns.name.Name) else qname
        rdtype = dns.rdatatype.RdataType.make(rdtype)
        self.asked.append((qname.to_text(omit_final_dot=True), rdtype.name))
        query = dns.message.make_query(qname, rdtype)
        response = dns.message.make_response(query)
        name = qname
        for _hop in range(16):
            how = self.failures.get(name)
            if how == "servfail":
                raise dns.resolver.NoNameservers(request=query, errors=[])
            if how == "timeout":
                raise dns.resolver.LifetimeTimeout(timeout=1.0, errors=[])
            values = self.records.get((name, rdtype))
            if values:
                self._answer_add(response, name, rdtype, values)
                break
            cname = self.records.get((name, dns.rdatatype.CNAME))
            if cname and rdtype != dns.rdatatype.CNAME:
                self._answer_add(response, name, dns.rdatatype.CNAME, cname)
                name = _name(cname[0])
                continue
            if name not in self.names:
                response.set_rcode(dns.rcode.NXDOMAIN)
                raise dns.resolver.NXDOMAIN(qnames=[qname], responses={qname: response})
            break
        answer = dns.resolver.Answer(qname, rdtype, dns.rdataclass.IN, response)
        if answer.rrset is None and raise_on_no_answer:
            raise dns.resolver.NoAnswer(response=response)
        return answer

    @staticmethod
    def _answer_add(response: dns.message.Message, name, rdtype, values: list[str]) -> None:
        # Through find_rrset(create=True): the message's index must know the RRset.
        rrset = response.find_rrset(response.answer, name, dns.rdataclass.IN, rdtype, create=True)
        for rdata in dns.rrset.from_text_list(name, 300, dns.rdataclass.IN, rdtype, values):
            rrset.add(rdata, 300)


@pytest.fixture
def fake_dns() -> FakeResolver:
    return FakeResolver()
