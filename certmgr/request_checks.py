"""Requests carrying a NUL character are answered 400, before any view runs.

PostgreSQL cannot store the character NUL (U+0000) in text
(https://www.postgresql.org/docs/current/datatype-character.html): psycopg raises
``DataError`` as soon as one reaches a query, and Django answers 500. Forms refuse it already
(Django's ``CharField`` has ``ProhibitNullCharactersValidator``), but much of a request reaches
queries without a form: list filters read from the query string (``?q=%00``), path arguments,
the session cookie (``sessionid="...\\000"``: http.cookies decodes that octal escape in a quoted
value), a ``User-Agent`` that django-axes stores with a failed login. SQLite stores the
character, so only PostgreSQL deployments broke, and only some pages.

Contract: ``NulCharacterMiddleware`` answers ``400 Bad request`` (plain text, saying why) to
any request with a NUL character in its path, in a name or value of its query string, its
form fields (URL-encoded or multipart; never the content of uploaded files, which are binary
by nature), its cookies or its headers. No legitimate client sends one there. It sits after
certmgr.upload_limits.RequestBodyLimitMiddleware, so that an oversized body is refused before
this reads the form fields, and before every middleware that reads the session or the database
on behalf of the view (messages, certificate alerts, django-axes). What runs before it queries
the database by the ``Host`` only (saleschannels.middleware), checked against Django's host
pattern first, which has no room for a NUL; the session is not read until a view asks.
"""

from collections.abc import Iterable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest

from api.problems import is_api_request, problem_response

NUL = "\x00"
BAD_REQUEST = "Bad request: the request contains a NUL character."


class NulCharacterMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request_has_nul(request):
            if is_api_request(request):  # README, "API": every error a problem document
                return problem_response(400, BAD_REQUEST)
            return HttpResponseBadRequest(BAD_REQUEST, content_type="text/plain; charset=utf-8")
        return self.get_response(request)


def request_has_nul(request: HttpRequest) -> bool:
    """Whether a NUL character is in the request's path, query, form fields, cookies or
    headers (decoded, as views and queries see them)."""
    return any(
        NUL in text
        for text in (
            request.path_info,
            request.path,
            *_items(request.GET.lists()),
            *_items(request.COOKIES.items()),
            *_header_values(request),
            *_items(request.POST.lists()),
        )
    )


def _items(pairs: Iterable[tuple[str, object]]) -> Iterable[str]:
    for name, value in pairs:
        yield name
        if isinstance(value, list):
            yield from (item for item in value if isinstance(item, str))
        elif isinstance(value, str):
            yield value


def _header_values(request: HttpRequest) -> Iterable[str]:
    for name, value in request.META.items():
        if name.startswith("HTTP_") and isinstance(value, str):
            yield value
