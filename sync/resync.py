"""Full resync: reconcile the account's members against a complete listing of the tenant.

It runs when there is no usable delta link: the first sync of an account, a lost or reset
state database, or a delta token Graph no longer accepts (``syncStateNotFound``,
``resyncRequired``/410 — tokens of directory objects live 7 days). A listing cannot say who
was deleted, only who exists, so absence alone proves nothing about a member: an external
contractor with a password was never in Entra. Hence a full resync only deactivates members

* whom Graph positively reports with ``accountEnabled: false``, or
* who are missing from the listing *and* provably were Entra users of this tenant: linked to
  this account's IdP (the link's user id is their object id), or remembered in the state
  from an earlier listing and matched to the member now;

and the plan still passes through the guard like any other cycle's, so a truncated or
wrong listing cannot cause mass action.

The listing is planned as it streams in: each page is staged in the state database
(``StateStore.stage``) and its disabled users are planned at once (``plan_listed``); who is
missing is known only at the end (``plan_absent``), asked of the staged listing in batches,
so memory stays flat whatever the tenant's size. The links come from the extension's bulk
links resource, a page per request, never one request per linked member.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from apsis_core.account import AccountRecord
from apsis_core.keycloak import KeycloakPort
from apsis_core.keycloak.port import LinkRow
from apsis_core.validation import ascii_lower
from sync.deprovision import Plan, Restored, action_for, disabled_by_us
from sync.graph_pages import EntraUser
from sync.matching import Match, Matcher, link_user, parallel
from sync.state import KnownUser, StateStore, round_key

BATCH = 500


def plan_full(api: KeycloakPort, account: AccountRecord, round_: Any, state: StateStore, concurrency: int = 1) -> Plan:
    """A whole listing held in memory (``round_.users``; tests, tools): staged, planned, and
    the staging cleared again. The daemon streams the same steps page by page."""
    key = round_key(account.id)
    state.clear_staged(key)
    state.stage(key, round_.users)
    try:
        plan = Plan()
        matcher = Matcher(api, account, concurrency)
        plan_listed(matcher, list(round_.users), state, plan)
        plan_absent(matcher, state, plan, key)
        plan.notes.extend(matcher.notes)
        return plan
    finally:
        state.clear_staged(key)


def plan_listed(matcher: Matcher, users: list[EntraUser], state: StateStore, plan: Plan) -> None:
    """One page of the listing: the users it shows disabled in Entra are deactivated."""
    disabled = [u for u in users if not u.removed and u.enabled is False]
    matcher.prefetch([u.oid for u in disabled], {u.oid: u.emails for u in disabled})

    def decide(user: EntraUser) -> Any:
        match = matcher.match(user.oid, user.emails)
        return action_for(matcher, match, user.oid, "disabled", state) if match is not None else None

    for action in parallel(decide, disabled, matcher.concurrency):
        if action is not None:
            plan.add(action)


def plan_absent(matcher: Matcher, state: StateStore, plan: Plan, staged_as: str) -> None:
    """After the last page: members the listing no longer has (linked, or remembered), and
    users we deactivated whom it shows again."""
    account = matcher.account
    absent_linked: set[str] = set()
    for rows in _batches(matcher.api.idp_links(account.idp_alias), BATCH):
        matcher.remember_links(rows)
        listed = _listed(state, staged_as, [r["oid"] for r in rows])
        # Linked users the listing no longer has (their Entra user is gone), and linked users
        # disabled in Keycloak whom it shows enabled (maybe ours to report).
        gone = [r for r in rows if r["oid"] not in listed]
        back = [
            r
            for r in rows
            if r["oid"] in listed and listed[r["oid"]].enabled is not False and not r.get("enabled", True)
        ]
        matcher.prefetch_organizations(r["userId"] for r in gone + back)

        def decide(row: LinkRow) -> Any:
            if not matcher.is_member(row["userId"]):
                return None
            absent_linked.add(row["oid"])
            user = link_user(row)
            return action_for(
                matcher, Match(user, "link", ascii_lower(user.get("email") or "") or None), row["oid"], "absent", state
            )

        for action in parallel(decide, gone, matcher.concurrency):
            if action is not None:
                plan.add(action)
        for row in back:
            if matcher.is_member(row["userId"]):
                _report_if_ours(plan, state, matcher, row)

    # Entra users remembered from an earlier round who are gone now (unlinked members).
    remembered = [k for k in state.absent_known_users(account.id, staged_as) if k.oid not in absent_linked]
    addresses = {k.oid: EntraUser(k.oid, mail=k.mail, upn=k.upn).emails for k in remembered}
    matcher.prefetch_emails(e for emails in addresses.values() for e in emails)

    def by_email(known: KnownUser) -> Any:
        match = matcher.by_email(addresses[known.oid], known.oid)
        return action_for(matcher, match, known.oid, "absent", state) if match is not None else None

    for action in parallel(by_email, remembered, matcher.concurrency):
        if action is not None:
            plan.add(action)

    # Users we deactivated earlier whom the listing shows enabled again.
    done = [d for d in state.deactivations(account.id) if not d.restored_reported and d.oid]
    listed = _listed(state, staged_as, [d.oid for d in done if d.oid])
    for d in done:
        again = listed.get(d.oid or "")
        if again is not None and again.enabled is not False and all(r.user_id != d.user_id for r in plan.restored):
            plan.restored.append(Restored(d.user_id, d.email, again.oid, "restored or re-enabled"))


def _listed(state: StateStore, staged_as: str, oids: list[str]) -> dict[str, KnownUser]:
    return {oid: u for oid, u in state.staged_among(staged_as, oids).items() if not u.removed}


def _batches(rows: Iterable[LinkRow], size: int) -> Iterator[list[LinkRow]]:
    batch: list[LinkRow] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _report_if_ours(plan: Plan, state: StateStore, matcher: Matcher, row: LinkRow) -> None:
    """A linked member disabled by the daemon whose Entra user is enabled: report it, even when
    the state that remembered the deactivation was lost (the user's attributes remember it)."""
    user = matcher.full_user(row["userId"])
    if user is None or not disabled_by_us(user):
        return
    done = state.deactivation_by_oid(matcher.account.id, row["oid"])
    if done is not None and done.restored_reported:
        return
    if all(r.user_id != user["id"] for r in plan.restored):
        plan.restored.append(
            Restored(str(user["id"]), (user.get("email") or None), row["oid"], "restored or re-enabled")
        )
