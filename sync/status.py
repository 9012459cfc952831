"""The per-account status report: Keycloak's accounts, with what the daemon remembers of each.

Keycloak says which accounts exist (every managed one, also those never synced yet, and
none that were deleted), their stage, recorded secret expiry and quarantine; the state
database adds the daemon's own memory (last runs, deactivations, errors, the expiry Graph
reported). When Keycloak is down — exactly when an operator asks — the report still
answers from the state database alone, and says so (``source: "state"``). In a sharded
deployment each replica's state holds the accounts of its shard.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from apsis_core import output
from apsis_core.account import AccountRecord
from apsis_core.contract import SYNCED_STAGES
from apsis_core.errors import ApsisError, NotFound
from sync.accounts import Shard
from sync.state import AccountState, StateStore

SOURCE_KEYCLOAK = "keycloak"
SOURCE_STATE = "state"


def status(
    list_accounts: Callable[[], list[AccountRecord]],
    database: Path | str,
    only: list[str] | None = None,
    shard: Shard | None = None,
    today: date | None = None,
) -> dict[str, Any]:
    """``apsis-sync status``: Keycloak's accounts with the state database's memory of each,
    or the state alone (``source: "state"``, with ``keycloak_error``) when Keycloak cannot be
    read. A read never creates the state database; named accounts that are not there are an
    error."""
    shared = not isinstance(database, Path)  # a PostgreSQL URL: every replica's accounts
    state = StateStore(database) if shared or Path(database).exists() else None
    keycloak_error = None
    try:
        listed: list[AccountRecord] | None = list_accounts()
    except ApsisError as exc:
        if state is None:
            raise exc.with_message(
                f"{exc.message}; and there is no state database at {database} to answer from"
            ) from None
        listed, keycloak_error = None, str(exc)
    doc = report(state, listed, only, shard, today, keycloak_error=keycloak_error)
    known = {r["id"] for r in doc["accounts"]}
    missing = [a for a in only or [] if a not in known]
    if missing and listed is not None:
        raise NotFound(f"no account {missing[0]!r} managed by apsis-sso" + (f" in shard {shard}" if shard else ""))
    if missing:
        raise NotFound(f"account {missing[0]!r} has no sync state (and Keycloak could not be asked)")
    return doc


def report(
    state: StateStore | None,
    accounts: list[AccountRecord] | None,
    only: list[str] | None = None,
    shard: Shard | None = None,
    today: date | None = None,
    keycloak_error: str | None = None,
) -> dict[str, Any]:
    """``accounts`` from Keycloak, or None when it could not be read (then the state alone)."""
    today = today or date.today()
    remembered = {st.account: st for st in state.accounts()} if state is not None else {}
    if accounts is not None:
        rows = [_row(today, a.id, remembered.get(a.id), state, a) for a in accounts]
    else:
        rows = [_row(today, account_id, st, state, None) for account_id, st in sorted(remembered.items())]
    rows = [r for r in rows if (not only or r["id"] in only) and (shard is None or shard.owns(r["id"]))]
    doc: dict[str, Any] = {"source": SOURCE_KEYCLOAK if accounts is not None else SOURCE_STATE}
    if keycloak_error is not None:
        doc["keycloak_error"] = keycloak_error
    doc["accounts"] = rows
    return doc


def _row(
    today: date, account_id: str, st: AccountState | None, state: StateStore | None, account: AccountRecord | None
) -> dict[str, Any]:
    st = st or AccountState(account_id)
    expires, source = st.secret_expires, st.secret_expires_source
    if account is not None and source != "graph":  # the record may have been rotated since the last run
        expires, source = account.secret_expires, "recorded" if account.secret_expires else None
    if account is not None:
        quarantined = account.quarantined
    else:
        quarantined = f"{st.quarantined_at} {st.quarantine_reason}" if st.quarantined_at else None
    deactivations = state.deactivations(account_id) if state is not None and st.last_run else []
    return {
        "id": account_id,
        "stage": account.stage if account is not None else None,
        "provider": account.provider if account is not None else None,
        "credential": account.credential if account is not None else None,
        "synced": account.stage in SYNCED_STAGES if account is not None else None,
        "last_run": st.last_run,
        "last_status": st.last_status,
        "last_success": st.last_success,
        "deactivated_last_run": st.last_deactivated,
        "deactivated_total": st.deactivated_total,
        "restored_in_entra": sum(1 for d in deactivations if d.restored_reported),
        "quarantined": quarantined,
        "quarantine_held": st.quarantine_held,
        "secret_expires": expires.isoformat() if expires else None,
        "secret_expiry_source": source,
        "days_until_secret_expires": (expires - today).days if expires else None,
        "has_delta_link": st.delta_link is not None,
        "last_errors": st.last_errors,
        "domain_ownership": account.ownership.to_dict() if account is not None and not account.awaiting_setup else None,
    }


def render(doc: dict[str, Any]) -> None:
    """The status as apsis-sso prints its tables (``apsis_core.output.table``); moments whole."""
    title = "apsis-sync status"
    if doc["source"] == SOURCE_STATE:
        title += " (state database only: Keycloak could not be read)"
    rows = []
    for row in doc["accounts"]:
        days = row["days_until_secret_expires"]
        expiry = "unknown" if days is None else ("EXPIRED" if days <= 0 else f"{days} days")
        if days is not None and row["secret_expiry_source"]:
            expiry += f" ({row['secret_expiry_source']})"
        stage = row["stage"] or "?"
        if row["synced"] is False:
            stage += " (not synced)"
        rows.append(
            (
                row["id"],
                stage,
                _provider(row),
                row["last_success"] or "never",
                row["last_run"] or "never",
                row["last_status"] or "-",
                f"{row['deactivated_last_run']}/{row['deactivated_total']}",
                f"yes: {row['quarantined']}" if row["quarantined"] else "no",
                expiry,
                _domains(row["domain_ownership"]),
                "; ".join(row["last_errors"]) or "-",
            )
        )
    output.table(
        [
            "account",
            "stage",
            "provider",
            "last success",
            "last run",
            "outcome",
            "deactivated (last/total)",
            "quarantine",
            "secret expires in",
            "domains",
            "last errors",
        ],
        rows,
        title=title,
        whole=("account", "last success", "last run"),
    )


def _provider(row: dict[str, Any]) -> str:
    """The provider column: its kind, and how its app authenticates when not with a secret."""
    kind = row.get("provider") or "?"
    return f"{kind} (certificate)" if row.get("credential") == "certificate" else kind


def _domains(held: dict[str, Any] | None) -> str:
    """The domain ownership column: what needs a look (flags, overrides, not yet proven), or ok."""
    if held is None:
        return "-"
    parts = [
        f"{a['domain']}: {'in tenant ' + a['owner'] if a['status'] == 'other-tenant' else 'verified nowhere'}"
        for a in held["alerts"]
    ]
    alerted = {a["domain"] for a in held["alerts"]}
    parts += [
        f"{d}: override ({held['override'][d]['reason']})"
        for d in held["unproven"]
        if d in held["override"] and d not in alerted
    ]
    parts += [f"{d}: not proven yet" for d in held["unproven"] if d not in held["override"] and d not in alerted]
    return "; ".join(parts) or "proven"
