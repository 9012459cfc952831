"""`apsis-sync`: run the daemon, report status, release a quarantine, store a secret.

Every failure ends as one line on stderr, ``error: ...``, and an exit code a script or a
Kubernetes probe can branch on. Secrets are never taken from the command line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import click

from apsis_core.cli import AppContext, ApsisCli, dry_run_option, env_file_option, output_option
from sync.logs import LEVELS as LOG_LEVELS

if TYPE_CHECKING:
    from sync.report import CycleReport
    from sync.runtime import Runtime
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
  130 interrupted (Ctrl-C)
"""


class SyncCli(ApsisCli):
    """apsis-sso's failure handling (one line, the exit code each error class carries)."""

    program = "apsis-sync"


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
        from sync.runtime import Runtime

        sync_settings = self.sync_settings()
        logs.configure(self.log_format or sync_settings.log_format, self.log_level or sync_settings.log_level)
        return Runtime.build(self.settings(), sync_settings)


pass_sync = click.make_pass_decorator(SyncContext)


@click.group(cls=SyncCli, epilog=EXIT_CODES, context_settings={"help_option_names": ["-h", "--help"]})
@env_file_option
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default=None,
    help="Log lines as text or JSON (default: APSIS_SYNC_LOG_FORMAT, else text). Logs go to stderr.",
)
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    default=None,
    help="Default: APSIS_SYNC_LOG_LEVEL, else INFO. DEBUG also shows what the Graph, Entra and HTTP "
    "libraries log (secrets scrubbed).",
)
@click.option(
    "--debug",
    is_flag=True,
    help="Show tracebacks of unexpected failures and log at DEBUG (unless --log-level says otherwise).",
)
@click.version_option(package_name="apsis-sso", prog_name="apsis-sync")
@click.pass_context
def main(ctx: click.Context, env_file: Path | None, log_format: str | None, log_level: str | None, debug: bool) -> None:
    """Keep APSIS One in step with each account's Microsoft Entra tenant.

    Each cycle deactivates APSIS One users deleted or disabled in Entra (with a guard
    against mass deletion) and flags client secrets that are about to expire. Settings
    come from APSIS_SSO_* (Keycloak, Entra authority, Graph URL) and APSIS_SYNC_*
    (interval, state, secrets directory, thresholds, SMTP, webhook, metrics) environment
    variables or a .env file (or --env-file); see docs/settings.md.

    \b
    Examples:
      apsis-sync run                         # the daemon
      apsis-sync run --once --dry-run -o json
      apsis-sync status -o json | jq '.accounts[] | select(.days_until_secret_expires < 30) | .id'
    """
    level = log_level.upper() if log_level else ("DEBUG" if debug else None)
    ctx.obj = SyncContext(env_file=env_file, debug=debug, log_format=log_format, log_level=level)


@main.command()
@click.option("--once", is_flag=True, help="Run one cycle and exit (exit code 1 if any account failed).")
@click.option("--dry-run", is_flag=True, help="Show what would be done; change nothing, send nothing, store nothing.")
@click.option("--account", "accounts", multiple=True, metavar="ID", help="Only this account (repeatable).")
@click.option(
    "--shard",
    metavar="I/N",
    help="Legacy, for replicas without a shared database: only accounts whose stable hash falls in shard I of N (0 <= I < N). Replicas on APSIS_SYNC_STATE_URL share accounts by leases instead.",
)
@click.option(
    "--interval",
    type=click.IntRange(min=10),
    metavar="SECONDS",
    help="Seconds between cycles (default: APSIS_SYNC_INTERVAL_SECONDS, else 300).",
)
@output_option
@pass_sync
def run(
    ctx: SyncContext,
    once: bool,
    dry_run: bool,
    accounts: tuple[str, ...],
    shard: str | None,
    interval: int | None,
    output_format: str,
) -> int:
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
    from sync import report as reports
    from sync import scheduler
    from sync.accounts import Shard

    def show(report: CycleReport) -> None:
        if output_format == "json":
            click.echo(json.dumps(report.to_dict()))
        else:
            reports.print_text(report)

    selected = Shard.parse(shard) if shard is not None else None
    only = [validation.account_id(a) for a in accounts] or None
    return scheduler.run(
        ctx.runtime(),
        only,
        selected,
        dry_run=dry_run,
        once=once or (dry_run and interval is None),
        interval=interval,
        on_report=show,
    )


