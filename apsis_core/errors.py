"""Errors a person can act on: one line, no secrets, each class carrying its exit code.

One root, branches by kind (httpx's ``_exceptions.py`` is the model)::

    ApsisError                      1   the root: a complete one-line explanation
    ├── InvalidInput                2   bad input or configuration: a person must change something
    │   ├── NotFound                2     an account, user or resource named does not exist
    │   └── Conflict                2     clashes with existing state
    ├── Declined                    1   the operator answered no: nothing was changed
    ├── TemporaryFailure           75   unreachable, timed out, 5xx or 429: retry later
    ├── Interrupted                 1   an apply stopped midway; run it again to complete it
    │   └── InterruptedByOutage    75     ... by a TemporaryFailure
    ├── KeycloakError               1   Keycloak answered something unexpected
    │   ├── KeycloakRefused         2     our credentials or permissions, or none configured
    │   └── KeycloakUnavailable    75     unreachable, timed out, 5xx or 429
    └── EntraError                  2   Entra or Graph refused
        ├── EntraRefused            2     what a person typed: tenant, application, secret, consent
        ├── EntraUnavailable       75     unreachable, timed out, 5xx or 429
        ├── GraphRequestFailed      1     Graph answered an error the daemon cannot work around
        └── DeltaTokenExpired       1     the stored delta token is gone: a full resync follows

Every class marked 75 is also a ``TemporaryFailure``, and ``EntraRefused`` an ``InvalidInput``
(it is about what a person typed; ``KeycloakRefused`` is about our configuration, not the
request), so a caller asks by kind (``except TemporaryFailure``, ``is_temporary``) or by
service (``except EntraError``) as it needs. What each outside library's failures mean
is decided in one place per library: python-keycloak in ``apsis_core.keycloak.failures``,
azure-identity, httpx and Entra's AADSTS codes in ``apsis_core.entra`` (its ``AADSTS`` table),
msgraph-sdk's Graph answers in ``sync.graph_client``. Whether an HTTP status is worth a
retry (429 or 5xx) is ``retryable_status``, here, for all of them.

The root is a ``click.ClickException``: click already knows how to end a command with an
exception's message and its ``exit_code``, so both CLIs leave that to it, and the daemon's
failures share the same root, so one account's failure is recorded with the same one-line
message a command would print. Exit code ``3`` is no error: ``--detailed-exitcode`` saying
there were changes.
"""

from __future__ import annotations

from typing import IO, Any, Literal, Self

import click

from apsis_core.redaction import scrub

EX_FAILURE = 1
EX_USAGE = 2
EX_CHANGES = 3  # --detailed-exitcode: there were changes (pending, or applied)
EX_TEMPFAIL = 75  # sysexits.h
EX_INTERRUPTED = 130  # the shell's 128 + SIGINT: Ctrl-C

RefusalKind = Literal["expired", "invalid", "other"]
"""What an Entra refusal means for the daemon (``apsis_core.entra.AADSTS``)."""


def retryable_status(status: int | None) -> bool:
    """Throttled (429) or failing (5xx): no verdict on the request; the same one later may
    pass. The one rule for Keycloak, Entra's token endpoint, discovery and Graph."""
    return status is not None and (status == 429 or 500 <= status <= 599)


class ApsisError(click.ClickException):
    """The root: the message is a complete, one-line explanation for an operator."""

    exit_code = EX_FAILURE

    def show(self, file: IO[Any] | None = None) -> None:
        """``error: <message>`` on stderr, with every secret the process knows blanked out."""
        click.echo(f"error: {scrub(self.format_message())}", file=file, err=file is None)

    def with_message(self, message: str) -> Self:
        """The same error (class, exit code and what else it carries, e.g. ``EntraRefused.reason``)
        saying ``message`` instead: for a caller that adds what it knows (the account, the others)."""
        # Not copy.copy: it would call __init__ with the message alone.
        changed = type(self).__new__(type(self))
        changed.__dict__.update(self.__dict__)
        click.ClickException.__init__(changed, message)
        return changed


