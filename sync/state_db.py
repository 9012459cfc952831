"""Where the state lives: an embedded SQLite file (one process, the default) or a PostgreSQL
database shared by replicas (``APSIS_SYNC_STATE_URL=postgresql://…``).

``StateStore`` writes its SQL once, with ``?`` placeholders and what both engines accept
(``INSERT … ON CONFLICT``, ``RETURNING``); a ``Database`` runs it on its engine and says what
differs: how a write transaction starts, how the database's own clock is read (leases are
timed by the database, never by a replica's clock), how a list of ids is passed, and how a
per-user turn is held across processes (a byte-range lock on ``<state>.locks`` beside a
SQLite file, a session advisory lock on PostgreSQL).

Schema versions are applied at start, in order, each in its own transaction: SQLite's as
today (``CREATE … IF NOT EXISTS`` plus added columns), PostgreSQL's as numbered SQL steps
under an advisory lock, so replicas starting together apply each step once. psycopg is
imported only for a PostgreSQL URL: the CLI on SQLite starts as fast as before.
"""

from __future__ import annotations

import fcntl
import hashlib
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Protocol

from apsis_core.errors import EX_USAGE, ApsisError

SCHEMA_VERSION = 3

_TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
    account TEXT PRIMARY KEY,
    delta_link TEXT,
    delta_updated TEXT,
    last_run TEXT,
    last_success TEXT,
    last_status TEXT,
    last_errors TEXT NOT NULL DEFAULT '[]',
    last_deactivated INTEGER NOT NULL DEFAULT 0,
    deactivated_total INTEGER NOT NULL DEFAULT 0,
    secret_expires TEXT,
    secret_expires_source TEXT,
    quarantined_at TEXT,
    quarantine_reason TEXT,
    quarantine_held INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS entra_users (
    account TEXT NOT NULL,
    oid TEXT NOT NULL,
    mail TEXT,
    upn TEXT,
    enabled INTEGER,
    removed TEXT,
    seen TEXT NOT NULL,
    PRIMARY KEY (account, oid)
);
CREATE TABLE IF NOT EXISTS entra_staged (
    account TEXT NOT NULL,
    oid TEXT NOT NULL,
    mail TEXT,
    upn TEXT,
    enabled INTEGER,
    removed TEXT,
    PRIMARY KEY (account, oid)
);
CREATE TABLE IF NOT EXISTS notices (
    account TEXT NOT NULL,
    key TEXT NOT NULL,
    kind TEXT NOT NULL,
    sent_at TEXT NOT NULL,
    PRIMARY KEY (account, key)
);
CREATE TABLE IF NOT EXISTS deactivations (
    account TEXT NOT NULL,
    user_id TEXT NOT NULL,
    oid TEXT,
    email TEXT,
    action TEXT NOT NULL,
    reason TEXT NOT NULL,
    at TEXT NOT NULL,
    restored_reported TEXT,
    PRIMARY KEY (account, user_id)
);
CREATE TABLE IF NOT EXISTS pending_deactivations (
    account TEXT NOT NULL,
    user_id TEXT NOT NULL,
    action TEXT NOT NULL,
    planned_at TEXT NOT NULL,
    PRIMARY KEY (account, user_id)
);
"""

# Who syncs an account now (``holder`` until ``expires``) and when it is due again
# (``next_due``); seconds since the epoch on the database's clock.
_LEASES = """
CREATE TABLE IF NOT EXISTS leases (
    account TEXT PRIMARY KEY,
    holder TEXT,
    expires DOUBLE PRECISION,
    next_due DOUBLE PRECISION NOT NULL DEFAULT 0
);
"""

# applications cadence: when read (ISO date), what was read (JSON; NULL after a 403), and the
# key (fingerprint) of the credentials it was read with
APPS_COLUMNS = ("apps_checked", "apps_credentials", "apps_key")

# PostgreSQL's schema, step by step: a step is never edited once released, a change is a new step.
POSTGRES_STEPS: tuple[str, ...] = (
    _TABLES + "".join(f"ALTER TABLE accounts ADD COLUMN IF NOT EXISTS {c} TEXT;\n" for c in APPS_COLUMNS) + _LEASES,
)
assert len(POSTGRES_STEPS) <= SCHEMA_VERSION

_MIGRATION_LOCK = 0x61707369  # pg_advisory_xact_lock key: one replica migrates at a time
_CHUNK = 500  # ids per IN (...) on SQLite: far below its limit on variables


class StateUnavailable(ApsisError):
    """The state database cannot be opened or is from a newer version (exit code 2: a
    person must fix the path, the URL, the permissions or the version)."""

    exit_code = EX_USAGE


def is_url(location: str | Path) -> bool:
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def redacted(url: str) -> str:
    """The URL without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at:
        return url
    user = creds.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}" if ":" in creds else f"{scheme}{sep}{user}@{host}"


