"""Files served on the sales channels' own hostnames under /.well-known/ (besides the ACME
challenge, acme_client/views.py).

GET /.well-known/apple-developer-merchantid-domain-association: the Apple Pay
domain-association file ("identity proof") of the channel's institution, byte for byte, as
text/plain, when Apple Pay is enabled on the channel (selectors.channel_identity_proof) and
its hostname's ownership is verified (README, "Onboarding a hostname");
404 otherwise, and on the back-office hosts. The host routing middleware has put the channel
on the request (and answered 400 for unknown hosts); nothing here redirects.
"""

from django.http import Http404, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_safe

from .selectors import channel_identity_proof


@require_safe
def apple_domain_association(request):
    channel = getattr(request, "sales_channel", None)
    if channel is None:
        raise Http404("The domain-association file is served on sales channel hostnames only.")
    if channel.hostname_verified_at is None:
        raise Http404("The hostname's ownership is not verified: no Apple Pay file is served.")
    proof = channel_identity_proof(channel, timezone.now())
    if proof is None:
        raise Http404("Apple Pay is not enabled here, or there is no valid identity proof.")
    # bytes(): a BinaryField reads back as memoryview on PostgreSQL.
    return HttpResponse(bytes(proof.content), content_type="text/plain")
