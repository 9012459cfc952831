"""`apsis-sync`: run the daemon, report status, release a quarantine, store a secret.

Every failure ends as one line on stderr, ``error: ...``, and an exit code a script or a
Kubernetes probe can branch on. Secrets are never taken from the command line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from apsis_core.cli import ApsisCli, AppContext, dry_run_option, env_file_option, output_option
from apsis_core.errors import ApsisError, InvalidInput
from sync.logs import LEVELS as LOG_LEVELS

if TYPE_CHECKING:
    from sync.daemon import Runtime
    from sync.settings import SyncSettings

EXIT_CODES = """\b
Exit codes:
  0  success
  1  run --once: an account failed for a reason a person must fix (the others
     were synced); an unexpected failure
  2  bad input (shard, account, setting), Keycloak credentials refused, state
     database unusable: change something first
  75 temporary failure (EX_TEMPFAIL): Keycloak unreachable or overloaded; with
     run --once also: every failed account failed only because Entra or Graph
     was unreachable, throttled (429) or failing (5xx). Retry later.
"""


class SyncCli(ApsisCli):
    """apsis-sso's failure handling (one line, the exit code each error class carries)."""

    program = "apsis-sync"
    debug_option = False


@dataclass
class SyncContext(AppContext):
    """apsis-sso's context (settings, Keycloak) plus the daemon's own settings and logging."""

    log_format: str | None = None
    log_level: str | None = None
    _sync_settings: SyncSettings | None = field(default=None, repr=False)

    def sync_settings(self) -> SyncSettings:
        if self._sync_settings is None:
            from apsis_core.settings import load_settings
            from sync.settings import SyncSettings

            self._sync_settings = load_settings(SyncSettings, self.env_file)
        return self._sync_settings

    def runtime(self) -> Runtime:
        from sync import logs
        from sync.daemon import Runtime

        sync_settings = self.sync_settings()
        logs.configure(self.log_format or sync_settings.log_format, self.log_level or sync_settings.log_level)
        return Runtime.build(self.settings(), sync_settings)


pass_sync = click.make_pass_decorator(SyncContext)


@click.group(cls=SyncCli, epilog=EXIT_CODES, context_settings={"help_option_names": ["-h", "--help"]})
@env_file_option
@click.option("--log-format", type=click.Choice(["text", "json"]), default=None,
              help="Log lines as text or JSON (default: APSIS_SYNC_LOG_FORMAT, else text). Logs go to stderr.")
@click.option("--log-level", type=click.Choice(LOG_LEVELS, case_sensitive=False), default=None,
              help="Default: APSIS_SYNC_LOG_LEVEL, else INFO. DEBUG also shows what the Graph, Entra and HTTP "
                   "libraries log (secrets scrubbed).")
@click.version_option(package_name="apsis-sso", prog_name="apsis-sync")
@click.pass_context
def main(ctx: click.Context, env_file: Path | None, log_format: str | None, log_level: str | None) -> None:
    """Keep APSIS One in step with each account's Microsoft Entra tenant.

    Each cycle deactivates APSIS One users deleted or disabled in Entra (with a guard
    against mass deletion) and flags client secrets that are about to expire. Settings
    come from APSIS_SSO_* (Keycloak, Entra authority, Graph URL) and APSIS_SYNC_*
    (interval, state, secrets directory, thresholds, SMTP, webhook, metrics) environment
    variables or a .env file (or --env-file); see README.md.

    \b
    Examples:
      apsis-sync run                         # the daemon
      apsis-sync run --once --dry-run -o json
      apsis-sync status -o json | jq '.accounts[] | select(.days_until_secret_expires < 30) | .id'
    """
    ctx.obj = SyncContext(env_file=env_file, log_format=log_format, log_level=log_level.upper() if log_level else None)


@main.command()
@click.option("--once", is_flag=True, help="Run one cycle and exit (exit code 1 if any account failed).")
@click.option("--dry-run", is_flag=True, help="Show what would be done; change nothing, send nothing, store nothing.")
@click.option("--account", "accounts", multiple=True, metavar="ID", help="Only this account (repeatable).")
@click.option("--shard", metavar="I/N", help="Only accounts whose stable hash falls in shard I of N (0 <= I < N).")
@click.option("--interval", type=click.IntRange(min=10), metavar="SECONDS",
              help="Seconds between cycles (default: APSIS_SYNC_INTERVAL_SECONDS, else 300).")
