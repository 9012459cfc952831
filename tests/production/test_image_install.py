"""The image's Python install, run outside Docker and outside the checkout, against the lane.

This machine has no Docker engine, so the build stage of the Dockerfile is replayed as it
is written: its `COPY` lines copy from the checkout into a fresh build directory, its `RUN`
lines run there with `/opt/venv` standing for a fresh virtualenv (scripts/install.sh: the
locked runtime dependencies with hashes checked, then the wheel without dependencies).
Only pip's download cache is kept, for speed. Then, from a directory that is not the
checkout, the installed commands do what the compose services do: `apsis-sso realm apply
--dry-run` (templates from inside the wheel) and `apsis-sync run --once --dry-run` (Graph
and Entra through azure-identity's aiohttp transport) against the cluster.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from devenv.accounts import OnboardedAccount
from devenv.entra_emulator import EntraEmulator
from tests.cli_fixtures import assert_no_secret
from tests.dockerfile import VENV_IN_IMAGE, build_stage
from tests.production.conftest import Lane

pytestmark = pytest.mark.production

REPO = Path(__file__).resolve().parents[2]


def replay_build_stage(src: Path, venv: Path) -> None:
    src.mkdir()
    for instruction, args in build_stage(REPO / "Dockerfile"):
        if instruction == "COPY":
            *sources, dest = args.split()
            assert not any(s.startswith("--") for s in sources), f"unexpected COPY flags: {args}"
            target = (src / dest).resolve()
            for source in sources:
                origin = REPO / source
                into = target / origin.name if dest.endswith("/") or len(sources) > 1 else target
                into.parent.mkdir(parents=True, exist_ok=True)
                if origin.is_dir():
                    shutil.copytree(origin, into, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy2(origin, into)
        else:
            command = args.replace(VENV_IN_IMAGE, str(venv))
            env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
            done = subprocess.run(
                ["/bin/sh", "-c", command], cwd=src, env=env, capture_output=True, text=True, timeout=900
            )
            assert done.returncode == 0, f"RUN {command}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"


def test_the_installed_wheel_works_outside_the_checkout(
    lane: Lane,
    onboard: Callable[..., OnboardedAccount],
    emulator: EntraEmulator,
    tmp_path: Path,
) -> None:
    venv = tmp_path / "venv"
    replay_build_stage(tmp_path / "src", venv)
    site = next((venv / "lib").glob("python3*/site-packages"))
    assert (site / "apsis_core" / "realm_templates" / "realm.json").is_file()
    for package in ("devenv", "tests", "bench"):
        assert not (site / package).exists(), f"the wheel ships {package}/"

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    acct = onboard(lane.node1)
    secrets_dir = tmp_path / "account-secrets"
    secrets_dir.mkdir(mode=0o700)
    (secrets_dir / acct.id).write_text(acct.secret)
    client_secret_file = tmp_path / "tooling-client-secret"
    assert lane.settings.keycloak_client_secret is not None
    client_secret_file.write_text(lane.settings.keycloak_client_secret.get_secret_value())
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("APSIS_", "PYTHON", "VIRTUAL_ENV")) and k != "PATH"
    }
    base["PATH"] = f"{venv / 'bin'}:/usr/bin:/bin"
    settings = {
        "APSIS_SSO_KEYCLOAK_PUBLIC_URL": lane.cluster.public_url,
        "APSIS_SSO_REALM": lane.settings.realm,
        "APSIS_SSO_KEYCLOAK_CLIENT_SECRET_FILE": str(client_secret_file),
        "APSIS_SSO_ENTRA_AUTHORITY": emulator.authority,
        "APSIS_SSO_GRAPH_BASE_URL": emulator.graph_base_url,
        "APSIS_SSO_ENTRA_CA_BUNDLE": str(emulator.ca_bundle),
    }

    def run(*argv: str, node_url: str, **extra: str) -> subprocess.CompletedProcess[str]:
        env = {**base, **settings, "APSIS_SSO_KEYCLOAK_URL": node_url, **extra}
        done = subprocess.run(list(argv), cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
        assert_no_secret(done.stdout, done.stderr)
        return done

    imported = run("python", "-c", "import devenv", node_url=lane.node1.url)
    assert imported.returncode != 0 and "No module named 'devenv'" in imported.stderr

    applied = run(
        "apsis-sso",
        "realm",
        "apply",
        "--dry-run",
        "--detailed-exitcode",
        "-o",
        "json",
        node_url=lane.node2.url,
        APSIS_SSO_KEYCLOAK_ADMIN_USERNAME=lane.settings.keycloak_admin_username,
        APSIS_SSO_KEYCLOAK_ADMIN_PASSWORD_FILE=str(lane.admin_password_file),
    )
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert json.loads(applied.stdout)["plan"]["changes"] == []

    synced = run(
        "apsis-sync",
        "run",
        "--once",
        "--dry-run",
        "--account",
        acct.id,
        "-o",
        "json",
        node_url=lane.node1.url,
        APSIS_SYNC_DATA_DIR=str(tmp_path / "sync-state"),
        APSIS_SYNC_SECRETS_DIR=str(secrets_dir),
    )
    assert synced.returncode == 0, synced.stdout + synced.stderr
    [account] = json.loads(synced.stdout)["accounts"]
    assert account["id"] == acct.id and account["status"] == "ok" and account["errors"] == []