@main.command()
@click.option("--account", "accounts", multiple=True, metavar="ID", help="Only this account (repeatable).")
@click.option(
    "--shard",
    metavar="I/N",
    help="Legacy: only the accounts of shard I of N (a replica's share without a shared database).",
)
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
    from sync import status as report
    from sync.accounts import Shard, managed

    only = [validation.account_id(a) for a in accounts] or None
    selected = Shard.parse(shard) if shard is not None else None
    doc = report.status(lambda: managed(ctx.api()), ctx.sync_settings().state_location, only, selected)
    if "keycloak_error" in doc:
        output.warn(
            f"{doc['keycloak_error']}: showing the state database only "
            "(accounts created or deleted since are not reflected)"
        )
    if output_format == "json":
        output.emit_json(doc)
    else:
        report.render(doc)
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

    rt = ctx.runtime()
    with rt.api() as api:
        done = guard.release_account(api, rt.state, account_id, dry_run=dry_run)
    if dry_run:
        click.echo(f"{done.account}: quarantined since {done.quarantined}; release would let {done.held_text} proceed")
    else:
        click.echo(f"{done.account}: released ({done.quarantined}); the next cycle carries out {done.held_text}")
    return 0


@main.group()
def secret() -> None:
    """The accounts' Entra client secrets as the daemon reads them."""


@secret.command("set")
@click.argument("account_id", metavar="ACCOUNT")
@click.option(
    "--client-secret-file",
    "--from-file",
    "from_file",
    metavar="PATH",
    help="Read the secret from a file ('-' for standard input), as apsis-sso's option of that name; "
    "--from-file is its former name.",
)
@dry_run_option
@pass_sync
def secret_set(ctx: SyncContext, account_id: str, from_file: str | None, dry_run: bool) -> int:
    """Store ACCOUNT's client secret where the daemon reads it (APSIS_SYNC_SECRETS_DIR).

    The secret is read from --client-secret-file, from APSIS_SYNC_CLIENT_SECRET, or from a hidden
    prompt; never from the command line. It is checked against the hint Keycloak recorded
    for the account (apsis.secretHint) when Keycloak is reachable. --dry-run reads and
    checks it, and says where it would go.

    \b
    Examples:
      apsis-sync secret set acme --client-secret-file - < acme.secret
      apsis-sync secret set acme --client-secret-file acme.secret --dry-run
    """
    from pydantic import SecretStr

    from apsis_core import validation
    from apsis_core.secret_input import SecretOptions, read_secret
    from sync import secrets
    from sync.accounts import load

    account_id = validation.account_id(account_id)
    value = read_secret(from_file, None, SecretOptions("--client-secret-file", "APSIS_SYNC_CLIENT_SECRET"))
    path, warning = secrets.store(
        ctx.sync_settings().secrets_path,
        account_id,
        SecretStr(value),
        lambda: load(ctx.api(), account_id),
        dry_run=dry_run,
    )
    done = (
        f"would store the client secret of {account_id} in {path} (dry run, nothing written)"
        if dry_run
        else f"stored the client secret of {account_id} in {path}"
    )
    click.echo(done + (f"; {warning}" if warning else ""))
    return 0


@main.group()
def state() -> None:
    """The daemon's state database (SQLite file, or PostgreSQL shared by replicas)."""


@state.command("import")
@click.argument("source", metavar="SQLITE_FILE", type=click.Path(path_type=Path))
@dry_run_option
@output_option
@pass_sync
def state_import(ctx: SyncContext, source: Path, dry_run: bool, output_format: str) -> int:
    """Copy a single daemon's SQLite state into the shared PostgreSQL state
    (APSIS_SYNC_STATE_URL), so replicas carry on from it.

    One transaction: all or nothing. Rows the target already has are kept as they are, so
    running it again changes nothing and never overwrites what a replica wrote since. The
    URL (with its password) comes from the environment or --env-file, never the command line.

    \b
    Examples:
      APSIS_SYNC_STATE_URL=postgresql://sync@db/sync apsis-sync state import /data/state.sqlite3 --dry-run
      apsis-sync state import /data/state.sqlite3 -o json
    """
    from apsis_core import output
    from sync.state import StateStore, StateUnavailable
    from sync.state_import import import_sqlite

    settings = ctx.sync_settings()
    if settings.state_url is None:
        raise StateUnavailable("set APSIS_SYNC_STATE_URL=postgresql://… (the shared state to import into)")
    target = StateStore(settings.state_location)
    try:
        done = import_sqlite(source, target, dry_run=dry_run)
    finally:
        target.close()
    if output_format == "json":
        output.emit_json(
            {
                "source": str(source),
                "target": target.describe(),
                "dry_run": dry_run,
                "tables": [{"table": d.table, "read": d.read, "added": d.added, "kept": d.kept} for d in done],
            }
        )
    else:
        verb = "would add" if dry_run else "added"
        for d in done:
            click.echo(f"{d.table}: {verb} {d.added} of {d.read} rows ({d.kept} already there)")
    return 0
