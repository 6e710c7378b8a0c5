"""tests/postgres.py: a throwaway PostgreSQL cluster, and a database of a test's own on the
server of DATABASE_URL or on such a cluster, all removed afterwards."""

from __future__ import annotations

from urllib.parse import urlsplit

import psycopg

from tests.postgres import postgres_database, postgres_run
from tests.support import port_open


def test_a_cluster_of_its_own_answers_and_goes_with_its_folder(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "sqlite:///not-postgres.sqlite3")
    with postgres_database(name_prefix="certmgr_infra") as url:
        parts = urlsplit(url)
        assert (parts.hostname, parts.username) == ("127.0.0.1", "postgres")
        assert parts.path.startswith("/certmgr_infra_")
        with psycopg.connect(url) as db:
            assert db.execute("SHOW fsync").fetchone() == ("off",)
            db.execute("CREATE TABLE kept (x int)")
    assert not port_open(parts.port)


def test_on_a_postgresql_database_url_each_gets_a_database_dropped_afterwards(monkeypatch):
    with postgres_run() as server:
        folder = server.folder
        monkeypatch.setenv("DATABASE_URL", server.url("certmgr"))
        with (
            postgres_database(name_prefix="certmgr_infra") as first,
            postgres_database(name_prefix="certmgr_infra") as second,
        ):
            assert first != second
            assert urlsplit(first).port == urlsplit(second).port == server.port
            with psycopg.connect(first) as db:
                db.execute("CREATE TABLE mine (x int)")
            with psycopg.connect(second) as db:
                tables = db.execute("SELECT tablename FROM pg_tables WHERE tablename = 'mine'")
                assert tables.fetchall() == []
            # A connection left open does not keep its database from being dropped.
            leftover = psycopg.connect(first)
        with psycopg.connect(server.url()) as db:
            names = [name for (name,) in db.execute("SELECT datname FROM pg_database")]
        assert not [name for name in names if name.startswith("certmgr_infra_")]
        leftover.close()
    assert not folder.exists()
    assert not port_open(server.port)
