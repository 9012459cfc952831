"""Graph's answers on the daemon's hot path, read as JSON into slim typed records.

Why not msgraph-sdk's generated models here: deserialising one ``user`` through them runs
``Entity.get_field_deserializers``, which performs thousands of function-level imports each
time it is called, and the first listing imports the whole models package (what that cost
in time and memory: bench/README.md, "Figures behind the code"). A ``users/delta``
page holds up to a few hundred users and a first sync of a large tenant 100,000 of them, of
which the daemon needs six fields. So the body comes back as bytes (``sync.graph_client``
sends the GET with httpx) and is parsed here with the standard library (``json.loads`` is a
small part of a page's cost, so a faster parser does not pay for a dependency). The same
goes for an application's ``passwordCredentials``: ``Application`` is an ``Entity`` too.

Shapes: https://learn.microsoft.com/graph/api/user-delta (``@removed``, ``@odata.nextLink``,
``@odata.deltaLink``) and https://learn.microsoft.com/graph/api/resources/passwordcredential.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from apsis_core.validation import ascii_lower


class MalformedAnswer(ValueError):
    """Graph answered 200 with a body that is not the documented shape (the client turns it
    into a one-line ``GraphRequestFailed``)."""


@dataclass(frozen=True, slots=True)
class EntraUser:
    """One item of a ``users/delta`` page. ``removed`` is ``changed`` (soft-deleted) or
    ``deleted`` (permanently deleted); ``enabled`` is None when Graph did not send it."""

    oid: str
    enabled: bool | None = None
    mail: str | None = None
    upn: str | None = None
    removed: str | None = None

    @property
    def emails(self) -> list[str]:
        """Addresses to match an APSIS One user by: ``mail`` first, then the UPN."""
        out: list[str] = []
        for value in (self.mail, self.upn):
            if value and ascii_lower(value) not in out:
                out.append(ascii_lower(value))
        return out


@dataclass(frozen=True, slots=True)
class DeltaPage:
    """One ``users/delta`` page: its users and exactly one of the two links."""

    users: list[EntraUser]
    next_link: str | None
    delta_link: str | None


@dataclass(frozen=True, slots=True)
class PasswordCredential:
    key_id: str
    hint: str | None
    display_name: str | None
    end: datetime | None


def parse_delta_page(body: bytes | str) -> DeltaPage:
    doc = _object(body, "users/delta")
    value = doc.get("value")
    if not isinstance(value, list):
        raise MalformedAnswer("Graph answered users/delta without a value list")
    next_link, delta_link = _str(doc.get("@odata.nextLink")), _str(doc.get("@odata.deltaLink"))
    if not next_link and not delta_link:
        raise MalformedAnswer("a users/delta page carried neither @odata.nextLink nor @odata.deltaLink")
    return DeltaPage([_user(item) for item in value if isinstance(item, dict)], next_link, delta_link)


def parse_password_credentials(body: bytes | str) -> list[PasswordCredential]:
    doc = _object(body, "applications")
    out = []
    for c in doc.get("passwordCredentials") or []:
        if isinstance(c, dict):
            out.append(
                PasswordCredential(
                    str(c.get("keyId") or ""),
                    _str(c.get("hint")),
                    _str(c.get("displayName")),
                    _time(c.get("endDateTime")),
                )
            )
    return out


def _user(item: dict[str, Any]) -> EntraUser:
    removed = item.get("@removed")
    reason = None
    if isinstance(removed, dict):
        reason = str(removed.get("reason") or "changed")
    elif removed is not None:
        reason = "changed"
    enabled = item.get("accountEnabled")
    return EntraUser(
        str(item.get("id")),
        enabled if isinstance(enabled, bool) else None,
        _str(item.get("mail")),
        _str(item.get("userPrincipalName")),
        reason,
    )


def _object(body: bytes | str, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except ValueError:
        raise MalformedAnswer(f"Graph answered {what} with a body that is not JSON") from None
    if not isinstance(doc, dict):
        raise MalformedAnswer(f"Graph answered {what} with JSON that is not an object")
    return doc


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
