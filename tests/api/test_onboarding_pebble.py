"""A shop onboarded from nothing to a served certificate through the API alone (README,
"API"), over real HTTP against the live application, with a real ACME CA (Pebble, its DNS
server pebble-challtestsrv resolving every name to 127.0.0.1), a real broker (Redis) and a
real ACME worker process (`manage.py acme_worker`).

The integration creates the channel, sets it managed, proves ownership with *Verify now*
(certmgr answers the HTTP token on the shop's hostname itself), polls the channel's status
until `active`, and downloads the chain: the certificate Pebble issued for the hostname."""

import pytest
import requests
from cryptography import x509
from django.urls import reverse

from tests.acme_client.test_worker_pebble import wait_for
from tests.celery_worker import acme_worker_run, broker, worker_env
from tests.redis import redis_run

pytestmark = pytest.mark.django_db(transaction=True)

HOSTNAME = "shop.onboarding.test"


class Integration:
    """The platform's onboarding system: HTTP requests with its token, nothing else."""

    def __init__(self, base_url: str, secret: str):
        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {secret}"

    def call(self, method: str, name: str, *args, json=None, expected=200):
        response = self.session.request(
            method, self.base_url + reverse(name, args=args), json=json, timeout=30
        )
        assert response.status_code == expected, (response.status_code, response.text)
        return response


def test_a_shop_is_onboarded_through_the_api_alone(
    live_server, pebble, tmp_path, acme, alice, make_token
):
    port = int(live_server.url.rsplit(":", 1)[1])
    _, secret = make_token(acme, role="manager", name="onboarding system", actor=alice)
    api = Integration(live_server.url, secret)
    with redis_run(workdir=tmp_path / "redis") as redis:
        env = {
            **worker_env(tmp_path=tmp_path, broker_url=redis.url, pebble=pebble, http_port=port),
            "ACME_ORDER_TIMEOUT": "60",
        }
        with (
            broker(redis.url),
            acme_worker_run(env=env, workdir=tmp_path / "acme-worker") as worker,
        ):
            channel = api.call(
                "POST",
                "api:channel_list",
                json={"name": "Box office", "hostname": HOSTNAME},
                expected=201,
            ).json()
            assert channel["status"]["status"] == "none"
            managed = api.call(
                "POST", "api:channel_ssl", channel["id"], json={"mode": "managed"}
            ).json()
            assert managed["status"]["status"] == "unverified"
            instructions = managed["verification"]
            assert instructions["txt_record_name"] == f"_certmgr-challenge.{HOSTNAME}"

            verified = api.call("POST", "api:channel_verify", channel["id"]).json()
            assert verified["detail"] == f"{HOSTNAME} is verified.", verified
            assert verified["channel"]["verification"]["method"] == "http"

            def active():
                status = api.call("GET", "api:channel_status", channel["id"]).json()
                assert status["status"] not in ("issuance_failing", "waiting_dns"), status
                return status if status["status"] == "active" else None

            status = wait_for(active, timeout=120, what=f"active\n{worker.log_tail()}")

    assert status["words"] == "The platform's certificate is served and renews automatically."
    detail = api.call("GET", "api:channel_detail", channel["id"]).json()
    certificate_id = detail["active_certificate"]["id"]
    certificate = api.call("GET", "api:certificate_detail", certificate_id).json()
    assert certificate["source"] == "managed"
    assert certificate["domains"] == [HOSTNAME]
    assert certificate["used_by"] == [
        {"id": channel["id"], "name": "Box office", "hostname": HOSTNAME}
    ]
    chain = api.call("GET", "api:certificate_download", certificate_id)
    assert chain.headers["Content-Type"] == "application/x-pem-file"
    assert b"PRIVATE KEY" not in chain.content
    leaf, *intermediates = x509.load_pem_x509_certificates(chain.content)
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [HOSTNAME]
    assert intermediates, "the chain carries Pebble's intermediate"
