"""onboarding/caa.py: RFC 8659 CAA with RFC 8657's accounturi and validationmethods.

The rules are unit-tested on property sets (caa_evaluate) and through the fake resolver; the
climb and every outcome pebble-challtestsrv can serve are then asked of that real DNS server.
It serves CAA flags 0 only, so the critical flag is covered by the unit tests alone.
"""

from __future__ import annotations

import pytest

from onboarding.caa import (
    CaaLookup,
    CaaProperty,
    IssueValue,
    caa_check,
    caa_evaluate,
    caa_relevant,
    issue_value_parse,
)
from saleschannels.findings import Check, Reason

CA = "letsencrypt.org"
ACCOUNT = "https://acme-v02.api.letsencrypt.org/acme/acct/1234"
OTHER_ACCOUNT = "https://acme-v02.api.letsencrypt.org/acme/acct/9999"
HOST = "shop.example.test"


def _evaluate(*properties, identities=(CA,), account_uri=ACCOUNT, method="http-01"):
    props = tuple(
        CaaProperty(flags=p[0], tag=p[1], value=p[2])
        if len(p) == 3
        else CaaProperty(flags=0, tag=p[0], value=p[1])
        for p in properties
    )
    return caa_evaluate(
        CaaLookup("example.test", props),
        hostname=HOST,
        identities=list(identities),
        account_uri=account_uri,
        method=method,
    )


# issue_value_parse (RFC 8659 section 4.2)


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("letsencrypt.org", IssueValue("letsencrypt.org")),
        ("  LetsEncrypt.ORG  ", IssueValue("letsencrypt.org")),
        (";", IssueValue("")),
        ("", IssueValue("")),
        ("  ;  ", IssueValue("")),
        ("letsencrypt.org;", IssueValue("letsencrypt.org")),
        (
            "letsencrypt.org; accounturi=https://a.test/acct/1 ;validationmethods = http-01,dns-01",
            IssueValue(
                "letsencrypt.org",
                (("accounturi", "https://a.test/acct/1"), ("validationmethods", "http-01,dns-01")),
            ),
        ),
        (
            "ca.test; ValidationMethods=dns-01",
            IssueValue("ca.test", (("validationmethods", "dns-01"),)),
        ),
        ("ca.test; key=", IssueValue("ca.test", (("key", ""),))),
    ],
)
def test_issue_value_parse(value, parsed):
    assert issue_value_parse(value) == parsed


@pytest.mark.parametrize(
    "value",
    [
        "letsencrypt.org.",
        "lets encrypt.org",
        "-ca.test",
        "ca.test; accounturi",
        "ca.test; a=b;",
        "ca.test; a=b c",
        "ca.test;; a=b",
        "ca_test",
    ],
)
def test_issue_value_parse_refuses_what_the_grammar_does_not_allow(value):
    assert issue_value_parse(value) is None


# caa_evaluate


def test_issue_naming_the_ca_permits():
    finding = _evaluate(("issue", "otherca.test"), ("issue", "LetsEncrypt.org"))
    assert (finding.check, finding.reason, finding.ok) == (Check.CAA, Reason.CAA_PERMITS, True)
    assert finding.words == "The CAA records at example.test allow letsencrypt.org."


def test_any_identity_counts():
    finding = _evaluate(("issue", "pki.goog"), identities=(CA, "pki.goog"))
    assert finding.reason == Reason.CAA_PERMITS
    assert finding.params["ca"] == "pki.goog"


def test_issue_for_others_forbids():
    finding = _evaluate(("issue", "otherca.test"), ("issue", "third.test; x=y"), ("iodef", "x"))
    assert finding.reason == Reason.CAA_FORBIDS
    assert finding.params == {
        "name": "example.test",
        "allowed": ["otherca.test", "third.test"],
        "ca": CA,
        "hostname": HOST,
    }
    assert finding.words == (
        "The CAA records at example.test allow only otherca.test and third.test, not "
        "letsencrypt.org."
    )
    assert finding.advice == 'Add a CAA record at example.test: 0 issue "letsencrypt.org".'


def test_issue_semicolon_forbids_every_ca():
    finding = _evaluate(("issue", ";"))
    assert finding.params["allowed"] == "no CA"
    assert finding.words == (
        "The CAA records at example.test allow only no CA, not letsencrypt.org."
    )


def test_a_malformed_value_names_no_ca_and_is_shown_shortened():
    long_value = "letsencrypt.org; accounturi" + "x" * 200
    finding = _evaluate(("issue", long_value))
    assert finding.reason == Reason.CAA_FORBIDS
    assert finding.params["allowed"] == [long_value[:100]]


def test_issuewild_alone_does_not_restrict_a_plain_name():
    finding = _evaluate(("issuewild", ";"), ("iodef", "mailto:x@example.test"))
    assert (finding.reason, finding.ok) == (Reason.CAA_PERMITS, True)
    assert finding.params["unrestricted"] is True


def test_issuewild_naming_the_ca_while_issue_forbids():
    finding = _evaluate(("issue", ";"), ("issuewild", CA))
    assert finding.reason == Reason.CAA_WILDCARD_ONLY
    assert finding.words == (
        "The CAA records at example.test allow letsencrypt.org only for wildcard names "
        "(issuewild), not for shop.example.test."
    )


