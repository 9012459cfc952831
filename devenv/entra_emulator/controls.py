"""The JSON control API under ``/_emulator/...``: HTTP for the Python API of ``admin.DirectoryAdmin``.

Field names are the Python keyword arguments (snake_case). Errors: 400 ``{"error": "..."}``
for bad input, 404 for unknown tenants, applications, users or secrets.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .admin import (
    DirectoryAdmin,
    application_dict,
    apply_seed,
    certificate_dict,
    credential_dict,
    tenant_dict,
    user_dict,
)
from .state import NotFound, parse_datetime
from .web import Request, Response

# ------------------------------------------------------------- HTTP routes

Handler = Callable[[DirectoryAdmin, Request, re.Match[str]], Response]
_ROUTES: list[tuple[str, re.Pattern[str], Handler]] = []


def route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        _ROUTES.append((method, re.compile(f"^/_emulator{pattern}/?$"), fn))
        return fn

    return register


def handle(emulator: DirectoryAdmin, req: Request) -> Response:
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
def _health(em: DirectoryAdmin, req: Request, m: re.Match[str]) -> Response:
    return _ok({"status": "ok", "url": em.url, "graph_base_url": em.graph_base_url})


@route("GET", "/state")
def _state(em: DirectoryAdmin, req: Request, m: re.Match[str]) -> Response:
    return _ok(em.describe())


@route("POST", "/reset")
def _reset(em: DirectoryAdmin, req: Request, m: re.Match[str]) -> Response:
    em.reset()
    return _ok({"status": "reset"})


@route("POST", "/seed")
def _seed(em: DirectoryAdmin, req: Request, m: re.Match[str]) -> Response:
    return _ok(apply_seed(em, req.json()))


@route("GET", "/settings")
def _get_settings(em: DirectoryAdmin, req: Request, m: re.Match[str]) -> Response:
    return _ok(em.settings())


@route("POST", "/settings")
def _settings(em: DirectoryAdmin, req: Request, m: re.Match[str]) -> Response:
    return _ok(em.configure(**req.json()))


@route("GET", "/tenants")
def _tenants(em: DirectoryAdmin, req: Request, m: re.Match[str]) -> Response:
    return _ok([tenant_dict(t) for t in em.list_tenants()])


@route("POST", "/tenants")
def _add_tenant(em: DirectoryAdmin, req: Request, m: re.Match[str]) -> Response:
    body = req.json()
    tenant = em.add_tenant(body["domains"], tenant_id=body.get("tenant_id"), display_name=body.get("display_name"))
    return _ok(tenant_dict(tenant), 201)


@route("GET", "/tenants/(?P<tid>[^/]+)")
def _get_tenant(em: DirectoryAdmin, req: Request, m: re.Match[str]) -> Response:
    return _ok(tenant_dict(em.get_tenant(m["tid"])))


@route("POST", "/tenants/(?P<tid>[^/]+)/domains")
def _add_domain(em: DirectoryAdmin, req: Request, m: re.Match[str]) -> Response:
    return _ok(tenant_dict(em.add_domain(m["tid"], req.json()["domain"])), 201)


@route("DELETE", "/tenants/(?P<tid>[^/]+)/domains/(?P<domain>[^/]+)")
def _remove_domain(em: DirectoryAdmin, req: Request, m: re.Match[str]) -> Response:
    force = req.query.get("force", "").lower() in ("1", "true", "yes")
    return _ok(tenant_dict(em.remove_domain(m["tid"], m["domain"], force=force)))


@route("POST", "/domains/(?P<domain>[^/]+)/move")
def _move_domain(em: DirectoryAdmin, req: Request, m: re.Match[str]) -> Response:
    body = req.json()
    return _ok(tenant_dict(em.move_domain(m["domain"], body["to_tenant"], force=bool(body.get("force", False)))))


@route("POST", "/tenants/(?P<tid>[^/]+)/delta/expire")
def _expire_delta(em: DirectoryAdmin, req: Request, m: re.Match[str]) -> Response:
    em.expire_delta_tokens(m["tid"], response=req.json().get("response", "syncStateNotFound"))
    return _ok({"status": "expired"})


@route("GET", "/tenants/(?P<tid>[^/]+)/applications")
def _apps(em: DirectoryAdmin, req: Request, m: re.Match[str]) -> Response:
    return _ok([application_dict(a) for a in em.list_applications(m["tid"])])


@route("POST", "/tenants/(?P<tid>[^/]+)/applications")
def _add_app(em: DirectoryAdmin, req: Request, m: re.Match[str]) -> Response:
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
def _get_app(em: DirectoryAdmin, req: Request, m: re.Match[str]) -> Response:
    return _ok(application_dict(em.get_application(m["tid"], m["app"])))


@route("PATCH", "/tenants/(?P<tid>[^/]+)/applications/(?P<app>[^/]+)")
def _patch_app(em: DirectoryAdmin, req: Request, m: re.Match[str]) -> Response:
    return _ok(application_dict(em.update_application(m["tid"], m["app"], **req.json())))


@route("POST", "/tenants/(?P<tid>[^/]+)/applications/(?P<app>[^/]+)/secrets")
def _add_secret(em: DirectoryAdmin, req: Request, m: re.Match[str]) -> Response:
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
def _expire_secret(em: DirectoryAdmin, req: Request, m: re.Match[str]) -> Response:
    em.expire_secret(m["tid"], m["app"], m["key"])
    return _ok(application_dict(em.get_application(m["tid"], m["app"])))


@route("DELETE", "/tenants/(?P<tid>[^/]+)/applications/(?P<app>[^/]+)/secrets/(?P<key>[^/]+)")
def _remove_secret(em: DirectoryAdmin, req: Request, m: re.Match[str]) -> Response:
    em.remove_secret(m["tid"], m["app"], m["key"])
    return _ok(application_dict(em.get_application(m["tid"], m["app"])))


@route("POST", "/tenants/(?P<tid>[^/]+)/applications/(?P<app>[^/]+)/certificates")
def _upload_certificate(em: DirectoryAdmin, req: Request, m: re.Match[str]) -> Response:
    body = req.json()
    cred = em.upload_certificate(m["tid"], m["app"], str(body["certificate"]), body.get("display_name"))
    return _ok(certificate_dict(cred), 201)


@route("POST", "/tenants/(?P<tid>[^/]+)/applications/(?P<app>[^/]+)/certificates/(?P<key>[^/]+)/expire")
def _expire_certificate(em: DirectoryAdmin, req: Request, m: re.Match[str]) -> Response:
    em.expire_certificate(m["tid"], m["app"], m["key"])
    return _ok(application_dict(em.get_application(m["tid"], m["app"])))


@route("DELETE", "/tenants/(?P<tid>[^/]+)/applications/(?P<app>[^/]+)/certificates/(?P<key>[^/]+)")
def _remove_certificate(em: DirectoryAdmin, req: Request, m: re.Match[str]) -> Response:
    em.remove_certificate(m["tid"], m["app"], m["key"])
    return _ok(application_dict(em.get_application(m["tid"], m["app"])))


@route("POST", "/tenants/(?P<tid>[^/]+)/applications/(?P<app>[^/]+)/permissions")
def _grant(em: DirectoryAdmin, req: Request, m: re.Match[str]) -> Response:
    em.grant_application_permission(m["tid"], m["app"], req.json()["permission"])
    return _ok(application_dict(em.get_application(m["tid"], m["app"])))


@route("DELETE", "/tenants/(?P<tid>[^/]+)/applications/(?P<app>[^/]+)/permissions/(?P<perm>[^/]+)")
def _revoke(em: DirectoryAdmin, req: Request, m: re.Match[str]) -> Response:
    em.revoke_application_permission(m["tid"], m["app"], m["perm"])
    return _ok(application_dict(em.get_application(m["tid"], m["app"])))


@route("GET", "/tenants/(?P<tid>[^/]+)/users")
def _users(em: DirectoryAdmin, req: Request, m: re.Match[str]) -> Response:
    return _ok([user_dict(u) for u in em.list_users(m["tid"])])


@route("POST", "/tenants/(?P<tid>[^/]+)/users")
def _add_user(em: DirectoryAdmin, req: Request, m: re.Match[str]) -> Response:
    body = req.json()
    upn, password = body.pop("user_principal_name"), body.pop("password")
    return _ok(user_dict(em.add_user(m["tid"], upn, password, **body)), 201)


@route("POST", "/tenants/(?P<tid>[^/]+)/users/bulk")
def _add_users(em: DirectoryAdmin, req: Request, m: re.Match[str]) -> Response:
    body = req.json()
    oids = em.add_users(m["tid"], body["users"], password=body.get("password", "pw"))
    return _ok({"oids": oids}, 201)


@route("GET", "/tenants/(?P<tid>[^/]+)/users/(?P<oid>[^/]+)")
def _get_user(em: DirectoryAdmin, req: Request, m: re.Match[str]) -> Response:
    return _ok(user_dict(em.get_user(m["tid"], m["oid"])))


@route("PATCH", "/tenants/(?P<tid>[^/]+)/users/(?P<oid>[^/]+)")
def _patch_user(em: DirectoryAdmin, req: Request, m: re.Match[str]) -> Response:
    return _ok(user_dict(em.update_user(m["tid"], m["oid"], **req.json())))


@route("DELETE", "/tenants/(?P<tid>[^/]+)/users/(?P<oid>[^/]+)")
def _delete_user(em: DirectoryAdmin, req: Request, m: re.Match[str]) -> Response:
    if req.query.get("permanent", "").lower() in ("1", "true", "yes"):
        em.purge_user(m["tid"], m["oid"])
        return _ok({"status": "purged"})
    return _ok(user_dict(em.delete_user(m["tid"], m["oid"])))


@route("POST", "/tenants/(?P<tid>[^/]+)/users/(?P<oid>[^/]+)/restore")
def _restore_user(em: DirectoryAdmin, req: Request, m: re.Match[str]) -> Response:
    return _ok(user_dict(em.restore_user(m["tid"], m["oid"])))


@route("POST", "/tenants/(?P<tid>[^/]+)/users/(?P<oid>[^/]+)/purge")
def _purge_user(em: DirectoryAdmin, req: Request, m: re.Match[str]) -> Response:
    em.purge_user(m["tid"], m["oid"])
    return _ok({"status": "purged"})


@route("GET", "/faults")
def _faults(em: DirectoryAdmin, req: Request, m: re.Match[str]) -> Response:
    return _ok(em.pending_faults())


@route("POST", "/faults")
def _add_fault(em: DirectoryAdmin, req: Request, m: re.Match[str]) -> Response:
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
def _clear_faults(em: DirectoryAdmin, req: Request, m: re.Match[str]) -> Response:
    em.clear_faults()
    return _ok([])


@route("GET", "/requests")
def _requests(em: DirectoryAdmin, req: Request, m: re.Match[str]) -> Response:
    return _ok(em.requests_log)


@route("GET", "/requests/counts")
def _request_counts(em: DirectoryAdmin, req: Request, m: re.Match[str]) -> Response:
    return _ok(em.request_counts())


@route("DELETE", "/requests")
def _clear_requests(em: DirectoryAdmin, req: Request, m: re.Match[str]) -> Response:
    em.clear_requests_log()
    return _ok([])
