"""onboarding/ownership.py: the TXT record _certmgr-challenge.<hostname> proves ownership."""

from __future__ import annotations

import pytest

from onboarding.ownership import txt_name, txt_verify
from saleschannels.findings import Check, Reason

HOST = "shop.example.test"
NAME = "_certmgr-challenge.shop.example.test"
TOKEN = "certmgr-verify=3q2-7wTz1lK9"


def test_the_name_is_under_the_hostname():
    assert txt_name("Shop.Example.test.") == NAME


def test_found_among_other_values(fake_dns):
    fake_dns.add(NAME, "TXT", '"v=spf1 -all"', f'"  {TOKEN} "')
    finding = txt_verify(fake_dns, "Shop.Example.test", TOKEN)
    assert (finding.check, finding.reason, finding.ok) == (Check.TXT, Reason.TXT_FOUND, True)
    assert finding.params == {"name": NAME, "token": TOKEN, "hostname": HOST}
    assert finding.words == f"The TXT record {NAME} holds this channel's token."


def test_a_value_split_in_strings_is_joined(fake_dns):
    fake_dns.add(NAME, "TXT", f'"{TOKEN[:10]}" "{TOKEN[10:]}"')
    assert txt_verify(fake_dns, HOST, TOKEN).reason == Reason.TXT_FOUND


def test_a_cname_to_another_zone_is_followed(fake_dns):
    fake_dns.add(NAME, "CNAME", "shop.verify.dns-provider.test.")
    fake_dns.add("shop.verify.dns-provider.test", "TXT", f'"{TOKEN}"')
    assert txt_verify(fake_dns, HOST, TOKEN).reason == Reason.TXT_FOUND


def test_only_the_exact_token_counts(fake_dns):
    fake_dns.add(NAME, "TXT", f'"{TOKEN}x"', f'"{TOKEN.upper()}"')
    finding = txt_verify(fake_dns, HOST, TOKEN)
    assert (finding.reason, finding.ok) == (Reason.TXT_WRONG, False)
    assert finding.advice == f'Set the TXT record {NAME} to the value "{TOKEN}".'


@pytest.mark.parametrize("exists", [False, True])
def test_missing_whether_or_not_the_name_exists(fake_dns, exists):
    if exists:
        fake_dns.exists(NAME)
    finding = txt_verify(fake_dns, HOST, TOKEN)
    assert finding.reason == Reason.TXT_MISSING
    assert finding.words == f"There is no TXT record {NAME}."
    assert finding.advice == f'Create a TXT record {NAME} with the value "{TOKEN}".'


@pytest.mark.parametrize(
    ("how", "reason"), [("servfail", Reason.DNS_SERVFAIL), ("timeout", Reason.DNS_TIMEOUT)]
)
def test_a_failed_lookup(fake_dns, how, reason):
    fake_dns.fail(NAME, how)
    finding = txt_verify(fake_dns, HOST, TOKEN)
    assert (finding.check, finding.reason, finding.ok) == (Check.TXT, reason, False)
    assert finding.params["name"] == NAME


def test_an_empty_token_never_matches(fake_dns):
    fake_dns.add(NAME, "TXT", '""')
    assert txt_verify(fake_dns, HOST, "").reason == Reason.TXT_WRONG


# Against a real DNS server: pebble-challtestsrv.


def test_real_found_wrong_and_removed(challtestsrv, real_resolver):
    challtestsrv.txt_set(NAME, TOKEN)
    assert txt_verify(real_resolver, HOST, TOKEN).reason == Reason.TXT_FOUND

    challtestsrv.txt_set(NAME, "certmgr-verify=someone-else")
    finding = txt_verify(real_resolver, HOST, TOKEN)
    assert finding.reason == Reason.TXT_WRONG
    assert finding.words == f"The TXT record {NAME} exists but does not hold this channel's token."

    challtestsrv.txt_add(NAME, TOKEN)
    assert txt_verify(real_resolver, HOST, TOKEN).reason == Reason.TXT_FOUND

    challtestsrv.txt_clear(NAME)
    finding = txt_verify(real_resolver, HOST, TOKEN)
    assert finding.reason == Reason.TXT_MISSING
    assert finding.words == f"There is no TXT record {NAME}."


def test_real_servfail(challtestsrv, real_resolver):
    challtestsrv.txt_set(NAME, TOKEN)
    challtestsrv.servfail_set(NAME)
    finding = txt_verify(real_resolver, HOST, TOKEN)
    assert finding.reason == Reason.DNS_SERVFAIL
    assert finding.words == f"The DNS servers for {NAME} answered with an error (SERVFAIL)."
