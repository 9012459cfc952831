"""A Keycloak node killed in the middle of a daemon cycle: the daemon converges on the other.

The daemon (`apsis-sync run`, a real process with its real scheduler) talks to Keycloak
through the load balancer, as it would in a cluster. All its requests go to node 1 until
node 1 has committed the cycle's first write; then node 1 is SIGKILLed before its answer
leaves the balancer (the daemon gets a 502 for a write that happened). The balancer sends
everything after that to node 2. Within a few cycles every deactivation is complete —
disabled, marked, no sessions — nobody else is touched, and the daemon is healthy. Killing
Keycloak itself is safe here because it runs on PostgreSQL (dev mode's H2 can lose commits).
(A later test of the lane finds node 1 started again: tests/production/conftest.py.)
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from devenv.accounts import PASSWORD, OnboardedAccount
from devenv.entra_emulator import EntraEmulator
from devenv.processes import free_port
from devenv.reverse_proxy import Hop
from tests.cli_fixtures import assert_no_secret
from tests.production.conftest import Lane
from tests.sync_fixtures import SmtpServer, build_harness, entra_oid

pytestmark = pytest.mark.production

REPO = Path(__file__).resolve().parents[2]


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f}s: {what}")
        time.sleep(1)


def health(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def test_a_node_killed_mid_cycle_and_the_daemon_converges_on_the_other(
    lane: Lane,
    onboard: Callable[..., OnboardedAccount],
    emulator: EntraEmulator,
    smtp_server: SmtpServer,
    tmp_path: Path,
) -> None:
    cluster, proxy = lane.cluster, lane.cluster.proxy
    assert proxy is not None
    a, b = onboard(lane.node1), onboard(lane.node1)
    lin, lin_id = a.person("lin")  # signs in with SSO: found by its link
    mel, mel_id = a.person("mel")  # signs in with a password: found by email
    sam, sam_id = a.person("sam")  # stays
    ola, ola_id = b.person("ola")  # the other account's
    for email in (lin, sam):
        assert lane.browser().sso_login(email, PASSWORD, a.alias).ok
    for email in (mel, ola):
        assert lane.browser().password_login(email, PASSWORD).ok
    harness = build_harness(lane.settings_for(lane.node1), smtp_server, tmp_path / "sync", guard_max_percent=100)
    harness.add(a, b)
    assert harness.cycle(a, b).ok  # the delta links the daemon starts from
    emulator.delete_user(a.tenant_id, entra_oid(emulator, a, lin))
    emulator.disable_user(a.tenant_id, entra_oid(emulator, a, mel))
    api2 = lane.api(lane.node2)
    sessions_before = {uid: len(api2.user_sessions(uid)) for uid in (sam_id, ola_id)}
    assert all(count >= 1 for count in sessions_before.values())

    killed = threading.Event()

    def kill_node1_after_its_first_write(hop: Hop) -> bool:
        if killed.is_set() or hop.backend != "node1" or hop.method == "GET" or not hop.path.startswith("/admin/"):
            return False
        lane.node1.kill()
        killed.set()
        return True  # the write is committed; its answer is lost with the node

    metrics_port = free_port()
    env = dict(
        harness.env(),
        APSIS_SSO_KEYCLOAK_URL=cluster.public_url,
        APSIS_SSO_KEYCLOAK_VERIFY=str(lane.ca_bundle),
        APSIS_SYNC_INTERVAL_SECONDS="10",
        APSIS_SYNC_GUARD_MAX_PERCENT="100",
        APSIS_SYNC_METRICS_PORT=str(metrics_port),
        APSIS_SYNC_METRICS_ADDRESS="127.0.0.1",
    )
    harness.rt.state.close()
    proxy.pin("node1")
    proxy.intercept(kill_node1_after_its_first_write)
    daemon = subprocess.Popen(
        [sys.executable, "-m", "sync", "run"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(killed.is_set, 120, "the daemon wrote through node 1")
        assert [h.status for h in proxy.hops if h.backend == "node1" and h.method != "GET"][-1] == 502

        def converged() -> bool:
            users = {uid: api2.user(uid) for uid in (lin_id, mel_id)}
            return all(
                u is not None and u["enabled"] is False and api2.user_sessions(uid) == [] for uid, u in users.items()
            )

        wait_until(converged, 180, "both deactivations completed through node 2")
        wait_until(lambda: health(metrics_port) == 200, 60, "the daemon reports healthy")
    finally:
        daemon.send_signal(signal.SIGTERM)
        out, err = daemon.communicate(timeout=60)
        proxy.intercept(None)
        proxy.round_robin()
    assert daemon.returncode == 0, err[-2000:]
    assert_no_secret(out, err)
    assert "Traceback" not in err

    for uid in (lin_id, mel_id):
        user = api2.user(uid)
        assert user is not None and user["attributes"]["apsis.disabledBy"] == ["apsis-sync"]
    for uid in (sam_id, ola_id):  # nobody else touched
        user = api2.user(uid)
        assert user is not None and user["enabled"] is True and "apsis.disabledBy" not in (user.get("attributes") or {})
        assert len(api2.user_sessions(uid)) == sessions_before[uid]
    state = build_harness(lane.settings_for(lane.node2), smtp_server, tmp_path / "sync").state
    assert sorted(r.user_id for r in state.deactivations(a.id)) == sorted([lin_id, mel_id])  # one record each
    assert state.pending_deactivations(a.id) == [] and state.deactivations(b.id) == []
    assert lane.node2.cluster_size() == 1  # node 2 saw node 1 leave
