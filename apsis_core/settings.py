"""Configuration shared by every part: ``APSIS_SSO_*`` environment variables and ``.env``.

Secrets are ``SecretStr`` so they never print; each can also be given as a path to a file
(``APSIS_SSO_KEYCLOAK_CLIENT_SECRET_FILE``), which is how containers mount them. Each part
adds its own settings class with its own prefix (``sync.settings``: ``APSIS_SYNC_*``) and
loads it with ``load_settings``, so a bad value reads the same everywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from apsis_core.contract import DEFAULT_REALM, TOOLING_CLIENT


def _templates_dir() -> Path:
    """The realm templates: ``realm-templates/`` of the source tree, which the wheel ships as
    the data package ``apsis_core/realm_templates``; APSIS_SSO_TEMPLATES_DIR points elsewhere."""
    here = Path(__file__).resolve().parent
    installed = here / "realm_templates"
    return installed if installed.is_dir() else here.parent / "realm-templates"


TEMPLATES_DIR = _templates_dir()

PUBLIC_CLOUD_AUTHORITY = "https://login.microsoftonline.com"
PUBLIC_CLOUD_GRAPH = "https://graph.microsoft.com/v1.0"


def env_config(prefix: str) -> SettingsConfigDict:
    """How every part reads its settings: ``<prefix>*`` environment variables, then ``.env``."""
    return SettingsConfigDict(env_prefix=prefix, env_file=".env", env_file_encoding="utf-8", extra="ignore")


class Settings(BaseSettings):
    model_config = env_config("APSIS_SSO_")

    keycloak_url: str = Field("http://127.0.0.1:8080", description="Keycloak base URL the tooling talks to")
    keycloak_public_url: str | None = Field(
        None, description="Keycloak URL browsers and Entra see (redirect URIs); defaults to keycloak_url"
    )
    realm: str = Field(DEFAULT_REALM, description="The one realm that holds every account")
    keycloak_client_id: str = Field(TOOLING_CLIENT, description="Service-account client of the tooling")
    keycloak_client_secret: SecretStr | None = Field(None, description="Its secret")
    keycloak_client_secret_file: Path | None = Field(None, description="File holding that secret")
    keycloak_admin_username: str = Field("admin", description="Master-realm admin, used by `realm apply` only")
    keycloak_admin_password: SecretStr | None = Field(None, description="Its password")
    keycloak_admin_password_file: Path | None = Field(None, description="File holding that password")
    keycloak_timeout: float = Field(30.0, description="Seconds per Keycloak request")
    keycloak_verify: str | bool = Field(
        True, description="TLS verification for Keycloak: true, false or a CA bundle path"
    )

    entra_authority: str = Field(PUBLIC_CLOUD_AUTHORITY, description="Entra authority (national clouds, the emulator)")
    graph_base_url: str = Field(PUBLIC_CLOUD_GRAPH, description="Microsoft Graph base URL")
    entra_ca_bundle: Path | None = Field(None, description="CA bundle to trust for Entra and Graph (the emulator's)")
    okta_ca_bundle: Path | None = Field(None, description="CA bundle to trust for Okta orgs (the emulator's)")

    apsis_one_redirect_uris: list[str] = Field(
        default_factory=lambda: ["http://127.0.0.1:*", "http://localhost:*"],
        description="Redirect URIs of the example apsis-one client",
    )
    templates_dir: Path = Field(
        TEMPLATES_DIR, description="Where the realm templates live (default: the package's own)"
    )
    sync_secrets_dir: Path | None = Field(
        None, description="The sync daemon's secrets directory: create and rotate-secret also store the secret there"
    )
    assertion_key_file: Path | None = Field(
        None,
        description="PEM (private key and certificate) of the client-assertion key of certificate accounts "
        "(a secret mount; `apsis-sso assertion-key generate` makes it)",
    )
    assertion_next_key_file: Path | None = Field(
        None, description="PEM of the next client-assertion key, published before the current one expires"
    )
    portal_url: str | None = Field(
        None, description="The self-serve portal as customers' browsers reach it: invitation and renewal links"
    )
    invitation_days: int = Field(7, ge=1, le=30, description="Days an invitation link stays valid by default")

    @field_validator("keycloak_url", "keycloak_public_url", "entra_authority", "graph_base_url", "portal_url")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if isinstance(value, str) else value

    @field_validator("keycloak_verify", mode="before")
    @classmethod
    def _verify(cls, value: object) -> str | bool:
        if isinstance(value, str) and value.lower() in {"true", "1", "yes"}:
            return True
        if isinstance(value, str) and value.lower() in {"false", "0", "no"}:
            return False
        return value  # type: ignore[return-value]

    @model_validator(mode="after")
    def _read_secret_files(self) -> Settings:
        if self.keycloak_client_secret is None and self.keycloak_client_secret_file:
            self.keycloak_client_secret = SecretStr(read_secret_file(self.keycloak_client_secret_file))
        if self.keycloak_admin_password is None and self.keycloak_admin_password_file:
            self.keycloak_admin_password = SecretStr(read_secret_file(self.keycloak_admin_password_file))
        return self

    @field_validator("portal_url")
    @classmethod
    def _portal_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL, e.g. https://sso-setup.example.com")
        return value or None

    @property
    def public_url(self) -> str:
        return self.keycloak_public_url or self.keycloak_url


def read_secret_file(path: Path) -> str:
    """A ``*_FILE`` setting's secret (a mounted container secret); a failure names the file."""
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ValueError(f"cannot read secret file {path}: {exc.strerror}") from None


S = TypeVar("S", bound=BaseSettings)


def load_settings(cls: type[S], env_file: Path | None = None) -> S:
    """A settings class from the environment and ``env_file`` (else ``./.env``); bad values are
    one line naming every variable at fault (exit code 2)."""
    from pydantic import ValidationError

    from apsis_core.errors import InvalidInput

    prefix = str(cls.model_config.get("env_prefix", ""))
    try:
        extra: dict[str, Any] = {"_env_file": env_file} if env_file else {}
        return cls(**extra)
    except ValidationError as exc:  # every bad setting at once, not one per run
        problems = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error.get("loc", ()))
            message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
            # a rule across settings names its variables itself
            problems.append(f"{prefix}{where.upper()}: {message}" if where else message)
        raise InvalidInput(f"configuration: {'; '.join(problems)}") from None
