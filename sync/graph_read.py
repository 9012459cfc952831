"""What one account's cycle reads from Graph, before Keycloak is touched.

A delta round from the stored link (or a full listing when there is none, or when Graph
says the token expired), and the app's client secrets for the expiry check. Failures are
kept, not raised: a token Entra refused is something to flag, not a reason to stop the
account's other work.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from pydantic import SecretStr

from apsis_core.account import AccountRecord
from sync.graph_client import (
    DeltaRound,
    DeltaTokenExpired,
    GraphClient,
    GraphFailure,
    PasswordCredential,
    RetryPolicy,
    TokenRejected,
)
from sync.runtime import Runtime

log = logging.getLogger("apsis_sync.daemon")


@dataclass
class GraphRead:
    """Everything one cycle of one account learned from Graph, or why it could not."""

    round: DeltaRound | None = None
    resync_cause: str | None = None
    credentials: list[PasswordCredential] | None = None
    token_error: TokenRejected | None = None
    failure: GraphFailure | None = None
    waits: list[tuple[str, float]] = field(default_factory=list)
    requests: int = 0


async def read_graph(account: AccountRecord, client: GraphClient, delta_link: str | None, want_delta: bool) -> GraphRead:
    """Everything this cycle needs from Graph, read before Keycloak is touched."""
    out = GraphRead(waits=client.retry.waits)
    try:
        if want_delta:
            if delta_link is None:
                out.resync_cause = "no_delta_link"
                out.round = await client.delta_round(None)
            else:
                try:
                    out.round = await client.delta_round(delta_link)
                except DeltaTokenExpired as exc:
                    out.resync_cause = exc.code
                    log.warning("delta token expired; full resync", extra={"account": account.id, "code": exc.code})
                    out.round = await client.restart_round(exc)
        out.credentials = await client.password_credentials(account.client_id)
    except TokenRejected as exc:
        out.token_error = exc
        out.failure = exc
    except GraphFailure as exc:
        out.failure = exc
    finally:
        out.requests = client.requests
    return out


def graph_client(rt: Runtime, account: AccountRecord, secret: SecretStr) -> GraphClient:
    """The account's own Graph client, with the daemon's retry policy (waits logged and counted)."""
    def on_wait(reason: str, seconds: float, status: int) -> None:
        rt.metrics.graph_retries.labels(reason).inc()
        rt.metrics.graph_wait_seconds.inc(seconds)
        log.warning("graph retry", extra={"account": account.id, "reason": reason, "status": status,
                                           "wait_seconds": round(seconds, 3)})

    retry = RetryPolicy(
        max_attempts=rt.sync.graph_max_attempts,
        backoff=rt.sync.graph_backoff_seconds,
        max_wait=rt.sync.graph_max_wait_seconds,
        sleep=rt.sleep,
        on_wait=on_wait,
    )
    return GraphClient(rt.endpoints, account.tenant_id, account.client_id, secret, retry=retry)


def read(rt: Runtime, account: AccountRecord, secret: SecretStr, delta_link: str | None, want_delta: bool) -> GraphRead:
    """One account's Graph reading, start to end (a worker thread's own event loop)."""
    async def run() -> GraphRead:
        async with graph_client(rt, account, secret) as client:
            return await read_graph(account, client, delta_link, want_delta)

    return asyncio.run(run())
