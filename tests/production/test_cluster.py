"""Keycloak as it runs in production: ``start --optimized`` on PostgreSQL, two nodes of one
cluster, people reaching it through a TLS-terminating proxy, the tooling reaching a node.

What matters in a cluster is that a node acts on what another node did: a login whose
steps land on different nodes, and every change made through one node (the stage, a
membership, a user the daemon disabled, the realm) in force at the next login or plan on
the other — although each node caches realms, users and identity providers locally.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from apsis_core.keycloak import KeycloakRepository
from devenv.accounts import PASSWORD, OnboardedAccount, now_ms
from devenv.cluster import ClusterNode, KeycloakCluster
from devenv.entra_emulator import EntraEmulator
from tests.cli_fixtures import Cli, assert_no_secret
from tests.login_checks import assert_refused
from tests.production.conftest import PERMANENT_ADMIN, Lane, keycloak_admin_script
from tests.sync_fixtures import SmtpServer, build_harness, entra_oid

pytestmark = pytest.mark.production

REPO = Path(__file__).resolve().parents[2]


def test_two_nodes_in_production_mode_form_one_cluster_on_postgresql(lane: Lane) -> None:
    cluster: KeycloakCluster = lane.cluster
    assert len(cluster.nodes) == 2
    for node in cluster.nodes:
        assert node.cluster_size() == 2, node.logged_view()
        log = node.log_file.read_text() if node.log_file else ""
        assert "Profile prod activated" in log
        assert "development mode" not in log
        assert "JGroups JDBC_PING discovery enabled" in log
        with urllib.request.urlopen(f"http://127.0.0.1:{node.management_port}/health/ready", timeout=5) as resp:
            assert json.load(resp)["status"] == "UP"
    assert cluster.db is not None
    # Discovery went through the database, and the realm lives there.
    assert cluster.db.sql("SELECT count(*) FROM jgroups_ping").strip() == "2"
    assert cluster.db.sql("SELECT name FROM realm WHERE name = 'apsis'").strip() == "apsis"


def test_the_bootstrap_admin_is_replaced_by_a_permanent_admin(lane: Lane) -> None:
    """`apsis-sso keycloak-admin ensure` (compose's keycloak-admin service) ran in the fixture: only
    the permanent admin signs in now, on either node, and running it again changes nothing."""
    for node in (lane.node1, lane.node2):
        token = _password_token(node.url, PERMANENT_ADMIN, lane.admin_password_file.read_text().strip())
        assert token == 200
        # Keycloak answers invalid_grant: the temporary admin is gone.
        assert _password_token(node.url, lane.cluster.admin_username, lane.cluster.admin_password) in (400, 401)
    again = keycloak_admin_script(lane.node2, lane.cluster, lane.admin_password_file)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == f"permanent admin {PERMANENT_ADMIN} ready"
    assert_no_secret(again.stdout, again.stderr)


def _password_token(url: str, username: str, password: str) -> int:
    form = f"grant_type=password&client_id=admin-cli&username={username}&password={password}".encode()
    request = urllib.request.Request(f"{url}/realms/master/protocol/openid-connect/token", data=form)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_realm_apply_works_through_either_node(lane: Lane, tmp_path: Path) -> None:
    node1, node2 = lane.cli(lane.node1, tmp_path / "1"), lane.cli(lane.node2, tmp_path / "2")
    node2.run("realm", "apply", "--dry-run", "--detailed-exitcode", expect=0)  # applied through node 1
    # A change by hand through node 2 is drift to node 1 (its realm cache was invalidated) ...
    KeycloakRepository.for_admin(lane.settings_for(lane.node2)).update_realm({"registrationAllowed": True})
    drift = node1.run("realm", "apply", "--dry-run", "--detailed-exitcode", expect=3)
    assert "registrationAllowed" in drift.stdout
    # ... which node 1 puts back, and node 2 sees the realm in shape again.
    node1.run("realm", "apply")
    node2.run("realm", "apply", "--dry-run", "--detailed-exitcode", expect=0)


def test_a_login_started_on_node1_finishes_on_node2(lane: Lane, onboard: Callable[..., OnboardedAccount]) -> None:
    """No sticky sessions needed: the broker callback (Entra's redirect back) lands on the
    other node than the one that started the login, and it completes."""
    proxy = lane.cluster.proxy
    assert proxy is not None
    acct = onboard(lane.node1)
    email, user_id = acct.person("ann")
    started = len(proxy.hops)
    proxy.route(lambda method, path: "node2" if "/broker/" in path else "node1")
    try:
        result = lane.browser().sso_login(email, PASSWORD, acct.alias)
    finally:
        proxy.round_robin()
    assert result.ok, result.text[:500]
    assert result.id_claims["sub"] == user_id and result.id_claims["apsis_account"] == acct.id
    hops = proxy.hops[started:]
    assert [h.backend for h in hops if h.path.endswith("/protocol/openid-connect/auth")] == ["node1"]
    assert [h.backend for h in hops if h.path == f"/realms/apsis/broker/{acct.alias}/endpoint"] == ["node2"]

    # And with every request of a login on the next node in turn (a round-robin balancer).
    email, user_id = acct.person("bea")
    started = len(proxy.hops)
    again = lane.browser().sso_login(email, PASSWORD, acct.alias)
    assert again.ok, again.text[:500]
    assert again.id_claims["sub"] == user_id
    assert {h.backend for h in proxy.hops[started:]} == {"node1", "node2"}


@dataclass
class Scene:
    """One person of one account, and how to change things through node 1."""

    lane: Lane
    acct: OnboardedAccount
    email: str
    cli: Cli  # apsis-sso against node 1
    emulator: EntraEmulator
    smtp_server: SmtpServer
    tmp_path: Path


def _go_live(scene: Scene) -> None:
    scene.cli.run("account", "go-live", scene.acct.id)


def _back_to_pilot(scene: Scene) -> None:
    scene.cli.run("account", "back-to-pilot", scene.acct.id)


def _remove_member(scene: Scene) -> None:
    scene.cli.run("account", "members", "remove", scene.acct.id, scene.email)


def _disabled_by_sync(scene: Scene) -> None:
    """apsis-sync, through node 1, deactivates a user disabled in Entra; Entra then lets the
    person sign in again (re-enabled there), but the daemon never re-enables anyone."""
    oid = entra_oid(scene.emulator, scene.acct, scene.email)
    scene.emulator.disable_user(scene.acct.tenant_id, oid)
    done = run_daemon_once(scene.lane, scene.acct, scene.lane.node1, scene.smtp_server, scene.tmp_path)
    assert done.returncode == 0, done.stderr
    scene.emulator.enable_user(scene.acct.tenant_id, oid)


@dataclass(frozen=True)
class Change:
    act: Callable[[Scene], None]  # through node 1
    stage: str  # the account's stage before
    pilot: bool  # the person is on the pilot list
    refused_after: str | None  # the refusal reason of the next SSO login on node 2 (None: allowed)
    page_after: list[str] | None = None  # the forms of the login page on node 2 afterwards


CHANGES = {
    "go-live": Change(_go_live, "pilot", False, None, ["username", "entra"]),
    "back-to-pilot": Change(_back_to_pilot, "live", False, "not_pilot", ["username", "password"]),
    "members-remove": Change(_remove_member, "pilot", True, "not_member"),
    "sync-disabled": Change(_disabled_by_sync, "pilot", True, "user_disabled"),
}


@pytest.mark.parametrize("name", list(CHANGES))
def test_a_change_through_node1_applies_at_the_next_login_on_node2(
    name: str,
    lane: Lane,
    onboard: Callable[..., OnboardedAccount],
    emulator: EntraEmulator,
    smtp_server: SmtpServer,
    tmp_path: Path,
) -> None:
    change = CHANGES[name]
    proxy = lane.cluster.proxy
    assert proxy is not None
    acct = onboard(lane.node1, stage=change.stage)
    email, user_id = acct.person("cai", pilot=change.pilot)
    scene = Scene(lane, acct, email, lane.cli(lane.node1, tmp_path / "cli"), emulator, smtp_server, tmp_path)
    proxy.pin("node2")
    served = len(proxy.hops)
    try:
        # Node 2 serves this account before the change, so its caches hold the old state.
        before = lane.browser().sso_login(email, PASSWORD, acct.alias)
        assert before.ok is (change.refused_after is not None), before.text[:300]
        change.act(scene)
        since = now_ms()
        after = lane.browser().sso_login(email, PASSWORD, acct.alias)
        page = lane.browser().login_page(email, PASSWORD) if change.page_after else None
    finally:
        proxy.round_robin()
    assert {h.backend for h in proxy.hops[served:]} == {"node2"}
    if change.refused_after is None:
        assert after.ok, after.text[:500]
        assert after.id_claims["sub"] == user_id
    else:
        assert_refused(after, lane.api(lane.node2), since, change.refused_after)
    if page is not None:  # the login page's redirect by domain follows the stage on node 2 too
        assert page.ok and page.forms == change.page_after, page.forms


def run_daemon_once(
    lane: Lane, acct: OnboardedAccount, node: ClusterNode, smtp_server: SmtpServer, tmp_path: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    """`apsis-sync run --once` for one account, as a process, against ``node``."""
    harness = build_harness(lane.settings_for(node), smtp_server, tmp_path / "sync")
    harness.add(acct)
    harness.rt.state.close()
    done = subprocess.run(
        [sys.executable, "-m", "sync", "run", "--once", "--account", acct.id, "-o", "json", *extra],
        cwd=REPO,
        env=harness.env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert_no_secret(done.stdout, done.stderr)
    return done


def test_the_daemon_works_through_either_node(
    lane: Lane,
    onboard: Callable[..., OnboardedAccount],
    emulator: EntraEmulator,
    smtp_server: SmtpServer,
    tmp_path: Path,
) -> None:
    """Onboarded through node 1, synced through node 2: a user deleted in Entra is deactivated
    and the state seen through node 1 agrees."""
    acct = onboard(lane.node1)
    email, user_id = acct.person("dee")
    acct.person("eli")
    first = run_daemon_once(lane, acct, lane.node2, smtp_server, tmp_path)
    assert first.returncode == 0, first.stderr
    emulator.delete_user(acct.tenant_id, entra_oid(emulator, acct, email))
    second = run_daemon_once(lane, acct, lane.node2, smtp_server, tmp_path)
    assert second.returncode == 0, second.stderr
    report = json.loads(second.stdout)
    [account] = report["accounts"]
    assert account["status"] == "ok"
    assert [a["kind"] for a in account["actions"]] == ["disable"]
    user = lane.api(lane.node1).user(user_id)
    assert user is not None and user["enabled"] is False
    assert user["attributes"]["apsis.disabledBy"] == ["apsis-sync"]
