"""Live test results: has each test user signed in through the account's Entra yet?

Read from Keycloak's login events (the tooling account has ``view-events``): a ``LOGIN``
event whose ``identity_provider`` is the account's IdP is a successful SSO sign-in; an
error ``apsis_sso_refused`` through that IdP is a refusal by the extension, with its
``reason``. Per test user one small query (``events?user=<id>``), newest first; a test
user without an APSIS One user cannot sign in and is said so without asking for events.
``summarise`` is the pure part.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from apsis_core.account import AccountRecord
from apsis_core.contract import REFUSAL_EVENT_ERROR
from apsis_core.keycloak import KeycloakPort

EVENTS_PER_USER = 100


@dataclass(frozen=True)
class PilotResult:
    """One test user's state, newest event first."""

    email: str
    signed_in: datetime | None = None
    refused: str | None = None
    """The extension's reason code of the newest refusal (when it is newer than any sign-in)."""
    refused_at: datetime | None = None
    known: bool = True
    """An APSIS One user has this address (otherwise nobody can sign in with it)."""
    member: bool = True

    @property
    def ok(self) -> bool:
        return self.signed_in is not None and self.refused is None


def _time(event: Mapping[str, Any]) -> datetime:
    return datetime.fromtimestamp(int(event.get("time", 0)) / 1000, tz=UTC)


def summarise(
    email: str, alias: str, events: Iterable[Mapping[str, Any]], *, known: bool = True, member: bool = True
) -> PilotResult:
    """The newest SSO sign-in and the newest refusal through ``alias`` among ``events``; a
    refusal older than the last sign-in is history, not the current state."""
    signed_in = refused_at = None
    reason = None
    for event in events:
        details = event.get("details") or {}
        if details.get("identity_provider") != alias:
            continue
        when = _time(event)
        if event.get("type") == "LOGIN" and not event.get("error"):
            signed_in = max(signed_in or when, when)
        elif event.get("error") == REFUSAL_EVENT_ERROR and (refused_at is None or when > refused_at):
            refused_at, reason = when, str(details.get("reason") or "")
    if signed_in is not None and refused_at is not None and refused_at < signed_in:
        refused_at, reason = None, None
    return PilotResult(email, signed_in, reason, refused_at, known, member)


def read(api: KeycloakPort, record: AccountRecord) -> list[PilotResult]:
    """Every test user of the account, as Keycloak knows them now."""
    out: list[PilotResult] = []
    for email in record.pilot:
        users = api.users_by_email(email)
        if len(users) != 1:
            out.append(PilotResult(email, known=False) if not users else PilotResult(email, refused="ambiguous_email"))
            continue
        user = users[0]
        member = any(o.get("id") == record.org_id for o in api.user_organizations(user["id"]))
        events = api.events(user=user["id"], max=EVENTS_PER_USER)
        out.append(summarise(email, record.idp_alias, events, member=member))
    return out
