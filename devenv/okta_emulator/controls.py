"""The HTTP control API (``/_emulator/…``) and seeding: JSON in, JSON out, field names as the
Python keyword arguments. 400 ``{"error": …}`` for bad input, 404 for unknown orgs/users."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from devenv.entra_emulator.web import Request, Response

from .model import NotFound, Refused

if TYPE_CHECKING:
    from .admin import OktaAdmin

_LIFECYCLE = {
    "deactivate",
    "reactivate",
    "activate",
    "suspend",
    "unsuspend",
    "lock_out",
    "unlock",
    "expire_password",
    "reset_password",
}


def handle(em: OktaAdmin, req: Request) -> Response:
    try:
        body = req.json() if req.method in ("POST", "PUT", "PATCH") else {}
        return _dispatch(em, req, body)
    except (json.JSONDecodeError, ValueError, TypeError) as exc:
        if isinstance(exc, Refused):
            return Response.json(exc.status, {"error": exc.summary, "errorCode": exc.code})
        return Response.json(400, {"error": str(exc)})
    except NotFound as exc:
        return Response.json(404, {"error": str(exc)})
    except KeyError as exc:
        return Response.json(400, {"error": f"missing field {exc}"})


def _dispatch(em: OktaAdmin, req: Request, body: dict[str, Any]) -> Response:
    path, method = req.path[len("/_emulator") :], req.method
    if path == "/health":
        return Response.json(200, {"status": "ok", "url": em.url})
    if path == "/state" and method == "GET":
        return Response.json(200, em.describe())
    if path == "/seed" and method == "POST":
        return Response.json(200, em.load_seed(body))
    if path == "/time" and method == "POST":
        em.advance_time(float(body["advance_seconds"]))
        return Response.json(200, {"now": em.directory.clock.now().isoformat()})
    if path == "/faults":
        if method == "POST":
            return Response.json(201, em.inject_fault(**body))
        if method == "DELETE":
            em.clear_faults()
            return Response.json(200, {"faults": []})
        return Response.json(200, {"faults": em.faults.pending()})
    if path == "/rate-limits" and method == "POST":
        for name, limit in body.items():
            em.set_rate_limit(name, int(limit))
        return Response.json(200, em.limiter.limits)
    if path == "/orgs" and method == "POST":
        created = em.add_org(body["name"])
        return Response.json(
            201, {"name": created.name, "url": em.org_url(created.name), "issuer": em.issuer(created.name)}
        )
    m = re.match(r"^/orgs/([^/]+)(/.*)?$", path)
    if m is None:
        return Response.json(404, {"error": f"no control at {req.path}"})
    org, rest = m.group(1), m.group(2) or ""
    em.directory.org(org)
    if rest == "/web-apps" and method == "POST":
        app, secret = em.add_web_app(
            org,
            body["label"],
            list(body["redirect_uris"]),
            client_id=body.get("client_id"),
            client_secret=body.get("client_secret"),
            token_endpoint_auth_method=body.get("token_endpoint_auth_method", "client_secret_basic"),
            post_logout_redirect_uris=body.get("post_logout_redirect_uris"),
        )
        return Response.json(201, {"client_id": app.client_id, "client_secret": secret})
    m = re.match(r"^/web-apps/([^/]+)/assignments$", rest)
    if m and method == "POST":
        app = em.assign(org, m.group(1), body.get("user_ids"))
        return Response.json(200, {"everyone": app.assigned_everyone, "user_ids": sorted(app.assigned)})
    if rest == "/service-apps" and method == "POST":
        sapp = em.add_service_app(
            org, body["label"], list(body["jwks"]), list(body["scopes"]), client_id=body.get("client_id")
        )
        return Response.json(201, {"client_id": sapp.client_id, "scopes": sorted(sapp.granted_scopes)})
    if rest == "/auth-servers" and method == "POST":
        server = em.add_auth_server(org, body["name"], body.get("audience", "api://default"))
        return Response.json(201, {"id": server.server_id, "issuer": em.issuer(org, server.server_id)})
    if rest == "/api-tokens" and method == "POST":
        return Response.json(201, {"token": em.add_api_token(org, body.get("label", "apsis"))})
    if rest == "/users" and method == "POST":
        kwargs = {
            k: body[k] for k in ("email", "first_name", "last_name", "status", "email_verified", "user_id") if k in body
        }
        user = em.add_user(org, body["login"], body.get("password"), **kwargs)
        return Response.json(201, em.user(org, user.id))
    m = re.match(r"^/users/([^/]+)(?:/([a-z_]+))?$", rest)
    if m:
        user_id, action = m.group(1), m.group(2)
        if action is None and method == "GET":
            return Response.json(200, em.user(org, user_id))
        if action is None and method == "DELETE":
            left = em.delete_user(org, user_id)
            return Response.json(200, {"deleted": left is None, "status": left.status if left else None})
        if action == "profile" and method == "POST":
            em.update_profile(org, user_id, **body)
            return Response.json(200, em.user(org, user_id))
        if action == "email_verified" and method == "POST":
            em.set_email_verified(org, user_id, bool(body["verified"]))
            return Response.json(200, em.user(org, user_id))
        if action in _LIFECYCLE and method == "POST":
            getattr(em, action)(org, user_id)
            return Response.json(200, em.user(org, user_id))
    return Response.json(404, {"error": f"no control at {req.method} {req.path}"})
