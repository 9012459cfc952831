"""Reads the planners rely on, against the real Keycloak: one request each, whatever the realm holds."""

from __future__ import annotations

from apsis_core.keycloak import KeycloakRepository


def test_an_organization_is_found_by_its_alias_in_one_request_managed_or_not(api: KeycloakRepository, unique: str):
    hand = f"{unique}-hand"
    org_id = api.create_organization(
        {
            "name": f"Hand {unique}",
            "alias": hand,
            "domains": [{"name": f"{hand}.example"}],
            "attributes": {"alias": ["not-this-one"]},
        }
    )
    try:
        before = api.requests
        found = api.organization_by_alias(hand)
        assert found is not None and found["id"] == org_id and api.requests == before + 1
        assert api.organization_by_alias("not-this-one") is None  # the key means the alias, not an attribute
        assert api.organization_by_alias(f"{unique}-none") is None and api.requests == before + 3
    finally:
        api.delete_organization(str(org_id))
