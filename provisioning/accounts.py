"""Plan accounts: organization + Entra identity provider + mappers + the daemon's secret copy.

The planners here are pure functions of a ``Snapshot`` (``provisioning.snapshot``: what
Keycloak holds now, read up front) and the desired accounts: they compare every field the
templates own, as Keycloak holds it now, so a hand edit in the admin console shows up as a
change and apply repairs it. A plan's changes carry their writes (``provisioning.steps``),
run only when the plan is applied with a repository.

A create is four writes, in an order that keeps a half-made account harmless: the
organization, the identity provider (with the hash of its mappers, not yet linked), its
mappers, and last the link of provider to organization, so a linked provider is a complete
one (``AccountRecord.complete``, which ``account list`` reads in bulk) and an unlinked one
refuses every login. A hash of the mappers cannot see a mapper deleted or edited by hand,
so plans compare the mappers themselves.

Every step of a create is its own change; a step that the plan knows creates something
new writes without reading first, and every other step re-reads what it depends on, so a
create interrupted midway is completed by running the same command again.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from apsis_core import secret_files
from apsis_core.account import Account, idp_alias, idp_is_managed, is_managed
from apsis_core.contract import SECRET_FINGERPRINT_KEY, SETUP_CLAIM_KEY
from apsis_core.errors import Conflict, InvalidInput, NotFound
from apsis_core.settings import Settings
from provisioning import mappers, steps
from provisioning.plan import Change, FieldChange, Plan, diff
from provisioning.progress import SILENT, Progress, phase
from provisioning.render import render
from provisioning.snapshot import Snapshot

if TYPE_CHECKING:
    from apsis_core.keycloak import KeycloakPort

DAEMON_SECRET = "daemon-secret"


def plan_account(settings: Settings, account: Account, snapshot: Snapshot, *, claim: str | None = None) -> Plan:
    """Changes that make Keycloak hold ``account``, from the snapshot alone.

    ``claim`` (a setup, ``onboarding.setup_claim``): the identity provider carries it and is
    written first, so creating it is the setup's first write and, of two setups at once,
    only one can (the other's create is refused by Keycloak and changes nothing)."""
    plan: Plan[KeycloakPort] = Plan()
    rendered = render(account, settings)
    if claim is not None:
        rendered.identity_provider["config"][SETUP_CLAIM_KEY] = claim
    alias = account.idp_alias
    org = snapshot.orgs.get(account.id)
    idp = snapshot.idps.get(alias)

    check_account(account, snapshot)

    ref = steps.OrgRef(account.id, org["id"] if org else None)
    idp_ref = steps.IdpRef(alias)
    organization, desired_idp = rendered.organization, rendered.identity_provider

    # 1. organization
    org_change: Change | None = None
    if org is None:
        org_change = Change(
            "create",
            "organization",
            account.id,
            account=account.id,
            fields=_org_fields(None, organization),
            apply=lambda api: steps.create_or_update_org(api, ref, organization),
        )
    else:
        changes = diff(org, organization)
        if changes:
            org_change = Change(
                "update",
                "organization",
                account.id,
                account=account.id,
                fields=changes,
                apply=lambda api: steps.create_or_update_org(api, ref, organization),
            )
    if account.awaiting_setup:
        if org_change is not None:
            plan.add(org_change)
        return plan  # no identity provider until the customer's IT sets it up (the portal)

    # 2. identity provider, not yet linked: until step 4 links it, it refuses every login
    idp_change: Change | None = None
    exclusive = claim is not None
    if idp is None:
        idp_change = Change(
            "create",
            "identity-provider",
            alias,
            account=account.id,
            fields=_idp_fields(None, desired_idp),
            apply=lambda api: steps.create_idp(api, idp_ref, desired_idp, exclusive=exclusive),
        )
    else:
        changes = _idp_changes(idp, desired_idp)
        if changes:
            idp_change = Change(
                "update",
                "identity-provider",
                alias,
                account=account.id,
                fields=changes,
                apply=lambda api: steps.update_idp(api, alias, desired_idp),
            )
    first, second = (idp_change, org_change) if claim is not None else (org_change, idp_change)
    for change in (first, second):
        if change is not None:
            plan.add(change)

    # 3. mappers, compared as the IdP has them now (a hand edit shows here)
    mapper_changes = mappers.field_changes(mappers.mapper_actions(snapshot.mappers_of(alias), rendered.mappers))
    if mapper_changes:
        plan.add(
            Change(
                "update" if idp is not None else "create",
                "idp-mappers",
                alias,
                account=account.id,
                fields=mapper_changes,
                apply=lambda api: steps.sync_mappers(api, idp_ref, rendered),
            )
        )

    # 4. link IdP -> organization: last, so a linked provider is a complete one
    linked_to = (idp or {}).get("organizationId")
    if idp is None or org is None or linked_to != org.get("id"):
        plan.add(
            Change(
                "create",
                "organization-link",
                f"{account.id} <- {alias}",
                account=account.id,
                fields=[FieldChange("organizationId", linked_to, account.id)],
                apply=lambda api: steps.link(api, ref, idp_ref),
            )
        )

    # 5. the daemon's copy of the secret, in the same run as Keycloak's
    daemon = plan_daemon_secret(settings, account, snapshot)
    if daemon is not None:
        plan.add(daemon)
    return plan


def check_account(account: Account, snapshot: Snapshot) -> None:
    """What refuses an account before anything else is asked (Entra included): not ours, a
    domain or name of another account, an impossible stage change, no secret for a new IdP."""
    alias = account.idp_alias
    org = snapshot.orgs.get(account.id)
    idp = snapshot.idps.get(alias)
    if org is not None and not is_managed(org):
        raise Conflict(f"organization {account.id!r} exists but is not managed by apsis-sso; leaving it alone")
    if idp is not None and not idp_is_managed(idp):
        raise Conflict(f"identity provider {alias!r} exists but is not managed by apsis-sso; leaving it alone")
    for domain in account.domains:
        owner = snapshot.domain_owner(domain)
        if owner is not None and owner != account.id:
            raise Conflict(f"domain {domain} belongs to account {owner!r}")
    named = snapshot.name_owner(account.name)
    if named is not None and named != account.id:
        raise Conflict(f"the name {account.name!r} is taken by account {named!r} (Keycloak needs unique names)")
    if account.awaiting_setup and idp is not None:
        raise Conflict(
            f"account {account.id!r} has SSO set up (identity provider {alias}); it cannot go back to "
            "awaiting setup (export the accounts again, or delete the account)"
        )
    if (
        idp is None
        and account.client_secret is None
        and not account.awaiting_setup
        and account.credential != "certificate"
    ):
        raise InvalidInput(f"account {account.id!r} has no identity provider yet: a client secret is required")


def check_accounts(desired: list[Account], snapshot: Snapshot, *, prune: bool = False) -> None:
    """``check_account`` for a whole file, with what the file itself must not contain: an
    account or domain or name listed twice."""
    seen = _check_file(desired)
    view = snapshot.without_pruned(seen) if prune else snapshot
    for account in desired:
        check_account(account, view)


def _check_file(desired: list[Account]) -> set[str]:
    """The file lists each account, domain and name once; returns the account ids."""
    seen: set[str] = set()
    for account in desired:
        if account.id in seen:
            raise InvalidInput(f"account {account.id!r} is listed twice")
        seen.add(account.id)
    claimed: dict[str, str] = {}
    names: dict[str, str] = {}
    for account in desired:
        for domain in account.domains:
            if domain in claimed:
                raise Conflict(f"domain {domain} is listed for both {claimed[domain]!r} and {account.id!r}")
            claimed[domain] = account.id
        if account.name in names:
            raise Conflict(f"the name {account.name!r} is listed for both {names[account.name]!r} and {account.id!r}")
        names[account.name] = account.id
    return seen


def plan_daemon_secret(settings: Settings, account: Account, snapshot: Snapshot) -> Change | None:
    """Hand the account's secret to apsis-sync (``APSIS_SSO_SYNC_SECRETS_DIR``) when its
    file is missing or holds another secret. Keycloak masks an IdP's secret on read, so
    whoever sets one is the only one who can; a plan that knows the secret (create,
    rotate-secret, a file with a secret reference) also repairs a missing or stale copy."""
    directory = settings.sync_secrets_dir
    if directory is None or account.client_secret is None:
        return None
    held = snapshot.daemon_files.get(account.id)
    if held is None:
        raise KeyError(f"the snapshot did not read apsis-sync's secret file of {account.id}")
    wanted = account.client_secret
    if held.secret is not None and hmac.compare_digest(
        held.secret.get_secret_value().encode(), wanted.get_secret_value().encode()
    ):
        return None
    return Change(
        "create" if held.secret is None else "update",
        DAEMON_SECRET,
        account.id,
        account=account.id,
        fields=[FieldChange("secret", "(set)" if held.secret is not None else None, "(new)", secret=True)],
        note=f"for apsis-sync: {held.path}",
        apply=lambda _api: steps.write_daemon_secret(directory, account.id, wanted),
    )


def writes_secret(plan: Plan) -> set[str]:
    """Accounts whose IdP secret the plan sets (a new IdP, or a changed secret)."""
    return {
        c.account
        for c in plan.changes
        if c.account
        and c.kind == "identity-provider"
        and c.action != "delete"
        and (c.action == "create" or any(f.path == "config.clientSecret" for f in c.fields))
    }


def writes_credential(plan: Plan) -> set[str]:
    """Accounts whose IdP credential the plan sets: a new IdP, a changed secret, or a switch
    between secret and certificate (``clientAuthMethod``). Each is proved with Entra before
    the first change."""
    switched = {
        c.account
        for c in plan.changes
        if c.account and c.kind == "identity-provider" and any(f.path == "config.clientAuthMethod" for f in c.fields)
    }
    return writes_secret(plan) | switched


def daemon_secret_files(plan: Plan) -> list[str]:
    """Accounts whose apsis-sync secret file the plan writes."""
    return [c.name for c in plan.changes if c.kind == DAEMON_SECRET and c.action != "delete"]


def written_daemon_file(settings: Settings, plan: Plan) -> Path | None:
    """Where a one-account plan stores the secret for apsis-sync, if it does."""
    written = daemon_secret_files(plan)
    if not written or settings.sync_secrets_dir is None:
        return None
    return secret_files.path_for(settings.sync_secrets_dir, written[0])


def warn_unsent_secrets(settings: Settings, plan: Plan) -> None:
    """Without ``APSIS_SSO_SYNC_SECRETS_DIR`` a secret set in Keycloak reaches apsis-sync
    only by hand: the plan says so, naming the accounts, rather than let their first sync
    fail."""
    accounts = sorted(writes_secret(plan))
    if settings.sync_secrets_dir is None and accounts:
        plan.warnings.append(
            f"APSIS_SSO_SYNC_SECRETS_DIR is not set: hand the new secret of {', '.join(accounts)} "
            "to apsis-sync with `apsis-sync secret set ACCOUNT`"
        )


def plan_accounts(
    settings: Settings, desired: list[Account], snapshot: Snapshot, *, prune: bool = False, progress: Progress = SILENT
) -> Plan:
    """Converge many accounts; with ``prune``, delete managed accounts absent from ``desired``.
    Comparing them is a phase of ``progress``."""
    seen = _check_file(desired)
    plan: Plan[KeycloakPort] = Plan()
    if prune:
        # Deletes go first: a desired account may take over a domain of a pruned one.
        for alias in sorted(set(snapshot.managed()) - seen):
            plan.extend(plan_delete(alias, snapshot))
    view = snapshot.without_pruned(seen) if prune else snapshot
    with phase(progress, "comparing with the file", len(desired), "accounts"):
        for account in desired:
            plan.extend(plan_account(settings, account, view))
            progress.advance()
    return plan


def plan_delete(account_id: str, snapshot: Snapshot) -> Plan:
    """Remove an account's SSO: its IdP (and with it every link), its organization and
    apsis-sync's copy of its secret (when the snapshot read the secrets directory).

    Members are unmanaged, so deleting the organization never deletes a user. A secret file
    left behind by an earlier delete is removed too, so a rerun finishes the job.
    """
    plan: Plan[KeycloakPort] = Plan()
    org = snapshot.orgs.get(account_id)
    alias = idp_alias(account_id)
    idp = snapshot.idps.get(alias)
    daemon_file = snapshot.daemon_files.get(account_id)
    secret_file = daemon_file.path if daemon_file is not None and daemon_file.exists else None
    if org is None and idp is None and secret_file is None:
        raise NotFound(f"no account {account_id!r}")
    if org is not None and not is_managed(org):
        raise Conflict(f"organization {account_id!r} is not managed by apsis-sso; leaving it alone")
    if idp is not None and not idp_is_managed(idp):
        raise Conflict(f"identity provider {alias!r} is not managed by apsis-sso; leaving it alone")
    if idp is not None:
        plan.add(
            Change(
                "delete",
                "identity-provider",
                alias,
                account=account_id,
                apply=lambda api: api.delete_identity_provider(alias),
            )
        )
    if org is not None:
        org_id = org["id"]
        plan.add(
            Change(
                "delete",
                "organization",
                account_id,
                account=account_id,
                note="members are kept as realm users",
                apply=lambda api: api.delete_organization(org_id),
            )
        )
    if secret_file is not None:
        path = secret_file
        plan.add(
            Change(
                "delete",
                DAEMON_SECRET,
                account_id,
                account=account_id,
                note=f"for apsis-sync: {path}",
                apply=lambda _api: path.unlink(missing_ok=True),
            )
        )
    return plan


# -- what a change shows -------------------------------------------------------------------


def _org_fields(current: Mapping[str, Any] | None, rendered: Mapping[str, Any]) -> list[FieldChange]:
    return diff(current, {k: v for k, v in rendered.items() if k in {"name", "domains", "attributes"}})


def _idp_changes(current: Mapping[str, Any], desired: Mapping[str, Any]) -> list[FieldChange]:
    want = {k: v for k, v in desired.items() if k not in {"firstBrokerLoginFlowAlias", "postBrokerLoginFlowAlias"}}
    want["config"] = {k: v for k, v in desired["config"].items() if k != "clientSecret"}
    have = dict(current)
    changes = diff(have, want)
    for key in ("firstBrokerLoginFlowAlias", "postBrokerLoginFlowAlias"):
        # Keycloak leaves an unbound flow out of the representation; the template unbinds with "".
        if (current.get(key) or "") != (desired.get(key) or ""):
            changes.append(FieldChange(key, current.get(key), desired.get(key) or None))
    if "clientSecret" in desired["config"]:
        fingerprint_changed = any(c.path == f"config.{SECRET_FINGERPRINT_KEY}" for c in changes)
        changes = [c for c in changes if c.path != f"config.{SECRET_FINGERPRINT_KEY}"]
        if fingerprint_changed:
            changes.append(FieldChange("config.clientSecret", "(set)", "(new)", secret=True))
    return changes


def _idp_fields(current: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> list[FieldChange]:
    shown = {k: v for k, v in desired.items() if k in {"enabled", "hideOnLogin", "displayName"}}
    shown["config"] = {
        k: v for k, v in desired["config"].items() if k in {"issuer", "clientId", "clientSecret", "defaultScope"}
    }
    return diff(current, shown)
