"""Which accounts a daemon instance syncs: managed organizations with SSO on, optionally
narrowed to named accounts and to one shard.

Shards are assigned by a stable hash of the account id, so every replica computes the same
split without talking to the others, and adding an account never moves the existing ones
between replicas of the same shard count.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from provisioning import validation
from provisioning.accounts import is_managed
from provisioning.errors import InvalidInput, NotFound
from provisioning.keycloak_api import KeycloakApi
from provisioning.model import MANAGED_BY, idp_alias

QUARANTINE_KEY = "apsis.quarantined"
SYNCED_STAGES = ("pilot", "live")


@dataclass(frozen=True)
class SyncAccount:
    """What the daemon needs of one account, read from its organization's attributes."""

    id: str
    org_id: str
    stage: str
    tenant_id: str
    client_id: str
    domains: tuple[str, ...]
    secret_expires: date | None
    secret_hint: str | None
    it_contact_name: str
    it_contact_email: str | None
    quarantined: str | None = None
    attributes: dict[str, list[str]] = field(default_factory=dict, compare=False, repr=False)

    @property
    def alias(self) -> str:
        return idp_alias(self.id)

    @classmethod
    def from_organization(cls, org: dict[str, Any]) -> "SyncAccount":
        attrs: dict[str, list[str]] = org.get("attributes") or {}

        def one(key: str) -> str | None:
            values = attrs.get(key) or []
            return values[0] if values and values[0] != "" else None

        expires = one("apsis.secretExpires")
        try:
            expiry = date.fromisoformat(expires) if expires else None
        except ValueError:
            expiry = None
        return cls(
            id=org["alias"],
            org_id=org["id"],
            stage=one("apsis.stage") or "pilot",
            tenant_id=one("apsis.tenantId") or "",
            client_id=one("apsis.clientId") or "",
            domains=tuple(d["name"].lower() for d in org.get("domains", []) if d.get("name")),
            secret_expires=expiry,
            secret_hint=one("apsis.secretHint"),
            it_contact_name=one("apsis.itContactName") or "",
            it_contact_email=one("apsis.itContactEmail"),
            quarantined=one(QUARANTINE_KEY),
            attributes=attrs,
        )

    def owns_email(self, email: str) -> bool:
        """Only addresses in the account's own domains are matched by email: the same rule the
        login extension applies, so a tenant cannot reach users of other domains by setting mail."""
        return email.rpartition("@")[2].lower() in self.domains


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    _SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")

    @classmethod
    def parse(cls, spec: str) -> "Shard":
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


def managed(api: KeycloakApi) -> list[SyncAccount]:
    """Every account apsis-sso manages, whatever its stage, sorted by id (one paged listing)."""
    found = [SyncAccount.from_organization(org) for org in api.organizations(query=f"apsis.managedBy:{MANAGED_BY}")
             if is_managed(org)]
    return sorted(found, key=lambda a: a.id)


def select(accounts: list[SyncAccount], only: list[str] | None = None, shard: Shard | None = None) -> list[SyncAccount]:
    """The accounts to sync among ``accounts``. Named accounts that do not exist are an error
    (a typo must not silently sync nothing); accounts with SSO disabled are left out."""
    wanted = [validation.account_id(a) for a in only] if only else None
    if wanted is not None:
        known = {a.id for a in accounts}
        missing = [a for a in wanted if a not in known]
        if missing:
            raise NotFound(f"no account {missing[0]!r} managed by apsis-sso")
    return [a for a in accounts if (wanted is None or a.id in wanted) and a.stage in SYNCED_STAGES
            and (shard is None or shard.owns(a.id))]


def discover(api: KeycloakApi, only: list[str] | None = None, shard: Shard | None = None) -> list[SyncAccount]:
    """The accounts to sync, sorted by id."""
    return select(managed(api), only, shard)


def load(api: KeycloakApi, account_id: str) -> SyncAccount:
    """One account whatever its stage (release and secret commands work on any)."""
    account_id = validation.account_id(account_id)
    org = api.organization_by_alias(account_id)
    if org is None or not is_managed(org):
        raise NotFound(f"no account {account_id!r} managed by apsis-sso")
    return SyncAccount.from_organization(org)
