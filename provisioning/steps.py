"""The writes behind an account plan's changes: each takes the repository when applied.

Every step re-reads what it depends on and is safe to repeat, so a plan interrupted midway
is completed by planning and applying again (``account create`` run twice, ``apply -f``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import SecretStr

from apsis_core import secret_files
from apsis_core.account import is_managed
from apsis_core.contract import MAPPERS_HASH_KEY
from apsis_core.errors import ApsisError, Conflict, NotFound
from apsis_core.keycloak import KeycloakRepository
from provisioning.mappers import mapper_actions
from provisioning.plan import merge
from provisioning.render import Rendered


class OrgRef:
    """The organization's id as the apply steps learn it: from the snapshot, from the
    create's Location header, or (only when both are unknown) from a lookup by alias,
    so applying a plan over many accounts never lists every organization per account."""

    def __init__(self, account_id: str, org_id: str | None) -> None:
        self.account_id = account_id
        self.id = org_id

    def get(self, api: KeycloakRepository) -> str:
        if self.id is None:
            found = api.organization_by_alias(self.account_id)
            if found is None:
                raise NotFound(f"organization {self.account_id!r} disappeared during apply")
            self.id = str(found["id"])
        return self.id


def create_or_update_org(api: KeycloakRepository, ref: OrgRef, rendered: dict[str, Any]) -> None:
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


def create_or_update_idp(api: KeycloakRepository, alias: str, desired: dict[str, Any]) -> None:
    current = api.identity_provider(alias)
    if current is None:
        api.create_identity_provider(desired)
        return
    # A PUT replaces the whole representation: start from what is there (its masked
    # secret is kept by Keycloak) and overlay what we own.
    api.update_identity_provider(alias, merge(current, desired))


def link(api: KeycloakRepository, ref: OrgRef, alias: str) -> None:
    org_id = ref.get(api)
    current = api.identity_provider(alias)
    if current is not None and current.get("organizationId") == org_id:
        return
    if current is not None and current.get("organizationId"):
        api.unlink_organization_idp(current["organizationId"], alias)
    api.link_organization_idp(org_id, alias)


def sync_mappers(api: KeycloakRepository, alias: str, rendered: Rendered) -> None:
    """Make the IdP's mappers the template's, then record their hash: a create's last step."""
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


def write_daemon_secret(directory: Path, account_id: str, secret: SecretStr) -> Path:
    try:
        return secret_files.write(directory, account_id, secret)
    except OSError as exc:
        raise ApsisError(
            f"writing the secret of {account_id} to {directory} failed ({exc.strerror}); "
            f"store it with `apsis-sync secret set {account_id}`"
        ) from None
