"""`apsis-sync`: run the daemon, report status, release a quarantine, store a secret.

Every failure ends as one line on stderr, ``error: ...``, and an exit code a script or a
Kubernetes probe can branch on. Secrets are never taken from the command line.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any

import click
from pydantic import SecretStr, ValidationError

from provisioning.cli_failures import ApsisCli
from provisioning.errors import ApsisSsoError, InvalidInput

EXIT_CODES = """\b
Exit codes:
  0  success
  1  run --once: at least one account failed (the others were synced);
     an unexpected failure
  2  bad input (shard, account, setting), Keycloak unreachable or credentials
     refused, state database unusable
"""


class SyncCli(ApsisCli):
    """apsis-sso's failure handling, plus the daemon's own unusable-state and setting errors."""

    program = "apsis-sync"
    debug_option = False

    def known_failure(self, exc: Exception) -> tuple[str, int] | None:
        from sync.secrets import SecretUnavailable
        from sync.state import StateUnavailable

        if isinstance(exc, (StateUnavailable, SecretUnavailable)):
            return str(exc), 2
        if isinstance(exc, ValidationError):
            return _setting_error(exc), 2
        return None


def _setting_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    name = ".".join(str(p) for p in err.get("loc", ())) or "setting"
    title = exc.title
    prefix = "APSIS_SYNC_" if title == "SyncSettings" else "APSIS_SSO_"
    return f"invalid setting {prefix}{name.upper()}: {err.get('msg')}"


def _runtime(log_format: str | None, log_level: str | None) -> Any:
    from provisioning.settings import Settings
    from sync import logs
    from sync.daemon import Runtime
    from sync.settings import SyncSettings

    sync_settings = SyncSettings()
    logs.configure(log_format or sync_settings.log_format, log_level or sync_settings.log_level)
    return Runtime.build(Settings(), sync_settings)


@click.group(cls=SyncCli, epilog=EXIT_CODES, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--log-format", type=click.Choice(["text", "json"]), default=None,
              help="Log lines as text or JSON (default: APSIS_SYNC_LOG_FORMAT, else text). Logs go to stderr.")
@click.option("--log-level", default=None, help="DEBUG, INFO, WARNING or ERROR (default: APSIS_SYNC_LOG_LEVEL, else INFO).")
@click.pass_context
def main(ctx: click.Context, log_format: str | None, log_level: str | None) -> None:
    """Keep APSIS One in step with each account's Microsoft Entra tenant.

    Each cycle deactivates APSIS One users deleted or disabled in Entra (with a guard
    against mass deletion) and flags client secrets that are about to expire. Settings
    come from APSIS_SSO_* (Keycloak, Entra authority, Graph URL) and APSIS_SYNC_*
    (interval, state, secrets directory, thresholds, SMTP, webhook, metrics) environment
    variables or a .env file; see README.md.
    """
    ctx.obj = {"log_format": log_format, "log_level": log_level}


@main.command()
@click.option("--once", is_flag=True, help="Run one cycle and exit (exit code 1 if any account failed).")
@click.option("--dry-run", is_flag=True, help="Show what would be done; change nothing, send nothing, store nothing.")
@click.option("--account", "accounts", multiple=True, metavar="ID", help="Only this account (repeatable).")
@click.option("--shard", metavar="I/N", help="Only accounts whose stable hash falls in shard I of N (0 <= I < N).")
@click.option("--interval", type=click.IntRange(min=10), metavar="SECONDS",
              help="Seconds between cycles (default: APSIS_SYNC_INTERVAL_SECONDS, else 300).")
@click.option("--output", type=click.Choice(["text", "json"]), default="text",
              help="Cycle reports on stdout as text or JSON lines.")
@click.pass_context
def run(ctx: click.Context, once: bool, dry_run: bool, accounts: tuple[str, ...], shard: str | None,
        interval: int | None, output: str) -> int:
    """Sync the accounts: every interval until SIGTERM, or once with --once.

    A dry run implies --once unless an interval is given.
    """
    from sync.accounts import Shard
    from sync.daemon import run_once, serve

    selected = Shard.parse(shard) if shard is not None else None
    only = list(accounts) or None
    rt = _runtime(ctx.obj["log_format"], ctx.obj["log_level"])

    def show(report: Any) -> None:
        if output == "json":
            click.echo(json.dumps(report.to_dict()))
        else:
            _print_report(report)

    if once or (dry_run and interval is None):
        report = run_once(rt, only, selected, dry_run)
        show(report)
        return 0 if report.ok else 1
    if rt.sync.metrics_port:
        rt.metrics.serve(rt.sync.metrics_port, rt.sync.metrics_address)
    serve(rt, only, selected, dry_run, interval, on_report=show)
    return 0


def _print_report(report: Any) -> None:
    verb = "would" if report.dry_run else "did"
    if not report.results:
        click.echo("no accounts to sync")
    for r in report.results:
        head = f"{r.account}: {r.status}"
        if r.mode:
            head += f" ({r.mode}{', ' + r.resync_cause if r.resync_cause else ''})"
        click.echo(head)
        for action in r.resumed:
            click.echo(f"  {'would finish' if report.dry_run else 'finished'} (interrupted earlier): {action.describe(r.account)}")
        for action in r.actions:
            held = r.status == "quarantined"
            prefix = "held" if held else verb
            click.echo(f"  {prefix}: {action.describe(r.account)}")
        for restored in r.restored:
            click.echo(f"  report: {restored.describe()}")
        for notice in r.notices:
            click.echo(f"  {'would notify' if report.dry_run else 'notified'} {', '.join([*notice.to, *notice.cc]) or 'log'}: "
                       f"{notice.subject}")
        if r.expiry is not None:
            click.echo(f"  secret expires {r.expiry.expires.isoformat()} ({r.expiry.days_left} days, {r.expiry.source})")
        for note in r.notes:
            click.echo(f"  note: {note}")
        for error in r.errors:
            click.echo(f"  error: {error}")


@main.command()
@click.option("--account", "accounts", multiple=True, metavar="ID", help="Only this account (repeatable).")
@click.option("--output", type=click.Choice(["table", "json"]), default="table", help="A table for people or JSON.")
def status(accounts: tuple[str, ...], output: str) -> int:
    """Per account: last successful sync, users deactivated, quarantine, days until the
    secret expires, last errors. Reads the state database only (works while Keycloak is down)."""
    from rich.console import Console

    from sync import status as report
    from sync.settings import SyncSettings
    from sync.state import StateStore

    settings = SyncSettings()
    if not settings.database.exists():
        raise InvalidInput(f"no state database at {settings.database}: the daemon has not run with these settings")
    rows = report.rows(StateStore(settings.database), list(accounts) or None)
    missing = [a for a in accounts if a not in {r["account"] for r in rows}]
    if missing:
        raise InvalidInput(f"account {missing[0]!r} has no sync state (not synced by this instance yet)")
    if output == "json":
        click.echo(json.dumps(rows, indent=2))
    else:
        report.render(rows, Console(width=max(160, Console().width)))
    return 0


@main.command()
@click.argument("account_id", metavar="ACCOUNT")
@click.option("--dry-run", is_flag=True, help="Show what the quarantine holds; change nothing.")
@click.pass_context
def release(ctx: click.Context, account_id: str, dry_run: bool) -> int:
    """Release an account the deletion guard quarantined.

    The next cycle then carries out the deactivations that were held (as many as were
    held, plus the usual limits). If the deletions were a mistake, have the customer
    restore the users in Entra first: restored users are not deactivated.
    """
    from sync import guard
    from sync.accounts import load

    rt = _runtime(ctx.obj["log_format"], ctx.obj["log_level"])
    with rt.api() as api:
        account = load(api, account_id)
        held = rt.state.account(account.id)
        if not account.quarantined:
            raise InvalidInput(f"account {account.id!r} is not quarantined")
        count = f"{held.quarantine_held} held deactivation(s)" if held.quarantine_held else "held deactivations"
        if dry_run:
            click.echo(f"{account.id}: quarantined since {account.quarantined}; release would let {count} proceed")
            return 0
        guard.release(api, account)
    click.echo(f"{account.id}: released ({account.quarantined}); the next cycle carries out {count}")
    return 0


@main.group()
def secret() -> None:
    """The accounts' Entra client secrets as the daemon reads them."""


