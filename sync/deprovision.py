"""Deactivation: from Graph's changes to a plan, and from a plan to Keycloak.

Planning reads, applying writes; the guard sits between the two, and ``--dry-run`` stops
after planning. Deactivating a user means: disable it, record who/when/why on it
(``apsis.disabledBy``/``At``/``Reason``, docs/contracts.md) and revoke its sessions — a
disabled user's existing sessions otherwise live on. A user who also belongs to other
accounts keeps its APSIS One user: it only leaves this account (membership and IdP link)
and its sessions end, since one of them may have come from this tenant's SSO.

Users that come back in Entra (restored from deleted items, or re-enabled) are *reported*,
never re-enabled: whoever deactivated access should decide to give it back.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from provisioning.keycloak_api import KeycloakApi
from sync.accounts import SyncAccount
from sync.graph_client import DeltaRound, EntraUser
from sync.matching import Match, Matcher
from sync.state import StateStore

log = logging.getLogger("apsis_sync.deprovision")

DISABLED_BY = "apsis-sync"
REASONS = {
    "changed": "deleted",
    "deleted": "permanently deleted",
    "disabled": "disabled",
    "absent": "absent from the full listing",
}


@dataclass(frozen=True)
class Action:
    """One deactivation. ``kind`` is ``disable`` or ``remove_membership`` (member elsewhere too)."""

    kind: Literal["disable", "remove_membership"]
    user_id: str
    username: str
    email: str | None
    oid: str
    why: str  # a key of REASONS
    via: str  # link | email
    other_accounts: tuple[str, ...] = ()

    def reason(self, account: str) -> str:
        return f"entra user {REASONS[self.why]} ({account})"

    def describe(self, account: str) -> str:
        who = self.email or self.username
        if self.kind == "disable":
            return f"disable {who} and end its sessions: {self.reason(account)}, matched by {self.via}"
        others = ", ".join(self.other_accounts)
        return (f"remove {who} from account {account} (still in {others}) and end its sessions: "
                f"{self.reason(account)}, matched by {self.via}")

    def to_dict(self, account: str) -> dict[str, Any]:
        out = asdict(self)
        out["other_accounts"] = list(self.other_accounts)
        out["reason"] = self.reason(account)
        return out


@dataclass(frozen=True)
class Restored:
    """An Entra user we deactivated who is back (restored or re-enabled)."""

    user_id: str
    email: str | None
    oid: str
    how: str  # restored | re-enabled

    def describe(self) -> str:
        return (f"{self.email or self.user_id} was {self.how} in Entra; the APSIS One user stays deactivated "
                "until someone re-enables it")


@dataclass
class Plan:
    actions: list[Action] = field(default_factory=list)
    restored: list[Restored] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, action: Action) -> None:
        if all(a.user_id != action.user_id for a in self.actions):
            self.actions.append(action)


def action_for(matcher: Matcher, match: Match, oid: str, why: str) -> Action | None:
    """What deactivating ``match`` means here; None when there is nothing left to do
    (already disabled by anyone — re-disabling would overwrite who did it and why)."""
    user = match.user
    others = matcher.other_accounts(match.user_id)
    if others:
        return Action("remove_membership", match.user_id, str(user.get("username")), match.email, oid, why,
                      match.via, tuple(others))
    if not user.get("enabled", True):
        return None
    return Action("disable", match.user_id, str(user.get("username")), match.email, oid, why, match.via)


def plan_incremental(api: KeycloakApi, account: SyncAccount, round_: DeltaRound, state: StateStore) -> Plan:
    """Changes since the stored delta link: removed or disabled users are deactivated; users
    we deactivated who reappear enabled are reported."""
    plan = Plan()
    matcher = Matcher(api, account)
    for item in round_.users:
        known = state.known_user(account.id, item.oid)
        emails = item.emails or _known_emails(known)
        if item.removed or item.enabled is False:
            why = "disabled" if not item.removed else item.removed if item.removed in REASONS else "changed"
            match = matcher.match(item.oid, emails)
            if match is not None:
                action = action_for(matcher, match, item.oid, why)
                if action is not None:
                    plan.add(action)
            continue
        back = _came_back(state, account, item, known)
        if back is not None:
            plan.restored.append(back)
    plan.notes.extend(matcher.notes)
    return plan


def _known_emails(known: Any) -> list[str]:
    if known is None:
        return []
    return EntraUser(known.oid, mail=known.mail, upn=known.upn).emails


def _came_back(state: StateStore, account: SyncAccount, item: EntraUser, known: Any) -> Restored | None:
    done = state.deactivation_by_oid(account.id, item.oid)
    if done is None or done.restored_reported:
        return None
    if item.enabled is False:
        return None
    how = "restored" if known is not None and known.removed else "re-enabled"
    return Restored(done.user_id, done.email, item.oid, how)


def apply(api: KeycloakApi, account: SyncAccount, actions: list[Action], state: StateStore) -> int:
    """Carry out the plan; returns how many actions were done. Each action is complete before
    the next starts and is recorded at once, so an interruption leaves nothing half-done that
    the next cycle (which re-reads the same changes) would not finish."""
    done = 0
    for action in actions:
        if action.kind == "disable":
            _disable(api, account, action)
        else:
            _remove_membership(api, account, action)
        state.record_deactivation(account.id, action.user_id, action.oid, action.email, action.kind, action.reason(account.id))
        log.info(
            "deactivated user",
            extra={"account": account.id, "user_id": action.user_id, "action": action.kind,
                   "reason": action.reason(account.id), "matched_by": action.via},
        )
        done += 1
    return done


def _disable(api: KeycloakApi, account: SyncAccount, action: Action) -> None:
    user = api.user(action.user_id)
    if user is None:
        return
    # A PUT replaces attributes as a whole: start from what is there.
    body = {k: v for k, v in user.items() if k not in ("federatedIdentities", "access", "credentials")}
    attributes = dict(user.get("attributes") or {})
    attributes.update({
        "apsis.disabledBy": [DISABLED_BY],
        "apsis.disabledAt": [datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")],
        "apsis.disabledReason": [action.reason(account.id)],
    })
    body["enabled"] = False
    body["attributes"] = attributes
    api.update_user(action.user_id, body)
    api.logout_user(action.user_id)


def _remove_membership(api: KeycloakApi, account: SyncAccount, action: Action) -> None:
    api.remove_member(account.org_id, action.user_id)
    api.call("DELETE", f"users/{action.user_id}/federated-identity/{account.alias}", missing_ok=True)
    api.logout_user(action.user_id)
