"""Fixtures for the apsis-sync tests (see tests/test_sync_*.py).

* ``smtp_server``: a real SMTP server process (aiosmtpd's Mailbox handler writing a Maildir),
  started once per session; tests read what it received.
* ``sync``: a factory of ``SyncHarness`` — a daemon runtime on the session's Keycloak and
  emulator with its own state database and secrets directory, whose Graph waits are
  recorded instead of slept; ``sync(backend="postgresql")`` keeps its state in a fresh
  database of ``postgres``.
* ``postgres``: a throwaway PostgreSQL cluster (Debian's server, ``devenv/postgres.py``),
  started once per session when a test asks for it; ``state_location`` gives a test a fresh
  state of each backend (``sqlite``: a file, ``postgresql``: a database).
"""

from __future__ import annotations

import email
import email.policy
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from apsis_core.keycloak import KeycloakRepository
from apsis_core.settings import Settings
from devenv.accounts import OnboardedAccount
from devenv.postgres import PostgresServer
from sync.accounts import Shard
from sync.metrics import SyncMetrics
from sync.report import CycleReport
from sync.runtime import Runtime
from sync.scheduler import run_once
from sync.secrets import DirectorySecrets
from sync.settings import SyncSettings
from sync.state import StateStore

PLATFORM_TEAM = "platform-team@apsis.example"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class SmtpServer:
    host: str
    port: int
    maildir: Path
    process: subprocess.Popen[bytes]

    def messages(self, to: str | None = None, kind: str | None = None) -> list[EmailMessage]:
        """Messages received so far, optionally only those addressed (To or Cc) to ``to``."""
        out: list[EmailMessage] = []
        for path in sorted((self.maildir / "new").glob("*")) + sorted((self.maildir / "cur").glob("*")):
            # The modern policy unfolds long headers and decodes bodies (``get_content()``).
            msg = email.message_from_bytes(path.read_bytes(), _class=EmailMessage, policy=email.policy.default)
            rcpt = f"{msg.get('To', '')},{msg.get('Cc', '')}".lower()
            if to is not None and to.lower() not in rcpt:
                continue
            if kind is not None and msg.get("X-Apsis-Sync-Kind") != kind:
                continue
            out.append(msg)
        return out


