"""Fixtures for the apsis-sso CLI tests (see tests/test_cli_*.py).

`cli` runs the real command group in-process (click's runner) against the session's
Keycloak and Entra emulator, configured only through APSIS_SSO_* variables as an operator
would, with an empty ``--env-file`` (so no stray ``./.env`` of the developer's counts, and
no fixture has to change the process's working directory). Every run is checked for leaked
secrets: no secret the session knows may appear on stdout or stderr, whatever the command
and whatever its outcome.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from apsis_core.keycloak import KeycloakRepository
from apsis_core.settings import Settings
from devenv.accounts import AccountFactory, OnboardedAccount
from devenv.entra_emulator import EntraEmulator
from provisioning.cli import main
from provisioning.links import redirect_uri

REPO = Path(__file__).resolve().parent.parent
CONSOLE_SCRIPT = Path(sys.executable).parent / "apsis-sso"

# Every secret a test hands to the CLI or the library; no command output may contain one.
KNOWN_SECRETS: set[str] = set()


def cli_environment(settings: Settings, **overrides: str | None) -> dict[str, str | None]:
    """The APSIS_SSO_* environment of an operator pointed at the test Keycloak and emulator;
    any other APSIS_SSO_* variable of the developer's shell is removed (None)."""
    assert settings.keycloak_client_secret and settings.keycloak_admin_password
    env: dict[str, str | None] = {key: None for key in os.environ if key.startswith("APSIS_SSO_")}
    env.update(
        {
            "APSIS_SSO_KEYCLOAK_URL": settings.keycloak_url,
            "APSIS_SSO_REALM": settings.realm,
            "APSIS_SSO_KEYCLOAK_CLIENT_SECRET": settings.keycloak_client_secret.get_secret_value(),
            "APSIS_SSO_KEYCLOAK_ADMIN_USERNAME": settings.keycloak_admin_username,
            "APSIS_SSO_KEYCLOAK_ADMIN_PASSWORD": settings.keycloak_admin_password.get_secret_value(),
            "APSIS_SSO_ENTRA_AUTHORITY": settings.entra_authority,
            "APSIS_SSO_GRAPH_BASE_URL": settings.graph_base_url,
            "APSIS_SSO_ENTRA_CA_BUNDLE": str(settings.entra_ca_bundle),
        }
    )
    env.update(overrides)
    return env


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in KNOWN_SECRETS:
            assert secret not in text, "a secret appeared in the output"


