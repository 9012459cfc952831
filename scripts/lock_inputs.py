"""The fingerprint of everything the lock files are resolved from: the dependencies,
extras, build requirements and Python range of pyproject.toml and devenv/pyproject.toml.

scripts/lock.sh writes it into each lock file's first line; scripts/bootstrap.sh and
tests/unit/test_dependencies.py compare, so a dependency added without refreshing the
locks is caught before anything is installed from stale pins.

    python3 scripts/lock_inputs.py          # prints the fingerprint
    python3 scripts/lock_inputs.py --check  # exit 1 (and say what to run) if a lock is stale
"""

from __future__ import annotations

import hashlib
import json
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECTS = (ROOT / "pyproject.toml", ROOT / "devenv" / "pyproject.toml")
LOCKS = ("runtime.lock", "dev.lock", "build.lock")
PREFIX = "# lock inputs sha256: "


def fingerprint() -> str:
    inputs = []
    for path in PROJECTS:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        project = data.get("project", {})
        inputs.append(
            {
                "requires-python": project.get("requires-python"),
                "dependencies": project.get("dependencies", []),
                "optional-dependencies": project.get("optional-dependencies", {}),
                "build-system": data.get("build-system", {}).get("requires", []),
            }
        )
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def stale_locks() -> list[str]:
    """The lock files that are missing or were resolved from other inputs."""
    want = PREFIX + fingerprint()
    stale = []
    for name in LOCKS:
        path = ROOT / "requirements" / name
        first = path.read_text(encoding="utf-8").split("\n", 1)[0] if path.exists() else ""
        if first != want:
            stale.append(f"requirements/{name}")
    return stale


def main() -> int:
    if sys.argv[1:] == ["--check"]:
        stale = stale_locks()
        if stale:
            print(
                f"error: {', '.join(stale)} do not match the dependencies in pyproject.toml: "
                "run scripts/lock.sh and commit the result",
                file=sys.stderr,
            )
            return 1
        return 0
    print(fingerprint())
    return 0


if __name__ == "__main__":
    sys.exit(main())
