"""`apsis-sync` as an operator runs it: a real process with its configuration in the
environment, against the real Keycloak and the emulator."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from provisioning.keycloak_api import KeycloakApi
from sync.accounts import Shard, discover, shard_of
from tests.entra_emulator import EntraEmulator
from tests.helpers import AccountFactory
from tests.sync_fixtures import SyncHarness, entra_oid, free_port

REPO = Path(__file__).resolve().parent.parent


def cli(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sync", *args], cwd=REPO, env=env, input=stdin,
                          capture_output=True, text=True, timeout=180)


def one_line_error(proc: subprocess.CompletedProcess[str], code: int, text: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert text in lines[0], lines[0]


def test_help_lists_the_commands_and_exit_codes() -> None:
    out = subprocess.run([sys.executable, "-m", "sync", "--help"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    for word in ("run", "status", "release", "secret", "Exit codes"):
        assert word in out.stdout
    run_help = subprocess.run([sys.executable, "-m", "sync", "run", "--help"], cwd=REPO, capture_output=True, text=True,
                              timeout=60).stdout
    for option in ("--once", "--dry-run", "--account", "--shard", "--interval", "--output"):
        assert option in run_help


def test_run_once_dry_run_and_json_output(
    accounts: AccountFactory, api: KeycloakApi, emulator: EntraEmulator, sync: Callable[..., SyncHarness],
) -> None:
    acct = accounts.create(stage="live")
    email, user_id = acct.person("wes")
    harness = sync()
    harness.add(acct)
    env = harness.env()
    first = cli(env, "run", "--once", "--account", acct.id)
    assert first.returncode == 0, first.stderr
    assert f"{acct.id}: ok (full, no_delta_link)" in first.stdout

    emulator.delete_user(acct.tenant_id, entra_oid(emulator, acct, email))
    dry = cli(env, "run", "--dry-run", "--account", acct.id)
    assert dry.returncode == 0, dry.stderr
    assert f"would: disable {email} and end its sessions: entra user deleted ({acct.id}), matched by email" in dry.stdout
    assert api.user(user_id)["enabled"] is True  # type: ignore[index]

    real = cli(env, "--log-format", "json", "run", "--once", "--account", acct.id, "--output", "json")
    assert real.returncode == 0, real.stderr
    report = json.loads(real.stdout)
    (result,) = report["accounts"]
    assert result["status"] == "ok" and result["applied"] == 1
    assert result["actions"][0]["user_id"] == user_id and result["actions"][0]["reason"] == f"entra user deleted ({acct.id})"
    logs = [json.loads(line) for line in real.stderr.splitlines()]
    assert {"ts", "level", "logger", "msg"} <= set(logs[0])
    deactivated = [line for line in logs if line["msg"] == "deactivated user"]
    assert deactivated and deactivated[0]["account"] == acct.id and deactivated[0]["user_id"] == user_id
    assert api.user(user_id)["enabled"] is False  # type: ignore[index]
    for secret in (acct.secret, env["APSIS_SSO_KEYCLOAK_CLIENT_SECRET"]):
        assert secret not in first.stdout + first.stderr + dry.stdout + dry.stderr + real.stdout + real.stderr


def test_status_table_and_json(accounts: AccountFactory, sync: Callable[..., SyncHarness]) -> None:
    acct = accounts.create(stage="live", secret_days=45)
    harness = sync()
    harness.add(acct)
    harness.cycle(acct)
    env = harness.env()
    table = cli(dict(env, COLUMNS="250"), "status")
    assert table.returncode == 0, table.stderr
    assert acct.id in table.stdout and "45 days (recorded)" in table.stdout
    rows = json.loads(cli(env, "status", "--account", acct.id, "--output", "json").stdout)
    assert rows[0]["account"] == acct.id
    assert rows[0]["days_until_secret_expiry"] == 45
    assert rows[0]["last_success"] and rows[0]["last_status"] == "ok" and rows[0]["quarantined"] is False
    assert rows[0]["deactivated_total"] == 0 and rows[0]["last_errors"] == []
    one_line_error(cli(env, "status", "--account", "nobody"), 2, "account 'nobody' has no sync state")
    missing = dict(env, APSIS_SYNC_STATE_PATH=str(Path(env["APSIS_SYNC_DATA_DIR"]) / "none.sqlite3"))
    one_line_error(cli(missing, "status"), 2, "no state database at")


def test_bad_input_and_unreachable_keycloak_give_one_line_and_exit_2(
    accounts: AccountFactory, sync: Callable[..., SyncHarness],
) -> None:
    acct = accounts.create(stage="live")
    harness = sync()
    env = harness.env()
    one_line_error(cli(env, "run", "--once", "--shard", "2/2"), 2, "invalid shard '2/2'")
    one_line_error(cli(env, "run", "--once", "--shard", "x"), 2, "invalid shard 'x': expected i/n")
    one_line_error(cli(env, "run", "--once", "--account", "no-such-account"), 2, "no account 'no-such-account'")
    one_line_error(cli(env, "run", "--once", "--account", "Bad_Id"), 2, "invalid account id 'Bad_Id'")
    one_line_error(cli(dict(env, APSIS_SYNC_INTERVAL_SECONDS="soon"), "run", "--once"), 2,
                   "invalid setting APSIS_SYNC_INTERVAL_SECONDS")
    down = dict(env, APSIS_SSO_KEYCLOAK_URL=f"http://127.0.0.1:{free_port()}")
    one_line_error(cli(down, "run", "--once", "--account", acct.id), 2, "is unreachable")
    wrong = dict(env, APSIS_SSO_KEYCLOAK_CLIENT_SECRET="not-the-secret")
    proc = cli(wrong, "run", "--once", "--account", acct.id)
    one_line_error(proc, 2, "rejected the credentials")
    assert "not-the-secret" not in proc.stderr


def test_run_once_exits_1_when_an_account_failed(accounts: AccountFactory, sync: Callable[..., SyncHarness]) -> None:
    ok = accounts.create(stage="live")
    no_secret = accounts.create(stage="live")
    harness = sync()
    harness.add(ok)
    proc = cli(harness.env(), "run", "--once", "--account", ok.id, "--account", no_secret.id)
    assert proc.returncode == 1, proc.stderr
    assert f"{ok.id}: ok" in proc.stdout and f"{no_secret.id}: error" in proc.stdout


def test_secret_set_stores_the_secret_privately_and_checks_its_hint(
    accounts: AccountFactory, sync: Callable[..., SyncHarness],
) -> None:
    acct = accounts.create(stage="live")
    harness = sync()
    env = harness.env()
    stored = cli(env, "secret", "set", acct.id, "--from-file", "-", stdin=acct.secret + "\n")
    assert stored.returncode == 0, stored.stderr
    path = Path(env["APSIS_SYNC_SECRETS_DIR"]) / acct.id
    assert path.read_text().strip() == acct.secret
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert acct.secret not in stored.stdout + stored.stderr
    other = "Q" * 40
    one_line_error(cli(env, "secret", "set", acct.id, "--from-file", "-", stdin=other), 2, "does not match")
    assert path.read_text().strip() == acct.secret
    # The daemon uses it.
    assert harness.cycle(acct).result(acct.id).status == "ok"


def test_shards_split_the_accounts_stably_and_completely(
    accounts: AccountFactory, api: KeycloakApi, sync: Callable[..., SyncHarness],
) -> None:
    made = [accounts.create(stage="live") for _ in range(6)]
    ids = [a.id for a in made]
    seen: list[str] = []
    for i in range(3):
        part = [a.id for a in discover(api, ids, Shard(i, 3))]
        assert all(shard_of(a, 3) == i for a in part)
        seen += part
    assert sorted(seen) == sorted(ids)
    # Stable across processes (unlike hash()) and pinned: changing the scheme would move
    # accounts between replicas during a rolling update.
    probe = "from sync.accounts import shard_of; print([shard_of(a, 4) for a in ('acme', 'globex', 'initech')])"
    for seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=dict(os.environ, PYTHONHASHSEED=seed),
                             capture_output=True, text=True, timeout=60).stdout.strip()
        assert out == str([shard_of(a, 4) for a in ("acme", "globex", "initech")])
    assert shard_of("acme", 4) == 0

    harness = sync()
    harness.add(*made)
    shard = Shard(0, 2)
    args = ["run", "--once", "--shard", "0/2", "--output", "json"]
    for account_id in ids:
        args += ["--account", account_id]
    proc = cli(harness.env(), *args)
    assert proc.returncode == 0, proc.stderr
    synced = sorted(r["account"] for r in json.loads(proc.stdout)["accounts"])
    assert synced == sorted(a for a in ids if shard.owns(a))


def test_the_loop_serves_metrics_and_stops_gracefully_on_sigterm(
    accounts: AccountFactory, sync: Callable[..., SyncHarness],
) -> None:
    acct = accounts.create(stage="live", secret_days=10)
    harness = sync()
    harness.add(acct)
    port = free_port()
    env = dict(harness.env(), APSIS_SYNC_METRICS_PORT=str(port), APSIS_SYNC_METRICS_ADDRESS="127.0.0.1")
    proc = subprocess.Popen([sys.executable, "-m", "sync", "--log-format", "json", "run", "--account", acct.id,
                             "--interval", "3600"], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 120
        while True:
            line = proc.stderr.readline()
            assert line, "the daemon exited early"
            if json.loads(line)["msg"] == "cycle done":
                break
            assert time.monotonic() < deadline
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        assert 'apsis_sync_account_runs_total{outcome="ok"} 1.0' in metrics
        assert 'apsis_sync_secrets_expiring_accounts{window="14"} 1.0' in metrics
        assert 'apsis_sync_cycles_total{outcome="ok"} 1.0' in metrics
        assert acct.id not in metrics  # no per-account (or per-user) labels
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        rest = [json.loads(line) for line in proc.stderr.read().splitlines()]
        assert [r["msg"] for r in rest][-2:] == ["stopping", "daemon stopped"]
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.parametrize("spec", ["1/0", "-1/2", "3", "a/b", ""])
def test_shard_specs_are_validated(spec: str) -> None:
    from provisioning.errors import InvalidInput

    with pytest.raises(InvalidInput):
        Shard.parse(spec)
