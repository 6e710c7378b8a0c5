"""/api/v1/channels/: sales channels over HTTP (README, "API"), the same rules and words as
the channel pages (saleschannels/views.py, acme_client/views.py): loaded through
channel_for_user (another institution's channel is a 404), writes need the manager role
(403), input checked by the pages' forms, one service call each."""

from django.db.models import Q
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.decorators import api_view
from rest_framework.response import Response

from acme_client import ownership, scheduling
from acme_client.profiles import CaProfiles, ca_profiles
from certificates.models import Certificate
from institutions.permissions import require_manager_somewhere
from saleschannels import services
from saleschannels.forms import ChannelApplePayForm, ChannelForm, ChannelSslForm
from saleschannels.models import ChannelStatus, SalesChannel

from .access import channel_for_user, form_data, form_refuse, require_manager, token_institution
from .etags import etag_on_reads
from .pagination import ApiCursorPagination
from .presenters import channel_present
from .problems import Conflict, problem
from .serializers import (
    ActionResultSerializer,
    ApplePayInputSerializer,
    ChannelInputSerializer,
    ChannelPageSerializer,
    ChannelSerializer,
    ChannelUpdateSerializer,
    SslModeInputSerializer,
    StatusSerializer,
)


def _present(channel: SalesChannel) -> dict:
    now = timezone.now()
    active = None
    if channel.active_certificate_id:
        active = (
            Certificate.objects.with_status(now)
            .defer("content")
            .get(pk=channel.active_certificate_id)
        )
    return channel_present(channel, now, active)


def _reloaded(request, channel: SalesChannel) -> SalesChannel:
    return channel_for_user(request.user, channel.pk)


def _deployed(action) -> Response | None:
    """Run a service call; a failed edge deployment is a 503 problem in the page's words."""
    try:
        action()
    except services.DeploymentError as error:
        return problem(503, str(error))
    return None


@extend_schema(
    methods=["GET"],
    operation_id="channels_list",
    parameters=[
        OpenApiParameter("status", str, enum=ChannelStatus.values, description="Its status."),
        OpenApiParameter("ssl_mode", str, enum=SalesChannel.SslMode.values),
        OpenApiParameter("q", str, description="Search in hostnames and names."),
    ],
    responses={200: ChannelPageSerializer},
)
@extend_schema(
    methods=["POST"],
    operation_id="channels_create",
    request=ChannelInputSerializer,
    responses={201: ChannelSerializer},
)
@etag_on_reads
@api_view(["GET", "POST"])
def channel_list(request):
    if request.method == "POST":
        return _channel_create(request)
    channels = SalesChannel.objects.visible_to(request.user).select_related("institution")
    status = request.query_params.get("status", "")
    if status:
        channels = channels.filter(status=status)
    ssl_mode = request.query_params.get("ssl_mode", "")
    if ssl_mode:
        channels = channels.filter(ssl_mode=ssl_mode)
    query = request.query_params.get("q", "").strip()
    if query:
        channels = channels.filter(Q(hostname__icontains=query) | Q(name__icontains=query))
    paginator = ApiCursorPagination()
    page = paginator.paginate_queryset(channels, request)
    now = timezone.now()
    actives = {
        certificate.pk: certificate
        for certificate in Certificate.objects.with_status(now)
        .defer("content")
        .filter(pk__in=[channel.active_certificate_id for channel in page])
    }
    rows = [
        channel_present(channel, now, actives.get(channel.active_certificate_id))
        for channel in page
    ]
    return paginator.get_paginated_response(ChannelSerializer(rows, many=True).data)


def _channel_create(request):
    require_manager_somewhere(request.user, to="create sales channels")
    institution = token_institution(request)
    form = ChannelForm(form_data(request, institution=institution.pk), user=request.user)
    if not form.is_valid():
        raise form_refuse(form)
    try:
        channel = form.save(actor=request.user)
    except services.HostnameTaken as taken:
        form.add_error("hostname", str(taken))
        raise form_refuse(form) from None
    channel = _reloaded(request, channel)
    return Response(ChannelSerializer(_present(channel)).data, status=201)


@extend_schema(methods=["GET"], operation_id="channels_retrieve", responses=ChannelSerializer)
@extend_schema(
    methods=["PATCH"],
    operation_id="channels_update",
    request=ChannelUpdateSerializer,
    responses=ChannelSerializer,
)
@extend_schema(methods=["DELETE"], operation_id="channels_delete", responses={204: None})
@etag_on_reads
@api_view(["GET", "PATCH", "DELETE"])
def channel_detail(request, pk: int):
    channel = channel_for_user(request.user, pk)
    if request.method == "GET":
        return Response(ChannelSerializer(_present(channel)).data)
    if request.method == "DELETE":
        require_manager(request.user, channel.institution, to="delete sales channels")
        failed = _deployed(lambda: services.channel_delete(channel=channel, actor=request.user))
        return failed or Response(status=204)
    require_manager(request.user, channel.institution)
    data = form_data(request)
    data.setdefault("name", channel.name)
    data.setdefault("hostname", channel.hostname)
    form = ChannelForm(data, user=request.user, channel=channel)
    if not form.is_valid():
        raise form_refuse(form)
    try:
        failed = _deployed(lambda: form.save(actor=request.user))
    except services.HostnameTaken as taken:
        form.add_error("hostname", str(taken))
        raise form_refuse(form) from None
    return failed or Response(ChannelSerializer(_present(_reloaded(request, channel))).data)


