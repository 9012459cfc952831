"""Plan and apply accounts: organization + Entra identity provider + mappers.

Planning reads Keycloak in bulk (all organizations, all identity providers: a few paged
listings however many accounts there are) into a ``Snapshot``, then compares each desired
account with it: every field the templates own, as Keycloak holds it now, so a hand edit in
the admin console shows up as a change and apply repairs it. An IdP's mappers are the one
exception to the bulk reading: Keycloak 26 has no listing of mappers across identity
providers (they left the realm representation), so a plan costs one ``GET .../mappers``
per existing IdP it compares. A hash of the mappers, which a no-change plan used to trust
instead, cannot see a mapper deleted or edited by hand; it is still written after the
mappers, as the mark of a completed create that ``account list`` reads in bulk.

Every step of a create is its own change and every change re-reads what it depends on,
so a create interrupted midway is completed by running the same command again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr

from apsis_core import stages
from apsis_core.account import Account, idp_alias, idp_is_managed, is_managed, secret_fingerprint, secret_hint
from apsis_core.contract import MAPPERS_HASH_KEY, SECRET_FINGERPRINT_KEY, SECRET_HINT_KEY
from apsis_core.errors import ApsisError, Conflict, InvalidInput, NotFound
from apsis_core import secret_files
from provisioning import templates
from apsis_core.keycloak import KeycloakRepository
from provisioning.plan import Change, FieldChange, Plan, diff, merge
from apsis_core.settings import Settings

DAEMON_SECRET = "daemon-secret"


@dataclass
class Snapshot:
    """What Keycloak holds now, read in bulk."""

    orgs: dict[str, dict[str, Any]] = field(default_factory=dict)
    idps: dict[str, dict[str, Any]] = field(default_factory=dict)
    _owners: dict[str, str] | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def load(cls, api: KeycloakRepository) -> "Snapshot":
        return cls(
            orgs={o["alias"]: o for o in api.organizations()},
            idps={i["alias"]: i for i in api.identity_providers()},
        )

    @classmethod
    def for_account(
        cls, api: KeycloakRepository, account_id: str, domains: tuple[str, ...] = (), name: str | None = None
    ) -> "Snapshot":
        """Just what one account's plan needs: its organization, its IdP, the owners of its
        domains (one search per domain) and of its name (one search)."""
        orgs: dict[str, dict[str, Any]] = {}
        own = api.organization_by_alias(account_id)
        if own is not None:
            orgs[own["alias"]] = own
        for text in [*domains, *([name] if name is not None else [])]:
            for org in api.organizations_named(text):
                orgs.setdefault(org["alias"], org)
        idp = api.identity_provider(idp_alias(account_id))
        return cls(orgs=orgs, idps={idp["alias"]: idp} if idp else {})

    def domain_owner(self, domain: str) -> str | None:
        # An index built once: a plan over N accounts asks this N times.
        if self._owners is None:
            self._owners = {d.get("name", ""): alias for alias, org in self.orgs.items() for d in org.get("domains", [])}
        return self._owners.get(domain)

    def name_owner(self, name: str) -> str | None:
        """Keycloak refuses two organizations with one name: who has this one?"""
        return next((alias for alias, org in self.orgs.items() if org.get("name") == name), None)

    def managed(self) -> dict[str, dict[str, Any]]:
        return {a: o for a, o in self.orgs.items() if is_managed(o)}


@dataclass(frozen=True)
class Rendered:
    organization: dict[str, Any]
    identity_provider: dict[str, Any]
    mappers: list[dict[str, Any]]

    @property
    def mappers_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.mappers, sort_keys=True).encode()).hexdigest()[:16]


def render(account: Account, settings: Settings) -> Rendered:
    values: dict[str, Any] = {
        "account": account.id,
        "account_name": account.name,
        "tenant_id": account.tenant_id,
        "client_id": account.client_id,
        "client_secret": account.client_secret.get_secret_value() if account.client_secret else "",
        "authority": settings.entra_authority,
        "domains": [{"name": d, "verified": True} for d in account.domains],
        "stage": account.stage,
        "pilot": list(account.pilot),
        "secret_expires": account.secret_expires.isoformat(),
        "secret_hint": secret_hint(account.client_secret.get_secret_value()) if account.client_secret else "",
        "it_contact_name": account.it_contact.name,
        "it_contact_email": account.it_contact.email,
    }
    org = templates.render_file(settings.templates_dir, "organization.json", values)
    if not account.client_secret:
        org["attributes"].pop(SECRET_HINT_KEY, None)
    org["attributes"] = {k: v for k, v in org["attributes"].items() if v not in ([""], "")}
    idp = merge(templates.render_file(settings.templates_dir, "entra-idp.json", values),
                stages.identity_provider_settings(account.stage))
    if account.client_secret:
        idp["config"][SECRET_FINGERPRINT_KEY] = secret_fingerprint(account.client_secret.get_secret_value())
    else:
        idp["config"].pop("clientSecret", None)
    mappers = templates.render_file(settings.templates_dir, "entra-idp-mappers.json", values)
    return Rendered(org, idp, mappers)


def plan_account(api: KeycloakRepository, settings: Settings, account: Account, snapshot: Snapshot) -> Plan:
    """Changes that make Keycloak hold ``account``; reads nothing beyond the snapshot
    unless the IdP's mappers need comparing."""
    plan = Plan()
    rendered = render(account, settings)
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
    if idp is None and account.client_secret is None:
        raise InvalidInput(f"account {account.id!r} has no identity provider yet: a client secret is required")

    ref = _OrgRef(api, account.id, org["id"] if org else None)

    # 1. organization
    if org is None:
        plan.add(Change("create", "organization", account.id, account=account.id,
                        fields=_org_fields(None, rendered.organization),
                        apply=lambda: _create_or_update_org(api, ref, rendered.organization)))
    else:
        changes = diff(org, rendered.organization)
        if changes:
            plan.add(Change("update", "organization", account.id, account=account.id, fields=changes,
                            apply=lambda: _create_or_update_org(api, ref, rendered.organization)))

    # 2. identity provider (mappers hash is written by step 4 once mappers are in place)
    desired_idp = rendered.identity_provider
    if idp is None:
        plan.add(Change("create", "identity-provider", alias, account=account.id,
                        fields=_idp_fields(None, desired_idp),
                        apply=lambda: _create_or_update_idp(api, alias, desired_idp)))
    else:
        changes = _idp_changes(idp, desired_idp)
        if changes:
            plan.add(Change("update", "identity-provider", alias, account=account.id, fields=changes,
                            apply=lambda: _create_or_update_idp(api, alias, desired_idp)))

    # 3. link IdP -> organization
    linked_to = (idp or {}).get("organizationId")
    if idp is None or org is None or linked_to != org.get("id"):
        plan.add(Change("create", "organization-link", f"{account.id} <- {alias}", account=account.id,
                        fields=[FieldChange("organizationId", linked_to, account.id)],
                        apply=lambda: _link(api, ref.get(), alias)))

    # 4. mappers, as the IdP has them now: the plan's one request per account (see above)
    current_hash = (idp or {}).get("config", {}).get(MAPPERS_HASH_KEY)
    existing = api.idp_mappers(alias) if idp is not None else []
    mapper_changes = _mapper_changes(mapper_actions(existing, rendered.mappers))
    if not mapper_changes and current_hash != rendered.mappers_hash:
        mapper_changes = [FieldChange(MAPPERS_HASH_KEY, current_hash, rendered.mappers_hash)]  # a create's last step
    if mapper_changes:
        plan.add(Change("update" if idp is not None else "create", "idp-mappers", alias, account=account.id,
                        fields=mapper_changes, apply=lambda: _sync_mappers(api, alias, rendered)))

    # 5. the daemon's copy of the secret, in the same run as Keycloak's
    daemon = plan_daemon_secret(settings, account)
    if daemon is not None:
        plan.add(daemon)
    return plan


