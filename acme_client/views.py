"""Pages that start issuance, and the HTTP-01 answer.

- SSL Management of a sales channel (managed, uploaded or none, and for managed the ACME
  profile among those the CA's directory lists: profiles.ca_profiles) and *Renew now*: loaded
  through saleschannels.selectors.channel_for_user (another institution's channel is a 404),
  writes need the manager role (403), then one call to scheduling.
- *Verify now* and *Check now* (README, "Onboarding a hostname"): the proof of ownership and
  the pre-flight checks run at once, in the request (each lookup and fetch is bounded by
  CERTMGR_DNS_TIMEOUT / CERTMGR_PROBE_TIMEOUT); the channel page then shows every finding.
- GET /.well-known/acme-challenge/<token> on a sales channel's host.
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from institutions.models import user_can_manage
from institutions.permissions import require_manager
from saleschannels.forms import ChannelSslForm
from saleschannels.models import SalesChannel
from saleschannels.selectors import channel_for_user
from saleschannels.views import report_deployment

from . import ownership, scheduling
from .challenges import challenge_answer
from .profiles import CaProfiles, ca_profiles


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


@login_required
@require_http_methods(["GET", "POST"])
def channel_ssl(request, pk: int):
    """SSL Management: managed by the platform, an uploaded certificate, or none."""
    channel = channel_for_user(request.user, pk)
    can_manage = user_can_manage(request.user, channel.institution)
    if request.method == "POST":
        require_manager(request.user, channel.institution, to="change SSL management")
    now = timezone.now()
    # Only a manager sees the choice, so only then is the CA's directory read (cached).
    offered = ca_profiles() if can_manage else CaProfiles(known=False)
    initial = {
        "mode": channel.ssl_mode,
        "certificate": channel.certificate_id,
        "acme_profile": channel.acme_profile,
    }
    form = ChannelSslForm(
        request.POST or None,
        initial=initial,
        channel=channel,
        now=now,
        profiles=offered.profiles if offered.known else None,
    )
    if request.method == "POST" and form.is_valid():
        mode = form.cleaned_data["mode"]
        if report_deployment(
            request,
            lambda: scheduling.channel_ssl_mode_choose(
                channel=channel,
                mode=mode,
                certificate=form.cleaned_data["certificate"],
                actor=request.user,
                acme_profile=form.cleaned_data["acme_profile"],
            ),
        ):
            messages.success(request, f"SSL management of {channel.hostname} saved.")
            if mode == SalesChannel.SslMode.MANAGED and channel.hostname_verified_at is None:
                messages.info(
                    request,
                    f"No certificate is ordered for {channel.hostname} until "
                    f"{channel.institution.name} proves it controls the name: see Proof of "
                    "ownership below.",
                )
        return redirect(channel)
    return render(
        request,
        "saleschannels/ssl.html",
        {
            "channel": channel,
            "form": form,
            "can_manage": can_manage,
            "now": now,
            "profiles_known": offered.known,
            "profiles": sorted(offered.profiles.items()),
            "profile_default": settings.ACME_PROFILE,
        },
    )


@login_required
@require_POST
def channel_renew(request, pk: int):
    """Renew now (managed channels): queue an issuance, skipping the schedule and backoff."""
    channel = channel_for_user(request.user, pk)
    require_manager(request.user, channel.institution, to="renew its certificate")
    if channel.ssl_mode != SalesChannel.SslMode.MANAGED:
        messages.error(request, "Only a managed sales channel is renewed by the platform.")
    elif channel.hostname_verified_at is None:
        messages.error(
            request, f"Prove control of {channel.hostname} first: see Proof of ownership."
        )
    elif scheduling.channel_renew_now(channel=channel, actor=request.user):
        messages.success(request, f"Renewal of {channel.hostname} queued.")
    else:
        messages.info(request, f"A renewal of {channel.hostname} is already in progress.")
    return redirect(channel)


@login_required
@require_POST
def channel_verify(request, pk: int):
    """Verify now: look for the TXT record or the HTTP token at once."""
    channel = channel_for_user(request.user, pk)
    require_manager(request.user, channel.institution, to="verify its hostname")
    if channel.hostname_verified_at is not None:
        messages.info(request, f"{channel.hostname} is verified already.")
        return redirect(channel)
    ownership.channel_verify_now(channel)
    if channel.hostname_verified_at is not None:
        messages.success(request, f"{channel.hostname} is verified.")
    else:
        messages.error(
            request, f"No proof of ownership found for {channel.hostname} yet: see below."
        )
    return redirect(channel)


@login_required
@require_POST
def channel_check(request, pk: int):
    """Check now: run the DNS, CAA and HTTP-01 checks at once (no order is placed by it)."""
    channel = channel_for_user(request.user, pk)
    require_manager(request.user, channel.institution, to="check its hostname")
    findings = ownership.channel_check_now(channel)
    failing = [finding for finding in findings if not finding.ok]
    if failing:
        messages.error(
            request,
            f"{len(failing)} of {len(findings)} checks of {channel.hostname} fail: see below.",
        )
    else:
        messages.success(request, f"Every check of {channel.hostname} passes.")
    return redirect(channel)
