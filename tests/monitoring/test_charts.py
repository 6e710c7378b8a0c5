"""The expiry timeline chart (monitoring/charts.py): pure, no database."""

from datetime import date, timedelta
from xml.etree import ElementTree

import pytest

from monitoring import charts
from monitoring.charts import WeekBucket, expiry_timeline_svg, week_buckets

SVG = "{http://www.w3.org/2000/svg}"
FIRST_DAY = date(2025, 3, 3)


def weeks_with(counts_by_week: dict[int, dict[str, int]]) -> list[WeekBucket]:
    return [
        WeekBucket(
            start=FIRST_DAY + timedelta(days=7 * index),
            end=FIRST_DAY + timedelta(days=7 * (index + 1)),
            counts=counts_by_week.get(index, {}),
        )
        for index in range(13)
    ]


def parse(svg: str) -> ElementTree.Element:
    """The markup must be well-formed XML (it is inlined into HTML as is)."""
    return ElementTree.fromstring(svg)


def week_groups(root) -> list:
    return [g for g in root.iter(f"{SVG}g") if g.get("class") == "week"]


def segments(group) -> list:
    return [rect for rect in group.iter(f"{SVG}rect") if rect.get("class") == "segment"]


def test_an_empty_timeline_has_thirteen_empty_weeks_and_says_so():
    root = parse(expiry_timeline_svg(weeks_with({})))
    groups = week_groups(root)
    assert len(groups) == 13
    assert all(group.get("data-total") == "0" for group in groups)
    assert not list(root.iter(f"{SVG}a"))
    assert not any(segments(group) for group in groups)
    assert "No certificate expires" in root.find(f"{SVG}desc").text
    assert not [g for g in root.iter(f"{SVG}g") if g.get("class") == "legend"]


def test_it_draws_even_without_any_week():
    root = parse(expiry_timeline_svg([]))
    assert week_groups(root) == []


def test_it_is_labelled_for_assistive_technology():
    svg = expiry_timeline_svg(weeks_with({1: {"critical": 1}}), chart_id="timeline")
    root = parse(svg)
    assert root.get("aria-labelledby") == "timeline-title"
    assert root.get("aria-describedby") == "timeline-desc"
    assert root.find(f"{SVG}title").get("id") == "timeline-title"
    assert root.find(f"{SVG}title").text == "Certificate expiries in the next 13 weeks"
    desc = root.find(f"{SVG}desc")
    assert desc.get("id") == "timeline-desc"
    assert "1 certificate in all: 1 critical" in desc.text
    link = root.find(f".//{SVG}a")
    assert link.find(f"{SVG}title").text == (
        "Week of 10 Mar to 16 Mar 2025: 1 certificate expires (1 critical)"
    )


def test_segments_stack_from_the_axis_most_urgent_first_with_heights_in_proportion():
    root = parse(
        expiry_timeline_svg(weeks_with({0: {"expiring": 1, "critical": 2}, 5: {"valid": 4}}))
    )
    groups = week_groups(root)
    plot_height = charts.PLOT_BOTTOM - charts.PLOT_TOP
    first = segments(groups[0])
    assert [(rect.get("data-status"), rect.get("data-count")) for rect in first] == [
        ("critical", "2"),
        ("expiring", "1"),
    ]
    critical, expiring = ((float(rect.get("y")), float(rect.get("height"))) for rect in first)
    # The axis goes up to 4 (the largest week): 2 certificates are half the plot's height.
    assert critical[1] == pytest.approx(plot_height / 2)
    assert expiring[1] == pytest.approx(plot_height / 4)
    assert critical[0] + critical[1] == pytest.approx(charts.PLOT_BOTTOM)
    assert expiring[0] + expiring[1] == pytest.approx(critical[0])
    (valid,) = segments(groups[5])
    assert float(valid.get("height")) == pytest.approx(plot_height)
    assert valid.get("fill") == charts.STATUS_COLOURS["valid"]
    assert [segments(group) for index, group in enumerate(groups) if index not in (0, 5)] == [
        [] for _ in range(11)
    ]


def test_each_week_with_certificates_links_to_its_days():
    root = parse(expiry_timeline_svg(weeks_with({2: {"valid": 1}}), list_url="/certificates/"))
    (link,) = root.iter(f"{SVG}a")
    assert link.get("href") == "/certificates/?expires_after=2025-03-17&expires_before=2025-03-24"
    labels = [text.text for text in root.iter(f"{SVG}text") if text.get("class") == "x-label"]
    assert labels[:3] == ["3 Mar", "10 Mar", "17 Mar"]
    assert len(labels) == 13


def test_the_legend_shows_the_statuses_present_in_stacking_order():
    root = parse(expiry_timeline_svg(weeks_with({0: {"valid": 1}, 3: {"critical": 1}})))
    (legend,) = [g for g in root.iter(f"{SVG}g") if g.get("class") == "legend"]
    assert [text.text for text in legend.iter(f"{SVG}text")] == ["Critical", "Valid"]


def test_it_escapes_every_text_and_url():
    svg = expiry_timeline_svg(
        weeks_with({0: {"valid": 1}}),
        title='<script>alert("x")</script> & co',
        list_url='/certificates/"><script>',
    )
    assert "<script>" not in svg
    root = parse(svg)
    assert root.find(f"{SVG}title").text == '<script>alert("x")</script> & co'
    assert root.find(f".//{SVG}a").get("href").startswith('/certificates/"><script>?')


@pytest.mark.parametrize(
    ("largest", "expected"),
    [(0, (1, 1)), (3, (3, 1)), (5, (5, 1)), (7, (8, 2)), (13, (15, 5)), (60, (60, 20))],
)
def test_the_axis_ends_on_a_round_number(largest, expected):
    assert charts.axis_maximum(largest) == expected


def test_days_fold_into_weeks_and_days_outside_are_dropped():
    buckets = week_buckets(
        FIRST_DAY,
        13,
        {
            FIRST_DAY: {"critical": 1},
            FIRST_DAY + timedelta(days=6): {"critical": 2, "expiring": 1},
            FIRST_DAY + timedelta(days=7): {"expiring": 1},
            FIRST_DAY + timedelta(days=90): {"valid": 3},
            FIRST_DAY + timedelta(days=91): {"valid": 5},
            FIRST_DAY - timedelta(days=1): {"expired": 5},
        },
    )
    assert len(buckets) == 13
    assert buckets[0].counts == {"critical": 3, "expiring": 1}
    assert buckets[1].counts == {"expiring": 1}
    assert buckets[12].counts == {"valid": 3}
    assert buckets[12].end == FIRST_DAY + timedelta(days=91)
    assert sum(bucket.total for bucket in buckets) == 8
