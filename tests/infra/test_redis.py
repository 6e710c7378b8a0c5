"""tests/redis.py starts a real redis-server on a free port, without persistence."""

from __future__ import annotations

import socket

import redis

from tests.redis import redis_run


def test_redis_answers_and_stops(tmp_path):
    with redis_run(workdir=tmp_path / "redis") as server:
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        client = redis.Redis.from_url(server.url)
        assert client.ping()
        client.set("certmgr-test", "yes")
        assert client.get("certmgr-test") == b"yes"
        config = client.config_get("*")
        assert config["save"] == ""
        assert config["appendonly"] == "no"
        assert config["dir"] == str(tmp_path / "redis")
        assert config["bind"] == "127.0.0.1"
        client.close()
        port = server.port

    # Stopped and waited for: nobody listens any more.
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    # Nothing persisted: the log is the only file.
    assert [path.name for path in (tmp_path / "redis").iterdir()] == ["redis.log"]


def test_two_servers_run_side_by_side(tmp_path):
    with (
        redis_run(workdir=tmp_path / "a") as first,
        redis_run(workdir=tmp_path / "b") as second,
    ):
        assert first.port != second.port
        redis.Redis.from_url(first.url).set("key", "first")
        assert redis.Redis.from_url(second.url).get("key") is None
