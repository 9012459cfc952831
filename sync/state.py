"""The daemon's memory: an embedded SQLite file, or a PostgreSQL database that replicas share
(``sync/state_db.py`` says how each engine runs it).

What it keeps, and why it is safe to lose:

* per account: the Graph ``deltaLink`` (lost → the next cycle does a full resync, which acts
  only on users Entra positively reports as disabled or who are provably gone), the last run's
  outcome and errors, the secret expiry it last computed, and a mirror of the quarantine;
* per account and Entra object id: the last ``mail``/UPN/enabled state seen, because a
  ``@removed`` item carries nothing but the id — this map is how an unlinked APSIS One user
  is still found when their Entra user is deleted;
* notifications sent (so each expiry threshold is mailed once) and deactivations done (so a
  user restored in Entra is reported exactly once);
* the deactivation in flight (written before its first Keycloak change, removed in the same
  transaction that records it as done), so a daemon killed midway finishes it next cycle.
  Lost with the database, it is still found: the user carries ``apsis.disabledBy``. Processes
  sharing the state take turns per user (a byte-range lock beside a SQLite file, an advisory
  lock on PostgreSQL), so a user is deactivated and counted once whoever gets there first;
* which replica syncs which account now (``leases``: holder, expiry, when next due), so
  replicas on one PostgreSQL share the accounts out and take over a dead one's;
* the users of the round in progress (``entra_staged``): a round is read page by page and
  each page is written here as it arrives, so a 100,000-user listing never sits in memory;
  it becomes the account's ``entra_users`` only in the transaction that stores the round's
  delta link (``record_run``), and a round cut short leaves nothing behind that counts;
* when the app's client secrets were last read from Graph (``applications``, at most once a
  day, after a 403 too) and what they were, and with which credentials (a new secret is asked
  with at once).

The quarantine's source of truth is the organization attribute ``apsis.quarantined``; the
copy here only remembers how many deactivations were held, so a release can let them through.
One connection is shared by the worker threads behind a lock; SQLite's WAL keeps ``status``
readable while a cycle writes, and PostgreSQL's MVCC does the same for every replica.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sync.state_db import (
    SCHEMA_VERSION,
    Database,
    SqliteDatabase,
    StateUnavailable,
    Tx,
    open_database,
)

__all__ = ["SCHEMA_VERSION", "StateStore", "StateUnavailable"]

_STAGE = (
    "INSERT INTO entra_staged VALUES (?,?,?,?,?,?) ON CONFLICT (account, oid) DO UPDATE SET "
    "mail=excluded.mail, upn=excluded.upn, enabled=excluded.enabled, removed=excluded.removed"
)


def round_key(account: str, dry_run: bool = False) -> str:
    """Where a round is staged: a dry run's round apart from the daemon's (``#`` is not
    allowed in account ids), so a dry run next to a running daemon never mixes the two."""
    return f"{account}#dry-run" if dry_run else account


class DeactivationTurn:
    """What ``StateStore.deactivation_turn`` lets its holder read and write about its user."""

    def __init__(self, store: StateStore, account: str, user_id: str) -> None:
        self._store, self.account, self.user_id = store, account, user_id

    def recorded(self) -> bool:
        """This user's deactivation in this account is on record (done, by whoever)."""
        return self._store.deactivation(self.account, self.user_id) is not None

    def record(self, oid: str | None, email: str | None, action: str, reason: str) -> None:
        self._store.record_deactivation(self.account, self.user_id, oid, email, action, reason)

    def drop_pending(self) -> None:
        self._store.drop_pending_deactivation(self.account, self.user_id)


