"""Read a customer's Entra client secret without it touching argv, logs or output.

A value on the command line ends up in shell history and in ``ps`` for every user of the
machine, so the CLI has no option that takes a secret. It reads one, in this order, from
``--client-secret-file PATH`` (``-`` for standard input, for pipes from a vault), from the
environment variable named by ``--client-secret-env`` (default
``APSIS_SSO_ENTRA_CLIENT_SECRET``), or from a hidden prompt typed twice.

Every secret read is remembered for the process's lifetime so the CLI's last line of
defence, ``scrub``, can blank it out of any error message before it is printed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from apsis_core import validation
from apsis_core.errors import InvalidInput

DEFAULT_ENV = "APSIS_SSO_ENTRA_CLIENT_SECRET"
MASK = "********"

_known: set[str] = set()


def remember(secret: str | None) -> None:
    """Register a secret so ``scrub`` hides it (ignores empty and very short values)."""
    if secret and len(secret) >= 6:
        _known.add(secret)


def scrub(text: str) -> str:
    for secret in sorted(_known, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def read_client_secret(file: str | None, env: str | None, *, what: str = "client secret") -> str:
    """The validated secret from a file, the environment or a hidden prompt."""
    if file is not None and env is not None:
        raise InvalidInput("give the client secret either by --client-secret-file or by --client-secret-env, not both")
    if file is not None:
        value = _from_file(file)
    elif env is not None:
        if not env.strip() or "=" in env:
            raise InvalidInput(f"--client-secret-env takes the name of an environment variable, not {env!r}")
        if env not in os.environ:
            raise InvalidInput(f"environment variable {env} is not set")
        value = os.environ[env]
    elif os.environ.get(DEFAULT_ENV):
        value = os.environ[DEFAULT_ENV]
    else:
        value = _prompt(what)
    remember(value.strip())
    return validation.client_secret(value)


def _from_file(file: str) -> str:
    if file == "-":
        return sys.stdin.read()
    try:
        return Path(file).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read the client secret file {file}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"the client secret file {file} is not UTF-8 text") from None


def _prompt(what: str) -> str:
    import click

    try:
        return str(click.prompt(
            f"{what.capitalize()} (the Value column in Entra; input hidden)",
            hide_input=True,
            confirmation_prompt=f"Repeat the {what}",
            err=True,
        ))
    except click.Abort:
        raise InvalidInput(
            f"no {what} given: use --client-secret-file PATH, set {DEFAULT_ENV}, or type it at the prompt"
        ) from None
