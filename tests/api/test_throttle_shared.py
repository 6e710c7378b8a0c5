"""One API token's request budget is one count across web processes when the cache is shared
(README, "API" and "Configuration": CACHE_URL). Two real web processes on one database and
one real redis-server: requests spread over both are counted together, and the count lives in
Redis, not in either process."""

import urllib.error
import urllib.request

import pytest
import redis
from django.conf import settings
from django.urls import reverse

from tests.celery_worker import database_url
from tests.redis import redis_run
from tests.web import web_run

pytestmark = pytest.mark.django_db(transaction=True)

BUDGET = 4


def _status(web, path: str, secret: str) -> int:
    request = urllib.request.Request(
        web.url + path, headers={"Authorization": f"Bearer {secret}", "Host": "127.0.0.1"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as answer:
        return answer.code


def test_two_web_processes_count_one_tokens_requests_together_in_redis(tmp_path, acme, make_token):
    _, secret = make_token(acme, role="viewer", name="shared budget")
    path = reverse("api:channel_list")
    with redis_run(workdir=tmp_path / "redis") as server:
        cache_url = server.url.removesuffix("/0") + "/1"
        env = {
            "DATABASE_URL": database_url(),
            "SECRET_KEY": settings.SECRET_KEY,
            "CERTMGR_ENCRYPTION_KEYS": ",".join(settings.CERTMGR_ENCRYPTION_KEYS),
            "CERTMGR_VAR_DIR": str(tmp_path / "web-var"),
            "CERTMGR_API_THROTTLE_RATE": f"{BUDGET}/hour",
            "CACHE_URL": cache_url,
        }
        with (
            web_run(env=env, workdir=tmp_path / "web-a", name="web-a") as first,
            web_run(env=env, workdir=tmp_path / "web-b", name="web-b") as second,
        ):
            answers = [_status(web, path, secret) for web in (first, second) * (BUDGET // 2)]
            over = [_status(first, path, secret), _status(second, path, secret)]
            keys = redis.Redis.from_url(cache_url).keys("*throttle_api_token*")

    assert answers == [200] * BUDGET
    assert over == [429, 429]
    assert len(keys) == 1  # one count, in Redis
