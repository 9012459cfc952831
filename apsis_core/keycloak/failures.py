"""What python-keycloak's failures mean, in one place: each becomes a one-line error of
``apsis_core.errors``'s Keycloak branch (or ``NotFound``/``Conflict``) with its exit code.

Two moments fail differently. Inside a request (``token_or_transport``): python-keycloak
fetches and refreshes tokens there, and wraps transport errors alike; the connection maps
them before ``KeycloakAdmin`` sees them. After it (``answer``): Keycloak's error answer to
the request itself, mapped by the repository with the request named.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

from keycloak.exceptions import KeycloakAuthenticationError, KeycloakConnectionError
from keycloak.exceptions import KeycloakError as LibraryError

from apsis_core.errors import (
    ApsisError,
    Conflict,
    KeycloakError,
    KeycloakRefused,
    KeycloakUnavailable,
    NotFound,
    retryable_status,
)


def token_or_transport(exc: LibraryError, server: str, who: str) -> ApsisError:
    """A failure raised while sending: the token request refused or failing, or no answer."""
    if isinstance(exc, KeycloakAuthenticationError):
        return KeycloakRefused(f"Keycloak at {server} rejected the credentials of {who}")
    if isinstance(exc, KeycloakConnectionError):
        return KeycloakUnavailable(f"Keycloak at {server} {_transport_failure(exc)}")
    status = exc.response_code  # the token endpoint answered an error other than 401
    if status == 400 and b"invalid_grant" in _as_bytes(exc.error_message):
        return KeycloakRefused(f"Keycloak at {server} rejected the credentials of {who}")  # a wrong password
    if retryable_status(status):
        return KeycloakUnavailable(
            f"Keycloak at {server} answered HTTP {status} to the token request of {who}; try again later"
        )
    return KeycloakRefused(f"Keycloak at {server} refused a token for {who} (HTTP {status})")


def answer(status: int | None, body: bytes | None, request: tuple[str, str], realm: str, who: str) -> ApsisError:
    """Keycloak's error answer to ``request`` (method, path) of the Admin API."""
    method, path = request
    detail = _error_detail(body)
    where = f"{method} {unquote(path.removeprefix(f'admin/realms/{realm}/'))}"
    if status in (401, 403):
        return KeycloakRefused(f"Keycloak refused {where} for {who} (HTTP {status}{detail})")
    if retryable_status(status):
        return KeycloakUnavailable(f"Keycloak answered HTTP {status} to {where}{detail}; try again later")
    if status == 404:
        return NotFound(f"Keycloak has no {where.split(' ', 1)[1]}{detail}")
    if status == 409:
        return Conflict(f"Keycloak reports a conflict on {where}{detail}")
    return KeycloakError(f"Keycloak answered HTTP {status} to {where}{detail}")


def _transport_failure(exc: KeycloakConnectionError) -> str:
    """python-keycloak wraps every transport error alike; the cause tells a timeout apart
    (after urllib3's retry, a read timeout arrives as the reason of a MaxRetryError)."""
    import requests
    from urllib3.exceptions import NewConnectionError
    from urllib3.exceptions import TimeoutError as Urllib3Timeout

    cause = exc.__cause__
    reason = getattr(cause.args[0], "reason", None) if cause is not None and cause.args else None
    refused = isinstance(reason, NewConnectionError)  # urllib3 files a refused connection under timeouts too
    if not refused and (isinstance(cause, requests.Timeout) or isinstance(reason, Urllib3Timeout)):
        return "did not answer in time (APSIS_SSO_KEYCLOAK_TIMEOUT)"
    return "is unreachable"


def _as_bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def _error_detail(body: bytes | None) -> str:
    try:
        doc = json.loads(body or b"")
    except ValueError:
        return ""
    if isinstance(doc, dict):
        message = doc.get("errorMessage") or doc.get("error_description") or doc.get("error")
        if message:
            return f": {str(message).splitlines()[0][:200]}"
    return ""
