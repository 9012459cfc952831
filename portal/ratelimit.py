"""Rate limits kept in this process: at most ``limit`` events per key within ``window`` seconds.

Used for form submissions per link (a burst of secrets tried through one link is refused)
and for links opened per client address. The counts live in memory: with several replicas
behind a load balancer each replica counts on its own, so the effective limit is at most
the replicas times ``limit`` (sticky sessions keep one link on one replica). A restart
forgets them. Both are acceptable for what the limits are for — a token has 256 bits, so
guessing is not the threat; a person or script hammering Entra and Keycloak through one
link is.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


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
