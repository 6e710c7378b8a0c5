"""What a check of a hostname found, as a typed reason with its parameters, and the plain
words and advice shown for it (README, "Onboarding a hostname").

Every page, e-mail, webhook and API answer says a finding through `Finding.words` and
`Finding.advice`; the texts live here only. Parameters are values certmgr chose or looked up
in DNS (names, addresses, ports, HTTP status codes, CAA property values), never text a remote
server sent (a body, a header, an exception message): those go to the log.

No Django here: the checks that produce findings are plain functions too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from core.hostname_display import hostname_text


class Check(StrEnum):
    """What was checked."""

    TXT = "txt"  # ownership: TXT record _certmgr-challenge.<hostname>
    HTTP_TOKEN = "http_token"  # ownership: http://<hostname>/.well-known/certmgr-challenge/<token>
    DNS = "dns"  # pre-flight: the hostname points at the edge
    CAA = "caa"  # pre-flight: CAA permits the CA (RFC 8659)
    HTTP = "http"  # pre-flight: HTTP-01 reachability, fetched the way the CA does
    ACME = "acme"  # the CA's answer to an order
    PROBE = "probe"  # the live probe: what the edge serves for the hostname (probe.py)


class Reason(StrEnum):
    # Ownership.
    TXT_FOUND = "txt_found"
    TXT_MISSING = "txt_missing"
    TXT_WRONG = "txt_wrong"
    HTTP_TOKEN_FOUND = "http_token_found"
    HTTP_TOKEN_WRONG = "http_token_wrong"
    STAFF_APPROVED = "staff_approved"
    VERIFIED_BEFORE_UPGRADE = "verified_before_upgrade"
    # DNS.
    DNS_EDGE = "dns_edge"
    DNS_EDGE_CNAME = "dns_edge_cname"
    DNS_RESOLVES = "dns_resolves"
    DNS_ELSEWHERE = "dns_elsewhere"
    DNS_NXDOMAIN = "dns_nxdomain"
    DNS_NO_ADDRESS = "dns_no_address"
    DNS_SERVFAIL = "dns_servfail"
    DNS_TIMEOUT = "dns_timeout"
    DNS_CNAME_LOOP = "dns_cname_loop"
    # CAA.
    CAA_NONE = "caa_none"
    CAA_PERMITS = "caa_permits"
    CAA_FORBIDS = "caa_forbids"
    CAA_ACCOUNT = "caa_account"
    CAA_METHOD = "caa_method"
    CAA_WILDCARD_ONLY = "caa_wildcard_only"
    CAA_CRITICAL = "caa_critical"
    CAA_SERVFAIL = "caa_servfail"
    CAA_TIMEOUT = "caa_timeout"
    # HTTP (the pre-flight HTTP-01 self-check and the HTTP ownership token alike).
    HTTP_OK = "http_ok"
    HTTP_REFUSED = "http_refused"
    HTTP_TIMEOUT = "http_timeout"
    HTTP_NETWORK = "http_network"
    HTTP_STATUS = "http_status"
    HTTP_WRONG_CONTENT = "http_wrong_content"
    HTTP_REDIRECT_BAD = "http_redirect_bad"
    HTTP_REDIRECT_LOOP = "http_redirect_loop"
    HTTP_INTERNAL_ADDRESS = "http_internal_address"
    HTTP_NOT_HTTP = "http_not_http"
    # The CA (acme_client/problems.py maps RFC 8555 problem types here).
    ACME_RATE_LIMITED = "acme_rate_limited"
    ACME_CAA = "acme_caa"
    ACME_DNS = "acme_dns"
    ACME_CONNECTION = "acme_connection"
    ACME_UNAUTHORIZED = "acme_unauthorized"
    ACME_SERVER_INTERNAL = "acme_server_internal"
    ACME_REJECTED_IDENTIFIER = "acme_rejected_identifier"
    ACME_EXTERNAL_ACCOUNT = "acme_external_account"
    ACME_INVALID_PROFILE = "acme_invalid_profile"
    ACME_UNREACHABLE = "acme_unreachable"
    ACME_TIMEOUT = "acme_timeout"
    ACME_BAD_CERTIFICATE = "acme_bad_certificate"
    ACME_OTHER = "acme_other"
    # The CA's rate limits, kept by the platform (acme_client/budgets.py): the order waits.
    CA_BUDGET_ORDERS = "ca_budget_orders"
    CA_BUDGET_DOMAIN = "ca_budget_domain"
    CA_BUDGET_NAME = "ca_budget_name"
    CA_BUDGET_VALIDATIONS = "ca_budget_validations"
    # The live probe (saleschannels/probe.py) could not check what is served.
    PROBE_DNS = "probe_dns"
    INTERNAL_ERROR = "internal_error"


# What was found. Placeholders are Finding.params; a list is said as "a, b and c".
WORDS: dict[Reason, str] = {
    Reason.TXT_FOUND: "The TXT record {name} holds this channel's token.",
    Reason.TXT_MISSING: "There is no TXT record {name}.",
    Reason.TXT_WRONG: "The TXT record {name} exists but does not hold this channel's token.",
    Reason.HTTP_TOKEN_FOUND: "{url} answered this channel's token.",
    Reason.HTTP_TOKEN_WRONG: "{url} did not answer this channel's token.",
    Reason.STAFF_APPROVED: "The platform's staff approved this hostname.",
    Reason.VERIFIED_BEFORE_UPGRADE: (
        "The hostname already had a managed certificate or served an Apple Pay file before "
        "proof of ownership was required."
    ),
    Reason.DNS_EDGE: "{hostname} points at the platform ({addresses}).",
    Reason.DNS_EDGE_CNAME: "{hostname} is a CNAME to the platform ({edge_cname}).",
    Reason.DNS_RESOLVES: (
        "{hostname} resolves to {addresses} (no platform address is configured to compare with)."
    ),
    Reason.DNS_ELSEWHERE: "{hostname} points at {found}, not at the platform ({edge}).",
    Reason.DNS_NXDOMAIN: "{name} does not exist in DNS (NXDOMAIN).",
    Reason.DNS_NO_ADDRESS: "{hostname} exists in DNS but has no A or AAAA record.",
    Reason.DNS_SERVFAIL: "The DNS servers for {name} answered with an error (SERVFAIL).",
    Reason.DNS_TIMEOUT: "No DNS server answered for {name} in time.",
    Reason.DNS_CNAME_LOOP: "The CNAME chain of {hostname} loops or is too long.",
    Reason.CAA_NONE: "No CAA record restricts which CA may issue for {hostname}.",
    Reason.CAA_PERMITS: "The CAA records at {name} allow {ca}.",
    Reason.CAA_FORBIDS: "The CAA records at {name} allow only {allowed}, not {ca}.",
    Reason.CAA_ACCOUNT: (
        "The CAA records at {name} allow {ca} only for another ACME account, not the platform's."
    ),
    Reason.CAA_METHOD: (
        "The CAA records at {name} allow {ca} only with {methods}, not with http-01, the "
        "platform's validation method."
    ),
    Reason.CAA_WILDCARD_ONLY: (
        "The CAA records at {name} allow {ca} only for wildcard names (issuewild), not for "
        "{hostname}."
    ),
    Reason.CAA_CRITICAL: (
        "The CAA records at {name} carry a critical property no CA may ignore ({tag}): no CA "
        "may issue."
    ),
    Reason.CAA_SERVFAIL: (
        "The CAA lookup for {name} failed (SERVFAIL); a CA refuses to issue until it succeeds."
    ),
    Reason.CAA_TIMEOUT: "No DNS server answered the CAA lookup for {name} in time.",
    Reason.HTTP_OK: "{url} answered the test token, as the CA will fetch it.",
    Reason.HTTP_REFUSED: "Nothing accepts connections on port {port} of {address}.",
    Reason.HTTP_TIMEOUT: "{address} did not answer on port {port} within {seconds} s.",
    Reason.HTTP_NETWORK: "{address} could not be reached on port {port} (network error).",
    Reason.HTTP_STATUS: "{url} answered HTTP {status} instead of the test token.",
    Reason.HTTP_WRONG_CONTENT: "{url} answered, but with other content than the test token.",
    Reason.HTTP_REDIRECT_BAD: (
        "{url} redirects to an address a CA does not follow (only http or https, on ports 80 "
        "and 443)."
    ),
    Reason.HTTP_REDIRECT_LOOP: "{url} redirects too many times.",
    Reason.HTTP_INTERNAL_ADDRESS: (
        "{hostname} resolves to an internal address ({address}): not fetched."
    ),
    Reason.HTTP_NOT_HTTP: "Port {port} of {address} does not answer HTTP.",
    Reason.ACME_RATE_LIMITED: "The CA ({ca}) refused the order: a rate limit was reached.",
    Reason.ACME_CAA: "The CA ({ca}) refused: the hostname's CAA records do not allow it.",
    Reason.ACME_DNS: "The CA ({ca}) could not look the hostname up in DNS.",
    Reason.ACME_CONNECTION: "The CA ({ca}) could not connect to the hostname to validate it.",
    Reason.ACME_UNAUTHORIZED: (
        "The CA ({ca}) fetched the validation token and got a wrong answer."
    ),
    Reason.ACME_SERVER_INTERNAL: "The CA ({ca}) had an internal error.",
    Reason.ACME_REJECTED_IDENTIFIER: "The CA ({ca}) does not issue for this hostname.",
    Reason.ACME_EXTERNAL_ACCOUNT: (
        "The CA ({ca}) requires an external account binding, and none is configured."
    ),
    Reason.ACME_INVALID_PROFILE: (
        "The CA ({ca}) does not offer the certificate profile the order asked for."
    ),
    Reason.ACME_UNREACHABLE: "The CA ({ca}) could not be reached.",
    Reason.ACME_TIMEOUT: "The CA ({ca}) did not finish the order in time.",
    Reason.ACME_BAD_CERTIFICATE: (
        "The certificate the CA ({ca}) issued did not pass the platform's checks."
    ),
    Reason.ACME_OTHER: "The CA ({ca}) refused the order ({code}).",
    Reason.CA_BUDGET_ORDERS: (
        "Queued: the platform's budget of new orders at {ca} frees at {frees_at}."
    ),
    Reason.CA_BUDGET_DOMAIN: "Queued: the platform's budget for {domain} frees at {frees_at}.",
    Reason.CA_BUDGET_NAME: "Queued: the platform's budget for {hostname} frees at {frees_at}.",
    Reason.CA_BUDGET_VALIDATIONS: (
        "Queued: the CA's checks of {hostname} failed too often lately; the platform's budget "
        "for it frees at {frees_at}."
    ),
    Reason.PROBE_DNS: (
        "{hostname} does not resolve in DNS, so the live probe could not check what it serves."
    ),
    Reason.INTERNAL_ERROR: "The platform hit an unexpected error; its staff can see the details.",
}

# What to do about it; absent for findings that need nothing (or nothing of the tenant).
ADVICE: dict[Reason, str] = {
    Reason.TXT_MISSING: 'Create a TXT record {name} with the value "{token}".',
    Reason.TXT_WRONG: 'Set the TXT record {name} to the value "{token}".',
    Reason.HTTP_TOKEN_WRONG: (
        "Point {hostname} at the platform first, or prove ownership with the TXT record."
    ),
    Reason.DNS_ELSEWHERE: "Change its A/AAAA records to {edge}{cname_hint}.",
    Reason.DNS_NXDOMAIN: "Create an A record pointing at {edge}{cname_hint}.",
    Reason.DNS_NO_ADDRESS: "Add an A record pointing at {edge}{cname_hint}.",
    Reason.DNS_SERVFAIL: (
        "Check the domain's DNS servers and its DNSSEC signatures. Checked again automatically."
    ),
    Reason.DNS_TIMEOUT: "Check that the domain's DNS servers answer. Checked again automatically.",
    Reason.DNS_CNAME_LOOP: "Fix the CNAME records so that the chain ends at an address.",
    Reason.CAA_FORBIDS: 'Add a CAA record at {name}: 0 issue "{ca}".',
    Reason.CAA_ACCOUNT: (
        'Add a CAA record at {name}: 0 issue "{ca}; accounturi={account_uri}", or drop '
        "accounturi from the existing one."
    ),
    Reason.CAA_METHOD: "Add http-01 to validationmethods in the CAA record at {name}.",
    Reason.CAA_WILDCARD_ONLY: 'Add a CAA record at {name}: 0 issue "{ca}".',
    Reason.CAA_CRITICAL: "Remove the critical flag from that CAA record, or the record itself.",
    Reason.CAA_SERVFAIL: (
        "Check the domain's DNS servers and DNSSEC: they must answer CAA queries, even with "
        "no record. Checked again automatically."
    ),
    Reason.CAA_TIMEOUT: "Check that the domain's DNS servers answer CAA queries.",
    Reason.HTTP_REFUSED: (
        "Open port {port} to the platform's edge: the CA validates over plain HTTP first."
    ),
    Reason.HTTP_TIMEOUT: "Check firewalls between the internet and port {port} of {address}.",
    Reason.HTTP_NETWORK: "Check firewalls between the internet and port {port} of {address}.",
    Reason.HTTP_STATUS: (
        "Make sure port {port} of {hostname} reaches the platform's edge and passes "
        "/.well-known/acme-challenge/ through."
    ),
    Reason.HTTP_WRONG_CONTENT: (
        "Make sure port {port} of {hostname} reaches the platform's edge, not another server."
    ),
    Reason.HTTP_REDIRECT_BAD: "Redirect only to http:// or https:// on the standard ports.",
    Reason.HTTP_REDIRECT_LOOP: "Remove the redirect loop for /.well-known/acme-challenge/.",
    Reason.HTTP_INTERNAL_ADDRESS: "Point {hostname} at the platform's public addresses.",
    Reason.HTTP_NOT_HTTP: "Make port {port} of {hostname} reach the platform's edge.",
    Reason.ACME_RATE_LIMITED: "Nothing to do: the platform tries again when the CA allows.",
    Reason.ACME_CAA: 'Add a CAA record for the hostname: 0 issue "{ca_identity}".',
    Reason.ACME_DNS: "Check the hostname's DNS records; the platform tries again.",
    Reason.ACME_CONNECTION: "Check that port 80 of the hostname reaches the platform's edge.",
    Reason.ACME_UNAUTHORIZED: (
        "Check that port 80 of the hostname reaches the platform's edge and no other server."
    ),
    Reason.ACME_SERVER_INTERNAL: "Nothing to do: the platform tries again.",
    Reason.ACME_EXTERNAL_ACCOUNT: "Staff: set ACME_EAB_KID and ACME_EAB_HMAC_KEY.",
    Reason.ACME_INVALID_PROFILE: "Choose one of the CA's profiles on SSL Management.",
    Reason.ACME_UNREACHABLE: "Nothing to do: the platform tries again.",
    Reason.ACME_TIMEOUT: "Nothing to do: the platform tries again.",
    Reason.CA_BUDGET_ORDERS: (
        "Nothing to do: {ca} limits how many certificates the platform may order at a time, "
        "and the platform orders this one as soon as it may."
    ),
    Reason.CA_BUDGET_DOMAIN: (
        "Nothing to do: {ca} limits how many certificates it issues for {domain} each week, "
        "and the platform orders this one as soon as it may."
    ),
    Reason.CA_BUDGET_NAME: (
        "Nothing to do: {ca} limits how often one name gets a new certificate, and the "
        "platform orders this one as soon as it may."
    ),
    Reason.CA_BUDGET_VALIDATIONS: (
        "Check that port 80 of {hostname} reaches the platform's edge and no other server; "
        "the platform tries again then."
    ),
    Reason.PROBE_DNS: (
        "Give {hostname} an A/AAAA record pointing at the platform's edge, or a CNAME to it; "
        "the probe checks again on its next run. Staff: on a test platform whose hostnames "
        "resolve nowhere, set CERTMGR_PROBE_ADDRESS to the edge's address."
    ),
}

# Findings that are a pass.
PASSES = frozenset(
    {
        Reason.TXT_FOUND,
        Reason.HTTP_TOKEN_FOUND,
        Reason.STAFF_APPROVED,
        Reason.VERIFIED_BEFORE_UPGRADE,
        Reason.DNS_EDGE,
        Reason.DNS_EDGE_CNAME,
        Reason.DNS_RESOLVES,
        Reason.CAA_NONE,
        Reason.CAA_PERMITS,
        Reason.HTTP_OK,
    }
)


class _Missing(dict):
    def __missing__(self, key: str) -> str:
        return "?"


def _said(value) -> str:
    if isinstance(value, list | tuple):
        items = [str(item) for item in value]
        if len(items) <= 1:
            return "".join(items) or "nothing"
        return f"{', '.join(items[:-1])} and {items[-1]}"
    return str(value)


# Parameters that are DNS names: an IDN is said in Unicode with its ASCII form beside it.
_NAME_PARAMS = frozenset({"hostname", "name"})


def words_format(template: str, params: dict) -> str:
    said = {
        key: _said(
            hostname_text(value) if key in _NAME_PARAMS and isinstance(value, str) else value
        )
        for key, value in params.items()
    }
    return template.format_map(_Missing(said))


@dataclass(frozen=True)
class Finding:
    """One check's outcome: stored as JSON on the channel (`as_dict` / `from_dict`)."""

    check: Check
    reason: Reason
    params: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.reason in PASSES

    @property
    def words(self) -> str:
        return words_format(WORDS[self.reason], self.params)

    @property
    def advice(self) -> str:
        template = ADVICE.get(self.reason)
        return words_format(template, self.params) if template else ""

    def as_dict(self) -> dict:
        return {"check": self.check.value, "reason": self.reason.value, "params": self.params}

    @classmethod
    def from_dict(cls, data: dict) -> Finding:
        try:
            reason = Reason(data.get("reason", ""))
        except ValueError:
            reason = Reason.INTERNAL_ERROR
        try:
            check = Check(data.get("check", ""))
        except ValueError:
            check = Check.ACME
        return cls(check=check, reason=reason, params=dict(data.get("params") or {}))
