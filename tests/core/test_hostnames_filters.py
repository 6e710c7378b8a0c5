"""The template filters that show hostnames (core/templatetags/hostnames.py): a name wraps only
after its dots, an IDN shows in Unicode with its ASCII form beside it, and nothing raises."""

import re

import pytest
from django.template import engines


def render(source: str, **context) -> str:
    return engines["django"].from_string(source).render(context)


def wrapped_text(html: str) -> str:
    """The text of the markup with each line-break opportunity shown as "|"."""
    return re.sub(r"<[^>]+>", "", html.replace("<wbr>", "|"))


def test_a_hostname_may_wrap_only_after_a_dot():
    # Each label in a span that does not wrap (static/certmgr.css): not even at its hyphens.
    html = render("{{ name|hostname }}", name="shop.acme-tickets.test")
    assert html == (
        '<span class="hostname"><span>shop.</span><wbr><span>acme-tickets.</span><wbr>'
        "<span>test</span></span>"
    )
    assert wrapped_text(html) == "shop.|acme-tickets.|test"


def test_an_idn_shows_in_unicode_with_its_punycode_beside_it():
    html = render("{{ name|hostname }}", name="tickets.xn--bcher-kva.example")
    assert wrapped_text(html) == "tickets.|bücher.|example (tickets.|xn--bcher-kva.|example)"
    assert '<span class="hostname hostname-ascii">' in html


def test_bad_punycode_is_shown_as_stored():
    html = render("{{ name|hostname }}", name="xn--a.example")
    assert html == ('<span class="hostname"><span>xn--a.</span><wbr><span>example</span></span>')


def test_a_list_of_hostnames_is_separated_by_commas():
    html = render("{{ names|hostnames }}", names=["a.test", "xn--bcher-kva.example"])
    assert wrapped_text(html) == "a.|test, bücher.|example (xn--bcher-kva.|example)"


@pytest.mark.parametrize("names", [[], None, [""]])
def test_no_hostname_leaves_room_for_a_default(names):
    assert render('{{ names|hostnames|default:"—" }}', names=names) == "—"


@pytest.mark.parametrize(
    ("value", "html"), [(None, ""), ("", ""), (42, '<span class="hostname"><span>42</span></span>')]
)
def test_anything_renders_without_error(value, html):
    assert render("{{ value|hostname }}", value=value) == html


def test_markup_in_a_name_is_escaped():
    html = render("{{ name|hostname }}", name='<img src=x onerror="a()">.test')
    assert "<img" not in html
    assert wrapped_text(html) == "&lt;img src=x onerror=&quot;a()&quot;&gt;.|test"


def test_the_text_form_names_both():
    assert render("{{ name|hostname_text }}", name="xn--bcher-kva.example") == (
        "bücher.example (xn--bcher-kva.example)"
    )
    assert render("{{ name|hostname_text }}", name="shop.test") == "shop.test"


def test_other_dotted_names_wrap_at_dots_too():
    html = render("{{ name|wrap_at_dots }}", name="merchant.com.acme-tickets")
    assert html == (
        '<span class="dotted"><span>merchant.</span><wbr><span>com.</span><wbr>'
        "<span>acme-tickets</span></span>"
    )