@secret.command("set")
@click.argument("account_id", metavar="ACCOUNT")
@click.option("--from-file", "from_file", metavar="PATH", help="Read the secret from a file ('-' for standard input).")
def secret_set(account_id: str, from_file: str | None) -> int:
    """Store ACCOUNT's client secret where the daemon reads it (APSIS_SYNC_SECRETS_DIR).

    The secret is read from --from-file, from APSIS_SYNC_CLIENT_SECRET, or from a hidden
    prompt; never from the command line. It is checked against the hint Keycloak recorded
    for the account (apsis.secretHint) when Keycloak is reachable.
    """
    from provisioning import validation
    from provisioning.keycloak_api import KeycloakApi
    from provisioning.settings import Settings
    from sync.accounts import load
    from sync.secrets import DirectorySecrets
    from sync.settings import SyncSettings

    account_id = validation.account_id(account_id)
    value = _read_secret(from_file)
    sync_settings = SyncSettings()
    settings = Settings()
    warning = None
    try:
        account = load(KeycloakApi.for_tooling(settings), account_id)
        if account.secret_hint and not value.startswith(account.secret_hint):
            raise InvalidInput(
                f"this secret does not match account {account_id}'s recorded secret (hint {account.secret_hint!r}); "
                "rotate it with apsis-sso first"
            )
    except ApsisSsoError as exc:
        if isinstance(exc, InvalidInput):
            raise
        warning = f"not checked against Keycloak ({exc})"
    path = DirectorySecrets(sync_settings.secrets_path).put(account_id, SecretStr(value))
    click.echo(f"stored the client secret of {account_id} in {path}" + (f"; {warning}" if warning else ""))
    return 0


def _read_secret(from_file: str | None) -> str:
    from provisioning import validation

    if from_file == "-":
        value = sys.stdin.read()
    elif from_file:
        try:
            value = Path(from_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"cannot read {from_file}: {exc.strerror}") from None
    elif os.environ.get("APSIS_SYNC_CLIENT_SECRET"):
        value = os.environ["APSIS_SYNC_CLIENT_SECRET"]
    elif sys.stdin.isatty():
        value = getpass.getpass("Client secret: ")
        if getpass.getpass("Again: ") != value:
            raise InvalidInput("the two entries differ")
    else:
        raise InvalidInput("no secret given: use --from-file PATH, APSIS_SYNC_CLIENT_SECRET or a terminal prompt")
    return validation.client_secret(value.strip())
