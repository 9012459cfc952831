"""Opening a link (``/i/<account>/<token>``) does the same work whether the account exists or not.

What a visitor can measure must not tell them which accounts exist: the lookup is one
Keycloak request (the organization by alias, found or not; never the identity provider),
one SHA-256 of the token, and a comparison against a fixed number of stored hashes — the
account's, padded with a hash nobody's token has, or only that hash when there is no account.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import UTC, datetime

from apsis_core import invitations
from apsis_core.account import AccountRecord, is_managed
from apsis_core.contract import INVITATION_INTENTS
from apsis_core.invitations import Invitation
from apsis_core.keycloak import KeycloakPort

SLOTS = invitations.KEEP_CLOSED + len(INVITATION_INTENTS)
"""Invitations an account keeps at most: an open one per intent and the newest closed ones."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NOBODY = Invitation("setup", "0" * 64, _EPOCH, _EPOCH, "revoked", _EPOCH)
"""Stands in for a missing stored hash: all zeros, which no SHA-256 of a token is."""


@dataclass(frozen=True)
class Found:
    record: AccountRecord | None
    invitation: Invitation | None


def lookup(api: KeycloakPort, account_id: str, token: str) -> Found:
    """The account (managed, else None) and its invitation whose hash is the token's."""
    wanted = invitations.digest(token)
    org = api.organization_by_alias(account_id)
    record = AccountRecord.parse(org) if org is not None and is_managed(org) else None
    stored = invitations.of_record(record) if record is not None else []
    found: Invitation | None = None
    for candidate in stored + [_NOBODY] * max(0, SLOTS - len(stored)):
        if hmac.compare_digest(candidate.digest, wanted) and candidate is not _NOBODY:
            found = candidate
    return Found(record, found)
