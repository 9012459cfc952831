"""What the wheel ships, as pyproject.toml lists it: every package of the shipped code (the
list is explicit, so a new package must be added there), and the realm templates from their
one home, realm-templates/ at the top of the tree, as the data package
apsis_core.realm_templates. The built wheel itself is checked by the production lane
(tests/production/test_image_install.py)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from apsis_core.settings import TEMPLATES_DIR

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ("apsis_core", "provisioning", "sync", "portal")
TEMPLATES = (
    "realm.json",
    "organization.json",
    "entra-idp.json",
    "entra-idp-mappers.json",
    "okta-idp.json",
    "okta-idp-mappers.json",
)


def _setuptools() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def test_the_wheel_lists_every_package_of_the_shipped_code():
    in_tree = {
        ".".join(init.parent.relative_to(ROOT).parts) for top in SHIPPED for init in (ROOT / top).rglob("__init__.py")
    }
    assert set(_setuptools()["packages"]) == in_tree | {"apsis_core.realm_templates"}


def test_the_realm_templates_have_one_home_and_ship_from_it():
    config = _setuptools()
    assert config["package-dir"] == {"apsis_core.realm_templates": "realm-templates"}
    assert config["package-data"]["apsis_core.realm_templates"] == ["*.json"]
    assert sorted(p.name for p in (ROOT / "realm-templates").glob("*.json")) == sorted(TEMPLATES)
    assert not (ROOT / "apsis_core" / "realm_templates").exists(), "no second copy in the tree"
    assert TEMPLATES_DIR == ROOT / "realm-templates", "a checkout reads the templates where they are"
