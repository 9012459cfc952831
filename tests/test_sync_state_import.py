"""``apsis-sync state import``: a SQLite state into the shared PostgreSQL state, all at once,
idempotent, never over what a replica wrote since; bad input is one line and exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from devenv.postgres import PostgresServer
from sync.state import KnownUser, StateStore

REPO = Path(__file__).resolve().parent.parent


def cli(*args: str, url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APSIS_SSO_", "APSIS_SYNC_"))}
    if url is not None:
        env["APSIS_SYNC_STATE_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "sync", "state", "import", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def old_state(path: Path) -> None:
    state = StateStore(path)
    state.stage("acme", [KnownUser("o1", "a@x", None, True, None), KnownUser("o2", "b@x", None, True, None)])
    state.record_run("acme", ok=True, status="ok", errors=[], deactivated=1, delta_link="delta-1")
    state.mark_notice("acme", "expiry-30", "expiry")
    state.record_deactivation("acme", "u2", "o2", "b@x", "disabled", "deleted in Entra")
    state.intend_deactivation("acme", "u3", {"user_id": "u3"})  # in flight when the daemon stopped
    state.record_applications("acme", "2026-12-01", [], "k")
    state.stage("acme", [KnownUser("o9", None, None, None, None)])  # a round cut short: not copied
    state.close()


def test_import_copies_everything_once_and_keeps_what_the_target_has(tmp_path: Path, postgres: PostgresServer) -> None:
    source = tmp_path / "state.sqlite3"
    old_state(source)
    url = postgres.create_database("imported_state")

    dry = cli(str(source), "--dry-run", "-o", "json", url=url)
    assert dry.returncode == 0, dry.stderr
    assert {t["table"]: t["added"] for t in json.loads(dry.stdout)["tables"]}["entra_users"] == 2
    shared = StateStore(url)
    assert shared.accounts() == []  # the dry run wrote nothing

    first = cli(str(source), "-o", "json", url=url)
    assert first.returncode == 0, first.stderr
    doc = json.loads(first.stdout)
    assert postgres.password not in first.stdout + first.stderr
    assert {t["table"]: (t["read"], t["added"]) for t in doc["tables"]} == {
        "accounts": (1, 1),
        "entra_users": (2, 2),
        "notices": (1, 1),
        "deactivations": (1, 1),
        "pending_deactivations": (1, 1),
    }
    assert shared.delta_link("acme") == "delta-1"
    assert set(shared.known_users_among("acme", ["o1", "o2", "o9"])) == {"o1", "o2"}
    assert shared.notice_sent("acme", "expiry-30")
    assert shared.deactivation("acme", "u2") is not None and shared.account("acme").deactivated_total == 1
    assert [a["user_id"] for a in shared.pending_deactivations("acme")] == ["u3"]
    assert shared.applications_read("acme")[0] == "2026-12-01"

    # a replica moves on; importing again changes nothing and does not go back
    shared.record_run("acme", ok=True, status="ok", errors=[], deactivated=0, delta_link="delta-2")
    again = cli(str(source), url=url)
    assert again.returncode == 0, again.stderr
    assert "accounts: added 0 of 1 rows (1 already there)" in again.stdout
    assert shared.delta_link("acme") == "delta-2"
    shared.close()


def test_import_refuses_bad_input_in_one_line(tmp_path: Path, postgres: PostgresServer) -> None:
    source = tmp_path / "state.sqlite3"
    old_state(source)
    no_target = cli(str(source))
    assert no_target.returncode == 2 and "APSIS_SYNC_STATE_URL" in no_target.stderr
    assert len(no_target.stderr.strip().splitlines()) == 1
    missing = cli(str(tmp_path / "nope.sqlite3"), url=postgres.url())
    assert missing.returncode == 2 and "no SQLite state at" in missing.stderr
    not_pg = cli(str(source), url="mysql://u:pw@h/db")
    assert not_pg.returncode == 2 and "pw" not in not_pg.stderr.replace("postgresql", "")
