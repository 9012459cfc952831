"""The JSON control API under ``/_emulator/...`` and seed files; both drive the same Python API.

Field names are the Python keyword arguments (snake_case). Errors: 400 ``{"error": "..."}``
for bad input, 404 for unknown tenants, applications, users or secrets.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .state import Application, NotFound, PasswordCredential, Tenant, User, parse_datetime, utcnow
from .web import Request, Response

if TYPE_CHECKING:
    from .server import EntraEmulator


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


def apply_seed(emulator: EntraEmulator, seed: dict[str, Any] | str | Path) -> dict[str, Any]:
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


def _find_app(emulator: EntraEmulator, tid: str, spec: dict[str, Any]) -> Application | None:
    for app in emulator.list_applications(tid):
        if spec.get("app_id") and app.app_id == spec["app_id"].lower():
            return app
        if not spec.get("app_id") and app.display_name == spec["display_name"]:
            return app
    return None


# ------------------------------------------------------------- HTTP routes

Handler = Callable[["EntraEmulator", Request, re.Match[str]], Response]
_ROUTES: list[tuple[str, re.Pattern[str], Handler]] = []


def route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        _ROUTES.append((method, re.compile(f"^/_emulator{pattern}/?$"), fn))
        return fn

    return register


def handle(emulator: EntraEmulator, req: Request) -> Response:
    for method, pattern, fn in _ROUTES:
        match = pattern.match(req.path)
        if match and method == req.method:
            try:
                return fn(emulator, req, match)
            except NotFound as exc:
                return Response.json(404, {"error": str(exc)})
            except (ValueError, TypeError, KeyError) as exc:
                return Response.json(400, {"error": f"{type(exc).__name__}: {exc}"})
    return Response.json(404, {"error": f"no control endpoint {req.method} {req.path}"})


def _ok(doc: Any, status: int = 200) -> Response:
    return Response.json(status, doc)


@route("GET", "/health")
def _health(em: EntraEmulator, req: Request, m: re.Match[str]) -> Response:
    return _ok({"status": "ok", "url": em.url, "graph_base_url": em.graph_base_url})


@route("GET", "/state")
def _state(em: EntraEmulator, req: Request, m: re.Match[str]) -> Response:
    return _ok(em.describe())


@route("POST", "/reset")
def _reset(em: EntraEmulator, req: Request, m: re.Match[str]) -> Response:
    em.reset()
    return _ok({"status": "reset"})


@route("POST", "/seed")
def _seed(em: EntraEmulator, req: Request, m: re.Match[str]) -> Response:
    return _ok(apply_seed(em, req.json()))


@route("GET", "/settings")
def _get_settings(em: EntraEmulator, req: Request, m: re.Match[str]) -> Response:
    return _ok(em.settings())


@route("POST", "/settings")
def _settings(em: EntraEmulator, req: Request, m: re.Match[str]) -> Response:
    return _ok(em.configure(**req.json()))


@route("GET", "/tenants")
def _tenants(em: EntraEmulator, req: Request, m: re.Match[str]) -> Response:
    return _ok([tenant_dict(t) for t in em.list_tenants()])


@route("POST", "/tenants")
def _add_tenant(em: EntraEmulator, req: Request, m: re.Match[str]) -> Response:
    body = req.json()
    tenant = em.add_tenant(body["domains"], tenant_id=body.get("tenant_id"), display_name=body.get("display_name"))
    return _ok(tenant_dict(tenant), 201)


@route("GET", "/tenants/(?P<tid>[^/]+)")
def _get_tenant(em: EntraEmulator, req: Request, m: re.Match[str]) -> Response:
    return _ok(tenant_dict(em.get_tenant(m["tid"])))


@route("POST", "/tenants/(?P<tid>[^/]+)/domains")
def _add_domain(em: EntraEmulator, req: Request, m: re.Match[str]) -> Response:
    return _ok(tenant_dict(em.add_domain(m["tid"], req.json()["domain"])), 201)


@route("DELETE", "/tenants/(?P<tid>[^/]+)/domains/(?P<domain>[^/]+)")
def _remove_domain(em: EntraEmulator, req: Request, m: re.Match[str]) -> Response:
    force = req.query.get("force", "").lower() in ("1", "true", "yes")
    return _ok(tenant_dict(em.remove_domain(m["tid"], m["domain"], force=force)))


@route("POST", "/domains/(?P<domain>[^/]+)/move")
def _move_domain(em: EntraEmulator, req: Request, m: re.Match[str]) -> Response:
    body = req.json()
    return _ok(tenant_dict(em.move_domain(m["domain"], body["to_tenant"], force=bool(body.get("force", False)))))


@route("POST", "/tenants/(?P<tid>[^/]+)/delta/expire")
def _expire_delta(em: EntraEmulator, req: Request, m: re.Match[str]) -> Response:
    em.expire_delta_tokens(m["tid"], response=req.json().get("response", "syncStateNotFound"))
    return _ok({"status": "expired"})


@route("GET", "/tenants/(?P<tid>[^/]+)/applications")
def _apps(em: EntraEmulator, req: Request, m: re.Match[str]) -> Response:
    return _ok([application_dict(a) for a in em.list_applications(m["tid"])])


@route("POST", "/tenants/(?P<tid>[^/]+)/applications")
def _add_app(em: EntraEmulator, req: Request, m: re.Match[str]) -> Response:
    body = req.json()
    app = em.add_application(
        m["tid"],
        body["display_name"],
        body.get("redirect_uris", []),
        app_id=body.get("app_id"),
        permissions=body.get("permissions", ["User.Read.All"]),
        consented=bool(body.get("consented", True)),
    )
    return _ok(application_dict(app), 201)


@route("GET", "/tenants/(?P<tid>[^/]+)/applications/(?P<app>[^/]+)")
def _get_app(em: EntraEmulator, req: Request, m: re.Match[str]) -> Response:
    return _ok(application_dict(em.get_application(m["tid"], m["app"])))


@route("PATCH", "/tenants/(?P<tid>[^/]+)/applications/(?P<app>[^/]+)")
def _patch_app(em: EntraEmulator, req: Request, m: re.Match[str]) -> Response:
    return _ok(application_dict(em.update_application(m["tid"], m["app"], **req.json())))


@route("POST", "/tenants/(?P<tid>[^/]+)/applications/(?P<app>[^/]+)/secrets")
def _add_secret(em: EntraEmulator, req: Request, m: re.Match[str]) -> Response:
    body = req.json()
    text, cred = em.add_secret_credential(
        m["tid"],
        m["app"],
        parse_datetime(body["expires"]),
        display_name=body.get("display_name", "apsis-sso"),
        start=parse_datetime(body["start"]) if body.get("start") else None,
        secret_text=body.get("secret_text"),
    )
    return _ok({"secret_text": text, **credential_dict(cred)}, 201)


@route("POST", "/tenants/(?P<tid>[^/]+)/applications/(?P<app>[^/]+)/secrets/(?P<key>[^/]+)/expire")
def _expire_secret(em: EntraEmulator, req: Request, m: re.Match[str]) -> Response:
    em.expire_secret(m["tid"], m["app"], m["key"])
    return _ok(application_dict(em.get_application(m["tid"], m["app"])))


@route("DELETE", "/tenants/(?P<tid>[^/]+)/applications/(?P<app>[^/]+)/secrets/(?P<key>[^/]+)")
def _remove_secret(em: EntraEmulator, req: Request, m: re.Match[str]) -> Response:
    em.remove_secret(m["tid"], m["app"], m["key"])
    return _ok(application_dict(em.get_application(m["tid"], m["app"])))


@route("POST", "/tenants/(?P<tid>[^/]+)/applications/(?P<app>[^/]+)/permissions")
def _grant(em: EntraEmulator, req: Request, m: re.Match[str]) -> Response:
    em.grant_application_permission(m["tid"], m["app"], req.json()["permission"])
    return _ok(application_dict(em.get_application(m["tid"], m["app"])))


@route("DELETE", "/tenants/(?P<tid>[^/]+)/applications/(?P<app>[^/]+)/permissions/(?P<perm>[^/]+)")
def _revoke(em: EntraEmulator, req: Request, m: re.Match[str]) -> Response:
    em.revoke_application_permission(m["tid"], m["app"], m["perm"])
    return _ok(application_dict(em.get_application(m["tid"], m["app"])))


@route("GET", "/tenants/(?P<tid>[^/]+)/users")
def _users(em: EntraEmulator, req: Request, m: re.Match[str]) -> Response:
    return _ok([user_dict(u) for u in em.list_users(m["tid"])])


@route("POST", "/tenants/(?P<tid>[^/]+)/users")
def _add_user(em: EntraEmulator, req: Request, m: re.Match[str]) -> Response:
    body = req.json()
    upn, password = body.pop("user_principal_name"), body.pop("password")
    return _ok(user_dict(em.add_user(m["tid"], upn, password, **body)), 201)


@route("POST", "/tenants/(?P<tid>[^/]+)/users/bulk")
def _add_users(em: EntraEmulator, req: Request, m: re.Match[str]) -> Response:
    body = req.json()
    oids = em.add_users(m["tid"], body["users"], password=body.get("password", "pw"))
    return _ok({"oids": oids}, 201)


@route("GET", "/tenants/(?P<tid>[^/]+)/users/(?P<oid>[^/]+)")
def _get_user(em: EntraEmulator, req: Request, m: re.Match[str]) -> Response:
    return _ok(user_dict(em.get_user(m["tid"], m["oid"])))


@route("PATCH", "/tenants/(?P<tid>[^/]+)/users/(?P<oid>[^/]+)")
def _patch_user(em: EntraEmulator, req: Request, m: re.Match[str]) -> Response:
    return _ok(user_dict(em.update_user(m["tid"], m["oid"], **req.json())))


@route("DELETE", "/tenants/(?P<tid>[^/]+)/users/(?P<oid>[^/]+)")
def _delete_user(em: EntraEmulator, req: Request, m: re.Match[str]) -> Response:
    if req.query.get("permanent", "").lower() in ("1", "true", "yes"):
        em.purge_user(m["tid"], m["oid"])
        return _ok({"status": "purged"})
    return _ok(user_dict(em.delete_user(m["tid"], m["oid"])))


@route("POST", "/tenants/(?P<tid>[^/]+)/users/(?P<oid>[^/]+)/restore")
def _restore_user(em: EntraEmulator, req: Request, m: re.Match[str]) -> Response:
    return _ok(user_dict(em.restore_user(m["tid"], m["oid"])))


@route("POST", "/tenants/(?P<tid>[^/]+)/users/(?P<oid>[^/]+)/purge")
def _purge_user(em: EntraEmulator, req: Request, m: re.Match[str]) -> Response:
    em.purge_user(m["tid"], m["oid"])
    return _ok({"status": "purged"})


@route("GET", "/faults")
def _faults(em: EntraEmulator, req: Request, m: re.Match[str]) -> Response:
    return _ok(em.pending_faults())


@route("POST", "/faults")
def _add_fault(em: EntraEmulator, req: Request, m: re.Match[str]) -> Response:
    body = req.json()
    target = body.pop("target", "graph")
    if target == "graph":
        em.inject_graph_fault(**body)
    elif target == "token":
        em.inject_token_fault(**body)
    else:
        raise ValueError("target must be 'graph' or 'token'")
    return _ok(em.pending_faults(), 201)


@route("DELETE", "/faults")
def _clear_faults(em: EntraEmulator, req: Request, m: re.Match[str]) -> Response:
    em.clear_faults()
    return _ok([])


@route("GET", "/requests")
def _requests(em: EntraEmulator, req: Request, m: re.Match[str]) -> Response:
    return _ok(em.requests_log)


@route("GET", "/requests/counts")
def _request_counts(em: EntraEmulator, req: Request, m: re.Match[str]) -> Response:
    return _ok(em.request_counts())


@route("DELETE", "/requests")
def _clear_requests(em: EntraEmulator, req: Request, m: re.Match[str]) -> Response:
    em.clear_requests_log()
    return _ok([])
