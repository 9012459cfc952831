"""The daemon's logs: ``apsis_core.logs`` (shared with the portal) under the ``apsis_sync`` logger."""

from __future__ import annotations

from typing import TextIO

from apsis_core import logs
from apsis_core.logs import LEVELS

__all__ = ["LEVELS", "configure"]


def configure(fmt: str = "text", level: str = "INFO", stream: TextIO | None = None) -> None:
    logs.configure(fmt, level, stream, logger="apsis_sync")