def _record_deactivation(
    db: Tx, account: str, user_id: str, oid: str | None, email: str | None, action: str, reason: str
) -> None:
    db.execute("INSERT INTO accounts (account) VALUES (?) ON CONFLICT DO NOTHING", (account,))
    db.execute(
        "INSERT INTO deactivations VALUES (?,?,?,?,?,?,?,NULL) ON CONFLICT (account, user_id) DO UPDATE SET "
        "oid=excluded.oid, email=excluded.email, action=excluded.action, reason=excluded.reason, "
        "at=excluded.at, restored_reported=NULL",
        (account, user_id, oid, email, action, reason, utcnow()),
    )
    db.execute("DELETE FROM pending_deactivations WHERE account=? AND user_id=?", (account, user_id))
    db.execute("UPDATE accounts SET deactivated_total=deactivated_total+1 WHERE account=?", (account,))


def utcnow() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass
class AccountState:
    account: str
    delta_link: str | None = None
    last_run: str | None = None
    last_success: str | None = None
    last_status: str | None = None
    last_errors: list[str] = field(default_factory=list)
    last_deactivated: int = 0
    deactivated_total: int = 0
    secret_expires: date | None = None
    secret_expires_source: str | None = None
    quarantined_at: str | None = None
    quarantine_reason: str | None = None
    quarantine_held: int = 0


@dataclass(frozen=True)
class KnownUser:
    oid: str
    mail: str | None
    upn: str | None
    enabled: bool | None
    removed: str | None


@dataclass(frozen=True)
class Deactivation:
    account: str
    user_id: str
    oid: str | None
    email: str | None
    action: str
    reason: str
    at: str
    restored_reported: str | None


