"""One way to write a moment: RFC 3339 in UTC with a ``Z``, to the second
(``2026-12-07T22:36:48Z``), in stored attributes and in every JSON output of the CLIs.

A naive datetime is taken to be UTC already; an aware one is converted. Dates (no time of
day) stay ``YYYY-MM-DD``, RFC 3339's full-date.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def utc(moment: datetime | None = None) -> datetime:
    """``moment`` (default: now) in UTC, whole seconds."""
    found = moment or datetime.now(UTC)
    if found.tzinfo is None:
        found = found.replace(tzinfo=UTC)
    return found.astimezone(UTC).replace(microsecond=0)


def to_text(moment: datetime) -> str:
    return utc(moment).strftime(FORMAT)


def from_text(text: str) -> datetime:
    """The moment ``to_text`` wrote; ValueError for anything else."""
    return datetime.strptime(text, FORMAT).replace(tzinfo=UTC)


def json_value(value: object) -> str:
    """``json.dumps(default=...)``: moments as ``to_text``, dates as full-dates, the rest as text."""
    if isinstance(value, datetime):
        return to_text(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)
