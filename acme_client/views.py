"""The HTTP-01 answer: GET /.well-known/acme-challenge/<token> on a sales channel's host."""

from django.http import Http404, HttpResponse
from django.views.decorators.http import require_GET

from .services import challenge_answer


@require_GET
def acme_challenge(request, token: str):
    """Plain-text key authorization of a pending challenge for this very hostname, else 404."""
    channel = getattr(request, "sales_channel", None)
    if channel is None:
        raise Http404("Challenges are answered on sales channel hostnames only.")
    key_authorization = challenge_answer(hostname=channel.hostname, token=token)
    if key_authorization is None:
        raise Http404("No such challenge.")
    return HttpResponse(key_authorization, content_type="text/plain")
