"""`apsis-sso account members ...` and `account pilot ...` against the real Keycloak."""

from __future__ import annotations

import pytest

from devenv.accounts import PASSWORD, create_apsis_user, user_count
from devenv.login_driver import Browser
from tests.cli_fixtures import Cli


def _member_ids(api, acct) -> set[str]:
    return {m["id"] for m in api.members(acct.org_id)}


def test_members_add_list_remove(cli: Cli, onboarded, api, settings, emulator):
    acct = onboarded(stage="live")
    ann, bo = f"ann@{acct.domain}", f"bo@{acct.domain}"
    contractor = f"contractor-{acct.id}@agency.example"
    ids = {e: create_apsis_user(api, e) for e in (ann, bo, contractor)}
    acct.entra_user("ann")

    doc = cli.json("account", "members", "add", acct.id, ann, contractor.upper())
    assert doc["applied"] is True
    assert [(m["email"], m["outcome"]) for m in doc["members"]] == [(ann, "added"), (contractor, "added")]
    assert _member_ids(api, acct) == {ids[ann], ids[contractor]}
    again = cli.json("account", "members", "add", acct.id, ann)
    assert [m["outcome"] for m in again["members"]] == ["already-member"]

    browser = Browser(settings.keycloak_url, "apsis", ca_bundle=str(emulator.ca_bundle))
    assert browser.sso_login(ann, PASSWORD, acct.alias).ok
    listed = cli.json("account", "members", "list", acct.id)
    rows = {m["email"]: m for m in listed["members"]}
    assert set(rows) == {ann, contractor}
    assert rows[ann]["linked"] is True and rows[contractor]["linked"] is False
    assert rows[ann]["enabled"] is True and rows[ann]["id"] == ids[ann]
    table = cli.run("account", "members", "list", acct.id).stdout
    assert f"account {acct.id}: 2 member(s)" in table and ann in table

    users = user_count(api)
    removed = cli.json("account", "members", "remove", acct.id, ann, bo)
    assert [(m["email"], m["outcome"]) for m in removed["members"]] == [(ann, "removed"), (bo, "not-member")]
    assert _member_ids(api, acct) == {ids[contractor]}
    assert api.federated_identities(ids[ann]) == []  # the link went with the membership
    assert user_count(api) == users  # nobody was deleted
    assert (
        not Browser(settings.keycloak_url, "apsis", ca_bundle=str(emulator.ca_bundle))
        .sso_login(ann, PASSWORD, acct.alias)
        .ok
    )


def test_members_add_refuses_unknown_or_malformed_emails_before_changing_anything(cli: Cli, onboarded, api):
    acct = onboarded()
    known = f"known@{acct.domain}"
    create_apsis_user(api, known)
    result = cli.run("account", "members", "add", acct.id, known, f"ghost@{acct.domain}", expect=2)
    assert f"no user with email ghost@{acct.domain}" in result.stderr
    assert _member_ids(api, acct) == set()
    result = cli.run("account", "members", "add", acct.id, known, "not-an-email", expect=2)
    assert "invalid email 'not-an-email'" in result.stderr
    assert _member_ids(api, acct) == set()
    result = cli.run("account", "members", "remove", acct.id, known, "@nope", expect=2)
    assert "invalid email '@nope'" in result.stderr


def test_members_add_from_domains_takes_only_the_accounts_domains(cli: Cli, onboarded, api):
    acct = onboarded()
    other = onboarded()
    mine = [create_apsis_user(api, f"{n}@{acct.domain}") for n in ("a1", "a2", "a3")]
    theirs = create_apsis_user(api, f"b1@{other.domain}")
    create_apsis_user(api, f"x@sub.{acct.domain}")  # a subdomain is another domain

    dry = cli.json("account", "members", "add", acct.id, "--from-domains", "--dry-run")
    assert dry["applied"] is False and len(dry["members"]) == 3
    assert _member_ids(api, acct) == set()

    doc = cli.json("account", "members", "add", acct.id, "--from-domains")
    assert {m["user_id"] for m in doc["members"]} == set(mine)
    assert _member_ids(api, acct) == set(mine)
    assert theirs not in _member_ids(api, acct)
    assert cli.json("account", "members", "add", acct.id, "--from-domains")["members"] == []
    assert "nothing to change" in cli.run("account", "members", "add", acct.id, "--from-domains").stderr


def test_pilot_add_and_remove(cli: Cli, onboarded, api):
    acct = onboarded()
    ann, bo = f"ann@{acct.domain}", f"bo@{acct.domain}"
    acct.apsis_user(ann)

    result = cli.run("account", "pilot", "add", acct.id, ann, bo.upper())
    assert f"warning: test user {bo} has no APSIS One user in Keycloak" in result.stderr
    assert not any(ann in line for line in result.stderr.splitlines() if line.startswith("warning"))
    assert sorted(api.organization_by_alias(acct.id)["attributes"]["apsis.pilot"]) == [ann, bo]
    assert "nothing to change" in cli.run("account", "pilot", "add", acct.id, ann).stdout

    doc = cli.json("account", "pilot", "remove", acct.id, bo)
    assert doc["applied"] is True
    assert api.organization_by_alias(acct.id)["attributes"]["apsis.pilot"] == [ann]
    result = cli.run("account", "pilot", "remove", acct.id, bo, expect=2)
    assert f"{bo} is not on the pilot list of {acct.id}" in result.stderr
    result = cli.run("account", "pilot", "add", acct.id, "nope@", expect=2)
    assert "invalid email 'nope@'" in result.stderr
    assert api.organization_by_alias(acct.id)["attributes"]["apsis.pilot"] == [ann]


@pytest.mark.parametrize("command", ["add", "remove"])
def test_pilot_dry_run_changes_nothing(cli: Cli, onboarded, api, command):
    acct = onboarded()
    email = f"ann@{acct.domain}"
    if command == "remove":
        cli.run("account", "pilot", "add", acct.id, email)
    before = api.organization_by_alias(acct.id)["attributes"].get("apsis.pilot")
    result = cli.run("account", "pilot", command, acct.id, email, "--dry-run")
    assert "(dry run, nothing changed)" in result.stdout
    assert api.organization_by_alias(acct.id)["attributes"].get("apsis.pilot") == before
