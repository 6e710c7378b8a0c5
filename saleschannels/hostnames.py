"""Hostnames of sales channels: normalised to lower-case IDNA (A-labels) and validated.

Pure module (no Django): `hostname_normalize` either returns the stored form or raises
HostnameError with a message an operator can act on.
"""

import re

import idna

MAX_LENGTH = 253
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


class HostnameError(ValueError):
    """The value is not a DNS name a webshop can be served on."""


def hostname_normalize(value: str) -> str:
    """The hostname in lower-case IDNA form, e.g. "Bücher.Example" -> "xn--bcher-kva.example"."""
    text = value.strip().rstrip(".")
    if not text:
        raise HostnameError("Enter the shop's hostname, e.g. tickets.example.com.")
    if "://" in text or "/" in text or ":" in text:
        raise HostnameError("Enter the hostname alone, without scheme, port or path.")
    if "*" in text:
        raise HostnameError("A sales channel is served on one hostname; wildcards are not allowed.")
    if len(text) > MAX_LENGTH:
        raise HostnameError("The hostname is longer than 253 characters.")
    try:
        ascii_name = idna.encode(text, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError) as error:
        raise HostnameError(f"“{value}” is not a valid hostname ({error}).") from None
    ascii_name = ascii_name.lower()
    labels = ascii_name.split(".")
    if len(ascii_name) > MAX_LENGTH:
        raise HostnameError("The hostname is longer than 253 characters.")
    if len(labels) < 2:
        raise HostnameError(
            "Enter a fully qualified hostname with a domain, e.g. shop.example.com."
        )
    if any(not _LABEL.match(label) for label in labels):
        raise HostnameError(
            f"“{value}” is not a valid hostname: use letters, digits and hyphens between dots."
        )
    if labels[-1].isdigit():
        raise HostnameError("Enter a hostname, not an IP address.")
    return ascii_name
