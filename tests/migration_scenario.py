"""Running a migration scenario in a subprocess on a database of its own.

Migrating pytest-django's test database back and forth would rebuild its tables under other
tests, so a scenario (a script that migrates, writes rows with the historical models, migrates
again and prints one JSON line) runs in a fresh interpreter on `database_url`: SQLite in
every pass, PostgreSQL (tests/postgres.py) when the suite runs on it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.db import connection

from tests.postgres import postgres_database

REPO_ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 300
VENDORS = ["sqlite", "postgresql"] if connection.vendor == "postgresql" else ["sqlite"]


def scenario_run(tmp_path: Path, database_url: str, scenario: str, *, name: str) -> dict:
    """Run `scenario` on `database_url`; its last output line as JSON, or fail with its output."""
    script = tmp_path / f"{name}.py"
    script.write_text(scenario)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "certmgr.settings",
        "DATABASE_URL": database_url,
        "CERTMGR_VAR_DIR": str(tmp_path / "var"),
        "CERTMGR_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(REPO_ROOT),
    }
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    if done.returncode != 0:
        pytest.fail(
            f"the scenario exited with {done.returncode}\n"
            f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}",
            pytrace=False,
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def scenario_run_on(vendor: str, tmp_path: Path, scenario: str, *, name: str) -> dict:
    """scenario_run on a new database of `vendor` (one of VENDORS): a SQLite file under
    `tmp_path`, or a throwaway PostgreSQL database (tests/postgres.py)."""
    if vendor == "sqlite":
        return scenario_run(
            tmp_path, f"sqlite:///{tmp_path / f'{name}.sqlite3'}", scenario, name=name
        )
    with postgres_database(name_prefix=f"certmgr_{name}"[:40]) as database_url:
        return scenario_run(tmp_path, database_url, scenario, name=name)
