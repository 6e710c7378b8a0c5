"""Server-side SVG charts for the dashboard: plain markup, no JavaScript, no Django.

expiry_timeline_svg() draws one bar per week, stacked by certificate status, each bar a link to
the certificates window filtered on that week. Every piece of text that goes into the markup
(titles, dates, URLs) is escaped here, which is what lets the template insert the result with
`|safe`.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from html import escape
from urllib.parse import urlencode

# Bottom to top: the most urgent status sits on the axis. "expired" only ever appears in the
# first week, for certificates that expired earlier today (see dashboard.expiry_timeline).
SEGMENT_ORDER = ("expired", "critical", "expiring", "valid", "unverified", "not_yet_valid")
STATUS_LABELS = {
    "expired": "Expired",
    "critical": "Critical",
    "expiring": "Expiring",
    "valid": "Valid",
    "unverified": "Unverified",
    "not_yet_valid": "Not yet valid",
}
# The badge palette of static/certmgr.css (--bad, --crit, --warn, --ok, --info, --muted).
STATUS_COLOURS = {
    "expired": "#b91c1c",
    "critical": "#c2410c",
    "expiring": "#a86100",
    "valid": "#1b7f3b",
    "unverified": "#5b21b6",
    "not_yet_valid": "#5b6575",
}
INK, MUTED, GRID = "#1d2430", "#5b6575", "#d9dee7"
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# Geometry, in viewBox units (the SVG scales to its container's width).
WIDTH, HEIGHT = 1000, 300
PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM = 56, WIDTH - 12, 24, 218
BAR_WIDTH = 44


@dataclass(frozen=True)
class WeekBucket:
    """Certificates expiring from `start` (included) to `end` (excluded), by status."""

    start: date
    end: date
    counts: Mapping[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.get(status, 0) for status in SEGMENT_ORDER)


def week_buckets(first_day: date, weeks: int, counts_by_day: Mapping[date, Mapping[str, int]]):
    """Fold per-day counts into `weeks` consecutive weeks starting on `first_day`; days
    outside the range are ignored."""
    totals: list[dict[str, int]] = [{} for _ in range(weeks)]
    for day, counts in counts_by_day.items():
        index = (day - first_day).days // 7
        if 0 <= index < weeks:
            for status, count in counts.items():
                totals[index][status] = totals[index].get(status, 0) + count
    return [
        WeekBucket(
            start=first_day + timedelta(days=7 * index),
            end=first_day + timedelta(days=7 * (index + 1)),
            counts=totals[index],
        )
        for index in range(weeks)
    ]


def week_url(list_url: str, week: WeekBucket) -> str:
    """The certificates window filtered on exactly the week's expiries (not yet escaped)."""
    query = urlencode(
        {"expires_after": week.start.isoformat(), "expires_before": week.end.isoformat()}
    )
    return f"{list_url}?{query}"


