"""Okta's management APIs the project reads: Users (``/api/v1/users``) and System Log (``/api/v1/logs``).

Shapes, parameters and error bodies (``errorCode``, ``errorSummary``, ``errorLink``, ``errorId``,
``errorCauses``) follow developer.okta.com's Users and System Log API references and
"Pagination" (``Link: <…>; rel="next"`` with an ``after`` cursor). Callers authenticate with an
org authorization server access token carrying ``okta.users.read`` / ``okta.logs.read`` (or an
``SSWS`` API token).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
from typing import Any
from urllib.parse import urlencode

from devenv.entra_emulator.web import Request, Response

from .model import Org, Refused, iso, parse_iso
from .oauth import Context, verify_access_token
from .query import QueryError, getter, parse

USERS_MAX_LIMIT = 200
LOGS_DEFAULT_LIMIT = 100
LOGS_MAX_LIMIT = 1000
LOGS_DEFAULT_SINCE = dt.timedelta(days=7)
_FILTER_ATTRIBUTES = {
    "status",
    "lastUpdated",
    "id",
    "profile.login",
    "profile.email",
    "profile.firstName",
    "profile.lastName",
}


def okta_error(status: int, code: str, summary: str, headers: dict[str, str] | None = None) -> Response:
    return Response.json(
        status,
        {
            "errorCode": code,
            "errorSummary": summary,
            "errorLink": code,
            "errorId": "oae" + secrets.token_urlsafe(16),
            "errorCauses": [],
        },
        headers,
    )


def _authorize(ctx: Context, req: Request, org: Org, scope: str) -> Response | None:
    auth = req.header("authorization")
    if auth.startswith("SSWS "):
        if hashlib.sha256(auth[5:].strip().encode()).hexdigest() in org.api_tokens:
            return None
        return okta_error(401, "E0000011", "Invalid token provided")
    if not auth.lower().startswith("bearer "):
        return okta_error(401, "E0000011", "Invalid token provided")
    claims = verify_access_token(ctx, org, org.org_server, auth[7:].strip(), ctx.org_url(org.name))
    if claims is None or claims.get("aud") != ctx.org_url(org.name):
        return okta_error(
            401,
            "E0000011",
            "Invalid token provided",
            {
                "WWW-Authenticate": 'Bearer realm="IdpMyAccountAPI", error="invalid_token", error_description="The token is not valid."'
            },
        )
    if scope not in claims.get("scp", []):
        return okta_error(
            403,
            "E0000006",
            "You do not have permission to perform the requested action",
            {
                "WWW-Authenticate": f'Bearer realm="IdpMyAccountAPI", error="insufficient_scope", '
                f'error_description="The access token provided does not contain the required scopes.", scope="{scope}"'
            },
        )
    return None


def _links(url: str, query: dict[str, str], after: str | None) -> str:
    """Okta sends one ``Link`` header per relation; the server writes each line separately."""
    lines = [f'<{url}?{urlencode(query)}>; rel="self"' if query else f'<{url}>; rel="self"']
    if after is not None:
        lines.append(
            f'<{url}?{urlencode({**{k: v for k, v in query.items() if k != "after"}, "after": after})}>; rel="next"'
        )
    return "\n".join(lines)


def _cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).rstrip(b"=").decode()


def _uncursor(text: str) -> list[Any] | None:
    try:
        value = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, list) and len(value) == 2 else None


def _limit(raw: str | None, default: int, maximum: int) -> int | None:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        return None
    return min(value, maximum) if value >= 1 else None


# ------------------------------------------------------------------ users


def users(ctx: Context, req: Request, org: Org, rest: str) -> Response:
    refused = _authorize(ctx, req, org, "okta.users.read")
    if refused is not None:
        return refused
    if req.method != "GET":
        return okta_error(405, "E0000022", "The endpoint does not support the provided HTTP method")
    base = ctx.org_url(org.name)
    if rest:
        try:
            user = ctx.directory.user(org.name, rest.strip("/"))
        except Refused as exc:
            return okta_error(exc.status, exc.code, exc.summary)
        return Response.json(200, user.to_api(base))
    return _list_users(ctx, req, org, base)


def _list_users(ctx: Context, req: Request, org: Org, base: str) -> Response:
    q = req.query
    limit = _limit(q.get("limit"), USERS_MAX_LIMIT, USERS_MAX_LIMIT)
    if limit is None:
        return okta_error(400, "E0000001", "Api validation failed: limit must be a positive integer")
    sort_by = q.get("sortBy")
    sort_order = q.get("sortOrder", "asc").lower()
    if sort_by and "search" not in q:
        return okta_error(400, "E0000001", "Api validation failed: sortBy requires search")
    if sort_order not in ("asc", "desc"):
        return okta_error(400, "E0000001", "Api validation failed: sortOrder must be asc or desc")
    try:
        if "search" in q:
            predicate = parse(q["search"])
            include_deprovisioned = True
        elif "filter" in q:
            predicate = parse(q["filter"], _FILTER_ATTRIBUTES)
            include_deprovisioned = True
        else:
            predicate = None
            include_deprovisioned = False
    except QueryError as exc:
        return okta_error(400, "E0000031", str(exc))
    with ctx.directory.lock:
        docs = [u.to_api(base) for u in org.users.values()]
    if predicate is None:
        # Without search or filter Okta lists every user but the DEPROVISIONED ones.
        docs = [d for d in docs if d["status"] != "DEPROVISIONED"]
        if "q" in q:
            needle = q["q"].lower()
            docs = [
                d
                for d in docs
                if any(
                    str(d["profile"].get(a) or "").lower().startswith(needle)
                    for a in ("login", "email", "firstName", "lastName")
                )
            ]
    else:
        docs = [d for d in docs if predicate(getter(d))]
        if not include_deprovisioned:
            docs = [d for d in docs if d["status"] != "DEPROVISIONED"]

    def key(doc: dict[str, Any]) -> list[Any]:
        value = getter(doc)(sort_by)[0] if sort_by else doc["id"]
        return [str(value if value is not None else ""), doc["id"]]

    docs.sort(key=key, reverse=sort_order == "desc")
    if "after" in q:
        cursor = _uncursor(q["after"])
        if cursor is None:
            return okta_error(400, "E0000001", "Api validation failed: after is not a valid cursor")
        docs = [d for d in docs if (key(d) < cursor if sort_order == "desc" else key(d) > cursor)]
    page, more = docs[:limit], len(docs) > limit
    after = _cursor(key(page[-1])) if more and page else None
    return Response.json(200, page, {"Link": _links(f"{base}/api/v1/users", q, after)})


# ------------------------------------------------------------------ System Log


def logs(ctx: Context, req: Request, org: Org) -> Response:
    refused = _authorize(ctx, req, org, "okta.logs.read")
    if refused is not None:
        return refused
    if req.method != "GET":
        return okta_error(405, "E0000022", "The endpoint does not support the provided HTTP method")
    q = req.query
    base = ctx.org_url(org.name)
    limit = _limit(q.get("limit"), LOGS_DEFAULT_LIMIT, LOGS_MAX_LIMIT)
    if limit is None:
        return okta_error(400, "E0000001", "Api validation failed: limit must be a positive integer")
    order = q.get("sortOrder", "ASCENDING")
    if order not in ("ASCENDING", "DESCENDING"):
        return okta_error(400, "E0000001", "Api validation failed: sortOrder must be ASCENDING or DESCENDING")
    now = ctx.directory.clock.now()
    try:
        since = parse_iso(q["since"]) if "since" in q else now - LOGS_DEFAULT_SINCE
        until = parse_iso(q["until"]) if "until" in q else None
    except ValueError:
        return okta_error(400, "E0000001", "Api validation failed: since and until must be ISO 8601 timestamps")
    try:
        predicate = parse(q["filter"]) if "filter" in q else None
    except QueryError as exc:
        return okta_error(400, "E0000031", str(exc))
    polling = until is None and order == "ASCENDING"
    with ctx.directory.lock:
        events = list(org.logs)
    position: list[Any] | None = None
    if "after" in q:
        position = _uncursor(q["after"])
        if position is None:
            return okta_error(400, "E0000001", "Api validation failed: after is not a valid cursor")

    def key(event: dict[str, Any]) -> list[Any]:
        return [event["published"], event["uuid"]]

    selected = []
    for event in events:
        published = parse_iso(event["published"])
        if published < since or (until is not None and published >= until):
            continue
        if predicate is not None and not predicate(getter(event)):
            continue
        if "q" in q and not all(word.lower() in json.dumps(event).lower() for word in q["q"].split()):
            continue
        selected.append(event)
    selected.sort(key=key, reverse=order == "DESCENDING")
    if position is not None:
        selected = [e for e in selected if (key(e) < position if order == "DESCENDING" else key(e) > position)]
    page = selected[:limit]
    if polling:
        # A polling request always has a next link: where the next poll continues, even when empty.
        if page:
            after: str | None = _cursor(key(page[-1]))
        elif position is not None:
            after = q["after"]
        else:
            after = _cursor([iso(since - dt.timedelta(milliseconds=1)), ""])
    else:
        after = _cursor(key(page[-1])) if len(selected) > limit and page else None
    query = {k: v for k, v in q.items() if k != "after"}
    if polling and "after" not in q and "since" in query:
        query.pop("since")  # the cursor carries the position from now on
    return Response.json(
        200,
        page,
        {"Link": _links(f"{base}/api/v1/logs", {**query, **({"after": q["after"]} if "after" in q else {})}, after)},
    )