@pytest.mark.parametrize("flags", [128, 129, 255])
def test_an_unknown_critical_property_forbids(flags):
    finding = _evaluate(("issue", CA), (flags, "tbs", "unknown"))
    assert finding.reason == Reason.CAA_CRITICAL
    assert finding.params == {"name": "example.test", "tag": "tbs"}
    assert finding.words == (
        "The CAA records at example.test carry a critical property no CA may ignore (tbs): "
        "no CA may issue."
    )


def test_unknown_properties_without_the_flag_and_known_critical_ones_are_fine():
    assert _evaluate(("issue", CA), (0, "tbs", "x"), (128, "issue", CA)).reason == (
        Reason.CAA_PERMITS
    )


def test_accounturi_of_the_platform_permits():
    assert _evaluate(("issue", f"{CA}; accounturi={ACCOUNT}")).reason == Reason.CAA_PERMITS


def test_accounturi_of_another_account():
    finding = _evaluate(("issue", f"{CA}; accounturi={OTHER_ACCOUNT}"))
    assert finding.reason == Reason.CAA_ACCOUNT
    assert finding.params == {"name": "example.test", "ca": CA, "account_uri": ACCOUNT}
    assert finding.advice == (
        f'Add a CAA record at example.test: 0 issue "{CA}; accounturi={ACCOUNT}", or drop '
        "accounturi from the existing one."
    )


def test_accounturi_without_a_platform_account_cannot_match():
    finding = _evaluate(("issue", f"{CA}; accounturi={ACCOUNT}"), account_uri=None)
    assert finding.reason == Reason.CAA_ACCOUNT
    assert finding.params["account_uri"] == "the platform's account URL"


def test_a_second_property_for_the_platform_permits():
    finding = _evaluate(
        ("issue", f"{CA}; accounturi={OTHER_ACCOUNT}"), ("issue", f"{CA}; accounturi={ACCOUNT}")
    )
    assert finding.reason == Reason.CAA_PERMITS


def test_accounturi_given_twice_is_never_satisfied():
    value = f"{CA}; accounturi={ACCOUNT}; accounturi={ACCOUNT}"
    assert _evaluate(("issue", value)).reason == Reason.CAA_ACCOUNT


def test_validationmethods_without_http01():
    finding = _evaluate(("issue", f"{CA}; validationmethods=dns-01,tls-alpn-01"))
    assert finding.reason == Reason.CAA_METHOD
    assert finding.params == {
        "name": "example.test",
        "ca": CA,
        "methods": ["dns-01", "tls-alpn-01"],
    }
    assert finding.words == (
        "The CAA records at example.test allow letsencrypt.org only with dns-01 and "
        "tls-alpn-01, not with http-01, the platform's validation method."
    )


def test_validationmethods_with_http01_and_the_account():
    value = f"{CA}; accounturi={ACCOUNT}; validationmethods=dns-01,http-01"
    assert _evaluate(("issue", value)).reason == Reason.CAA_PERMITS
    assert _evaluate(("issue", value), method="tls-alpn-01").reason == Reason.CAA_METHOD


def test_the_account_is_said_before_the_method():
    value = f"{CA}; accounturi={OTHER_ACCOUNT}; validationmethods=dns-01"
    assert _evaluate(("issue", value)).reason == Reason.CAA_ACCOUNT


def test_no_identity_configured_is_an_error():
    with pytest.raises(ValueError, match="ACME_CAA_IDENTITIES"):
        _evaluate(("issue", CA), identities=(" ",))


# caa_relevant / caa_check with the fake resolver


def test_the_climb_goes_past_missing_names(fake_dns):
    fake_dns.add("example.test", "CAA", '0 issue "otherca.test"')
    lookup = caa_relevant(fake_dns, "a.b.shop.example.test")
    assert lookup.name == "example.test"
    assert lookup.properties == (CaaProperty(0, "issue", "otherca.test"),)
    assert [name for name, _type in fake_dns.asked] == [
        "a.b.shop.example.test",
        "b.shop.example.test",
        "shop.example.test",
        "example.test",
    ]


def test_no_caa_up_to_the_top(fake_dns):
    fake_dns.exists(HOST)
    finding = caa_check(fake_dns, HOST, identities=[CA], account_uri=ACCOUNT)
    assert (finding.reason, finding.ok) == (Reason.CAA_NONE, True)
    assert [name for name, _type in fake_dns.asked] == [HOST, "example.test", "test"]
    assert finding.words == "No CAA record restricts which CA may issue for shop.example.test."


def test_a_cname_at_the_name_is_followed(fake_dns):
    fake_dns.add(HOST, "CNAME", "shops.cdn.test.")
    fake_dns.add("shops.cdn.test", "CAA", '128 Issue "letsencrypt.org"')
    fake_dns.add("example.test", "CAA", '0 issue ";"')
    finding = caa_check(fake_dns, HOST, identities=[CA], account_uri=ACCOUNT)
    assert finding.reason == Reason.CAA_PERMITS
    assert finding.params["name"] == HOST


