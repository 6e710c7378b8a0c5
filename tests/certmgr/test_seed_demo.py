"""manage.py seed_demo: the demo data `make run` loads."""

from django.core.management import call_command
from django.utils import timezone

from certificates.models import Certificate, CertificateStatus
from institutions.models import Institution, Membership
from saleschannels.models import SalesChannel


def test_it_loads_each_status_once_per_institution_and_is_idempotent(db, capsys):
    call_command("seed_demo")
    call_command("seed_demo")

    assert Institution.objects.count() == 2
    assert Membership.objects.filter(role="manager").count() == 2
    assert Membership.objects.filter(role="viewer").count() == 2
    assert SalesChannel.objects.count() == 3
    # Each serves its uploaded certificate, and says so (one status per channel).
    assert set(SalesChannel.objects.values_list("status", flat=True)) == {"uploaded"}
    statuses = Certificate.objects.with_status(timezone.now()).values_list("status", flat=True)
    assert sorted(statuses) == sorted(
        [
            CertificateStatus.VALID,
            CertificateStatus.EXPIRING,
            CertificateStatus.CRITICAL,
            CertificateStatus.EXPIRED,
        ]
        * 2
    )
    assert all(certificate.has_private_key for certificate in Certificate.objects.all())
    output = capsys.readouterr().out
    assert "alice" in output and "certmgr-demo" in output
