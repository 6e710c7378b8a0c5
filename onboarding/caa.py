"""Whether the hostname's CAA records let the platform's CA issue (README, "Onboarding a
hostname"), checked before an order so a refusal is explained before the CA gives it.

Pure: no Django. The rules are RFC 8659 (https://www.rfc-editor.org/rfc/rfc8659) with the
ACME parameters of RFC 8657 (https://www.rfc-editor.org/rfc/rfc8657):

* The Relevant RRset (RFC 8659 section 3): ask CAA for the hostname, then its parent, and so
  on up to the top-level domain; the first non-empty answer is the set. A CNAME at a name is
  followed by the resolver (dnspython takes the chain from the answer), the climb goes on
  from the name itself. No set anywhere: any CA may issue (CAA_NONE). A lookup that fails
  with SERVFAIL or runs out of time stops everything: a CA refuses to issue when it cannot
  tell whether CAA forbids it, so that is never a pass.
* A property with the critical flag (bit 128, section 4.1) and a tag this module does not
  know forbids every CA (CAA_CRITICAL).
* Hostnames here are never wildcards, so only ``issue`` properties decide (section 4.3:
  ``issuewild`` is for wildcard names only). A set without ``issue`` does not restrict
  non-wildcard names; with ``issue`` properties, one of them must name the CA (one of
  ACME_CAA_IDENTITIES) and have its parameters satisfied: ``accounturi`` equal to the
  platform's ACME account URL (RFC 8657 section 3) and ``validationmethods`` listing the
  method the platform validates with (section 4).
* The property values are parsed with section 4.2's grammar, whitespace tolerated where it
  allows it, the issuer domain name compared case-insensitively. A value that does not
  parse names no CA, and a parameter given twice is never satisfied: a check that errs on
  the side of "forbidden" sends the tenant to fix a record a CA might refuse, while the
  other way round an order fails later with a vaguer message.

Values shown in a finding's parameters are CAA property values as DNS gave them, each cut to
VALUE_SHOWN_MAX characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import dns.name
import dns.rdatatype

from saleschannels.findings import Check, Finding, Reason

from .dns import name_make, name_text, query

CRITICAL_FLAG = 128
# The tags this module understands (RFC 8659 section 4): an unknown critical one forbids.
KNOWN_TAGS = frozenset({"issue", "issuewild", "iodef"})
VALUE_SHOWN_MAX = 100
NO_CA = "no CA"
ACCOUNT_UNKNOWN = "the platform's account URL"

# RFC 8659 section 4.2: label = (ALPHA / DIGIT) *( *("-") (ALPHA / DIGIT)).
_LABEL = r"[A-Za-z0-9](?:-*[A-Za-z0-9])*"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
# parameter = tag *WSP "=" *WSP value; value = *(%x21-3A / %x3C-7E).
_PARAMETER = re.compile(rf"(?P<tag>{_LABEL})[ \t]*=[ \t]*(?P<value>[\x21-\x3a\x3c-\x7e]*)")
_WSP = " \t"


@dataclass(frozen=True)
class CaaProperty:
    """One CAA record: its flags, its tag (lowercase) and its value, as DNS gave them."""

    flags: int
    tag: str
    value: str


@dataclass(frozen=True)
class CaaLookup:
    """The Relevant RRset of a hostname: where it was found and its properties.

    `name` is where the set was found, or the name whose lookup failed (then `failure` is
    CAA_SERVFAIL or CAA_TIMEOUT), or the hostname when no name up to the top has CAA.
    """

    name: str
    properties: tuple[CaaProperty, ...] = ()
    failure: Reason | None = None


@dataclass(frozen=True)
class IssueValue:
    """An ``issue``/``issuewild`` value: the CA's domain ("" for none) and its parameters."""

    domain: str
    parameters: tuple[tuple[str, str], ...] = ()

    def parameter(self, tag: str) -> list[str]:
        """Every value given for the parameter `tag` (lowercase)."""
        return [value for key, value in self.parameters if key == tag]


def issue_value_parse(value: str) -> IssueValue | None:
    """The issuer domain name and parameters of an issue value (RFC 8659 section 4.2).

    ``letsencrypt.org; accounturi=https://...; validationmethods=http-01`` gives the domain
    (lowercase) and the (lowercase key, value) pairs in order; ``;`` alone and the empty
    value name no CA. None when the value does not follow the grammar.
    """
    head, _semicolon, rest = value.partition(";")
    domain = head.strip(_WSP)
    if domain and not _DOMAIN.fullmatch(domain):
        return None
    parameters: list[tuple[str, str]] = []
    rest = rest.strip(_WSP)
    if rest:
        for item in rest.split(";"):
            match = _PARAMETER.fullmatch(item.strip(_WSP))
            if match is None:
                return None
            parameters.append((match["tag"].lower(), match["value"]))
    return IssueValue(domain.lower(), tuple(parameters))


