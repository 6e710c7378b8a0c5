"""What a digest says: each finding in plain words with what to do, as the e-mail (text and
HTML) and the webhook's JSON (README, "Expiry monitoring"). Rows are rendered here rather than
with template loops: a digest can hold hundreds of findings."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

from certificates import expiry
from certificates.expiry import plural
from certificates.models import (
    Certificate,
)
from core.hostname_display import hostname_text
from institutions.models import Institution
from saleschannels.models import ChannelStatus

from .models import Notification

logger = logging.getLogger(__name__)

# A digest lists this many findings, the most urgent first, and then how many more there are
# (all are recorded and marked sent): a list of thousands helps nobody.
DIGEST_MAX_FINDINGS = 100


@dataclass(frozen=True)
class Finding:
    """One line of a digest, as the e-mail and the webhook show it."""

    kind: str
    threshold: str
    title: str
    name: str
    hostnames: list[str]
    expires_at: datetime | None
    days_left: int | None
    when: str  # "7 days left", "expired 2 days ago"
    action: str
    url: str

    @property
    def expires_text(self) -> str:
        # Formatted here rather than with the |date filter: a digest can list thousands.
        return self.expires_at.strftime("%Y-%m-%d %H:%M UTC") if self.expires_at else ""

    def as_json(self) -> dict:
        return {
            "kind": self.kind,
            "threshold": self.threshold,
            "title": self.title,
            "name": self.name,
            "hostnames": self.hostnames,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "days_left": self.days_left,
            "action": self.action,
            "url": self.url,
        }


def absolute_url(path: str) -> str:
    return settings.CERTMGR_BASE_URL.rstrip("/") + path


class DetailUrls:
    """Absolute URLs of detail pages; reverse() runs once per page kind and run, not per
    finding (a first run can report tens of thousands)."""

    def __init__(self):
        base = settings.CERTMGR_BASE_URL.rstrip("/")
        self.certificate = base + reverse("certificate_detail", args=[999999999])
        self.channel = base + reverse("channel_detail", args=[999999999])

    @staticmethod
    def of(pattern: str, pk: int) -> str:
        return pattern.replace("999999999", str(pk))


def _when(expires_at: datetime | None, now: datetime) -> tuple[int | None, str]:
    """(days left, the same in words), by the one rule of certificates/expiry.py."""
    if expires_at is None:
        return None, ""
    return expiry.days_left(expires_at, now), expiry.expiry_words(expires_at, now)


_PROBE_TITLES = {
    "probe-mismatch": "Serves another certificate than the one deployed",
    "probe-expired": "Serves an expired certificate",
    "probe-failed": "TLS handshake fails",
}
# Probe failures with a typed reason (saleschannels/findings.py).
_PROBE_REASON_TITLES = {"probe_dns": "Hostname does not resolve"}


def finding_view(notification, now: datetime, urls: DetailUrls) -> Finding:
    """What a recorded finding (a row of _PENDING_FIELDS) says to an operator: title, what to
    do, link."""
    details = notification.details or {}
    days_left, when = _when(notification.expires_at, now)
    threshold = notification.threshold
    if notification.kind == Notification.Kind.CERTIFICATE_EXPIRY:
        url = urls.of(urls.certificate, notification.certificate_id)
        expired = notification.expires_at <= now
        title = (
            "Certificate expired"
            if expired
            else f"Certificate {expiry.expires_in_words(notification.expires_at, now)}"
        )
        return Finding(
            kind=notification.kind,
            threshold=threshold,
            title=title,
            name=notification.certificate_name,
            hostnames=list(notification.certificate_domains or [])[:20],
            expires_at=notification.expires_at,
            days_left=days_left,
            when=when,
            action=_certificate_action(
                source=notification.certificate_source,
                kind=notification.certificate_kind,
                expired=expired,
            ),
            url=url,
        )
    url = urls.of(urls.channel, notification.channel_id)
    hostname = details.get("hostname", "")
    # In sentences an IDN reads in Unicode with its ASCII form beside it; `hostnames` (the
    # webhook's JSON too) keeps the stored ASCII form.
    shown = hostname_text(hostname)
    if notification.kind == Notification.Kind.RENEWAL_FAILING:
        title, action = _renewal_words(details, shown)
    elif threshold.startswith("served-"):
        title = f"The certificate served expires: {when}" if when else "Served certificate"
        action = (
            f"{shown} serves a certificate that is not the one deployed for it, and that "
            "one is about to expire. Save the sales channel's SSL management again to "
            "redeploy; if it stays, contact platform support."
        )
    elif details.get("reason_words"):  # a typed reason: its words and advice say it all
        title = _PROBE_REASON_TITLES.get(details.get("reason"), "Live probe failed")
        action = f"{details['reason_words']} {details.get('advice', '')}".strip()
    else:
        title = _PROBE_TITLES.get(threshold, "Served certificate wrong")
        action = (
            f"Visitors of {shown} may see a security error. Check the sales channel's "
            "SSL management and save it again to redeploy; if it stays, contact platform "
            "support." + (f" Probe: {details['error']}" if details.get("error") else "")
        )
    return Finding(
        kind=notification.kind,
        threshold=threshold,
        title=title,
        name=details.get("name", ""),
        hostnames=[hostname] if hostname else [],
        expires_at=notification.expires_at,
        days_left=days_left,
        when=when,
        action=action,
        url=url,
    )


def _renewal_words(details: dict, hostname: str) -> tuple[str, str]:
    """(title, what to do) of a renewal finding: the channel's status as its page says it
    (label, words, advice: monitoring/findings.py stores them). A raw error text that a
    finding recorded before the status existed kept under "error" is never shown."""
    issuing = details.get("status") == ChannelStatus.ISSUANCE_FAILING
    failed = plural(details.get("failures", 0), "attempt")
    parts = [
        f"The platform could not {'issue' if issuing else 'renew'} the certificate of "
        f"{hostname}: {failed} in a row failed."
    ]
    if details.get("label"):
        parts.append(f"Status: {details['label']}.")
    if details.get("words"):
        parts.append(details["words"])
    # Advice only where the reason has some: a guess (say, about DNS) would send people
    # after the wrong problem; the channel page has the checks' findings.
    parts.append(details.get("advice") or "The sales channel page shows what each check found.")
    if not issuing:
        parts.append("The current certificate stays served until a new one is in place.")
    title = "Certificate issuance failing" if issuing else "Certificate renewal failing"
    return title, " ".join(parts)


def _certificate_action(*, source: str, kind: str, expired: bool) -> str:
    if source == Certificate.Source.MANAGED:
        return (
            "The platform renews this certificate itself and is late: open the sales channel "
            "that uses it, check its renewal status and use Renew now."
        )
    if kind.startswith("apple_"):
        return "Renew it in your Apple Developer account, then upload the new file in certmgr."
    urgency = "Visitors see security errors now. " if expired else ""
    return (
        f"{urgency}Get a renewed certificate from your certificate authority, upload it in "
        "certmgr and choose it in the SSL management of the sales channels using this one "
        "(or switch them to a certificate managed by the platform)."
    )


def urgency(finding: Finding):
    """Most urgent first: what expires (or expired) soonest, channel problems first."""
    return (
        finding.expires_at is not None,
        finding.expires_at or datetime.min.replace(tzinfo=UTC),
        finding.name,
    )


def digest_email(
    institution: Institution, findings: list[Finding], recipients: list[str]
) -> EmailMultiAlternatives:
    """The digest e-mail of one run for one institution, plain text and HTML.

    The templates hold the frame; the finding lines are built here (digest_lines_text,
    digest_rows_html), which costs a tenth of a template loop over a hundred findings.
    """
    listed = findings[:DIGEST_MAX_FINDINGS]
    context = {
        "institution": institution,
        "count": len(findings),
        "lines_text": digest_lines_text(listed),
        "rows_html": digest_rows_html(listed),
        "more": max(0, len(findings) - DIGEST_MAX_FINDINGS),
        "list_url": absolute_url(reverse("certificate_list"))
        + f"?institution={institution.slug}&sort=expires_at",
        "settings_url": absolute_url(reverse("institution_notifications", args=[institution.slug])),
    }
    subject = f"[certmgr] {institution.name}: {plural(len(findings), 'certificate finding')}"
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("emails/digest.txt", context),
        to=recipients,
    )
    message.attach_alternative(render_to_string("emails/digest.html", context), "text/html")
    return message


def _hostnames_text(hostnames: list[str]) -> str:
    """The hostnames as people read them: an IDN in Unicode, its ASCII form in brackets."""
    return ", ".join(hostname_text(name) for name in hostnames)


def digest_lines_text(findings: list[Finding]) -> str:
    """The plain-text lines of a digest, one numbered block per finding."""
    lines = []
    for number, finding in enumerate(findings, start=1):
        lines.append(f"{number}. {finding.title}: {finding.name}")
        if finding.hostnames:
            lines.append(f"   Hostnames: {_hostnames_text(finding.hostnames)}")
        if finding.expires_at:
            lines.append(f"   Expiry: {finding.expires_text} ({finding.when})")
        lines.append(f"   What to do: {finding.action}")
        lines.append(f"   {finding.url}")
        lines.append("")
    return "\n".join(lines)


def digest_rows_html(findings: list[Finding]) -> SafeString:
    """The HTML table rows of a digest; every value is escaped (html.escape, as Django's
    escape does, without its per-call lazy-string checks)."""
    rows = []
    for finding in findings:
        expiry = (
            f"{escape(finding.expires_text)}<br>{escape(finding.when)}"
            if finding.expires_at
            else ""
        )
        rows.append(
            "<tr>"
            f"<td><strong>{escape(finding.title)}</strong></td>"
            f'<td><a href="{escape(finding.url)}">{escape(finding.name)}</a></td>'
            f"<td>{escape(_hostnames_text(finding.hostnames))}</td>"
            f"<td>{expiry}</td>"
            f"<td>{escape(finding.action)}</td>"
            "</tr>"
        )
    return mark_safe("\n".join(rows))  # noqa: S308 - built from escaped values only


def webhook_payload(institution: Institution, findings: list[Finding]) -> dict:
    """JSON for the webhook. `text` is a ready-made message for chat tools that show it."""
    listed = findings[:DIGEST_MAX_FINDINGS]
    lines = [f"certmgr: {plural(len(findings), 'finding')} for {institution.name}"]
    lines += [
        f"- {finding.title}: {finding.name} ({_hostnames_text(finding.hostnames[:3])}) "
        f"{finding.url}"
        for finding in listed
    ]
    if len(findings) > len(listed):
        lines.append(f"... and {len(findings) - len(listed)} more")
    return {
        "institution": {"name": institution.name, "slug": institution.slug},
        "text": "\n".join(lines),
        "count": len(findings),
        "findings": [finding.as_json() for finding in listed],
    }