@output_option
@pass_sync
def run(ctx: SyncContext, once: bool, dry_run: bool, accounts: tuple[str, ...], shard: str | None,
        interval: int | None, output_format: str) -> int:
    """Sync the accounts: every interval until SIGTERM, or once with --once.

    A dry run implies --once unless an interval is given. With -o json each cycle's
    report is one JSON line. The daemon serves /metrics and /health on
    APSIS_SYNC_METRICS_PORT when it is set.

    \b
    Examples:
      apsis-sync run
      apsis-sync run --once --account acme
      apsis-sync run --dry-run --account acme -o json
      apsis-sync run --shard 0/4
    """
    from apsis_core import validation
    from sync.accounts import Shard
    from sync.daemon import run_once, serve

    selected = Shard.parse(shard) if shard is not None else None
    only = [validation.account_id(a) for a in accounts] or None
    rt = ctx.runtime()

    def show(report: Any) -> None:
        if output_format == "json":
            click.echo(json.dumps(report.to_dict()))
        else:
            _print_report(report)

    if once or (dry_run and interval is None):
        report = run_once(rt, only, selected, dry_run)
        show(report)
        return report.exit_code
    if rt.sync.metrics_port:
        rt.metrics.serve(rt.sync.metrics_port, rt.sync.metrics_address, rt.health)
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
@click.option("--shard", metavar="I/N", help="Only the accounts of shard I of N (a replica's share).")
@output_option
@pass_sync
def status(ctx: SyncContext, accounts: tuple[str, ...], shard: str | None, output_format: str) -> int:
    """Per account: stage, last successful sync, users deactivated, quarantine, days until
    the secret expires, last errors.

    Every account apsis-sso manages is listed (also those never synced, none that were
    deleted). When Keycloak cannot be read it answers from the daemon's state database
    alone and says so ("source": "state" in JSON, a warning on stderr).

    \b
    Examples:
      apsis-sync status
      apsis-sync status --account acme -o json
    """
    from apsis_core import output, validation
    from apsis_core.errors import NotFound
    from sync import status as report
    from sync.accounts import Shard, managed
    from sync.state import StateStore

    only = [validation.account_id(a) for a in accounts] or None
    selected = Shard.parse(shard) if shard is not None else None
    settings = ctx.sync_settings()
    state = StateStore(settings.database) if settings.database.exists() else None  # a read never creates it
    keycloak_error = None
    try:
        listed = managed(ctx.api())
    except ApsisError as exc:
        if state is None:
            exc.message = f"{exc.message}; and there is no state database at {settings.database} to answer from"
            raise
        listed, keycloak_error = None, str(exc)
        output.warn(f"{exc}: showing the state database only (accounts created or deleted since are not reflected)")
    doc = report.report(state, listed, only, selected, keycloak_error=keycloak_error)
    known = {r["id"] for r in doc["accounts"]}
    missing = [a for a in only or [] if a not in known]
    if missing:
        if listed is not None:
            raise NotFound(f"no account {missing[0]!r} managed by apsis-sso" +
                           (f" in shard {selected}" if selected else ""))
        raise NotFound(f"account {missing[0]!r} has no sync state (and Keycloak could not be asked)")
    if output_format == "json":
        output.emit_json(doc)
    else:
        report.render(doc, output.console())
    return 0


@main.command()
@click.argument("account_id", metavar="ACCOUNT")
@click.option("--dry-run", is_flag=True, help="Show what the quarantine holds; change nothing.")
@pass_sync
def release(ctx: SyncContext, account_id: str, dry_run: bool) -> int:
    """Release an account the deletion guard quarantined.

    The next cycle then carries out the deactivations that were held (as many as were
    held, plus the usual limits). If the deletions were a mistake, have the customer
    restore the users in Entra first: restored users are not deactivated.

    \b
    Examples:
      apsis-sync release acme --dry-run
      apsis-sync release acme
    """
    from sync import guard
    from sync.accounts import load

    rt = ctx.runtime()
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
@dry_run_option
@pass_sync
def secret_set(ctx: SyncContext, account_id: str, from_file: str | None, dry_run: bool) -> int:
    """Store ACCOUNT's client secret where the daemon reads it (APSIS_SYNC_SECRETS_DIR).

    The secret is read from --from-file, from APSIS_SYNC_CLIENT_SECRET, or from a hidden
    prompt; never from the command line. It is checked against the hint Keycloak recorded
    for the account (apsis.secretHint) when Keycloak is reachable. --dry-run reads and
    checks it, and says where it would go.

    \b
    Examples:
      apsis-sync secret set acme --from-file - < acme.secret
      apsis-sync secret set acme --from-file acme.secret --dry-run
    """
    from pydantic import SecretStr

    from apsis_core import secret_files, validation
    from sync.accounts import load
    from sync.secrets import DirectorySecrets

    account_id = validation.account_id(account_id)
    value = _read_secret(from_file)
    sync_settings = ctx.sync_settings()
    warning = None
    try:
        account = load(ctx.api(), account_id)
        if account.secret_hint and not value.startswith(account.secret_hint):
            raise InvalidInput(
                f"this secret does not match account {account_id}'s recorded secret (hint {account.secret_hint!r}); "
                "rotate it with apsis-sso first"
            )
    except ApsisError as exc:
        if isinstance(exc, InvalidInput):
            raise
        warning = f"not checked against Keycloak ({exc})"
    if dry_run:
        path = secret_files.path_for(sync_settings.secrets_path, account_id)
        click.echo(f"would store the client secret of {account_id} in {path} (dry run, nothing written)"
                   + (f"; {warning}" if warning else ""))
        return 0
    path = DirectorySecrets(sync_settings.secrets_path).put(account_id, SecretStr(value))
    click.echo(f"stored the client secret of {account_id} in {path}" + (f"; {warning}" if warning else ""))
    return 0


def _read_secret(from_file: str | None) -> str:
    from apsis_core.secret_input import SecretOptions, read_secret

    return read_secret(from_file, None, SecretOptions("--from-file", "APSIS_SYNC_CLIENT_SECRET"))