def axis_maximum(largest: int) -> tuple[int, int]:
    """A round top for the y axis and its tick step: at most five steps of 1, 2 or 5 × 10ⁿ."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            candidate = step * factor
            steps = max(1, -(-largest // candidate))  # ceiling division
            if steps <= 5:
                return candidate * steps, candidate
        step *= 10


def short_date(day: date) -> str:
    return f"{day.day} {MONTHS[day.month - 1]}"


def long_date(day: date) -> str:
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"


def _counts_sentence(counts: Mapping[str, int]) -> str:
    parts = [
        f"{counts[status]} {STATUS_LABELS[status].lower()}"
        for status in SEGMENT_ORDER
        if counts.get(status)
    ]
    return ", ".join(parts)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def week_summary(week: WeekBucket) -> str:
    """What a bar says in words (its tooltip and accessible name)."""
    last_day = week.end - timedelta(days=1)
    when = f"Week of {short_date(week.start)} to {long_date(last_day)}"
    if not week.total:
        return f"{when}: no certificate expires"
    expire = "expires" if week.total == 1 else "expire"
    return (
        f"{when}: {_plural(week.total, 'certificate')} {expire} ({_counts_sentence(week.counts)})"
    )


def _attrs(**attributes) -> str:
    """Escaped attributes; a trailing underscore is dropped (class_) and _ becomes -."""
    return " ".join(
        f'{name.rstrip("_").replace("_", "-")}="{escape(str(value), quote=True)}"'
        for name, value in attributes.items()
    )


def expiry_timeline_svg(
    weeks: Sequence[WeekBucket],
    *,
    list_url: str = "/certificates/",
    title: str = "Certificate expiries in the next 13 weeks",
    chart_id: str = "expiry-timeline",
) -> str:
    """An accessible SVG bar chart of expiries per week, stacked by status.

    Each week is a `<g class="week">`; a week with certificates is wrapped in a link to the
    certificates window filtered on that week, with a `<title>` giving its counts.
    """
    title_id, desc_id = f"{chart_id}-title", f"{chart_id}-desc"
    in_all: dict[str, int] = {}
    for week in weeks:
        for status in SEGMENT_ORDER:
            in_all[status] = in_all.get(status, 0) + week.counts.get(status, 0)
    total = sum(in_all.values())
    if weeks:
        period = f"from {long_date(weeks[0].start)} to {long_date(weeks[-1].end - timedelta(1))}"
    else:
        period = "in this period"
    if total:
        busiest = max(weeks, key=lambda week: week.total)
        description = (
            f"Certificates expiring each week {period}, stacked by status. "
            f"{_plural(total, 'certificate')} in all: {_counts_sentence(in_all)}. "
            f"Busiest week: {short_date(busiest.start)}, with {busiest.total}."
        )
    else:
        description = f"No certificate expires {period}."

    plot_height = PLOT_BOTTOM - PLOT_TOP
    top, step = axis_maximum(max((week.total for week in weeks), default=0))
    scale = plot_height / top
    slot = (PLOT_RIGHT - PLOT_LEFT) / max(len(weeks), 1)

    # Not role="img": an img's children are presentational, which would hide the bars' links
    # from assistive technology. A labelled group keeps both the summary and the links.
    parts = [
        f"<svg {_attrs(xmlns='http://www.w3.org/2000/svg', class_='chart timeline', id=chart_id)}"
        f" {_attrs(viewBox=f'0 0 {WIDTH} {HEIGHT}', role='group')}"
        f" {_attrs(aria_labelledby=title_id, aria_describedby=desc_id)}"
        f" {_attrs(font_family='system-ui, sans-serif', font_size=12, fill=INK)}>",
        f"<title {_attrs(id=title_id)}>{escape(title)}</title>",
        f"<desc {_attrs(id=desc_id)}>{escape(description)}</desc>",
    ]

    # Y axis: gridlines with their counts, and the axis title.
    parts.append('<g class="y-axis" aria-hidden="true">')
    for value in range(0, top + 1, step):
        y = round(PLOT_BOTTOM - value * scale, 2)
        colour = MUTED if value == 0 else GRID
        parts.append(
            f"<line {_attrs(x1=PLOT_LEFT, x2=PLOT_RIGHT, y1=y, y2=y, stroke=colour)} />"
            f"<text {_attrs(x=PLOT_LEFT - 8, y=y + 4, text_anchor='end', fill=MUTED)}>"
            f"{value}</text>"
        )
    middle = (PLOT_TOP + PLOT_BOTTOM) / 2
    parts.append(
        f"<text {_attrs(x=14, y=middle, text_anchor='middle', fill=MUTED)}"
        f" {_attrs(transform=f'rotate(-90 14 {middle})')}>Certificates</text>"
    )
    parts.append("</g>")

    # One group per week: the stacked segments, the total above, the date below.
    for index, week in enumerate(weeks):
        centre = PLOT_LEFT + slot * (index + 0.5)
        x = round(centre - BAR_WIDTH / 2, 2)
        group = _attrs(
            class_="week", data_week=index, data_start=week.start.isoformat(), data_total=week.total
        )
        parts.append(f"<g {group}>")
        if week.total:
            parts.append(f"<a {_attrs(href=week_url(list_url, week))}>")
            parts.append(f"<title>{escape(week_summary(week))}</title>")
            # An invisible column makes the whole width of the week clickable.
            parts.append(
                f"<rect {_attrs(class_='hit', x=round(centre - slot / 2, 2), y=PLOT_TOP)}"
                f" {_attrs(width=round(slot, 2), height=plot_height, fill='transparent')} />"
            )
        y = PLOT_BOTTOM
        for status in SEGMENT_ORDER:
            count = week.counts.get(status, 0)
            if not count:
                continue
            height = round(count * scale, 2)
            y = round(y - height, 2)
            parts.append(
                f"<rect {_attrs(class_='segment', data_status=status, data_count=count)}"
                f" {_attrs(x=x, y=y, width=BAR_WIDTH, height=height)}"
                # A white edge keeps neighbouring segments apart.
                f" {_attrs(fill=STATUS_COLOURS[status], stroke='#fff', stroke_width=1)} />"
            )
        if week.total:
            parts.append(
                f"<text {_attrs(class_='total', x=round(centre, 2), y=round(y - 5, 2))}"
                f" {_attrs(text_anchor='middle', font_weight=600)}>{week.total}</text>"
            )
            parts.append("</a>")
        parts.append(
            f"<text {_attrs(class_='x-label', x=round(centre, 2), y=PLOT_BOTTOM + 18)}"
            f" {_attrs(text_anchor='middle', fill=MUTED)}>{escape(short_date(week.start))}</text>"
        )
        parts.append("</g>")

    parts.append(
        f"<text {_attrs(x=(PLOT_LEFT + PLOT_RIGHT) / 2, y=PLOT_BOTTOM + 40)}"
        f" {_attrs(text_anchor='middle', fill=MUTED)}>Week starting</text>"
    )
    if not total:
        parts.append(
            f"<text {_attrs(class_='empty', x=(PLOT_LEFT + PLOT_RIGHT) / 2, y=middle)}"
            f" {_attrs(text_anchor='middle', fill=MUTED, font_size=14)}>"
            f"{escape(description)}</text>"
        )

    # Legend: the statuses present, in stacking order.
    present = [status for status in SEGMENT_ORDER if in_all.get(status)]
    if present:
        parts.append('<g class="legend">')
        x = PLOT_LEFT
        for status in present:
            label = STATUS_LABELS[status]
            parts.append(
                f"<rect {_attrs(x=x, y=HEIGHT - 24, width=12, height=12, rx=2)}"
                f" {_attrs(fill=STATUS_COLOURS[status])} />"
                f"<text {_attrs(x=x + 17, y=HEIGHT - 14)}>{escape(label)}</text>"
            )
            x += 17 + 7.5 * len(label) + 22
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)
