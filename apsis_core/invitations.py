"""Invitations: one-time links to the self-serve portal, for one account and one intent.

A link (``<portal>/i/<account>/<token>``) carries a token of 256 bits from the operating
system's CSPRNG. Keycloak stores only the token's SHA-256 (a 256-bit random token needs no
slow hash: there is nothing to guess), with the intent, the expiry and what became of it, as
one value of the organization attribute ``apsis.invitations``, so every replica of the
portal can check a link and the daemon and the CLI can mint one. An attribute value holds at
most 255 characters in Keycloak; a record is about 150::

    v1 <intent> <state> <issued> <expires> <sha256 hex> [<closed>]

An invitation is usable while it is ``open`` and not expired, until its intent is completed
(``used``), it is ``revoked``, or a newer invitation of the same intent replaces it
(``superseded``). Closed ones are kept (the newest few) so an old link's page can say what
happened to it instead of "unknown link".

Everything above the Keycloak calls at the end is pure: minting, parsing, verdicts and the
transitions are unit-tested without a server.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from apsis_core.contract import INVITATION_INTENTS, INVITATIONS_KEY, InvitationIntent
from apsis_core.errors import InvalidInput, NotFound
from apsis_core.timestamps import from_text as _parse_time
from apsis_core.timestamps import to_text as _iso
from apsis_core.timestamps import utc as _utc

if TYPE_CHECKING:
    from apsis_core.account import AccountRecord
    from apsis_core.keycloak import KeycloakPort

TOKEN_BYTES = 32
"""256 bits; ``secrets.token_urlsafe`` encodes them in 43 URL-safe characters."""
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{43}$")
VALUE_MAX = 255
"""Keycloak's limit for one attribute value (GROUP_ATTRIBUTE.VALUE)."""
KEEP_CLOSED = 10
"""Closed invitations kept per account, newest first, so old links explain themselves."""
MAX_VALIDITY = timedelta(days=30)
MIN_VALIDITY = timedelta(minutes=5)

State = Literal["open", "used", "revoked", "superseded"]
Verdict = Literal["valid", "unknown", "expired", "used", "revoked", "superseded"]
_STATES: tuple[State, ...] = ("open", "used", "revoked", "superseded")


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def well_formed(token: str) -> bool:
    """Shaped like a token we mint: anything else is not looked up at all."""
    return bool(TOKEN_PATTERN.match(token))


@dataclass(frozen=True)
class Invitation:
    """One link as Keycloak records it: never the token, only its hash."""

    intent: InvitationIntent
    digest: str
    issued: datetime
    expires: datetime
    state: State = "open"
    closed: datetime | None = None

    @property
    def id(self) -> str:
        """Names the invitation in logs and the audit trail (a prefix of the hash, not the token)."""
        return self.digest[:12]

    def value(self) -> str:
        parts = ["v1", self.intent, self.state, _iso(self.issued), _iso(self.expires), self.digest]
        if self.closed is not None:
            parts.append(_iso(self.closed))
        return " ".join(parts)

    @classmethod
    def parse(cls, value: str) -> Invitation | None:
        """A stored value, or None for anything malformed (edited by hand, a future format):
        such a value never makes a link valid."""
        parts = value.split()
        if (
            len(parts) not in (6, 7)
            or parts[0] != "v1"
            or parts[1] not in INVITATION_INTENTS
            or parts[2] not in _STATES
            or not re.fullmatch(r"[0-9a-f]{64}", parts[5])
        ):
            return None
        try:
            issued, expires = _parse_time(parts[3]), _parse_time(parts[4])
            closed = _parse_time(parts[6]) if len(parts) == 7 else None
        except ValueError:
            return None
        return cls(parts[1], parts[5], issued, expires, parts[2], closed)

    def verdict(self, now: datetime | None = None) -> Verdict:
        if self.state != "open":
            return self.state
        return "expired" if _utc(now) >= self.expires else "valid"

    def close(self, state: State, now: datetime | None = None) -> Invitation:
        return replace(self, state=state, closed=_utc(now))


def mint(intent: InvitationIntent, valid: timedelta, now: datetime | None = None) -> tuple[str, Invitation]:
    """A fresh token (for the link, shown once) and its record (for Keycloak)."""
    if intent not in INVITATION_INTENTS:
        raise InvalidInput(f"invalid intent {intent!r}: expected one of {', '.join(INVITATION_INTENTS)}")
    check_validity(valid)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    issued = _utc(now)
    return token, Invitation(intent, digest(token), issued, issued + valid)


def find(invitations: Iterable[Invitation], token: str) -> Invitation | None:
    """The invitation whose hash is the token's (compared in constant time, all of them)."""
    if not well_formed(token):
        return None
    wanted = digest(token)
    found = None
    for invitation in invitations:
        if hmac.compare_digest(invitation.digest, wanted):
            found = invitation
    return found


