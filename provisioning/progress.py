"""How long library work reports its progress: phases counted item by item.

A long ``plan``/``apply`` (thousands of accounts) reads Keycloak, proves secrets with Entra
and applies changes; each is a phase, of a known number of items where that can be known
up front (a listing of identity providers cannot: Keycloak has no count of them). The library reports
through ``Progress`` and never prints: the CLI shows a live counter with rate and ETA on
a terminal and plain lines otherwise (``provisioning.cli.progress``); tests and library
callers pass nothing and get ``SILENT``. Callers report from one thread, in the order the
items were planned (``InOrder`` puts completions from worker threads back in that order).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator
from contextlib import contextmanager
from typing import Generic, Protocol, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


class Progress(Protocol):
    def begin(self, label: str, total: int | None, unit: str) -> None:
        """A phase starts: ``total`` items of ``unit`` (e.g. 1000 accounts); None when the
        number is not known up front (then there is a count and a rate, no time left)."""

    def advance(self, line: str | None = None, items: int = 1) -> None:
        """``items`` more are done; ``line`` says what (shown where lines are shown)."""

    def end(self, summary: str | None = None) -> None:
        """The phase is over (also when it stopped early)."""


class _Silent:
    def begin(self, label: str, total: int | None, unit: str) -> None:
        pass

    def advance(self, line: str | None = None, items: int = 1) -> None:
        pass

    def end(self, summary: str | None = None) -> None:
        pass


SILENT: Progress = _Silent()


@contextmanager
def phase(progress: Progress, label: str, total: int | None, unit: str) -> Iterator[Progress]:
    """``progress`` between ``begin`` and ``end``: the phase ends also when the work fails
    (a live display stops before the error is printed)."""
    progress.begin(label, total, unit)
    try:
        yield progress
    finally:
        progress.end()


def counted(items: Iterable[T], progress: Progress, every: int) -> Iterator[T]:
    """``items`` as they come, reported ``every`` at a time (a listing's page) and the rest
    at the end, so a display costs nothing per item."""
    pending = 0
    for item in items:
        yield item
        pending += 1
        if pending == every:
            progress.advance(items=pending)
            pending = 0
    if pending:
        progress.advance(items=pending)


class InOrder(Generic[K]):
    """Reports items finished in any order in their planned order: an item is reported once
    it and every item planned before it are done, so output reads like a sequential run."""

    def __init__(self, keys: list[K], report: Callable[[K], None]) -> None:
        self._keys = keys
        self._report = report
        self._done: set[K] = set()
        self._next = 0

    def done(self, key: K) -> None:
        self._done.add(key)
        while self._next < len(self._keys) and self._keys[self._next] in self._done:
            self._report(self._keys[self._next])
            self._next += 1

    def flush(self) -> None:
        """Work stopped early: report what was done after the first item that was not."""
        for key in self._keys[self._next :]:
            if key in self._done:
                self._report(key)
        self._next = len(self._keys)