def plan_daemon_secret(settings: Settings, account: Account) -> Change | None:
    """Hand the account's secret to apsis-sync (``APSIS_SSO_SYNC_SECRETS_DIR``) when its
    file is missing or holds another secret. Keycloak masks an IdP's secret on read, so
    whoever sets one is the only one who can; a plan that knows the secret (create,
    rotate-secret, a file with a secret reference) also repairs a missing or stale copy."""
    directory = settings.sync_secrets_dir
    if directory is None or account.client_secret is None:
        return None
    try:
        current = secret_files.read(directory, account.id)
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise InvalidInput(f"cannot read apsis-sync's secret file {secret_files.path_for(directory, account.id)}: "
                           f"{reason}") from None
    wanted = account.client_secret
    if current is not None and hmac.compare_digest(current.get_secret_value().encode(),
                                                   wanted.get_secret_value().encode()):
        return None
    path = secret_files.path_for(directory, account.id)
    return Change("create" if current is None else "update", DAEMON_SECRET, account.id, account=account.id,
                  fields=[FieldChange("secret", "(set)" if current is not None else None, "(new)", secret=True)],
                  note=f"for apsis-sync: {path}",
                  apply=lambda: _write_daemon_secret(directory, account.id, wanted))


def _write_daemon_secret(directory: Path, account_id: str, secret: SecretStr) -> Path:
    try:
        return secret_files.write(directory, account_id, secret)
    except OSError as exc:
        raise ApsisError(
            f"writing the secret of {account_id} to {directory} failed ({exc.strerror}); "
            f"store it with `apsis-sync secret set {account_id}`"
        ) from None


