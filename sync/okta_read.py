"""An Okta account's round for the cycle (``sync.pipeline``): ``sync.okta_users`` read with the
account's API service app, each page planned by the same ``RoundPlan`` as Graph's, the result in
the same ``GraphRead`` shape, so the guard, the journal and the report treat both alike."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx

from apsis_core.account import AccountRecord
from apsis_core.errors import ApsisError
from sync.graph_pages import DeltaPage
from sync.graph_read import GraphRead
from sync.okta_users import OktaClient, read_round, verify
from sync.runtime import Runtime

log = logging.getLogger("apsis_sync.daemon")


def client_for(rt: Runtime, account: AccountRecord) -> OktaClient:
    """The account's client, kept for the process (its token is reused until it expires), over
    one HTTP connection pool for every Okta org."""
    http = rt.okta.get("http")
    if http is None:
        http = rt.okta["http"] = httpx.AsyncClient(
            verify=verify(rt.settings.okta_ca_bundle), timeout=rt.sync.graph_timeout
        )
    clients: dict[str, OktaClient] = rt.okta.setdefault("clients", {})
    key = f"{account.id} {account.tenant_id} {account.okta_api_client_id}"
    client = clients.get(key)
    if client is None:
        client = clients[key] = OktaClient(
            account.tenant_id, account.okta_api_client_id, rt.sync.secrets_path, account.id, http, sleep=rt.sleep
        )
    client.waits, client.requests = [], 0
    return client


async def read_changes(
    rt: Runtime,
    account: AccountRecord,
    cursor: str | None,
    quarantine: str | None,
    dry_run: bool,
    start: Callable[[bool], None],
    page: Callable[[DeltaPage], None],
) -> GraphRead:
    """The round; ``start(full)`` and ``page(page)`` are the pipeline's ``RoundPlan`` (blocking:
    each page is planned in the runtime's threads)."""
    out = GraphRead()
    if quarantine and not dry_run:
        return out  # held: the cursor stays, the same changes are read after the release
    if not account.okta_api_client_id:
        out.failure = ApsisError(f"account {account.id} has no Okta API service app recorded")
        return out
    client = client_for(rt, account)

    async def on_start(full: bool) -> None:
        start(full)

    async def on_page(changes: DeltaPage) -> None:
        out.pages += 1
        out.users += len(changes.users)
        await rt.blocking(page, changes)

    try:
        out.delta_link, out.full = await read_round(client, cursor, on_start, on_page)
        if cursor is None:
            out.resync_cause = "no_delta_link"
    except ApsisError as exc:
        out.failure = exc
        log.warning("okta round failed", extra={"account": account.id, "error": str(exc)})
    finally:
        out.waits, out.requests = client.waits, client.requests
    return out
