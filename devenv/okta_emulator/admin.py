"""The Python control API of ``OktaEmulator``: orgs, apps, users and their lifecycle, time,
rate limits and faults (the HTTP control API in ``controls`` calls these)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from devenv.entra_emulator.faults import RequestLog

from .limits import Faults, RateLimiter
from .model import AuthServer, Directory, Org, Refused, ServiceApp, User, WebApp
from .oauth import Context


class OktaAdmin:
    """What tests change the emulated orgs with. Subclassed by the server, which sets these."""

    directory: Directory
    ctx: Context
    limiter: RateLimiter
    faults: Faults
    _log: RequestLog

    @property
    def url(self) -> str:
        raise NotImplementedError

    @property
    def ca_bundle(self) -> Path:
        raise NotImplementedError

    def org_url(self, org: str) -> str:
        """What stands for ``https://{org}.okta.com``: the org AS issuer and the API base."""
        self.directory.org(org)
        return self.ctx.org_url(org)

    def issuer(self, org: str, auth_server_id: str | None = None) -> str:
        self.directory.auth_server(self.directory.org(org), auth_server_id)
        return self.ctx.issuer(org, auth_server_id)

    def discovery_url(self, org: str, auth_server_id: str | None = None) -> str:
        return self.issuer(org, auth_server_id) + "/.well-known/openid-configuration"

    def endpoint(self, org: str, name: str, auth_server_id: str | None = None) -> str:
        """``authorize``, ``token``, ``keys``, ``userinfo``, ``logout`` of the org or a custom server."""
        return self.ctx.endpoint(org, auth_server_id, name)

    # ------------------------------------------------------------- controls

    def add_org(self, name: str) -> Org:
        return self.directory.add_org(name)

    def add_auth_server(self, org: str, name: str, audience: str = "api://default") -> AuthServer:
        return self.directory.add_auth_server(org, name, audience)

    def rotate_keys(self, org: str, auth_server_id: str | None = None) -> str:
        return self.directory.rotate_keys(org, auth_server_id)

    def add_web_app(
        self,
        org: str,
        label: str,
        redirect_uris: list[str],
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        token_endpoint_auth_method: str = "client_secret_basic",
        post_logout_redirect_uris: list[str] | None = None,
    ) -> tuple[WebApp, str]:
        """An OIDC web app integration; returns it and its client secret."""
        return self.directory.add_web_app(
            org,
            label,
            redirect_uris,
            client_id=client_id,
            client_secret=client_secret,
            token_endpoint_auth_method=token_endpoint_auth_method,
            post_logout_redirect_uris=post_logout_redirect_uris,
        )

    def add_service_app(
        self, org: str, label: str, jwks: list[dict[str, Any]], scopes: list[str], *, client_id: str | None = None
    ) -> ServiceApp:
        """An API service app authenticating with ``private_key_jwt`` against ``jwks`` (public
        JWKs with ``kid``), granted ``scopes`` (``okta.users.read``, ``okta.logs.read``)."""
        return self.directory.add_service_app(org, label, jwks, scopes, client_id=client_id)

    def grant_scope(self, org: str, client_id: str, scope: str, granted: bool = True) -> None:
        self.directory.grant_scope(org, client_id, scope, granted)

    def assign(self, org: str, client_id: str, user_ids: list[str] | None) -> WebApp:
        """``None``: every user may sign in to the app; a list: only these (ids or logins)."""
        return self.directory.assign(org, client_id, user_ids)

    def add_api_token(self, org: str, label: str = "apsis") -> str:
        return self.directory.add_api_token(org, label)

    def add_user(self, org: str, login: str, password: str | None = None, **kwargs: Any) -> User:
        return self.directory.add_user(org, login, password, **kwargs)

    def user(self, org: str, id_or_login: str) -> dict[str, Any]:
        """The user as the Users API shows it."""
        return self.directory.user(org, id_or_login).to_api(self.ctx.org_url(org))

    def update_profile(self, org: str, user_id: str, **profile: Any) -> User:
        return self.directory.update_profile(org, user_id, **profile)

    def set_email_verified(self, org: str, user_id: str, verified: bool) -> User:
        return self.directory.set_email_verified(org, user_id, verified)

    def activate(self, org: str, user_id: str) -> User:
        return self.directory.activate(org, user_id)

    def deactivate(self, org: str, user_id: str) -> User:
        return self.directory.deactivate(org, user_id)

    def reactivate(self, org: str, user_id: str) -> User:
        return self.directory.reactivate(org, user_id)

    def suspend(self, org: str, user_id: str) -> User:
        return self.directory.suspend(org, user_id)

    def unsuspend(self, org: str, user_id: str) -> User:
        return self.directory.unsuspend(org, user_id)

    def lock_out(self, org: str, user_id: str) -> User:
        return self.directory.lock_out(org, user_id)

    def unlock(self, org: str, user_id: str) -> User:
        return self.directory.unlock(org, user_id)

    def expire_password(self, org: str, user_id: str) -> User:
        return self.directory.expire_password(org, user_id)

    def reset_password(self, org: str, user_id: str) -> User:
        return self.directory.reset_password(org, user_id)

    def delete_user(self, org: str, user_id: str) -> User | None:
        """Okta's DELETE: deactivates a user not yet DEPROVISIONED (returns it), deletes a
        DEPROVISIONED one for good (None)."""
        return self.directory.delete(org, user_id)

    def advance_time(self, seconds: float) -> None:
        """Move the directory's clock (timestamps, System Log) forward. Tokens and client
        assertions keep being checked against real time."""
        self.directory.clock.advance(seconds)

    def set_rate_limit(self, bucket_name: str, per_minute: int) -> None:
        """Per-minute ceiling of a bucket: ``users``, ``logs``, ``token``, ``authorize``, ``other``."""
        self.limiter.set_limit(bucket_name, per_minute)

    def inject_fault(
        self,
        kind: str,
        count: int = 1,
        *,
        path_contains: str | None = None,
        org: str | None = None,
        status: int | None = None,
        reset_in: int = 30,
        delay_ms: int = 1000,
    ) -> dict[str, Any]:
        """``rate_limit`` (429 E0000047, ``X-Rate-Limit-Reset`` ``reset_in`` seconds ahead),
        ``server_error`` (500 by default, any 5xx) or ``slow`` (answers after ``delay_ms``)."""
        fault = self.faults.add(
            kind, count, path_contains=path_contains, org=org, status=status, reset_in=reset_in, delay_ms=delay_ms
        )
        return fault.to_dict()

    def clear_faults(self) -> None:
        self.faults.clear()

    @property
    def requests_log(self) -> list[dict[str, Any]]:
        return self._log.entries()

    def describe(self) -> dict[str, Any]:
        """Every org with its issuers, apps (no secrets) and users, as JSON."""
        with self.directory.lock:
            return {
                "url": self.ctx.base_url,
                "ca_bundle": str(self.ca_bundle),
                "orgs": [
                    {
                        "name": org.name,
                        "org_id": org.org_id,
                        "url": self.ctx.org_url(org.name),
                        "issuer": self.ctx.issuer(org.name, None),
                        "auth_servers": {sid: self.ctx.issuer(org.name, sid) for sid in org.custom_servers},
                        "web_apps": [
                            {"client_id": a.client_id, "label": a.label, "redirect_uris": a.redirect_uris}
                            for a in org.web_apps.values()
                        ],
                        "service_apps": [
                            {
                                "client_id": a.client_id,
                                "label": a.label,
                                "scopes": sorted(a.granted_scopes),
                                "kids": [j["kid"] for j in a.jwks],
                            }
                            for a in org.service_apps.values()
                        ],
                        "users": [u.to_api(self.ctx.org_url(org.name)) for u in org.users.values()],
                    }
                    for org in self.directory.orgs.values()
                ],
            }

    def load_seed(self, seed: dict[str, Any] | str | Path) -> dict[str, Any]:
        """Apply a seed (see README): orgs with web apps, service apps and users. Idempotent:
        existing orgs, apps (by client id) and users (by login) are kept."""
        doc = json.loads(Path(seed).read_text()) if isinstance(seed, (str, Path)) else seed
        return _apply_seed(self, doc)


