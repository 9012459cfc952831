"""The package layers, checked on the source: the shared core imports none of the
applications; provisioning, sync (and the coming portal) never import one another; nothing
shipped imports the development package or the tests; planners and the daemon never reach
past the Keycloak repository."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
APPLICATIONS = ("provisioning", "sync", "portal")
SHIPPED = ("apsis_core", *APPLICATIONS)


def imports(package: str) -> dict[str, set[str]]:
    """Top-level packages each module of ``package`` imports (also inside functions)."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


@pytest.mark.parametrize("package", [p for p in SHIPPED if (ROOT / p).is_dir()])
def test_shipped_code_never_imports_development_or_test_code(package):
    offenders = {m: n & {"devenv", "tests", "bench"} for m, n in imports(package).items() if n & {"devenv", "tests", "bench"}}
    assert offenders == {}


def test_the_core_imports_no_application():
    offenders = {m: n & set(APPLICATIONS) for m, n in imports("apsis_core").items() if n & set(APPLICATIONS)}
    assert offenders == {}


@pytest.mark.parametrize("package", [p for p in APPLICATIONS if (ROOT / p).is_dir()])
def test_no_application_reaches_into_another(package):
    others = set(APPLICATIONS) - {package}
    offenders = {m: n & others for m, n in imports(package).items() if n & others}
    assert offenders == {}


def test_only_the_repository_talks_to_keycloak_directly():
    """python-keycloak is the repository's business: everything else asks it by name."""
    offenders = [m for package in SHIPPED if (ROOT / package).is_dir()
                 for m, n in imports(package).items() if "keycloak" in n and not m.startswith("apsis_core/keycloak/")]
    assert offenders == []