def verdict(invitation: Invitation | None, now: datetime | None = None) -> Verdict:
    return "unknown" if invitation is None else invitation.verdict(now)


def with_issued(invitations: list[Invitation], new: Invitation) -> list[Invitation]:
    """``new`` added; an open invitation of the same intent is superseded by it (its link's
    page then says a newer link was sent)."""
    kept = [
        i.close("superseded", new.issued) if i.intent == new.intent and i.state == "open" else i for i in invitations
    ]
    return pruned([*kept, new])


def with_revoked(
    invitations: list[Invitation], intent: InvitationIntent | None = None, now: datetime | None = None
) -> tuple[list[Invitation], list[Invitation]]:
    """Every open invitation (of ``intent``, or all) revoked; returns (all, the revoked ones)."""
    ended = [i for i in invitations if i.state == "open" and (intent is None or i.intent == intent)]
    return [i.close("revoked", now) if i in ended else i for i in invitations], ended


def with_used(invitations: list[Invitation], used: str, now: datetime | None = None) -> list[Invitation]:
    """The invitation with digest ``used`` completed its intent: its link ends here."""
    return [i.close("used", now) if i.digest == used and i.state == "open" else i for i in invitations]


def pruned(invitations: list[Invitation]) -> list[Invitation]:
    """Every open invitation, and the newest ``KEEP_CLOSED`` closed ones."""
    closed = sorted((i for i in invitations if i.state != "open"), key=lambda i: i.closed or i.issued, reverse=True)
    keep = {id(i) for i in closed[:KEEP_CLOSED]}
    return [i for i in invitations if i.state == "open" or id(i) in keep]


def parse_all(values: Iterable[str]) -> list[Invitation]:
    return [i for i in (Invitation.parse(v) for v in values) if i is not None]


def of_record(record: AccountRecord) -> list[Invitation]:
    return parse_all(record.attributes.get(INVITATIONS_KEY) or [])


def open_invitation(
    invitations: Iterable[Invitation], intent: InvitationIntent, now: datetime | None = None
) -> Invitation | None:
    """The account's usable invitation of ``intent``, if there is one."""
    return next((i for i in invitations if i.intent == intent and i.verdict(now) == "valid"), None)


_VALIDITY = re.compile(r"^\s*(\d+)\s*([dhm])\s*$")


def parse_validity(text: str) -> timedelta:
    """``7d``, ``36h``, ``90m``: how long a link stays valid (5 minutes to 30 days)."""
    match = _VALIDITY.match(text or "")
    if not match:
        raise InvalidInput(f"invalid validity {text!r}: expected a number and d, h or m, e.g. 7d")
    amount, unit = int(match.group(1)), match.group(2)
    valid = (
        timedelta(days=amount) if unit == "d" else timedelta(hours=amount) if unit == "h" else timedelta(minutes=amount)
    )
    check_validity(valid)
    return valid


def check_validity(valid: timedelta) -> None:
    if not MIN_VALIDITY <= valid <= MAX_VALIDITY:
        raise InvalidInput("an invitation is valid for 5 minutes to 30 days")


def link(portal_url: str, account_id: str, token: str) -> str:
    return f"{portal_url.rstrip('/')}/i/{account_id}/{token}"


# -- in Keycloak ------------------------------------------------------------------------------


def _change(
    api: KeycloakPort, record: AccountRecord, change: Callable[[list[Invitation]], list[Invitation]]
) -> list[Invitation]:
    """Read the organization's invitations now, change them, write them back."""
    result: list[Invitation] = []

    def apply(values: list[str]) -> list[str] | None:
        result[:] = change(parse_all(values))
        written = [i.value() for i in result]
        assert all(len(v) <= VALUE_MAX for v in written)
        return written or None

    if api.change_organization_attribute(record.org_id, INVITATIONS_KEY, apply) is None:
        raise NotFound(f"no account {record.id!r}")
    return result


def issue(
    api: KeycloakPort,
    record: AccountRecord,
    intent: InvitationIntent,
    valid: timedelta,
    now: datetime | None = None,
) -> tuple[str, Invitation]:
    """Mint a link for the account and record its hash (replacing an open one of the intent)."""
    token, invitation = mint(intent, valid, now)
    _change(api, record, lambda current: with_issued(current, invitation))
    return token, invitation


def revoke(
    api: KeycloakPort, record: AccountRecord, intent: InvitationIntent | None = None, now: datetime | None = None
) -> list[Invitation]:
    """End the account's open invitations (of ``intent``); returns those ended."""
    ended: list[Invitation] = []

    def change(current: list[Invitation]) -> list[Invitation]:
        updated, revoked = with_revoked(current, intent, now)
        ended[:] = revoked
        return updated

    _change(api, record, change)
    return ended


def complete(api: KeycloakPort, record: AccountRecord, invitation: Invitation, now: datetime | None = None) -> None:
    """The invitation's intent is done: its link shows "already used" from now on."""
    _change(api, record, lambda current: with_used(current, invitation.digest, now))
