"""The bound on request bodies, applied before anything reads them.

Contract:

* A request whose ``Content-Length`` is over ``settings.CERTMGR_REQUEST_BODY_MAX_BYTES`` is
  answered 413 with a page that gives the limit, and its body is never read: not by the CSRF
  check, not by the multipart parser, not by a view. (A body sent without ``Content-Length``
  is not read by Django at all.)
* Certificate, key and chain files are a few KiB; the upload forms refuse a file over
  ``bundle.MAX_FILE_BYTES`` (64 KiB) on its own field, so a whole upload (three files and a
  few fields) stays far below the cap, and a file between the two limits gets that field
  error instead of this page.
"""

from django.conf import settings
from django.shortcuts import render
from django.template.defaultfilters import filesizeformat

from api.problems import is_api_request, problem_response

STATUS_TOO_LARGE = 413


class RequestBodyLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        size = _content_length(request)
        limit = settings.CERTMGR_REQUEST_BODY_MAX_BYTES
        if size > limit and is_api_request(request):
            return problem_response(
                STATUS_TOO_LARGE,
                f"Upload too large: it was {filesizeformat(size)}; certmgr takes at most "
                f"{filesizeformat(limit)} in one request, and nothing of it was read.",
            )
        if size > limit:
            return render(
                request,
                "413.html",
                {"size": size, "limit": limit, "back": request.path},
                status=STATUS_TOO_LARGE,
            )
        return self.get_response(request)


def _content_length(request) -> int:
    """The announced body size; 0 when absent or not a number (Django then reads nothing)."""
    try:
        return max(0, int(request.META.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0
