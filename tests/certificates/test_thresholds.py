"""Expiry thresholds (pure): which warnings a certificate gets, and when."""

from datetime import UTC, datetime, timedelta

from certificates.thresholds import (
    Threshold,
    certificate_thresholds,
    threshold_latest_crossed,
    thresholds_due,
)

NOT_AFTER = datetime(2027, 6, 1, 12, 0, tzinfo=UTC)


def thresholds_for(lifetime_days: float, **kwargs):
    return certificate_thresholds(
        not_before=NOT_AFTER - timedelta(days=lifetime_days), not_after=NOT_AFTER, **kwargs
    )


def days_before_expiry(threshold) -> float:
    return (NOT_AFTER - threshold.crossed_at) / timedelta(days=1)


def test_a_25_month_certificate_gets_every_day_threshold():
    thresholds = thresholds_for(25 * 30.5)
    assert [t.name for t in thresholds] == ["30d", "14d", "7d", "3d", "1d", "0d"]
    assert [days_before_expiry(t) for t in thresholds] == [30, 14, 7, 3, 1, 0]


def test_a_90_day_certificate_gets_the_day_thresholds():
    assert [t.name for t in thresholds_for(90)] == ["30d", "14d", "7d", "3d", "1d", "0d"]


def test_a_45_day_certificate_is_warned_at_half_and_a_quarter_of_its_lifetime():
    thresholds = thresholds_for(45)
    assert [t.name for t in thresholds] == ["half", "quarter", "0d"]
    assert [days_before_expiry(t) for t in thresholds] == [22.5, 11.25, 0]


def test_a_6_day_certificate_is_warned_3_days_and_36_hours_before():
    thresholds = thresholds_for(6)
    assert [t.name for t in thresholds] == ["half", "quarter", "0d"]
    assert [days_before_expiry(t) for t in thresholds] == [3, 1.5, 0]


def test_short_lived_means_under_the_configured_lifetime():
    assert [t.name for t in thresholds_for(60)][0] == "30d"
    assert [t.name for t in thresholds_for(59.9)][0] == "half"
    assert [t.name for t in thresholds_for(59.9, short_lived_days=30)][0] == "30d"


def test_an_unknown_start_gets_the_day_thresholds():
    thresholds = certificate_thresholds(not_before=None, not_after=NOT_AFTER)
    assert [t.name for t in thresholds] == ["30d", "14d", "7d", "3d", "1d", "0d"]


def test_the_days_are_configurable():
    thresholds = thresholds_for(365, days=[7, 60, 0])
    assert [t.name for t in thresholds] == ["60d", "7d", "0d"]


def test_thresholds_up_to_a_planned_renewal_are_dropped():
    # A managed 90-day certificate renewed at 2/3 of its life (30 days left): the 30d warning
    # would only say "renewal is due now"; from 14d on it means the renewal is late.
    thresholds = thresholds_for(90, renews_at=NOT_AFTER - timedelta(days=30))
    assert [t.name for t in thresholds] == ["14d", "7d", "3d", "1d", "0d"]
    thresholds = thresholds_for(6, renews_at=NOT_AFTER - timedelta(days=3))
    assert [t.name for t in thresholds] == ["quarter", "0d"]


def test_only_the_newest_threshold_crossed_counts():
    thresholds = thresholds_for(365)
    assert threshold_latest_crossed(thresholds, NOT_AFTER - timedelta(days=31)) is None
    five_days_left = NOT_AFTER - timedelta(days=5)
    assert threshold_latest_crossed(thresholds, five_days_left).name == "7d"
    exactly_at = NOT_AFTER - timedelta(days=14)
    assert threshold_latest_crossed(thresholds, exactly_at).name == "14d"
    assert threshold_latest_crossed(thresholds, NOT_AFTER + timedelta(days=9)).name == "0d"


def test_what_is_stored_is_the_newest_crossed_now_and_the_thresholds_ahead():
    thresholds = thresholds_for(365)
    five_days_left = NOT_AFTER - timedelta(days=5)
    assert thresholds_due(thresholds, five_days_left) == [
        Threshold("7d", five_days_left),
        Threshold("3d", NOT_AFTER - timedelta(days=3)),
        Threshold("1d", NOT_AFTER - timedelta(days=1)),
        Threshold("0d", NOT_AFTER),
    ]
    assert thresholds_due(thresholds, NOT_AFTER - timedelta(days=40)) == thresholds
    assert thresholds_due(thresholds, NOT_AFTER + timedelta(days=1)) == [
        Threshold("0d", NOT_AFTER + timedelta(days=1))
    ]
