"""/api/v1/channels/: the channel pages' rules and words over HTTP (README, "API")."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from certificates import services as certificate_services
from core.models import AuditEvent
from saleschannels.models import SalesChannel

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"


def test_a_manager_token_creates_a_channel_in_its_institution(acme, acme_api):
    response = acme_api.post(
        reverse("api:channel_list"), {"name": "Box office", "hostname": "Tickets.Acme.Example"}
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["hostname"] == "tickets.acme.example"
    assert body["institution"] == acme.slug
    assert body["status"]["status"] == "none"
    assert body["status"]["words"] == "The channel uses no certificate."
    channel = SalesChannel.objects.get(pk=body["id"])
    assert channel.institution == acme
    assert body["verification"] == {
        "verified": False,
        "verified_at": None,
        "method": "",
        "txt_record_name": f"_certmgr-challenge.{channel.hostname}",
        "txt_record_value": channel.verification_token,
        "http_url": f"http://{channel.hostname}/.well-known/certmgr-challenge/"
        f"{channel.verification_token}",
    }


def test_the_write_is_audited_with_the_tokens_name(acme_api):
    response = acme_api.post(
        reverse("api:channel_list"), {"name": "Box office", "hostname": "tickets.acme.example"}
    )

    event = AuditEvent.objects.get(action=AuditEvent.Action.CHANNEL_CREATE)
    assert event.target_id == response.json()["id"]
    assert event.actor is None
    assert event.actor_token == "acme onboarding"
    assert event.actor_name == "API token “acme onboarding”"


def test_a_refused_hostname_is_a_field_error_in_the_pages_words(acme_api):
    response = acme_api.post(reverse("api:channel_list"), {"name": "Local", "hostname": "127.1"})

    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
    problem = response.json()
    assert (problem["type"], problem["title"], problem["status"]) == (
        "about:blank",
        "Bad Request",
        400,
    )
    assert problem["errors"] == {"hostname": ["Enter a hostname, not an IP address."]}


def test_a_taken_hostname_is_refused_like_on_the_page(acme, opera_api, acme_api):
    acme_api.post(reverse("api:channel_list"), {"name": "A", "hostname": "shop.example.test"})

    response = opera_api.post(
        reverse("api:channel_list"), {"name": "B", "hostname": "SHOP.example.test"}
    )

    assert response.status_code == 400
    assert response.json()["errors"] == {
        "hostname": ["This hostname is already used by a sales channel."]
    }


def test_a_viewer_token_reads_but_cannot_write(acme, acme_api, acme_viewer_api):
    created = acme_api.post(
        reverse("api:channel_list"), {"name": "Box office", "hostname": "tickets.acme.example"}
    ).json()
    url = reverse("api:channel_detail", args=[created["id"]])

    assert acme_viewer_api.get(url).status_code == 200
    for response in (
        acme_viewer_api.post(reverse("api:channel_list"), {"name": "X", "hostname": "x.test"}),
        acme_viewer_api.patch(url, {"name": "Renamed"}),
        acme_viewer_api.delete(url),
        acme_viewer_api.post(reverse("api:channel_ssl", args=[created["id"]]), {"mode": "none"}),
    ):
        assert response.status_code == 403
        assert response["Content-Type"] == PROBLEM
        assert "You need the manager role" in response.json()["detail"]
    assert SalesChannel.objects.get().name == "Box office"


def test_another_institutions_channel_is_not_found(acme_api, opera_api):
    created = opera_api.post(
        reverse("api:channel_list"), {"name": "Opera shop", "hostname": "shop.opera.test"}
    ).json()
    url = reverse("api:channel_detail", args=[created["id"]])

    for response in (
        acme_api.get(url),
        acme_api.patch(url, {"name": "Mine"}),
        acme_api.delete(url),
    ):
        assert response.status_code == 404
        assert response.json()["detail"] == "Not found."
        assert "opera" not in response.content.decode().lower()
    listed = acme_api.get(reverse("api:channel_list")).json()
    assert listed["results"] == []


def test_the_list_filters_by_status_ssl_mode_and_hostname(acme_api):
    for hostname in ("a.shop.test", "b.shop.test", "c.other.test"):
        acme_api.post(reverse("api:channel_list"), {"name": hostname, "hostname": hostname})
    url = reverse("api:channel_list")

    assert [c["hostname"] for c in acme_api.get(url, {"q": "shop"}).json()["results"]] == [
        "a.shop.test",
        "b.shop.test",
    ]
    assert len(acme_api.get(url, {"status": "none", "ssl_mode": "none"}).json()["results"]) == 3
    assert acme_api.get(url, {"ssl_mode": "managed"}).json()["results"] == []


def test_the_list_pages_with_a_cursor(acme_api):
    for number in range(5):
        acme_api.post(
            reverse("api:channel_list"), {"name": "s", "hostname": f"s{number}.shop.test"}
        )

    first = acme_api.get(reverse("api:channel_list"), {"page_size": 2}).json()
    second = acme_api.client.get(first["next"], **acme_api.headers).json()

    assert len(first["results"]) == 2 and len(second["results"]) == 2
    assert {c["id"] for c in first["results"]}.isdisjoint(c["id"] for c in second["results"])


def test_a_read_has_an_etag_and_if_none_match_answers_304(acme_api):
    created = acme_api.post(
        reverse("api:channel_list"), {"name": "Box office", "hostname": "tickets.acme.example"}
    ).json()
    url = reverse("api:channel_detail", args=[created["id"]])

    first = acme_api.get(url)
    again = acme_api.get(url, HTTP_IF_NONE_MATCH=first["ETag"])
    acme_api.patch(url, {"name": "Renamed"})
    changed = acme_api.get(url, HTTP_IF_NONE_MATCH=first["ETag"])

    assert first["ETag"].startswith('"')
    assert again.status_code == 304 and again.content == b""
    assert changed.status_code == 200 and changed.json()["name"] == "Renamed"


def test_setting_uploaded_mode_with_a_certificate_deploys_it(acme, acme_api, make_certificate):
    certificate = make_certificate(acme, hostnames=("tickets.acme.example",))
    created = acme_api.post(
        reverse("api:channel_list"), {"name": "Box office", "hostname": "tickets.acme.example"}
    ).json()

    response = acme_api.post(
        reverse("api:channel_ssl", args=[created["id"]]),
        {"mode": "uploaded", "certificate": certificate.pk},
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["ssl_mode"] == "uploaded"
    assert body["active_certificate"]["id"] == certificate.pk
    assert body["status"]["status"] == "uploaded"


def test_an_unusable_certificate_is_refused_with_the_pages_reason(acme, acme_api, make_certificate):
    certificate = make_certificate(acme, hostnames=("other.acme.example",))
    created = acme_api.post(
        reverse("api:channel_list"), {"name": "Box office", "hostname": "tickets.acme.example"}
    ).json()

    response = acme_api.post(
        reverse("api:channel_ssl", args=[created["id"]]),
        {"mode": "uploaded", "certificate": certificate.pk},
    )

    assert response.status_code == 400
    assert response.json()["errors"] == {
        "certificate": ["This certificate is for other.acme.example, not for tickets.acme.example."]
    }


def test_managed_mode_waits_for_proof_of_ownership_in_the_pages_words(acme_api):
    created = acme_api.post(
        reverse("api:channel_list"), {"name": "Box office", "hostname": "tickets.acme.example"}
    ).json()

    acme_api.post(reverse("api:channel_ssl", args=[created["id"]]), {"mode": "managed"})
    status = acme_api.get(reverse("api:channel_status", args=[created["id"]])).json()

    assert status["status"] == "unverified"
    assert status["words"] == (
        "The platform orders no certificate for tickets.acme.example until its owner proves "
        "control of it."
    )


def test_a_channel_is_deleted(acme_api):
    created = acme_api.post(
        reverse("api:channel_list"), {"name": "Box office", "hostname": "tickets.acme.example"}
    ).json()

    response = acme_api.delete(reverse("api:channel_detail", args=[created["id"]]))

    assert response.status_code == 204
    assert not SalesChannel.objects.exists()
    assert AuditEvent.objects.get(action="channel.delete").actor_token == "acme onboarding"


def _channel(api, hostname="tickets.acme.example"):
    return api.post(
        reverse("api:channel_list"), {"name": "Box office", "hostname": hostname}
    ).json()


def test_apple_pay_needs_a_valid_identity_proof_in_the_pages_words(acme, acme_api):
    created = _channel(acme_api)

    response = acme_api.post(
        reverse("api:channel_apple_pay", args=[created["id"]]), {"apple_pay_enabled": True}
    )

    assert response.status_code == 400
    assert response.json()["errors"] == {
        "apple_pay_enabled": [
            "Acme Tickets has no valid Apple Pay identity proof: upload the domain-association "
            "file first (Certificates → New certificate → Apple Pay identity proof)."
        ]
    }


def test_apple_pay_is_enabled_with_the_institutions_proof(acme, alice, acme_api):
    proof = certificate_services.identity_proof_upload(
        institution=acme,
        name="Proof",
        content=b"domain association",
        expires_at=timezone.now() + timedelta(days=100),
        actor=alice,
    )
    created = _channel(acme_api)

    response = acme_api.post(
        reverse("api:channel_apple_pay", args=[created["id"]]), {"apple_pay_enabled": True}
    )

    assert response.status_code == 200, response.content
    apple_pay = response.json()["apple_pay"]
    assert apple_pay["enabled"] is True and apple_pay["identity_proof"] is None
    assert apple_pay["served_proof"] == proof.pk
    assert apple_pay["url"] == (
        "https://tickets.acme.example/.well-known/apple-developer-merchantid-domain-association"
    )


def test_renew_now_is_refused_for_a_channel_that_is_not_managed(acme_api):
    created = _channel(acme_api)

    response = acme_api.post(reverse("api:channel_renew", args=[created["id"]]))

    assert response.status_code == 409
    assert response.json()["detail"] == "Only a managed sales channel is renewed by the platform."


def test_verify_now_without_a_proof_says_so_and_shows_the_findings(acme_api, settings):
    settings.CERTMGR_DNS_RESOLVERS = ["127.0.0.1:9"]  # nothing answers: no TXT record found
    settings.CERTMGR_DNS_TIMEOUT = 0.5
    settings.CERTMGR_PROBE_TIMEOUT = 0.5
    created = _channel(acme_api)

    response = acme_api.post(reverse("api:channel_verify", args=[created["id"]]))

    assert response.status_code == 200
    body = response.json()
    assert (
        body["detail"] == "No proof of ownership found for tickets.acme.example yet: see findings."
    )
    assert body["channel"]["verification"]["verified"] is False
    ownership = body["channel"]["findings"]["ownership"]
    assert [finding["check"] for finding in ownership] == ["txt", "http_token"]
    assert all(not finding["ok"] and finding["words"] for finding in ownership)


def test_a_body_that_is_not_an_object_is_refused_on_its_fields(acme_api):
    created = _channel(acme_api)
    for url in (
        reverse("api:channel_list"),
        reverse("api:channel_ssl", args=[created["id"]]),
        reverse("api:channel_apple_pay", args=[created["id"]]),
    ):
        response = acme_api.post(url, ["mode", "managed"])
        assert response.status_code == 400, url
        assert response["Content-Type"] == PROBLEM
    broken = acme_api.client.post(
        reverse("api:channel_list"),
        "{not json",
        content_type="application/json",
        **acme_api.headers,
    )
    assert broken.status_code == 400 and broken["Content-Type"] == PROBLEM
