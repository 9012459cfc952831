"""``apsis-sync state import``: a single daemon's SQLite state copied into the shared
PostgreSQL state, so replicas start from what it knew (delta links, the Entra users seen,
notices sent, deactivations done, the journal of deactivations in flight, quarantines).

One transaction on the target: all of it or nothing. A row already in the target (the same
account, user or notice) is kept as it is, so running it again changes nothing and it never
overwrites what a running replica wrote since. The round in progress (``entra_staged``) and
the leases are not copied: a round is redone, leases are taken afresh.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sync.state import StateStore
from sync.state_db import APPS_COLUMNS, StateUnavailable

# table -> its columns, in the order of the target's INSERT
TABLES: dict[str, tuple[str, ...]] = {
    "accounts": (
        "account",
        "delta_link",
        "delta_updated",
        "last_run",
        "last_success",
        "last_status",
        "last_errors",
        "last_deactivated",
        "deactivated_total",
        "secret_expires",
        "secret_expires_source",
        "quarantined_at",
        "quarantine_reason",
        "quarantine_held",
        *APPS_COLUMNS,
    ),
    "entra_users": ("account", "oid", "mail", "upn", "enabled", "removed", "seen"),
    "notices": ("account", "key", "kind", "sent_at"),
    "deactivations": ("account", "user_id", "oid", "email", "action", "reason", "at", "restored_reported"),
    "pending_deactivations": ("account", "user_id", "action", "planned_at"),
}


@dataclass(frozen=True)
class Imported:
    table: str
    read: int
    added: int

    @property
    def kept(self) -> int:
        """Rows the target had already (left as they are)."""
        return self.read - self.added


def import_sqlite(source: Path, target: StateStore, dry_run: bool = False) -> list[Imported]:
    """Copy ``source`` (a SQLite state file) into ``target`` (a shared state), one transaction."""
    if not target.shared:
        raise StateUnavailable(
            "the target is not a shared state: set APSIS_SYNC_STATE_URL=postgresql://… to import into"
        )
    if not source.is_file():
        raise StateUnavailable(f"no SQLite state at {source}")
    StateStore(source).close()  # brings an older file to the current schema (and refuses a newer one)
    try:
        db = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StateUnavailable(f"cannot read {source}: {exc}") from None
    db.row_factory = sqlite3.Row
    done: list[Imported] = []
    try:
        with target.transaction() as tx:
            for table, columns in TABLES.items():
                names = ", ".join(columns)
                rows = [tuple(r) for r in db.execute(f"SELECT {names} FROM {table}")]  # noqa: S608 - fixed names
                added = 0
                marks = ",".join("?" * len(columns))
                for row in rows:
                    cur = tx.execute(
                        f"INSERT INTO {table} ({names}) VALUES ({marks}) ON CONFLICT DO NOTHING RETURNING 1",  # noqa: S608
                        row,
                    )
                    added += len(cur.fetchall())
                done.append(Imported(table, len(rows), added))
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    finally:
        db.close()
    return done


class _DryRun(Exception):
    """Rolls the import's transaction back after counting."""
