"""Expiry monitoring's pages: the dashboard (the back office's home) and an institution's
notification settings, with their test messages, and the history of the user's institutions.

What they show is read through querysets scoped to the user's institutions (another
institution is a 404); changing the settings needs the manager role (403).
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from certificates.models import CertificateStatus
from institutions.models import Institution, user_can_manage
from institutions.permissions import institution_for_user, require_manager
from institutions.signing_secrets import ROTATION_OVERLAP

from . import charts, dashboard, history, notification_tests, services
from .forms import HistoryFiltersForm, NotificationSettingsForm

HISTORY_PAGE_SIZE = 50


@login_required
@require_GET
def home(request):
    """The dashboard: counts by status, the expiry timeline, the channels needing action."""
    now = timezone.now()
    counts = dashboard.status_counts(user=request.user, now=now)
    timeline = dashboard.expiry_timeline(user=request.user, now=now)
    list_url = reverse("certificate_list")
    return render(
        request,
        "dashboard.html",
        {
            "status_cards": [
                {"status": status, "label": label, "count": counts[status]}
                for status, label in CertificateStatus.choices
            ],
            "total": sum(counts.values()),
            "timeline_svg": charts.expiry_timeline_svg(timeline, list_url=list_url),
            "timeline": [
                {
                    "week": week,
                    "url": charts.week_url(list_url, week),
                    "segments": [
                        (status, week.counts[status])
                        for status in charts.SEGMENT_ORDER
                        if week.counts.get(status)
                    ],
                }
                for week in timeline
            ],
            "channel_actions": dashboard.channel_actions(user=request.user, now=now),
        },
    )


@never_cache  # a manager's page shows the webhook signing secret
@login_required
@require_http_methods(["GET", "POST"])
def institution_notifications(request, slug: str):
    institution = institution_for_user(request.user, slug)
    can_manage = user_can_manage(request.user, institution)
    if request.method == "POST":
        require_manager(request.user, institution, to="change notification settings")
    initial = {
        "notification_emails": institution.notification_emails,
        "webhook_url": institution.webhook_url,
    }
    form = NotificationSettingsForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        services.institution_notifications_update(
            institution=institution,
            notification_emails=form.cleaned_data["notification_emails"],
            webhook_url=form.cleaned_data["webhook_url"],
            actor=request.user,
        )
        messages.success(request, f"Notification settings of {institution.name} saved.")
        return redirect("institution_notifications", slug=institution.slug)
    return render(
        request,
        "institutions/notifications.html",
        {
            "institution": institution,
            "form": form,
            "can_manage": can_manage,
            "test_limit": notification_tests.NOTIFICATION_TEST_LIMIT,
            # The signing secret, for managers only: they configure the receiver.
            "signing_secret": institution.webhook_signing_secret if can_manage else "",
            "previous_secret_until": institution.webhook_secret_previous_until(timezone.now()),
            "rotation_overlap_hours": int(ROTATION_OVERLAP.total_seconds() // 3600),
        },
    )


@login_required
@require_POST
def institution_webhook_secret_rotate(request, slug: str):
    """A new webhook signing secret; the previous one keeps signing for a while."""
    institution = institution_for_user(request.user, slug)
    require_manager(request.user, institution, to="replace the webhook signing secret")
    services.webhook_secret_rotate(institution=institution, actor=request.user)
    messages.success(
        request,
        "New signing secret made. For the next "
        f"{int(ROTATION_OVERLAP.total_seconds() // 3600)} hours every webhook message is signed "
        "with both the new and the previous secret: give your receiver the new one in that time.",
    )
    return redirect("institution_notifications", slug=institution.slug)


@login_required
@require_POST
def institution_notification_test_email(request, slug: str):
    """Send a test e-mail to where the digests go; the settings page says what came of it."""
    return _notification_test(request, slug, notification_tests.notification_test_email_send)


@login_required
@require_POST
def institution_notification_test_webhook(request, slug: str):
    """POST a test event to the saved webhook; the settings page says what came of it."""
    return _notification_test(request, slug, notification_tests.notification_test_webhook_send)


def _notification_test(request, slug: str, send):
    institution = institution_for_user(request.user, slug)
    require_manager(request.user, institution, to="send test notifications")
    try:
        outcome = send(institution=institution, actor=request.user)
    except notification_tests.NotificationTestLimited as limited:
        messages.error(request, str(limited))
    else:
        (messages.success if outcome.delivered else messages.error)(request, outcome.words)
    return redirect("institution_notifications", slug=institution.slug)


@login_required
@require_GET
def history_list(request):
    """Every audit event of the user's institutions, newest first, filtered and paginated."""
    institutions = list(Institution.objects.visible_to(request.user).order_by("name"))
    form = HistoryFiltersForm(
        request.GET, actors=history.history_actors(request.user), institutions=institutions
    )
    form.is_valid()  # a filter in error is simply absent from cleaned_data
    filters = form.filters()
    if filters.target_id is not None and not history.history_object_known(
        request.user, filters.target_type, filters.target_id
    ):
        raise Http404("No such object.")
    events = history.history_events(request.user, filters)
    page = Paginator(events, HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "institutions/history.html",
        {
            "form": form,
            "filters": filters,
            "page": page,
            "rows": history.history_rows(request.user, list(page)),
            "show_institution": len(institutions) > 1,
            "query_without_page": query.urlencode(),
        },
    )
