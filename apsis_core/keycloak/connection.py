"""python-keycloak's connection, made the seam for counting and for transport errors.

Every Admin API request of the repository goes through one of the four ``raw_*`` methods
here (``KeycloakAdmin`` calls them too), so this is where requests are counted and where
the request in flight is named for error messages. A token request, or a transport
failure, raises from *inside* those methods (python-keycloak fetches and refreshes tokens
there): those become our one-line errors right here (``failures.token_or_transport``),
before ``KeycloakAdmin`` sees them. Keycloak's answers to the request itself are mapped by
the repository (``failures.answer``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from keycloak import KeycloakOpenIDConnection
from keycloak.exceptions import KeycloakError as LibraryError
from requests import Response

from apsis_core.errors import KeycloakRefused
from apsis_core.keycloak import failures


class RequestCounter:
    """Admin API requests made through one connection and its siblings (``sibling``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def add(self) -> None:
        with self._lock:
            self.value += 1


class CountingConnection(KeycloakOpenIDConnection):
    """A ``KeycloakOpenIDConnection`` that counts requests, remembers the last one, and turns
    token and transport failures into one-line errors (``failures``).

    One connection is one ``requests`` session and one token, refreshed in place: neither is
    safe to share between threads, so a thread gets a ``sibling`` of its own."""

    def __init__(self, *, who: str, counter: RequestCounter | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.who = who
        self._counter = counter or RequestCounter()
        self._kwargs = kwargs
        self.last_request = ("GET", "")

    @property
    def request_count(self) -> int:
        return self._counter.value

    def sibling(self) -> CountingConnection:
        """The same server and credentials on a session and token of its own, counted
        together with this one."""
        return CountingConnection(who=self.who, counter=self._counter, **self._kwargs)

    @property
    def server(self) -> str:
        return (self.server_url or "").rstrip("/")

    def sign_in(self) -> bool:
        """Ask for a token now: True when Keycloak issues one, False when it rejects these
        credentials; unreachable or failing (5xx, 429) raises ``KeycloakUnavailable``."""
        try:
            self.get_token()
        except LibraryError as exc:
            failure = failures.token_or_transport(exc, self.server, self.who)
            if isinstance(failure, KeycloakRefused):
                return False
            raise failure from None
        return True

    def raw_get(self, *args: Any, **kwargs: Any) -> Response:
        return self._send("GET", super().raw_get, *args, **kwargs)

    def raw_post(self, *args: Any, **kwargs: Any) -> Response:
        return self._send("POST", super().raw_post, *args, **kwargs)

    def raw_put(self, *args: Any, **kwargs: Any) -> Response:
        return self._send("PUT", super().raw_put, *args, **kwargs)

    def raw_delete(self, *args: Any, **kwargs: Any) -> Response:
        return self._send("DELETE", super().raw_delete, *args, **kwargs)

    def _send(self, method: str, send: Callable[..., Response], path: str, *args: Any, **kwargs: Any) -> Response:
        self._counter.add()
        self.last_request = (method, path)
        try:
            return send(path, *args, **kwargs)
        except LibraryError as exc:
            raise failures.token_or_transport(exc, self.server, self.who) from None
