"""Renewal timing and failure backoff (pure rules)."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from certificates.renewal import (
    failure_backoff,
    renewal_due_at,
    renewal_latest,
    renewal_window,
)

START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("lifetime", "window_start", "window_end"),
    [
        (timedelta(days=90), timedelta(days=57), timedelta(days=60)),
        (timedelta(days=30), timedelta(days=19), timedelta(days=20)),
        (timedelta(days=6), timedelta(days=2), timedelta(days=3)),
        (timedelta(hours=1), timedelta(minutes=20), timedelta(minutes=30)),
        (timedelta(seconds=20), timedelta(seconds=20) / 3, timedelta(seconds=10)),
    ],
)
def test_the_window_ends_at_two_thirds_or_half_for_short_lifetimes(
    lifetime, window_start, window_end
):
    start, end = renewal_window(not_before=START, not_after=START + lifetime)
    assert abs(start - (START + window_start)) < timedelta(microseconds=10)
    assert abs(end - (START + window_end)) < timedelta(microseconds=10)
    assert renewal_latest(not_before=START, not_after=START + lifetime) == end


def test_the_random_source_places_the_renewal_in_its_window():
    not_after = START + timedelta(days=6)
    start, end = renewal_window(not_before=START, not_after=not_after)

    def due(value: float) -> datetime:
        return renewal_due_at(not_before=START, not_after=not_after, random=lambda: value)

    assert due(0.0) == start
    assert due(0.5) == start + (end - start) / 2
    assert start < due(0.999) < end


def test_certificates_issued_together_renew_spread_over_the_window():
    # 20 certificates of 20 seconds issued at the same moment: with the rule's fixed moment
    # they would renew in the same second, at every renewal.
    source = random.Random(2026)
    not_after = START + timedelta(seconds=20)
    moments = [
        renewal_due_at(not_before=START, not_after=not_after, random=source.random)
        for _ in range(20)
    ]
    start, end = renewal_window(not_before=START, not_after=not_after)
    assert all(start <= moment < end for moment in moments)
    assert len({int((moment - START).total_seconds()) for moment in moments}) >= 3
    assert max(moments) - min(moments) > (end - start) / 2


def test_ari_suggestion_wins_over_the_lifetime_rule():
    suggested = START + timedelta(days=5)
    due = renewal_due_at(
        not_before=START,
        not_after=START + timedelta(days=90),
        suggested=suggested,
        random=lambda: 0.5,
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
    # A 90-day certificate with 30 days left: the steps as they are.
    now = START + timedelta(days=60)
    capped = failure_backoff(
        failures, not_before=START, not_after=START + timedelta(days=90), now=now
    )
    assert capped == wait


def test_a_short_certificate_caps_each_wait_at_a_tenth_of_its_lifetime():
    not_after = START + timedelta(seconds=20)
    now = START + timedelta(seconds=8)
    for failures in (1, 2, 3, 4, 10):
        wait = failure_backoff(failures, not_before=START, not_after=not_after, now=now)
        assert wait == timedelta(seconds=2)
        assert now + wait < not_after


def test_the_wait_shrinks_with_the_time_left_but_not_below_a_second():
    not_before, not_after = START, START + timedelta(days=90)
    # A day left: retried within hours, not tomorrow.
    wait = failure_backoff(
        4, not_before=not_before, not_after=not_after, now=not_after - timedelta(days=1)
    )
    assert wait == timedelta(hours=6)
    # Two seconds left of a 20-second certificate; then expired: the floor.
    short_after = START + timedelta(seconds=20)
    assert failure_backoff(
        1, not_before=START, not_after=short_after, now=short_after - timedelta(seconds=2)
    ) == timedelta(seconds=1)
    assert failure_backoff(
        1, not_before=START, not_after=short_after, now=short_after + timedelta(seconds=5)
    ) == timedelta(seconds=2)