class StateStore:
    """All reads and writes of the state database."""

    def __init__(self, location: Path | str) -> None:
        """``location``: a SQLite file path, or a ``postgresql://`` URL shared by replicas."""
        self._db: Database = open_database(location)
        # The applications cadence of the account rows ``starting_point`` just read, handed to
        # that cycle's ``applications_read`` once (a round trip less per account and cycle).
        self._apps_ahead: dict[str, Any] = {}
        self.path = Path(location) if isinstance(self._db, SqliteDatabase) else Path(self._db.describe())

    @property
    def backend(self) -> str:
        return self._db.name

    @property
    def shared(self) -> bool:
        """Other processes (replicas) may work on this state at once."""
        return self._db.shared

    def describe(self) -> str:
        """Where the state is, for messages (a URL without its password)."""
        return self._db.describe()

    def close(self) -> None:
        self._db.close()

    def transaction(self) -> Any:
        return self._db.transaction()

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        return self._db.query(sql, tuple(params))

    def _ensure(self, db: Tx, account: str) -> None:
        db.execute("INSERT INTO accounts (account) VALUES (?) ON CONFLICT DO NOTHING", (account,))

    # -- accounts ---------------------------------------------------------------------

    def account(self, account: str) -> AccountState:
        rows = self._query("SELECT * FROM accounts WHERE account=?", (account,))
        return _account(rows[0]) if rows else AccountState(account)

    def starting_point(self, account: str) -> tuple[AccountState, list[dict[str, Any]]]:
        """What a cycle reads before Graph, at once (one round trip on PostgreSQL): the
        account's state and the deactivations an earlier run left pending."""
        rows, pending = self._db.query_many(
            [
                ("SELECT * FROM accounts WHERE account=?", (account,)),
                ("SELECT action FROM pending_deactivations WHERE account=? ORDER BY planned_at", (account,)),
            ]
        )
        if rows:
            self._apps_ahead[account] = rows[0]
        else:
            self._apps_ahead.pop(account, None)
        return (_account(rows[0]) if rows else AccountState(account)), [json.loads(r["action"]) for r in pending]

    def accounts(self) -> list[AccountState]:
        return [_account(r) for r in self._query("SELECT * FROM accounts ORDER BY account")]

    def delta_link(self, account: str) -> str | None:
        return self.account(account).delta_link

    def forget_delta_link(self, account: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE accounts SET delta_link=NULL WHERE account=?", (account,))

    def record_run(
        self,
        account: str,
        *,
        ok: bool,
        status: str,
        errors: list[str],
        deactivated: int,
        delta_link: str | None = None,
        seen: list[KnownUser] | None = None,
        full_listing: bool = False,
        staged: bool = True,
        secret_expires: date | None = None,
        secret_expires_source: str | None = None,
    ) -> None:
        """One account's cycle, committed at once: the new delta link is stored together with
        the users it covers (``seen``, or what ``stage`` wrote during the round), so a crash
        never leaves a link ahead of what was acted on. Without a delta link (a failed or held
        round) the staged users are dropped. ``staged=False`` says the round staged nothing
        (an idle round), which saves the merge."""
        now = utcnow()
        self._apps_ahead.pop(account, None)  # the cycle is over: nothing read ahead outlives it
        with self.transaction() as db:
            self._ensure(db, account)
            db.execute(
                "UPDATE accounts SET last_run=?, last_status=?, last_errors=?, last_deactivated=? WHERE account=?",
                (now, status, json.dumps(errors), deactivated, account),
            )
            if ok:
                db.execute("UPDATE accounts SET last_success=? WHERE account=?", (now, account))
            if delta_link is not None:
                db.execute(
                    "UPDATE accounts SET delta_link=?, delta_updated=? WHERE account=?", (delta_link, now, account)
                )
            if secret_expires is not None:
                db.execute(
                    "UPDATE accounts SET secret_expires=?, secret_expires_source=? WHERE account=?",
                    (secret_expires.isoformat(), secret_expires_source, account),
                )
            if seen:
                db.execute("DELETE FROM entra_staged WHERE account=?", (account,))
                db.executemany(_STAGE, ((account, *_row(u)) for u in seen))
            if not (staged or seen or full_listing):
                return  # an empty round: nothing staged to keep or drop
            if full_listing:
                # A full listing is the whole truth: whoever it does not list is gone.
                db.execute(
                    "UPDATE entra_users SET removed='absent', seen=? WHERE account=? AND removed IS NULL AND oid NOT IN "
                    "(SELECT oid FROM entra_staged WHERE account=?)",
                    (now, account, account),
                )
            if delta_link is not None or seen:
                db.execute(
                    "INSERT INTO entra_users (account, oid, mail, upn, enabled, removed, seen) "
                    "SELECT account, oid, mail, upn, enabled, removed, ? FROM entra_staged WHERE account=? "
                    "ON CONFLICT (account, oid) DO UPDATE SET "
                    "mail=COALESCE(excluded.mail, entra_users.mail), upn=COALESCE(excluded.upn, entra_users.upn), "
                    "enabled=COALESCE(excluded.enabled, entra_users.enabled), removed=excluded.removed, seen=excluded.seen",
                    (now, account),
                )
            db.execute("DELETE FROM entra_staged WHERE account=?", (account,))

    def forget_accounts_except(self, keep: set[str]) -> list[str]:
        """Drop everything remembered about accounts that no longer exist (deleted in
        Keycloak): a later account of the same id must not inherit their delta link."""
        gone = [a.account for a in self.accounts() if a.account not in keep]
        with self.transaction() as db:
            for account in gone:
                for table in (
                    "accounts",
                    "entra_users",
                    "entra_staged",
                    "notices",
                    "deactivations",
                    "pending_deactivations",
                    "leases",
                ):
                    db.execute(f"DELETE FROM {table} WHERE account=?", (account,))  # noqa: S608 - fixed names
        return gone

    # -- leases: which replica syncs which account -------------------------------------

    def claim(self, holder: str, accounts: list[str], lease_seconds: float, period_seconds: float) -> list[str]:
        """Take the leases of those ``accounts`` that are due and that no live lease holds,
        in one transaction; they are due again ``period_seconds`` later. Rows locked by
        another replica's claim are skipped (``FOR UPDATE SKIP LOCKED``), never waited for.
        Times are the database's. Returns the accounts now held by ``holder``."""
        if not accounts:
            return []
        wanted = sorted(set(accounts))  # one order for every replica: no deadlock on inserts
        now, skip = self._db.now_sql, " FOR UPDATE SKIP LOCKED" if self._db.shared else ""
        got: list[str] = []
        with self.transaction() as db:
            self._db.insert_keys(db, "leases", "account", wanted)
            for where, params in self._db.any_of("account", wanted):
                rows = db.execute(
                    f"UPDATE leases SET holder=?, expires={now} + ?, next_due={now} + ? WHERE account IN ("  # noqa: S608
                    f"SELECT account FROM leases WHERE {where} AND next_due <= {now} "
                    f"AND (holder IS NULL OR holder=? OR expires <= {now}) ORDER BY account{skip}) RETURNING account",
                    (holder, lease_seconds, period_seconds, *params, holder),
                ).fetchall()
                got += [r["account"] for r in rows]
        return sorted(got)

    def release(self, holder: str, accounts: list[str]) -> None:
        """Give the leases back (the accounts stay not due until their ``next_due``)."""
        with self.transaction() as db:
            for where, params in self._db.any_of("account", sorted(accounts)):
                db.execute(
                    f"UPDATE leases SET holder=NULL, expires=NULL WHERE holder=? AND {where}",  # noqa: S608
                    (holder, *params),
                )

    def renew(self, holder: str, accounts: list[str], lease_seconds: float) -> list[str]:
        """Extend ``holder``'s leases of ``accounts`` by ``lease_seconds`` from now (a sync that
        outlasts its lease keeps it). A lease another replica took after it expired is not
        ``holder``'s any more and stays as it is. Returns the accounts still held."""
        now, got = self._db.now_sql, []
        with self.transaction() as db:
            for where, params in self._db.any_of("account", sorted(accounts)):
                rows = db.execute(
                    f"UPDATE leases SET expires={now} + ? WHERE holder=? AND {where} RETURNING account",  # noqa: S608
                    (lease_seconds, holder, *params),
                ).fetchall()
                got += [r["account"] for r in rows]
        return sorted(got)

    def leases(self) -> dict[str, tuple[str | None, float | None, float]]:
        """Every account's lease: (holder, expires, next_due), on the database's clock."""
        return {
            r["account"]: (r["holder"], r["expires"], r["next_due"])
            for r in self._query("SELECT account, holder, expires, next_due FROM leases")
        }

    def clock(self) -> float:
        """The database's time (seconds since the epoch): what leases are timed by."""
        return float(self._query(f"SELECT {self._db.now_sql} AS now")[0]["now"])  # noqa: S608

    # -- Entra users seen -------------------------------------------------------------

    def known_user(self, account: str, oid: str) -> KnownUser | None:
        rows = self._query("SELECT * FROM entra_users WHERE account=? AND oid=?", (account, oid))
        return _known(rows[0]) if rows else None

    def known_users(self, account: str) -> list[KnownUser]:
        return [_known(r) for r in self._query("SELECT * FROM entra_users WHERE account=?", (account,))]

    def known_users_among(self, account: str, oids: list[str]) -> dict[str, KnownUser]:
        """The remembered users among ``oids`` (one query per few hundred ids)."""
        return {u.oid: u for u in self._among("entra_users", account, oids)}

    def absent_known_users(self, account: str, staged_as: str | None = None) -> list[KnownUser]:
        """Remembered, not removed, and not listed in the round staged now (under
        ``staged_as``, default the account): after a full listing, the Entra users who are gone."""
        rows = self._query(
            "SELECT * FROM entra_users k WHERE k.account=? AND k.removed IS NULL AND NOT EXISTS "
            "(SELECT 1 FROM entra_staged s WHERE s.account=? AND s.oid=k.oid AND s.removed IS NULL)",
            (account, staged_as or account),
        )
        return [_known(r) for r in rows]

    # -- the round in progress --------------------------------------------------------

    def stage(self, account: str, users: Iterable[Any], fresh: bool = False) -> None:
        """One page of the round in progress (``EntraUser``s or ``KnownUser``s); ``fresh``:
        the round's first, which first drops what a round cut short left staged."""
        with self.transaction() as db:
            if fresh:
                db.execute("DELETE FROM entra_staged WHERE account=?", (account,))
            db.executemany(_STAGE, ((account, *_row(u)) for u in users))

    def clear_staged(self, account: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM entra_staged WHERE account=?", (account,))

    def staged_among(self, account: str, oids: list[str]) -> dict[str, KnownUser]:
        """The users among ``oids`` that the round in progress listed."""
        return {u.oid: u for u in self._among("entra_staged", account, oids)}

    def _among(self, table: str, account: str, oids: list[str]) -> list[KnownUser]:
        out: list[KnownUser] = []
        for where, params in self._db.any_of("oid", oids):
            out += [
                _known(r)
                for r in self._query(f"SELECT * FROM {table} WHERE account=? AND {where}", (account, *params))  # noqa: S608
            ]
        return out

    # -- the app's client secrets from Graph ------------------------------------------

    def applications_read(self, account: str) -> tuple[str | None, list[dict[str, Any]] | None, str | None]:
        """(date last read, the credentials read then or None after a 403, the key read with).
        Right after ``starting_point`` of the account, from the row it read."""
        ahead = self._apps_ahead.pop(account, None)
        rows = (
            [ahead]
            if ahead is not None
            else self._query(
                "SELECT apps_checked, apps_credentials, apps_key FROM accounts WHERE account=?", (account,)
            )
        )
        if not rows:
            return None, None, None
        checked, creds, denied = rows[0]["apps_checked"], rows[0]["apps_credentials"], rows[0]["apps_key"]
        return checked, (json.loads(creds) if creds else None), denied

    def record_applications(self, account: str, day: str, credentials: list[dict[str, Any]] | None, key: str) -> None:
        self._apps_ahead.pop(account, None)
        with self.transaction() as db:
            self._ensure(db, account)
            db.execute(
                "UPDATE accounts SET apps_checked=?, apps_credentials=?, apps_key=? WHERE account=?",
                (day, json.dumps(credentials) if credentials is not None else None, key, account),
            )

    # -- quarantine -------------------------------------------------------------------

    def set_quarantine(self, account: str, at: str, reason: str, held: int) -> None:
        with self.transaction() as db:
            self._ensure(db, account)
            db.execute(
                "UPDATE accounts SET quarantined_at=?, quarantine_reason=?, quarantine_held=? WHERE account=?",
                (at, reason, held, account),
            )

    def clear_quarantine(self, account: str) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE accounts SET quarantined_at=NULL, quarantine_reason=NULL, quarantine_held=0 WHERE account=?",
                (account,),
            )

    # -- notifications ----------------------------------------------------------------

    def notice_sent(self, account: str, key: str) -> bool:
        return bool(self._query("SELECT 1 FROM notices WHERE account=? AND key=?", (account, key)))

    def mark_notice(self, account: str, key: str, kind: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO notices VALUES (?,?,?,?) ON CONFLICT DO NOTHING", (account, key, kind, utcnow()))

    # -- deactivations ----------------------------------------------------------------

    def intend_deactivation(self, account: str, user_id: str, action: dict[str, Any]) -> None:
        """Write-ahead: the deactivation about to start, so a crash midway is finished later."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO pending_deactivations VALUES (?,?,?,?) ON CONFLICT (account, user_id) DO UPDATE SET "
                "action=excluded.action, planned_at=excluded.planned_at",
                (account, user_id, json.dumps(action), utcnow()),
            )

    def pending_deactivations(self, account: str) -> list[dict[str, Any]]:
        rows = self._query("SELECT action FROM pending_deactivations WHERE account=? ORDER BY planned_at", (account,))
        return [json.loads(r["action"]) for r in rows]

    def drop_pending_deactivation(self, account: str, user_id: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM pending_deactivations WHERE account=? AND user_id=?", (account, user_id))

    def record_deactivation(
        self, account: str, user_id: str, oid: str | None, email: str | None, action: str, reason: str
    ) -> None:
        """A finished deactivation: recorded, counted and no longer pending, in one transaction."""
        with self.transaction() as db:
            _record_deactivation(db, account, user_id, oid, email, action, reason)

    @contextmanager
    def deactivation_turn(self, account: str, user_id: str) -> Iterator[DeactivationTurn]:
        """This user's turn, among every thread and process sharing this file: held while the
        caller looks at the user in Keycloak, changes it and records it, so of two that set
        out to deactivate one user the second finds it done and recorded, and only the first
        counts it (Keycloak has no conditional write of a user). Other users' turns run
        meanwhile: a lock per user across processes (``Database.turn``), a thread lock within one."""
        with self._db.turn(f"{account}\n{user_id}"):
            yield DeactivationTurn(self, account, user_id)

    def deactivation(self, account: str, user_id: str) -> Deactivation | None:
        rows = self._query("SELECT * FROM deactivations WHERE account=? AND user_id=?", (account, user_id))
        return Deactivation(**dict(rows[0])) if rows else None

    def deactivations(self, account: str) -> list[Deactivation]:
        return [
            Deactivation(**dict(r))
            for r in self._query("SELECT * FROM deactivations WHERE account=? ORDER BY at", (account,))
        ]

    def deactivation_by_oid(self, account: str, oid: str) -> Deactivation | None:
        rows = self._query("SELECT * FROM deactivations WHERE account=? AND oid=?", (account, oid))
        return Deactivation(**dict(rows[0])) if rows else None

    def deactivations_among(self, account: str, oids: list[str]) -> dict[str, Deactivation]:
        """Deactivations of the Entra users among ``oids``, by object id."""
        out: dict[str, Deactivation] = {}
        for where, params in self._db.any_of("oid", oids):
            for row in self._query(f"SELECT * FROM deactivations WHERE account=? AND {where}", (account, *params)):  # noqa: S608
                out[row["oid"]] = Deactivation(**dict(row))
        return out

    def mark_restored_reported(
        self, account: str, user_id: str, oid: str | None = None, email: str | None = None
    ) -> None:
        """Remember the report, also for a deactivation this (possibly new) database never saw."""
        now = utcnow()
        with self.transaction() as db:
            db.execute(
                "INSERT INTO deactivations VALUES (?,?,?,?,'unknown','deactivated before this state database',?,?) "
                "ON CONFLICT (account, user_id) DO UPDATE SET restored_reported=excluded.restored_reported",
                (account, user_id, oid, email, now, now),
            )


def _account(row: Any) -> AccountState:
    data = dict(row)
    return AccountState(
        account=data["account"],
        delta_link=data["delta_link"],
        last_run=data["last_run"],
        last_success=data["last_success"],
        last_status=data["last_status"],
        last_errors=json.loads(data["last_errors"] or "[]"),
        last_deactivated=data["last_deactivated"],
        deactivated_total=data["deactivated_total"],
        secret_expires=date.fromisoformat(data["secret_expires"]) if data["secret_expires"] else None,
        secret_expires_source=data["secret_expires_source"],
        quarantined_at=data["quarantined_at"],
        quarantine_reason=data["quarantine_reason"],
        quarantine_held=data["quarantine_held"],
    )


def _row(user: Any) -> tuple[Any, ...]:
    return (user.oid, user.mail, user.upn, None if user.enabled is None else int(user.enabled), user.removed)


def _known(row: Any) -> KnownUser:
    return KnownUser(
        oid=row["oid"],
        mail=row["mail"],
        upn=row["upn"],
        enabled=None if row["enabled"] is None else bool(row["enabled"]),
        removed=row["removed"],
    )
