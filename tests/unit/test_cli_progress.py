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
    assert lines[:4] == ["applying: 3 accounts", "  [1/3] a0: create organization",
                         "  [2/3] a1: create organization; failed at create identity-provider: boom",
                         "  [3/3] a2: create organization"]
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