class Tx(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any: ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Any: ...


class Database:
    """One engine's connection, shared by threads behind a lock."""

    name: str
    shared: bool  # other processes may use it at once (leases matter)
    now_sql: str  # seconds since the epoch, the database's clock

    def transaction(self) -> Any:
        raise NotImplementedError

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError

    def query_many(self, queries: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Any]]:
        """Several reads at once (on PostgreSQL one round trip: pipelined)."""
        raise NotImplementedError

    def any_of(self, column: str, values: Sequence[str]) -> list[tuple[str, list[Any]]]:
        """``column`` among ``values``: SQL fragments with their parameters (one or more chunks)."""
        raise NotImplementedError

    def insert_keys(self, db: Any, table: str, column: str, values: Sequence[str]) -> None:
        """Rows keyed by ``values`` in ``table`` (those already there stay as they are)."""
        raise NotImplementedError

    def turn(self, key: str) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


def open_database(location: str | Path) -> Database:
    if is_url(location):
        return PostgresDatabase(str(location))
    if isinstance(location, str) and "://" in location:
        raise StateUnavailable(f"unsupported state URL {redacted(location)}: use a file path or postgresql://…")
    return SqliteDatabase(Path(location))


class _UserLocks:
    """Thread locks per (database, key), process-wide: two stores on one database in one
    process exclude each other too (``fcntl`` and advisory locks do not within a process)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._held: dict[tuple[str, str], tuple[threading.Lock, int]] = {}

    @contextmanager
    def hold(self, where: str, key: str) -> Iterator[None]:
        with self._guard:
            lock, users = self._held.get((where, key), (threading.Lock(), 0))
            self._held[(where, key)] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._held[(where, key)]
                if users == 1:
                    del self._held[(where, key)]
                else:
                    self._held[(where, key)] = (lock, users - 1)


_user_locks = _UserLocks()


def _key64(key: str) -> int:
    """A signed 64-bit number for ``key`` (advisory lock keys are bigint)."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)


class SqliteDatabase(Database):
    name = "sqlite"
    shared = False
    now_sql = "((julianday('now') - 2440587.5) * 86400.0)"

    def __init__(self, path: Path) -> None:
        self.path = path
        memory = str(path) == ":memory:"
        if not memory:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._locks: IO[bytes] | None = None  # <state>.locks: per-user turns across processes
        try:
            if not memory:
                self._locks = open(f"{path}.locks", "a+b")  # noqa: SIM115 - kept open, closed by close()
        except OSError as exc:
            raise StateUnavailable(f"cannot open {path}.locks: {exc.strerror}") from None
        try:
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_TABLES + _LEASES.replace("DOUBLE PRECISION", "REAL"))
        except sqlite3.Error as exc:
            raise StateUnavailable(f"cannot open the state database {path}: {exc}") from None
        self._where = f":memory:{id(self)}" if memory else str(path.resolve())
        self._migrate()

    def _migrate(self) -> None:
        """Version 2 added the columns of the applications cadence, 3 the leases (tables above)."""
        version = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if version is not None and int(version[0]) > SCHEMA_VERSION:
            raise StateUnavailable(f"the state database {self.path} was written by a newer apsis-sync")
        have = {row[1] for row in self._db.execute("PRAGMA table_info(accounts)")}
        with self.transaction() as db:
            for column in APPS_COLUMNS:
                if column not in have:
                    db.execute(f"ALTER TABLE accounts ADD COLUMN {column} TEXT")  # noqa: S608 - fixed names
            db.execute(
                "INSERT INTO meta VALUES ('schema', ?) ON CONFLICT (key) DO UPDATE SET value=excluded.value",
                (str(SCHEMA_VERSION),),
            )

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            return list(self._db.execute(sql, tuple(params)))

    def query_many(self, queries: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Any]]:
        with self._lock:
            return [list(self._db.execute(sql, tuple(params))) for sql, params in queries]

    def any_of(self, column: str, values: Sequence[str]) -> list[tuple[str, list[Any]]]:
        return [
            (f"{column} IN ({','.join('?' * len(values[i : i + _CHUNK]))})", list(values[i : i + _CHUNK]))
            for i in range(0, len(values), _CHUNK)
        ]

    def insert_keys(self, db: Any, table: str, column: str, values: Sequence[str]) -> None:
        db.executemany(f"INSERT INTO {table} ({column}) VALUES (?) ON CONFLICT DO NOTHING", ((v,) for v in values))

    @contextmanager
    def turn(self, key: str) -> Iterator[None]:
        with _user_locks.hold(self._where, key):
            if self._locks is None:
                yield
                return
            offset = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)
            fcntl.lockf(self._locks, fcntl.LOCK_EX, 1, offset)
            try:
                yield
            finally:
                fcntl.lockf(self._locks, fcntl.LOCK_UN, 1, offset)

    def close(self) -> None:
        with self._lock:
            self._db.close()
            if self._locks is not None:
                self._locks.close()

    def describe(self) -> str:
        return str(self.path)