def writes_secret(plan: Plan) -> set[str]:
    """Accounts whose IdP secret the plan sets (a new IdP, or a changed secret): the ones
    whose secret is proved with Entra before the first change."""
    return {
        c.account for c in plan.changes
        if c.account and c.kind == "identity-provider" and c.action != "delete"
        and (c.action == "create" or any(f.path == "config.clientSecret" for f in c.fields))
    }


def daemon_secret_files(plan: Plan) -> list[str]:
    """Accounts whose apsis-sync secret file the plan writes."""
    return [c.name for c in plan.changes if c.kind == DAEMON_SECRET and c.action != "delete"]


def warn_unsent_secrets(settings: Settings, plan: Plan) -> None:
    """Without ``APSIS_SSO_SYNC_SECRETS_DIR`` a secret set in Keycloak reaches apsis-sync
    only by hand: the plan says so, naming the accounts, rather than let their first sync
    fail."""
    accounts = sorted(writes_secret(plan))
    if settings.sync_secrets_dir is None and accounts:
        plan.warnings.append(f"APSIS_SSO_SYNC_SECRETS_DIR is not set: hand the new secret of {', '.join(accounts)} "
                             "to apsis-sync with `apsis-sync secret set ACCOUNT`")


def plan_accounts(
    api: KeycloakRepository,
    settings: Settings,
    desired: list[Account],
    *,
    prune: bool = False,
    snapshot: Snapshot | None = None,
) -> Plan:
    """Converge many accounts; with ``prune``, delete managed accounts absent from ``desired``."""
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
    snapshot = snapshot or Snapshot.load(api)
    plan = Plan()
    if prune:
        # Deletes go first: a desired account may take over a domain of a pruned one.
        for alias in sorted(set(snapshot.managed()) - seen):
            plan.extend(plan_delete(api, alias, snapshot, secrets_dir=settings.sync_secrets_dir))
    view = _without_pruned(snapshot, seen if prune else None)
    for account in desired:
        plan.extend(plan_account(api, settings, account, view))
    return plan


def _without_pruned(snapshot: Snapshot, keep: set[str] | None) -> Snapshot:
    """Domains of accounts about to be pruned are free for the desired ones."""
    if keep is None:
        return snapshot
    orgs = {a: o for a, o in snapshot.orgs.items() if a in keep or not is_managed(o)}
    return Snapshot(orgs=orgs, idps=snapshot.idps)


