"""Graph ``users/delta`` rounds, following https://learn.microsoft.com/graph/delta-query-overview
and https://learn.microsoft.com/graph/delta-query-users.

State tokens are opaque to clients but carry, signed, what a round needs: the tenant, the
selected properties (``$select`` is given once and encoded in the tokens), the change sequence
the round started from, a paging cursor, when the token was issued and the tenant's token epoch.
A token from an older epoch, or older than the delta token lifetime (7 days for directory
objects), is rejected the way Microsoft documents for expired tokens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from .state import TRACKED_USER_PROPERTIES, EmulatorState, Tenant, User

# Properties a users/delta response carries when the first request had no $select.
DEFAULT_USER_PROPERTIES = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
)
SELECTABLE_USER_PROPERTIES = (
    "id",
    "accountEnabled",
    "businessPhones",
    "createdDateTime",
    "deletedDateTime",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "otherMails",
    "preferredLanguage",
    "proxyAddresses",
    "surname",
    "userPrincipalName",
    "userType",
)
_CANONICAL = {p.lower(): p for p in SELECTABLE_USER_PROPERTIES}


class InvalidSelect(ValueError):
    def __init__(self, prop: str) -> None:
        super().__init__(prop)
        self.prop = prop


class TokenRejected(Exception):
    """The state token cannot be used: ``expired`` (Microsoft's reset answer) or ``unknown``."""

    def __init__(self, reason: str, tenant: Tenant | None, select: list[str] | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.tenant = tenant
        self.select = select


def parse_select(raw: str | None) -> list[str] | None:
    if raw is None or not raw.strip():
        return None
    props: list[str] = []
    for name in raw.split(","):
        name = name.strip()
        canonical = _CANONICAL.get(name.lower())
        if canonical is None:
            raise InvalidSelect(name)
        if canonical not in props:
            props.append(canonical)
    return props


@dataclass
class StateToken:
    tenant_id: str
    epoch: int
    kind: str  # "full" / "changes" (skip tokens) or "delta"
    since: int
    upto: int
    select: list[str] | None
    after: list[Any] = field(default_factory=list)
    issued: int = field(default_factory=lambda: int(time.time()))


class TokenCodec:
    def __init__(self, key_hex: str) -> None:
        self._key = bytes.fromhex(key_hex)

    def encode(self, token: StateToken) -> str:
        payload = json.dumps(asdict(token), separators=(",", ":")).encode()
        mac = hmac.new(self._key, payload, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(payload + mac).rstrip(b"=").decode()

    def decode(self, value: str) -> StateToken | None:
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        except (ValueError, TypeError):
            return None
        payload, mac = raw[:-16], raw[-16:]
        expected = hmac.new(self._key, payload, hashlib.sha256).digest()[:16]
        if len(raw) <= 16 or not hmac.compare_digest(mac, expected):
            return None
        try:
            return StateToken(**json.loads(payload))
        except (ValueError, TypeError):
            return None


@dataclass
class DeltaPage:
    items: list[dict[str, Any]]
    select: list[str] | None
    next_token: str | None = None
    delta_token: str | None = None


def _represent(user: User, props: list[str]) -> dict[str, Any]:
    doc = {p: user.graph_value(p) for p in props if p != "id"}
    doc["id"] = user.oid
    return doc


def _output_props(select: list[str] | None) -> list[str]:
    return list(select) if select else list(DEFAULT_USER_PROPERTIES)


def _tracked(select: list[str] | None) -> tuple[str, ...]:
    if not select:
        return TRACKED_USER_PROPERTIES
    return tuple(p for p in select if p in TRACKED_USER_PROPERTIES)


class DeltaEngine:
    def __init__(self, state: EmulatorState) -> None:
        self._state = state
        self._codec = TokenCodec(state.delta_key)

    def check(self, value: str, tenant: Tenant, kinds: tuple[str, ...]) -> StateToken:
        token = self._codec.decode(value)
        if token is None or token.tenant_id != tenant.tenant_id or token.kind not in kinds:
            raise TokenRejected("unknown", tenant, token.select if token else None)
        too_old = time.time() - token.issued > self._state.delta_token_lifetime
        if token.epoch != tenant.delta_epoch or too_old:
            raise TokenRejected("expired", tenant, token.select)
        return token

    def latest(self, tenant: Tenant, select: list[str] | None) -> DeltaPage:
        """``$deltatoken=latest``: no data, just a deltaLink from now ("sync from now")."""
        with self._state.lock:
            token = StateToken(tenant.tenant_id, tenant.delta_epoch, "delta", tenant.seq, tenant.seq, select)
            return DeltaPage([], select, delta_token=self._codec.encode(token))

    def page(
        self, tenant: Tenant, token: StateToken | None, select: list[str] | None, minimal: bool = False
    ) -> DeltaPage:
        with self._state.lock:
            size = self._state.delta_page_size
            if token is None:
                return self._full(tenant, tenant.seq, 0, select, size)
            if token.kind == "full":
                return self._full(tenant, token.upto, int(token.after[0]) if token.after else 0, token.select, size)
            if token.kind == "delta":
                return self._changes(tenant, token.upto, tenant.seq, None, select or token.select, size, minimal)
            return self._changes(tenant, token.since, token.upto, token.after, token.select, size, minimal)

    def _full(self, tenant: Tenant, upto: int, after: int, select: list[str] | None, size: int) -> DeltaPage:
        page: list[User] = []
        more = False
        for user in self._state.users_created_after(tenant.tenant_id, after):
            if user.deleted or user.oid not in self._state.users[tenant.tenant_id]:
                continue  # in deleted items, or purged
            if len(page) == size:
                more = True
                break
            page.append(user)
        props = _output_props(select)
        items = [_represent(u, props) for u in page]
        if more:
            nxt = StateToken(tenant.tenant_id, tenant.delta_epoch, "full", 0, upto, select, [page[-1].created_seq])
            return DeltaPage(items, select, next_token=self._codec.encode(nxt))
        done = StateToken(tenant.tenant_id, tenant.delta_epoch, "delta", upto, upto, select)
        return DeltaPage(items, select, delta_token=self._codec.encode(done))

    def _changes(
        self,
        tenant: Tenant,
        since: int,
        upto: int,
        after: list[Any] | None,
        select: list[str] | None,
        size: int,
        minimal: bool,
    ) -> DeltaPage:
        tracked = _tracked(select)
        entries: list[tuple[int, str, dict[str, Any]]] = []
        users = self._state.users[tenant.tenant_id]
        changed = (users[oid] for oid in self._state.changed_between(tenant.tenant_id, since, upto) if oid in users)
        for user in changed:
            seq = max([user.lifecycle_seq, *(user.prop_seq.get(p, 0) for p in tracked)])
            if not since < seq <= upto:
                continue
            if user.deleted:
                doc: dict[str, Any] = {"id": user.oid, "@removed": {"reason": "changed"}}
            elif minimal and user.lifecycle_seq <= since:
                changed = [p for p in _output_props(select) if since < user.prop_seq.get(p, 0) <= upto]
                doc = _represent(user, changed)
            else:
                doc = _represent(user, _output_props(select))
            entries.append((seq, user.oid, doc))
        for oid, seq in self._state.tombstones[tenant.tenant_id].items():
            if since < seq <= upto:
                entries.append((seq, oid, {"id": oid, "@removed": {"reason": "deleted"}}))
        entries.sort(key=lambda e: (e[0], e[1]))
        if after:
            cursor = (int(after[0]), str(after[1]))
            entries = [e for e in entries if (e[0], e[1]) > cursor]
        page, rest = entries[:size], entries[size:]
        items = [doc for _, _, doc in page]
        if rest:
            nxt = StateToken(
                tenant.tenant_id, tenant.delta_epoch, "changes", since, upto, select, [page[-1][0], page[-1][1]]
            )
            return DeltaPage(items, select, next_token=self._codec.encode(nxt))
        done = StateToken(tenant.tenant_id, tenant.delta_epoch, "delta", upto, upto, select)
        return DeltaPage(items, select, delta_token=self._codec.encode(done))
