"""Sales-channel pages ("Point of Sales"): list, detail, create, edit, delete (after a
confirmation page naming what stops being served, deletion.py), Apple Pay. (SSL
Management and *Renew now* start issuance, so they live in acme_client.views.)

Every channel is loaded through selectors.channel_for_user (another institution's channel is a
404) and every write checks the manager role (403) before calling one service.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from certificates.models import Certificate
from core.confirmation import CONFIRM_FIELD, confirmation_sent, confirmed
from core.hostname_display import hostname_unicode
from core.models import AuditEvent
from institutions.models import user_can_manage
from institutions.permissions import require_manager, require_manager_somewhere, user_manages_any

from . import services
from .deletion import channel_deletion
from .forms import ChannelApplePayForm, ChannelForm
from .models import SalesChannel
from .selectors import channel_for_user, channel_identity_proof
from .status import status_context

PAGE_SIZE = 50


def _certificates_with_status(ids, now) -> dict:
    """The certificates with these ids, annotated with their status, in one query."""
    certificates = Certificate.objects.filter(pk__in=[pk for pk in ids if pk]).with_status(now)
    return {certificate.pk: certificate for certificate in certificates.defer("content")}


def report_deployment(request, action) -> bool:
    """Run a service call; a failed edge deployment becomes a message, not a 500."""
    try:
        action()
    except services.DeploymentError as error:
        messages.error(request, str(error))
        return False
    return True


@login_required
@require_GET
def channel_list(request):
    now = timezone.now()
    channels = SalesChannel.objects.visible_to(request.user).select_related("institution")
    query = request.GET.get("q", "").strip()
    if query:
        channels = channels.filter(hostname__icontains=query) | channels.filter(
            name__icontains=query
        )
    page = Paginator(channels.order_by("hostname"), PAGE_SIZE).get_page(request.GET.get("page"))
    active = _certificates_with_status([c.active_certificate_id for c in page], now)
    rows = [
        {
            "channel": channel,
            "active": active.get(channel.active_certificate_id),
        }
        for channel in page
    ]
    return render(
        request,
        "saleschannels/list.html",
        {
            "page": page,
            "rows": rows,
            "q": query,
            "now": now,
            "can_create": user_manages_any(request.user),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def channel_new(request):
    require_manager_somewhere(request.user, to="create sales channels")
    form = ChannelForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            channel = form.save(actor=request.user)
        except services.HostnameTaken as taken:
            form.add_error("hostname", str(taken))
        else:
            messages.success(request, f"Sales channel {channel.hostname} created.")
            return redirect(channel)
    return render(request, "saleschannels/form.html", {"form": form, "channel": None})


@login_required
@require_GET
def channel_detail(request, pk: int):
    channel = channel_for_user(request.user, pk)
    now = timezone.now()
    active = _certificates_with_status([channel.active_certificate_id], now).get(
        channel.active_certificate_id
    )
    events = AuditEvent.objects.filter(target_type="saleschannel", target_id=channel.pk)
    orders = (
        channel.acme_orders.all()[:10] if channel.ssl_mode == SalesChannel.SslMode.MANAGED else []
    )
    return render(
        request,
        "saleschannels/detail.html",
        {
            "channel": channel,
            "apple_proof": channel_identity_proof(channel, now),
            "active": active,
            "expiry_words": active.expiry_words(now) if active else "",
            "events": events.select_related("actor")[:50],
            "orders": orders,
            "can_manage": user_can_manage(request.user, channel.institution),
            **status_context(channel),
        },
    )


@login_required
@require_GET
def channel_status_panel(request, pk: int):
    """The status section of a channel page alone: the page's script fetches it every few
    seconds while a check or an issuance is under way (static/channel-status.js)."""
    channel = channel_for_user(request.user, pk)
    return render(
        request,
        "saleschannels/_status_panel.html",
        {
            "channel": channel,
            "can_manage": user_can_manage(request.user, channel.institution),
            **status_context(channel),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def channel_edit(request, pk: int):
    channel = channel_for_user(request.user, pk)
    require_manager(request.user, channel.institution)
    # An IDN is edited as people read it; the form stores it in ASCII again (hostnames.py).
    initial = {"name": channel.name, "hostname": hostname_unicode(channel.hostname)}
    form = ChannelForm(request.POST or None, initial=initial, user=request.user, channel=channel)
    if request.method == "POST" and form.is_valid():
        try:
            saved = report_deployment(request, lambda: form.save(actor=request.user))
        except services.HostnameTaken as taken:
            form.add_error("hostname", str(taken))
        else:
            if saved:
                messages.success(request, "Sales channel saved.")
            return redirect(channel)
    return render(request, "saleschannels/form.html", {"form": form, "channel": channel})


@login_required
@require_http_methods(["GET", "POST"])
def channel_delete(request, pk: int):
    """GET: what deleting the channel would stop (deletion.py); a POST confirming that very
    impact deletes it. Anything else shows the page again."""
    channel = channel_for_user(request.user, pk)
    require_manager(request.user, channel.institution, to="delete sales channels")
    deletion = channel_deletion(channel, timezone.now())
    if confirmed(request, deletion.token):
        hostname = channel.hostname
        if report_deployment(
            request, lambda: services.channel_delete(channel=channel, actor=request.user)
        ):
            messages.success(request, f"Sales channel {hostname} deleted.")
        return redirect("channel_list")
    return render(
        request,
        "saleschannels/delete.html",
        {
            "channel": channel,
            "deletion": deletion,
            "changed": confirmation_sent(request),
            "confirm_field": CONFIRM_FIELD,
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def channel_apple_pay(request, pk: int):
    """Apple Pay: serve the identity proof on the channel's hostname, and which one."""
    channel = channel_for_user(request.user, pk)
    can_manage = user_can_manage(request.user, channel.institution)
    if request.method == "POST":
        require_manager(request.user, channel.institution, to="change Apple Pay")
    now = timezone.now()
    initial = {
        "apple_pay_enabled": channel.apple_pay_enabled,
        "apple_identity_proof": channel.apple_identity_proof_id,
    }
    data = request.POST if request.method == "POST" else None  # unticking sends nothing
    form = ChannelApplePayForm(data, initial=initial, channel=channel, now=now)
    if request.method == "POST" and form.is_valid():
        services.channel_set_apple_pay(
            channel=channel,
            enabled=form.cleaned_data["apple_pay_enabled"],
            identity_proof=form.cleaned_data["apple_identity_proof"],
            actor=request.user,
        )
        messages.success(request, f"Apple Pay on {channel.hostname} saved.")
        return redirect(channel)
    return render(
        request,
        "saleschannels/apple_pay.html",
        {
            "channel": channel,
            "form": form,
            "can_manage": can_manage,
            "apple_proof": channel_identity_proof(channel, now),
        },
    )
