"""What platform staff can and cannot change in the Django admin.

Certificates, key-and-CSR requests and sales channels are written by the back office's
services, which check what they store, deploy the edge and record the audit trail: in the
admin only their name is edited, and they are neither added nor deleted there. Whatever form
saves them, their models refuse a link to another institution's objects. The audit trail is
read-only and kept whole; notification settings are edited where they are checked; memberships
are the admin's.
"""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from certificates import services as certificate_services
from certificates.models import Certificate, CertificateRequest
from core.models import AuditEvent
from institutions.models import Institution, Membership
from saleschannels import services as channel_services
from saleschannels.admin import SalesChannelAdmin
from saleschannels.models import SalesChannel
from tests.certmgr.test_isolation_admin import change_form_data

pytestmark = pytest.mark.django_db

CROSSING = "Objects of different institutions cannot point at each other"


@pytest.fixture
def as_sam(client, sam):
    """The test client as Sam, staff with every admin permission, as `seed_demo` makes it."""
    sam.is_superuser = True
    sam.save(update_fields=["is_superuser"])
    client.force_login(sam)
    return client


@pytest.fixture
def shop(acme, alice, make_certificate):
    """Acme's shop, serving an uploaded certificate from the edge."""
    certificate = make_certificate(acme, name="Acme shop", hostnames=["shop.acme.test"])
    channel = channel_services.channel_create(
        institution=acme, name="Acme shop", hostname="shop.acme.test", actor=alice
    )
    return channel_services.channel_set_ssl_mode(
        channel=channel, mode="uploaded", certificate=certificate, actor=alice
    )


def admin_url(obj, view: str = "change") -> str:
    meta = obj._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_{view}", args=[obj.pk])


def posted_back(client, obj, **changes):
    """The object's change form as the admin shows it, posted back with `changes`."""
    page = client.get(admin_url(obj))
    assert page.status_code == 200
    data = change_form_data(page, type(obj))
    return client.post(admin_url(obj), {**data, **{k: [v] for k, v in changes.items()}})


def edge_files(settings) -> set[str]:
    edge = settings.CERTMGR_EDGE_DIR
    return {p.name for p in edge.iterdir() if not p.name.startswith(".")}


def test_staff_cannot_move_a_certificate_a_channel_uses_to_another_institution(
    as_sam, client, alice, charlie, opera, shop
):
    """The finding: a certificate of Acme's, used by Acme's shop, posted with the Opera as its
    institution and other material. Only its name changes; Acme's shop still links to it and
    the Opera sees nothing of it."""
    certificate = shop.active_certificate
    before = Certificate.objects.filter(pk=certificate.pk).values().get()
    page = as_sam.get(admin_url(certificate))
    assert set(page.context["adminform"].form.fields) == {"name"}

    response = posted_back(
        as_sam,
        certificate,
        name="Acme shop (renamed)",
        institution=str(opera.pk),
        kind="apple_identity_proof",
        domains='["tickets.opera.test"]',
        expires_at_0="2099-01-01",
        expires_at_1="00:00:00",
        expiry_source="manual",
        certificate_pem="-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        merchant_identifier="merchant.test.opera",
        source="managed",
    )

    assert response.status_code == 302
    after = Certificate.objects.filter(pk=certificate.pk).values().get()
    assert after == {**before, "name": "Acme shop (renamed)"}
    client.force_login(alice)
    assert client.get(shop.get_absolute_url()).status_code == 200
    assert client.get(certificate.get_absolute_url()).status_code == 200
    client.force_login(charlie)
    assert client.get(certificate.get_absolute_url()).status_code == 404
    assert "Acme shop" not in client.get(reverse("certificate_list")).content.decode()


def test_a_channels_certificates_hostname_and_institution_are_read_only(as_sam, opera, shop):
    page = as_sam.get(admin_url(shop))
    assert set(page.context["adminform"].form.fields) == {"name"}
    response = posted_back(
        as_sam, shop, institution=str(opera.pk), hostname="tickets.opera.test", ssl_mode="none"
    )
    assert response.status_code == 302
    shop.refresh_from_db()
    assert (shop.institution.slug, shop.hostname, shop.ssl_mode) == (
        "acme-tickets",
        "shop.acme.test",
        "uploaded",
    )


def test_a_request_cannot_be_given_another_institutions_certificate(
    as_sam, acme, alice, opera, make_certificate
):
    request = certificate_services.certificate_request_create(
        institution=acme,
        kind=CertificateRequest.Kind.APPLE_PAYMENT_PROCESSING,
        merchant_identifier="merchant.test.acme",
        name="Waiting",
        actor=alice,
    )
    theirs = make_certificate(opera, name="Opera's", hostnames=["tickets.opera.test"])

    posted_back(as_sam, request, certificate=str(theirs.pk), institution=str(opera.pk))

    request.refresh_from_db()
    assert (request.certificate, request.institution) == (None, acme)


