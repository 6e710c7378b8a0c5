"""Phase C of bench/issuance.py: a `certbot certonly --standalone` loop, one new process per
certificate as an operator's shell loop runs it (certbot comes with the `bench` extra)."""

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

CERTBOT_TIMEOUT = 120.0


def certbot_path() -> str:
    path = Path(sys.executable).parent / "certbot"
    if path.exists():
        return str(path)
    found = shutil.which("certbot")
    if found:
        return found
    sys.exit("certbot is not installed: `.venv/bin/python -m pip install -e '.[dev,bench]'`")


def certbot_loop(
    round_number: int, *, count: int, port: int, directory_url: str, ca_bundle: str, workdir: Path
) -> tuple[float, int, list[str]]:
    """COUNT certbot runs one after the other; returns (seconds, issued, failures)."""
    program = certbot_path()
    base = workdir / "certbot"
    env = {**os.environ, "REQUESTS_CA_BUNDLE": ca_bundle}
    suffix = "" if round_number == 0 else f".r{round_number}"
    log_path = workdir / f"certbot-round{round_number}.log"
    issued, failures = 0, []
    started = time.perf_counter()
    with log_path.open("ab") as log:
        for index in range(count):
            hostname = f"shop{index}{suffix}.certbot.test"
            command = [
                program,
                "certonly",
                "--standalone",
                "--non-interactive",
                "--agree-tos",
                "-m",
                "bench@example.test",
                "--server",
                directory_url,
                "--http-01-port",
                str(port),
                "--http-01-address",
                "127.0.0.1",
                "-d",
                hostname,
                "--config-dir",
                str(base / "config"),
                "--work-dir",
                str(base / "work"),
                "--logs-dir",
                str(base / "logs"),
            ]
            try:
                result = subprocess.run(
                    command,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.PIPE,
                    timeout=CERTBOT_TIMEOUT,
                )
            except subprocess.TimeoutExpired:
                failures.append(f"{hostname}: certbot ran over {CERTBOT_TIMEOUT:g} s")
                continue
            log.write(result.stderr)
            live = base / "config" / "live" / hostname / "fullchain.pem"
            if result.returncode == 0 and live.exists():
                issued += 1
            else:
                failures.append(f"{hostname}: {certbot_error(result.stderr)}")
    return time.perf_counter() - started, issued, failures


def certbot_error(stderr: bytes) -> str:
    """What certbot said went wrong (its output carries no key material)."""
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines()]
    lines = [line for line in lines if line]
    for index, line in enumerate(lines[:-1]):
        # "An unexpected error occurred:" puts the reason on the next line.
        if line == "An unexpected error occurred:":
            return f"{line} {lines[index + 1]}"[:300]
    for pattern in (r"^Detail:", r"urn:ietf:params:acme:error", r"[Ee]rror|[Ff]ailed"):
        for line in lines:
            if re.search(pattern, line):
                return line[:300]
    return (lines[-1] if lines else "no output")[:300]


def certbot_bad_nonces(workdir: Path) -> int:
    """badNonce answers certbot retried, from its logs (one file per run, letsencrypt.log[.N]):
    the acme library logs "Retrying request after error" for each, and retries only those."""
    return sum(
        path.read_text(errors="replace").count("Retrying request after error")
        for path in (workdir / "certbot" / "logs").glob("letsencrypt.log*")
    )
