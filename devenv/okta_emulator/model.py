"""The emulated Okta directory: orgs, authorization servers, apps, users and the System Log.

Plain data and rules, no HTTP. Every change goes through ``Directory`` under one lock, stamps
``lastUpdated`` the way Okta's Users API documents it, and writes the System Log event Okta
writes for it. Time comes from ``Clock`` so tests can move it.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
import string
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

# Users API, "User status": https://developer.okta.com/docs/api/openapi/okta-management/management/tag/User/
STATUSES = (
    "STAGED",
    "PROVISIONED",
    "ACTIVE",
    "RECOVERY",
    "PASSWORD_EXPIRED",
    "LOCKED_OUT",
    "SUSPENDED",
    "DEPROVISIONED",
)
MANAGEMENT_SCOPES = ("okta.users.read", "okta.logs.read")
OIDC_SCOPES = ("openid", "profile", "email", "address", "phone", "offline_access")
_ALPHABET = string.ascii_letters + string.digits


class NotFound(LookupError):
    pass


class Refused(ValueError):
    """An operation Okta refuses (its error code and summary)."""

    def __init__(self, code: str, summary: str, status: int = 400) -> None:
        super().__init__(summary)
        self.code, self.summary, self.status = code, summary, status


def okta_id(prefix: str) -> str:
    """Okta object ids: a three-character type prefix and 17 more characters (20 in all)."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(17))


def iso(moment: dt.datetime) -> str:
    """Okta's timestamps: ISO 8601 UTC with milliseconds, ``2024-05-01T10:00:00.000Z``."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_iso(value: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment


class Clock:
    """Wall-clock time plus an offset tests can move forward (``advance``)."""

    def __init__(self) -> None:
        self._offset = dt.timedelta()
        self._lock = threading.Lock()
        self._last = dt.datetime.min.replace(tzinfo=dt.UTC)

    def now(self) -> dt.datetime:
        """Strictly increasing (by at least a millisecond), so ``gt`` cursors never tie."""
        with self._lock:
            moment = dt.datetime.now(dt.UTC) + self._offset
            moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
            if moment <= self._last:
                moment = self._last + dt.timedelta(milliseconds=1)
            self._last = moment
            return moment

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time only moves forward")
        with self._lock:
            self._offset += dt.timedelta(seconds=seconds)


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 1000)
    return base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def check_password(stored: str, password: str) -> bool:
    salt_b64, _, _ = stored.partition("$")
    return hmac.compare_digest(stored, hash_password(password, base64.b64decode(salt_b64)))


@dataclass
class SigningKey:
    """An authorization server's RSA signing key, published in its JWKS by ``kid``."""

    kid: str
    private_key: rsa.RSAPrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        kid = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
        return cls(kid, rsa.generate_private_key(public_exponent=65537, key_size=2048))

    def jwk(self) -> dict[str, str]:
        numbers = self.private_key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "alg": "RS256",
            "kid": self.kid,
            "use": "sig",
            "e": _b64uint(numbers.e),
            "n": _b64uint(numbers.n),
        }


def _b64uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class AuthServer:
    """The org authorization server (``server_id`` None) or a custom one (``aus…`` / ``default``)."""

    server_id: str | None
    name: str
    audience: str
    keys: list[SigningKey]


@dataclass
class WebApp:
    """An OIDC web app integration: client id, secrets, exact redirect URIs."""

    client_id: str
    label: str
    redirect_uris: list[str]
    secret_hashes: list[str]
    token_endpoint_auth_method: str = "client_secret_basic"  # or client_secret_post
    grant_types: tuple[str, ...] = ("authorization_code",)
    assigned_everyone: bool = True
    assigned: set[str] = field(default_factory=set)
    post_logout_redirect_uris: list[str] = field(default_factory=list)


@dataclass
class ServiceApp:
    """An API service app: ``private_key_jwt`` with registered public JWKs, granted Okta scopes."""

    client_id: str
    label: str
    jwks: list[dict[str, Any]]
    granted_scopes: set[str]