def plan_delete(
    api: KeycloakRepository, account_id: str, snapshot: Snapshot | None = None, *, secrets_dir: Path | None = None
) -> Plan:
    """Remove an account's SSO: its IdP (and with it every link), its organization and,
    with ``secrets_dir``, apsis-sync's copy of its secret.

    Members are unmanaged, so deleting the organization never deletes a user. A secret file
    left behind by an earlier delete is removed too, so a rerun finishes the job.
    """
    plan = Plan()
    org = snapshot.orgs.get(account_id) if snapshot else api.organization_by_alias(account_id)
    alias = idp_alias(account_id)
    idp = snapshot.idps.get(alias) if snapshot else api.identity_provider(alias)
    secret_file = secret_files.path_for(secrets_dir, account_id) if secrets_dir is not None else None
    if secret_file is not None and not secret_file.exists():
        secret_file = None
    if org is None and idp is None and secret_file is None:
        raise NotFound(f"no account {account_id!r}")
    if org is not None and not is_managed(org):
        raise Conflict(f"organization {account_id!r} is not managed by apsis-sso; leaving it alone")
    if idp is not None and not idp_is_managed(idp):
        raise Conflict(f"identity provider {alias!r} is not managed by apsis-sso; leaving it alone")
    if idp is not None:
        plan.add(Change("delete", "identity-provider", alias, account=account_id,
                        apply=lambda: api.delete_identity_provider(alias)))
    if org is not None:
        org_id = org["id"]
        plan.add(Change("delete", "organization", account_id, account=account_id,
                        note="members are kept as realm users",
                        apply=lambda: api.delete_organization(org_id)))
    if secret_file is not None:
        path = secret_file
        plan.add(Change("delete", DAEMON_SECRET, account_id, account=account_id, note=f"for apsis-sync: {path}",
                        apply=lambda: path.unlink(missing_ok=True)))
    return plan


# -- steps -------------------------------------------------------------------------------


def _org_fields(current: dict[str, Any] | None, rendered: dict[str, Any]) -> list[FieldChange]:
    return diff(current, {k: v for k, v in rendered.items() if k in {"name", "domains", "attributes"}})


class _OrgRef:
    """The organization's id as the apply steps learn it: from the snapshot, from the
    create's Location header, or (only when both are unknown) from a lookup by alias,
    so applying a plan over many accounts never lists every organization per account."""

    def __init__(self, api: KeycloakRepository, account_id: str, org_id: str | None) -> None:
        self.api = api
        self.account_id = account_id
        self.id = org_id

    def get(self) -> str:
        if self.id is None:
            found = self.api.organization_by_alias(self.account_id)
            if found is None:
                raise NotFound(f"organization {self.account_id!r} disappeared during apply")
            self.id = str(found["id"])
        return self.id


def _create_or_update_org(api: KeycloakRepository, ref: _OrgRef, rendered: dict[str, Any]) -> None:
    current = api.organization(ref.id) if ref.id else None
    if current is None:
        try:
            ref.id = api.create_organization(rendered)
            return
        except Conflict:
            # Created meanwhile (another run)? Then update ours; any other clash stands.
            current = api.organization_by_alias(ref.account_id)
            if current is None or not is_managed(current):
                raise
            ref.id = str(current["id"])
    body = merge(current, rendered)
    body["domains"] = rendered["domains"]
    api.update_organization(current["id"], body)


def _idp_changes(current: dict[str, Any], desired: dict[str, Any]) -> list[FieldChange]:
    want = {k: v for k, v in desired.items() if k not in {"firstBrokerLoginFlowAlias", "postBrokerLoginFlowAlias"}}
    want["config"] = {k: v for k, v in desired["config"].items() if k != "clientSecret"}
    have = dict(current)
    changes = diff(have, want)
    for key in ("firstBrokerLoginFlowAlias", "postBrokerLoginFlowAlias"):
        if current.get(key) != desired.get(key):
            changes.append(FieldChange(key, current.get(key), desired.get(key)))
    if "clientSecret" in desired["config"]:
        fingerprint_changed = any(c.path == f"config.{SECRET_FINGERPRINT_KEY}" for c in changes)
        changes = [c for c in changes if c.path != f"config.{SECRET_FINGERPRINT_KEY}"]
        if fingerprint_changed:
            changes.append(FieldChange("config.clientSecret", "(set)", "(new)", secret=True))
    return changes


