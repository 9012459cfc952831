"""Progress of long plan/apply runs on stderr: a live counter on a terminal, lines otherwise.

On a terminal, a phase (reading Keycloak, proving secrets, applying) is one rich progress
line with the count, the rate and the time left, and only what went wrong is printed above
it; when stderr is a pipe or a file (CI, logs), each item that says what it was is one plain
line with its count, items that do not (the pages of a listing) a count line at most every
``PLAIN_EVERY`` seconds, and each phase ends with one summary line with its duration and rate. Both implement
``provisioning.progress.Progress``; stdout (plans, ``-o json``) is never touched.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

from apsis_core.output import console, esc, status

if TYPE_CHECKING:
    from rich.progress import Progress as RichProgress
    from rich.progress import TaskID

    from provisioning.progress import Progress

PROBLEM_WORDS = ("failed", "NOT ")
PLAIN_EVERY = 5.0  # seconds between count lines of a phase whose items say nothing


def for_stderr() -> Progress:
    """The live display on a terminal, plain lines otherwise."""
    return LiveProgress() if sys.stderr.isatty() else PlainProgress()


class _Phase:
    def __init__(self) -> None:
        self.label = ""
        self.unit = ""
        self.total: int | None = 0
        self.count = 0
        self.started = 0.0

    def begin(self, label: str, total: int | None, unit: str) -> None:
        self.label, self.total, self.unit, self.count, self.started = label, total, unit, 0, time.monotonic()

    def rate(self) -> str:
        seconds = time.monotonic() - self.started
        return f"{self.count / seconds:.0f} {self.unit}/s" if seconds > 0 and self.count else ""

    def summary(self, summary: str | None) -> str:
        seconds = time.monotonic() - self.started
        rate = self.rate()
        of = f" of {self.total}" if self.total is not None else ""
        return f"{summary or self.label}: {self.count}{of} {self.unit} in {seconds:.1f} s{', ' + rate if rate else ''}"


class PlainProgress(_Phase):
    """A line per item that says what it was (``[12/1000] ...``), a count line now and then
    for items that do not, a summary line per phase."""

    def __init__(self) -> None:
        super().__init__()
        self._shown = 0.0

    def begin(self, label: str, total: int | None, unit: str) -> None:
        super().begin(label, total, unit)
        self._shown = self.started
        status(f"{label}: {total} {unit}" if total is not None else label)

    def advance(self, line: str | None = None, items: int = 1) -> None:
        self.count += items
        if line:
            status(f"  {self._counter()} {line}")
        elif time.monotonic() - self._shown >= PLAIN_EVERY:
            status(f"  {self._counter()} {self.rate()}")
        else:
            return
        self._shown = time.monotonic()

    def _counter(self) -> str:
        if self.total is None:
            return f"[{self.count}]"
        return f"[{self.count:>{len(str(self.total))}}/{self.total}]"

    def end(self, summary: str | None = None) -> None:
        status(self.summary(summary))


class LiveProgress(_Phase):
    """One live rich line per phase: label, bar, count, rate, time left."""

    def __init__(self) -> None:
        super().__init__()
        self._live: RichProgress | None = None
        self._task: TaskID | None = None

    def begin(self, label: str, total: int | None, unit: str) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        super().begin(label, total, unit)
        self._live = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            console=console(stderr=True),
            transient=True,
        )
        self._live.start()
        self._task = self._live.add_task(esc(label), total=total, rate="")

    def advance(self, line: str | None = None, items: int = 1) -> None:
        self.count += items
        if self._live is None or self._task is None:
            return
        if line and any(word in line for word in PROBLEM_WORDS):
            self._live.console.print(esc(line))
        self._live.update(self._task, advance=items, rate=self.rate())

    def end(self, summary: str | None = None) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        status(self.summary(summary))
