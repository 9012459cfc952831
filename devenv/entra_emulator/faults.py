"""Injected failures (throttling, server errors) and the request log tests assert on."""

from __future__ import annotations

import collections
import datetime as dt
import threading
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

GRAPH_FAULT_KINDS = ("throttle", "server_error")
TOKEN_FAULT_KINDS = ("throttle", "server_error")

# Query parameters whose values never reach the log.
_SENSITIVE = {
    "client_secret",
    "code",
    "code_verifier",
    "passwd",
    "password",
    "access_token",
    "id_token",
    "refresh_token",
    "client_assertion",
    "id_token_hint",
}


@dataclass
class Fault:
    target: str  # "graph" or "token"
    kind: str
    remaining: int
    retry_after: int | None
    status: int
    path_contains: str | None = None
    tenant: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class FaultInjector:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(
        self,
        target: str,
        kind: str,
        count: int = 1,
        retry_after: int | None = 2,
        path_contains: str | None = None,
        status: int | None = None,
        tenant: str | None = None,
    ) -> Fault:
        if target not in ("graph", "token"):
            raise ValueError("target must be 'graph' or 'token'")
        kinds = GRAPH_FAULT_KINDS if target == "graph" else TOKEN_FAULT_KINDS
        if kind not in kinds:
            raise ValueError(f"kind must be one of {kinds}")
        if count < 1:
            raise ValueError("count must be at least 1")
        if status is None:
            status = 429 if kind == "throttle" else 503
        if kind == "throttle" and status != 429:
            raise ValueError("a throttle fault answers 429")
        if kind == "server_error" and not 500 <= status <= 599:
            raise ValueError("a server_error fault answers a 5xx status")
        fault = Fault(target, kind, count, retry_after, status, path_contains, tenant)
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, target: str, path: str, tenant: str | None = None) -> Fault | None:
        """The first matching fault, consuming one of its occurrences."""
        with self._lock:
            for fault in self._faults:
                if fault.target != target:
                    continue
                if fault.path_contains and fault.path_contains not in path:
                    continue
                if fault.tenant and tenant and fault.tenant.lower() != tenant.lower():
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


def redact_query(query: str) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(k, "***" if k.lower() in _SENSITIVE else v) for k, v in pairs], safe="$'(),/:")


class RequestLog:
    """The last requests served: method, path, redacted query and status. Never bodies or headers."""

    def __init__(self, size: int = 2000) -> None:
        self._lock = threading.Lock()
        self._entries: collections.deque[dict[str, Any]] = collections.deque(maxlen=size)
        self._counts: collections.Counter[str] = collections.Counter()

    def record(self, method: str, path: str, query: str, status: int) -> None:
        with self._lock:
            self._counts[request_kind(path)] += 1
        entry = {
            "time": dt.datetime.now(dt.UTC).isoformat(),
            "method": method,
            "path": path,
            "query": redact_query(query),
            "status": status,
        }
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._entries)

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._counts.clear()


def request_kind(path: str) -> str:
    """What a request was for, for counting: the token endpoint, a Graph call, or anything else."""
    if path.endswith("/oauth2/v2.0/token"):
        return "token"
    if path.startswith("/v1.0/"):
        tail = path[len("/v1.0/") :].lower()
        if tail.startswith("users/") and "delta" in tail:
            return "graph users/delta"
        if tail.startswith("applications"):
            return "graph applications"
        return "graph other"
    return "other"
