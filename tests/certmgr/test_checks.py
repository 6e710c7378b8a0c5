"""certmgr's system checks."""

from certmgr.checks import visibility_timeout_check


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
