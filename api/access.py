"""How the API's views reach objects and check roles: the pages' own helpers, with the
token's principal as the user (authentication.py), so another institution's object is a 404
and a viewer token's write a 403 with the pages' words."""

from django.shortcuts import get_object_or_404
from django.utils import timezone
from rest_framework.exceptions import ParseError

from certificates.models import Certificate, CertificateRequest
from institutions.models import Institution
from institutions.permissions import require_manager
from saleschannels.selectors import channel_for_user

from .problems import FormRefused

__all__ = ["channel_for_user", "require_manager"]


def token_institution(request) -> Institution:
    """The institution the token acts for (the institution field of every create form)."""
    return get_object_or_404(Institution.objects.visible_to(request.user))


def certificate_for_token(request, pk: int) -> Certificate:
    """The certificate if the token's institution has it, with its status, else 404."""
    queryset = Certificate.objects.visible_to(request.user).with_status(timezone.now())
    return get_object_or_404(queryset.select_related("institution"), pk=pk)


def request_for_token(request, pk: int) -> CertificateRequest:
    queryset = CertificateRequest.objects.visible_to(request.user)
    return get_object_or_404(queryset.select_related("institution"), pk=pk)


def form_refuse(form) -> FormRefused:
    """A form's refusals as the API's 400 (problems.FormRefused), field by field. The upload
    form's question for an expiry date it could not read (a prompt on the page, not an error)
    is the `expires_at` field's message here: the client must send it."""
    errors = {
        field: [str(message) for message in messages] for field, messages in form.errors.items()
    }
    prompt = getattr(form, "expiry_prompt", "")
    if prompt:
        errors.setdefault("expires_at", []).append(prompt)
    return FormRefused(errors)


def form_data(request, **fixed) -> dict:
    """The request's fields for a form (JSON or multipart), with `fixed` values set: the
    institution is the token's, whatever the body says."""
    data = request.data
    if hasattr(data, "dict"):  # a form body (QueryDict): one value per field
        items = data.dict()
    elif isinstance(data, dict):
        items = dict(data)
    else:
        raise ParseError("The body must be a JSON object of the operation's fields.")
    items = {key: value for key, value in items.items() if not hasattr(value, "read")}
    items.update(fixed)
    return items
