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
"""

from __future__ import annotations

from apsis_core.account import AccountRecord
from sync.deprovision import Plan, Restored, action_for, disabled_by_us
from sync.graph_client import DeltaRound, EntraUser
from sync.matching import Directory, Match, Matcher
from sync.state import StateStore


def plan_full(api: Directory, account: AccountRecord, round_: DeltaRound, state: StateStore) -> Plan:
    """The full listing's plan; reads Keycloak only (``Directory``), writes nothing."""
    plan = Plan()
    listing: dict[str, EntraUser] = {u.oid: u for u in round_.users if not u.removed}
    member_ids = {m["id"] for m in api.members(account.org_id)}
    matcher = Matcher(api, account, member_ids=member_ids)

    # Disabled in Entra, as the listing says.
    for user in listing.values():
        if user.enabled is False:
            match = matcher.match(user.oid, user.emails)
            if match is not None:
                action = action_for(matcher, match, user.oid, "disabled", state)
                if action is not None:
                    plan.add(action)

    # Linked members the listing no longer has: their Entra user is gone.
    linked_seen: set[str] = set()
    for linked in api.linked_users(account.idp_alias, brief=False):
        if linked["id"] not in member_ids:
            continue
        oid = _link_oid(api, linked["id"], account.idp_alias)
        if oid is None:
            continue
        linked_seen.add(oid)
        if oid not in listing:
            match = Match(linked, "link", (linked.get("email") or "").lower() or None)
            action = action_for(matcher, match, oid, "absent", state)
            if action is not None:
                plan.add(action)
        elif listing[oid].enabled is not False and not linked.get("enabled", True):
            _report_if_ours(plan, state, account, linked, oid)

    # Entra users remembered from an earlier round who are gone now (unlinked members).
    for known in state.known_users(account.id):
        if known.oid in listing or known.oid in linked_seen or known.removed:
            continue
        emails = EntraUser(known.oid, mail=known.mail, upn=known.upn).emails
        match = matcher.by_email(emails, known.oid)
        if match is not None:
            action = action_for(matcher, match, known.oid, "absent", state)
            if action is not None:
                plan.add(action)

    # Users we deactivated earlier whom the listing shows enabled again.
    for done in state.deactivations(account.id):
        if done.restored_reported or not done.oid:
            continue
        back = listing.get(done.oid)
        if back is not None and back.enabled is not False and all(r.user_id != done.user_id for r in plan.restored):
            plan.restored.append(Restored(done.user_id, done.email, done.oid, "restored or re-enabled"))

    plan.notes.extend(matcher.notes)
    return plan


def _link_oid(api: Directory, user_id: str, alias: str) -> str | None:
    for link in api.federated_identities(user_id) or []:
        if link.get("identityProvider") == alias:
            return str(link.get("userId"))
    return None


def _report_if_ours(plan: Plan, state: StateStore, account: AccountRecord, user: dict, oid: str) -> None:
    """A linked member disabled by the daemon whose Entra user is enabled: report it, even when
    the state that remembered the deactivation was lost (the user's attributes remember it)."""
    if not disabled_by_us(user):
        return
    done = state.deactivation_by_oid(account.id, oid)
    if done is not None and done.restored_reported:
        return
    if all(r.user_id != user["id"] for r in plan.restored):
        plan.restored.append(Restored(str(user["id"]), (user.get("email") or None), oid, "restored or re-enabled"))
