"""The directory model: tenants, app registrations with their secrets, users, and the change log
that Graph delta queries read.

One lock guards everything; every mutation bumps the tenant's change sequence so delta rounds
can tell what changed since a token was issued. The state can be written to ``state.json`` so a
restarted emulator keeps its directory, secrets (as hashes) and outstanding delta links.
"""

from __future__ import annotations

import base64
import bisect
import copy
import datetime as dt
import hashlib
import hmac
import json
import os
import re
import secrets
import string
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import serialization

# Application permissions (Graph app roles) the emulator knows, with Microsoft's app role ids.
GRAPH_APP_ROLES: dict[str, str] = {
    "User.Read.All": "df021288-bdef-4463-88db-98f22de89214",
    "User.ReadWrite.All": "741f803b-c850-494e-b5df-cde7c675a1ca",
    "Directory.Read.All": "7ab1d382-f21e-4acd-a863-ba3e13f7da61",
    "Application.Read.All": "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30",
    "Application.ReadWrite.All": "1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9",
}
DEFAULT_PERMISSIONS = ("User.Read.All",)
DEFAULT_OPTIONAL_CLAIMS = ("xms_edov",)
RESET_MODES = ("syncStateNotFound", "resyncRequired")

# User properties whose changes the delta log tracks (Graph names).
TRACKED_USER_PROPERTIES = (
    "accountEnabled",
    "displayName",
    "givenName",
    "surname",
    "mail",
    "userPrincipalName",
)

_SECRET_ALPHABET = string.ascii_letters + string.digits + "~._-"
_GUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


_LATENCIES = ("graph_latency_ms", "token_latency_ms")


class NotFound(LookupError):
    """A tenant, application, user or secret that the caller named does not exist."""


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_guid() -> str:
    return str(uuid.uuid4())


def is_guid(value: str) -> bool:
    return bool(_GUID_RE.match(value.lower()))


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def parse_datetime(value: str | dt.datetime) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return _aware(value)
    text = value.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        text += "T00:00:00"
    return _aware(dt.datetime.fromisoformat(text.replace("Z", "+00:00")))


def hash_secret(secret_text: str) -> str:
    return hashlib.sha256(secret_text.encode()).hexdigest()


def hash_password(password: str, salt: str | None = None) -> str:
    salt = salt or secrets.token_hex(8)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), 10_000).hex()
    return f"{salt}${digest}"


def check_password(password: str, stored: str) -> bool:
    salt, _, _digest = stored.partition("$")
    return hmac.compare_digest(hash_password(password, salt), stored)


def generate_secret_text() -> str:
    """Entra client secrets are 40 characters; the first three are the credential's ``hint``
    and current ones carry a ``Q~`` marker at positions 4-5."""
    head = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(3))
    tail = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(34))
    return f"{head}{secrets.choice('78')}Q~{tail}"


@dataclass
class Tenant:
    tenant_id: str
    display_name: str
    domains: list[str]
    initial_domain: str
    region_scope: str = "EU"
    seq: int = 0
    delta_epoch: int = 0
    delta_reset: str = "syncStateNotFound"
    pairwise_salt: str = field(default_factory=lambda: secrets.token_hex(16))

    @property
    def default_domain(self) -> str:
        return self.domains[0]


@dataclass
class PasswordCredential:
    key_id: str
    hint: str
    display_name: str
    start: dt.datetime
    end: dt.datetime
    secret_hash: str

    def expired(self, now: dt.datetime | None = None) -> bool:
        return self.end <= (now or utcnow())


@dataclass
class KeyCredential:
    """An uploaded public certificate (Certificates & secrets › Certificates). Entra takes the
    validity from the certificate and identifies it by its SHA-1 thumbprint (the Graph
    ``customKeyIdentifier``); client assertions name it by ``x5t`` or ``x5t#S256``."""

    key_id: str
    display_name: str
    start: dt.datetime
    end: dt.datetime
    certificate_der_b64: str

    @property
    def der(self) -> bytes:
        return base64.b64decode(self.certificate_der_b64)

    @property
    def sha1_thumbprint(self) -> str:
        return hashlib.sha1(self.der).hexdigest().upper()  # noqa: S324 - Entra's certificate identifier

    @property
    def sha256_thumbprint(self) -> str:
        return hashlib.sha256(self.der).hexdigest().upper()

    def expired(self, now: dt.datetime | None = None) -> bool:
        return self.end <= (now or utcnow())


