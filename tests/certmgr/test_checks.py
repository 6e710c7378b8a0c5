"""certmgr's system checks."""

from certmgr.checks import onboarding_settings_check, visibility_timeout_check


def test_a_visibility_timeout_shorter_than_an_issuance_is_warned_about(settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/0"
    settings.ACME_ORDER_TIMEOUT = 120.0
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 60}
    (warning,) = visibility_timeout_check(None)
    assert warning.id == "certmgr.W001" and "60 s" in warning.msg
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
    assert visibility_timeout_check(None) == []


def test_other_brokers_have_no_visibility_timeout_to_check(settings):
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 1}
    assert visibility_timeout_check(None) == []


def test_edge_addresses_and_dns_servers_that_cannot_be_used_are_errors(settings):
    settings.CERTMGR_EDGE_ADDRESSES = ["198.51.100.1", "edge.example"]
    settings.CERTMGR_DNS_RESOLVERS = ["127.0.0.1:99999"]
    errors = onboarding_settings_check(None)
    assert [error.id for error in errors] == ["certmgr.E001", "certmgr.E002"]
    assert "'edge.example', which is not an IP address" in errors[0].msg
    assert "CERTMGR_DNS_RESOLVERS" in errors[1].msg

    settings.CERTMGR_EDGE_ADDRESSES = ["198.51.100.1", "2001:db8::1"]
    settings.CERTMGR_DNS_RESOLVERS = ["127.0.0.1:5353", "[::1]:53"]
    assert onboarding_settings_check(None) == []
