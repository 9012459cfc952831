"""An Okta account's directory changes, read for deprovisioning: the Users API, incrementally.

Why the Users API with a ``lastUpdated`` cursor, not the System Log alone: the daemon acts on a
user's state (DEPROVISIONED, SUSPENDED), which the Users API answers directly, while the log is
a stream of events that must be replayed in order (a suspend followed by an unsuspend) and kept
for 90 days only. ``filter`` is used, not ``search``: Okta documents that ``filter`` reads the
most up-to-date data and ``search`` an eventually consistent copy, and a change missed by a
cursor is missed for good. Okta lists DEPROVISIONED users only when asked with a filter.

Deleted users: Okta deactivates a user before it can be deleted, and the deactivation stamps
``lastUpdated``, so a cycle between the two calls sees the user DEPROVISIONED. Both calls within
one interval leave nothing to list; one System Log request per round asks for
``user.lifecycle.delete.initiated`` since the cursor (``okta.logs.read``), and a full listing
once a day (``FULL_EVERY``) reconciles the rest as Entra's full resync does (``sync.resync``:
linked members missing from the listing).

Each page becomes a ``DeltaPage`` of ``EntraUser`` values (``oid`` = Okta's user id, the ``sub``
the login links by), so the round goes through the same staging, matching, guard and journal
as Entra's. The cursor is stored where Entra's delta link is: ``okta:<lastUpdated>|<last full>|<last read>``.

Tokens: client credentials at the org authorization server with a ``private_key_jwt``
assertion signed by the account's key (``apsis_core.okta_keys``), ``iss`` = ``sub`` = the API
service app's client id, ``aud`` = the token endpoint, five minutes, a fresh ``jti``; kept
until a minute before they expire. Rate limits: a 429 waits until ``X-Rate-Limit-Reset``
(bounded), and a page that leaves ``X-Rate-Limit-Remaining`` at 0 makes the next request wait
for the reset, so the daemon never spends the org's budget its own admins need.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt

from apsis_core import okta_keys
from apsis_core.errors import ApsisError, InvalidInput, TemporaryFailure
from apsis_core.providers import okta
from sync.graph_pages import DeltaPage, EntraUser

DISABLED = frozenset({"DEPROVISIONED", "SUSPENDED"})
"""Okta statuses that end SSO (LOCKED_OUT and PASSWORD_EXPIRED are passing states)."""
SCOPES = "okta.users.read okta.logs.read"
FULL_EVERY = timedelta(days=1)
OVERLAP = timedelta(seconds=1)
"""The cursor steps back this much: a user updated in the same millisecond as the last one read
is read again (harmless: deactivations are idempotent) rather than missed."""
LOG_SKEW = timedelta(minutes=5)
"""How far the System Log window reaches back before the last round (clocks of this host and Okta apart)."""
EPOCH = "1970-01-01T00:00:00.000Z"
PAGE = 200
CURSOR_PREFIX = "okta:"


class OktaRequestFailed(ApsisError):
    """Okta answered an error the daemon cannot work around (exit code 1)."""


class OktaRefused(InvalidInput):
    """Okta refused the API service app's credentials or scopes: the customer must fix its app."""


@dataclass(frozen=True)
class Cursor:
    """Where the next round starts: the newest ``lastUpdated`` read, when the last full listing
    was, and when the last round was read (the System Log window starts there)."""

    last_updated: str
    full_at: datetime
    read_at: datetime

    @classmethod
    def parse(cls, value: str | None) -> Cursor | None:
        if not value or not value.startswith(CURSOR_PREFIX):
            return None
        parts = value[len(CURSOR_PREFIX) :].split("|")
        try:
            stamp, full, read = parts
            return cls(stamp, datetime.fromisoformat(full), datetime.fromisoformat(read))
        except ValueError:
            return None

    def text(self) -> str:
        return f"{CURSOR_PREFIX}{self.last_updated}|{self.full_at.isoformat()}|{self.read_at.isoformat()}"

    def due_full(self, now: datetime) -> bool:
        return now - self.full_at >= FULL_EVERY


