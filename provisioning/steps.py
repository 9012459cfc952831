"""The writes behind an account plan's changes: each takes the repository when applied.

Every step re-reads what it depends on and is safe to repeat, so a plan interrupted midway
is completed by planning and applying again (``account create`` run twice, ``apply -f``).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from apsis_core import secret_files
from apsis_core.account import idp_is_managed, is_managed
from apsis_core.errors import ApsisError, Conflict, NotFound
from apsis_core.keycloak import KeycloakPort
from apsis_core.keycloak.port import IdentityProvider, IdentityProviderMapper, Organization
from provisioning.mappers import mapper_actions
from provisioning.plan import merge
from provisioning.render import Rendered


class SetupInProgress(Conflict):
    """Another run is setting the account up (or did, a moment ago): nothing was changed."""


class OrgRef:
    """The organization's id as the apply steps learn it: from the snapshot, from the
    create's Location header, or (only when both are unknown) from a lookup by alias,
    so applying a plan over many accounts never lists every organization per account."""

    def __init__(self, account_id: str, org_id: str | None) -> None:
        self.account_id = account_id
        self.id = org_id

    def get(self, api: KeycloakPort) -> str:
        if self.id is None:
            found = api.organization_by_alias(self.account_id)
            if found is None:
                raise NotFound(f"organization {self.account_id!r} disappeared during apply")
            self.id = str(found["id"])
        return self.id


def create_or_update_org(api: KeycloakPort, ref: OrgRef, rendered: Organization) -> None:
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


class IdpRef:
    """What the apply steps of one account know about its identity provider: whether this
    apply created it. A provider created a moment ago has no mappers and no organization,
    so the later steps of a create write without reading first (a create is four writes:
    organization, provider, mapper, link); a provider that already existed is re-read."""

    def __init__(self, alias: str) -> None:
        self.alias = alias
        self.created = False


def create_idp(api: KeycloakPort, ref: IdpRef, desired: IdentityProvider, *, exclusive: bool = False) -> None:
    """The planned-new provider in one POST (its mappers hash included, no link yet: the link
    is the create's last step, so a provider half-made refuses every login); one created
    meanwhile by another run is converged instead — unless ``exclusive`` (a setup, whose
    first write this is): then that other run set the account up, and this one stops."""
    try:
        api.create_identity_provider(desired)
    except Conflict:
        current = api.identity_provider(ref.alias)
        if exclusive and current is not None:
            raise SetupInProgress(
                f"identity provider {ref.alias} was created meanwhile by another setup of the "
                "account; nothing was changed"
            ) from None
        if current is None or not idp_is_managed(current):
            raise
        api.update_identity_provider(ref.alias, merge(current, desired))
        return
    ref.created = True


def update_idp(api: KeycloakPort, alias: str, desired: IdentityProvider) -> None:
    current = api.identity_provider(alias)
    if current is None:
        raise NotFound(f"identity provider {alias!r} disappeared during apply")
    # A PUT replaces the whole representation: start from what is there (its masked
    # secret is kept by Keycloak) and overlay what we own.
    api.update_identity_provider(alias, merge(current, desired))


def link(api: KeycloakPort, ref: OrgRef, idp: IdpRef) -> None:
    org_id = ref.get(api)
    if idp.created:  # made by this apply, unlinked
        api.link_organization_idp(org_id, idp.alias)
        return
    current = api.identity_provider(idp.alias)
    if current is not None and current.get("organizationId") == org_id:
        return
    if current is not None and current.get("organizationId"):
        api.unlink_organization_idp(current["organizationId"], idp.alias)
    api.link_organization_idp(org_id, idp.alias)


def sync_mappers(api: KeycloakPort, idp: IdpRef, rendered: Rendered) -> None:
    """Make the IdP's mappers the template's (a provider this apply created has none)."""
    alias = idp.alias
    existing = [] if idp.created else api.idp_mappers(alias)
    for step in mapper_actions(existing, rendered.mappers):
        body: IdentityProviderMapper = {**(step.desired or {}), "identityProviderAlias": alias}
        if step.action in ("delete", "recreate"):
            assert step.current is not None
            api.delete_idp_mapper(alias, str(step.current["id"]))
        if step.action in ("create", "recreate"):
            api.create_idp_mapper(alias, body)
        elif step.action == "update":
            assert step.current is not None
            api.update_idp_mapper(alias, str(step.current["id"]), merge(step.current, body))


def write_daemon_secret(directory: Path, account_id: str, secret: SecretStr) -> Path:
    try:
        return secret_files.write(directory, account_id, secret)
    except OSError as exc:
        raise ApsisError(
            f"writing the secret of {account_id} to {directory} failed ({exc.strerror}); "
            f"store it with `apsis-sync secret set {account_id}`"
        ) from None
