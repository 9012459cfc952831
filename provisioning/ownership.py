"""Before an account's domains are linked to a tenant: prove the tenant owns every one.

Every path that gives an account an identity provider or takes it live — ``account create``
with Entra details (and the portal's setup, which is the same call), ``go-live``, ``apply
-f`` — runs ``establish`` before its first write: the domains not yet proven for the
account's tenant are asked of Entra (``apsis_core.domain_ownership``), proven ones are
recorded with the account's other changes, and a domain verified in another tenant or in
none stops the command — unless the operator gave a reason to link it anyway
(``--allow-unproven-domains REASON``), which is recorded on the account for that domain and
tenant. Entra not answering is never a pass: the command exits 75, try again.

A domain already proven (or overridden) for the tenant is not asked again, so a command
that changes nothing costs no Entra request; the daemon re-checks proofs daily.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from apsis_core import domain_ownership as ownership
from apsis_core.account import Account
from apsis_core.domain_ownership import Ownership, Verdict
from apsis_core.entra import EntraEndpoints
from apsis_core.errors import ApsisError, is_temporary
from provisioning.progress import SILENT, InOrder, Progress

Check = Callable[[EntraEndpoints, str, Sequence[str], datetime | None], list[Verdict]]


@dataclass
class Established:
    """An account ready to be linked: ``account`` carries the records to write (None where
    nothing changes); ``asked`` is what Entra said, ``overridden`` what the override covers."""

    account: Account
    asked: list[Verdict] = field(default_factory=list)
    overridden: list[Verdict] = field(default_factory=list)

    def warnings(self) -> list[str]:
        return [
            f"domain ownership not proven: {v.describe()}; linked under the override recorded on the account "
            "(sign-ins without Entra's xms_edov claim are refused in that domain)"
            for v in self.overridden
        ]


def held(attributes: Mapping[str, list[str]] | None, account: Account) -> Ownership:
    """What the account's records prove for the tenant and domains ``account`` asks for."""
    return Ownership.of(attributes or {}, account.tenant_id, account.domains)


def _with_records(
    account: Account,
    have: Ownership,
    verdicts: list[Verdict],
    refused: list[Verdict],
    reason: str | None,
    now: datetime | None,
) -> Established:
    proofs = [v.proof for v in verdicts if v.proof is not None]
    changes: dict[str, object] = {}
    if proofs:
        changes["domain_proofs"] = (*have.proofs, *proofs)
    if refused:
        assert reason is not None
        changes["ownership_overrides"] = (*have.overrides, *ownership.overrides_for(refused, reason, now))
    return Established(account.with_changes(**changes) if changes else account, verdicts, refused)


def establish(
    endpoints: EntraEndpoints,
    account: Account,
    attributes: Mapping[str, list[str]] | None,
    *,
    override: str | None = None,
    now: datetime | None = None,
    check: Check = ownership.check,
) -> Established:
    """``account`` with the proofs of the domains not yet proven for its tenant (asked of
    Entra now), or ``DomainsNotProven`` (exit 2) / ``EntraUnavailable`` (exit 75). An account
    awaiting setup links nothing and needs nothing."""
    if account.awaiting_setup:
        return Established(account)
    reason = ownership.override_reason(override) if override is not None else None
    have = held(attributes, account)
    todo = have.uncovered
    if not todo:
        return Established(account)
    verdicts = check(endpoints, account.tenant_id, todo, now)
    refused = ownership.require(account.id, verdicts, override=reason)
    return _with_records(account, have, verdicts, refused, reason, now)


def establish_all(
    endpoints: EntraEndpoints,
    accounts: list[Account],
    attributes: Mapping[str, Mapping[str, list[str]]],
    *,
    override: str | None = None,
    now: datetime | None = None,
    progress: Progress = SILENT,
    check: Check | None = None,
) -> list[Established]:
    """``establish`` for many accounts (``apply -f``): the domains to ask about, concurrently
    over one connection pool; every account is judged, and one error names every refused one
    (exit 2 before 75, as a refused secret does). ``check`` replaces Entra, one account at a
    time (benchmarks, whose tenants are made up)."""
    reason = ownership.override_reason(override) if override is not None else None
    haves = [held(attributes.get(a.id), a) for a in accounts]
    asking = [i for i, (a, h) in enumerate(zip(accounts, haves, strict=True)) if not a.awaiting_setup and h.uncovered]
    judged: dict[int, list[Verdict]] = {}
    if asking and check is not None:
        judged = {i: check(endpoints, accounts[i].tenant_id, haves[i].uncovered, now) for i in asking}
    elif asking:
        found = asyncio.run(
            _discover_all(
                endpoints, [(i, haves[i].uncovered) for i in asking], progress, {i: accounts[i].id for i in asking}
            )
        )
        judged = {i: ownership.judge_all(found[i], accounts[i].tenant_id, now) for i in asking}
    out: list[Established] = []
    failures: list[tuple[str, ApsisError]] = []
    for i, account in enumerate(accounts):
        if i not in judged:
            out.append(Established(account))
            continue
        verdicts = judged[i]
        try:
            refused = ownership.require(account.id, verdicts, override=reason)
        except ApsisError as exc:
            failures.append((account.id, exc))
            continue
        out.append(_with_records(account, haves[i], verdicts, refused, reason, now))
    if failures:
        refusals = [f for f in failures if not is_temporary(f[1])]
        first = (refusals or failures)[0][1]
        others = [a for a, e in failures if e is not first]
        more = (
            f" ({len(others)} more account(s) too: {', '.join(others[:5])}{', ...' if len(others) > 5 else ''})"
            if others
            else ""
        )
        raise first.with_message(f"{first.format_message()}{more}")
    return out


async def _discover_all(
    endpoints: EntraEndpoints, work: list[tuple[int, Sequence[str]]], progress: Progress, names: dict[int, str]
) -> dict[int, list[ownership.Discovery]]:
    import httpx

    found: dict[int, list[ownership.Discovery]] = {}
    order = InOrder(
        [i for i, _ in work],
        lambda i: progress.advance(
            f"{names[i]}: " + ", ".join(f"{d.domain} {'-> ' + d.owner if d.owner else d.answer}" for d in found[i])
        ),
    )
    progress.begin("proving domain ownership with Entra", len(work), "accounts")
    gate = asyncio.Semaphore(ownership.CONCURRENCY)
    try:
        async with httpx.AsyncClient(verify=endpoints.ssl_context) as client:

            async def one(index: int, domains: Sequence[str]) -> int:
                async with gate:
                    found[index] = await ownership.discover_async(endpoints, domains, client)
                return index

            for done in asyncio.as_completed([one(i, d) for i, d in work]):
                order.done(await done)
    finally:
        progress.end()
    return found
