"""`apsis-sync` as an operator runs it: a real process with its configuration in the
environment, against the real Keycloak and the emulator."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from apsis_core.keycloak import KeycloakRepository
from devenv.accounts import AccountFactory
from devenv.entra_emulator import EntraEmulator
from provisioning import onboarding
from sync.accounts import Shard, discover, shard_of
from tests.sync_fixtures import SyncHarness, entra_oid, free_port

REPO = Path(__file__).resolve().parent.parent


def cli(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sync", *args],
        cwd=REPO,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
    )


def one_line_error(proc: subprocess.CompletedProcess[str], code: int, text: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert text in lines[0], lines[0]


def test_help_lists_the_commands_and_exit_codes() -> None:
    out = subprocess.run([sys.executable, "-m", "sync", "--help"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    for word in (
        "run",
        "status",
        "release",
        "secret",
        "Exit codes",
        "--env-file",
        "--version",
        "--log-level",
        "75 temporary failure",
    ):
        assert word in out.stdout
    run_help = subprocess.run(
        [sys.executable, "-m", "sync", "run", "--help"], cwd=REPO, capture_output=True, text=True, timeout=60
    ).stdout
    for option in ("--once", "--dry-run", "--account", "--shard", "--interval", "-o, --output [table|json]"):
        assert option in run_help
    version = subprocess.run(
        [sys.executable, "-m", "sync", "--version"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert version.returncode == 0 and version.stdout.startswith("apsis-sync, version ")


def test_run_once_dry_run_and_json_output(
    accounts: AccountFactory,
    api: KeycloakRepository,
    emulator: EntraEmulator,
    sync: Callable[..., SyncHarness],
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
    assert (
        f"would: disable {email} and end its sessions: entra user deleted ({acct.id}), matched by email" in dry.stdout
    )
    assert api.user(user_id)["enabled"] is True  # type: ignore[index]

    real = cli(env, "--log-format", "json", "run", "--once", "--account", acct.id, "--output", "json")
    assert real.returncode == 0, real.stderr
    report = json.loads(real.stdout)
    (result,) = report["accounts"]
    assert result["status"] == "ok" and result["applied"] == 1
    assert (
        result["actions"][0]["user_id"] == user_id
        and result["actions"][0]["reason"] == f"entra user deleted ({acct.id})"
    )
    logs = [json.loads(line) for line in real.stderr.splitlines()]
    assert {"ts", "level", "logger", "msg"} <= set(logs[0])
    deactivated = [line for line in logs if line["msg"] == "deactivated user"]
    assert deactivated and deactivated[0]["account"] == acct.id and deactivated[0]["user_id"] == user_id
    assert api.user(user_id)["enabled"] is False  # type: ignore[index]
    for secret in (acct.secret, env["APSIS_SSO_KEYCLOAK_CLIENT_SECRET"]):
        assert secret not in first.stdout + first.stderr + dry.stdout + dry.stderr + real.stdout + real.stderr


def test_status_lists_every_managed_account_and_forgets_deleted_ones(
    accounts: AccountFactory,
    api: KeycloakRepository,
    settings,
    sync: Callable[..., SyncHarness],
) -> None:
    synced = accounts.create(stage="live", secret_days=45)
    never = accounts.create(stage="live", secret_days=20)  # managed, never synced by this daemon
    off = accounts.create(stage="disabled")  # SSO off: listed, not synced
    gone = accounts.create(stage="live")
    harness = sync()
    harness.add(synced, gone)
    assert harness.cycle(synced, gone).ok
    env = harness.env()

    table = cli(dict(env, COLUMNS="250"), "status")
    assert table.returncode == 0, table.stderr
    assert synced.id in table.stdout and "45 days (recorded)" in table.stdout
    assert never.id in table.stdout and "disabled (not synced)" in table.stdout

    doc = json.loads(cli(env, "status", "-o", "json").stdout)
    assert doc["source"] == "keycloak" and isinstance(doc["accounts"], list)  # an object with accounts
    rows = {r["id"]: r for r in doc["accounts"]}
    assert {synced.id, never.id, off.id, gone.id} <= set(rows)
    assert rows[synced.id]["days_until_secret_expires"] == 45  # apsis-sso's key name
    assert rows[synced.id]["last_success"] and rows[synced.id]["last_status"] == "ok"
    assert rows[synced.id]["quarantined"] is None and rows[synced.id]["deactivated_total"] == 0
    assert rows[synced.id]["last_errors"] == [] and rows[synced.id]["stage"] == "live"
    assert rows[never.id]["last_run"] is None and rows[never.id]["days_until_secret_expires"] == 20
    assert rows[off.id]["synced"] is False and rows[off.id]["stage"] == "disabled"
    one = json.loads(cli(env, "status", "--account", never.id, "--output", "json").stdout)
    assert [r["id"] for r in one["accounts"]] == [never.id]
    one_line_error(cli(env, "status", "--account", "nobody"), 2, "no account 'nobody' managed by apsis-sso")

    # Deleted with apsis-sso: gone from status at once, and from the state at the next cycle.
    onboarding.delete(api, settings, gone.id)
    doc = json.loads(cli(env, "status", "-o", "json").stdout)
    assert gone.id not in {r["id"] for r in doc["accounts"]}
    harness.cycle(synced)
    assert gone.id not in {a.account for a in harness.state.accounts()}
    assert harness.state.deactivations(gone.id) == [] and harness.state.delta_link(gone.id) is None


def test_status_answers_from_the_state_database_while_keycloak_is_down(
    accounts: AccountFactory,
    sync: Callable[..., SyncHarness],
) -> None:
    acct = accounts.create(stage="live", secret_days=45)
    harness = sync()
    harness.add(acct)
    harness.cycle(acct)
    down = dict(harness.env(), APSIS_SSO_KEYCLOAK_URL=f"http://127.0.0.1:{free_port()}")
    proc = cli(down, "status", "-o", "json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["source"] == "state" and "is unreachable" in doc["keycloak_error"]
    (row,) = [r for r in doc["accounts"] if r["id"] == acct.id]
    assert row["days_until_secret_expires"] == 45 and row["last_status"] == "ok"
    assert proc.stderr.startswith("warning: ") and "state database only" in proc.stderr
    table = cli(dict(down, COLUMNS="250"), "status")
    assert table.returncode == 0 and "state database only" in table.stdout and acct.id in table.stdout
    # Neither Keycloak nor a state database: nothing to answer from (temporary: exit 75).
    empty = dict(down, APSIS_SYNC_STATE_PATH=str(Path(down["APSIS_SYNC_DATA_DIR"]) / "none.sqlite3"))
    one_line_error(cli(empty, "status"), 75, "no state database at")
    assert not (Path(down["APSIS_SYNC_DATA_DIR"]) / "none.sqlite3").exists()  # status never creates one


def test_an_env_file_configures_apsis_sync(
    accounts: AccountFactory, sync: Callable[..., SyncHarness], tmp_path: Path
) -> None:
    acct = accounts.create(stage="live")
    harness = sync()
    harness.add(acct)
    env = harness.env()
    env_file = tmp_path / "sync.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items() if k.startswith(("APSIS_SSO_", "APSIS_SYNC_"))))
    bare = {k: v for k, v in env.items() if not k.startswith(("APSIS_SSO_", "APSIS_SYNC_"))}
    proc = cli(bare, "--env-file", str(env_file), "run", "--once", "--account", acct.id, "-o", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["accounts"][0]["id"] == acct.id
    one_line_error(cli(bare, "--env-file", str(tmp_path / "nope.env"), "status"), 2, "nope.env does not exist")


def test_debug_logs_show_the_http_libraries_without_secrets(
    accounts: AccountFactory,
    sync: Callable[..., SyncHarness],
) -> None:
    acct = accounts.create(stage="live")
    harness = sync()
    harness.add(acct)
    env = harness.env()
    info = cli(env, "run", "--once", "--account", acct.id)
    assert info.returncode == 0, info.stderr
    assert "HTTP Request:" not in info.stderr  # httpx is quiet below DEBUG
    debug = cli(env, "--log-level", "debug", "run", "--once", "--account", acct.id)
    assert debug.returncode == 0, debug.stderr
    assert "HTTP Request: GET https://" in debug.stderr  # httpx's own line, for the Graph calls
    assert "DEBUG" in debug.stderr
    for secret in (acct.secret, env["APSIS_SSO_KEYCLOAK_CLIENT_SECRET"]):
        assert secret not in debug.stdout + debug.stderr
    # ...nor a token: no Authorization header, azure-identity masks the token answer's access_token.
    assert "authorization" not in debug.stderr.lower() and "Bearer ey" not in debug.stderr
    assert set(re.findall(r'"access_token": "([^"]*)"', debug.stderr)) <= {"********"}


def test_secret_set_dry_run_checks_and_writes_nothing(
    accounts: AccountFactory, sync: Callable[..., SyncHarness]
) -> None:
    acct = accounts.create(stage="live")
    env = sync().env()
    path = Path(env["APSIS_SYNC_SECRETS_DIR"]) / acct.id
    dry = cli(env, "secret", "set", acct.id, "--client-secret-file", "-", "--dry-run", stdin=acct.secret)
    assert dry.returncode == 0, dry.stderr
    assert f"would store the client secret of {acct.id} in {path}" in dry.stdout
    assert not path.exists() and acct.secret not in dry.stdout + dry.stderr
    one_line_error(
        cli(env, "secret", "set", acct.id, "--from-file", "-", "--dry-run", stdin="Q" * 40), 2, "does not match"
    )


def test_run_once_exits_75_when_every_failure_is_temporary_and_1_when_one_needs_a_person(
    accounts: AccountFactory,
    emulator: EntraEmulator,
    sync: Callable[..., SyncHarness],
) -> None:
    throttled = accounts.create(stage="live")
    no_secret = accounts.create(stage="live")
    harness = sync()
    harness.add(throttled)
    env = harness.env()
    emulator.inject_graph_fault("throttle", count=2, retry_after=3600, tenant_id=throttled.tenant_id)
    proc = cli(env, "run", "--once", "--account", throttled.id, "-o", "json")
    assert proc.returncode == 75, proc.stderr
    (result,) = json.loads(proc.stdout)["accounts"]
    assert result["status"] == "error" and result["temporary_failure"] is True
    assert "asked to retry after 3600s" in result["errors"][0]
    mixed = cli(env, "run", "--once", "--account", throttled.id, "--account", no_secret.id, "-o", "json")
    assert mixed.returncode == 1, mixed.stderr
    emulator.clear_faults()


def test_bad_input_gives_one_line_and_exit_2_and_unreachable_keycloak_exit_75(
    accounts: AccountFactory,
    sync: Callable[..., SyncHarness],
) -> None:
    acct = accounts.create(stage="live")
    harness = sync()
    env = harness.env()
    one_line_error(cli(env, "run", "--once", "--shard", "2/2"), 2, "invalid shard '2/2'")
    one_line_error(cli(env, "run", "--once", "--shard", "x"), 2, "invalid shard 'x': expected i/n")
    one_line_error(cli(env, "run", "--once", "--account", "no-such-account"), 2, "no account 'no-such-account'")
    one_line_error(cli(env, "run", "--once", "--account", "Bad_Id"), 2, "invalid account id 'Bad_Id'")
    one_line_error(
        cli(dict(env, APSIS_SYNC_INTERVAL_SECONDS="soon"), "run", "--once"),
        2,
        "configuration: APSIS_SYNC_INTERVAL_SECONDS",
    )
    one_line_error(
        cli(dict(env, APSIS_SYNC_LOG_LEVEL="verbose"), "run", "--once"), 2, "configuration: APSIS_SYNC_LOG_LEVEL"
    )
    one_line_error(cli(env, "--log-level", "verbose", "run", "--once"), 2, "Invalid value for '--log-level'")
    down = dict(env, APSIS_SSO_KEYCLOAK_URL=f"http://127.0.0.1:{free_port()}")
    one_line_error(cli(down, "run", "--once", "--account", acct.id), 75, "is unreachable")
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
    accounts: AccountFactory,
    sync: Callable[..., SyncHarness],
) -> None:
    acct = accounts.create(stage="live")
    harness = sync()
    env = harness.env()
    stored = cli(env, "secret", "set", acct.id, "--client-secret-file", "-", stdin=acct.secret + "\n")
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
    accounts: AccountFactory,
    api: KeycloakRepository,
    sync: Callable[..., SyncHarness],
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
        out = subprocess.run(
            [sys.executable, "-c", probe],
            cwd=REPO,
            env=dict(os.environ, PYTHONHASHSEED=seed),
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout.strip()
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
    synced = sorted(r["id"] for r in json.loads(proc.stdout)["accounts"])
    assert synced == sorted(a for a in ids if shard.owns(a))


def start_daemon(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sync", "--log-format", "json", "run", *args, "--interval", "3600"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_cycle(proc: subprocess.Popen[str]) -> None:
    assert proc.stderr is not None
    deadline = time.monotonic() + 120
    while True:
        line = proc.stderr.readline()
        assert line, "the daemon exited early"
        if json.loads(line)["msg"] == "cycle done":
            return
        assert time.monotonic() < deadline


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def health_after_cycle(port: int, expected: int) -> dict[str, object]:
    """/health once the cycle's verdict is in (it is recorded just after "cycle done" is logged)."""
    deadline = time.monotonic() + 10
    while True:
        status, body = get(f"http://127.0.0.1:{port}/health")
        doc = dict(json.loads(body))
        if doc["status"] != "starting" or time.monotonic() > deadline:
            assert status == expected, body
            return doc
        time.sleep(0.1)