def okta_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def since(stamp: str) -> str:
    """The filter's lower bound: ``stamp`` less ``OVERLAP``."""
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return okta_time(moment - OVERLAP)


def user_of(item: dict[str, Any]) -> EntraUser:
    profile = item.get("profile") if isinstance(item.get("profile"), dict) else {}
    assert isinstance(profile, dict)
    status = str(item.get("status") or "")
    email, login = profile.get("email"), profile.get("login")
    return EntraUser(
        str(item.get("id")),
        enabled=status not in DISABLED,
        mail=email if isinstance(email, str) and email else None,
        upn=login if isinstance(login, str) and login else None,
    )


@dataclass
class OktaClient:
    """One account's Okta API client: its org, API service app and key."""

    issuer: str
    client_id: str
    key_dir: Path
    account_id: str
    http: httpx.AsyncClient
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    max_wait: float = 60.0
    attempts: int = 4
    waits: list[tuple[str, float]] = field(default_factory=list)
    requests: int = 0
    _token: tuple[str, float] | None = None
    _reset_at: float | None = None

    @property
    def org(self) -> str:
        return okta.org_url(self.issuer)

    async def token(self) -> str:
        if self._token is not None and self._token[1] > time.time() + 60:
            return self._token[0]
        url = f"{self.org}/oauth2/v1/token"
        now = int(time.time())
        claims = {"iss": self.client_id, "sub": self.client_id, "aud": url, "iat": now, "exp": now + 300}
        key = okta_keys.load(self.key_dir, self.account_id)
        kid = okta_keys.public_jwk(key)["kid"]
        assertion = jwt.encode(claims | {"jti": uuid.uuid4().hex}, key, algorithm="RS256", headers={"kid": kid})
        form = {
            "grant_type": "client_credentials",
            "scope": SCOPES,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        }
        response = await self._send("POST", url, data=form)
        body = _json(response)
        if response.status_code != 200 or not isinstance(body.get("access_token"), str):
            error = body.get("error") or f"HTTP {response.status_code}"
            raise OktaRefused(
                f"Okta refused the API service app {self.client_id} of account {self.account_id} ({error}): "
                "check its public key and its granted scopes okta.users.read and okta.logs.read"
            )
        self._token = (body["access_token"], time.time() + float(body.get("expires_in") or 3600))
        return self._token[0]

    async def get(self, url: str) -> httpx.Response:
        response = await self._send("GET", url, bearer=await self.token())
        if response.status_code in (401, 403):
            code = _json(response).get("errorCode") or response.status_code
            raise OktaRefused(
                f"Okta refused the API request of account {self.account_id} ({code}): {url.split('?')[0]}"
            )
        if response.status_code != 200:
            raise OktaRequestFailed(f"Okta answered HTTP {response.status_code} to {url.split('?')[0]}")
        return response

    async def _send(
        self, method: str, url: str, *, data: dict[str, str] | None = None, bearer: str = ""
    ) -> httpx.Response:
        for attempt in range(1, self.attempts + 1):
            if self._reset_at is not None:  # the last answer spent the window: wait for the next
                await self._wait("rate-limit", self._reset_at - time.time())
                self._reset_at = None
            headers = {"Accept": "application/json"} | ({"Authorization": f"Bearer {bearer}"} if bearer else {})
            self.requests += 1
            try:
                response = await self.http.request(method, url, data=data, headers=headers)
            except httpx.HTTPError as exc:
                if attempt == self.attempts:
                    raise TemporaryFailure(
                        f"Okta did not answer at {url.split('?')[0]}: {type(exc).__name__}"
                    ) from None
                await self._wait("transport", 2.0**attempt)
                continue
            reset = _reset(response)
            if response.status_code == 429:
                if attempt == self.attempts:
                    raise TemporaryFailure(f"Okta's rate limit for {url.split('?')[0]} stayed exhausted")
                await self._wait("429", (reset or time.time() + 2.0**attempt) - time.time())
                continue
            if response.status_code >= 500:
                if attempt == self.attempts:
                    raise TemporaryFailure(f"Okta answered HTTP {response.status_code} at {url.split('?')[0]}")
                await self._wait(str(response.status_code), 2.0**attempt)
                continue
            if response.headers.get("x-rate-limit-remaining") == "0" and reset is not None:
                self._reset_at = reset
            return response
        raise AssertionError("unreachable")

    async def _wait(self, reason: str, seconds: float) -> None:
        seconds = min(max(seconds, 0.0) + 0.5, self.max_wait)  # Reset is whole seconds: a margin
        self.waits.append((reason, seconds))
        await self.sleep(seconds)

    async def pages(self, lower: str) -> AsyncIterator[list[dict[str, Any]]]:
        """Every user with ``lastUpdated`` after ``lower``, a page at a time (``Link: rel=next``)."""
        url: str | None = f"{self.org}/api/v1/users?" + urlencode(
            {"filter": f'lastUpdated gt "{lower}"', "limit": str(PAGE)}
        )
        while url is not None:
            response = await self.get(url)
            body = response.json()
            if not isinstance(body, list):
                raise OktaRequestFailed("Okta answered the Users API with JSON that is not a list")
            yield [item for item in body if isinstance(item, dict)]
            url = response.links.get("next", {}).get("url")

    async def deleted_since(self, lower: str, until: str) -> list[EntraUser]:
        """Users whose deletion started in the window (System Log ``user.lifecycle.delete.initiated``)."""
        query = {
            "since": lower,
            "until": until,
            "filter": 'eventType eq "user.lifecycle.delete.initiated"',
            "limit": "1000",
        }
        url: str | None = f"{self.org}/api/v1/logs?" + urlencode(query)
        out: list[EntraUser] = []
        while url is not None:
            response = await self.get(url)
            for event in response.json() or []:
                for target in event.get("target") or []:
                    if isinstance(target, dict) and target.get("type") == "User" and target.get("id"):
                        login = target.get("alternateId")
                        out.append(EntraUser(str(target["id"]), enabled=False, upn=login or None, removed="deleted"))
            url = response.links.get("next", {}).get("url")
        return out


