"""Deprovisioning without a server: the matcher's rules, the incremental and full-resync
planners, the guard, and the crash-safe apply, against the in-memory repository and an
in-memory state database."""

from __future__ import annotations

import pytest

from apsis_core import contract
from apsis_core.account import AccountRecord
from apsis_core.errors import KeycloakUnavailable
from sync import deprovision, guard, resync
from sync.graph_client import EntraUser
from sync.matching import Matcher
from sync.state import KnownUser
from tests.deprovision_world import World, delta

pytestmark = pytest.mark.unit


# -- the matcher -------------------------------------------------------------------------


def test_a_link_is_the_strong_key_and_email_only_matches_inside_the_accounts_domains(world: World):
    linked = world.person("lin", link="oid-lin")
    matcher = Matcher(world.kc, world.acme)
    assert matcher.match("oid-lin", ["renamed@elsewhere.example"]).user_id == linked  # type: ignore[union-attr]
    mel = world.person("mel")
    found = matcher.match("oid-mel", ["mel@acme.example"])
    assert found is not None and (found.user_id, found.via) == (mel, "email")
    outsider = world.kc.add_user("mel@other.example")
    world.kc.add_member(world.acme.org_id, outsider)
    assert matcher.match("oid-x", ["mel@other.example"]) is None  # not one of acme's domains


def test_the_matcher_leaves_ambiguous_foreign_and_otherwise_linked_users_alone(world: World):
    matcher = Matcher(world.kc, world.acme)
    world.person("twin")
    world.kc.add_user("twin@acme.example")
    assert matcher.match("oid-t", ["twin@acme.example"]) is None
    world.kc.add_user("stranger@acme.example")  # not a member of the account
    assert matcher.match("oid-s", ["stranger@acme.example"]) is None
    world.person("bo", link="oid-bo-real")
    assert matcher.match("oid-bo-other", ["bo@acme.example"]) is None
    assert any("linked to another Entra user" in n for n in matcher.notes)
    assert any("2 users have email twin@acme.example" in n for n in matcher.notes)


def test_an_address_spelled_with_a_compatibility_character_matches_nobody(world: World):
    """U+212A KELVIN SIGN lower-cases to "k" in Python and Java: Entra may hold a second user whose
    mail is "\u212aate@…" beside Kate's, and its deletion must not deactivate Kate."""
    kate = world.person("kate")
    kelvin = "\u212aate@acme.example"
    assert Matcher(world.kc, world.acme).match("oid-kelvin", [kelvin]) is None  # admin search, Java's fold
    prefetched = Matcher(world.kc, world.acme)
    prefetched.prefetch_emails([kelvin])  # the extension's lookup
    assert prefetched.match("oid-kelvin", [kelvin]) is None
    plan = deprovision.plan_incremental(
        world.kc, world.acme, delta(EntraUser("oid-kelvin", enabled=False, mail="\u212aATE@acme.example")), world.state
    )
    assert plan.actions == []
    found = Matcher(world.kc, world.acme).match("oid-kate", ["KATE@acme.example"])
    assert found is not None and (found.user_id, found.via, found.email) == (kate, "email", "kate@acme.example")


# -- incremental -------------------------------------------------------------------------


def test_deleted_and_disabled_users_are_deactivated_members_elsewhere_only_leave(world: World):
    lin = world.person("lin", link="oid-lin")
    mel = world.person("mel")
    bo = world.person("bo", link="oid-bo")
    world.kc.add_member(world.other.org_id, bo)
    plan = deprovision.plan_incremental(
        world.kc,
        world.acme,
        delta(
            EntraUser("oid-lin", removed="deleted"),
            EntraUser("oid-mel", enabled=False, mail="mel@acme.example"),
            EntraUser("oid-bo", removed="changed"),
            EntraUser("oid-sam", enabled=True, mail="sam@acme.example"),
        ),
        world.state,
    )
    kinds = {(a.user_id, a.kind, a.why, a.via) for a in plan.actions}
    assert kinds == {
        (lin, "disable", "deleted", "link"),
        (mel, "disable", "disabled", "email"),
        (bo, "remove_membership", "changed", "link"),
    }
    assert plan.deactivating == 3