def _idp_fields(current: dict[str, Any] | None, desired: dict[str, Any]) -> list[FieldChange]:
    shown = {k: v for k, v in desired.items() if k in {"enabled", "hideOnLogin", "displayName"}}
    shown["config"] = {k: v for k, v in desired["config"].items()
                       if k in {"issuer", "clientId", "clientSecret", "defaultScope"}}
    return diff(current, shown)


def _create_or_update_idp(api: KeycloakRepository, alias: str, desired: dict[str, Any]) -> None:
    current = api.identity_provider(alias)
    if current is None:
        api.create_identity_provider(desired)
        return
    # A PUT replaces the whole representation: start from what is there (its masked
    # secret is kept by Keycloak) and overlay what we own.
    api.update_identity_provider(alias, merge(current, desired))


def _link(api: KeycloakRepository, org_id: str, alias: str) -> None:
    current = api.identity_provider(alias)
    if current is not None and current.get("organizationId") == org_id:
        return
    if current is not None and current.get("organizationId"):
        api.unlink_organization_idp(current["organizationId"], alias)
    api.link_organization_idp(org_id, alias)


MapperAction = Literal["create", "update", "recreate", "delete"]


@dataclass(frozen=True)
class MapperStep:
    """One step that makes an IdP's mappers exactly the template's, matched by name."""

    action: MapperAction
    name: str
    desired: dict[str, Any] | None = None
    current: dict[str, Any] | None = None

    def field_changes(self) -> list[FieldChange]:
        prefix = f"mapper[{self.name}]."
        if self.action == "delete":
            return [FieldChange(f"mapper[{self.name}]", _mapper_summary(self.current), None)]
        assert self.desired is not None
        return diff(self.current, self.desired, prefix=prefix)


def mapper_actions(existing: list[dict[str, Any]], desired: list[dict[str, Any]]) -> list[MapperStep]:
    """What turns ``existing`` into ``desired``: the template owns the IdP's whole mapper
    list, so a mapper it does not name (added by hand, or renamed) is deleted, and one whose
    type changed is deleted and created again (Keycloak cannot change a mapper's type)."""
    wanted = {m["name"]: m for m in desired}
    kept: dict[str, dict[str, Any]] = {}
    steps: list[MapperStep] = []
    for mapper in existing:
        name = str(mapper.get("name"))
        if name in wanted and name not in kept:
            kept[name] = mapper
        else:
            steps.append(MapperStep("delete", name, current=mapper))
    for name, mapper in wanted.items():
        have = kept.get(name)
        if have is None:
            steps.append(MapperStep("create", name, desired=mapper))
        elif have.get("identityProviderMapper") != mapper.get("identityProviderMapper"):
            steps.append(MapperStep("recreate", name, desired=mapper, current=have))
        elif diff(have, mapper):
            steps.append(MapperStep("update", name, desired=mapper, current=have))
    return steps


def _mapper_summary(mapper: dict[str, Any] | None) -> dict[str, Any] | None:
    if mapper is None:
        return None
    return {"identityProviderMapper": mapper.get("identityProviderMapper"), "config": mapper.get("config", {})}


def _mapper_changes(steps: list[MapperStep]) -> list[FieldChange]:
    return [change for step in steps for change in step.field_changes()]


def _sync_mappers(api: KeycloakRepository, alias: str, rendered: Rendered) -> None:
    for step in mapper_actions(api.idp_mappers(alias), rendered.mappers):
        body = {**(step.desired or {}), "identityProviderAlias": alias}
        if step.action in ("delete", "recreate"):
            assert step.current is not None
            api.delete_idp_mapper(alias, str(step.current["id"]))
        if step.action in ("create", "recreate"):
            api.create_idp_mapper(alias, body)
        elif step.action == "update":
            assert step.current is not None
            api.update_idp_mapper(alias, str(step.current["id"]), merge(step.current, body))
    current = api.identity_provider(alias)
    if current is None:
        raise NotFound(f"identity provider {alias!r} disappeared during apply")
    current.setdefault("config", {})[MAPPERS_HASH_KEY] = rendered.mappers_hash
    api.update_identity_provider(alias, current)
