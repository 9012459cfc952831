"""The daemon's probes during a Keycloak outage: ``/livez`` stays 200 (a restart would not
help, and would restart every replica at once), ``/readyz`` goes 503 and comes back.

A real ``apsis-sync run`` process reaches the session's Keycloak through the test reverse
proxy; the outage is the proxy losing its only backend (every request a ``502``, as from a
load balancer whose Keycloak nodes are down), the recovery is the backend coming back.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from apsis_core.settings import Settings
from devenv.accounts import AccountFactory
from devenv.reverse_proxy import ReverseProxy
from tests.sync_fixtures import SyncHarness, free_port

REPO = Path(__file__).resolve().parent.parent
INTERVAL = 10  # the shortest interval the CLI accepts


def probe(port: int, path: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
            return resp.status, dict(json.loads(resp.read()))
    except urllib.error.HTTPError as exc:
        return exc.code, dict(json.loads(exc.read()))


def wait_for_listener(port: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, "the daemon exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, "the daemon never listened"
            time.sleep(0.1)


def wait_for_readiness(port: int, status: int, proc: subprocess.Popen[str]) -> dict[str, object]:
    """Poll ``/readyz`` until it answers ``status``, checking ``/livez`` is 200 all along."""
    deadline = time.monotonic() + 6 * INTERVAL
    while True:
        assert proc.poll() is None, "the daemon exited"
        live, body = probe(port, "/livez")
        assert live == 200 and body["status"] == "alive", body
        ready, doc = probe(port, "/readyz")
        if ready == status:
            return doc
        assert time.monotonic() < deadline, f"/readyz stayed {ready}: {doc}"
        time.sleep(0.2)


def closed_port() -> tuple[str, int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return "127.0.0.1", s.getsockname()[1]  # closed again: connections are refused


def test_a_keycloak_outage_makes_the_daemon_unready_never_dead(
    accounts: AccountFactory, sync: Callable[..., SyncHarness], settings: Settings
) -> None:
    acct = accounts.create(stage="live")
    harness = sync()
    harness.add(acct)
    port = free_port()
    with ReverseProxy.to(settings.keycloak_url) as proxy:
        keycloak = proxy.backends["keycloak"]
        env = dict(
            harness.env(),
            APSIS_SSO_KEYCLOAK_URL=proxy.url,
            APSIS_SYNC_METRICS_PORT=str(port),
            APSIS_SYNC_METRICS_ADDRESS="127.0.0.1",
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "sync", "run", "--account", acct.id, "--interval", str(INTERVAL)],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            wait_for_listener(port, proc)
            assert wait_for_readiness(port, 200, proc)["status"] == "ok"
            assert probe(port, "/health")[0] == 200  # /health is /readyz

            proxy.backends["keycloak"] = closed_port()  # Keycloak goes away
            down = wait_for_readiness(port, 503, proc)
            assert down["status"] == "failing" and down["reason"], down
            assert probe(port, "/health")[0] == 503

            proxy.backends["keycloak"] = keycloak  # and comes back
            assert wait_for_readiness(port, 200, proc)["status"] == "ok"
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
