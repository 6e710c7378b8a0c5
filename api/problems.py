"""Errors of the API as RFC 9457 problem details (https://www.rfc-editor.org/rfc/rfc9457):
`application/problem+json` with type, title, status and detail, and for a refused input
`errors`, the messages per field, in the same words as the pages' forms.

DRF's exception handler does the mapping (Http404 -> 404, Django's PermissionDenied -> 403
with the page's sentence, Throttled -> 429 with Retry-After); this turns its answer into a
problem document.
"""

from http import HTTPStatus

from django.http import JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler

PROBLEM_CONTENT_TYPE = "application/problem+json"
# RFC 9457 section 4.2.1: a problem that is no more than its HTTP status has the type
# about:blank, and its title is the status phrase; `detail` says what happened, in words.
PROBLEM_TYPE = "about:blank"
NOT_FOUND_DETAIL = "Not found."
API_PATH_PREFIX = "/api/"


class FormRefused(exceptions.APIException):
    """An input a form refused: 400 with its messages per field (`form.errors`)."""

    status_code = 400
    default_detail = "The input was refused: see errors."
    default_code = "invalid"

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__()
        self.errors = errors


class Conflict(exceptions.APIException):
    """A state that refuses the write (a certificate in use, a completed request...): 409."""

    status_code = 409
    default_code = "conflict"


# The phrases of RFC 9110 where Python's http module still has older ones.
PHRASES = {413: "Content Too Large"}


def problem_body(status: int, detail: str) -> dict:
    return {
        "type": PROBLEM_TYPE,
        "title": PHRASES.get(status) or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }


def problem(status: int, detail: str, *, errors: dict | None = None, headers=None) -> Response:
    """A problem document answered with `status`, by a view of the API."""
    body = problem_body(status, detail)
    if errors:
        body["errors"] = errors
    return Response(body, status=status, headers=headers, content_type=PROBLEM_CONTENT_TYPE)


def is_api_request(request) -> bool:
    """Whether the request is for the API: what refuses it before any view (the request
    checks of certmgr's middleware) answers with a problem document too."""
    return request.path_info.startswith(API_PATH_PREFIX)


def problem_response(status: int, detail: str) -> JsonResponse:
    """A problem document from outside DRF (a middleware)."""
    return JsonResponse(
        problem_body(status, detail),
        status=status,
        content_type=PROBLEM_CONTENT_TYPE,
        json_dumps_params={"ensure_ascii": False},
    )


def _field_errors(detail) -> dict[str, list[str]]:
    """DRF's validation errors ({field: [ErrorDetail]}, or a list) as plain strings."""
    if isinstance(detail, dict):
        return {
            str(field): [str(item) for item in (items if isinstance(items, list) else [items])]
            for field, items in detail.items()
        }
    return {"__all__": [str(item) for item in detail]}


def problem_exception_handler(exc, context):
    if isinstance(exc, FormRefused):
        return problem(400, str(exc.detail), errors=exc.errors)
    response = exception_handler(exc, context)
    if response is None:
        return None  # not an API error: a 500, which Django reports as for any page
    headers = {
        name: value
        for name, value in response.items()
        if name in ("Retry-After", "WWW-Authenticate", "Allow")
    }
    if isinstance(exc, exceptions.ValidationError):
        return problem(
            400,
            "The input was refused: see errors.",
            errors=_field_errors(exc.detail),
            headers=headers,
        )
    detail = response.data.get("detail", "") if isinstance(response.data, dict) else ""
    if response.status_code == 404:
        detail = NOT_FOUND_DETAIL  # the same for a missing object and another institution's
    return problem(response.status_code, str(detail), headers=headers)
