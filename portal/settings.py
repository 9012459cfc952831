"""The portal's own settings: ``APSIS_PORTAL_*`` environment variables and ``.env``.

Keycloak, Entra, the portal's public address (``APSIS_SSO_PORTAL_URL``) and the daemon's
secrets directory are the shared ``APSIS_SSO_*`` settings; mail is the daemon's
``APSIS_SYNC_SMTP_*`` (``apsis_core.mail``). Only what the web server alone needs is here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings

from apsis_core.settings import env_config, read_secret_file

SESSION_KEY_MIN = 32


class PortalSettings(BaseSettings):
    model_config = env_config("APSIS_PORTAL_")

    host: str = Field("127.0.0.1", description="Address to listen on (0.0.0.0 in a container)")
    port: int = Field(8090, ge=1, le=65535, description="Port to listen on")
    session_key: SecretStr | None = Field(None, description="Key that signs session cookies (32+ characters)")
    session_key_file: Path | None = Field(None, description="File holding that key")
    session_minutes: int = Field(60, ge=5, le=60, description="Longest session opened from a link")
    submissions_per_link: int = Field(10, ge=1, description="Form submissions per link within the window")
    submission_window_seconds: int = Field(900, ge=10, description="The window of that limit")
    opens_per_minute: int = Field(30, ge=1, description="Links opened per client address per minute")
    rate_limit_url: SecretStr | None = Field(
        None, description="postgresql://…: count the rate limits there, across replicas (unset: per process)"
    )
    go_live: bool = Field(
        False,
        description="'Ready for everyone' takes the account live itself "
        "(otherwise the platform team is asked to run go-live)",
    )
    refresh_seconds: int = Field(15, ge=5, le=300, description="How often the test results page reloads itself")
    audit_log: Path | None = Field(None, description="Append the audit trail (JSON lines) here; default stderr")
    log_format: Literal["text", "json"] = Field("text", description="text for people, json for log shippers")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level")
    metrics_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Serve Prometheus metrics on this port, apart from the public one (unset: off)",
    )
    metrics_address: str = Field("127.0.0.1", description="Address of the metrics port (0.0.0.0 in a container)")
    forwarded_allow_ips: str = Field("127.0.0.1", description="Proxies whose X-Forwarded-* headers are trusted")

    @field_validator("log_level", mode="before")
    @classmethod
    def _level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _key(self) -> PortalSettings:
        if self.session_key is None and self.session_key_file:
            self.session_key = SecretStr(read_secret_file(self.session_key_file))
        if self.session_key is None:
            raise ValueError(
                "APSIS_PORTAL_SESSION_KEY or APSIS_PORTAL_SESSION_KEY_FILE is required "
                "(a random key of 32+ characters, e.g. `openssl rand -base64 48`)"
            )
        if len(self.session_key.get_secret_value()) < SESSION_KEY_MIN:
            raise ValueError(f"the session key must be at least {SESSION_KEY_MIN} characters long")
        return self
