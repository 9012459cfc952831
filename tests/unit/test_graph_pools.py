"""The daemon's Graph connection pools: one small pool per account in flight.

httpcore's connection pool walks every connection it holds (a ``poll()`` on each idle socket
through ``has_expired``) on every request and every response it releases; with one pool of
``workers + 8`` connections that bookkeeping was 41 % of the event loop's CPU in a profiled idle
cycle (bench/profile_split.py). Each account in flight takes a stack of two connections (its page
and the prefetched next one) and gives it back when its Graph reads are done.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from apsis_core import contract
from apsis_core.account import AccountRecord
from apsis_core.settings import Settings
from sync.graph_client import RetryPolicy
from sync.runtime import Runtime
from sync.settings import SyncSettings
from sync.state import StateStore

pytestmark = pytest.mark.unit


def account(n: int) -> AccountRecord:
    attrs = {
        contract.MANAGED_BY_KEY: [contract.MANAGED_BY],
        contract.CLIENT_ID_KEY: [f"app-{n}"],
        contract.TENANT_ID_KEY: [f"tenant-{n}"],
    }
    return AccountRecord.parse(
        {
            "id": f"org-{n}",
            "alias": f"acct{n}",
            "name": f"A{n}",
            "attributes": attrs,
            "domains": [{"name": f"a{n}.example"}],
        }
    )


def runtime() -> Runtime:
    settings = Settings(_env_file=None, keycloak_client_secret="tooling-secret")  # type: ignore[call-arg]
    sync = SyncSettings(_env_file=None, platform_team_email="platform@apsis.example", workers=32)  # type: ignore[call-arg]
    return Runtime.build(settings, sync, state=StateStore(":memory:"), api_factory=lambda: None)


def pool_limit(client: Any) -> int:
    pool = client.stack.http._transport._pool  # httpx's transport -> httpcore's pool
    return int(pool._max_connections)


def test_each_account_in_flight_has_its_own_small_pool_and_gives_it_back() -> None:
    rt = runtime()
    secret = SecretStr("s3cret-value")

    async def cycle() -> None:
        first = rt.graph_client(account(1), secret, RetryPolicy())
        second = rt.graph_client(account(2), secret, RetryPolicy())
        assert first.stack is not second.stack  # two accounts in flight: two pools
        assert pool_limit(first) == pool_limit(second) == 2  # a page and its prefetch, not workers + 8
        rt.release_graph(first)
        third = rt.graph_client(account(3), secret, RetryPolicy())
        assert third.stack is first.stack  # given back, then reused: no new pool per account
        rt.release_graph(second)
        rt.release_graph(third)

    try:
        rt.run(cycle())
        assert len(rt._stacks) == 2
    finally:
        rt.close()
    assert rt._stacks == [] and rt._graph is None
