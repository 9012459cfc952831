"""Is the daemon alive, and is it doing its job? The answers behind ``/livez`` and ``/readyz``.

*Ready* (``/readyz``, also served as ``/health``): a cycle has finished, recently (within
three intervals plus the last cycle's own duration), and it did not fail for every account —
a cycle that could not even list the accounts (Keycloak down) counts as failing for all.
Some accounts failing is the customers' business (a wrong secret, a throttled tenant) and
shows in ``status`` and the metrics; it does not make the daemon unready.

*Live* (``/livez``): the loop is not stuck. Every cycle ends, ok or failed — a Keycloak or
Graph outage makes cycles fail fast, so it makes the daemon unready, never dead, and a
liveness probe does not restart every replica during someone else's outage. Only a loop
that has ended no cycle for far longer than it should (``STUCK_INTERVALS`` intervals plus
the longest cycle seen; before the first cycle ends, ``first_cycle_grace`` seconds) is dead:
that is the one state a restart fixes.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

STALE_INTERVALS = 3
"""Readiness: a cycle must have finished within this many intervals (plus its own length)."""
STUCK_INTERVALS = 6
"""Liveness: no cycle ended for this many intervals (plus the longest cycle) means stuck."""
FIRST_CYCLE_GRACE_SECONDS = 3600.0
"""Liveness before the first cycle ends: a first cycle over many accounts is a full sync."""


@dataclass(frozen=True)
class Verdict:
    healthy: bool
    body: dict[str, Any]


class Health:
    def __init__(
        self,
        interval_seconds: float,
        clock: Any = time.monotonic,
        first_cycle_grace: float = FIRST_CYCLE_GRACE_SECONDS,
    ) -> None:
        self.interval = interval_seconds
        self.first_cycle_grace = first_cycle_grace
        self._clock = clock
        self._lock = threading.Lock()
        self._started_at: float = clock()
        self._finished_at: float | None = None
        self._finished_wall: str | None = None
        self._duration = 0.0
        self._longest = 0.0
        self._accounts = 0
        self._failing = 0
        self._error: str | None = None

    def cycle_finished(self, accounts: int, failing: int, seconds: float) -> None:
        with self._lock:
            self._mark(seconds)
            self._accounts, self._failing, self._error = accounts, failing, None

    def cycle_failed(self, error: str, seconds: float) -> None:
        """The cycle could not run at all (the accounts could not be listed)."""
        with self._lock:
            self._mark(seconds)
            self._accounts, self._failing, self._error = 0, 0, error

    def _mark(self, seconds: float) -> None:
        self._finished_at = self._clock()
        self._finished_wall = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
        self._duration = seconds
        self._longest = max(self._longest, seconds)

    def liveness(self) -> Verdict:
        """``/livez``: 503 only when the loop is stuck (see the module docstring)."""
        with self._lock:
            now = self._clock()
            if self._finished_at is None:
                age, bound = now - self._started_at, self.first_cycle_grace
                what = "the first cycle has not ended"
            else:
                age, bound = now - self._finished_at, STUCK_INTERVALS * self.interval + self._longest
                what = "no cycle has ended"
            if age > bound:
                return Verdict(False, {"status": "stuck", "reason": f"{what} for {age:.0f}s (limit {bound:.0f}s)"})
            return Verdict(True, {"status": "alive"})

    def verdict(self) -> Verdict:
        """``/readyz`` (and ``/health``): 200 while the daemon does its job."""
        with self._lock:
            body: dict[str, Any] = {
                "last_cycle_finished": self._finished_wall,
                "accounts": self._accounts,
                "failing_accounts": self._failing,
            }
            if self._finished_at is None:
                return Verdict(False, {"status": "starting", **body, "reason": "no cycle has finished yet"})
            age = self._clock() - self._finished_at
            if age > STALE_INTERVALS * self.interval + self._duration:
                return Verdict(
                    False,
                    {
                        "status": "stalled",
                        **body,
                        "reason": f"the last cycle finished {age:.0f}s ago (interval {self.interval:.0f}s)",
                    },
                )
            if self._error is not None:
                return Verdict(False, {"status": "failing", **body, "reason": self._error})
            if self._accounts and self._failing == self._accounts:
                return Verdict(
                    False, {"status": "failing", **body, "reason": "the last cycle failed for every account"}
                )
            return Verdict(True, {"status": "ok", **body})

    readiness = verdict
