"""Read a secret without it touching argv, logs or output, and blank out every secret known.

A value on the command line ends up in shell history and in ``ps`` for every user of the
machine, so neither CLI has an option that takes a secret. ``read_secret`` reads one, in
this order: from a file option (``-`` for standard input, for pipes from a vault), from the
environment variable an option names, from the command's default variable, or from a
hidden prompt typed twice. ``apsis-sso`` (the customer's client secret) and ``apsis-sync
secret set`` (the daemon's copy) both read through it.

Every secret read is remembered (``apsis_core.redaction``), so that nothing printed
afterwards shows it.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from apsis_core import validation
from apsis_core.errors import InvalidInput
from apsis_core.redaction import remember


@dataclass(frozen=True)
class SecretOptions:
    """How a command names its ways in, for the messages that say which to use."""

    file_option: str
    default_env: str
    env_option: str | None = None
    what: str = "client secret"


def read_secret(file: str | None, env: str | None, options: SecretOptions) -> str:
    """The validated client secret from a file, the environment or a hidden prompt."""
    what = options.what
    if file is not None and env is not None:
        raise InvalidInput(f"give the {what} either by {options.file_option} or by {options.env_option}, not both")
    if file is not None:
        value = _from_file(file, what)
    elif env is not None:
        if not env.strip() or "=" in env:
            raise InvalidInput(f"{options.env_option} takes the name of an environment variable, not {env!r}")
        if env not in os.environ:
            raise InvalidInput(f"environment variable {env} is not set")
        value = os.environ[env]
    elif os.environ.get(options.default_env):
        value = os.environ[options.default_env]
    else:
        value = _prompt(options)
    remember(value.strip())
    return validation.client_secret(value)


def _from_file(file: str, what: str) -> str:
    if file == "-":
        return sys.stdin.read()
    try:
        return Path(file).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read the {what} file {file}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"the {what} file {file} is not UTF-8 text") from None


def _prompt(options: SecretOptions) -> str:
    import click

    what = options.what
    try:
        return str(
            click.prompt(
                f"{what.capitalize()} (the Value column in Entra; input hidden)",
                hide_input=True,
                confirmation_prompt=f"Repeat the {what}",
                err=True,
            )
        )
    except click.Abort:
        raise InvalidInput(
            f"no {what} given: use {options.file_option} PATH, set {options.default_env}, or type it at the prompt"
        ) from None
