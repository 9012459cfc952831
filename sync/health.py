"""Is the daemon doing its job? The answer behind ``/health``.

Healthy means: a cycle has finished, recently (within three intervals plus the last
cycle's own duration, so a stuck loop is noticed), and it did not fail for every account
— a cycle that could not even list the accounts (Keycloak down) counts as failing for all.
Some accounts failing is the customers' business (a wrong secret, a throttled tenant) and
shows in ``status`` and the metrics; it does not make the daemon unhealthy, or one bad
tenant would get every replica restarted.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class Verdict:
    healthy: bool
    body: dict[str, Any]


class Health:
    def __init__(self, interval_seconds: float, clock: Any = time.monotonic) -> None:
        self.interval = interval_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._finished_at: float | None = None
        self._finished_wall: str | None = None
        self._duration = 0.0
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

    def verdict(self) -> Verdict:
        with self._lock:
            body: dict[str, Any] = {
                "last_cycle_finished": self._finished_wall,
                "accounts": self._accounts,
                "failing_accounts": self._failing,
            }
            if self._finished_at is None:
                return Verdict(False, {"status": "starting", **body, "reason": "no cycle has finished yet"})
            age = self._clock() - self._finished_at
            if age > 3 * self.interval + self._duration:
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
