"""Where the daemon finds each account's Entra client secret.

Keycloak masks an identity provider's client secret on read, so the daemon cannot take it
from there. The secret reaches the daemon the way containers receive secrets: one file per
account, named by the account id, in a directory (a Kubernetes Secret volume, a Docker
secret mount, or a directory written by ``apsis-sync secret set``). ``SecretSource`` is the
seam for a vault client; the daemon only ever asks ``get(account_id)``.

A secret is held as ``SecretStr`` from the moment it is read, so it cannot end up in a
log line, an exception message or a ``repr``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from pydantic import SecretStr

from apsis_core import redaction, secret_files, validation
from apsis_core.account import AccountRecord
from apsis_core.errors import EX_USAGE, ApsisError, InvalidInput


class SecretSource(Protocol):
    """Anything that can hand out an account's client secret (a directory, a vault)."""

    def get(self, account_id: str) -> SecretStr | None:
        """The secret, or None when this source has none for the account."""
        ...

    def describe(self, account_id: str) -> str:
        """Where the secret would come from, for error messages (never the secret)."""
        ...


class DirectorySecrets:
    """``<directory>/<account id>`` holds the secret; surrounding whitespace is ignored."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, account_id: str) -> Path:
        return secret_files.path_for(self.directory, account_id)

    def get(self, account_id: str) -> SecretStr | None:
        try:
            secret = secret_files.read(self.directory, account_id)
        except OSError as exc:
            raise SecretUnavailable(
                f"cannot read the client secret file {self._path(account_id)}: {exc.strerror}"
            ) from None
        if secret is not None:
            redaction.remember(secret.get_secret_value())  # scrubbed from any log or error line
        return secret

    def describe(self, account_id: str) -> str:
        return str(self._path(account_id))

    def put(self, account_id: str, secret: SecretStr) -> Path:
        """Store a secret atomically with owner-only permissions (rotation replaces it whole)."""
        return secret_files.write(self.directory, account_id, secret)


def store(
    directory: Path,
    account_id: str,
    secret: SecretStr,
    load_account: Callable[[], AccountRecord],
    *,
    dry_run: bool = False,
) -> tuple[Path, str | None]:
    """``apsis-sync secret set``: check the secret against the hint Keycloak recorded for the
    account (``apsis.secretHint``), then store it where the daemon reads it. Returns the file
    and, when Keycloak could not be asked, a warning saying the secret was not checked."""
    account_id = validation.account_id(account_id)
    warning = None
    try:
        account = load_account()
        if account.secret_hint and not secret.get_secret_value().startswith(account.secret_hint):
            raise InvalidInput(
                f"this secret does not match account {account_id}'s recorded secret (hint {account.secret_hint!r}); "
                "rotate it with apsis-sso first"
            )
    except InvalidInput:
        raise
    except ApsisError as exc:
        warning = f"not checked against Keycloak ({exc})"
    if dry_run:
        return secret_files.path_for(directory, account_id), warning
    return DirectorySecrets(directory).put(account_id, secret), warning


class SecretUnavailable(ApsisError):
    """The source exists but could not be read (permissions, I/O): exit code 2."""

    exit_code = EX_USAGE
