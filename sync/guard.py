"""The accidental-deletion guard.

A tenant admin who deletes the wrong group, a sync tool gone wrong, a truncated listing:
each looks, to the daemon, like many users leaving at once. Past a threshold per account
per cycle (an absolute number, or a share of the account's members) the daemon acts on
nobody, quarantines the account and tells the platform team.

The quarantine lives on the organization (attribute ``apsis.quarantined`` =
``["<iso time> <reason>"]``), not only in the daemon's state: it survives a lost state
database, holds for every replica, and is visible to ``apsis-sso``. Releasing it — by
``apsis-sync release`` or by removing the attribute — lets the held deactivations through
once: the next cycle may deactivate as many users as were held (plus the usual limits).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from apsis_core.account import AccountRecord
from apsis_core.contract import QUARANTINE_KEY
from apsis_core.errors import InvalidInput
from apsis_core.keycloak import KeycloakPort
from sync.accounts import load
from sync.state import StateStore


@dataclass(frozen=True)
class GuardLimits:
    max_users: int = 25
    max_percent: float = 10.0
    percent_min_users: int = 3


def needs_members(count: int, limits: GuardLimits, allowance: int = 0) -> bool:
    """Whether the verdict on ``count`` can depend on the member count at all; when it
    cannot, the daemon does not ask Keycloak for it."""
    excess = count - allowance
    return excess > 0 and (excess >= limits.percent_min_users or excess > limits.max_users)


def verdict(count: int, members: int | None, limits: GuardLimits, allowance: int = 0) -> str | None:
    """Why ``count`` deactivations in one cycle are too many, or None when they may go ahead.

    ``allowance`` is what an operator released: up to that many pass regardless, beyond it
    the usual limits apply to the excess.
    """
    excess = count - allowance
    if excess <= 0:
        return None
    if excess > limits.max_users:
        return f"{count} deactivations in one cycle exceed the limit of {limits.max_users + allowance}"
    if members and excess >= limits.percent_min_users:
        share = 100.0 * excess / members
        if share > limits.max_percent:
            return (
                f"{count} deactivations in one cycle are {share:.0f}% of {members} members, "
                f"over the limit of {limits.max_percent:g}%"
            )
    return None


def stamp(reason: str) -> str:
    now = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return f"{now} {reason}"


def quarantine(api: KeycloakPort, account: AccountRecord, reason: str) -> str:
    """Set the organization attribute (GET, modify, PUT: a PUT replaces the organization)."""
    value = stamp(reason)
    _set_attribute(api, account.org_id, [value])
    return value


@dataclass(frozen=True)
class Release:
    """What ``apsis-sync release`` found (and, unless a dry run, lifted)."""

    account: str
    quarantined: str
    held: int
    applied: bool

    @property
    def held_text(self) -> str:
        return f"{self.held} held deactivation(s)" if self.held else "held deactivations"


def release_account(api: KeycloakPort, state: StateStore, account_id: str, *, dry_run: bool = False) -> Release:
    """Lift a quarantine: the next cycle may carry out as many deactivations as were held."""
    account = load(api, account_id)
    if not account.quarantined:
        raise InvalidInput(f"account {account.id!r} is not quarantined")
    held = state.account(account.id).quarantine_held
    if not dry_run:
        release(api, account)
    return Release(account.id, account.quarantined, held, applied=not dry_run)


def release(api: KeycloakPort, account: AccountRecord) -> str | None:
    """Remove the quarantine; returns what it said, or None if the account was not quarantined."""
    org = api.organization(account.org_id)
    held = ((org or {}).get("attributes") or {}).get(QUARANTINE_KEY) or []
    if not held:
        return None
    _set_attribute(api, account.org_id, None)
    return held[0]


def _set_attribute(api: KeycloakPort, org_id: str, value: list[str] | None) -> None:
    api.change_organization_attribute(org_id, QUARANTINE_KEY, lambda _held: value)
