"""The state database, the same tests on both backends: SQLite (one process) and PostgreSQL
(replicas; a throwaway cluster of Debian's server per session, ``postgres``)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import pytest

from devenv.postgres import PostgresServer
from sync.state import SCHEMA_VERSION, AccountState, KnownUser, StateStore, StateUnavailable

REPO = Path(__file__).resolve().parent.parent


def user(oid: str, mail: str | None = None, enabled: bool | None = True, removed: str | None = None) -> KnownUser:
    return KnownUser(oid, mail, None, enabled, removed)


@pytest.fixture
def state(state_location: Path | str) -> StateStore:
    store = StateStore(state_location)
    yield store  # type: ignore[misc]
    store.close()


def test_a_round_commits_its_link_with_its_users_and_a_full_listing_marks_the_missing(state: StateStore) -> None:
    state.stage("acme", [user("o1", "a@x"), user("o2", "b@x")])
    assert set(state.staged_among("acme", ["o1", "o2", "o3"])) == {"o1", "o2"}
    state.record_run("acme", ok=True, status="ok", errors=[], deactivated=0, delta_link="d1")
    assert state.delta_link("acme") == "d1"
    assert {u.oid: u.mail for u in state.known_users("acme")} == {"o1": "a@x", "o2": "b@x"}
    assert state.staged_among("acme", ["o1"]) == {}

    # a delta with only an id keeps what was known; a failed round drops what it staged
    state.stage("acme", [KnownUser("o1", None, None, False, None)])
    state.record_run("acme", ok=True, status="ok", errors=[], deactivated=0, delta_link="d2")
    assert state.known_user("acme", "o1") == KnownUser("o1", "a@x", None, False, None)
    state.stage("acme", [user("o9")])
    state.record_run("acme", ok=False, status="error", errors=["boom"], deactivated=0)
    assert state.known_user("acme", "o9") is None and state.account("acme").last_errors == ["boom"]
    assert state.delta_link("acme") == "d2"

    # a full listing that no longer lists o2: gone
    state.stage("acme", [user("o1", "a@x")])
    assert [u.oid for u in state.absent_known_users("acme")] == ["o2"]
    state.record_run("acme", ok=True, status="ok", errors=[], deactivated=0, delta_link="d3", full_listing=True)
    assert state.known_user("acme", "o2").removed == "absent"  # type: ignore[union-attr]
    assert set(state.known_users_among("acme", [f"o{i}" for i in range(1200)])) == {"o1", "o2"}


def test_the_journal_of_deactivations_notices_quarantine_and_applications(state: StateStore) -> None:
    state.intend_deactivation("acme", "u1", {"user_id": "u1", "step": 1})
    state.intend_deactivation("acme", "u2", {"user_id": "u2"})
    assert [a["user_id"] for a in state.pending_deactivations("acme")] == ["u1", "u2"]
    state.record_deactivation("acme", "u1", "o1", "a@x", "disabled", "deleted in Entra")
    assert [a["user_id"] for a in state.pending_deactivations("acme")] == ["u2"]
    assert state.deactivation("acme", "u1").action == "disabled"  # type: ignore[union-attr]
    assert set(state.deactivations_among("acme", ["o1", "o2"])) == {"o1"}
    assert state.deactivation_by_oid("acme", "o1").user_id == "u1"  # type: ignore[union-attr]
    assert state.account("acme").deactivated_total == 1
    state.mark_restored_reported("acme", "u1")
    state.mark_restored_reported("acme", "u7", "o7", "g@x")
    assert state.deactivation("acme", "u1").restored_reported is not None  # type: ignore[union-attr]
    assert state.deactivation("acme", "u7").action == "unknown"  # type: ignore[union-attr]

    assert not state.notice_sent("acme", "expiry-30")
    state.mark_notice("acme", "expiry-30", "expiry")
    state.mark_notice("acme", "expiry-30", "expiry")  # once
    assert state.notice_sent("acme", "expiry-30")

    state.set_quarantine("acme", "2026-01-01T00:00:00Z", "too many", 40)
    assert state.account("acme").quarantine_held == 40
    state.clear_quarantine("acme")
    assert state.account("acme").quarantined_at is None

    assert state.applications_read("acme") == (None, None, None)
    state.record_applications("acme", "2026-01-02", [{"endDateTime": "x"}], "k1")
    assert state.applications_read("acme") == ("2026-01-02", [{"endDateTime": "x"}], "k1")
    state.record_run(
        "acme",
        ok=True,
        status="ok",
        errors=[],
        deactivated=0,
        secret_expires=date(2027, 1, 1),
        secret_expires_source="graph",
    )
    assert state.account("acme").secret_expires == date(2027, 1, 1)

    state.record_run("gone", ok=True, status="ok", errors=[], deactivated=0)
    state.claim("r1", ["gone", "acme"], 60, 50)
    assert state.forget_accounts_except({"acme"}) == ["gone"]
    assert [a.account for a in state.accounts()] == ["acme"] and set(state.leases()) == {"acme"}


def test_leases_share_the_accounts_out_and_a_dead_holders_are_taken_when_they_expire(state: StateStore) -> None:
    every = [f"acct{i}" for i in range(30)]
    first = state.claim("r1", every[:20], 60, 0)
    second = state.claim("r2", every, 60, 0)
    assert first == sorted(every[:20]) and second == sorted(every[20:])  # none twice
    assert state.claim("r2", every, 60, 0) == second  # a holder keeps its own
    state.release("r2", second)
    assert state.claim("r3", every, 60, 0) == second  # released: free again
    # not due yet: nobody takes it, whatever the lease
    state.release("r3", second)
    assert state.claim("r1", second[:1], 60, 3600) == second[:1]
    state.release("r1", second[:1])
    assert state.claim("r2", second[:1], 60, 0) == []
    # r1 dies holding its leases; they expire (a lease of 0 s has), and r2 takes them over
    assert state.claim("r1", ["lost"], 0, 0) == ["lost"]
    assert state.claim("r2", ["lost"], 60, 0) == ["lost"]
    holder, expires, _ = state.leases()["lost"]
    assert holder == "r2" and expires is not None and expires > state.clock()


def test_a_holder_renews_the_leases_of_a_long_sync_and_learns_which_it_lost(state: StateStore) -> None:
    # r1 claims two accounts with leases that are already over (0 s): r2 takes one of them
    assert state.claim("r1", ["long", "taken"], 0, 0) == ["long", "taken"]
    assert state.claim("r2", ["taken"], 60, 0) == ["taken"]
    # renewing gives back only what r1 still holds, however late it is
    assert state.renew("r1", ["long", "taken"], 60) == ["long"]
    holder, expires, _ = state.leases()["long"]
    assert holder == "r1" and expires is not None and expires > state.clock() + 30
    assert state.claim("r2", ["long"], 60, 0) == []  # renewed: not another's to take
    assert state.renew("r1", [], 60) == []
    assert state.leases()["taken"][0] == "r2"  # r2's lease untouched


def test_the_schema_is_versioned_reopened_as_is_and_a_newer_one_refused(state_location: Path | str) -> None:
    StateStore(state_location).close()
    store = StateStore(state_location)  # again: nothing to apply twice
    assert store._query("SELECT value FROM meta WHERE key='schema'")[0]["value"] == str(SCHEMA_VERSION)
    with store.transaction() as db:
        db.execute("UPDATE meta SET value=? WHERE key='schema'", (str(SCHEMA_VERSION + 1),))
    store.close()
    with pytest.raises(StateUnavailable, match="newer apsis-sync"):
        StateStore(state_location)


def test_an_unreachable_database_is_a_clear_error_without_its_password() -> None:
    with pytest.raises(StateUnavailable) as caught:
        StateStore("postgresql://sync:s3cret-pw@127.0.0.1:1/state?connect_timeout=2")
    assert "s3cret-pw" not in str(caught.value) and "cannot connect" in str(caught.value)
    assert caught.value.exit_code == 2


_HOLD = """
import sys
from sync.state import StateStore
state = StateStore(sys.argv[1])
with state.deactivation_turn("acme", "u1") as turn:
    print("held", flush=True)
    sys.stdin.readline()
    turn.record("o1", "a@x", "disabled", "deleted in Entra")
