"""Proving many accounts' credentials (client secrets, or APSIS's certificate) with Entra at
once, before an apply writes anything.

Each proof is one client-credentials token request to the account's tenant: almost all of
it is waiting for Microsoft, so they run concurrently (``CONCURRENCY`` at once, in one
event loop, over one kept-alive HTTP session: every tenant's token endpoint is on the same
authority host). Every proof is awaited, so one run reports every refused secret, not
just the first; the error names the account and exits as the most actionable failure does
(a refused secret, 2, before Entra being unreachable, 75).
"""

from __future__ import annotations

import asyncio

from apsis_core import entra
from apsis_core.account import Account
from apsis_core.certificates import KeyPair
from apsis_core.entra import EntraEndpoints
from apsis_core.errors import ApsisError, is_temporary
from provisioning.progress import SILENT, InOrder, Progress

CONCURRENCY = 32
"""Token requests in flight at once: each waits on a different tenant, so the bound is only
there to keep a file of thousands of accounts from opening thousands of connections."""


def prove_all(
    endpoints: EntraEndpoints,
    accounts: list[Account],
    *,
    key: KeyPair | None = None,
    concurrency: int = CONCURRENCY,
    progress: Progress = SILENT,
) -> None:
    """Raise unless Entra accepts every account's credential (all are asked either way): its
    client secret, or for a certificate account an assertion signed with ``key``."""
    if not accounts:
        return
    if key is None and any(a.credential == "certificate" for a in accounts):
        raise ValueError("certificate accounts are proved with the assertion key")
    failures = asyncio.run(_prove_all(endpoints, accounts, key, concurrency, progress))
    if not failures:
        return
    refused = [f for f in failures if not is_temporary(f[1])]
    account, error = (refused or failures)[0]
    others = [a.id for a, _ in failures if a.id != account.id]
    more = (
        f" ({len(others)} more account(s) failed the check too: {', '.join(others[:5])}"
        f"{', ...' if len(others) > 5 else ''})"
        if others
        else ""
    )
    # The same error with the account and the others named in its one line.
    raise error.with_message(f"account {account.id}: {error.format_message()}{more}") from None


async def _prove_all(
    endpoints: EntraEndpoints, accounts: list[Account], key: KeyPair | None, concurrency: int, progress: Progress
) -> list[tuple[Account, ApsisError]]:
    failures: dict[int, ApsisError] = {}
    order = InOrder(list(range(len(accounts))), lambda i: progress.advance(_line(accounts[i], failures.get(i))))
    gate = asyncio.Semaphore(concurrency)
    progress.begin("proving credentials with Entra", len(accounts), "credentials")

    async def prove(index: int, account: Account, transport: object) -> int:
        credential: str | KeyPair
        if account.credential == "certificate":
            assert key is not None
            credential = key
        else:
            assert account.client_secret is not None
            credential = account.client_secret.get_secret_value()
        async with gate:
            try:
                await entra.prove_secret_async(endpoints, account.tenant_id, account.client_id, credential, transport)
            except ApsisError as exc:
                failures[index] = exc
        return index

    try:
        async with entra.shared_transport(endpoints) as transport:
            for done in asyncio.as_completed([prove(i, a, transport) for i, a in enumerate(accounts)]):
                order.done(await done)
    finally:
        progress.end()
    return [(accounts[i], failures[i]) for i in sorted(failures)]


def _line(account: Account, failure: ApsisError | None) -> str:
    what = "certificate credential" if account.credential == "certificate" else "client secret"
    if failure is None:
        return f"{what} of account {account.id} accepted by Entra"
    return f"{what} of account {account.id} NOT accepted: {failure.format_message()}"
