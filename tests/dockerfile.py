"""Reading the Dockerfile: its build stage, as the tests replay and check it."""

from __future__ import annotations

import re
from pathlib import Path

VENV_IN_IMAGE = "/opt/venv"


def build_stage(dockerfile: Path) -> list[tuple[str, str]]:
    """The first stage's COPY and RUN instructions, in order, as (instruction, arguments)."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    steps: list[tuple[str, str]] = []
    stages = 0
    for line in text.splitlines():
        word, _, rest = line.strip().partition(" ")
        if word == "FROM":
            stages += 1
            if stages == 2:
                break
        elif word in ("COPY", "RUN") and stages == 1:
            steps.append((word, rest.strip()))
    return steps
