"""Deactivation: from Graph's changes to a plan, and from a plan to Keycloak.

Planning reads, applying writes; the guard sits between the two, and ``--dry-run`` stops
after planning. Deactivating a user means: disable it, record who/when/why on it
(``apsis.disabledBy``/``At``/``Reason``, docs/contracts.md) and revoke its sessions — a
disabled user's existing sessions otherwise live on. A user who also belongs to other
accounts keeps its APSIS One user: it only leaves this account (membership and IdP link)
and its sessions end, since one of them may have come from this tenant's SSO.

Users that come back in Entra (restored from deleted items, or re-enabled) are *reported*,
never re-enabled: whoever deactivated access should decide to give it back.

A deactivation is several Keycloak writes, and the daemon can be killed between any two.
So each is resumable: its intent is written to the state before the first write and
cleared together with the record of it; every step is safe to repeat; the next cycle
(``resume``) first finishes whatever is still pending. Should the state be lost as well,
the user's own ``apsis.disabledBy`` mark and live sessions tell a later plan that only the
rest (logout, record) is missing: a ``finish`` action, which the guard does not count, since nobody new
is deactivated by it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from apsis_core.account import AccountRecord
from apsis_core.contract import DISABLED_AT_KEY, DISABLED_BY_KEY, DISABLED_REASON_KEY, SYNC_DAEMON, ActionKind
from apsis_core.keycloak import KeycloakPort
from apsis_core.keycloak.port import User
from sync.graph_pages import EntraUser
from sync.matching import Match, Matcher, parallel
from sync.state import Deactivation, KnownUser, StateStore

log = logging.getLogger("apsis_sync.deprovision")

REASONS = {
    "changed": "deleted",
    "deleted": "permanently deleted",
    "disabled": "disabled",
    "absent": "absent from the full listing",
}


@dataclass(frozen=True)
class Action:
    """One deactivation. ``kind`` is ``disable`` or ``remove_membership`` (member elsewhere too)."""

    kind: ActionKind
    user_id: str
    username: str
    email: str | None
    oid: str
    why: str  # a key of REASONS
    via: str  # link | email
    other_accounts: tuple[str, ...] = ()
    finish: bool = False  # already disabled by apsis-sync: only sessions and the record are left

    def reason(self, account: str) -> str:
        return f"entra user {REASONS[self.why]} ({account})"

    def describe(self, account: str) -> str:
        who = self.email or self.username
        if self.finish:
            return (
                f"finish deactivating {who} (disabled by apsis-sync earlier): end its sessions and record it; "
                f"{self.reason(account)}, matched by {self.via}"
            )
        if self.kind == "disable":
            return f"disable {who} and end its sessions: {self.reason(account)}, matched by {self.via}"
        others = ", ".join(self.other_accounts)
        return (
            f"remove {who} from account {account} (still in {others}) and end its sessions: "
            f"{self.reason(account)}, matched by {self.via}"
        )

    def to_dict(self, account: str) -> dict[str, Any]:
        out = asdict(self)
        out["other_accounts"] = list(self.other_accounts)
        out["reason"] = self.reason(account)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Action:
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["other_accounts"] = tuple(fields.get("other_accounts") or ())
        return cls(**fields)


@dataclass(frozen=True)
class Restored:
    """An Entra user we deactivated who is back (restored or re-enabled)."""

    user_id: str
    email: str | None
    oid: str
    how: str  # restored | re-enabled

    def describe(self) -> str:
        return (
            f"{self.email or self.user_id} was {self.how} in Entra; the APSIS One user stays deactivated "
            "until someone re-enables it"
        )


@dataclass
class Plan:
    actions: list[Action] = field(default_factory=list)
    restored: list[Restored] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, action: Action) -> None:
        if all(a.user_id != action.user_id for a in self.actions):
            self.actions.append(action)

    @property
    def deactivating(self) -> int:
        """What the guard judges: users newly deactivated (not the finishing of earlier ones)."""
        return sum(1 for a in self.actions if not a.finish)


def action_for(matcher: Matcher, match: Match, oid: str, why: str, state: StateStore) -> Action | None:
    """What deactivating ``match`` means here; None when there is nothing left to do.

    A user already disabled is left alone (re-disabling would overwrite who did it and
    why) — unless apsis-sync disabled them, has no record of it, and they still have
    sessions: a deactivation cut short whose memory was lost with the state, to be finished.
    (Without sessions nothing is missing that matters: the marks on the user are the record.)"""
    user = match.user
    others = matcher.other_accounts(match.user_id)
    if others:
        return Action(
            "remove_membership",
            match.user_id,
            str(user.get("username")),
            match.email,
            oid,
            why,
            match.via,
            tuple(others),
        )
    if not user.get("enabled", True):
        full = matcher.full_user(match.user_id) if "attributes" not in user else user
        if (
            full is None
            or not disabled_by_us(full)
            or state.deactivation(matcher.account.id, match.user_id) is not None
            or not matcher.api.user_sessions(match.user_id)
        ):
            return None
        return Action(
            "disable", match.user_id, str(user.get("username")), match.email, oid, why, match.via, finish=True
        )
    return Action("disable", match.user_id, str(user.get("username")), match.email, oid, why, match.via)


def disabled_by_us(user: Mapping[str, Any]) -> bool:
    """The user carries the daemon's mark (``apsis.disabledBy = apsis-sync``)."""
    return SYNC_DAEMON in ((user.get("attributes") or {}).get(DISABLED_BY_KEY) or [])