@dataclass
class User:
    id: str
    status: str
    created: dt.datetime
    activated: dt.datetime | None
    status_changed: dt.datetime | None
    last_login: dt.datetime | None
    last_updated: dt.datetime
    password_changed: dt.datetime | None
    profile: dict[str, Any]
    password_hash: str | None
    email_verified: bool = True

    def to_api(self, base_url: str) -> dict[str, Any]:
        """The user object of the Users API."""
        return {
            "id": self.id,
            "status": self.status,
            "created": iso(self.created),
            "activated": iso(self.activated) if self.activated else None,
            "statusChanged": iso(self.status_changed) if self.status_changed else None,
            "lastLogin": iso(self.last_login) if self.last_login else None,
            "lastUpdated": iso(self.last_updated),
            "passwordChanged": iso(self.password_changed) if self.password_changed else None,
            "type": {"id": "oty" + self.id[3:]},
            "profile": dict(self.profile),
            "credentials": {"provider": {"type": "OKTA", "name": "OKTA"}},
            "_links": {"self": {"href": f"{base_url}/api/v1/users/{self.id}"}},
        }


@dataclass
class Org:
    name: str  # the path segment that stands for the org's host
    org_id: str  # ``00o…``, the ``idp`` claim of Okta-mastered users
    org_server: AuthServer
    custom_servers: dict[str, AuthServer]
    web_apps: dict[str, WebApp] = field(default_factory=dict)
    service_apps: dict[str, ServiceApp] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    logs: list[dict[str, Any]] = field(default_factory=list)
    api_tokens: dict[str, str] = field(default_factory=dict)  # SSWS token hash -> label