@dataclass
class Application:
    app_id: str
    object_id: str
    sp_object_id: str
    display_name: str
    redirect_uris: list[str]
    permissions: list[str]
    password_credentials: list[PasswordCredential]
    optional_claims: list[str]
    created: dt.datetime
    admin_consent_granted: bool = False
    # Configured under "API permissions" but not granted: no admin consent yet. Entra puts
    # only granted application permissions in an app token's ``roles``, so until an admin
    # consents these are missing there and Graph answers 403 Authorization_RequestDenied.
    # https://learn.microsoft.com/graph/auth-v2-service (request administrator consent)
    requested: list[str] = field(default_factory=list)
    key_credentials: list[KeyCredential] = field(default_factory=list)


@dataclass
class User:
    oid: str
    user_principal_name: str
    mail: str | None
    display_name: str | None
    given_name: str | None
    surname: str | None
    account_enabled: bool
    # None (the default): computed as Entra does, whether mail's domain is a verified domain
    # of the tenant now (``Directory.email_domain_verified``); True/False: a test's override.
    email_domain_verified: bool | None
    password_hash: str
    created: dt.datetime
    created_seq: int
    lifecycle_seq: int
    prop_seq: dict[str, int] = field(default_factory=dict)
    deleted_at: dt.datetime | None = None
    # Attack control, not Entra behaviour: claims put into this user's ID tokens as given
    # (e.g. {"xms_edov": None} sends JSON null), to test what a relying party accepts.
    id_token_overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None

    def graph_value(self, prop: str) -> Any:
        """The user's value for a Graph ``user`` property name."""
        return _GRAPH_VALUES[prop](self)


