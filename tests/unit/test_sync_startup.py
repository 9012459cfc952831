"""``apsis-sync --help`` and ``--version`` answer without loading pydantic or the Graph stack
(measured side by side with ``python -c pass`` in bench/startup.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

HEAVY = {
    "msgraph",
    "msgraph_core",
    "azure",
    "kiota_abstractions",
    "kiota_http",
    "httpx",
    "aiohttp",
    "pydantic",
    "pydantic_settings",
    "keycloak",
    "prometheus_client",
    "rich",
}


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["run", "--help"]])
def test_help_and_version_load_neither_pydantic_nor_the_graph_stack(args: list[str]) -> None:
    code = (
        "import sys\n"
        f"sys.argv = ['apsis-sync', *{args!r}]\n"
        "from sync.cli import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        f"heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({sorted(HEAVY)!r}))\n"
        "print('HEAVY', heavy, code, file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HEAVY [] 0" in done.stderr, done.stderr
    assert "apsis-sync" in done.stdout