async def read_round(
    client: OktaClient,
    cursor_text: str | None,
    on_start: Callable[[bool], Awaitable[None]],
    on_page: Callable[[DeltaPage], Awaitable[None]],
    now: datetime | None = None,
) -> tuple[str, bool]:
    """One round: a full listing (no cursor, or the last one a day old) or the changes since the
    cursor and the deletions the System Log saw. Returns the new cursor and whether it was full."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    cursor = Cursor.parse(cursor_text)
    full = cursor is None or cursor.due_full(moment)
    await on_start(full)
    newest = cursor.last_updated if cursor is not None else EPOCH
    lower = EPOCH if full or cursor is None else since(cursor.last_updated)
    async for items in client.pages(lower):
        for item in items:
            stamp = item.get("lastUpdated")
            if isinstance(stamp, str) and stamp > newest:
                newest = stamp
        await on_page(DeltaPage([user_of(i) for i in items], None, None))
    if not full and cursor is not None:
        # The window is in this host's time, the events' ``published`` in Okta's: it reaches
        # LOG_SKEW further back and a day ahead, so a clock apart by minutes loses no event
        # (one read twice is harmless: the user is disabled already).
        deleted = await client.deleted_since(
            okta_time(cursor.read_at - LOG_SKEW), okta_time(moment + timedelta(days=1))
        )
        if deleted:
            await on_page(DeltaPage(deleted, None, None))
    full_at = moment if full or cursor is None else cursor.full_at
    return Cursor(newest, full_at, moment).text(), full


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _reset(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["x-rate-limit-reset"])
    except (KeyError, ValueError):
        return None


def verify(ca_bundle: Path | None) -> ssl.SSLContext | bool:
    return ssl.create_default_context(cafile=str(ca_bundle)) if ca_bundle else True