def test_the_loop_serves_metrics_and_health_and_stops_gracefully_on_sigterm(
    accounts: AccountFactory,
    sync: Callable[..., SyncHarness],
) -> None:
    acct = accounts.create(stage="live", secret_days=10)
    harness = sync()
    harness.add(acct)
    port = free_port()
    env = dict(harness.env(), APSIS_SYNC_METRICS_PORT=str(port), APSIS_SYNC_METRICS_ADDRESS="127.0.0.1")
    proc = start_daemon(env, "--account", acct.id)
    try:
        wait_for_cycle(proc)
        status, metrics = get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200
        assert 'apsis_sync_account_runs_total{outcome="ok"} 1.0' in metrics
        assert 'apsis_sync_secrets_expiring_accounts{window="14"} 1.0' in metrics
        assert 'apsis_sync_cycles_total{outcome="ok"} 1.0' in metrics
        assert acct.id not in metrics  # no per-account (or per-user) labels
        health = health_after_cycle(port, 200)
        assert health["status"] == "ok" and health["accounts"] == 1 and health["failing_accounts"] == 0
        assert get(f"http://127.0.0.1:{port}/")[0] == 404
        assert get(f"http://127.0.0.1:{port}/healthz")[0] == 404
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert proc.stderr is not None
        rest = [json.loads(line) for line in proc.stderr.read().splitlines()]
        assert [r["msg"] for r in rest][-2:] == ["stopping", "daemon stopped"]
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def test_health_is_503_while_every_account_fails(accounts: AccountFactory, sync: Callable[..., SyncHarness]) -> None:
    first = accounts.create(stage="live")
    second = accounts.create(stage="live")
    harness = sync()  # neither account's secret was handed to the daemon
    port = free_port()
    env = dict(harness.env(), APSIS_SYNC_METRICS_PORT=str(port), APSIS_SYNC_METRICS_ADDRESS="127.0.0.1")
    proc = start_daemon(env, "--account", first.id, "--account", second.id)
    try:
        wait_for_cycle(proc)
        health = health_after_cycle(port, 503)
        assert health["status"] == "failing" and health["failing_accounts"] == 2
        assert "every account" in str(health["reason"])
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


@pytest.mark.parametrize("spec", ["1/0", "-1/2", "3", "a/b", ""])
def test_shard_specs_are_validated(spec: str) -> None:
    from apsis_core.errors import InvalidInput

    with pytest.raises(InvalidInput):
        Shard.parse(spec)
