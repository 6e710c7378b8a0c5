"""Hostnames of sales channels: normalised to lower-case IDNA (A-labels) and validated.

Pure module (no Django): `hostname_normalize` either returns the stored form or raises
HostnameError with a message an operator can act on. It refuses:

* what is not a DNS name (RFC 1123 §2.1 labels: letters, digits, hyphens);
* anything a resolver would read as an IP address, in whatever spelling the C library
  accepts (`127.1`, `0x7f.0x1`, `0177.0.0.1`, `2130706433`, `[::1]`): a top-level domain is
  never numeric (RFC 3696 §2), so a numeric or 0x-hex last label is refused too;
* `localhost` and names under `.localhost`, which resolve to the loopback (RFC 6761 §6.3);
* names longer than MAX_LENGTH (README, "Using it": SSL Management, the file-name rule).

`hostname_reserved` says whether a hostname belongs to the platform (the back office's own
hosts and the reserved domains, subdomains included); the caller passes those lists in.
"""

import ipaddress
import re
import socket
from collections.abc import Iterable

import idna

# The edge stores a channel's files as <hostname>.crt and <hostname>.key (README, "Using it":
# SSL Management); a file name has at most 255 bytes on Linux file systems, so a hostname has
# at most 255 - len(".key") = 251 characters, two fewer than DNS allows (RFC 1035 §2.3.4).
MAX_LENGTH = 251
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# A label inet_aton reads as a number: decimal, octal (leading 0) or hexadecimal (0x...).
_NUMERIC_LABEL = re.compile(r"^(?:[0-9]+|0x[0-9a-f]*)$")
_LOOPBACK_NAME = "localhost"

TOO_LONG = (
    f"A hostname here has at most {MAX_LENGTH} characters: it becomes the file name of its "
    "certificate on the TLS edge."
)
NOT_AN_ADDRESS = "Enter a hostname, not an IP address."


class HostnameError(ValueError):
    """The value is not a DNS name a webshop can be served on."""


def hostname_normalize(value: str) -> str:
    """The hostname in lower-case IDNA form, e.g. "Bücher.Example" -> "xn--bcher-kva.example"."""
    text = value.strip().rstrip(".")
    if not text:
        raise HostnameError("Enter the shop's hostname, e.g. tickets.example.com.")
    if _is_ipv6_literal(text):
        raise HostnameError(NOT_AN_ADDRESS)
    if "://" in text or "/" in text or ":" in text:
        raise HostnameError("Enter the hostname alone, without scheme, port or path.")
    if "*" in text:
        raise HostnameError("A sales channel is served on one hostname; wildcards are not allowed.")
    if len(text) > MAX_LENGTH:
        raise HostnameError(TOO_LONG)
    try:
        ascii_name = idna.encode(text, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError) as error:
        raise HostnameError(f"“{value}” is not a valid hostname ({error}).") from None
    ascii_name = ascii_name.lower()
    labels = ascii_name.split(".")
    # Before the other rules, so that "2130706433" is named for what it is.
    if _reads_as_ipv4_address(ascii_name, labels[-1]):
        raise HostnameError(NOT_AN_ADDRESS)
    if len(ascii_name) > MAX_LENGTH:
        raise HostnameError(TOO_LONG)
    if len(labels) < 2:
        raise HostnameError(
            "Enter a fully qualified hostname with a domain, e.g. shop.example.com."
        )
    if any(not _LABEL.match(label) for label in labels):
        raise HostnameError(
            f"“{value}” is not a valid hostname: use letters, digits and hyphens between dots."
        )
    if labels[-1] == _LOOPBACK_NAME:
        raise HostnameError("Names under .localhost point at the machine itself, not at a shop.")
    return ascii_name


def hostname_reserved(hostname: str, reserved: Iterable[str]) -> str | None:
    """The entry of `reserved` that `hostname` (normalised) is or lies under, else None.

    Entries are domains as in Django's ALLOWED_HOSTS: "example.com" or ".example.com" both
    reserve the domain and every name under it. IP addresses and "*" reserve no name (an IP
    address is never a channel's hostname; "*" would reserve every one).
    """
    for entry in reserved:
        domain = entry.strip().strip(".").lower()
        if not domain or domain == "*" or domain.startswith("["):
            continue
        try:
            domain = idna.encode(domain, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError):
            continue  # not a DNS name: no channel's hostname can equal it
        if hostname == domain or hostname.endswith(f".{domain}"):
            return entry.strip()
    return None


def _is_ipv6_literal(text: str) -> bool:
    """An IPv6 address, bare or in brackets (with or without a port after them)."""
    if text.startswith("["):
        end = text.find("]")
        text = text[1:end] if end != -1 else text[1:]
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _reads_as_ipv4_address(name: str, last_label: str) -> bool:
    """Whether a resolver would take `name` for an IPv4 address rather than look it up."""
    if _NUMERIC_LABEL.match(last_label):
        return True
    try:
        socket.inet_aton(name)
    except (OSError, ValueError):
        return False
    return True