@extend_schema(operation_id="channels_status", responses=StatusSerializer)
@etag_on_reads
@api_view(["GET"])
def channel_status(request, pk: int):
    """The channel's status alone, with its typed reason and the pages' words (to poll)."""
    channel = channel_for_user(request.user, pk)
    return Response(StatusSerializer(_present(channel)["status"]).data)


@extend_schema(
    operation_id="channels_ssl", request=SslModeInputSerializer, responses=ChannelSerializer
)
@api_view(["POST"])
def channel_ssl(request, pk: int):
    """SSL Management: managed, uploaded (with the certificate's id) or none."""
    channel = channel_for_user(request.user, pk)
    require_manager(request.user, channel.institution, to="change SSL management")
    data = form_data(request)
    # The CA's directory (cached) is read only when its profiles matter: managed mode.
    managed = data.get("mode") == SalesChannel.SslMode.MANAGED
    offered = ca_profiles() if managed else CaProfiles(known=False)
    if data.get("certificate") is None:
        data.pop("certificate", None)
    form = ChannelSslForm(
        data,
        channel=channel,
        now=timezone.now(),
        profiles=offered.profiles if offered.known else None,
    )
    if not form.is_valid():
        raise form_refuse(form)
    failed = _deployed(
        lambda: scheduling.channel_ssl_mode_choose(
            channel=channel,
            mode=form.cleaned_data["mode"],
            certificate=form.cleaned_data["certificate"],
            actor=request.user,
            acme_profile=form.cleaned_data["acme_profile"],
        )
    )
    return failed or Response(ChannelSerializer(_present(_reloaded(request, channel))).data)


def _action_result(request, channel: SalesChannel, detail: str) -> Response:
    channel = _reloaded(request, channel)
    return Response({"detail": detail, "channel": ChannelSerializer(_present(channel)).data})


@extend_schema(operation_id="channels_verify", request=None, responses=ActionResultSerializer)
@api_view(["POST"])
def channel_verify(request, pk: int):
    """Verify now: look for the TXT record or the HTTP token at once."""
    channel = channel_for_user(request.user, pk)
    require_manager(request.user, channel.institution, to="verify its hostname")
    if channel.hostname_verified_at is not None:
        return _action_result(request, channel, f"{channel.hostname} is verified already.")
    ownership.channel_verify_now(channel)
    if channel.hostname_verified_at is not None:
        return _action_result(request, channel, f"{channel.hostname} is verified.")
    return _action_result(
        request, channel, f"No proof of ownership found for {channel.hostname} yet: see findings."
    )


@extend_schema(operation_id="channels_check", request=None, responses=ActionResultSerializer)
@api_view(["POST"])
def channel_check(request, pk: int):
    """Check now: the DNS, CAA and HTTP-01 checks at once (no order is placed by it)."""
    channel = channel_for_user(request.user, pk)
    require_manager(request.user, channel.institution, to="check its hostname")
    findings = ownership.channel_check_now(channel)
    failing = [finding for finding in findings if not finding.ok]
    if failing:
        detail = (
            f"{len(failing)} of {len(findings)} checks of {channel.hostname} fail: see findings."
        )
    else:
        detail = f"Every check of {channel.hostname} passes."
    return _action_result(request, channel, detail)


@extend_schema(operation_id="channels_renew", request=None, responses=ActionResultSerializer)
@api_view(["POST"])
def channel_renew(request, pk: int):
    """Renew now (managed channels): queue an issuance, skipping the schedule and backoff."""
    channel = channel_for_user(request.user, pk)
    require_manager(request.user, channel.institution, to="renew its certificate")
    if channel.ssl_mode != SalesChannel.SslMode.MANAGED:
        raise Conflict("Only a managed sales channel is renewed by the platform.")
    if channel.hostname_verified_at is None:
        raise Conflict(f"Prove control of {channel.hostname} first: see Proof of ownership.")
    if scheduling.channel_renew_now(channel=channel, actor=request.user):
        return _action_result(request, channel, f"Renewal of {channel.hostname} queued.")
    return _action_result(
        request, channel, f"A renewal of {channel.hostname} is already in progress."
    )


@extend_schema(
    operation_id="channels_apple_pay", request=ApplePayInputSerializer, responses=ChannelSerializer
)
@api_view(["POST"])
def channel_apple_pay(request, pk: int):
    """Apple Pay: serve the identity proof on the channel's hostname, and which one."""
    channel = channel_for_user(request.user, pk)
    require_manager(request.user, channel.institution, to="change Apple Pay")
    data = form_data(request)
    if data.get("apple_pay_enabled") in (False, "false", "0", 0, None):
        data.pop("apple_pay_enabled", None)  # as an unticked box: nothing sent
    if data.get("apple_identity_proof") is None:
        data.pop("apple_identity_proof", None)
    form = ChannelApplePayForm(data, channel=channel, now=timezone.now())
    if not form.is_valid():
        raise form_refuse(form)
    services.channel_set_apple_pay(
        channel=channel,
        enabled=form.cleaned_data["apple_pay_enabled"],
        identity_proof=form.cleaned_data["apple_identity_proof"],
        actor=request.user,
    )
    return Response(ChannelSerializer(_present(_reloaded(request, channel))).data)