@dataclass
class Cli:
    """`cli.run("account", "show", "acme", expect=0)` -> click Result (stdout/stderr apart).

    ``workdir`` holds the empty env file every run starts with (a later ``--env-file`` in
    the arguments wins)."""

    env: dict[str, str | None]
    workdir: Path

    @property
    def env_file(self) -> Path:
        path = self.workdir / "empty.env"
        if not path.exists():
            self.workdir.mkdir(parents=True, exist_ok=True)
            path.write_text("")
        return path

    def run(
        self, *args: str, input: str | None = None, expect: int | None = 0, env: Mapping[str, str | None] | None = None
    ) -> Result:
        argv = ["--env-file", str(self.env_file), *args]
        result = CliRunner().invoke(main, argv, input=input, env={**self.env, **(env or {})})
        assert_no_secret(result.stdout, result.stderr)
        if expect is not None:
            assert result.exit_code == expect, (
                f"exit {result.exit_code} != {expect}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        if result.exit_code in (1, 2, 75):
            assert_one_line_error(result, traceback_allowed="--debug" in args)
        return result

    def json(self, *args: str, **kw: Any) -> Any:
        result = self.run(*args, "-o", "json", **kw)
        return json.loads(result.stdout)


def assert_one_line_error(result: Result, traceback_allowed: bool = False) -> None:
    """A failure ends in exactly one `error: ...` line and shows no traceback (but with --debug)."""
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr
    assert lines[0] == result.stderr.rstrip("\n").splitlines()[-1], result.stderr
    if not traceback_allowed:
        assert "Traceback" not in result.stderr, result.stderr


@pytest.fixture
def cli(settings: Settings, realm: str, tmp_path: Path) -> Cli:
    assert settings.keycloak_client_secret and settings.keycloak_admin_password
    KNOWN_SECRETS.add(settings.keycloak_client_secret.get_secret_value())
    KNOWN_SECRETS.add(settings.keycloak_admin_password.get_secret_value())
    work = tmp_path / "cwd"
    work.mkdir()
    return Cli(env=cli_environment(settings), workdir=work)


@dataclass
class EntraApp:
    """A customer's side of onboarding: tenant, app registration, secret (in a file too)."""

    account: str
    domain: str
    tenant_id: str
    app_id: str
    secret: str
    secret_file: Path
    emulator: EntraEmulator
    users: dict[str, str] = field(default_factory=dict)

    def create_args(self, **overrides: Any) -> list[str]:
        """argv of `account create` for this app; overrides replace options (None drops one)."""
        opts: dict[str, Any] = {
            "--name": f"Account {self.account}",
            "--tenant-id": self.tenant_id,
            "--client-id": self.app_id,
            "--domain": [self.domain],
            "--secret-expires": (date.today() + timedelta(days=365)).isoformat(),
            "--it-contact-name": "Ivy IT",
            "--it-contact-email": f"it@{self.domain}",
            "--test-user": [f"ann@{self.domain}"],
            "--client-secret-file": str(self.secret_file),
        }
        opts.update(overrides)
        args = ["account", "create", self.account]
        for key, value in opts.items():
            if value is None:
                continue
            for item in value if isinstance(value, list) else [value]:
                args += [key, item]
        return args

    def new_secret(self, days: int = 400) -> str:
        secret = self.emulator.add_secret(self.tenant_id, self.app_id, datetime.now(UTC) + timedelta(days=days))
        KNOWN_SECRETS.add(secret)
        return secret


@pytest.fixture
def entra_app(emulator: EntraEmulator, settings: Settings, unique: str, tmp_path: Path):
    """Factory: `entra_app()` -> EntraApp for a fresh account id (unique in the session)."""
    made = 0

    def make(account: str | None = None) -> EntraApp:
        nonlocal made
        made += 1
        account = account or f"{unique}c{made}"
        domain = f"{account}.example"
        tenant = emulator.add_tenant([domain])
        app = emulator.add_application(
            tenant.tenant_id, f"APSIS One SSO ({account})", [redirect_uri(settings, account)]
        )
        secret = emulator.add_secret(tenant.tenant_id, app.app_id, datetime.now(UTC) + timedelta(days=365))
        KNOWN_SECRETS.add(secret)
        secret_file = tmp_path / f"{account}.secret"
        secret_file.write_text(secret + "\n")
        return EntraApp(account, domain, tenant.tenant_id, app.app_id, secret, secret_file, emulator)

    return make


@pytest.fixture
def onboarded(accounts: AccountFactory) -> Callable[..., OnboardedAccount]:
    """`onboarded()`: an account created through the library (devenv/accounts.py), its
    secret registered so no CLI output may show it."""

    def make(**kw: Any) -> OnboardedAccount:
        acct = accounts.create(**kw)
        KNOWN_SECRETS.add(acct.secret)
        return acct

    return make


@pytest.fixture
def nothing_created(api: KeycloakRepository):
    """`nothing_created("acme")` asserts Keycloak holds no trace of the account."""

    def check(account: str) -> None:
        assert api.organization_by_alias(account) is None
        assert api.identity_provider(f"entra-{account}") is None

    return check


@pytest.fixture(scope="module")
def isolated_realm(settings: Settings, realm: str) -> Iterator[Settings]:
    """A realm of its own, created with `apsis-sso realm apply`, for tests that must see
    every account of a realm (prune, export) without touching other tests' accounts."""
    name = f"cli-{secrets.token_hex(3)}"
    own = settings.model_copy(update={"realm": name})
    env = cli_environment(own)
    result = CliRunner().invoke(main, ["realm", "apply"], env=env)
    assert result.exit_code == 0, result.stderr
    try:
        yield own
    finally:
        KeycloakRepository.for_admin(own).delete_realm()


def run_console_script(
    *args: str, env: dict[str, str | None], input: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """The installed `apsis-sso` entry point in a real process."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("APSIS_SSO_")}
    full.update({k: v for k, v in env.items() if v is not None})
    done = subprocess.run(
        [str(CONSOLE_SCRIPT), *args], env=full, input=input, capture_output=True, text=True, cwd=cwd, timeout=120
    )
    assert_no_secret(done.stdout, done.stderr)
    return done
