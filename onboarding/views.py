"""The HTTP ownership token, answered on a sales channel's own hostname (README, "Onboarding a
hostname").

GET or HEAD /.well-known/certmgr-challenge/<token>: the channel's verification token as
text/plain when <token> is that very token, 404 otherwise and on the back-office hosts. The
host routing middleware (saleschannels/middleware.py) has put the channel on the request
(and answered 400 for unknown hosts). Once the hostname points at the platform's edge,
certmgr answers this itself, so fetching it (onboarding/checks_http.py) proves that whoever
controls the name's DNS pointed it here; the path follows RFC 8615's well-known URIs
(https://www.rfc-editor.org/rfc/rfc8615).
"""

from django.http import Http404, HttpResponse
from django.utils.crypto import constant_time_compare
from django.views.decorators.http import require_safe


@require_safe
def certmgr_challenge(request, token: str):
    channel = getattr(request, "sales_channel", None)
    if channel is None:
        raise Http404("The ownership token is answered on sales channel hostnames only.")
    if not constant_time_compare(token, channel.verification_token):
        raise Http404("No such token.")
    return HttpResponse(channel.verification_token, content_type="text/plain")