def _time(value: dt.datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


# One small function per Graph property: a delta page over 100,000 users asks for each
# selected property of each user, so building every property per call would dominate it.
_GRAPH_VALUES: dict[str, Callable[[User], Any]] = {
    "id": lambda u: u.oid,
    "accountEnabled": lambda u: u.account_enabled,
    "displayName": lambda u: u.display_name,
    "givenName": lambda u: u.given_name,
    "surname": lambda u: u.surname,
    "mail": lambda u: u.mail,
    "userPrincipalName": lambda u: u.user_principal_name,
    "businessPhones": lambda u: [],
    "jobTitle": lambda u: None,
    "mobilePhone": lambda u: None,
    "officeLocation": lambda u: None,
    "preferredLanguage": lambda u: None,
    "userType": lambda u: "Member",
    "createdDateTime": lambda u: _time(u.created),
    "deletedDateTime": lambda u: _time(u.deleted_at),
    "otherMails": lambda u: [],
    "proxyAddresses": lambda u: [f"SMTP:{u.mail}"] if u.mail else [],
}


T = TypeVar("T")


def _snapshot(value: T) -> T:
    return copy.deepcopy(value)


class EmulatorState:
    """Thread-safe in-memory directory, optionally persisted to a JSON file after each change."""

    def __init__(self, path: Path | None = None) -> None:
        self._lock = threading.RLock()
        self._path = path
        self.tenants: dict[str, Tenant] = {}
        self.users: dict[str, dict[str, User]] = {}
        self.apps: dict[str, dict[str, Application]] = {}
        self.tombstones: dict[str, dict[str, int]] = {}
        # Indexes, so a directory of 100,000 users answers as fast as one of ten: tenants by
        # domain, users by UPN, users in creation order (full delta rounds page through it)
        # and every change as (seq, oid) in order (change rounds read only what changed).
        self._by_domain: dict[str, str] = {}
        self._by_upn: dict[str, dict[str, str]] = {}
        self._created: dict[str, list[User]] = {}
        self._changes: dict[str, list[tuple[int, str]]] = {}
        self.delta_page_size = 100
        self.token_lifetime = 3599
        self.delta_token_lifetime = 7 * 24 * 3600
        # 1: access tokens are opaque strings instead of JWTs (clients must not read them)
        self.opaque_access_tokens = 0
        # Injected latency (benchmarks): milliseconds added to every Graph answer and to every
        # token-endpoint answer, as a far-away Microsoft would. Zero by default.
        self.graph_latency_ms = 0
        self.token_latency_ms = 0
        self.delta_key = secrets.token_hex(32)
        self._dirty = False
        self._timer: threading.Timer | None = None
        if path is not None and path.exists():
            self._load(json.loads(path.read_text()))

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    # ----------------------------------------------------------------- lookups

    def resolve_tenant(self, name: str) -> Tenant | None:
        """A tenant by GUID or by any of its domains (case-insensitive), as Entra accepts both."""
        key = name.lower()
        with self._lock:
            if key in self.tenants:
                return self.tenants[key]
            tid = self._by_domain.get(key)
            return self.tenants.get(tid) if tid else None

    def tenant(self, tenant_id: str) -> Tenant:
        tenant = self.resolve_tenant(tenant_id)
        if tenant is None:
            raise NotFound(f"tenant {tenant_id!r} not found")
        return tenant

    def app(self, tenant_id: str, app_id: str) -> Application:
        tenant = self.tenant(tenant_id)
        app = self.apps[tenant.tenant_id].get(app_id.lower())
        if app is None:
            raise NotFound(f"application {app_id!r} not found in tenant {tenant.tenant_id}")
        return app

    def app_by_object_id(self, tenant_id: str, object_id: str) -> Application | None:
        tenant = self.tenant(tenant_id)
        for app in self.apps[tenant.tenant_id].values():
            if app.object_id == object_id.lower():
                return app
        return None

    def user(self, tenant_id: str, oid: str) -> User:
        tenant = self.tenant(tenant_id)
        user = self.users[tenant.tenant_id].get(oid.lower())
        if user is None:
            raise NotFound(f"user {oid!r} not found in tenant {tenant.tenant_id}")
        return user

    def user_by_upn(self, tenant_id: str, upn: str) -> User | None:
        tenant = self.tenant(tenant_id)
        oid = self._by_upn[tenant.tenant_id].get(upn.strip().lower())
        return self.users[tenant.tenant_id].get(oid) if oid else None

    def users_created_after(self, tenant_id: str, after: int) -> Iterator[User]:
        """The tenant's users in creation order, from the first created after sequence ``after``."""
        order = self._created[tenant_id]
        start = bisect.bisect_right(order, after, key=lambda u: u.created_seq)
        return iter(order[start:]) if start else iter(order)

    def changed_between(self, tenant_id: str, since: int, upto: int) -> list[str]:
        """Object ids with a recorded change in ``(since, upto]``, each once."""
        log = self._changes[tenant_id]
        start = bisect.bisect_right(log, (since, "\uffff"))
        seen: dict[str, None] = {}
        for seq, oid in log[start:]:
            if seq > upto:
                break
            seen[oid] = None
        return list(seen)

    def _index_user(self, tenant_id: str, user: User) -> None:
        self._by_upn[tenant_id][user.user_principal_name.lower()] = user.oid
        self._created[tenant_id].append(user)

    def _changed(self, tenant_id: str, seq: int, oid: str) -> None:
        self._changes[tenant_id].append((seq, oid))

    def snapshot(self, getter: Callable[[], T]) -> T:
        with self._lock:
            return _snapshot(getter())

    # --------------------------------------------------------------- mutations

    def _mutate(self, action: Callable[[], T]) -> T:
        with self._lock:
            result = action()
            self.save()
            return _snapshot(result)

    def add_tenant(
        self,
        domains: list[str],
        tenant_id: str | None = None,
        display_name: str | None = None,
        region_scope: str = "EU",
    ) -> Tenant:
        def action() -> Tenant:
            tid = (tenant_id or new_guid()).lower()
            if not is_guid(tid):
                raise ValueError(f"tenant id must be a GUID, got {tenant_id!r}")
            if tid in self.tenants:
                raise ValueError(f"tenant {tid} already exists")
            custom = [d.strip().lower() for d in domains if d.strip()]
            if not custom:
                raise ValueError("a tenant needs at least one domain")
            for domain in custom:
                if self.resolve_tenant(domain) is not None:
                    raise ValueError(f"domain {domain} already belongs to another tenant")
            initial = self._initial_domain(custom[0])
            tenant = Tenant(
                tenant_id=tid,
                display_name=display_name or custom[0].split(".")[0].capitalize(),
                domains=[*custom, initial],
                initial_domain=initial,
                region_scope=region_scope,
            )
            self._register_tenant(tenant)
            return tenant

        return self._mutate(action)

    def email_domain_verified(self, tenant_id: str, user: User) -> bool:
        """``xms_edov``: whether the domain of the user's ``mail`` is a verified domain of the
        tenant ("the user's email domain owner has been verified", Microsoft's optional-claims
        reference); a test may fix it per user."""
        if user.email_domain_verified is not None:
            return user.email_domain_verified
        domain = (user.mail or "").rpartition("@")[2].lower()
        with self._lock:
            return bool(domain) and self._by_domain.get(domain) == tenant_id

    # ------------------------------------------------------------- domains

    def add_domain(self, tenant_id: str, domain: str) -> Tenant:
        """A custom domain added to the tenant and verified there. Entra verifies a domain in
        one tenant only: one verified elsewhere is refused (remove it there first)."""

        def action() -> Tenant:
            tenant = self.tenant(tenant_id)
            name = _domain_name(domain)
            owner = self._by_domain.get(name)
            if owner is not None:
                raise ValueError(f"domain {name} is already verified in tenant {owner}")
            tenant.domains.append(name)
            self._by_domain[name] = tenant.tenant_id
            return tenant

        return self._mutate(action)

    def remove_domain(self, tenant_id: str, domain: str, force: bool = False) -> Tenant:
        """Delete a custom domain from the tenant. As in Entra, the initial
        ``*.onmicrosoft.com`` domain cannot be deleted, nor a domain user principal names still
        use — unless ``force``, which renames those users to the initial domain, as Graph's
        ``domain: forceDelete`` does (a ``userPrincipalName`` change in delta)."""

        def action() -> Tenant:
            tenant = self.tenant(tenant_id)
            name = _domain_name(domain)
            if name not in tenant.domains:
                raise NotFound(f"domain {name} is not a domain of tenant {tenant.tenant_id}")
            if name == tenant.initial_domain:
                raise ValueError(f"{name} is the tenant's initial domain; Entra does not delete it")
            users = [
                u
                for u in self.users[tenant.tenant_id].values()
                if u.user_principal_name.rpartition("@")[2].lower() == name
            ]
            if users and not force:
                raise ValueError(
                    f"domain {name} is the user principal name of {len(users)} user(s); rename them "
                    "first, or force the deletion"
                )
            for user in users:
                local = user.user_principal_name.rpartition("@")[0]
                candidate, n = f"{local}@{tenant.initial_domain}", 1
                while self.user_by_upn(tenant.tenant_id, candidate) is not None:
                    n += 1
                    candidate = f"{local}{n}@{tenant.initial_domain}"
                index = self._by_upn[tenant.tenant_id]
                index.pop(user.user_principal_name.lower(), None)
                index[candidate.lower()] = user.oid
                user.user_principal_name = candidate
                seq = self._bump(tenant)
                user.prop_seq["userPrincipalName"] = seq
                self._changed(tenant.tenant_id, seq, user.oid)
            tenant.domains.remove(name)
            self._by_domain.pop(name, None)
            return tenant

        return self._mutate(action)

    def move_domain(self, domain: str, to_tenant: str, force: bool = False) -> Tenant:
        """The domain deleted from the tenant it is verified in (``force`` as for
        ``remove_domain``) and verified in ``to_tenant``, as an owner moving it would."""
        with self._lock:
            name = _domain_name(domain)
            target = self.tenant(to_tenant)
            owner = self._by_domain.get(name)
            if owner == target.tenant_id:
                raise ValueError(f"domain {name} is already verified in tenant {owner}")
            if owner is not None:
                self.remove_domain(owner, name, force=force)
            return self.add_domain(target.tenant_id, name)

    def _register_tenant(self, tenant: Tenant) -> None:
        tid = tenant.tenant_id
        self.tenants[tid] = tenant
        self.users.setdefault(tid, {})
        self.apps.setdefault(tid, {})
        self.tombstones.setdefault(tid, {})
        self._by_upn.setdefault(tid, {})
        self._created.setdefault(tid, [])
        self._changes.setdefault(tid, [])
        for domain in tenant.domains:
            self._by_domain[domain.lower()] = tid

    def _initial_domain(self, first_domain: str) -> str:
        base = re.sub(r"[^a-z0-9]", "", first_domain.split(".")[0]) or "tenant"
        candidate, n = f"{base}.onmicrosoft.com", 1
        while self.resolve_tenant(candidate) is not None:
            n += 1
            candidate = f"{base}{n}.onmicrosoft.com"
        return candidate

    def add_application(
        self,
        tenant_id: str,
        display_name: str,
        redirect_uris: Iterable[str] = (),
        app_id: str | None = None,
        permissions: Iterable[str] = DEFAULT_PERMISSIONS,
        consented: bool = True,
    ) -> Application:
        def action() -> Application:
            tenant = self.tenant(tenant_id)
            aid = (app_id or new_guid()).lower()
            if not is_guid(aid):
                raise ValueError(f"application id must be a GUID, got {app_id!r}")
            if aid in self.apps[tenant.tenant_id]:
                raise ValueError(f"application {aid} already exists in tenant {tenant.tenant_id}")
            perms = list(dict.fromkeys(permissions))
            for perm in perms:
                _check_permission(perm)
            app = Application(
                app_id=aid,
                object_id=new_guid(),
                sp_object_id=new_guid(),
                display_name=display_name,
                redirect_uris=list(redirect_uris),
                permissions=perms if consented else [],
                requested=[] if consented else perms,
                password_credentials=[],
                optional_claims=list(DEFAULT_OPTIONAL_CLAIMS),
                created=utcnow(),
            )
            self.apps[tenant.tenant_id][aid] = app
            return app

        return self._mutate(action)

    def update_application(self, tenant_id: str, app_id: str, **changes: Any) -> Application:
        allowed = {"display_name", "redirect_uris", "optional_claims", "admin_consent_granted"}
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"unknown application fields: {sorted(unknown)}")

        def action() -> Application:
            app = self.app(tenant_id, app_id)
            for key, value in changes.items():
                setattr(app, key, list(value) if isinstance(value, (list, tuple)) else value)
            return app

        return self._mutate(action)

    def add_secret(
        self,
        tenant_id: str,
        app_id: str,
        expires: dt.datetime | str,
        display_name: str = "apsis-sso",
        start: dt.datetime | str | None = None,
        secret_text: str | None = None,
    ) -> tuple[str, PasswordCredential]:
        text = secret_text or generate_secret_text()
        if len(text) < 3:
            raise ValueError("a secret needs at least three characters")

        def action() -> PasswordCredential:
            app = self.app(tenant_id, app_id)
            cred = PasswordCredential(
                key_id=new_guid(),
                hint=text[:3],
                display_name=display_name,
                start=parse_datetime(start) if start else utcnow(),
                end=parse_datetime(expires),
                secret_hash=hash_secret(text),
            )
            app.password_credentials.append(cred)
            return cred

        return text, self._mutate(action)

    def _credential(self, app: Application, hint_or_key_id: str) -> PasswordCredential:
        matches = [
            c for c in app.password_credentials if c.key_id == hint_or_key_id.lower() or c.hint == hint_or_key_id
        ]
        if not matches:
            raise NotFound(f"no secret {hint_or_key_id!r} on application {app.app_id}")
        if len(matches) > 1:
            raise ValueError(f"{hint_or_key_id!r} matches several secrets; use the keyId")
        return matches[0]

    def expire_secret(self, tenant_id: str, app_id: str, hint_or_key_id: str) -> PasswordCredential:
        def action() -> PasswordCredential:
            cred = self._credential(self.app(tenant_id, app_id), hint_or_key_id)
            now = utcnow()
            cred.end = now - dt.timedelta(seconds=1)
            cred.start = min(cred.start, cred.end - dt.timedelta(seconds=1))
            return cred

        return self._mutate(action)

    def remove_secret(self, tenant_id: str, app_id: str, hint_or_key_id: str) -> None:
        def action() -> None:
            app = self.app(tenant_id, app_id)
            app.password_credentials.remove(self._credential(app, hint_or_key_id))

        self._mutate(action)

    def add_certificate(
        self, tenant_id: str, app_id: str, certificate: bytes, display_name: str | None = None
    ) -> KeyCredential:
        """Upload a public certificate (PEM or DER, as the portal takes .cer/.pem/.crt)."""
        cert = _load_certificate(certificate)
        der = cert.public_bytes(serialization.Encoding.DER)

        def action() -> KeyCredential:
            app = self.app(tenant_id, app_id)
            cred = KeyCredential(
                key_id=new_guid(),
                display_name=display_name or cert.subject.rfc4514_string(),
                start=cert.not_valid_before_utc,
                end=cert.not_valid_after_utc,
                certificate_der_b64=base64.b64encode(der).decode(),
            )
            if any(c.certificate_der_b64 == cred.certificate_der_b64 for c in app.key_credentials):
                raise ValueError(f"certificate {cred.sha1_thumbprint} is already on application {app.app_id}")
            app.key_credentials.append(cred)
            return cred

        return self._mutate(action)

    def _key_credential(self, app: Application, key_id_or_thumbprint: str) -> KeyCredential:
        wanted = key_id_or_thumbprint.strip()
        for cred in app.key_credentials:
            if cred.key_id == wanted.lower() or cred.sha1_thumbprint == wanted.upper().replace(":", ""):
                return cred
        raise NotFound(f"no certificate {key_id_or_thumbprint!r} on application {app.app_id}")

    def expire_certificate(self, tenant_id: str, app_id: str, key_id_or_thumbprint: str) -> KeyCredential:
        def action() -> KeyCredential:
            cred = self._key_credential(self.app(tenant_id, app_id), key_id_or_thumbprint)
            cred.end = utcnow() - dt.timedelta(seconds=1)
            cred.start = min(cred.start, cred.end - dt.timedelta(seconds=1))
            return cred

        return self._mutate(action)

    def remove_certificate(self, tenant_id: str, app_id: str, key_id_or_thumbprint: str) -> None:
        def action() -> None:
            app = self.app(tenant_id, app_id)
            app.key_credentials.remove(self._key_credential(app, key_id_or_thumbprint))

        self._mutate(action)

    def set_permission(self, tenant_id: str, app_id: str, permission: str, granted: bool) -> Application:
        _check_permission(permission)

        def action() -> Application:
            app = self.app(tenant_id, app_id)
            if granted and permission not in app.permissions:
                app.permissions.append(permission)
            if not granted and permission in app.permissions:
                app.permissions.remove(permission)
            if permission in app.requested:
                app.requested.remove(permission)
            return app

        return self._mutate(action)

    def consent_all(self, tenant_id: str, app_id: str) -> Application:
        """Tenant-wide admin consent: every configured permission is granted."""

        def action() -> Application:
            app = self.app(tenant_id, app_id)
            app.permissions.extend(p for p in app.requested if p not in app.permissions)
            app.requested.clear()
            app.admin_consent_granted = True
            return app

        return self._mutate(action)

    def add_user(
        self,
        tenant_id: str,
        user_principal_name: str,
        password: str,
        mail: str | None = None,
        display_name: str | None = None,
        given_name: str | None = None,
        surname: str | None = None,
        account_enabled: bool = True,
        email_domain_verified: bool | None = None,
        oid: str | None = None,
    ) -> User:
        def action() -> User:
            tenant = self.tenant(tenant_id)
            return self._new_user(
                tenant,
                user_principal_name,
                hash_password(password),
                mail=mail,
                display_name=display_name,
                given_name=given_name,
                surname=surname,
                account_enabled=account_enabled,
                email_domain_verified=email_domain_verified,
                oid=oid,
            )

        return self._mutate(action)

    def add_users(self, tenant_id: str, users: Iterable[dict[str, Any]], password: str) -> list[str]:
        """Many users at once (benchmarks, large seeds): one lock, one save, no snapshot, and
        the password hashed once for all of them (PBKDF2 per user made a large directory
        take minutes; the hash only matters for the few who sign in). Each item takes
        ``add_user``'s keyword arguments, ``user_principal_name`` required; an item's own
        ``password`` is hashed once per distinct value. Returns the object ids, in order;
        nothing is added when one item is invalid."""
        items = [dict(u) for u in users]
        hashes: dict[str, str] = {}

        def hashed(text: str) -> str:
            if text not in hashes:
                hashes[text] = hash_password(text)
            return hashes[text]

        def action() -> list[str]:
            tenant = self.tenant(tenant_id)
            upns: set[str] = set()
            for item in items:  # validate everything first: all or nothing
                upn = str(item.get("user_principal_name", "")).strip().lower()
                if upn in upns:
                    raise ValueError(f"user principal name {upn} appears twice")
                upns.add(upn)
                self._check_upn(tenant, upn)
            out = []
            for item in items:
                upn = item.pop("user_principal_name")
                secret = hashed(str(item.pop("password", password)))
                out.append(self._new_user(tenant, upn, secret, **item).oid)
            return out

        with self._lock:
            result = action()
            self.save()
            return result

    def _check_upn(self, tenant: Tenant, upn: str) -> None:
        local, _, domain = upn.strip().rpartition("@")
        if not local or domain.lower() not in (d.lower() for d in tenant.domains):
            raise ValueError(
                f"the user principal name's domain must be one of the tenant's domains {tenant.domains}, got {upn!r}"
            )
        if self.user_by_upn(tenant.tenant_id, upn) is not None:
            raise ValueError(f"a user with user principal name {upn.strip()} already exists")

    def _new_user(
        self,
        tenant: Tenant,
        user_principal_name: str,
        password_hash: str,
        mail: str | None = None,
        display_name: str | None = None,
        given_name: str | None = None,
        surname: str | None = None,
        account_enabled: bool = True,
        email_domain_verified: bool | None = None,
        oid: str | None = None,
    ) -> User:
        upn = user_principal_name.strip()
        self._check_upn(tenant, upn)
        uid = (oid or new_guid()).lower()
        if uid in self.users[tenant.tenant_id] or uid in self.tombstones[tenant.tenant_id]:
            raise ValueError(f"object id {uid} is already used")
        seq = self._bump(tenant)
        user = User(
            oid=uid,
            user_principal_name=upn,
            mail=mail,
            display_name=display_name or upn.rpartition("@")[0],
            given_name=given_name,
            surname=surname,
            account_enabled=account_enabled,
            email_domain_verified=email_domain_verified,
            password_hash=password_hash,
            created=utcnow(),
            created_seq=seq,
            lifecycle_seq=seq,
            prop_seq={p: seq for p in TRACKED_USER_PROPERTIES},
        )
        self.users[tenant.tenant_id][uid] = user
        self._index_user(tenant.tenant_id, user)
        self._changed(tenant.tenant_id, seq, uid)
        return user

    def _bump(self, tenant: Tenant) -> int:
        tenant.seq += 1
        return tenant.seq

    def update_user(self, tenant_id: str, oid: str, **changes: Any) -> User:
        """Change user fields; Graph-visible ones are recorded for delta queries."""
        graph_names = {
            "mail": "mail",
            "display_name": "displayName",
            "given_name": "givenName",
            "surname": "surname",
            "account_enabled": "accountEnabled",
            "user_principal_name": "userPrincipalName",
        }
        silent = {"email_domain_verified", "password", "id_token_overrides"}
        unknown = set(changes) - set(graph_names) - silent
        if unknown:
            raise ValueError(f"unknown user fields: {sorted(unknown)}")

        def action() -> User:
            tenant = self.tenant(tenant_id)
            user = self.user(tenant.tenant_id, oid)
            changed: list[str] = []
            for key, value in changes.items():
                if key == "password":
                    user.password_hash = hash_password(str(value))
                    continue
                if key == "id_token_overrides":  # compared by ==, {"x": 1} would equal {"x": True}
                    user.id_token_overrides = dict(value)
                    continue
                if key == "user_principal_name":
                    domain = str(value).rpartition("@")[2].lower()
                    if domain not in (d.lower() for d in tenant.domains):
                        raise ValueError(f"{value!r} is not in one of the tenant's domains")
                    other = self.user_by_upn(tenant.tenant_id, str(value))
                    if other is not None and other.oid != user.oid:
                        raise ValueError(f"a user with user principal name {value} already exists")
                if getattr(user, key) != value:
                    if key == "user_principal_name":
                        index = self._by_upn[tenant.tenant_id]
                        index.pop(user.user_principal_name.lower(), None)
                        index[str(value).strip().lower()] = user.oid
                    setattr(user, key, value)
                    if key in graph_names:
                        changed.append(graph_names[key])
            if changed:
                seq = self._bump(tenant)
                for prop in changed:
                    user.prop_seq[prop] = seq
                self._changed(tenant.tenant_id, seq, user.oid)
            return user

        return self._mutate(action)

    def delete_user(self, tenant_id: str, oid: str) -> User:
        def action() -> User:
            tenant = self.tenant(tenant_id)
            user = self.user(tenant.tenant_id, oid)
            if not user.deleted:
                user.deleted_at = utcnow()
                user.lifecycle_seq = self._bump(tenant)
                self._changed(tenant.tenant_id, user.lifecycle_seq, user.oid)
            return user

        return self._mutate(action)

    def restore_user(self, tenant_id: str, oid: str) -> User:
        def action() -> User:
            tenant = self.tenant(tenant_id)
            user = self.user(tenant.tenant_id, oid)
            if not user.deleted:
                raise ValueError(f"user {oid} is not deleted")
            user.deleted_at = None
            user.lifecycle_seq = self._bump(tenant)
            self._changed(tenant.tenant_id, user.lifecycle_seq, user.oid)
            return user

        return self._mutate(action)

    def purge_user(self, tenant_id: str, oid: str) -> None:
        def action() -> None:
            tenant = self.tenant(tenant_id)
            user = self.user(tenant.tenant_id, oid)
            del self.users[tenant.tenant_id][user.oid]
            self._by_upn[tenant.tenant_id].pop(user.user_principal_name.lower(), None)
            seq = self._bump(tenant)
            self.tombstones[tenant.tenant_id][user.oid] = seq
            self._changed(tenant.tenant_id, seq, user.oid)

        self._mutate(action)

    def expire_delta_tokens(self, tenant_id: str, response: str = "syncStateNotFound") -> None:
        if response not in RESET_MODES:
            raise ValueError(f"response must be one of {RESET_MODES}")

        def action() -> None:
            tenant = self.tenant(tenant_id)
            tenant.delta_epoch += 1
            tenant.delta_reset = response

        self._mutate(action)

    def set_settings(self, **settings: int) -> dict[str, int]:
        allowed = {"delta_page_size", "token_lifetime", "delta_token_lifetime", "opaque_access_tokens", *_LATENCIES}
        unknown = set(settings) - allowed
        if unknown:
            raise ValueError(f"unknown settings: {sorted(unknown)}")
        for key, value in settings.items():
            if key == "opaque_access_tokens":
                if int(value) not in (0, 1):
                    raise ValueError("opaque_access_tokens must be 0 or 1")
                continue
            if int(value) < (0 if key in _LATENCIES else 1):
                raise ValueError(f"{key} must be {'zero or more' if key in _LATENCIES else 'positive'}")

        def action() -> dict[str, int]:
            for key, value in settings.items():
                setattr(self, key, int(value))
            return self.settings()

        return self._mutate(action)

    def settings(self) -> dict[str, int]:
        return {
            "delta_page_size": self.delta_page_size,
            "token_lifetime": self.token_lifetime,
            "delta_token_lifetime": self.delta_token_lifetime,
            "opaque_access_tokens": self.opaque_access_tokens,
            "graph_latency_ms": self.graph_latency_ms,
            "token_latency_ms": self.token_latency_ms,
        }

    def reset(self) -> None:
        def action() -> None:
            for table in (
                self.tenants,
                self.users,
                self.apps,
                self.tombstones,
                self._by_domain,
                self._by_upn,
                self._created,
                self._changes,
            ):
                table.clear()

        self._mutate(action)

    # ------------------------------------------------------------ persistence

    def save(self) -> None:
        """Schedule a write of ``state.json``; bursts of changes (seeding thousands of users)
        become one write. ``flush()`` writes at once (``EntraEmulator.stop()`` calls it)."""
        if self._path is None:
            return
        with self._lock:
            self._dirty = True
            if self._timer is None:
                self._timer = threading.Timer(0.2, self.flush)
                self._timer.daemon = True
                self._timer.start()

    def flush(self) -> None:
        if self._path is None:
            return
        with self._lock:
            timer, self._timer = self._timer, None
            if timer is not None:
                timer.cancel()
            if not self._dirty:
                return
            self._dirty = False
            doc = {
                "version": 1,
                "settings": self.settings(),
                "delta_key": self.delta_key,
                "tenants": [asdict(t) for t in self.tenants.values()],
                "users": {tid: [_dump(u) for u in us.values()] for tid, us in self.users.items()},
                "apps": {tid: [_dump(a) for a in aps.values()] for tid, aps in self.apps.items()},
                "tombstones": self.tombstones,
            }
            tmp = self._path.with_suffix(".tmp")
            tmp.write_text(json.dumps(doc, indent=1, default=_json_default))
            os.replace(tmp, self._path)

    def _load(self, doc: dict[str, Any]) -> None:
        for key, value in doc.get("settings", {}).items():
            setattr(self, key, int(value))
        self.delta_key = doc.get("delta_key", self.delta_key)
        for raw in doc.get("tenants", []):
            tenant = Tenant(**raw)
            self._register_tenant(tenant)
            self.tombstones[tenant.tenant_id] = dict(doc.get("tombstones", {}).get(tenant.tenant_id, {}))
        for tid, raws in doc.get("users", {}).items():
            users = sorted((_load_dataclass(User, raw) for raw in raws), key=lambda u: u.created_seq)
            log = [(seq, oid) for oid, seq in self.tombstones[tid].items()]
            for user in users:
                self.users[tid][user.oid] = user
                self._index_user(tid, user)
                log.extend((seq, user.oid) for seq in {user.created_seq, user.lifecycle_seq, *user.prop_seq.values()})
            self._changes[tid] = sorted(log)
        for tid, raws in doc.get("apps", {}).items():
            for raw in raws:
                raw = dict(raw)
                raw["password_credentials"] = [
                    _load_dataclass(PasswordCredential, c) for c in raw["password_credentials"]
                ]
                raw["key_credentials"] = [_load_dataclass(KeyCredential, c) for c in raw.get("key_credentials", [])]
                app = _load_dataclass(Application, raw)
                self.apps[tid][app.app_id] = app


def _load_certificate(data: bytes) -> x509.Certificate:
    text = data.strip()
    if b"PRIVATE KEY" in text:
        raise ValueError("upload the public certificate only, never a private key")
    try:
        if text.startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(text)
        return x509.load_der_x509_certificate(text)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not an X.509 certificate (.cer, .pem or .crt): {exc}") from None


def _domain_name(domain: str) -> str:
    name = str(domain).strip().lower().rstrip(".")
    if not re.fullmatch(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}", name):
        raise ValueError(f"invalid domain {domain!r}")
    return name


def _check_permission(permission: str) -> None:
    if permission not in GRAPH_APP_ROLES:
        raise ValueError(f"unknown application permission {permission!r}; known: {sorted(GRAPH_APP_ROLES)}")


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _dump(obj: Any) -> dict[str, Any]:
    return asdict(obj)


def _load_dataclass(cls: type[T], raw: dict[str, Any]) -> T:
    kwargs: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name not in raw:
            continue
        value = raw[f.name]
        if isinstance(value, str) and f.type in ("dt.datetime", "dt.datetime | None"):
            value = parse_datetime(value)
        kwargs[f.name] = value
    return cls(**kwargs)
