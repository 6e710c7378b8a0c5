"""How hostnames are shown to people: the Unicode form of an IDN, and where a name may wrap.

Pure module (no Django). Hostnames are stored in their ASCII form, IDN labels as A-labels
(`xn--bcher-kva.example`, README "Using it": Sales channels); people read the U-labels
(`bücher.example`). `hostname_unicode` decodes every `xn--` label with the IDNA 2008 rules of
the `idna` package (RFC 5891 §5.4, RFC 5890 §2.3.2.1) and never fails: a label that is not a
valid A-label (bad Punycode, a code point IDNA 2008 disallows, too long) stays as written, so
whatever is stored is shown, never an error. Because a U-label can look like another name (a
Cyrillic `аррӏе` for `apple`), pages show the ASCII form beside it (README, "Using it").

`hostname_wrap_points` cuts a hostname after each dot: the only places where a narrow screen
may break it, so that no label is ever split ("shop.ac me-tickets.t est").
"""

from functools import lru_cache

import idna

_ACE_PREFIX = "xn--"
# Decoding is cheap but a list page may show the same names many times over.
_CACHE_SIZE = 4096


def _label_unicode(label: str) -> str:
    if not label.lower().startswith(_ACE_PREFIX):
        return label
    try:
        return idna.decode(label)
    except (idna.IDNAError, UnicodeError, ValueError):
        return label  # not a valid A-label: shown as stored


@lru_cache(maxsize=_CACHE_SIZE)
def hostname_unicode(hostname: str) -> str:
    """`hostname` with its valid A-labels as U-labels; any other label unchanged."""
    return ".".join(_label_unicode(label) for label in hostname.split("."))


def hostname_is_idn(hostname: str) -> bool:
    """Whether the hostname reads differently in Unicode (it has a valid A-label)."""
    return hostname_unicode(hostname) != hostname


def hostname_wrap_points(hostname: str) -> list[str]:
    """The hostname cut after each dot: "shop.acme.test" -> ["shop.", "acme.", "test"]."""
    parts = hostname.split(".")
    return [f"{part}." for part in parts[:-1]] + [parts[-1]]


def hostname_text(hostname: str) -> str:
    """Plain text for places without markup (e-mail text, titles, buttons): the Unicode form
    with the ASCII form in brackets for an IDN, the hostname alone otherwise."""
    unicode_name = hostname_unicode(hostname)
    if unicode_name == hostname:
        return hostname
    return f"{unicode_name} ({hostname})"
