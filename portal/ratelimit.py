"""Rate limits: at most ``limit`` events per key within ``window`` seconds.

Used for form submissions per link (a burst of secrets tried through one link is refused)
and for links opened per client address. ``RateLimiter`` counts in this process (one
portal, or several behind sticky sessions: then each counts on its own, so the effective
limit is the replicas times ``limit``, and a restart forgets them). ``SharedRateLimiter``
counts in PostgreSQL (``APSIS_PORTAL_RATE_LIMIT_URL``, e.g. the daemon's state database), so
the limit holds across replicas and restarts: one transaction per event, serialised per key
by an advisory lock, keys stored as SHA-256 (no client address or link in the database).
The database's clock times the window. A token has 256 bits, so guessing is not the threat;
a person or script hammering Entra and Keycloak through one link is.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol


class Limiter(Protocol):
    def hit(self, key: str) -> float | None: ...


def limiter(limit: int, window: float, scope: str, url: str | None = None) -> Limiter:
    """The shared limiter when a database URL is set, else the in-process one."""
    return SharedRateLimiter(url, scope, limit, window) if url else RateLimiter(limit, window)


class RateLimiter:
    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> float | None:
        """Count one event for ``key``; None when allowed, else the seconds until one more is."""
        now = self._clock()
        with self._lock:
            self._forget(now)
            seen = self._events.setdefault(key, deque())
            if len(seen) >= self.limit:
                return max(0.0, seen[0] + self.window - now)
            seen.append(now)
            return None

    def _forget(self, now: float) -> None:
        """Drop events older than the window (and keys with none left), so memory stays bounded."""
        for key in list(self._events):
            seen = self._events[key]
            while seen and seen[0] <= now - self.window:
                seen.popleft()
            if not seen:
                del self._events[key]


_TABLE = """
CREATE TABLE IF NOT EXISTS portal_rate_events (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS portal_rate_events_key ON portal_rate_events (scope, key, at);
"""
_NOW = "extract(epoch from clock_timestamp())::double precision"


class SharedRateLimiter:
    """The same limit counted in PostgreSQL, for every portal process on the database."""

    def __init__(self, url: str, scope: str, limit: int, window: float) -> None:
        import psycopg

        self.scope, self.limit, self.window = scope, limit, window
        self._lock = threading.Lock()
        self._hits = 0
        try:
            self._conn: Any = psycopg.connect(url, autocommit=True, connect_timeout=10, application_name="apsis-portal")
            with self._conn.transaction():
                self._conn.execute("SELECT pg_advisory_xact_lock(1634759536)")  # one process creates the table
                self._conn.execute(_TABLE)
        except psycopg.Error as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise RuntimeError(f"cannot use the rate-limit database: {first}") from None

    def hit(self, key: str) -> float | None:
        """Count one event for ``key``; None when allowed, else the seconds until one more is."""
        digest = hashlib.sha256(f"{self.scope}\n{key}".encode()).hexdigest()
        lock = int(digest[:16], 16) - (1 << 63)  # a signed bigint per key
        with self._lock, self._conn.transaction():
            self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock,))
            now, count, oldest = self._conn.execute(
                f"WITH gone AS (DELETE FROM portal_rate_events WHERE scope=%s AND key=%s AND at <= {_NOW} - %s) "
                f"SELECT {_NOW}, count(*), min(at) FROM portal_rate_events WHERE scope=%s AND key=%s AND at > {_NOW} - %s",
                (self.scope, digest, self.window, self.scope, digest, self.window),
            ).fetchone()
            self._hits += 1
            if self._hits % 200 == 0:  # now and then, every key's old events: the table stays small
                self._conn.execute(
                    f"DELETE FROM portal_rate_events WHERE scope=%s AND at <= {_NOW} - %s", (self.scope, self.window)
                )
            if count >= self.limit:
                return max(0.0, float(oldest) + self.window - float(now))
            self._conn.execute("INSERT INTO portal_rate_events VALUES (%s, %s, %s)", (self.scope, digest, now))
            return None
