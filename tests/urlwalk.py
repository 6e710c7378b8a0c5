"""Every URL pattern of the project, for tests that walk them all (tests/certmgr/test_isolation.py).

routes_all() reads the URL resolver and recurses into includes (the admin's too), so a page
added later is walked without anyone listing it. A Route knows the arguments its URL takes and
builds the URL from values for them; which values fill an argument is the walking test's
business.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote

from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.utils.regex_helper import normalize


@dataclass(frozen=True)
class Route:
    """One URL pattern, with the prefixes of the includes it sits in."""

    # The patterns as written in the URLconfs, joined: "saleschannels/<int:pk>/ssl/".
    description: str
    # "channel_ssl", "admin:certificates_certificate_change"; "" for an unnamed pattern.
    name: str
    callback: object
    arguments: tuple[str, ...]
    # "saleschannels/%(pk)s/ssl/": what Django's reverse() fills in.
    url_format: str

    @property
    def label(self) -> str:
        return f"{self.name or '(unnamed)'} [{self.description}]"

    def url(self, values: dict) -> str:
        """The path of this route with `values` for its arguments; checked to resolve back to
        this very route, so that a walk never tests another page than it believes."""
        if set(values) != set(self.arguments):
            raise ValueError(f"{self.label} takes {self.arguments}, not {sorted(values)}")
        path = "/" + self.url_format % {
            name: quote(str(value), safe="/") for name, value in values.items()
        }
        match = resolve(path)
        if match.func is not self.callback:
            raise AssertionError(f"{path} was built for {self.label} but resolves to {match}")
        return path


def _routes(patterns, *, regex: str, description: str, namespace: str) -> Iterable[Route]:
    for pattern in patterns:
        # A pattern's regex starts with "^"; below an include it continues the prefix's.
        own_regex = pattern.pattern.regex.pattern.removeprefix("^")
        own_description = description + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            inner_namespace = namespace
            if pattern.namespace:
                inner_namespace = f"{namespace}{pattern.namespace}:"
            yield from _routes(
                pattern.url_patterns,
                regex=regex + own_regex,
                description=own_description,
                namespace=inner_namespace,
            )
        elif isinstance(pattern, URLPattern):
            url_format, arguments = normalize(regex + own_regex)[0]
            yield Route(
                description=own_description,
                name=f"{namespace}{pattern.name}" if pattern.name else "",
                callback=pattern.callback,
                arguments=tuple(arguments),
                url_format=url_format,
            )
        else:  # pragma: no cover - Django has no third kind today
            raise TypeError(f"unknown kind of URL pattern: {pattern!r}")


def routes_all(resolver: URLResolver | None = None) -> list[Route]:
    """Every URL pattern reachable from the resolver (the project's by default)."""
    resolver = resolver or get_resolver()
    return list(_routes(resolver.url_patterns, regex="", description="", namespace=""))
