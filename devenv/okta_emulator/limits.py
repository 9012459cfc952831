"""Okta's rate-limit headers and 429s, and injected faults (429 with a reset, 5xx, slow answers).

Rate limits: https://developer.okta.com/docs/reference/rl-best-practices/ — every answer carries
``X-Rate-Limit-Limit`` (the ceiling for this endpoint), ``X-Rate-Limit-Remaining`` and
``X-Rate-Limit-Reset`` (UTC epoch seconds when the window resets); over the limit Okta answers
429 with error ``E0000047``. Windows here are one minute per org and endpoint bucket.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

# Per-minute ceilings per bucket (Okta's defaults vary by org and plan; these are settings).
DEFAULT_LIMITS = {"users": 600, "logs": 120, "token": 600, "authorize": 600, "other": 600}
FAULT_KINDS = ("rate_limit", "server_error", "slow")


def bucket(path_in_org: str) -> str:
    """Which rate-limit bucket an org-relative path counts against."""
    if path_in_org.startswith("/api/v1/users"):
        return "users"
    if path_in_org.startswith("/api/v1/logs"):
        return "logs"
    if path_in_org.endswith("/v1/token"):
        return "token"
    if path_in_org.endswith("/v1/authorize"):
        return "authorize"
    return "other"


@dataclass
class Window:
    start: float
    used: int = 0


class RateLimiter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.limits = dict(DEFAULT_LIMITS)
        self._windows: dict[tuple[str, str], Window] = {}

    def take(self, org: str, name: str) -> tuple[bool, dict[str, str]]:
        """Count one request; (allowed, headers)."""
        now = time.time()
        limit = self.limits[name]
        with self._lock:
            window = self._windows.get((org, name))
            if window is None or now >= window.start + 60:
                window = self._windows[(org, name)] = Window(math.floor(now))
            allowed = window.used < limit
            if allowed:
                window.used += 1
            remaining = max(0, limit - window.used)
            reset = int(window.start) + 60
        return allowed, {
            "X-Rate-Limit-Limit": str(limit),
            "X-Rate-Limit-Remaining": str(remaining),
            "X-Rate-Limit-Reset": str(reset),
        }

    def set_limit(self, name: str, limit: int) -> None:
        if name not in DEFAULT_LIMITS:
            raise ValueError(f"unknown rate-limit bucket {name!r}; one of {sorted(DEFAULT_LIMITS)}")
        if limit < 1:
            raise ValueError("a rate limit is at least 1 request per minute")
        with self._lock:
            self.limits[name] = limit

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()
            self.limits = dict(DEFAULT_LIMITS)


@dataclass
class Fault:
    kind: str
    remaining: int
    path_contains: str | None
    org: str | None
    status: int
    reset_in: int
    delay_ms: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(
        self,
        kind: str,
        count: int = 1,
        *,
        path_contains: str | None = None,
        org: str | None = None,
        status: int | None = None,
        reset_in: int = 30,
        delay_ms: int = 1000,
    ) -> Fault:
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {FAULT_KINDS}")
        if count < 1:
            raise ValueError("count must be at least 1")
        if kind == "rate_limit":
            status = status or 429
            if status != 429:
                raise ValueError("a rate_limit fault answers 429")
        elif kind == "server_error":
            status = status or 500
            if not 500 <= status <= 599:
                raise ValueError("a server_error fault answers a 5xx status")
        else:
            status = 200
            if delay_ms < 0:
                raise ValueError("delay_ms must not be negative")
        if reset_in < 0:
            raise ValueError("reset_in must not be negative")
        fault = Fault(kind, count, path_contains, org, status, reset_in, delay_ms)
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, org: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.org and fault.org != org:
                    continue
                if fault.path_contains and fault.path_contains not in path:
                    continue
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.to_dict() for f in self._faults]

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
