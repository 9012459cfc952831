"""Which steps make an identity provider's mappers exactly the template's: a pure decision."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, cast

from apsis_core.keycloak.port import IdentityProviderMapper
from provisioning.plan import FieldChange, diff

MapperAction = Literal["create", "update", "recreate", "delete"]


@dataclass(frozen=True)
class MapperStep:
    """One step that makes an IdP's mappers exactly the template's, matched by name."""

    action: MapperAction
    name: str
    desired: IdentityProviderMapper | None = None
    current: IdentityProviderMapper | None = None

    def field_changes(self) -> list[FieldChange]:
        prefix = f"mapper[{self.name}]."
        if self.action == "delete":
            return [FieldChange(f"mapper[{self.name}]", _summary(self.current), None)]
        assert self.desired is not None
        return diff(self.current, self.desired, prefix=prefix)


def mapper_actions(existing: list[IdentityProviderMapper], desired: list[IdentityProviderMapper]) -> list[MapperStep]:
    """What turns ``existing`` into ``desired``: the template owns the IdP's whole mapper
    list, so a mapper it does not name (added by hand, or renamed) is deleted, and one whose
    type changed is deleted and created again (Keycloak cannot change a mapper's type)."""
    wanted = {m["name"]: m for m in desired}
    kept: dict[str, IdentityProviderMapper] = {}
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


def _summary(mapper: IdentityProviderMapper | None) -> IdentityProviderMapper | None:
    if mapper is None:
        return None
    summary = {"identityProviderMapper": mapper.get("identityProviderMapper"), "config": mapper.get("config", {})}
    return cast(IdentityProviderMapper, summary)


def field_changes(steps: list[MapperStep]) -> list[FieldChange]:
    """The steps as the plan shows them."""
    return [change for step in steps for change in step.field_changes()]
