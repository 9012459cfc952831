"""What one account's cycle reads from Graph: a delta round, streamed, and the app's secrets.

The round starts from the stored link (or is a full listing when there is none, or when
Graph says the token expired: then it starts over, from the 410's ``Location`` if given).
Each page goes to ``on_page`` as it arrives (the pipeline stages and plans it) while the
next one is already on its way. Failures are kept, not raised: a token Entra refused is
something to flag, not a reason to stop the account's other work.

``applications`` (the app's client secrets, for the expiry check) is asked at most once a
day per account, and at once for other credentials; a 403 (``Application.Read.All`` is
optional) is asked again the next day, so a permission granted later is used within a day. A
grant cannot be noticed sooner: access tokens are opaque to clients (Microsoft), so nothing
here reads one. In between, what Graph answered last stands.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from apsis_core.account import AccountRecord
from apsis_core.errors import ApsisError, DeltaTokenExpired, EntraError, EntraRefused
from sync.graph_client import GraphClient, RetryPolicy
from sync.graph_pages import DeltaPage, PasswordCredential
from sync.runtime import Runtime

log = logging.getLogger("apsis_sync.daemon")

OnPage = Callable[[DeltaPage], Awaitable[None]]
OnStart = Callable[[bool], Awaitable[None]]


@dataclass
class GraphRead:
    """Everything one cycle of one account learned from Graph, or why it could not."""

    delta_link: str | None = None
    full: bool = False
    pages: int = 0
    users: int = 0
    resync_cause: str | None = None
    credentials: list[PasswordCredential] | None = None
    token_error: EntraRefused | None = None
    failure: ApsisError | None = None
    waits: list[tuple[str, float]] = field(default_factory=list)
    requests: int = 0

    @property
    def complete(self) -> bool:
        """A whole round was read (its delta link is in hand)."""
        return self.delta_link is not None


async def read_graph(
    account: AccountRecord,
    client: GraphClient,
    delta_link: str | None,
    want_delta: bool,
    on_start: OnStart,
    on_page: OnPage,
    applications: Applications | None = None,
) -> GraphRead:
    """The round (``on_start(full)`` before its first page, ``on_page`` for each), then the
    app's secrets when ``applications`` says they are due."""
    out = GraphRead(waits=client.retry.waits)
    try:
        if want_delta:
            try:
                await _round(client, delta_link, out, on_start, on_page)
            except DeltaTokenExpired as exc:
                out.resync_cause = exc.code
                log.warning("delta token expired; full resync", extra={"account": account.id, "code": exc.code})
                await _round(client, client.restart_link(exc), out, on_start, on_page, full=True)
            if delta_link is None:
                out.resync_cause = out.resync_cause or "no_delta_link"
        if applications is not None:
            out.credentials = await applications.read(client)
    except EntraRefused as exc:  # the credentials: flagged to the customer
        out.token_error = exc
        out.failure = exc
    except EntraError as exc:
        out.failure = exc
    finally:
        out.requests = client.requests
    return out


async def _round(
    client: GraphClient, link: str | None, out: GraphRead, on_start: OnStart, on_page: OnPage, full: bool = False
) -> None:
    out.full = full or link is None
    out.pages = out.users = 0
    out.delta_link = None
    await on_start(out.full)
    async for page in client.delta_pages(link):
        out.pages += 1
        out.users += len(page.users)
        await on_page(page)
        if page.delta_link:
            out.delta_link = page.delta_link


class Applications:
    """When to ask Graph for the app's client secrets, and what to use in between.

    ``key`` names the credentials asked with (the fingerprint of tenant, client id and
    secret): for other credentials Graph is asked at once, whatever it answered today."""

    def __init__(self, rt: Runtime, account: AccountRecord, today: date) -> None:
        self.rt, self.account, self.today = rt, account, today
        self.checked, self.cached, self.key = rt.state.applications_read(account.id)
        self.fresh = False  # asked this cycle

    def due(self, key: str) -> bool:
        """Never asked, not yet today (after a 200 as after a 403), or other credentials."""
        return self.checked != self.today.isoformat() or self.key != key

    async def read(self, client: GraphClient) -> list[PasswordCredential] | None:
        """Graph's answer when due (then recorded by ``record``), else the last answer."""
        key = client.token.fingerprint
        if not self.due(key):
            return _credentials(self.cached)
        if self.checked is not None and self.cached is None and self.key == key:
            client.token.renew()  # asking again after a 403: a grant shows only in a new token
        found = await client.password_credentials(self.account.client_id or "")
        self.fresh = True
        self.cached = None if found is None else [_dump(c) for c in found]
        self.key = key
        self.checked = self.today.isoformat()
        return found

    def record(self, dry_run: bool) -> None:
        if self.fresh and not dry_run:
            self.rt.state.record_applications(self.account.id, self.checked or "", self.cached, self.key or "")


def _dump(c: PasswordCredential) -> dict[str, str | None]:
    return {
        "key_id": c.key_id,
        "hint": c.hint,
        "display_name": c.display_name,
        "end": c.end.isoformat() if c.end else None,
    }


def _credentials(cached: list[dict[str, str | None]] | None) -> list[PasswordCredential] | None:
    if cached is None:
        return None
    credentials = []
    for c in cached:
        end = c.get("end")
        credentials.append(
            PasswordCredential(
                c.get("key_id") or "",
                c.get("hint"),
                c.get("display_name"),
                datetime.fromisoformat(end) if end else None,
            )
        )
    return credentials


def retry_policy(rt: Runtime, account: AccountRecord) -> RetryPolicy:
    """The daemon's retry policy for one account's cycle (waits logged and counted)."""

    def on_wait(reason: str, seconds: float, status: int) -> None:
        rt.metrics.graph_retries.labels(reason).inc()
        rt.metrics.graph_wait_seconds.inc(seconds)
        log.warning(
            "graph retry",
            extra={"account": account.id, "reason": reason, "status": status, "wait_seconds": round(seconds, 3)},
        )

    return RetryPolicy(
        max_attempts=rt.sync.graph_max_attempts,
        backoff=rt.sync.graph_backoff_seconds,
        max_wait=rt.sync.graph_max_wait_seconds,
        sleep=rt.sleep,
        on_wait=on_wait,
    )
