"""Structured logs: one event per line, with fields, as text for people or JSON for shippers.

The daemon (``apsis_sync``) and the portal (``apsis_portal``) log the same way; each
configures its own logger name.

Callers log a short fixed message and put the variable parts in ``extra`` (account,
user_id, action...), so a log query can filter on fields instead of parsing sentences.
Third-party loggers are turned down except at DEBUG: azure-identity would otherwise print
multi-line token errors on its own. At DEBUG they speak, through our handler, with every
known secret scrubbed.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from apsis_core import redaction
from apsis_core.timestamps import to_text

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        doc.update(_fields(record))
        if record.exc_info and record.exc_info[0] is not None:
            doc["error_type"] = record.exc_info[0].__name__
            doc["traceback"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = to_text(datetime.fromtimestamp(record.created, UTC))
        parts = " ".join(f"{k}={_text(v)}" for k, v in _fields(record).items())
        line = f"{ts} {record.levelname:<7} {record.getMessage()}" + (f" {parts}" if parts else "")
        if record.exc_info and record.exc_info[0] is not None:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return json.dumps(text) if (" " in text or not text) else text


LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
THIRD_PARTY = ("azure", "httpx", "httpcore", "msal", "kiota_http", "kiota_authentication_azure", "msgraph", "urllib3")


class ScrubSecrets(logging.Filter):
    """Blanks every secret the process knows (account secrets read, the tooling secret) out of
    a record: a last line of defence for libraries we do not control at DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redaction.scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def configure(
    fmt: str = "text", level: str = "INFO", stream: TextIO | None = None, *, logger: str = "apsis_sync"
) -> None:
    """Our loggers (``logger`` and below) at ``level``. Third-party loggers are silenced unless ``level`` is DEBUG:
    then they log at DEBUG too, through the same handler and with secrets scrubbed, because
    a DEBUG run is how one finds out what Graph, Entra or the HTTP stack actually did."""
    level = level.upper()
    if level not in LEVELS:
        raise ValueError(f"log level {level!r} is not one of {', '.join(LEVELS)}")
    formatter = JsonFormatter() if fmt == "json" else TextFormatter()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    ours = logging.getLogger(logger)
    ours.handlers[:] = [handler]
    ours.setLevel(level)
    ours.propagate = False
    debug = level == "DEBUG"
    theirs = logging.StreamHandler(stream or sys.stderr)  # ours never log secrets; theirs are scrubbed
    theirs.setFormatter(formatter)
    theirs.addFilter(ScrubSecrets())
    for name in THIRD_PARTY:
        lib = logging.getLogger(name)
        lib.setLevel(logging.DEBUG if debug else logging.CRITICAL)
        lib.handlers[:] = [theirs] if debug else []
        lib.propagate = not debug