def test_the_models_refuse_a_link_across_institutions_whatever_form_saves_it(
    as_sam, monkeypatch, opera, shop, make_certificate
):
    """Were the admin to let the links be edited, the model's clean() still refuses them."""
    monkeypatch.setattr(
        SalesChannelAdmin,
        "editable_fields",
        ("name", "institution", "certificate", "active_certificate", "apple_identity_proof"),
    )
    theirs = make_certificate(opera, name="Opera's", hostnames=["shop.acme.test"])
    served = shop.active_certificate

    for changes in (
        {"certificate": str(theirs.pk)},
        {"active_certificate": str(theirs.pk)},
        {"institution": str(opera.pk)},  # it would take Acme's certificate along
    ):
        response = posted_back(as_sam, shop, **changes)
        assert response.status_code == 200, changes
        assert CROSSING in response.content.decode(), changes

    shop.refresh_from_db()
    assert (shop.certificate, shop.active_certificate, shop.institution.slug) == (
        served,
        served,
        "acme-tickets",
    )
    shop.certificate = theirs
    with pytest.raises(ValidationError, match="its certificate belongs to another institution"):
        shop.full_clean()


def test_a_channel_names_only_certificates_of_the_right_kind(acme, shop):
    proof = certificate_services.identity_proof_upload(
        institution=acme,
        name="domain file",
        content=b"proof",
        expires_at=timezone.now() + timedelta(days=30),
        actor=None,
    )
    shop.active_certificate = proof
    with pytest.raises(ValidationError, match="must be an SSL certificate"):
        shop.full_clean()


def test_staff_cannot_delete_in_the_admin_what_the_back_office_deletes(
    as_sam, acme, alice, shop, settings
):
    """Deleting there would skip the confirmation, the audit trail and the edge."""
    request = certificate_services.certificate_request_create(
        institution=acme,
        kind=CertificateRequest.Kind.APPLE_MERCHANT_IDENTITY,
        merchant_identifier="merchant.test.acme",
        name="Waiting",
        actor=alice,
    )
    event = AuditEvent.objects.filter(institution=acme).first()
    files = edge_files(settings)
    for obj in (shop, shop.active_certificate, request, event):
        url = admin_url(obj, "delete")
        assert as_sam.get(url).status_code == 403, url
        assert as_sam.post(url, {"post": "yes"}).status_code == 403, url
        changelist = as_sam.get(
            reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_changelist")
        )
        actions = changelist.context["action_form"]
        assert actions is None or "delete_selected" not in dict(actions.fields["action"].choices), (
            url
        )
        bulk = as_sam.post(
            changelist.request["PATH_INFO"],
            {"action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"},
        )
        assert bulk.status_code in (200, 302, 403), url
        assert type(obj).objects.filter(pk=obj.pk).exists(), url
    assert edge_files(settings) == files


def test_an_institution_with_channels_or_certificates_cannot_be_deleted_in_the_admin(
    as_sam, acme, shop, settings
):
    files = edge_files(settings)
    url = admin_url(acme, "delete")
    page = as_sam.get(url)
    assert page.status_code == 200
    assert page.context["perms_lacking"]  # the admin's "you may not delete these" page
    refused = as_sam.post(url, {"post": "yes"})
    assert refused.status_code in (200, 403)  # the same page again, or 403
    assert Institution.objects.filter(pk=acme.pk).exists()
    assert SalesChannel.objects.filter(pk=shop.pk).exists()
    assert edge_files(settings) == files


def test_no_one_adds_certificates_requests_or_channels_in_the_admin(as_sam):
    for model in (Certificate, CertificateRequest, SalesChannel, AuditEvent):
        meta = model._meta
        url = reverse(f"admin:{meta.app_label}_{meta.model_name}_add")
        assert as_sam.get(url).status_code == 403, url


def test_notification_settings_are_changed_where_they_are_checked(as_sam, acme):
    """A webhook to an internal address would pass the admin's URL field: it is read-only
    there, and the notification settings page checks it."""
    response = posted_back(
        as_sam,
        acme,
        webhook_url="http://127.0.0.1:6379/",
        notification_emails="someone@example.test",
    )
    assert response.status_code == 302
    acme.refresh_from_db()
    assert (acme.webhook_url, acme.notification_emails) == ("", "")


def test_staff_still_move_a_membership(as_sam, bob, opera):
    membership = Membership.objects.get(user=bob)
    response = posted_back(as_sam, membership, institution=str(opera.pk))
    assert response.status_code == 302
    membership.refresh_from_db()
    assert membership.institution == opera
