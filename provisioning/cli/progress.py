"""Progress of long plan/apply runs on stderr: a live counter on a terminal, lines otherwise.

On a terminal, a phase (reading Keycloak, proving secrets, applying) is one rich progress
line with the count, the rate and the time left, and only what went wrong is printed above
it; when stderr is a pipe or a file (CI, logs), each item is one plain line with its count,
and each phase ends with one summary line with its duration and rate. Both implement
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


def for_stderr() -> Progress:
    """The live display on a terminal, plain lines otherwise."""
    return LiveProgress() if sys.stderr.isatty() else PlainProgress()


class _Phase:
    def __init__(self) -> None:
        self.label = ""
        self.unit = ""
        self.total = 0
        self.count = 0
        self.started = 0.0

    def begin(self, label: str, total: int, unit: str) -> None:
        self.label, self.total, self.unit, self.count, self.started = label, total, unit, 0, time.monotonic()

    def summary(self, summary: str | None) -> str:
        seconds = time.monotonic() - self.started
        rate = f", {self.count / seconds:.0f} {self.unit}/s" if seconds > 0 and self.count else ""
        return f"{summary or self.label}: {self.count} of {self.total} {self.unit} in {seconds:.1f} s{rate}"


class PlainProgress(_Phase):
    """A line per item (``[12/1000] ...``), a summary line per phase."""

    def begin(self, label: str, total: int, unit: str) -> None:
        super().begin(label, total, unit)
        status(f"{label}: {total} {unit}")

    def advance(self, line: str | None = None) -> None:
        self.count += 1
        if line:
            width = len(str(self.total))
            status(f"  [{self.count:>{width}}/{self.total}] {line}")

    def end(self, summary: str | None = None) -> None:
        status(self.summary(summary))


class LiveProgress(_Phase):
    """One live rich line per phase: label, bar, count, rate, time left."""

    def __init__(self) -> None:
        super().__init__()
        self._live: RichProgress | None = None
        self._task: TaskID | None = None

    def begin(self, label: str, total: int, unit: str) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        super().begin(label, total, unit)
        self._live = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                              TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
                              console=console(stderr=True), transient=True)
        self._live.start()
        self._task = self._live.add_task(esc(label), total=total, rate="")

    def advance(self, line: str | None = None) -> None:
        self.count += 1
        if self._live is None or self._task is None:
            return
        if line and any(word in line for word in PROBLEM_WORDS):
            self._live.console.print(esc(line))
        seconds = time.monotonic() - self.started
        rate = f"{self.count / seconds:.0f} {self.unit}/s" if seconds > 0 else ""
        self._live.update(self._task, advance=1, rate=rate)

    def end(self, summary: str | None = None) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        status(self.summary(summary))
