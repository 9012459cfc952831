"""The emulator's directory as a Python API (``DirectoryAdmin``, which ``EntraEmulator`` is),
its objects as JSON-ready data, and seed files. The HTTP control API (``controls``) and the
tests drive the same methods.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .faults import FaultInjector, RequestLog
from .state import (
    DEFAULT_PERMISSIONS,
    Application,
    EmulatorState,
    KeyCredential,
    PasswordCredential,
    Tenant,
    User,
    hash_secret,
    parse_datetime,
    utcnow,
)


def tenant_dict(tenant: Tenant) -> dict[str, Any]:
    return {
        "tenant_id": tenant.tenant_id,
        "display_name": tenant.display_name,
        "domains": list(tenant.domains),
        "initial_domain": tenant.initial_domain,
        "region_scope": tenant.region_scope,
    }


def credential_dict(cred: PasswordCredential) -> dict[str, Any]:
    return {
        "key_id": cred.key_id,
        "hint": cred.hint,
        "display_name": cred.display_name,
        "start": cred.start.isoformat(),
        "end": cred.end.isoformat(),
        "expired": cred.expired(utcnow()),
    }


def certificate_dict(cred: KeyCredential) -> dict[str, Any]:
    return {
        "key_id": cred.key_id,
        "display_name": cred.display_name,
        "thumbprint": cred.sha1_thumbprint,
        "thumbprint_sha256": cred.sha256_thumbprint,
        "start": cred.start.isoformat(),
        "end": cred.end.isoformat(),
        "expired": cred.expired(utcnow()),
    }


def application_dict(app: Application) -> dict[str, Any]:
    return {
        "app_id": app.app_id,
        "object_id": app.object_id,
        "service_principal_id": app.sp_object_id,
        "display_name": app.display_name,
        "redirect_uris": list(app.redirect_uris),
        "permissions": list(app.permissions),
        "requested": list(app.requested),
        "optional_claims": list(app.optional_claims),
        "password_credentials": [credential_dict(c) for c in app.password_credentials],
        "key_credentials": [certificate_dict(c) for c in app.key_credentials],
        "admin_consent_granted": app.admin_consent_granted,
    }


def user_dict(user: User) -> dict[str, Any]:
    return {
        "oid": user.oid,
        "user_principal_name": user.user_principal_name,
        "mail": user.mail,
        "display_name": user.display_name,
        "given_name": user.given_name,
        "surname": user.surname,
        "account_enabled": user.account_enabled,
        "email_domain_verified": user.email_domain_verified,
        "deleted": user.deleted,
        "id_token_overrides": dict(user.id_token_overrides),
    }


# ------------------------------------------------------------------- seeds


def apply_seed(emulator: DirectoryAdmin, seed: dict[str, Any] | str | Path) -> dict[str, Any]:
    """Create what a seed document describes, skipping what already exists (so a restarted
    emulator with the same ``--state-dir`` and ``--seed`` does not duplicate anything).

    Shape::

        {"tenants": [{"tenant_id": "<guid, optional>", "domains": ["acme.example"],
                      "display_name": "Acme",
                      "applications": [{"app_id": "<guid, optional>", "display_name": "APSIS SSO",
                                        "redirect_uris": ["https://..."],
                                        "permissions": ["User.Read.All"],
                                        "optional_claims": ["xms_edov"],
                                        "secrets": [{"secret_text": "...", "expires": "2030-01-01",
                                                     "display_name": "..."}]}],
                      "users": [{"user_principal_name": "ann@acme.example", "password": "...",
                                 "mail": "ann@acme.example", "account_enabled": true,
                                 "email_domain_verified": true, "oid": "<guid, optional>"}]}]}
    """
    doc: dict[str, Any] = seed if isinstance(seed, dict) else json.loads(Path(seed).read_text())
    summary: dict[str, Any] = {"tenants": []}
    for t in doc.get("tenants", []):
        tenant = None
        if t.get("tenant_id"):
            tenant = emulator.find_tenant(t["tenant_id"])
        if tenant is None and t.get("domains"):
            tenant = emulator.find_tenant(t["domains"][0])
        if tenant is None:
            tenant = emulator.add_tenant(t["domains"], tenant_id=t.get("tenant_id"), display_name=t.get("display_name"))
        tid = tenant.tenant_id
        apps_out = []
        for a in t.get("applications", []):
            app = _find_app(emulator, tid, a)
            if app is None:
                app = emulator.add_application(
                    tid,
                    a["display_name"],
                    a.get("redirect_uris", []),
                    app_id=a.get("app_id"),
                    permissions=a.get("permissions", ["User.Read.All"]),
                    consented=bool(a.get("consented", True)),
                )
            if "optional_claims" in a:
                emulator.set_optional_claims(tid, app.app_id, a["optional_claims"])
            for s in a.get("secrets", []):
                if not emulator.has_secret(tid, app.app_id, s.get("secret_text")):
                    emulator.add_secret(
                        tid,
                        app.app_id,
                        parse_datetime(s["expires"]),
                        display_name=s.get("display_name", "apsis-sso"),
                        secret_text=s.get("secret_text"),
                    )
            apps_out.append({"app_id": app.app_id, "display_name": app.display_name})
        users_out = []
        for u in t.get("users", []):
            user = emulator.find_user(tid, u["user_principal_name"])
            if user is None:
                kwargs = {k: v for k, v in u.items() if k not in ("user_principal_name", "password")}
                user = emulator.add_user(tid, u["user_principal_name"], u["password"], **kwargs)
            users_out.append({"oid": user.oid, "user_principal_name": user.user_principal_name})
        summary["tenants"].append({**tenant_dict(tenant), "applications": apps_out, "users": users_out})
    return summary


def _find_app(emulator: DirectoryAdmin, tid: str, spec: dict[str, Any]) -> Application | None:
    for app in emulator.list_applications(tid):
        if spec.get("app_id") and app.app_id == spec["app_id"].lower():
            return app
        if not spec.get("app_id") and app.display_name == spec["display_name"]:
            return app
    return None


class DirectoryAdmin:
    """Tenants, applications, users, delta tokens, faults and settings of the emulator: what a
    test or an operator changes, never what Entra's endpoints answer (``oidc``, ``graph``)."""

    _state: EmulatorState
    _faults: FaultInjector
    _log: RequestLog

    @property
    def url(self) -> str:
        raise NotImplementedError

    @property
    def graph_base_url(self) -> str:
        return f"{self.url}/v1.0"

    # ------------------------------------------------------------- tenants

    def add_tenant(self, domains: list[str], tenant_id: str | None = None, display_name: str | None = None) -> Tenant:
        """A tenant with its custom domains plus an ``<name>.onmicrosoft.com`` initial domain."""
        return self._state.add_tenant(domains, tenant_id=tenant_id, display_name=display_name)

    def get_tenant(self, tenant: str) -> Tenant:
        """By GUID or domain; raises ``LookupError``."""
        return self._state.snapshot(lambda: self._state.tenant(tenant))

    def find_tenant(self, tenant: str) -> Tenant | None:
        return self._state.snapshot(lambda: self._state.resolve_tenant(tenant))

    def list_tenants(self) -> list[Tenant]:
        return self._state.snapshot(lambda: list(self._state.tenants.values()))

    def add_domain(self, tenant_id: str, domain: str) -> Tenant:
        """Add ``domain`` to the tenant, verified (discovery for it then names this tenant).
        Refused when another tenant has it verified: Entra verifies a domain in one tenant only."""
        return self._state.add_domain(tenant_id, domain)

    def remove_domain(self, tenant_id: str, domain: str, *, force: bool = False) -> Tenant:
        """Delete the tenant's custom ``domain`` (discovery for it then answers AADSTS90002).
        Refused while user principal names use it, unless ``force``: those users are renamed to
        the initial domain, as Graph's ``forceDelete`` does."""
        return self._state.remove_domain(tenant_id, domain, force=force)

    def move_domain(self, domain: str, to_tenant: str, *, force: bool = False) -> Tenant:
        """``remove_domain`` where it is verified, then ``add_domain`` to ``to_tenant``."""
        return self._state.move_domain(domain, to_tenant, force=force)

    # -------------------------------------------------------- applications

    def add_application(
        self,
        tenant_id: str,
        display_name: str,
        redirect_uris: Iterable[str] = (),
        app_id: str | None = None,
        permissions: Iterable[str] = DEFAULT_PERMISSIONS,
        consented: bool = True,
    ) -> Application:
        """An app registration (and its service principal) with ``permissions`` configured
        (``User.Read.All`` by default), granted unless ``consented=False``: then they wait
        for admin consent (``/adminconsent`` or ``grant_application_permission``) and app
        tokens carry no ``roles`` for them, as in Entra."""
        return self._state.add_application(tenant_id, display_name, redirect_uris, app_id, permissions, consented)

    def get_application(self, tenant_id: str, app_id: str) -> Application:
        return self._state.snapshot(lambda: self._state.app(tenant_id, app_id))

    def list_applications(self, tenant_id: str) -> list[Application]:
        return self._state.snapshot(lambda: list(self._state.apps[self._state.tenant(tenant_id).tenant_id].values()))

    def update_application(self, tenant_id: str, app_id: str, **changes: Any) -> Application:
        """Change ``display_name``, ``redirect_uris``, ``optional_claims`` or ``admin_consent_granted``."""
        return self._state.update_application(tenant_id, app_id, **changes)

    def set_redirect_uris(self, tenant_id: str, app_id: str, redirect_uris: list[str]) -> Application:
        return self._state.update_application(tenant_id, app_id, redirect_uris=redirect_uris)

    def set_optional_claims(self, tenant_id: str, app_id: str, claims: list[str]) -> Application:
        """ID token optional claims, e.g. ``["xms_edov"]`` (the default) or ``[]``."""
        return self._state.update_application(tenant_id, app_id, optional_claims=claims)

    def add_secret(
        self,
        tenant_id: str,
        app_id: str,
        expires: dt.datetime,
        display_name: str = "apsis-sso",
        *,
        start: dt.datetime | None = None,
        secret_text: str | None = None,
    ) -> str:
        """A client secret; returns its text (40 characters, the first three are its ``hint``).
        ``secret_text`` fixes the value (for seeds and demos); Entra itself always generates it."""
        return self.add_secret_credential(
            tenant_id, app_id, expires, display_name, start=start, secret_text=secret_text
        )[0]

    def add_secret_credential(
        self,
        tenant_id: str,
        app_id: str,
        expires: dt.datetime,
        display_name: str = "apsis-sso",
        *,
        start: dt.datetime | None = None,
        secret_text: str | None = None,
    ) -> tuple[str, PasswordCredential]:
        return self._state.add_secret(tenant_id, app_id, expires, display_name, start, secret_text)

    def has_secret(self, tenant_id: str, app_id: str, secret_text: str | None) -> bool:
        if not secret_text:
            return False
        app = self.get_application(tenant_id, app_id)
        return any(c.secret_hash == hash_secret(secret_text) for c in app.password_credentials)

    def expire_secret(self, tenant_id: str, app_id: str, hint_or_key_id: str) -> None:
        """Move the secret's end date into the past: the token endpoint answers AADSTS7000222."""
        self._state.expire_secret(tenant_id, app_id, hint_or_key_id)

    def remove_secret(self, tenant_id: str, app_id: str, hint_or_key_id: str) -> None:
        """Delete the credential: the token endpoint answers AADSTS7000215 for its text."""
        self._state.remove_secret(tenant_id, app_id, hint_or_key_id)

    def upload_certificate(
        self, tenant_id: str, app_id: str, certificate: bytes | str, display_name: str | None = None
    ) -> KeyCredential:
        """Certificates & secrets › Certificates › Upload: a public certificate (PEM or DER). Its
        validity becomes the credential's; client assertions naming it by thumbprint then work."""
        data = certificate.encode() if isinstance(certificate, str) else certificate
        return self._state.add_certificate(tenant_id, app_id, data, display_name)

    def expire_certificate(self, tenant_id: str, app_id: str, key_id_or_thumbprint: str) -> None:
        """Move the certificate's end date into the past: assertions it signs get AADSTS700027."""
        self._state.expire_certificate(tenant_id, app_id, key_id_or_thumbprint)

    def remove_certificate(self, tenant_id: str, app_id: str, key_id_or_thumbprint: str) -> None:
        """Delete the uploaded certificate (by keyId or SHA-1 thumbprint)."""
        self._state.remove_certificate(tenant_id, app_id, key_id_or_thumbprint)

    def grant_application_permission(self, tenant_id: str, app_id: str, permission: str) -> None:
        """Admin-consent an application permission; it appears in ``roles`` of new app tokens."""
        self._state.set_permission(tenant_id, app_id, permission, True)

    def revoke_application_permission(self, tenant_id: str, app_id: str, permission: str) -> None:
        self._state.set_permission(tenant_id, app_id, permission, False)

    # --------------------------------------------------------------- users

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
        """A member user; the UPN's domain must be one of the tenant's domains. Its ID tokens'
        ``xms_edov`` says whether its ``mail``'s domain is verified in the tenant (as Entra
        computes it); ``email_domain_verified`` fixes it instead, for tests."""
        return self._state.add_user(
            tenant_id,
            user_principal_name,
            password,
            mail=mail,
            display_name=display_name,
            given_name=given_name,
            surname=surname,
            account_enabled=account_enabled,
            email_domain_verified=email_domain_verified,
            oid=oid,
        )

    def add_users(self, tenant_id: str, users: Iterable[dict[str, Any]], password: str = "pw") -> list[str]:
        """Many member users at once (benchmarks, large directories); returns their object ids.
        Each item takes ``add_user``'s keyword arguments (``user_principal_name`` required,
        ``password`` optional). The password is hashed once per distinct value, not per user,
        and nothing is added when one item is invalid."""
        return self._state.add_users(tenant_id, users, password)

    def get_user(self, tenant_id: str, oid: str) -> User:
        return self._state.snapshot(lambda: self._state.user(tenant_id, oid))

    def find_user(self, tenant_id: str, user_principal_name: str) -> User | None:
        return self._state.snapshot(lambda: self._state.user_by_upn(tenant_id, user_principal_name))

    def list_users(self, tenant_id: str) -> list[User]:
        return self._state.snapshot(lambda: list(self._state.users[self._state.tenant(tenant_id).tenant_id].values()))

    def update_user(self, tenant_id: str, oid: str, **changes: Any) -> User:
        """Change ``mail``, ``display_name``, ``given_name``, ``surname``, ``account_enabled``,
        ``user_principal_name``, ``email_domain_verified``, ``password`` or ``id_token_overrides``."""
        return self._state.update_user(tenant_id, oid, **changes)

    def set_user_mail(self, tenant_id: str, oid: str, mail: str | None) -> User:
        return self._state.update_user(tenant_id, oid, mail=mail)

    def disable_user(self, tenant_id: str, oid: str) -> User:
        return self._state.update_user(tenant_id, oid, account_enabled=False)

    def enable_user(self, tenant_id: str, oid: str) -> User:
        return self._state.update_user(tenant_id, oid, account_enabled=True)

    def set_email_domain_verified(self, tenant_id: str, oid: str, verified: bool | None) -> User:
        """Fixes the ``xms_edov`` claim (None: computed again); not a Graph property, so no delta change."""
        return self._state.update_user(tenant_id, oid, email_domain_verified=verified)

    def override_id_token_claims(self, tenant_id: str, oid: str, claims: dict[str, Any]) -> User:
        """Attack control, not Entra behaviour: the user's ID tokens carry these claims exactly
        as given (``{"xms_edov": None}`` sends JSON null, ``"true"`` a string); ``{}`` clears.
        Entra itself sends ``xms_edov`` as a JSON boolean; this is for testing what a relying
        party accepts when a token says something else."""
        return self._state.update_user(tenant_id, oid, id_token_overrides=dict(claims))

    def delete_user(self, tenant_id: str, oid: str) -> User:
        """Soft delete (to deleted items): delta reports ``@removed: {"reason": "changed"}``."""
        return self._state.delete_user(tenant_id, oid)

    def restore_user(self, tenant_id: str, oid: str) -> User:
        """Restore a soft-deleted user: delta reports it as a normal object again."""
        return self._state.restore_user(tenant_id, oid)

    def purge_user(self, tenant_id: str, oid: str) -> None:
        """Permanent delete: delta reports ``@removed: {"reason": "deleted"}``."""
        self._state.purge_user(tenant_id, oid)

    hard_delete_user = purge_user

    # ---------------------------------------------------- delta and faults

    def expire_delta_tokens(self, tenant_id: str, response: str = "syncStateNotFound") -> None:
        """Invalidate every outstanding delta/skip token of the tenant. The next call with one
        answers 400 ``syncStateNotFound`` (default) or, with ``response="resyncRequired"``,
        410 Gone ``resyncRequired`` with a ``Location`` header."""
        self._state.expire_delta_tokens(tenant_id, response)

    def inject_graph_fault(
        self,
        kind: str,
        count: int = 1,
        retry_after: int | None = 2,
        path_contains: str | None = None,
        status: int | None = None,
        tenant_id: str | None = None,
    ) -> None:
        """The next ``count`` matching Graph calls fail: ``throttle`` (429 + Retry-After) or
        ``server_error`` (503 by default; ``status`` may be any 5xx)."""
        self._faults.add("graph", kind, count, retry_after, path_contains, status, tenant_id)

    def inject_token_fault(
        self,
        kind: str,
        count: int = 1,
        retry_after: int | None = 2,
        status: int | None = None,
        tenant_id: str | None = None,
    ) -> None:
        """The next ``count`` token requests fail: ``throttle`` (429) or ``server_error`` (503)."""
        self._faults.add("token", kind, count, retry_after, None, status, tenant_id)

    def pending_faults(self) -> list[dict[str, Any]]:
        return self._faults.pending()

    def clear_faults(self) -> None:
        self._faults.clear()

    def set_delta_page_size(self, size: int) -> None:
        self._state.set_settings(delta_page_size=size)

    def configure(self, **settings: int) -> dict[str, int]:
        """``delta_page_size``, ``token_lifetime`` (seconds), ``delta_token_lifetime`` (seconds), ``opaque_access_tokens`` (1: access tokens are opaque strings, not JWTs), ``graph_latency_ms`` and ``token_latency_ms`` (injected latency per Graph / token answer, benchmarks)."""
        return self._state.set_settings(**settings)

    def settings(self) -> dict[str, int]:
        return self._state.settings()

    @property
    def requests_log(self) -> list[dict[str, Any]]:
        """Recent requests: time, method, path, query (secrets redacted), status."""
        return self._log.entries()

    def clear_requests_log(self) -> None:
        """Forget the recent requests and reset ``request_counts``."""
        self._log.clear()

    def request_counts(self) -> dict[str, int]:
        """Requests served since the last ``clear_requests_log``, by kind: ``token``,
        ``graph users/delta``, ``graph applications``, ``graph other``, ``other`` (the recent-request
        log keeps only the last 2,000; these count every one)."""
        return self._log.counts()

    def load_seed(self, seed: dict[str, Any] | str | Path) -> dict[str, Any]:
        return apply_seed(self, seed)

    def reset(self) -> None:
        """Forget every tenant, application and user, and any pending fault."""
        self._state.reset()
        self._faults.clear()

    def describe(self) -> dict[str, Any]:
        """The directory as JSON-ready data (no secrets, no password hashes)."""
        out = []
        for tenant in self.list_tenants():
            out.append(
                {
                    **tenant_dict(tenant),
                    "applications": [application_dict(a) for a in self.list_applications(tenant.tenant_id)],
                    "users": [user_dict(u) for u in self.list_users(tenant.tenant_id)],
                }
            )
        return {"url": self.url, "graph_base_url": self.graph_base_url, "settings": self.settings(), "tenants": out}