class Directory:
    """All orgs, with the lifecycle rules of Okta's Users API. Thread-safe."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or Clock()
        self.lock = threading.RLock()
        self.orgs: dict[str, Org] = {}

    # ---------------------------------------------------------------- orgs and apps

    def add_org(self, name: str) -> Org:
        if not name or name.startswith("_") or "/" in name or name != name.lower():
            raise ValueError(f"org name {name!r}: lower case, no '/', not starting with '_'")
        with self.lock:
            if name in self.orgs:
                return self.orgs[name]
            org = Org(
                name=name,
                org_id=okta_id("00o"),
                org_server=AuthServer(None, "Org Authorization Server", "", [SigningKey.generate()]),
                custom_servers={},
            )
            org.custom_servers["default"] = AuthServer("default", "default", "api://default", [SigningKey.generate()])
            self.orgs[name] = org
            return org

    def org(self, name: str) -> Org:
        with self.lock:
            try:
                return self.orgs[name]
            except KeyError:
                raise NotFound(f"no org {name!r}") from None

    def add_auth_server(self, org_name: str, name: str, audience: str = "api://default") -> AuthServer:
        with self.lock:
            org = self.org(org_name)
            server = AuthServer(okta_id("aus"), name, audience, [SigningKey.generate()])
            org.custom_servers[server.server_id or ""] = server
            return server

    def auth_server(self, org: Org, server_id: str | None) -> AuthServer:
        if server_id is None:
            return org.org_server
        try:
            return org.custom_servers[server_id]
        except KeyError:
            raise NotFound(f"no authorization server {server_id!r} in org {org.name!r}") from None

    def rotate_keys(self, org_name: str, server_id: str | None = None) -> str:
        """A new signing key becomes current; the old one stays published (Okta keeps both)."""
        with self.lock:
            server = self.auth_server(self.org(org_name), server_id)
            key = SigningKey.generate()
            server.keys = [key, *server.keys[:1]]
            return key.kid

    def add_web_app(
        self,
        org_name: str,
        label: str,
        redirect_uris: list[str],
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        token_endpoint_auth_method: str = "client_secret_basic",
        post_logout_redirect_uris: list[str] | None = None,
    ) -> tuple[WebApp, str]:
        if token_endpoint_auth_method not in ("client_secret_basic", "client_secret_post"):
            raise ValueError("token_endpoint_auth_method: client_secret_basic or client_secret_post")
        secret = client_secret or secrets.token_urlsafe(30)
        with self.lock:
            org = self.org(org_name)
            app = WebApp(
                client_id or okta_id("0oa"),
                label,
                list(redirect_uris),
                [hash_password(secret)],
                token_endpoint_auth_method,
                post_logout_redirect_uris=list(post_logout_redirect_uris or []),
            )
            org.web_apps[app.client_id] = app
            self._log(org, "application.lifecycle.create", None, target_app=app.client_id)
            return app, secret

    def add_service_app(
        self, org_name: str, label: str, jwks: list[dict[str, Any]], scopes: list[str], *, client_id: str | None = None
    ) -> ServiceApp:
        for jwk in jwks:
            if jwk.get("kty") not in ("RSA", "EC") or not jwk.get("kid"):
                raise ValueError("each public JWK needs kty RSA or EC and a kid")
            if "d" in jwk:
                raise ValueError("register the public JWK only (it has a private 'd')")
        unknown = set(scopes) - set(MANAGEMENT_SCOPES)
        if unknown:
            raise ValueError(f"unknown Okta scopes {sorted(unknown)}; the emulator knows {list(MANAGEMENT_SCOPES)}")
        with self.lock:
            org = self.org(org_name)
            app = ServiceApp(client_id or okta_id("0oa"), label, [dict(j) for j in jwks], set(scopes))
            org.service_apps[app.client_id] = app
            return app

    def grant_scope(self, org_name: str, client_id: str, scope: str, granted: bool = True) -> None:
        if scope not in MANAGEMENT_SCOPES:
            raise ValueError(f"unknown Okta scope {scope!r}")
        with self.lock:
            app = self.org(org_name).service_apps.get(client_id)
            if app is None:
                raise NotFound(f"no service app {client_id!r}")
            (app.granted_scopes.add if granted else app.granted_scopes.discard)(scope)

    def assign(self, org_name: str, client_id: str, user_ids: list[str] | None) -> WebApp:
        """Who may sign in to a web app: ``None`` everyone (the default here), else these users
        only; the others get ``access_denied`` "User is not assigned to the client application."."""
        with self.lock:
            org = self.org(org_name)
            app = org.web_apps.get(client_id)
            if app is None:
                raise NotFound(f"no web app {client_id!r}")
            if user_ids is not None:
                for user_id in user_ids:
                    self.user(org_name, user_id)
            app.assigned_everyone = user_ids is None
            app.assigned = {self.user(org_name, u).id for u in user_ids or []}
            return app

    def add_api_token(self, org_name: str, label: str = "apsis") -> str:
        token = "00" + secrets.token_urlsafe(30)
        with self.lock:
            self.org(org_name).api_tokens[hashlib.sha256(token.encode()).hexdigest()] = label
        return token

    # ---------------------------------------------------------------- users

    def add_user(
        self,
        org_name: str,
        login: str,
        password: str | None = None,
        *,
        email: str | None = None,
        first_name: str = "Test",
        last_name: str = "User",
        status: str = "ACTIVE",
        email_verified: bool = True,
        user_id: str | None = None,
    ) -> User:
        """Create a user as ``POST /api/v1/users`` would: ``ACTIVE`` (activated with a password),
        ``PROVISIONED`` (activated, no password yet) or ``STAGED`` (not activated)."""
        if status not in ("ACTIVE", "PROVISIONED", "STAGED"):
            raise ValueError("a new user is ACTIVE, PROVISIONED or STAGED; other states come from lifecycle operations")
        if status == "ACTIVE" and not password:
            raise ValueError("an ACTIVE user needs a password (or create it PROVISIONED)")
        with self.lock:
            org = self.org(org_name)
            if self._find_login(org, login) is not None:
                raise Refused("E0000001", "Api validation failed: login: An object with this field already exists")
            now = self.clock.now()
            user = User(
                id=user_id or okta_id("00u"),
                status=status,
                created=now,
                activated=now if status != "STAGED" else None,
                status_changed=now if status != "STAGED" else None,
                last_login=None,
                last_updated=now,
                password_changed=now if password else None,
                profile={
                    "firstName": first_name,
                    "lastName": last_name,
                    "mobilePhone": None,
                    "secondEmail": None,
                    "login": login,
                    "email": email or login,
                },
                password_hash=hash_password(password) if password else None,
                email_verified=email_verified,
            )
            org.users[user.id] = user
            self._log(org, "user.lifecycle.create", user)
            if status != "STAGED":
                self._log(org, "user.lifecycle.activate", user)
            return user

    def user(self, org_name: str, id_or_login: str) -> User:
        with self.lock:
            org = self.org(org_name)
            user = org.users.get(id_or_login) or self._find_login(org, id_or_login)
            if user is None:
                raise Refused("E0000007", f"Not found: Resource not found: {id_or_login} (User)", 404)
            return user

    @staticmethod
    def _find_login(org: Org, login: str) -> User | None:
        for user in org.users.values():
            if user.profile["login"].lower() == login.lower():
                return user
        return None

    def _set_status(self, org: Org, user: User, status: str, event: str) -> User:
        now = self.clock.now()
        user.status = status
        user.status_changed = now
        user.last_updated = now
        self._log(org, event, user)
        return user

    def update_profile(self, org_name: str, user_id: str, **profile: Any) -> User:
        """A profile change: ``lastUpdated`` moves, ``statusChanged`` does not."""
        with self.lock:
            org, user = self.org(org_name), self.user(org_name, user_id)
            unknown = set(profile) - {"firstName", "lastName", "email", "login", "mobilePhone", "secondEmail"}
            if unknown:
                raise ValueError(f"unknown profile properties {sorted(unknown)}")
            user.profile.update(profile)
            user.last_updated = self.clock.now()
            self._log(org, "user.account.update_profile", user)
            return user

    def set_email_verified(self, org_name: str, user_id: str, verified: bool) -> User:
        with self.lock:
            user = self.user(org_name, user_id)
            user.email_verified = verified  # not a profile property: lastUpdated stays
            return user

    def activate(self, org_name: str, user_id: str) -> User:
        with self.lock:
            org, user = self.org(org_name), self.user(org_name, user_id)
            if user.status != "STAGED":
                raise Refused("E0000016", "Activation failed because the user is already active")
            user.activated = self.clock.now()
            return self._set_status(
                org, user, "ACTIVE" if user.password_hash else "PROVISIONED", "user.lifecycle.activate"
            )

    def deactivate(self, org_name: str, user_id: str) -> User:
        """Any user not yet DEPROVISIONED becomes DEPROVISIONED."""
        with self.lock:
            org, user = self.org(org_name), self.user(org_name, user_id)
            if user.status == "DEPROVISIONED":
                raise Refused("E0000001", "Api validation failed: the user is already deactivated")
            return self._set_status(org, user, "DEPROVISIONED", "user.lifecycle.deactivate")

    def reactivate(self, org_name: str, user_id: str) -> User:
        """``activate`` of a DEPROVISIONED user: PROVISIONED again, as Okta does."""
        with self.lock:
            org, user = self.org(org_name), self.user(org_name, user_id)
            if user.status != "DEPROVISIONED":
                raise Refused("E0000016", "Activation failed because the user is already active")
            user.activated = self.clock.now()
            return self._set_status(org, user, "PROVISIONED", "user.lifecycle.reactivate")

    def suspend(self, org_name: str, user_id: str) -> User:
        """Only an ACTIVE user can be suspended."""
        with self.lock:
            org, user = self.org(org_name), self.user(org_name, user_id)
            if user.status != "ACTIVE":
                raise Refused("E0000001", "Api validation failed: Cannot suspend a user that is not active")
            return self._set_status(org, user, "SUSPENDED", "user.lifecycle.suspend")

    def unsuspend(self, org_name: str, user_id: str) -> User:
        with self.lock:
            org, user = self.org(org_name), self.user(org_name, user_id)
            if user.status != "SUSPENDED":
                raise Refused("E0000001", "Api validation failed: Cannot unsuspend a user that is not suspended")
            return self._set_status(org, user, "ACTIVE", "user.lifecycle.unsuspend")

    def lock_out(self, org_name: str, user_id: str) -> User:
        with self.lock:
            org, user = self.org(org_name), self.user(org_name, user_id)
            if user.status != "ACTIVE":
                raise Refused("E0000001", "Api validation failed: only an ACTIVE user can be locked out")
            return self._set_status(org, user, "LOCKED_OUT", "user.account.lock")

    def unlock(self, org_name: str, user_id: str) -> User:
        with self.lock:
            org, user = self.org(org_name), self.user(org_name, user_id)
            if user.status != "LOCKED_OUT":
                raise Refused("E0000032", "Unlock is not allowed for this user.")
            return self._set_status(org, user, "ACTIVE", "user.account.unlock")

    def expire_password(self, org_name: str, user_id: str) -> User:
        with self.lock:
            org, user = self.org(org_name), self.user(org_name, user_id)
            if user.status != "ACTIVE":
                raise Refused("E0000001", "Api validation failed: only an ACTIVE user's password can be expired")
            return self._set_status(org, user, "PASSWORD_EXPIRED", "user.account.expire_password")

    def reset_password(self, org_name: str, user_id: str) -> User:
        with self.lock:
            org, user = self.org(org_name), self.user(org_name, user_id)
            if user.status not in ("ACTIVE", "PASSWORD_EXPIRED", "LOCKED_OUT", "RECOVERY"):
                raise Refused("E0000001", "Api validation failed: this user's password cannot be reset")
            return self._set_status(org, user, "RECOVERY", "user.account.reset_password")

    def delete(self, org_name: str, user_id: str) -> User | None:
        """``DELETE /api/v1/users/{id}``: a user not yet DEPROVISIONED is deactivated (returned);
        a DEPROVISIONED one is deleted for good (None) and disappears from every listing."""
        with self.lock:
            org, user = self.org(org_name), self.user(org_name, user_id)
            if user.status != "DEPROVISIONED":
                return self._set_status(org, user, "DEPROVISIONED", "user.lifecycle.deactivate")
            del org.users[user.id]
            self._log(org, "user.lifecycle.delete.initiated", user)
            self._log(org, "user.lifecycle.delete.completed", user)
            return None

    def record_login(self, org: Org, user: User, client_id: str) -> None:
        with self.lock:
            user.last_login = self.clock.now()
            self._log(org, "user.authentication.sso", user, target_app=client_id)

    # ---------------------------------------------------------------- System Log

    def _log(self, org: Org, event_type: str, user: User | None, target_app: str | None = None) -> None:
        targets: list[dict[str, Any]] = []
        if user is not None:
            targets.append(
                {
                    "id": user.id,
                    "type": "User",
                    "alternateId": user.profile["login"],
                    "displayName": f"{user.profile['firstName']} {user.profile['lastName']}",
                    "detailEntry": None,
                }
            )
        if target_app is not None:
            targets.append(
                {"id": target_app, "type": "AppInstance", "alternateId": target_app, "displayName": target_app}
            )
        published = self.clock.now()
        org.logs.append(
            {
                "uuid": str(uuid.uuid4()),
                "published": iso(published),
                "eventType": event_type,
                "version": "0",
                "severity": "INFO",
                "legacyEventType": None,
                "displayMessage": _DISPLAY.get(event_type, event_type),
                "actor": {
                    "id": "00u" + "emulatoradmin0000",
                    "type": "User",
                    "alternateId": f"admin@{org.name}",
                    "displayName": "Emulator Admin",
                    "detailEntry": None,
                },
                "client": {"userAgent": None, "zone": "null", "device": None, "id": None, "ipAddress": None},
                "outcome": {"result": "SUCCESS", "reason": None},
                "target": targets,
                "transaction": {"type": "WEB", "id": secrets.token_urlsafe(18), "detail": {}},
                "debugContext": {"debugData": {}},
                "authenticationContext": {"authenticationStep": 0, "externalSessionId": None},
                "securityContext": {},
            }
        )


_DISPLAY = {
    "user.lifecycle.create": "Create Okta user",
    "user.lifecycle.activate": "Activate Okta user",
    "user.lifecycle.reactivate": "Reactivate Okta user",
    "user.lifecycle.deactivate": "Deactivate Okta user",
    "user.lifecycle.suspend": "Suspend Okta user",
    "user.lifecycle.unsuspend": "Unsuspend Okta user",
    "user.lifecycle.delete.initiated": "Delete Okta user",
    "user.lifecycle.delete.completed": "Delete Okta user completed",
    "user.account.update_profile": "Update user profile for Okta",
    "user.account.lock": "Max sign in attempts exceeded",
    "user.account.unlock": "Unlock user account",
    "user.account.expire_password": "Expire user password",
    "user.account.reset_password": "Reset user password",
    "user.authentication.sso": "User single sign on to app",
    "application.lifecycle.create": "Create application",
}
