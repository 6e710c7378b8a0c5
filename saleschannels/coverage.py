"""Which certificates a sales channel may use (pure rules, no Django).

A certificate covers a hostname when one of its DNS names is the hostname itself, or a
wildcard exactly one label deep: "*.example.com" covers "shop.example.com", but neither
"example.com" nor "a.shop.example.com" (RFC 6125, as browsers apply it).
"""

from collections.abc import Iterable


def certificate_covers_hostname(domains: Iterable[str], hostname: str) -> bool:
    hostname = hostname.lower().rstrip(".")
    for domain in domains:
        name = domain.lower().rstrip(".")
        if name == hostname:
            return True
        if name.startswith("*."):
            _, _, parent = hostname.partition(".")
            if parent and parent == name[2:]:
                return True
    return False