@pytest.mark.parametrize("leavers", [1, 5, 40])
def test_linked_leavers_cost_one_bulk_read_whatever_their_number(world: World, leavers: int):
    """Their links and their accounts (organizations) come from the links resource in one request
    per 100: no membership read per leaver; a member elsewhere is still only removed from acme."""
    ids = [world.person(f"p{n}", link=f"oid-{n}") for n in range(leavers)]
    world.kc.add_member(world.other.org_id, ids[0])
    before = world.kc.requests
    plan = deprovision.plan_incremental(
        world.kc, world.acme, delta(*(EntraUser(f"oid-{n}", removed="deleted") for n in range(leavers))), world.state
    )
    assert world.kc.requests - before == 1
    assert {(a.user_id, a.kind) for a in plan.actions} == {
        (u, "remove_membership" if u == ids[0] else "disable") for u in ids
    }


@pytest.mark.parametrize("leavers", [1, 5, 40])
def test_leavers_who_never_used_sso_cost_one_more_bulk_read(world: World, leavers: int):
    """Unlinked leavers are matched by address: their users, links and accounts come in one
    request per 100 addresses; the matching rules hold (another Entra user's link, two users of
    one address, a foreign domain: left alone)."""
    ids = [world.person(f"p{n}") for n in range(leavers)]
    world.kc.add_member(world.other.org_id, ids[0])
    taken = world.person("taken", link="oid-someone-else")
    world.kc.add_user("twice@acme.example")
    twice = world.person("twice")
    before = world.kc.requests
    plan = deprovision.plan_incremental(
        world.kc,
        world.acme,
        delta(
            *(EntraUser(f"oid-{n}", enabled=False, mail=f"p{n}@acme.example") for n in range(leavers)),
            EntraUser("oid-taken", removed="deleted", mail="taken@acme.example"),
            EntraUser("oid-twice", removed="deleted", mail="twice@acme.example"),
            EntraUser("oid-foreign", removed="deleted", mail="p1@elsewhere.example"),
        ),
        world.state,
    )
    assert world.kc.requests - before == 2
    assert {(a.user_id, a.kind, a.via) for a in plan.actions} == {
        (u, "remove_membership" if u == ids[0] else "disable", "email") for u in ids
    }
    assert taken not in {a.user_id for a in plan.actions} and twice not in {a.user_id for a in plan.actions}
    assert any("2 users have email twice@acme.example" in n for n in plan.notes)


def test_a_removed_user_without_an_address_is_found_through_the_remembered_one(world: World):
    mel = world.person("mel")
    world.state.record_run(
        "acme",
        ok=True,
        status="ok",
        errors=[],
        deactivated=0,
        seen=[KnownUser("oid-mel", "mel@acme.example", None, True, None)],
    )
    plan = deprovision.plan_incremental(
        world.kc, world.acme, delta(EntraUser("oid-mel", removed="deleted")), world.state
    )
    assert [a.user_id for a in plan.actions] == [mel]


def test_someone_deactivated_who_comes_back_is_reported_not_re_enabled(world: World):
    lin = world.person("lin", link="oid-lin")
    world.state.record_deactivation("acme", lin, "oid-lin", "lin@acme.example", "disable", "entra user deleted (acme)")
    plan = deprovision.plan_incremental(world.kc, world.acme, delta(EntraUser("oid-lin", enabled=True)), world.state)
    assert plan.actions == [] and [(r.user_id, r.how) for r in plan.restored] == [(lin, "re-enabled")]


# -- full resync -------------------------------------------------------------------------


def test_a_full_listing_acts_only_on_disabled_users_and_provable_entra_users(world: World):
    gone = world.person("gone", link="oid-gone")  # linked, missing from the listing: gone from Entra
    off = world.person("off", link="oid-off")  # listed as disabled
    remembered = world.person("old")  # never signed in, remembered from an earlier listing
    contractor = world.person("contractor")  # password only, never in Entra: never touched
    world.person("stays", link="oid-stays")
    world.state.record_run(
        "acme",
        ok=True,
        status="ok",
        errors=[],
        deactivated=0,
        seen=[KnownUser("oid-old", "old@acme.example", None, True, None)],
    )
    plan = resync.plan_full(
        world.kc,
        world.acme,
        delta(EntraUser("oid-off", enabled=False), EntraUser("oid-stays", enabled=True), full=True),
        world.state,
    )
    assert {(a.user_id, a.why) for a in plan.actions} == {(gone, "absent"), (off, "disabled"), (remembered, "absent")}
    assert contractor not in {a.user_id for a in plan.actions}