def plan_incremental(
    api: KeycloakPort, account: AccountRecord, round_: Any, state: StateStore, concurrency: int = 1
) -> Plan:
    """Changes since the stored delta link: removed or disabled users are deactivated; users
    we deactivated who reappear enabled are reported. Reads Keycloak only (``KeycloakPort``).
    ``round_.users`` may be one page of a round (the daemon plans page by page)."""
    plan = Plan()
    matcher = Matcher(api, account, concurrency)
    plan_changes(matcher, list(round_.users), state, plan)
    plan.notes.extend(matcher.notes)
    return plan


def plan_changes(matcher: Matcher, users: list[EntraUser], state: StateStore, plan: Plan) -> None:
    """One page of a change round into ``plan``: the links of the page's removed and disabled
    users with their accounts in one bulk read, the users of the unlinked ones' addresses in
    another, then the decisions."""
    account = matcher.account
    known = state.known_users_among(account.id, [u.oid for u in users])
    leaving = [u for u in users if u.removed or u.enabled is False]
    addresses = {u.oid: u.emails or _known_emails(known.get(u.oid)) for u in leaving}
    matcher.prefetch([u.oid for u in leaving], addresses)

    def decide(item: EntraUser) -> Action | None:
        emails = addresses[item.oid]
        why = "disabled" if not item.removed else item.removed if item.removed in REASONS else "changed"
        match = matcher.match(item.oid, emails)
        return action_for(matcher, match, item.oid, why, state) if match is not None else None

    for action in parallel(decide, leaving, matcher.concurrency):
        if action is not None:
            plan.add(action)
    staying = [u for u in users if not (u.removed or u.enabled is False)]
    done = state.deactivations_among(account.id, [u.oid for u in staying]) if staying else {}
    for item in staying:
        back = _came_back(done.get(item.oid), item, known.get(item.oid))
        if back is not None:
            plan.restored.append(back)


def _known_emails(known: KnownUser | None) -> list[str]:
    if known is None:
        return []
    return EntraUser(known.oid, mail=known.mail, upn=known.upn).emails


def _came_back(done: Deactivation | None, item: EntraUser, known: KnownUser | None) -> Restored | None:
    if done is None or done.restored_reported or item.enabled is False:
        return None
    how = "restored" if known is not None and known.removed else "re-enabled"
    return Restored(done.user_id, done.email, item.oid, how)


