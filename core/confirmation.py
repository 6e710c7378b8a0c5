"""Confirming a destructive write: the page that says what it will do, and the token that
shows the person confirming saw exactly that (README, "Using it": Detail).

A delete view answers GET with a confirmation page naming the impact (the hostnames that stop
being served, the channels that keep it from happening...), and deletes on a POST only when
the page's `confirm` field carries the token of that impact as it still is. A POST without
it (a one-click form, a script) shows the page instead; so does one whose impact has changed
since the page was shown (another identity proof uploaded, a channel switched to the
certificate), with a word saying so.

The token is a digest of the facts the page names, not a secret: cross-site requests are
already refused by the CSRF check.
"""

import hashlib

from django.utils.crypto import constant_time_compare

CONFIRM_FIELD = "confirm"


def impact_token(*facts) -> str:
    """A short digest of the facts a confirmation page names (ids, hostnames, names)."""
    text = "\x1f".join(str(fact) for fact in facts)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def confirmation_sent(request) -> bool:
    """The request is a POST from a confirmation page (whatever its token)."""
    return request.method == "POST" and CONFIRM_FIELD in request.POST


def confirmed(request, token: str) -> bool:
    """The request is a POST confirming exactly the impact whose token is `token`."""
    return confirmation_sent(request) and constant_time_compare(
        request.POST.get(CONFIRM_FIELD, ""), token
    )
