"""Renewal timing and failure backoff (pure rules)."""

from datetime import UTC, datetime, timedelta

import pytest

from certificates.renewal import failure_backoff, renewal_due_at

START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("lifetime", "due_after"),
    [
        (timedelta(days=90), timedelta(days=60)),
        (timedelta(days=30), timedelta(days=20)),
        (timedelta(days=10), timedelta(days=10) * 2 / 3),
        (timedelta(days=6), timedelta(days=3)),
        (timedelta(hours=1), timedelta(minutes=30)),
    ],
)
def test_renewal_is_due_at_two_thirds_or_half_for_short_lifetimes(lifetime, due_after):
    assert renewal_due_at(not_before=START, not_after=START + lifetime) == START + due_after


def test_ari_suggestion_wins_over_the_lifetime_rule():
    suggested = START + timedelta(days=5)
    due = renewal_due_at(
        not_before=START, not_after=START + timedelta(days=90), suggested=suggested
    )
    assert due == suggested


@pytest.mark.parametrize(
    ("failures", "wait"),
    [
        (1, timedelta(minutes=1)),
        (2, timedelta(minutes=10)),
        (3, timedelta(minutes=100)),
        (4, timedelta(days=1)),
        (12, timedelta(days=1)),
    ],
)
def test_failures_back_off_1_10_100_minutes_then_daily(failures, wait):
    assert failure_backoff(failures) == wait
