"""Which accounts a daemon instance syncs: managed organizations with SSO on, optionally
narrowed to named accounts and to one shard.

Shards are assigned by a stable hash of the account id, so every replica computes the same
split without talking to the others, and adding an account never moves the existing ones
between replicas of the same shard count.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from apsis_core import validation
from apsis_core.account import AccountRecord
from apsis_core.contract import MANAGED_BY, MANAGED_BY_KEY, SYNCED_STAGES
from apsis_core.errors import InvalidInput, NotFound
from apsis_core.keycloak import KeycloakPort


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    _SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")

    @classmethod
    def parse(cls, spec: str) -> Shard:
        """``i/n`` with ``0 <= i < n`` (zero-based, like a StatefulSet ordinal)."""
        match = cls._SPEC.match(spec or "")
        if not match:
            raise InvalidInput(f"invalid shard {spec!r}: expected i/n, e.g. 0/4")
        index, count = int(match.group(1)), int(match.group(2))
        if count < 1 or not 0 <= index < count:
            raise InvalidInput(f"invalid shard {spec!r}: need 0 <= i < n and n >= 1")
        return cls(index, count)

    def owns(self, account_id: str) -> bool:
        return shard_of(account_id, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def shard_of(account_id: str, count: int) -> int:
    """Stable across processes and Python versions (unlike ``hash()``)."""
    digest = hashlib.sha256(account_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


def managed(api: KeycloakPort) -> list[AccountRecord]:
    """Every account apsis-sso manages, whatever its stage, sorted by id (one paged listing)."""
    found = [AccountRecord.parse(org) for org in api.organizations(query=f"{MANAGED_BY_KEY}:{MANAGED_BY}")]
    return sorted((a for a in found if a.managed), key=lambda a: a.id)


def select(
    accounts: list[AccountRecord], only: list[str] | None = None, shard: Shard | None = None
) -> list[AccountRecord]:
    """The accounts to sync among ``accounts``. Named accounts that do not exist are an error
    (a typo must not silently sync nothing); accounts with SSO disabled are left out."""
    wanted = [validation.account_id(a) for a in only] if only else None
    if wanted is not None:
        known = {a.id for a in accounts}
        missing = [a for a in wanted if a not in known]
        if missing:
            raise NotFound(f"no account {missing[0]!r} managed by apsis-sso")
    return [
        a
        for a in accounts
        if (wanted is None or a.id in wanted) and a.stage in SYNCED_STAGES and (shard is None or shard.owns(a.id))
    ]


def discover(api: KeycloakPort, only: list[str] | None = None, shard: Shard | None = None) -> list[AccountRecord]:
    """The accounts to sync, sorted by id."""
    return select(managed(api), only, shard)


def load(api: KeycloakPort, account_id: str) -> AccountRecord:
    """One account whatever its stage (release and secret commands work on any)."""
    account_id = validation.account_id(account_id)
    org = api.organization_by_alias(account_id)
    record = AccountRecord.parse(org) if org is not None else None
    if record is None or not record.managed:
        raise NotFound(f"no account {account_id!r} managed by apsis-sso")
    return record
