"""The per-account secret files the sync daemon reads: ``<directory>/<account id>``.

Keycloak masks an identity provider's client secret on read, so whoever sets a secret
must also hand it to the daemon. The format lives in the shared core, so that ``apsis-sso
account create``, ``rotate-secret`` and ``apply -f`` write exactly what ``apsis-sync`` reads
(and ``apsis-sync secret set`` writes), and a rotation cannot leave the daemon with a stale
copy.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from pydantic import SecretStr

from apsis_core import validation


def path_for(directory: Path, account_id: str) -> Path:
    # A validated account id cannot contain a path separator or "..".
    return directory / validation.account_id(account_id)


def read(directory: Path, account_id: str) -> SecretStr | None:
    """The stored secret, or None when there is no file (or it is empty)."""
    try:
        value = path_for(directory, account_id).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return SecretStr(value) if value else None


def write(directory: Path, account_id: str, secret: SecretStr) -> Path:
    """Store atomically with owner-only permissions (a rotation replaces the file whole)."""
    path = path_for(directory, account_id)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{account_id}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(secret.get_secret_value() + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
