"""Pure decisions of the provisioning side, without a server: which mapper steps make an
IdP's mappers the template's, and the input limits (Keycloak's column sizes)."""

from __future__ import annotations

from typing import Any

import pytest

from apsis_core import validation
from apsis_core.errors import InvalidInput
from provisioning.mappers import mapper_actions

pytestmark = pytest.mark.unit

OID = {
    "name": "oid",
    "identityProviderMapper": "apsis-entra-oid-mapper",
    "config": {"syncMode": "INHERIT", "tenantId": "t"},
}


def _have(**changes: Any) -> dict[str, Any]:
    return {"id": "m1", "identityProviderAlias": "entra-x", **OID, **changes}


def _steps(existing: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(s.action, s.name) for s in mapper_actions(existing, [OID])]


def test_mappers_as_the_template_has_them_need_no_step():
    # Keycloak adds keys of its own (id, alias, extra config): only what the template says counts.
    assert _steps([_have(config={**OID["config"], "extra": "kept"})]) == []


def test_a_missing_mapper_is_created_and_an_edited_one_updated():
    assert _steps([]) == [("create", "oid")]
    edited = mapper_actions([_have(config={"syncMode": "INHERIT", "tenantId": "other"})], [OID])
    assert [(s.action, [f.path for f in s.field_changes()]) for s in edited] == [
        ("update", ["mapper[oid].config.tenantId"])
    ]


def test_a_mapper_of_another_type_under_the_name_is_recreated():
    assert _steps([_have(identityProviderMapper="hardcoded-attribute-idp-mapper")]) == [("recreate", "oid")]


def test_mappers_the_template_does_not_name_and_duplicates_are_deleted():
    extra = {
        "id": "m2",
        "name": "grant admin",
        "identityProviderMapper": "oidc-hardcoded-role-idp-mapper",
        "config": {},
    }
    twin = _have(id="m3")
    assert _steps([_have(), extra, twin]) == [("delete", "grant admin"), ("delete", "oid")]
    deleted = mapper_actions([_have(), extra], [OID])[0]
    assert [(f.path, f.after) for f in deleted.field_changes()] == [("mapper[grant admin]", None)]


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("N" * 255, True),
        ("N" * 256, False),
        ("N" * 254 + "\N{GRINNING FACE}", False),  # 255 code points, 256 UTF-16 units (Java's count)
        ("  Acme AB  ", True),
        ("Acme\x00AB", False),
        ("Acme\nAB", False),
        ("   ", False),
    ],
)
def test_free_text_limits(value: str, ok: bool):
    if ok:
        assert validation.free_text(value, "name") == value.strip()
    else:
        with pytest.raises(InvalidInput):
            validation.free_text(value, "name")


def test_emails_stop_at_254_characters_and_errors_quote_values_short():
    local, host = "i" * 63, f"{'d' * 60}.{'e' * 60}.{'f' * 60}.example"
    assert len(validation.email(f"{local}@{host}")) == 254
    with pytest.raises(InvalidInput, match="longer than 254 characters"):
        validation.email(f"{local}i@{host}")
    with pytest.raises(InvalidInput) as refused:
        validation.domain("x" * 100_000)
    assert len(str(refused.value)) < 200 and "(100000 characters)" in str(refused.value)