"""


def test_a_users_turn_holds_across_processes_so_the_second_finds_it_done(state_location: Path | str) -> None:
    """Another process holds the user's turn; ours waits for it, then finds the deactivation
    recorded (and so would not do or count it again)."""
    state = StateStore(state_location)
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_HOLD), str(state_location)],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline().strip() == "held"
        with state.deactivation_turn("acme", "u2") as other:  # another user's turn is free
            assert not other.recorded()
        proc.stdin.write("go\n")
        proc.stdin.flush()
        with state.deactivation_turn("acme", "u1") as turn:
            assert turn.recorded()
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        state.close()


def test_the_postgres_url_of_a_store_never_shows_its_password(postgres: PostgresServer) -> None:
    url = postgres.create_database("redacted_state")
    store = StateStore(url)
    try:
        assert store.backend == "postgresql" and store.shared
        assert postgres.password not in store.describe() and postgres.password not in str(store.path)
    finally:
        store.close()


def test_a_rounds_first_page_drops_what_a_round_cut_short_left_staged(state: StateStore) -> None:
    state.stage("acme", [user("o1"), user("o2")])  # a round killed before its run was recorded
    state.stage("acme", [user("o3")], fresh=True)
    assert set(state.staged_among("acme", ["o1", "o2", "o3"])) == {"o3"}


def test_a_postgres_state_connects_again_after_the_server_dropped_it(postgres: PostgresServer) -> None:
    url = postgres.create_database("reconnect_state")
    store = StateStore(url)
    try:
        store.record_run("acme", ok=True, status="ok", errors=[], deactivated=0, delta_link="d1")
        postgres.sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = 'reconnect_state' AND application_name = 'apsis-sync'"
        )
        with pytest.raises(Exception, match="terminat|closed|connection"):
            store.account("acme")  # the statement that finds the connection gone fails (its account)
        assert store.delta_link("acme") == "d1"  # the next one connects again
    finally:
        store.close()


def test_what_a_cycle_reads_before_graph_comes_at_once_and_the_cadence_with_it(state: StateStore) -> None:
    state.record_applications("acme", "2026-12-01", [{"keyId": "k"}], "key1")
    state.intend_deactivation("acme", "u1", {"user_id": "u1"})
    known, journal = state.starting_point("acme")
    assert known.account == "acme" and [a["user_id"] for a in journal] == ["u1"]
    assert state.applications_read("acme") == ("2026-12-01", [{"keyId": "k"}], "key1")  # from that read
    state.record_applications("acme", "2026-12-02", None, "key2")
    assert state.applications_read("acme") == ("2026-12-02", None, "key2")  # a write is read back
    state.starting_point("acme")
    state.record_run("acme", ok=True, status="ok", errors=[], deactivated=0)
    state.record_applications("acme", "2026-12-03", None, "key3")
    assert state.applications_read("acme") == ("2026-12-03", None, "key3")
    assert state.starting_point("nobody") == (AccountState("nobody"), [])