def caa_relevant(resolver, hostname: str) -> CaaLookup:
    """Climb from `hostname` towards the root until a name has CAA (RFC 8659 section 3)."""
    name = name_make(hostname)
    while name != dns.name.root:
        rrset, failure = query(resolver, name, dns.rdatatype.CAA)
        if failure == Reason.DNS_TIMEOUT:
            return CaaLookup(name_text(name), (), Reason.CAA_TIMEOUT)
        if failure is not None and failure != Reason.DNS_NXDOMAIN:
            return CaaLookup(name_text(name), (), Reason.CAA_SERVFAIL)
        if rrset:
            properties = tuple(
                CaaProperty(
                    flags=rdata.flags,
                    tag=rdata.tag.decode("ascii", errors="replace").lower(),
                    value=rdata.value.decode("utf-8", errors="replace"),
                )
                for rdata in rrset
            )
            return CaaLookup(name_text(name), properties)
        name = name.parent()
    return CaaLookup(name_text(name_make(hostname)))


def caa_check(
    resolver,
    hostname: str,
    *,
    identities: list[str],
    account_uri: str | None,
    method: str = "http-01",
) -> Finding:
    """The CAA finding for a non-wildcard `hostname` (Check.CAA).

    `identities` are the CA's issuer domain names (ACME_CAA_IDENTITIES), the first one is
    the one advice names; `account_uri` is the platform's ACME account URL, None when it has
    none yet (then an ``accounturi`` parameter cannot be matched and does not permit);
    `method` is the ACME challenge type the platform validates with.
    """
    if hostname.strip().startswith("*"):
        raise ValueError(f"CAA is checked for non-wildcard names only: {hostname!r}")
    lookup = caa_relevant(resolver, hostname)
    hostname = name_text(name_make(hostname))
    if lookup.failure is not None:
        return Finding(Check.CAA, lookup.failure, {"name": lookup.name, "hostname": hostname})
    if not lookup.properties:
        return Finding(Check.CAA, Reason.CAA_NONE, {"hostname": hostname})
    return caa_evaluate(
        lookup,
        hostname=hostname,
        identities=identities,
        account_uri=account_uri,
        method=method,
    )


def caa_evaluate(
    lookup: CaaLookup,
    *,
    hostname: str,
    identities: list[str],
    account_uri: str | None,
    method: str = "http-01",
) -> Finding:
    """The finding for the Relevant RRset `lookup` (non-empty, not failed): see the module."""
    ours = [identity.strip().rstrip(".").lower() for identity in identities]
    ours = [identity for identity in ours if identity]
    if not ours:
        raise ValueError("ACME_CAA_IDENTITIES names no CA: set the CA's CAA issuer domain")
    name, properties = lookup.name, lookup.properties

    for prop in properties:
        if prop.tag not in KNOWN_TAGS and prop.flags & CRITICAL_FLAG:
            return Finding(Check.CAA, Reason.CAA_CRITICAL, {"name": name, "tag": _shown(prop.tag)})

    issue = [prop for prop in properties if prop.tag == "issue"]
    if not issue:
        # Section 4.3: issuewild alone restricts wildcard names only.
        return Finding(
            Check.CAA,
            Reason.CAA_PERMITS,
            {"name": name, "ca": ours[0], "hostname": hostname, "unrestricted": True},
        )

    parsed = [(prop, issue_value_parse(prop.value)) for prop in issue]
    naming_us = [value for _prop, value in parsed if value is not None and value.domain in ours]
    if not naming_us:
        wild = [issue_value_parse(p.value) for p in properties if p.tag == "issuewild"]
        if any(value is not None and value.domain in ours for value in wild):
            return Finding(
                Check.CAA,
                Reason.CAA_WILDCARD_ONLY,
                {"name": name, "ca": ours[0], "hostname": hostname},
            )
        return Finding(
            Check.CAA,
            Reason.CAA_FORBIDS,
            {"name": name, "allowed": _allowed(parsed), "ca": ours[0], "hostname": hostname},
        )

    account_matches = [value for value in naming_us if _account_ok(value, account_uri)]
    for value in account_matches:
        methods = _methods(value)
        if methods is None or method in methods:
            return Finding(
                Check.CAA,
                Reason.CAA_PERMITS,
                {"name": name, "ca": value.domain, "hostname": hostname},
            )
    if account_matches:
        value = account_matches[0]
        return Finding(
            Check.CAA,
            Reason.CAA_METHOD,
            {"name": name, "ca": value.domain, "methods": [_shown(m) for m in _methods(value)]},
        )
    return Finding(
        Check.CAA,
        Reason.CAA_ACCOUNT,
        {"name": name, "ca": naming_us[0].domain, "account_uri": account_uri or ACCOUNT_UNKNOWN},
    )


def _account_ok(value: IssueValue, account_uri: str | None) -> bool:
    """RFC 8657 section 3: without accounturi any account may order; with it, only that one."""
    uris = value.parameter("accounturi")
    if not uris:
        return True
    return len(uris) == 1 and account_uri is not None and uris[0] == account_uri


def _methods(value: IssueValue) -> list[str] | None:
    """RFC 8657 section 4: the methods validationmethods allows; None when it is absent."""
    lists = value.parameter("validationmethods")
    if not lists:
        return None
    if len(lists) > 1:
        return []
    return [method for method in lists[0].split(",") if method]


def _allowed(parsed: list[tuple[CaaProperty, IssueValue | None]]) -> list[str] | str:
    """The CAs the issue properties name (a value that does not parse, as it stands)."""
    allowed: list[str] = []
    for prop, value in parsed:
        shown = _shown(prop.value.strip(_WSP)) if value is None else _shown(value.domain)
        if shown and shown not in allowed:
            allowed.append(shown)
    return allowed or NO_CA


def _shown(text: str) -> str:
    return text[:VALUE_SHOWN_MAX]
