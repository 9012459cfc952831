"""Progress on stderr: plain counted lines when piped, a live counter on a terminal."""

from __future__ import annotations

import io
import sys

import pytest

from provisioning.cli import progress as cli_progress

pytestmark = pytest.mark.unit


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run_phase(progress: cli_progress._Phase) -> None:
    progress.begin("applying", 3, "accounts")
    progress.advance("a0: create organization")
    progress.advance("a1: create organization; failed at create identity-provider: boom")
    progress.advance("a2: create organization")
    progress.end("applied 3 of 4 changes")


def test_piped_stderr_gets_one_counted_line_per_item_and_a_summary(monkeypatch, capsys):
    assert isinstance(cli_progress.for_stderr(), cli_progress.PlainProgress)  # pytest's stderr is no terminal
    run_phase(cli_progress.PlainProgress())
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert lines[:4] == [
        "applying: 3 accounts",
        "  [1/3] a0: create organization",
        "  [2/3] a1: create organization; failed at create identity-provider: boom",
        "  [3/3] a2: create organization",
    ]
    assert lines[4].startswith("applied 3 of 4 changes: 3 of 3 accounts in ") and "accounts/s" in lines[4]


def test_a_terminal_gets_a_live_counter_and_only_the_problems(monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    live = cli_progress.for_stderr()
    assert isinstance(live, cli_progress.LiveProgress)
    run_phase(live)
    shown = terminal.getvalue()
    assert "failed at create identity-provider: boom" in shown
    assert "a0: create organization" not in shown  # successes only move the counter
    assert "applied 3 of 4 changes: 3 of 3 accounts in " in shown


def test_a_listing_without_a_known_total_is_counted_in_pages_and_shown_every_few_seconds(monkeypatch, capsys):
    clock = [100.0]
    monkeypatch.setattr(cli_progress.time, "monotonic", lambda: clock[0])
    plain = cli_progress.PlainProgress()
    plain.begin("reading identity providers", None, "identity providers")
    plain.advance(items=200)  # a page, at once: no line
    clock[0] += cli_progress.PLAIN_EVERY
    plain.advance(items=200)  # a page, seconds later: a count line with the rate
    clock[0] += 1
    plain.advance(items=50)
    plain.end()
    assert capsys.readouterr().err.splitlines() == [
        "reading identity providers",
        "  [400] 80 identity providers/s",
        "reading identity providers: 450 identity providers in 6.0 s, 75 identity providers/s",
    ]


def test_a_terminal_counts_pages_towards_a_total_or_without_one(monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    live = cli_progress.for_stderr()
    live.begin("reading organizations", 450, "organizations")
    live.advance(items=200)
    assert live._live is not None and live._task is not None
    assert live._live.tasks[0].completed == 200 and live._live.tasks[0].total == 450
    live.advance(items=250)
    live.end()
    live.begin("reading identity providers", None, "identity providers")
    live.advance(items=200)
    assert live._live.tasks[0].total is None and live._live.tasks[0].completed == 200
    live.end()
    shown = terminal.getvalue()
    assert "reading organizations: 450 of 450 organizations in " in shown
    assert "reading identity providers: 200 identity providers in " in shown