def apply(
    api: KeycloakPort,
    account: AccountRecord,
    actions: list[Action],
    state: StateStore,
    concurrency: int = 1,
) -> list[Action]:
    """Carry out the plan, up to ``concurrency`` users at once (each user's own steps in
    order); returns the actions this process did (not those another did first). Each
    action's intent is stored before its first write and cleared with its record, so wherever
    the process dies, the next cycle's ``resume`` finishes every action in flight (and
    re-reads the changes for the rest)."""

    def one(action: Action) -> bool:
        state.intend_deactivation(account.id, action.user_id, action.to_dict(account.id))
        return _carry_out(api, account, action, state)

    return [action for action, done in zip(actions, parallel(one, actions, concurrency), strict=True) if done]


def resume(
    api: KeycloakPort,
    account: AccountRecord,
    state: StateStore,
    concurrency: int = 1,
    journal: list[dict[str, Any]] | None = None,
) -> list[Action]:
    """Finish the deactivations an earlier run started and did not record (it was killed,
    or Keycloak went away midway). The guard judged them when they were planned. ``journal``:
    the pending deactivations as just read (``StateStore.starting_point``), else read here."""
    entries = state.pending_deactivations(account.id) if journal is None else journal
    pending = [Action.from_dict(data) for data in entries]
    done = parallel(lambda action: _carry_out(api, account, action, state), pending, concurrency)
    return [action for action, finished in zip(pending, done, strict=True) if finished]


def _carry_out(api: KeycloakPort, account: AccountRecord, action: Action, state: StateStore) -> bool:
    """Every step is idempotent, so a repeat after a crash completes what is missing. True
    when this call deactivated the user: the read, the writes and the record happen in one
    turn of the state (``deactivation_turn``), so another process or thread that set out to
    deactivate the same user finds it done and recorded and neither counts, logs nor
    records it again."""
    with state.deactivation_turn(account.id, action.user_id) as turn:
        user = api.user(action.user_id)
        if user is None:  # deleted from Keycloak meanwhile: nothing left to deactivate
            turn.drop_pending()
            return False
        if turn.recorded() and _in_effect(api, account, action, user):
            turn.drop_pending()  # another run got there first, or an earlier one of ours
            log.debug("already deactivated", extra={"account": account.id, "user_id": action.user_id})
            return False
        if action.kind == "disable":
            _disable(api, account, action, user)
        else:
            _remove_membership(api, account, action)
        turn.record(action.oid, action.email, action.kind, action.reason(account.id))
    log.info(
        "deactivated user",
        extra={
            "account": account.id,
            "user_id": action.user_id,
            "action": action.kind,
            "reason": action.reason(account.id),
            "matched_by": action.via,
            "finished_earlier_run": action.finish,
        },
    )
    return True


def _in_effect(api: KeycloakPort, account: AccountRecord, action: Action, user: Mapping[str, Any]) -> bool:
    """The user is as ``action`` leaves it: disabled, or no longer a member of the account."""
    if action.kind == "disable":
        return not user.get("enabled", True)
    return all(org.get("id") != account.org_id for org in api.user_organizations(action.user_id))


def _disable(api: KeycloakPort, account: AccountRecord, action: Action, user: Mapping[str, Any]) -> None:
    if user.get("enabled", True):  # not yet (or re-enabled by hand since): disable and mark, in one PUT
        # A PUT replaces attributes as a whole: start from what is there.
        body: dict[str, Any] = {
            k: v for k, v in user.items() if k not in ("federatedIdentities", "access", "credentials")
        }
        attributes = dict(user.get("attributes") or {})
        attributes.update(
            {
                DISABLED_BY_KEY: [SYNC_DAEMON],
                DISABLED_AT_KEY: [datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")],
                DISABLED_REASON_KEY: [action.reason(account.id)],
            }
        )
        body["enabled"] = False
        body["attributes"] = attributes
        api.update_user(action.user_id, cast(User, body))
    api.logout_user(action.user_id)


def _remove_membership(api: KeycloakPort, account: AccountRecord, action: Action) -> None:
    api.remove_member(account.org_id, action.user_id)
    api.unlink_user(action.user_id, account.idp_alias)
    api.logout_user(action.user_id)
