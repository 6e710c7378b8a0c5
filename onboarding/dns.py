"""Where a hostname points, asked of DNS with dnspython (README, "Onboarding a hostname").

Pure: no Django. The settings (CERTMGR_DNS_RESOLVERS, CERTMGR_DNS_TIMEOUT,
CERTMGR_EDGE_ADDRESSES, CERTMGR_EDGE_CNAME) arrive as arguments; onboarding/resolving.py
reads them.

* ``resolver_make()`` builds the resolver every onboarding check asks: the configured
  servers, or the system's (/etc/resolv.conf).
* ``addresses_lookup()`` follows the hostname's CNAME chain itself, one name at a time, so the
  chain is known (a CNAME to the platform's edge name is a pass even where that name's
  addresses change), then asks A and AAAA of the last name.
* ``edge_check()`` turns that answer into the DNS finding (saleschannels/findings.py).
* ``txt_lookup()`` reads a TXT RRset (the ownership token, onboarding/ownership.py).

DNS answers are interpreted as RFC 1034 (https://www.rfc-editor.org/rfc/rfc1034) says: a name
with a CNAME has no other data, NXDOMAIN says the name does not exist, an empty NOERROR answer
says it exists without data of that type (RFC 2308, https://www.rfc-editor.org/rfc/rfc2308).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver

from saleschannels.findings import Check, Finding, Reason

# CNAMEs followed before the chain counts as too long (RFC 1034 section 3.6.2 wants resolvers
# to guard against loops; 8 is what common resolvers allow and more than any real setup needs).
CNAME_HOPS_MAX = 8
DNS_PORT = 53
# dnspython's per-server timeout; the whole query never outlasts the resolver's lifetime.
SERVER_TIMEOUT = 2.0

_BRACKETED = re.compile(r"\[(?P<address>[^\]]+)\](?::(?P<port>\d+))?")


@dataclass(frozen=True)
class AddressAnswer:
    """Where `hostname` leads: its CNAME chain, and the addresses at the end of it.

    `cnames` are the CNAME targets in the order followed (lowercase, no trailing dot);
    `addresses` the A addresses, then the AAAA ones, each sorted and without duplicates.
    On a failure, `failed_name` is the name whose query failed (the hostname or a target).
    """

    hostname: str
    cnames: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()
    failure: Reason | None = None
    failed_name: str = ""


@dataclass(frozen=True)
class TxtAnswer:
    """The TXT values at `name` (each record's strings joined), or the failure that hid them."""

    name: str
    values: tuple[str, ...] = ()
    failure: Reason | None = None


def resolver_make(servers: list[str], timeout: float) -> dns.resolver.Resolver:
    """A resolver asking `servers` ("addr", "addr:port", "[v6addr]:port"), or the system's.

    With no servers, /etc/resolv.conf is read; a missing or empty one falls back to the name
    server on the local machine (127.0.0.1 and ::1), as resolv.conf(5) describes. `timeout`
    (seconds) bounds each query (dnspython's lifetime). An invalid entry or timeout raises
    ValueError saying which: the settings are checked where they are used.
    """
    if not isinstance(timeout, int | float) or timeout <= 0:
        raise ValueError(f"CERTMGR_DNS_TIMEOUT must be a positive number of seconds: {timeout!r}")
    if servers:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [
            dns.nameserver.Do53Nameserver(address, port)
            for address, port in (_server_parse(entry) for entry in servers)
        ]
    else:
        try:
            resolver = dns.resolver.Resolver(configure=True)
        except dns.resolver.NoResolverConfiguration:
            resolver = dns.resolver.Resolver(configure=False)
            resolver.nameservers = ["127.0.0.1", "::1"]
    resolver.lifetime = float(timeout)
    resolver.timeout = min(SERVER_TIMEOUT, float(timeout))
    # Never a search list: the hostnames checked are fully qualified.
    resolver.use_search_by_default = False
    return resolver


def _server_parse(entry: str) -> tuple[str, int]:
    """(address, port) of one CERTMGR_DNS_RESOLVERS entry; ValueError when invalid."""
    text = entry.strip() if isinstance(entry, str) else ""
    problem = (
        f"invalid DNS server {entry!r} in CERTMGR_DNS_RESOLVERS: use an IP address, "
        '"address:port" or "[IPv6 address]:port"'
    )
    port_text: str | None = None
    bracketed = _BRACKETED.fullmatch(text)
    if bracketed:
        address, port_text = bracketed["address"], bracketed["port"]
        if not _is_ip(address) or ipaddress.ip_address(address).version != 6:
            raise ValueError(problem)
    elif text.count(":") == 1:
        address, port_text = text.split(":")
    else:
        address = text
    if not _is_ip(address):
        raise ValueError(problem)
    port = DNS_PORT
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(problem)
        port = int(port_text)
    return str(ipaddress.ip_address(address)), port


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def name_make(hostname: str) -> dns.name.Name:
    """The absolute, lowercase DNS name of `hostname`; ValueError when it is not one."""
    try:
        return dns.name.from_text(hostname.strip().lower())
    except (dns.exception.DNSException, UnicodeError) as error:
        raise ValueError(f"not a DNS name: {hostname!r}") from error


def name_text(name: dns.name.Name) -> str:
    """A name as certmgr says it: lowercase, without the trailing dot."""
    return name.to_text(omit_final_dot=True).lower()


def query(resolver, name: dns.name.Name, rdtype: dns.rdatatype.RdataType):
    """(rrset or None, failure) of one query; NXDOMAIN is a failure, an empty answer is not.

    SERVFAIL (dnspython's NoNameservers: every server failed or refused) and any other
    DNS error are DNS_SERVFAIL; running out of time is DNS_TIMEOUT. A CNAME chain in the
    answer is followed by dnspython, as RFC 1034 section 3.6.2 says.
    """
    try:
        answer = resolver.resolve(name, rdtype, raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN:
        return None, Reason.DNS_NXDOMAIN
    except dns.exception.Timeout:
        return None, Reason.DNS_TIMEOUT
    except dns.exception.DNSException:
        return None, Reason.DNS_SERVFAIL
    return answer.rrset, None


def addresses_lookup(resolver, hostname: str) -> AddressAnswer:
    """Follow the CNAME chain of `hostname` (at most CNAME_HOPS_MAX), then ask A and AAAA.

    Each name of the chain is asked for its CNAME first; the last name (the one without) is
    asked for A and AAAA. When one of those two fails but the other has addresses, the
    addresses stand, as a CA connecting to the name would use them. Each query has the
    resolver's lifetime. A `hostname` that is no DNS name raises ValueError.
    """
    name = name_make(hostname)
    hostname = name_text(name)
    seen = {name}
    cnames: list[str] = []
    while True:
        rrset, failure = query(resolver, name, dns.rdatatype.CNAME)
        if failure is not None:
            return AddressAnswer(hostname, tuple(cnames), (), failure, name_text(name))
        target = _cname_target(rrset, name)
        if target is None:
            break
        cnames.append(name_text(target))
        if target in seen or len(cnames) > CNAME_HOPS_MAX:
            return AddressAnswer(
                hostname, tuple(cnames), (), Reason.DNS_CNAME_LOOP, name_text(target)
            )
        seen.add(target)
        name = target

    found: list[str] = []
    failures: list[Reason] = []
    for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
        rrset, failure = query(resolver, name, rdtype)
        if failure is not None:
            failures.append(failure)
            continue
        family = {ipaddress.ip_address(rdata.address) for rdata in rrset or ()}
        found.extend(str(address) for address in sorted(family))
    if found:
        return AddressAnswer(hostname, tuple(cnames), tuple(found))
    # NXDOMAIN here means the name vanished between the queries; say it as it is.
    failure = failures[0] if failures else Reason.DNS_NO_ADDRESS
    return AddressAnswer(hostname, tuple(cnames), (), failure, name_text(name))


def _cname_target(rrset, name: dns.name.Name) -> dns.name.Name | None:
    """The CNAME target of `name` in an answer, lowercase; None when it has no CNAME."""
    if rrset is None or rrset.rdtype != dns.rdatatype.CNAME or rrset.name != name:
        return None
    for rdata in rrset:
        return name_make(rdata.target.to_text())
    return None


def edge_check(answer: AddressAnswer, *, edge_addresses: list[str], edge_cname: str) -> Finding:
    """The DNS finding: does the hostname point at the platform's edge?

    A pass when the CNAME chain reaches `edge_cname` (whatever the addresses behind it), or
    when every address is one of `edge_addresses` (compared as IP addresses, so
    2001:db8::1 and 2001:0db8::1 are the same). With neither configured, resolving at all
    is the pass (DNS_RESOLVES). An invalid edge address raises ValueError.

    The advice templates say ``{edge}{cname_hint}``: the edge addresses, and ", or make it
    a CNAME to <edge_cname>" when an edge name is configured. With an edge name only, the
    edge name itself stands in `edge` (and the hint is empty), so no sentence says "nothing".
    """
    edge = [ipaddress.ip_address(str(address).strip()) for address in edge_addresses]
    edge_name = edge_cname.strip().rstrip(".").lower() if edge_cname else ""
    if edge:
        edge_said: list[str] | str = [str(address) for address in edge]
        cname_hint = f", or make it a CNAME to {edge_name}" if edge_name else ""
    elif edge_name:
        edge_said, cname_hint = [edge_name], ""
    else:
        edge_said, cname_hint = "the platform's address", ""

    if edge_name and edge_name in answer.cnames:
        return Finding(
            Check.DNS,
            Reason.DNS_EDGE_CNAME,
            {"hostname": answer.hostname, "edge_cname": edge_name},
        )
    if answer.failure is not None:
        return Finding(
            Check.DNS,
            answer.failure,
            {
                "hostname": answer.hostname,
                "name": answer.failed_name or answer.hostname,
                "edge": edge_said,
                "cname_hint": cname_hint,
            },
        )
    addresses = list(answer.addresses)
    if not edge and not edge_name:
        return Finding(
            Check.DNS, Reason.DNS_RESOLVES, {"hostname": answer.hostname, "addresses": addresses}
        )
    elsewhere = [address for address in addresses if ipaddress.ip_address(address) not in edge]
    if not elsewhere:
        return Finding(
            Check.DNS, Reason.DNS_EDGE, {"hostname": answer.hostname, "addresses": addresses}
        )
    return Finding(
        Check.DNS,
        Reason.DNS_ELSEWHERE,
        {
            "hostname": answer.hostname,
            "found": elsewhere,
            "edge": edge_said,
            "cname_hint": cname_hint,
        },
    )


def txt_lookup(resolver, name: str) -> TxtAnswer:
    """The TXT values at `name` (RFC 1035 section 3.3.14, https://www.rfc-editor.org/rfc/rfc1035).

    A record of several strings is one value, its strings joined without separator (as
    RFC 7208 section 3.3 does for SPF). Bytes that are not UTF-8 are replaced. NXDOMAIN and an
    empty answer are no values, not a failure; SERVFAIL and timeouts are failures.
    """
    qname = name_make(name)
    rrset, failure = query(resolver, qname, dns.rdatatype.TXT)
    if failure == Reason.DNS_NXDOMAIN:
        failure = None
    values = tuple(
        b"".join(rdata.strings).decode("utf-8", errors="replace") for rdata in rrset or ()
    )
    return TxtAnswer(name_text(qname), values, failure)