@pytest.fixture(scope="session")
def smtp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpServer]:
    maildir = tmp_path_factory.mktemp("mail") / "Maildir"
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            f"127.0.0.1:{port}",
            "-c",
            "aiosmtpd.handlers.Mailbox",
            str(maildir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise RuntimeError(f"aiosmtpd did not start: {err[-500:]}") from None
            time.sleep(0.1)
    try:
        yield SmtpServer("127.0.0.1", port, maildir, proc)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """A PostgreSQL cluster for the session (fails, never skips, when the server is missing)."""
    server = PostgresServer(tmp_path_factory.mktemp("postgres")).start()
    try:
        yield server
    finally:
        server.stop()


_databases = iter(range(1, 1_000_000))


def fresh_state(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> Path | str:
    """A new, empty state: a SQLite file under ``tmp_path`` or a new PostgreSQL database."""
    if backend == "sqlite":
        return tmp_path / f"state{next(_databases)}.sqlite3"
    assert backend == "postgresql", backend
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database(f"state_{next(_databases)}")


@pytest.fixture(params=["sqlite", "postgresql"])
def state_location(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """A fresh state of each backend: the same test runs on both."""
    return fresh_state(request, str(request.param), tmp_path)


@dataclass
class SyncHarness:
    """A daemon runtime for one test: its own state and secrets, shared Keycloak and emulator."""

    rt: Runtime
    secrets: DirectorySecrets
    sync_settings: SyncSettings
    waits: list[float] = field(default_factory=list)

    def add(self, *accounts: OnboardedAccount) -> None:
        """Hand the accounts' client secrets to the daemon, as an operator would."""
        for account in accounts:
            self.secrets.put(account.id, SecretStr(account.secret))

    def cycle(self, *accounts: OnboardedAccount, dry_run: bool = False, shard: Shard | None = None) -> CycleReport:
        only = [a.id for a in accounts] or None
        return run_once(self.rt, only, shard, dry_run)

    @property
    def state(self) -> StateStore:
        return self.rt.state

    def env(self) -> dict[str, str]:
        """The same configuration as environment variables, for the CLI in a subprocess."""
        s, k = self.sync_settings, self.rt.settings
        env = {key: value for key, value in os.environ.items() if not key.startswith(("APSIS_SSO_", "APSIS_SYNC_"))}
        env.update(
            {
                "APSIS_SSO_KEYCLOAK_URL": k.keycloak_url,
                "APSIS_SSO_REALM": k.realm,
                "APSIS_SSO_KEYCLOAK_CLIENT_SECRET": k.keycloak_client_secret.get_secret_value()
                if k.keycloak_client_secret
                else "",
                "APSIS_SSO_ENTRA_AUTHORITY": k.entra_authority,
                "APSIS_SSO_GRAPH_BASE_URL": k.graph_base_url,
                "APSIS_SSO_ENTRA_CA_BUNDLE": str(k.entra_ca_bundle),
                "APSIS_SYNC_STATE_PATH": str(s.database),
                "APSIS_SYNC_SECRETS_DIR": str(s.secrets_path),
                "APSIS_SYNC_DATA_DIR": str(s.data_dir),
                "APSIS_SYNC_PLATFORM_TEAM_EMAIL": s.platform_team_email or "",
                "APSIS_SYNC_GRAPH_BACKOFF_SECONDS": "0",
            }
        )
        if s.state_url is not None:
            env["APSIS_SYNC_STATE_URL"] = s.state_url.get_secret_value()
        if s.smtp_host:
            env.update({"APSIS_SYNC_SMTP_HOST": s.smtp_host, "APSIS_SYNC_SMTP_PORT": str(s.smtp_port)})
        return env


def build_harness(
    settings: Settings, smtp_server: SmtpServer, data_dir: Path, today: date | None = None, **overrides: Any
) -> SyncHarness:
    """A daemon runtime on the Keycloak of ``settings`` with its state in ``data_dir``; keyword
    arguments override ``SyncSettings`` (``today=`` fixes the date the daemon believes it is)."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "smtp_host": smtp_server.host,
        "smtp_port": smtp_server.port,
        "platform_team_email": PLATFORM_TEAM,
        "graph_backoff_seconds": 0.5,
        "workers": 2,
    }
    values.update(overrides)
    sync_settings = SyncSettings(_env_file=None, **values)  # type: ignore[call-arg]
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    rt = Runtime.build(
        settings,
        sync_settings,
        api_factory=lambda: KeycloakRepository.for_tooling(settings),
        sleep=record,
        metrics=SyncMetrics(),
        **({"today": lambda: today} if today else {}),
    )
    return SyncHarness(rt, DirectorySecrets(sync_settings.secrets_path), sync_settings, waits)


@pytest.fixture
def sync(
    api: KeycloakRepository,
    settings: Settings,
    smtp_server: SmtpServer,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[Callable[..., SyncHarness]]:
    """``sync(**settings)`` builds a harness (``build_harness``) on the session's Keycloak;
    ``backend="postgresql"`` puts its state in a fresh PostgreSQL database."""
    made: list[SyncHarness] = []

    def make(today: date | None = None, backend: str = "sqlite", **overrides: Any) -> SyncHarness:
        data_dir = overrides.pop("data_dir", tmp_path / f"sync{len(made)}")  # a later day may reuse an earlier state
        if backend != "sqlite" and "state_url" not in overrides:
            overrides["state_url"] = SecretStr(str(fresh_state(request, backend, tmp_path)))
        harness = build_harness(settings, smtp_server, data_dir, today, **overrides)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        harness.rt.close()
        harness.rt.state.close()


def entra_oid(emulator: Any, account: OnboardedAccount, email: str) -> str:
    """The Entra object id of ``email`` in the account's tenant (the user must exist)."""
    user = emulator.find_user(account.tenant_id, email)
    assert user is not None, f"no Entra user {email}"
    return str(user.oid)
