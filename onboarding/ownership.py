"""Proof of ownership by DNS: the TXT record ``_certmgr-challenge.<hostname>`` holds the
channel's token (README, "Onboarding a hostname").

Pure: no Django (onboarding/services.py passes the resolver, onboarding/resolving.py makes
it). The underscore label keeps the record out of the hostname's own names, as RFC 8552
(https://www.rfc-editor.org/rfc/rfc8552) describes for such attribute leaves; a CNAME there
is followed, so the record can be delegated to another zone.
"""

from __future__ import annotations

from saleschannels.findings import Check, Finding, Reason

from .dns import name_make, name_text, txt_lookup

TXT_LABEL = "_certmgr-challenge"


def txt_name(hostname: str) -> str:
    """Where the token is looked for: ``_certmgr-challenge.<hostname>``."""
    return f"{TXT_LABEL}.{name_text(name_make(hostname))}"


def txt_verify(resolver, hostname: str, token: str) -> Finding:
    """The TXT finding: TXT_FOUND when a value is the token (surrounding whitespace aside).

    TXT_WRONG when the record has values but none is the token, TXT_MISSING when it has none
    (or does not exist); DNS_SERVFAIL / DNS_TIMEOUT when the lookup failed. Params: name,
    token (the channel's own, shown so the tenant can copy it) and hostname.
    """
    name = txt_name(hostname)
    params = {"name": name, "token": token, "hostname": name_text(name_make(hostname))}
    answer = txt_lookup(resolver, name)
    if answer.failure is not None:
        return Finding(Check.TXT, answer.failure, params)
    wanted = token.strip()
    if wanted and any(value.strip() == wanted for value in answer.values):
        return Finding(Check.TXT, Reason.TXT_FOUND, params)
    if answer.values:
        return Finding(Check.TXT, Reason.TXT_WRONG, params)
    return Finding(Check.TXT, Reason.TXT_MISSING, params)
