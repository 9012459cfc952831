"""Plan and apply accounts: organization + Entra identity provider + mappers.

Planning reads Keycloak in bulk (all organizations, all identity providers: a few paged
listings however many accounts there are) into a ``Snapshot``, then compares each desired
account with it. Mappers are compared through a hash kept in the IdP's config and only
listed when that hash differs, so a no-change plan costs no request per account.

Every step of a create is its own change and every change re-reads what it depends on,
so a create interrupted midway is completed by running the same command again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from provisioning import stages, templates
from provisioning.errors import Conflict, InvalidInput, NotFound
from provisioning.keycloak_api import KeycloakApi
from provisioning.model import MANAGED_BY, Account, ItContact, idp_alias, secret_fingerprint, secret_hint
from provisioning.plan import Change, FieldChange, Plan, diff, merge
from provisioning.settings import Settings

ATTR = "apsis."
HASH_KEY = "apsis.mappersHash"
FINGERPRINT_KEY = "apsis.secretFingerprint"


@dataclass
class Snapshot:
    """What Keycloak holds now, read in bulk."""

    orgs: dict[str, dict[str, Any]] = field(default_factory=dict)
    idps: dict[str, dict[str, Any]] = field(default_factory=dict)
    _owners: dict[str, str] | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def load(cls, api: KeycloakApi) -> "Snapshot":
        return cls(
            orgs={o["alias"]: o for o in api.organizations()},
            idps={i["alias"]: i for i in api.identity_providers()},
        )

    @classmethod
    def for_account(
        cls, api: KeycloakApi, account_id: str, domains: tuple[str, ...] = (), name: str | None = None
    ) -> "Snapshot":
        """Just what one account's plan needs: its organization, its IdP, the owners of its
        domains (one search per domain) and of its name (one search)."""
        orgs: dict[str, dict[str, Any]] = {}
        own = api.organization_by_alias(account_id)
        if own is not None:
            orgs[own["alias"]] = own
        for domain in domains:
            for org in api.call("GET", "organizations", params={"search": domain, "exact": "true",
                                                                "briefRepresentation": "false", "max": 50}):
                orgs.setdefault(org["alias"], org)
        if name is not None:
            for org in api.call("GET", "organizations", params={"search": name, "exact": "true",
                                                                "briefRepresentation": "false", "max": 50}):
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


def is_managed(org: dict[str, Any]) -> bool:
    return MANAGED_BY in org.get("attributes", {}).get("apsis.managedBy", [])


def idp_is_managed(idp: dict[str, Any]) -> bool:
    return bool(idp.get("config", {}).get("apsis.managedBy") == MANAGED_BY)


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
        org["attributes"].pop("apsis.secretHint", None)
    org["attributes"] = {k: v for k, v in org["attributes"].items() if v not in ([""], "")}
    idp = merge(templates.render_file(settings.templates_dir, "entra-idp.json", values),
                stages.identity_provider_settings(account.stage))
    if account.client_secret:
        idp["config"][FINGERPRINT_KEY] = secret_fingerprint(account.client_secret.get_secret_value())
    else:
        idp["config"].pop("clientSecret", None)
    mappers = templates.render_file(settings.templates_dir, "entra-idp-mappers.json", values)
    return Rendered(org, idp, mappers)


def account_from_keycloak(org: dict[str, Any], idp: dict[str, Any] | None) -> Account:
    """Read an account back from its organization (and IdP), as the CLI shows it."""
    attrs = org.get("attributes", {})

    def one(key: str, default: str = "") -> str:
        values = attrs.get(key) or [default]
        return values[0]

    expires = one("apsis.secretExpires", "1970-01-01")
    return Account(
        id=org["alias"],
        name=org.get("name", org["alias"]),
        tenant_id=one("apsis.tenantId"),
        client_id=one("apsis.clientId") or (idp or {}).get("config", {}).get("clientId", ""),
        domains=tuple(d["name"] for d in org.get("domains", [])),
        secret_expires=date.fromisoformat(expires),
        it_contact=ItContact(one("apsis.itContactName"), one("apsis.itContactEmail")),
        stage=one("apsis.stage", "pilot"),  # type: ignore[arg-type]
        pilot=tuple(attrs.get("apsis.pilot", [])),
    )


def plan_account(api: KeycloakApi, settings: Settings, account: Account, snapshot: Snapshot) -> Plan:
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

    # 4. mappers
    current_hash = (idp or {}).get("config", {}).get(HASH_KEY)
    if current_hash != rendered.mappers_hash:
        existing = api.idp_mappers(alias) if idp is not None else []
        mapper_changes = _mapper_changes(existing, rendered.mappers)
        plan.add(Change("update" if idp is not None else "create", "idp-mappers", alias, account=account.id,
                        fields=mapper_changes or [FieldChange(HASH_KEY, current_hash, rendered.mappers_hash)],
                        apply=lambda: _sync_mappers(api, alias, rendered)))
    return plan


def plan_accounts(
    api: KeycloakApi,
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
            plan.extend(plan_delete(api, alias, snapshot))
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


def plan_delete(api: KeycloakApi, account_id: str, snapshot: Snapshot | None = None) -> Plan:
    """Remove an account's SSO: its IdP (and with it every link) and its organization.

    Members are unmanaged, so deleting the organization never deletes a user.
    """
    plan = Plan()
    org = snapshot.orgs.get(account_id) if snapshot else api.organization_by_alias(account_id)
    alias = idp_alias(account_id)
    idp = snapshot.idps.get(alias) if snapshot else api.identity_provider(alias)
    if org is None and idp is None:
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
    return plan


# -- steps -------------------------------------------------------------------------------


def _org_fields(current: dict[str, Any] | None, rendered: dict[str, Any]) -> list[FieldChange]:
    return diff(current, {k: v for k, v in rendered.items() if k in {"name", "domains", "attributes"}})


class _OrgRef:
    """The organization's id as the apply steps learn it: from the snapshot, from the
    create's Location header, or (only when both are unknown) from a lookup by alias,
    so applying a plan over many accounts never lists every organization per account."""

    def __init__(self, api: KeycloakApi, account_id: str, org_id: str | None) -> None:
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


def _create_or_update_org(api: KeycloakApi, ref: _OrgRef, rendered: dict[str, Any]) -> None:
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
        fingerprint_changed = any(c.path == f"config.{FINGERPRINT_KEY}" for c in changes)
        changes = [c for c in changes if c.path != f"config.{FINGERPRINT_KEY}"]
        if fingerprint_changed:
            changes.append(FieldChange("config.clientSecret", "(set)", "(new)", secret=True))
    return changes


def _idp_fields(current: dict[str, Any] | None, desired: dict[str, Any]) -> list[FieldChange]:
    shown = {k: v for k, v in desired.items() if k in {"enabled", "hideOnLogin", "displayName"}}
    shown["config"] = {k: v for k, v in desired["config"].items()
                       if k in {"issuer", "clientId", "clientSecret", "defaultScope"}}
    return diff(current, shown)


def _create_or_update_idp(api: KeycloakApi, alias: str, desired: dict[str, Any]) -> None:
    current = api.identity_provider(alias)
    if current is None:
        api.create_identity_provider(desired)
        return
    # A PUT replaces the whole representation: start from what is there (its masked
    # secret is kept by Keycloak) and overlay what we own.
    api.update_identity_provider(alias, merge(current, desired))


def _link(api: KeycloakApi, org_id: str, alias: str) -> None:
    current = api.identity_provider(alias)
    if current is not None and current.get("organizationId") == org_id:
        return
    if current is not None and current.get("organizationId"):
        api.unlink_organization_idp(current["organizationId"], alias)
    api.link_organization_idp(org_id, alias)


def _mapper_changes(existing: list[dict[str, Any]], desired: list[dict[str, Any]]) -> list[FieldChange]:
    by_name = {m["name"]: m for m in existing}
    changes: list[FieldChange] = []
    for mapper in desired:
        changes.extend(diff(by_name.get(mapper["name"]), mapper, prefix=f"mapper[{mapper['name']}]."))
    return changes


def _sync_mappers(api: KeycloakApi, alias: str, rendered: Rendered) -> None:
    by_name = {m["name"]: m for m in api.idp_mappers(alias)}
    for mapper in rendered.mappers:
        body = {**mapper, "identityProviderAlias": alias}
        have = by_name.get(mapper["name"])
        if have is None:
            api.create_idp_mapper(alias, body)
        elif diff(have, mapper):
            api.update_idp_mapper(alias, have["id"], merge(have, body))
    current = api.identity_provider(alias)
    if current is None:
        raise NotFound(f"identity provider {alias!r} disappeared during apply")
    current.setdefault("config", {})[HASH_KEY] = rendered.mappers_hash
    api.update_identity_provider(alias, current)
