"""Template filters that show hostnames (core/hostname_display.py; README, "Using it").

    (a builtin: certmgr/settings.py TEMPLATES adds it to every template)
    {{ channel.hostname|hostname }}        the name, wrapping only after its dots; an IDN in
                                           Unicode with its ASCII form beside it
    {{ certificate.domains|hostnames }}    a list of them, separated by commas
    {{ channel.hostname|hostname_text }}   plain text, for buttons and titles
    {{ request.merchant_identifier|wrap_at_dots }}   any other dotted name, wrapping at dots

They accept anything (None, numbers, names that are not valid IDNs) and never raise: what is
not a valid A-label is shown as it is stored. Every piece is escaped before <wbr> is added.
"""

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from core import hostname_display

register = template.Library()


def _text(value) -> str:
    return "" if value is None else str(value)


def _wrapped(name: str, *, before: str = "", after: str = "") -> SafeString:
    """The name with each label (and its dot) in a span that does not wrap, and a line-break
    opportunity (<wbr>) after each dot: a hyphen inside a label is no place to break.
    `before` and `after` (brackets) go in the first and last label's span, kept with them."""
    parts = hostname_display.hostname_wrap_points(name)
    parts[0] = before + parts[0]
    parts[-1] += after
    return format_html_join(
        mark_safe("<wbr>"),  # noqa: S308 - a constant
        "<span>{}</span>",
        ((part,) for part in parts),
    )


def _hostname_html(name: str, *, after: str = "") -> SafeString:
    """The hostname's markup; `after` (a comma in a list) stays with its last label."""
    unicode_name = hostname_display.hostname_unicode(name)
    if unicode_name == name:
        return format_html('<span class="hostname">{}</span>', _wrapped(name, after=after))
    return format_html(
        '<span class="hostname">{}</span> <span class="hostname hostname-ascii">{}</span>',
        _wrapped(unicode_name),
        _wrapped(name, before="(", after=")" + after),
    )


@register.filter
def hostname(value) -> SafeString:
    name = _text(value)
    return _hostname_html(name) if name else SafeString("")


@register.filter
def hostnames(values) -> SafeString:
    names = [_text(value) for value in values or () if _text(value)]
    last = len(names) - 1
    return format_html_join(
        " ",
        "{}",
        (
            (_hostname_html(name, after="" if number == last else ","),)
            for number, name in enumerate(names)
        ),
    )


@register.filter
def hostname_text(value) -> str:
    return hostname_display.hostname_text(_text(value))


@register.filter
def wrap_at_dots(value) -> SafeString:
    name = _text(value)
    return format_html('<span class="dotted">{}</span>', _wrapped(name)) if name else SafeString("")
