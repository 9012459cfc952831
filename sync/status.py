"""The per-account status report, from the state database alone.

Reading only the daemon's own state means ``apsis-sync status`` answers even while Keycloak
or Entra are down — which is exactly when an operator asks. In a sharded deployment each
replica reports the accounts of its shard.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from rich.console import Console
from rich.table import Table

from sync.state import StateStore


def rows(state: StateStore, only: list[str] | None = None, today: date | None = None) -> list[dict[str, Any]]:
    today = today or date.today()
    out: list[dict[str, Any]] = []
    for st in state.accounts():
        if only and st.account not in only:
            continue
        deactivations = state.deactivations(st.account)
        out.append({
            "account": st.account,
            "last_run": st.last_run,
            "last_status": st.last_status,
            "last_success": st.last_success,
            "deactivated_last_run": st.last_deactivated,
            "deactivated_total": st.deactivated_total,
            "restored_in_entra": sum(1 for d in deactivations if d.restored_reported),
            "quarantined": bool(st.quarantined_at),
            "quarantined_at": st.quarantined_at,
            "quarantine_reason": st.quarantine_reason,
            "quarantine_held": st.quarantine_held,
            "secret_expires": st.secret_expires.isoformat() if st.secret_expires else None,
            "secret_expiry_source": st.secret_expires_source,
            "days_until_secret_expiry": (st.secret_expires - today).days if st.secret_expires else None,
            "has_delta_link": st.delta_link is not None,
            "last_errors": st.last_errors,
        })
    return out


def render(data: list[dict[str, Any]], console: Console) -> None:
    table = Table(title="apsis-sync status", show_lines=False)
    for column in ("account", "last success", "last run", "deactivated (last/total)", "quarantine",
                   "secret expires in", "last errors"):
        table.add_column(column, overflow="fold")
    for row in data:
        days = row["days_until_secret_expiry"]
        expiry = "unknown" if days is None else ("EXPIRED" if days <= 0 else f"{days} days")
        if days is not None and row["secret_expiry_source"]:
            expiry += f" ({row['secret_expiry_source']})"
        quarantine = f"yes: {row['quarantine_reason']}" if row["quarantined"] else "no"
        errors = "; ".join(row["last_errors"]) or "-"
        table.add_row(
            row["account"],
            row["last_success"] or "never",
            f"{row['last_run'] or 'never'} ({row['last_status'] or '-'})",
            f"{row['deactivated_last_run']}/{row['deactivated_total']}",
            quarantine,
            expiry,
            errors,
        )
    console.print(table)
