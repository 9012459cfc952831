"""Configuration of the sync daemon: ``APSIS_SYNC_*`` environment variables and ``.env``.

Keycloak, the Entra authority, the Graph base URL and the CA bundle are the shared settings
(``apsis_core.settings``, ``APSIS_SSO_*``), the same the ``apsis-sso`` CLI reads, so both
always talk to the same realm and cloud. The mail settings (``APSIS_SYNC_SMTP_*``, sender,
platform team) are ``apsis_core.mail.MailSettings``, which the CLI and the portal read too.
Only what the daemon alone needs is defined here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from apsis_core.mail import MailSettings
from apsis_core.settings import env_config


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "apsis-sync"


class SyncSettings(MailSettings):
    model_config = env_config("APSIS_SYNC_")

    interval_seconds: int = Field(300, ge=10, description="Seconds between the starts of two cycles")
    workers: int = Field(32, ge=1, le=1000, description="Accounts synced concurrently within a cycle (asyncio tasks)")
    keycloak_concurrency: int = Field(
        8, ge=1, le=64, description="Keycloak requests in flight at once (reads of a round, deactivations)"
    )
    data_dir: Path = Field(default_factory=_default_data_dir, description="Where the state database lives")
    state_path: Path | None = Field(None, description="SQLite state database (default <data_dir>/state.sqlite3)")
    state_url: SecretStr | None = Field(
        None,
        description="postgresql://user:password@host/db: the state shared by replicas (leases share the "
        "accounts out); unset: the SQLite file of state_path",
    )
    lease_seconds: int = Field(
        120,
        ge=10,
        description="How long a replica holds an account it syncs; a dead replica's accounts are taken over "
        "after it (with a shared state_url)",
    )
    secrets_dir: Path | None = Field(
        None,
        description="Directory with one file per account, named by account id, holding its client secret "
        "(default <data_dir>/secrets)",
    )

    guard_max_users: int = Field(
        25, ge=0, description="Deactivations per account per cycle that quarantine it when exceeded"
    )
    guard_max_percent: float = Field(
        10.0, ge=0, le=100, description="Percentage of an account's members that quarantines it when exceeded"
    )
    guard_percent_min_users: int = Field(
        3, ge=1, description="The percentage rule applies from this many deactivations on (small accounts may lose one)"
    )

    expiry_thresholds: list[int] = Field(
        default_factory=lambda: [30, 14, 7, 1], description="Days before secret expiry at which to notify, once each"
    )

    webhook_url: str | None = Field(None, description="Optional URL that receives every notification as JSON")
    webhook_timeout: float = Field(10.0, description="Seconds per webhook call")

    metrics_port: int | None = Field(None, description="Serve Prometheus metrics on this port (unset: off)")
    metrics_address: str = Field("0.0.0.0", description="Address the metrics server binds")
    log_format: Literal["text", "json"] = Field("text", description="text for people, json for log shippers")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="DEBUG, INFO, WARNING or ERROR (DEBUG also shows the Graph, Entra and HTTP libraries' logs)"
    )

    graph_max_attempts: int = Field(5, ge=1, description="Attempts per Graph request (429, 5xx, transport errors)")
    graph_backoff_seconds: float = Field(1.0, ge=0, description="First backoff wait when Graph sends no Retry-After")
    graph_max_wait_seconds: float = Field(
        120.0, ge=0, description="Longest single wait; a longer Retry-After fails the account for this cycle"
    )
    graph_timeout: float = Field(60.0, description="Seconds per Graph request")

    @field_validator("log_level", mode="before")
    @classmethod
    def _level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("expiry_thresholds")
    @classmethod
    def _thresholds(cls, value: list[int]) -> list[int]:
        if any(v < 1 for v in value):
            raise ValueError("expiry thresholds are days before expiry, each at least 1")
        return sorted(set(value), reverse=True)

    @property
    def database(self) -> Path:
        return self.state_path or self.data_dir / "state.sqlite3"

    @property
    def state_location(self) -> Path | str:
        """Where the state is: the PostgreSQL URL when set, else the SQLite file."""
        return self.state_url.get_secret_value() if self.state_url else self.database

    @field_validator("state_url")
    @classmethod
    def _state_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("postgresql://", "postgres://")):
            raise ValueError("the state URL must start with postgresql://")
        return value

    @property
    def secrets_path(self) -> Path:
        return self.secrets_dir or self.data_dir / "secrets"
