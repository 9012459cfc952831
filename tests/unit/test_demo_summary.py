"""The demo's summary off a terminal (a pipe, CI's log) never wraps a path or URL."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from devenv.demo import print_summary

pytestmark = pytest.mark.unit
PATH = "/home/operator/.local/state/apsis-sso/demo-2026-12-07/keycloak/admin-password"
URL = "http://127.0.0.1:41234/realms/apsis/protocol/openid-connect/auth?client_id=apsis-one&scope=openid"


def test_off_a_terminal_each_row_is_one_whole_line_at_80_columns():
    sink = io.StringIO()
    print_summary(
        Console(file=sink, width=80, force_terminal=False),
        "demo finished in 93s",
        [
            ("Keycloak", f"http://127.0.0.1:8080 (admin console: user admin, password in {PATH})"),
            ("Login [bold]page[/]", URL),
        ],
    )
    lines = sink.getvalue().splitlines()
    assert lines == [
        "demo finished in 93s",
        f"Keycloak: http://127.0.0.1:8080 (admin console: user admin, password in {PATH})",
        f"Login [bold]page[/]: {URL}",  # shown as is, not read as markup
    ]


def test_on_a_terminal_it_is_a_table():
    sink = io.StringIO()
    print_summary(Console(file=sink, width=200, force_terminal=True, color_system=None), "t", [("what", "ok")])
    assert "┃" in sink.getvalue() or "│" in sink.getvalue()
