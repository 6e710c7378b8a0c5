"""Template context shared by every back-office page."""


def certificate_alerts(request) -> dict:
    """Expose the (lazy) alert counts set by CertificateAlertMiddleware to base.html."""
    return {"certificate_alerts": getattr(request, "certificate_alerts", None)}