# -- by kind ----------------------------------------------------------------------------


class InvalidInput(ApsisError):
    """The operator asked for something malformed or impossible (exit code 2)."""

    exit_code = EX_USAGE


class NotFound(InvalidInput):
    """An account, user or resource named by the operator does not exist."""


class Conflict(InvalidInput):
    """The request clashes with existing state (duplicate account, domain of another account)."""


class Declined(ApsisError):
    """The operator answered no (or nobody could answer): nothing was changed (exit code 1)."""

    exit_code = EX_FAILURE


class TemporaryFailure(ApsisError):
    """A service could not be reached, timed out or was overloaded (5xx, 429): exit code 75.

    Nothing was wrong with the request; the same command later is expected to work, and
    every command of both CLIs is safe to repeat."""

    exit_code = EX_TEMPFAIL


class Interrupted(ApsisError):
    """Some changes of a plan were applied, then one failed (exit code 1).

    Every planner re-reads Keycloak, so running the same command again completes the work;
    the message says so, and which step failed."""

    exit_code = EX_FAILURE


class InterruptedByOutage(Interrupted, TemporaryFailure):
    """``Interrupted`` by a temporary failure (Keycloak went away): exit code 75 like that
    failure, since a retry later completes it."""

    exit_code = EX_TEMPFAIL


# -- Keycloak ---------------------------------------------------------------------------


class KeycloakError(ApsisError):
    """Keycloak answered with an unexpected error (exit code 1)."""

    exit_code = EX_FAILURE


class KeycloakRefused(KeycloakError):
    """Keycloak refused our credentials or permissions, or none are configured (exit code 2:
    a person must fix the configuration; nothing was changed)."""

    exit_code = EX_USAGE


class KeycloakUnavailable(KeycloakError, TemporaryFailure):
    """Keycloak cannot be reached, did not answer in time, or answered 5xx/429 (exit code 75)."""

    exit_code = EX_TEMPFAIL


# -- Entra and Graph --------------------------------------------------------------------


class EntraError(ApsisError):
    """Entra or Graph refused the tenant, the application or the secret, or answered what we
    cannot use (exit code 2)."""

    exit_code = EX_USAGE


class EntraRefused(EntraError, InvalidInput):
    """Entra refused what a person typed: the tenant, the application, the secret, or (with a
    token) Graph access because the permission has no admin consent yet (exit code 2).

    ``reason`` names which, for pages that explain it in their own words: the AADSTS code
    (``"AADSTS7000215"``) or ``"consent"``. ``aadsts`` is that code as a number (None for
    consent) and ``kind`` what it means for the daemon: ``expired`` (7000222), ``invalid``
    (7000215) or ``other`` (``apsis_core.entra.AADSTS``). The message is the operator's line."""

    exit_code = EX_USAGE

    def __init__(self, message: str, reason: str, *, aadsts: int | None = None, kind: RefusalKind = "other") -> None:
        super().__init__(message)
        self.reason = reason
        self.aadsts = aadsts
        self.kind = kind


class EntraUnavailable(EntraError, TemporaryFailure):
    """Entra or Graph could not be reached, timed out or kept answering 5xx/429 (exit code 75)."""

    exit_code = EX_TEMPFAIL


class GraphRequestFailed(EntraError):
    """Graph answered an error the daemon cannot work around (a 4xx other than the ones it
    handles, a body it cannot read): exit code 1."""

    exit_code = EX_FAILURE

    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class DeltaTokenExpired(EntraError):
    """The stored delta (or skip) token is gone: ``syncStateNotFound`` or ``resyncRequired``/410
    (exit code 1; the daemon starts a full resync instead). ``location`` is the restart URL
    Graph offers with a 410, when it offered one."""

    exit_code = EX_FAILURE

    def __init__(self, message: str, code: str, location: str | None) -> None:
        super().__init__(message)
        self.code = code
        self.location = location


def is_temporary(exc: BaseException) -> bool:
    """Retrying later is expected to work (exit code 75)."""
    return getattr(exc, "exit_code", None) == EX_TEMPFAIL