# -- applying, crash-safe ----------------------------------------------------------------


def test_a_deactivation_disables_marks_and_ends_sessions_and_is_recorded(world: World):
    lin = world.person("lin", link="oid-lin", sessions=2)
    plan = deprovision.plan_incremental(
        world.kc, world.acme, delta(EntraUser("oid-lin", removed="deleted")), world.state
    )
    assert len(deprovision.apply(world.kc, world.acme, plan.actions, world.state)) == 1
    user = world.kc.users_by_id[lin]
    assert user["enabled"] is False and user["attributes"][contract.DISABLED_BY_KEY] == [contract.SYNC_DAEMON]
    assert user["attributes"][contract.DISABLED_REASON_KEY] == ["entra user permanently deleted (acme)"]
    assert world.kc.sessions[lin] == 0 and world.state.pending_deactivations("acme") == []
    assert world.state.deactivation("acme", lin) is not None


def test_a_deactivation_cut_short_is_finished_by_the_next_run(world: World):
    bo = world.person("bo", link="oid-bo", sessions=1)
    world.kc.add_member(world.other.org_id, bo)
    plan = deprovision.plan_incremental(
        world.kc, world.acme, delta(EntraUser("oid-bo", removed="deleted")), world.state
    )
    world.kc.fail_after(1)  # the membership goes, then Keycloak is gone
    with pytest.raises(KeycloakUnavailable):
        deprovision.apply(world.kc, world.acme, plan.actions, world.state)
    assert [a["user_id"] for a in world.state.pending_deactivations("acme")] == [bo]
    world.kc.fail_after(None)
    finished = deprovision.resume(world.kc, world.acme, world.state)
    assert [a.user_id for a in finished] == [bo] and world.state.pending_deactivations("acme") == []
    assert bo not in world.kc.membership[world.acme.org_id] and bo in world.kc.membership[world.other.org_id]
    assert world.kc.links[bo] == {} and world.kc.sessions[bo] == 0 and world.kc.users_by_id[bo]["enabled"]


def test_a_half_done_deactivation_whose_record_was_lost_is_finished_from_the_users_marks(world: World):
    lin = world.person(
        "lin", link="oid-lin", sessions=1, enabled=False, attributes={contract.DISABLED_BY_KEY: [contract.SYNC_DAEMON]}
    )
    plan = deprovision.plan_incremental(
        world.kc, world.acme, delta(EntraUser("oid-lin", removed="deleted")), world.state
    )
    assert [(a.user_id, a.finish) for a in plan.actions] == [(lin, True)] and plan.deactivating == 0


# -- the guard ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "members", "allowance", "held"),
    [
        (1, 5, 0, False),  # a 5-person account may lose one
        (3, 100, 0, False),  # 3 % of 100
        (3, 20, 0, True),  # 15 % of 20
        (26, 10_000, 0, True),  # over the absolute limit
        (26, 10_000, 26, False),  # released: the held ones pass
        (30, 10_000, 26, False),  # ... and a few more within the limits
    ],
)
def test_the_guard_judges_a_cycle_by_count_and_share(count, members, allowance, held):
    limits = guard.GuardLimits(max_users=25, max_percent=10, percent_min_users=3)
    assert (guard.verdict(count, members, limits, allowance) is not None) is held
    if held:
        assert guard.needs_members(count, limits, allowance)


def test_a_quarantine_lives_on_the_organization_and_release_lifts_it(world: World):
    value = guard.quarantine(world.kc, world.acme, "30 deactivations in one cycle")
    org = world.kc.organization(world.acme.org_id)
    assert org is not None and org["attributes"][contract.QUARANTINE_KEY] == [value]
    world.state.set_quarantine("acme", value.partition(" ")[0], "30 deactivations", 30)
    quarantined = AccountRecord.parse(org)
    released = guard.release_account(world.kc, world.state, "acme", dry_run=True)
    assert (released.quarantined, released.held, released.applied) == (quarantined.quarantined, 30, False)
    assert guard.release_account(world.kc, world.state, "acme").applied
    assert contract.QUARANTINE_KEY not in (world.kc.organization(world.acme.org_id) or {})["attributes"]
