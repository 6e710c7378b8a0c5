"""Celery tasks of expiry monitoring, their beat schedule, and the probe after a deployment."""

import logging
import socket

import pytest
from django.conf import settings as django_settings
from django.urls import reverse

from monitoring import tasks
from saleschannels import services as channel_services
from saleschannels import tasks as channel_tasks
from saleschannels.models import ProbeFailure, ProbeStatus, SalesChannel

pytestmark = pytest.mark.django_db


def test_beat_runs_the_checks_on_schedule():
    schedule = django_settings.CELERY_BEAT_SCHEDULE
    assert schedule["check-expiry"] == {
        "task": "monitoring.tasks.check_expiry",
        "schedule": django_settings.CERTMGR_CHECK_EXPIRY_INTERVAL,
    }
    assert django_settings.CERTMGR_CHECK_EXPIRY_INTERVAL == 3600
    assert schedule["probe-channels"]["task"] == "saleschannels.tasks.probe_channels"
    assert django_settings.CERTMGR_PROBE_INTERVAL == 4 * 3600
    assert schedule["staff-summary"]["task"] == "monitoring.tasks.staff_summary"
    assert schedule["staff-summary"]["schedule"].hour == {7}
    from certmgr.celery import app

    app.loader.import_default_modules()  # autodiscovery, as a worker does on start
    for entry in schedule.values():
        assert entry["task"] in app.tasks


def test_check_expiry_records_then_queues_one_digest_per_institution(
    acme, opera, make_certificate, mailoutbox, monkeypatch
):
    acme.notification_emails = "ops@acme.test"
    acme.save()
    opera.notification_emails = "it@opera.test"
    opera.save()
    make_certificate(acme, days_left=5)
    make_certificate(acme, days_left=12)
    make_certificate(opera, days_left=2)
    queued = []
    monkeypatch.setattr(tasks.send_digest, "delay", queued.append)
    assert tasks.check_expiry() == 3
    assert sorted(queued) == sorted([acme.pk, opera.pk])
    assert mailoutbox == []  # sending is the queued tasks' job
    assert tasks.send_digest(acme.pk) == 2
    assert [message.to for message in mailoutbox] == [["ops@acme.test"]]
    assert tasks.send_digest(acme.pk) == 0  # sent once
    queued.clear()
    assert tasks.check_expiry() == 0
    assert queued == [opera.pk]  # still unsent: queued again
    assert tasks.send_digest(opera.pk) == 1
    assert [message.to for message in mailoutbox] == [["ops@acme.test"], ["it@opera.test"]]


def test_a_broker_that_cannot_take_a_digest_loses_no_finding(
    acme, make_certificate, mailoutbox, monkeypatch
):
    make_certificate(acme, days_left=5)

    def broker_down(institution_id):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(tasks.send_digest, "delay", broker_down)
    assert tasks.check_expiry() == 1
    assert mailoutbox == []
    assert tasks.send_digest(acme.pk) == 1  # still there for the next run to queue


@pytest.fixture
def refused_address(settings):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    settings.CERTMGR_PROBE_ADDRESS = f"127.0.0.1:{port}"
    settings.CERTMGR_PROBE_TIMEOUT = 2.0


def test_probe_channel_records_what_the_edge_serves(acme, refused_address):
    channel = SalesChannel.objects.create(
        institution=acme, name="Shop", hostname="shop.acme.test", ssl_mode="managed"
    )
    assert channel_tasks.probe_channel(channel.pk) == ProbeStatus.FAILED
    channel.refresh_from_db()
    assert channel.probe_failure == ProbeFailure.REFUSED
    assert channel_tasks.probe_channel(channel.pk + 1000) is None  # deleted meanwhile


def test_saving_ssl_management_queues_a_probe_of_the_channel(
    client, alice, acme, make_certificate, monkeypatch, django_capture_on_commit_callbacks
):
    certificate = make_certificate(acme, hostnames=["shop.acme.test"])
    channel = SalesChannel.objects.create(institution=acme, name="Shop", hostname="shop.acme.test")
    queued = []
    monkeypatch.setattr(channel_tasks.probe_channel, "delay", queued.append)
    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("channel_ssl", args=[channel.pk]),
            {"mode": "uploaded", "certificate": certificate.pk},
        )
    assert response.status_code == 302
    assert queued == [channel.pk]


def test_the_probe_after_a_deployment_is_queued_once_after_commit_with_the_channel_id(
    acme, monkeypatch, django_capture_on_commit_callbacks
):
    channel = SalesChannel.objects.create(institution=acme, name="Shop", hostname="shop.acme.test")
    queued = []
    monkeypatch.setattr(channel_tasks.probe_channel, "delay", queued.append)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        channel_services.probe_after_deploy(channel)
        assert queued == []  # not before the deployment's transaction commits
    assert len(callbacks) == 1
    assert queued == []
    callbacks[0]()  # the commit

    assert queued == [channel.pk]


def test_a_broker_that_cannot_take_the_probe_is_logged_and_does_not_fail_the_deployment(
    acme, monkeypatch, django_capture_on_commit_callbacks, caplog
):
    channel = SalesChannel.objects.create(institution=acme, name="Shop", hostname="shop.acme.test")
    attempts = []

    def broker_down(channel_id):
        attempts.append(channel_id)
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(channel_tasks.probe_channel, "delay", broker_down)
    with (
        caplog.at_level(logging.WARNING, logger=channel_services.logger.name),
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        channel_services.probe_after_deploy(channel)  # raises nothing, at commit either

    assert len(callbacks) == 1
    assert attempts == [channel.pk]
    warnings = [
        record
        for record in caplog.records
        if record.name == channel_services.logger.name and record.levelno == logging.WARNING
    ]
    assert [record.getMessage() for record in warnings] == [
        f"could not queue a probe of channel {channel.pk}: broker unreachable"
    ]
