"""What the code imports is what the projects declare, and the lock files match both.

A package that the shipped code imports but only gets through another dependency breaks
the day that dependency drops it; the image installs exactly requirements/runtime.lock, so
a declaration missing there is a crash in production, not in the tests' fuller venv.
"""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import re
import sys
import tomllib
from functools import cache
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import lock_inputs  # noqa: E402

FIRST_PARTY = {"apsis_core", "provisioning", "sync", "portal", "devenv", "tests", "bench", "lock_inputs"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_names(requirements: list[str]) -> set[str]:
    return {canonical(re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", r.strip()).group(0)) for r in requirements}  # type: ignore[union-attr]


def project(path: Path) -> dict:  # type: ignore[type-arg]
    return tomllib.loads(path.read_text())["project"]


MAIN = project(ROOT / "pyproject.toml")
DEVENV = project(ROOT / "devenv" / "pyproject.toml")
RUNTIME = requirement_names(MAIN["dependencies"])
TESTS = requirement_names(MAIN["optional-dependencies"]["test"])
DEVTOOLS = requirement_names(DEVENV["dependencies"])


def third_party_imports(package: str) -> dict[str, set[str]]:
    """Every module outside the standard library and this repository that ``package`` imports,
    with the files importing it."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in FIRST_PARTY:
                    found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


@cache
def _packages_distributions() -> dict[str, list[str]]:
    return dict(metadata.packages_distributions())


@cache
def _files_of(distribution: str) -> tuple[str, ...]:
    return tuple(str(f) for f in metadata.distribution(distribution).files or ())


def distributions_of(module: str) -> set[str]:
    """The installed distributions providing ``module`` (a namespace package such as
    ``azure`` is shared: the one whose files hold the submodule)."""
    top = module.split(".")[0]
    candidates = _packages_distributions().get(top, [])
    if len(candidates) > 1 and "." in module:
        prefix = "/".join(module.split(".")[:2])
        candidates = [d for d in candidates if any(f.startswith(prefix) for f in _files_of(d))] or candidates
    return {canonical(d) for d in candidates}


@pytest.mark.parametrize(
    "package,allowed",
    [
        ("apsis_core", RUNTIME),
        ("provisioning", RUNTIME),
        ("sync", RUNTIME),
        ("devenv", RUNTIME | DEVTOOLS),
        ("tests", RUNTIME | DEVTOOLS | TESTS),
    ],
)
def test_every_import_is_a_declared_dependency(package: str, allowed: set[str]) -> None:
    undeclared = {
        module: sorted(files)
        for module, files in third_party_imports(package).items()
        if not distributions_of(module) & allowed
    }
    assert undeclared == {}, "declare these in pyproject.toml (or devenv/pyproject.toml), then scripts/lock.sh"


def pins(lock: str) -> dict[str, str]:
    text = (ROOT / "requirements" / lock).read_text()
    return {canonical(m.group(1)): m.group(2) for m in re.finditer(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", text, re.M)}


def test_the_lock_files_were_resolved_from_the_current_declarations() -> None:
    assert lock_inputs.stale_locks() == [], "run scripts/lock.sh and commit requirements/"


def test_the_lock_files_pin_every_declaration_and_agree() -> None:
    runtime, dev, build = pins("runtime.lock"), pins("dev.lock"), pins("build.lock")
    assert set(runtime) >= RUNTIME
    assert set(dev) >= RUNTIME | TESTS | DEVTOOLS
    assert {
        canonical(r)
        for r in requirement_names(tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"])
    } <= set(build)
    for name, version in {**runtime, **build}.items():
        assert dev.get(name) == version, f"{name}: {version} in one lock, {dev.get(name)} in dev.lock"
    text = (ROOT / "requirements" / "runtime.lock").read_text()
    assert all("--hash=sha256:" in entry for entry in re.split(r"\n(?=[A-Za-z0-9])", text) if "==" in entry)