def _apply_seed(em: OktaAdmin, doc: dict[str, Any]) -> dict[str, Any]:
    """``{"orgs": [{"name", "web_apps": [{label, redirect_uris, client_id?, client_secret?}],
    "service_apps": [{label, jwks, scopes, client_id?}], "users": [{login, password?, ...}]}]}``.
    Returns what exists afterwards per org (client ids, user ids by login, issuers)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("orgs"), list):
        raise ValueError('a seed is {"orgs": [...]}')
    out = []
    for spec in doc["orgs"]:
        org = em.add_org(spec["name"])
        apps = []
        for app_spec in spec.get("web_apps", []):
            existing = org.web_apps.get(app_spec.get("client_id", ""))
            if existing is None:
                existing, _ = em.add_web_app(
                    org.name,
                    app_spec["label"],
                    list(app_spec["redirect_uris"]),
                    client_id=app_spec.get("client_id"),
                    client_secret=app_spec.get("client_secret"),
                )
            apps.append(existing.client_id)
        service = []
        for app_spec in spec.get("service_apps", []):
            sapp = org.service_apps.get(app_spec.get("client_id", ""))
            if sapp is None:
                sapp = em.add_service_app(
                    org.name,
                    app_spec["label"],
                    app_spec["jwks"],
                    app_spec["scopes"],
                    client_id=app_spec.get("client_id"),
                )
            service.append(sapp.client_id)
        users = {}
        for user_spec in spec.get("users", []):
            login = user_spec["login"]
            try:
                user = em.directory.user(org.name, login)
            except Refused:
                kwargs = {
                    k: user_spec[k]
                    for k in ("email", "first_name", "last_name", "status", "email_verified", "user_id")
                    if k in user_spec
                }
                user = em.add_user(org.name, login, user_spec.get("password"), **kwargs)
            users[login] = user.id
        out.append(
            {"name": org.name, "issuer": em.issuer(org.name), "web_apps": apps, "service_apps": service, "users": users}
        )
    return {"orgs": out}
