"""Two ``apsis-sync run --once`` processes on one state (a SQLite file, a PostgreSQL database), against the emulator and the
real Keycloak, both having planned the same deactivations before either carries one out:
each deleted user is deactivated once — counted once in ``deactivated_total``, in the two
processes' reports (and so their metrics) and logged once as ``deactivated user``."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from apsis_core.keycloak import KeycloakRepository
from devenv.accounts import AccountFactory
from devenv.entra_emulator import EntraEmulator
from tests.sync_fixtures import SmtpServer, SyncHarness, entra_oid

REPO = Path(__file__).resolve().parent.parent

# `apsis-sync` with a rendezvous before deprovisioning applies its plan: each process marks
# that it has planned, then waits (up to a minute) until both have, so both plans hold the
# same users. Everything else is the real command.
RENDEZVOUS = """
import os, sys, time
from pathlib import Path
from sync import deprovision
here, real = Path(sys.argv[1]), deprovision.apply
def apply(*args, **kwargs):
    (here / str(os.getpid())).touch()
    deadline = time.monotonic() + 60
    while len(list(here.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    return real(*args, **kwargs)
deprovision.apply = apply
sys.argv = ["apsis-sync", *sys.argv[2:]]
from sync.cli import main
main()
"""


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_processes_on_one_state_count_each_deactivation_once(
    backend: str,
    accounts: AccountFactory,
    api: KeycloakRepository,
    emulator: EntraEmulator,
    sync: Callable[..., SyncHarness],
    smtp_server: SmtpServer,
    tmp_path: Path,
) -> None:
    acct = accounts.create(stage="live")
    people = dict(acct.person(f"p{i}") for i in range(6))
    gone = list(people)[:4]
    harness = sync(guard_max_percent=100, backend=backend)
    harness.add(acct)
    assert harness.cycle(acct).ok  # the delta link: the next rounds are incremental
    for email in gone:
        emulator.delete_user(acct.tenant_id, entra_oid(emulator, acct, email))
    mails_before = len(smtp_server.messages())

    meeting = tmp_path / "rendezvous"
    meeting.mkdir()
    env = dict(harness.env(), APSIS_SYNC_GUARD_MAX_PERCENT="100", APSIS_SYNC_LOG_FORMAT="json")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RENDEZVOUS, str(meeting), "run", "--once", "--account", acct.id, "-o", "json"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outputs]
    assert len(list(meeting.iterdir())) == 2  # both planned before either applied

    reports = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    results = [next(r for r in report["accounts"] if r["id"] == acct.id) for report in reports]
    assert sorted(len(r["actions"]) for r in results) == [4, 4]  # the same plan twice
    assert sum(r["applied"] for r in results) == 4
    logged = [line for _, err in outputs for line in err.splitlines() if "deactivated user" in line]
    assert len(logged) == 4, logged
    assert harness.state.account(acct.id).deactivated_total == 4
    status = subprocess.run(
        [sys.executable, "-m", "sync", "status", "--account", acct.id, "-o", "json"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert '"deactivated_total": 4' in status.stdout
    for email, user_id in people.items():
        user = api.user(user_id)
        assert user is not None and user["enabled"] is (email not in gone)
    assert len(smtp_server.messages()) == mails_before  # a deactivation sends no mail of its own
