"""The architecture holds (README, "Layout"): each app imports only the apps below it, the pure
modules stay free of Django, and no module outgrows one sitting.

The import rules are import-linter's contracts in pyproject.toml ([tool.importlinter]), run
here by its own command. The negative controls copy the project, plant the kind of import the
contracts exist to catch, and check that lint-imports fails naming it: an upward import hidden
inside a function (how the old circles between apps were written) and Django in a pure module.
"""

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The apps, as the contracts name them (pyproject.toml, [tool.importlinter] root_packages).
PACKAGES = tuple(
    tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["root_packages"]
)
MAX_MODULE_LINES = 600
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """Run lint-imports on the project at `root`, which is first on the import path."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=root,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def project_copy(tmp_path) -> Path:
    """The application packages and pyproject.toml, copied to a folder of their own."""
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def plant(module: Path, code: str) -> None:
    module.write_text(module.read_text() + "\n\n" + code + "\n")


def test_the_import_contracts_hold():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Apps import only downward KEPT" in result.stdout
    assert "Pure modules stay free of Django KEPT" in result.stdout


def test_an_upward_import_inside_a_function_breaks_the_layers(project_copy):
    # The circle this layout removed: sales channels queueing an ACME issuance themselves.
    plant(
        project_copy / "saleschannels" / "services.py",
        "def _queue(channel):\n"
        "    from acme_client.scheduling import channel_renew_now\n\n"
        "    return channel_renew_now(channel=channel, actor=None)",
    )
    result = lint_imports(project_copy)
    assert result.returncode != 0
    assert "Apps import only downward BROKEN" in result.stdout
    assert "saleschannels.services -> acme_client.scheduling" in result.stdout


def test_a_lower_app_reaching_up_for_a_helper_breaks_the_layers(project_copy):
    # Another old circle: the institutions app using expiry monitoring's webhook check.
    plant(
        project_copy / "institutions" / "views.py", "from monitoring.webhooks import webhook_post"
    )
    result = lint_imports(project_copy)
    assert result.returncode != 0
    assert "institutions.views -> monitoring.webhooks" in result.stdout


def test_django_in_a_pure_module_breaks_its_contract(project_copy):
    plant(project_copy / "certificates" / "thresholds.py", "from django.conf import settings")
    result = lint_imports(project_copy)
    assert result.returncode != 0
    assert "Pure modules stay free of Django BROKEN" in result.stdout
    assert "certificates.thresholds -> django (l." in result.stdout


def test_no_module_outgrows_one_sitting():
    too_long = {
        str(path.relative_to(ROOT)): lines
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts
        and (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert too_long == {}, f"split these into packages of small modules: {too_long}"


def test_the_production_image_carries_every_app():
    # The Dockerfile copies the apps one by one (a layer each): a new app must be added there,
    # or the image starts without it. README, "Production".
    copied = {
        line.split()[1]
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.startswith("COPY ") and len(line.split()) == 3
    }
    assert set(PACKAGES) <= copied, sorted(set(PACKAGES) - copied)
