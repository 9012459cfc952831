"""The Keycloak port is the one interface to Keycloak: the repository, the daemon's pool and
the unit tests' in-memory fake all declare it, and their methods have its signatures exactly
(names, kinds, defaults and annotations), so the fake cannot drift from what the real
repository offers unnoticed. mypy checks the same (tests/unit/test_code_checks.py); this
test says which method differs, without mypy."""

from __future__ import annotations

import inspect

import pytest

from apsis_core.keycloak import KeycloakPort, KeycloakRepository
from sync.runtime import PooledKeycloak
from tests.keycloak_memory import MemoryKeycloak

pytestmark = pytest.mark.unit

IMPLEMENTATIONS = [KeycloakRepository, PooledKeycloak, MemoryKeycloak]


def port_methods() -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in vars(KeycloakPort).items()
        if inspect.isfunction(member) and not name.startswith("_")
    }


def test_the_port_names_what_the_accounts_code_asks_of_keycloak():
    methods = port_methods()
    assert {"organization", "identity_provider", "idp_mappers", "user", "idp_links", "members"} <= set(methods)
    assert not {"update_realm", "create_client", "flows"} & set(methods), "realm administration is not the port's"


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS, ids=lambda c: c.__name__)
def test_each_implementation_declares_the_port_and_has_its_signatures(implementation: type):
    assert KeycloakPort in implementation.__mro__, "declares the port"
    differ = {}
    for name, wanted in port_methods().items():
        found = getattr(implementation, name, None)
        if found is None or found is getattr(KeycloakPort, name):
            differ[name] = "missing"
            continue
        have = inspect.signature(found)
        # A method may return its own class where the port returns the port (``worker``).
        returns_ok = have.return_annotation in (wanted.return_annotation, implementation.__name__)
        if have.parameters != wanted.parameters or not returns_ok:
            differ[name] = f"{have} instead of {wanted}"
    assert differ == {}
    assert isinstance(implementation.who, property) or "who" in vars(implementation)


def test_a_signature_that_drifts_is_caught():
    class Drifted(MemoryKeycloak):
        def organization(self, org_id: str, brief: bool = True):  # type: ignore[override]
            return None

    wanted = port_methods()["organization"]
    assert inspect.signature(Drifted.organization) != wanted
