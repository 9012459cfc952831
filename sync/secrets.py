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

import os
import tempfile
from pathlib import Path
from typing import Protocol

from pydantic import SecretStr

from provisioning import validation


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
        # Validated ids cannot contain a path separator or "..".
        return self.directory / validation.account_id(account_id)

    def get(self, account_id: str) -> SecretStr | None:
        path = self._path(account_id)
        try:
            value = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SecretUnavailable(f"cannot read the client secret file {path}: {exc.strerror}") from None
        return SecretStr(value) if value else None

    def describe(self, account_id: str) -> str:
        return str(self._path(account_id))

    def put(self, account_id: str, secret: SecretStr) -> Path:
        """Store a secret atomically with owner-only permissions (rotation replaces it whole)."""
        path = self._path(account_id)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{account_id}.")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(secret.get_secret_value() + "\n")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path


class SecretUnavailable(Exception):
    """The source exists but could not be read (permissions, I/O)."""
