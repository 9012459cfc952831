"""The package layers, checked on the source:

* the shared core (``apsis_core``) imports none of the applications;
* ``provisioning`` and ``sync`` never import each other, nor ``portal``;
* ``portal`` may call ``provisioning``'s public library functions (the same path as
  ``apsis-sso account create`` and ``rotate-secret``), never its CLI (``provisioning.cli``) or
  a private name (``_x``), and never ``sync``;
* nothing shipped imports the development package or the tests;
* planners, the daemon and the portal never reach past the Keycloak repository.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
APPLICATIONS = ("provisioning", "sync", "portal")
SHIPPED = ("apsis_core", *APPLICATIONS)
MAY_IMPORT = {"portal": {"provisioning"}}
"""Which application may use which other one's library (nothing else may)."""


def _modules(package: str) -> dict[str, ast.Module]:
    return {str(p.relative_to(ROOT)): ast.parse(p.read_text(), str(p)) for p in sorted((ROOT / package).rglob("*.py"))}


def imported_modules(tree: ast.Module) -> set[str]:
    """Dotted modules a module imports (also inside functions)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def imports(package: str) -> dict[str, set[str]]:
    """Top-level packages each module of ``package`` imports."""
    return {m: {name.split(".")[0] for name in imported_modules(tree)} for m, tree in _modules(package).items()}


@pytest.mark.parametrize("package", [p for p in SHIPPED if (ROOT / p).is_dir()])
def test_shipped_code_never_imports_development_or_test_code(package):
    offenders = {
        m: n & {"devenv", "tests", "bench"} for m, n in imports(package).items() if n & {"devenv", "tests", "bench"}
    }
    assert offenders == {}


@pytest.mark.parametrize("package", ["bench", "devenv"])
def test_benchmarks_and_development_tools_import_no_test_module(package):
    offenders = {m: n & {"tests"} for m, n in imports(package).items() if "tests" in n}
    assert offenders == {}


def test_the_core_imports_no_application():
    offenders = {m: n & set(APPLICATIONS) for m, n in imports("apsis_core").items() if n & set(APPLICATIONS)}
    assert offenders == {}


@pytest.mark.parametrize("package", APPLICATIONS)
def test_no_application_reaches_into_another(package):
    others = set(APPLICATIONS) - {package} - MAY_IMPORT.get(package, set())
    offenders = {m: n & others for m, n in imports(package).items() if n & others}
    assert offenders == {}


def test_the_portal_uses_only_provisionings_public_library():
    offenders: list[str] = []
    for module, tree in _modules("portal").items():
        names = imported_modules(tree)
        offenders += [
            f"{module}: {n}"
            for n in names
            if n.startswith("provisioning.cli")
            or (n.startswith("provisioning.") and any(part.startswith("_") for part in n.split(".")))
        ]
        # `from provisioning import onboarding` then `onboarding._private`: a private helper too.
        bound = {
            alias.asname or alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == "provisioning"
            for alias in node.names
        }
        offenders += [
            f"{module}: {node.value.id}.{node.attr}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in bound
            and node.attr.startswith("_")
        ]
    assert offenders == []
    assert any(
        "provisioning.onboarding" in imported_modules(t) or "provisioning" in imported_modules(t)
        for t in _modules("portal").values()
    ), "the portal calls the library's onboarding (this test sees it)"


def test_only_the_repository_talks_to_keycloak_directly():
    """python-keycloak is the repository's business: everything else asks it by name."""
    offenders = [
        m
        for package in SHIPPED
        if (ROOT / package).is_dir()
        for m, n in imports(package).items()
        if "keycloak" in n and not m.startswith("apsis_core/keycloak/")
    ]
    assert offenders == []