class _PgTx:
    """A transaction's statements with ``?`` placeholders, on a psycopg connection."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._conn.execute(sql.replace("?", "%s"), tuple(params), prepare=False)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Any:
        with self._conn.cursor() as cur:
            cur.executemany(sql.replace("?", "%s"), [tuple(r) for r in rows])


class PostgresDatabase(Database):
    name = "postgresql"
    shared = True
    now_sql = "extract(epoch from clock_timestamp())::double precision"

    def __init__(self, url: str, connect_timeout: int = 10) -> None:
        import psycopg  # only here: SQLite installs never load the driver
        from psycopg.rows import dict_row

        self.url = url
        self._psycopg = psycopg
        self._rows = dict_row
        self._timeout = connect_timeout
        self._lock = threading.RLock()
        self._conn: Any = None
        self._connect()
        self._migrate()

    def _connect(self) -> None:
        try:
            self._conn = self._psycopg.connect(
                self.url,
                autocommit=True,
                row_factory=self._rows,
                connect_timeout=self._timeout,
                application_name="apsis-sync",
            )
        except self._psycopg.Error as exc:
            raise StateUnavailable(
                f"cannot connect to the state database {redacted(self.url)}: {_first_line(exc)}"
            ) from None

    def _live(self) -> Any:
        """The connection, opened again after the server went away (a restart, a failover):
        the statement that found it gone failed its account; the next one reconnects."""
        if self._conn.broken or self._conn.closed:
            self._connect()
        return self._conn

    def _migrate(self) -> None:
        try:  # not pipelined: a step is several statements in one string
            with self._lock, self._conn.transaction():
                db = _PgTx(self._conn)
                db.execute(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
                db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
                row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
                version = int(row["value"]) if row else 0
                if version > SCHEMA_VERSION:
                    raise StateUnavailable(f"the state database {redacted(self.url)} was written by a newer apsis-sync")
                for number, step in enumerate(POSTGRES_STEPS, start=1):
                    if number > version:
                        db.execute(step)
                db.execute(
                    "INSERT INTO meta VALUES ('schema', ?) ON CONFLICT (key) DO UPDATE SET value=excluded.value",
                    (str(SCHEMA_VERSION),),
                )
        except self._psycopg.Error as exc:
            raise StateUnavailable(
                f"cannot prepare the state database {redacted(self.url)}: {_first_line(exc)}"
            ) from None

    @contextmanager
    def transaction(self) -> Iterator[_PgTx]:
        """Pipelined: BEGIN, the statements and COMMIT go out together, one round trip for a
        transaction that reads nothing back (a fetch in between waits for its answer)."""
        with self._lock:
            conn = self._live()
            with conn.pipeline(), conn.transaction():
                yield _PgTx(conn)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            return list(self._live().execute(sql.replace("?", "%s"), tuple(params), prepare=False))

    def query_many(self, queries: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Any]]:
        with self._lock, self._live().pipeline():
            cursors = [
                self._conn.execute(sql.replace("?", "%s"), tuple(params), prepare=False) for sql, params in queries
            ]
            return [list(cur.fetchall()) for cur in cursors]

    def any_of(self, column: str, values: Sequence[str]) -> list[tuple[str, list[Any]]]:
        return [(f"{column} = ANY(?)", [list(values)])] if values else []

    def insert_keys(self, db: Any, table: str, column: str, values: Sequence[str]) -> None:
        db.execute(f"INSERT INTO {table} ({column}) SELECT unnest(?::text[]) ON CONFLICT DO NOTHING", (list(values),))

    @contextmanager
    def turn(self, key: str) -> Iterator[None]:
        """A session advisory lock per user, tried and retried (a blocking wait would hold the
        connection every thread of this process shares)."""
        number = _key64(key)
        with _user_locks.hold(self.url, key):
            delay = 0.01
            while not self.query("SELECT pg_try_advisory_lock(?) AS got", (number,))[0]["got"]:
                time.sleep(delay)
                delay = min(delay * 2, 0.2)
            try:
                yield
            finally:
                self.query("SELECT pg_advisory_unlock(?) AS done", (number,))

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def describe(self) -> str:
        return redacted(self.url)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