@pytest.mark.parametrize(
    ("how", "reason"), [("servfail", Reason.CAA_SERVFAIL), ("timeout", Reason.CAA_TIMEOUT)]
)
def test_a_failed_lookup_is_never_a_pass(fake_dns, how, reason):
    fake_dns.fail("example.test", how)
    finding = caa_check(fake_dns, HOST, identities=[CA], account_uri=ACCOUNT)
    assert (finding.reason, finding.ok) == (reason, False)
    assert finding.params["name"] == "example.test"


def test_wildcards_are_not_checked(fake_dns):
    with pytest.raises(ValueError):
        caa_check(fake_dns, "*.example.test", identities=[CA], account_uri=ACCOUNT)


# Against a real DNS server: pebble-challtestsrv.


def _real(resolver, hostname=HOST, *, account_uri=ACCOUNT):
    return caa_check(resolver, hostname, identities=[CA], account_uri=account_uri)


def test_real_no_caa(challtestsrv, real_resolver):
    assert _real(real_resolver).reason == Reason.CAA_NONE


def test_real_caa_forbidding_the_ca_on_the_name(challtestsrv, real_resolver):
    challtestsrv.caa_set(HOST, [("issue", "otherca.test")])
    finding = _real(real_resolver)
    assert finding.reason == Reason.CAA_FORBIDS
    assert finding.words == (
        "The CAA records at shop.example.test allow only otherca.test, not letsencrypt.org."
    )


def test_real_caa_forbidding_the_ca_on_a_parent(challtestsrv, real_resolver):
    challtestsrv.caa_set("example.test", [("issue", "otherca.test"), ("iodef", "mailto:a@b.test")])
    finding = _real(real_resolver)
    assert finding.reason == Reason.CAA_FORBIDS
    assert finding.params["name"] == "example.test"
    # A set at the name itself is the relevant one: the parent's no longer counts.
    challtestsrv.caa_set(HOST, [("issue", CA)])
    assert _real(real_resolver).reason == Reason.CAA_PERMITS


def test_real_caa_for_another_account(challtestsrv, real_resolver):
    challtestsrv.caa_set(HOST, [("issue", f"{CA}; accounturi={OTHER_ACCOUNT}")])
    finding = _real(real_resolver)
    assert finding.reason == Reason.CAA_ACCOUNT
    assert finding.words == (
        "The CAA records at shop.example.test allow letsencrypt.org only for another ACME "
        "account, not the platform's."
    )


def test_real_caa_for_the_platforms_account(challtestsrv, real_resolver):
    challtestsrv.caa_set("example.test", [("issue", f"{CA} ; accounturi={ACCOUNT}")])
    finding = _real(real_resolver)
    assert (finding.reason, finding.params["name"]) == (Reason.CAA_PERMITS, "example.test")


def test_real_validationmethods_without_http01(challtestsrv, real_resolver):
    challtestsrv.caa_set(HOST, [("issue", f"{CA}; validationmethods=dns-01")])
    finding = _real(real_resolver)
    assert finding.reason == Reason.CAA_METHOD
    assert (
        finding.advice == "Add http-01 to validationmethods in the CAA record at shop.example.test."
    )


def test_real_issuewild_only_permits_a_plain_name(challtestsrv, real_resolver):
    challtestsrv.caa_set(HOST, [("issuewild", "otherca.test")])
    assert _real(real_resolver).reason == Reason.CAA_PERMITS


def test_real_issue_none_with_issuewild_for_the_ca(challtestsrv, real_resolver):
    challtestsrv.caa_set("example.test", [("issue", ";"), ("issuewild", CA)])
    finding = _real(real_resolver)
    assert finding.reason == Reason.CAA_WILDCARD_ONLY
    assert finding.advice == 'Add a CAA record at example.test: 0 issue "letsencrypt.org".'


def test_real_caa_servfail(challtestsrv, real_resolver):
    challtestsrv.caa_set("test", [("issue", CA)])
    challtestsrv.servfail_set("example.test")
    finding = _real(real_resolver)
    assert (finding.reason, finding.ok) == (Reason.CAA_SERVFAIL, False)
    assert finding.words == (
        "The CAA lookup for example.test failed (SERVFAIL); a CA refuses to issue until it "
        "succeeds."
    )
    challtestsrv.servfail_clear("example.test")
    assert _real(real_resolver).reason == Reason.CAA_PERMITS


def test_real_cname_at_the_name(challtestsrv, real_resolver):
    # challtestsrv answers a CAA query at a CNAME with the target's CAA (one level).
    challtestsrv.cname_set(HOST, "shops.cdn.test")
    challtestsrv.caa_set("shops.cdn.test", [("issue", "otherca.test")])
    finding = _real(real_resolver)
    assert (finding.reason, finding.params["name"]) == (Reason.CAA_FORBIDS, HOST)


def test_challtestsrv_cannot_serve_caa_flags(challtestsrv):
    with pytest.raises(ValueError, match="flags"):
        challtestsrv.caa_set(HOST, [(128, "tbs", "x")])
