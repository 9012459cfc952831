"""`apsis-sso plan|apply -f accounts.yaml` and `export`, in a realm of their own (so
--prune sees only this module's accounts): plan -> apply -> plan (empty), idempotency,
updates, secret rotation, pruning that spares what the tool does not own, every bad
file, and the bulk property (a no-change plan's requests do not grow with accounts)."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from apsis_core.account import Account
from apsis_core.contract import IDP_MAPPERS_RESOURCE
from apsis_core.keycloak import KeycloakRepository
from apsis_core.settings import Settings
from devenv.keycloak import free_port
from provisioning import declarative, onboarding
from provisioning.plan import Plan
from tests.cli_fixtures import KNOWN_SECRETS, Cli, EntraApp, cli_environment


@pytest.fixture
def iso(isolated_realm: Settings, tmp_path: Path) -> Cli:
    work = tmp_path / "iso"
    work.mkdir()
    return Cli(env=cli_environment(isolated_realm), workdir=work)


@pytest.fixture
def iso_api(isolated_realm: Settings) -> KeycloakRepository:
    return KeycloakRepository.for_tooling(isolated_realm)


def entry(app: EntraApp, secret: dict[str, str] | None = None, **overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": app.account,
        "name": f"Account {app.account}",
        "tenant_id": app.tenant_id,
        "client_id": app.app_id,
        "client_secret": secret if secret is not None else {"file": str(app.secret_file)},
        "secret_expires": date.today() + timedelta(days=300),
        "domains": [app.domain],
        "it_contact": {"name": "Ivy IT", "email": f"it@{app.domain}"},
        "stage": "pilot",
        "pilot": [f"ann@{app.domain}"],
    }
    doc.update(overrides)
    return {k: v for k, v in doc.items() if v is not None}


def write(cli: Cli, *entries: dict[str, Any], name: str = "accounts.yaml") -> str:
    path = cli.workdir / name
    path.write_text(yaml.safe_dump({"version": 1, "accounts": list(entries)}, sort_keys=False))
    return str(path)


def test_plan_apply_plan_is_empty_and_apply_twice_changes_nothing(iso: Cli, iso_api, entra_app):
    a: EntraApp = entra_app()
    b: EntraApp = entra_app()
    env = {"B_SECRET": b.secret}
    path = write(iso, entry(a), entry(b, secret={"env": "B_SECRET"}, stage="live", pilot=[]))

    plan = iso.json("plan", "-f", path, env=env)
    assert set(plan) == {"file", "prune", "changes", "summary", "warnings"}
    assert plan["summary"] == {"create": 8, "update": 0, "delete": 0}
    assert {c["account"] for c in plan["changes"]} == {a.account, b.account}
    secret_fields = [f for c in plan["changes"] for f in c.get("fields", []) if f["path"] == "config.clientSecret"]
    assert secret_fields == [{"path": "config.clientSecret", "before": None, "after": "(set)"}] * 2
    assert iso_api.organization_by_alias(a.account) is None  # plan changes nothing
    iso.run("plan", "-f", path, "--detailed-exitcode", env=env, expect=3)

    table = iso.run("plan", "-f", path, env=env).stdout
    assert f"account {a.account}\n  + create organization {a.account}" in table
    assert "Plan: 8 to create, 0 to update, 0 to delete." in table

    applied = iso.run("apply", "-f", path, "--yes", env=env)
    assert "proving credentials with Entra: 2 credentials" in applied.stderr
    assert f"] client secret of account {a.account} accepted by Entra" in applied.stderr
    assert "applying: 2 accounts" in applied.stderr and f"] {a.account}: create organization, " in applied.stderr
    assert (
        iso_api.identity_provider(f"entra-{b.account}")["organizationId"]
        == iso_api.organization_by_alias(b.account)["id"]
    )
    assert iso_api.organization_by_alias(b.account)["attributes"]["apsis.stage"] == ["live"]

    assert iso.json("plan", "-f", path, env=env)["changes"] == []
    assert "No changes." in iso.run("plan", "-f", path, "--detailed-exitcode", env=env).stdout
    again = iso.json("apply", "-f", path, env=env)  # no --yes needed: nothing to confirm
    assert again["applied"] is False and again["changes"] == []
    assert "proving" not in iso.run("apply", "-f", path, env=env).stderr  # nothing to prove, nothing to apply


def test_updates_are_listed_per_account_and_converge(iso: Cli, iso_api, entra_app, emulator):
    a: EntraApp = entra_app()
    b: EntraApp = entra_app()
    emulator.add_domain(a.tenant_id, f"eu.{a.domain}")  # the domain added below is the tenant's too
    path = write(iso, entry(a), entry(b))
    iso.run("apply", "-f", path, "--yes")

    path = write(
        iso,
        entry(a, stage="live", pilot=[], name=f"Renamed {a.account}", domains=[a.domain, f"eu.{a.domain}"]),
        entry(b),
    )
    plan = iso.json("plan", "-f", path)
    assert {c["account"] for c in plan["changes"]} == {a.account}
    paths = {f["path"] for c in plan["changes"] for f in c.get("fields", [])}
    assert {"name", "domains", "attributes.apsis.stage", "attributes.apsis.pilot", "displayName"} <= paths
    iso.run("apply", "-f", path, "--yes")
    org = iso_api.organization_by_alias(a.account)
    assert org["name"] == f"Renamed {a.account}" and org["attributes"]["apsis.stage"] == ["live"]
    assert "apsis.pilot" not in org["attributes"] or org["attributes"]["apsis.pilot"] == []
    assert iso.json("plan", "-f", path)["changes"] == []

    path = write(
        iso,
        entry(a, stage="disabled", pilot=[], name=f"Renamed {a.account}", domains=[a.domain, f"eu.{a.domain}"]),
        entry(b),
    )
    iso.run("apply", "-f", path, "--yes")
    assert iso_api.identity_provider(f"entra-{a.account}")["enabled"] is False
    assert iso.json("plan", "-f", path)["changes"] == []


def test_many_accounts_are_proved_and_applied_side_by_side(iso: Cli, iso_api, entra_app):
    apps: list[EntraApp] = [entra_app() for _ in range(6)]
    bad = [apps[1], apps[4]]
    for app in bad:  # the secret file holds a secret Entra never issued
        wrong = "Wr0ng~" + app.secret[6:] + "x"
        KNOWN_SECRETS.add(wrong)
        app.secret_file.write_text(wrong)
    path = write(iso, *[entry(app) for app in apps])

    refused = iso.run("apply", "-f", path, "--yes", "--parallel", "3", expect=2)
    last = refused.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: account {bad[0].account}: Entra rejected the client secret (AADSTS7000215")
    assert last.endswith(f"(1 more account(s) failed the check too: {bad[1].account})")
    assert all(iso_api.organization_by_alias(app.account) is None for app in apps)  # nothing half-applied

    for app in bad:
        app.secret_file.write_text(app.secret)
    applied = iso.run("apply", "-f", path, "--yes", "--parallel", "3")
    lines = [line for line in applied.stderr.splitlines() if line.startswith("  [")]
    assert [line.split("] ")[1].split(":")[0] for line in lines[-6:]] == [app.account for app in apps]  # plan order
    for app in apps:
        org = iso_api.organization_by_alias(app.account)
        assert iso_api.identity_provider(f"entra-{app.account}")["organizationId"] == org["id"]
    assert iso.json("plan", "-f", path)["changes"] == []


def test_a_new_secret_in_the_file_is_masked_proved_and_rotated(iso: Cli, iso_api, entra_app):
    a: EntraApp = entra_app()
    path = write(iso, entry(a, secret={"env": "A_SECRET"}))
    iso.run("apply", "-f", path, "--yes", env={"A_SECRET": a.secret})

    wrong = "Wr0ng~" + a.secret[6:] + "x"
    KNOWN_SECRETS.add(wrong)
    refused = iso.run("apply", "-f", path, "--yes", env={"A_SECRET": wrong}, expect=2)
    assert "Entra rejected the client secret (AADSTS7000215" in refused.stderr
    assert iso_api.organization_by_alias(a.account)["attributes"]["apsis.secretHint"] == [a.secret[:3]]

    new = a.new_secret()
    plan = iso.json("plan", "-f", path, env={"A_SECRET": new})
    fields = {f["path"]: f for c in plan["changes"] for f in c.get("fields", [])}
    assert fields["config.clientSecret"] == {"path": "config.clientSecret", "before": "(set)", "after": "(changed)"}
    iso.run("apply", "-f", path, "--yes", env={"A_SECRET": new})
    assert iso_api.organization_by_alias(a.account)["attributes"]["apsis.secretHint"] == [new[:3]]
    assert iso.json("plan", "-f", path, env={"A_SECRET": new})["changes"] == []

    # Without a reference the current secret is kept, whatever it is.
    keep = entry(a)
    del keep["client_secret"]
    assert iso.json("plan", "-f", write(iso, keep, name="keep.yaml"))["changes"] == []


def test_prune_deletes_only_managed_accounts_missing_from_the_file(iso: Cli, iso_api, entra_app, unique):
    a: EntraApp = entra_app()
    b: EntraApp = entra_app()
    iso.run("apply", "-f", write(iso, entry(a), entry(b)), "--yes")
    hand = iso_api.create_organization(
        {"name": f"hand {unique}", "alias": f"{unique}-hand", "domains": [{"name": f"{unique}-hand.example"}]}
    )
    only_a = write(iso, entry(a), name="only-a.yaml")

    assert iso.json("plan", "-f", only_a)["changes"] == []  # without --prune nothing is deleted
    plan = iso.json("plan", "-f", only_a, "--prune")
    deletes = [(c["kind"], c["name"]) for c in plan["changes"] if c["action"] == "delete"]
    assert ("identity-provider", f"entra-{b.account}") in deletes and ("organization", b.account) in deletes
    assert all(c["account"] != f"{unique}-hand" for c in plan["changes"])

    declined = iso.run("apply", "-f", only_a, "--prune", input="n\n", expect=1)
    assert "aborted: nothing was changed" in declined.stderr
    assert iso_api.organization_by_alias(b.account) is not None

    iso.run("apply", "-f", only_a, "--prune", "--yes")
    assert iso_api.organization_by_alias(b.account) is None
    assert iso_api.identity_provider(f"entra-{b.account}") is None
    assert iso_api.organization_by_alias(a.account) is not None
    assert iso_api.organization(str(hand)) is not None
    assert iso.json("plan", "-f", only_a, "--prune")["changes"] == []
    iso_api.delete_organization(str(hand))


def test_a_pruned_accounts_domain_can_move_to_another_account_in_one_apply(iso: Cli, iso_api, entra_app, emulator):
    a: EntraApp = entra_app()
    b: EntraApp = entra_app()
    iso.run("apply", "-f", write(iso, entry(a), entry(b)), "--yes")
    emulator.move_domain(b.domain, a.tenant_id)  # the customers merged: b's domain is verified in a's tenant now
    moved = write(iso, entry(a, domains=[a.domain, b.domain]), name="moved.yaml")
    result = iso.run("apply", "-f", moved, "--prune", "--yes")
    assert "applied" in result.stderr
    assert sorted(d["name"] for d in iso_api.organization_by_alias(a.account)["domains"]) == sorted(
        [a.domain, b.domain]
    )


def test_an_organization_the_tool_does_not_own_is_never_changed(iso: Cli, iso_api, entra_app):
    a: EntraApp = entra_app()
    org_id = iso_api.create_organization(
        {"name": f"hand {a.account}", "alias": a.account, "domains": [{"name": f"hand.{a.domain}"}]}
    )
    result = iso.run("apply", "-f", write(iso, entry(a)), "--yes", expect=2)
    assert f"organization '{a.account}' exists but is not managed by apsis-sso; leaving it alone" in result.stderr
    assert iso_api.organization(str(org_id))["name"] == f"hand {a.account}"
    assert iso_api.identity_provider(f"entra-{a.account}") is None
    iso_api.delete_organization(str(org_id))


def test_apply_dry_run_and_declined_confirmation_change_nothing(iso: Cli, iso_api, entra_app):
    a: EntraApp = entra_app()
    path = write(iso, entry(a))
    dry = iso.run("apply", "-f", path, "--dry-run")
    assert "Plan: 4 to create" in dry.stdout
    declined = iso.run("apply", "-f", path, expect=1)  # nobody to answer: no
    assert "Apply 4 create(s), 0 update(s), 0 delete(s)?" in declined.stderr
    assert iso_api.organization_by_alias(a.account) is None
    typed = iso.run("apply", "-f", path, input="y\n")
    assert "applied" in typed.stderr
    assert iso_api.organization_by_alias(a.account) is not None


def test_an_expired_date_already_recorded_is_a_warning_a_new_one_an_error(iso: Cli, iso_api, entra_app):
    a: EntraApp = entra_app()
    iso.run("apply", "-f", write(iso, entry(a)), "--yes")
    past = date.today() - timedelta(days=3)
    org = iso_api.organization_by_alias(a.account)
    org["attributes"]["apsis.secretExpires"] = [past.isoformat()]  # time passed; nobody rotated
    iso_api.update_organization(org["id"], org)

    plan = iso.json("plan", "-f", write(iso, entry(a, secret_expires=past)))
    assert plan["changes"] == []
    assert f"account {a.account}: the client secret expired on {past.isoformat()}" in plan["warnings"]
    older = past - timedelta(days=1)
    result = iso.run("plan", "-f", write(iso, entry(a, secret_expires=older)), expect=2)
    assert f"secret_expires {older.isoformat()} is not in the future" in result.stderr


def test_export_writes_a_file_whose_plan_is_empty(iso: Cli, entra_app):
    a: EntraApp = entra_app()
    b: EntraApp = entra_app()
    iso.run("apply", "-f", write(iso, entry(a), entry(b, stage="live")), "--yes")
    out = iso.workdir / "exported.yaml"
    iso.run("export", "--out", str(out))
    doc = yaml.safe_load(out.read_text())
    rows = {r["id"]: r for r in doc["accounts"]}
    assert rows[b.account]["stage"] == "live" and "client_secret" not in rows[a.account]
    assert iso.json("plan", "-f", str(out), "--prune")["changes"] == []
    assert yaml.safe_load(iso.run("export").stdout) == doc


BAD_FILES: dict[str, tuple[str | bytes, str]] = {
    "yaml syntax": ("accounts: [\n  - id: x\n    name: [unclosed\n", "not valid YAML at line"),
    "not a mapping": ("- just\n- a list\n", "expected a mapping with an `accounts:` list"),
    "no accounts key": ("version: 1\n", "accounts: Field required"),
    "unknown version": ("version: 2\naccounts: []\n", "version: Input should be 1"),
    "not utf-8 (latin-1)": (
        "version: 1\naccounts:\n  - id: acme\n    name: Åbro AB\n".encode("latin-1"),
        "not UTF-8 text (byte 0xc5 at line 4, column 11); save the file as UTF-8",
    ),
    "not utf-8 (utf-16)": (
        "version: 1\naccounts: []\n".encode("utf-16"),
        "not UTF-8 text (byte 0xff at line 1, column 1)",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_malformed_file_is_one_line_exit_2(iso: Cli, case):
    content, message = BAD_FILES[case]
    path = iso.workdir / "bad.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    for command in ("plan", "apply"):
        result = iso.run(command, "-f", str(path), "--yes" if command == "apply" else "--prune", expect=2)
        assert message in result.stderr
        assert str(path) in result.stderr


def _bad_entry(case: str, a: EntraApp, b: EntraApp) -> tuple[list[dict[str, Any]], str]:
    good_a = entry(a)
    bad = dict(good_a)
    if case == "unknown key":
        bad["domian"] = [a.domain]
        return [bad], f"accounts[0] ({a.account}).domian: unknown key"
    if case == "inline secret":
        bad["client_secret"] = a.secret
        return [bad], "client_secret: must be a reference, {env: NAME} or {file: PATH}, never the secret itself"
    if case == "secret ref with env and file":
        bad["client_secret"] = {"env": "X", "file": "y"}
        return [bad], "give exactly one of env: NAME or file: PATH"
    if case == "secret env unset":
        bad["client_secret"] = {"env": "NOT_SET_ANYWHERE"}
        return [bad], f"accounts[0] ({a.account}): client_secret: environment variable NOT_SET_ANYWHERE is not set"
    if case == "secret file missing":
        bad["client_secret"] = {"file": "no/such.secret"}
        return [bad], "client_secret: cannot read"
    if case == "duplicate account":
        return [good_a, good_a], f"account '{a.account}' is listed twice"
    if case == "duplicate domain":
        return [good_a, entry(b, domains=[b.domain, a.domain])], f"domain {a.domain} is listed for both"
    if case == "bad email":
        bad["pilot"] = ["ann@"]
        return [bad], f"accounts[0] ({a.account}): invalid email 'ann@'"
    if case == "bad domain":
        bad["domains"] = ["under_score.example"]
        return [bad], "invalid domain 'under_score.example'"
    if case == "bad tenant":
        bad["tenant_id"] = "not a tenant"
        return [bad], "invalid tenant id 'not a tenant'"
    if case == "bad date":
        bad["secret_expires"] = "next spring"
        return [bad], "invalid date 'next spring'"
    if case == "past date for a new account":
        bad["secret_expires"] = date(2020, 1, 1)
        return [bad], "secret_expires 2020-01-01 is not in the future"
    if case == "bad stage":
        bad["stage"] = "beta"
        return [bad], "stage: Input should be 'awaiting-setup', 'pilot', 'live' or 'disabled'"
    if case == "bad account id":
        bad["id"] = "Not OK"
        return [bad], "invalid account id 'Not OK'"
    if case == "no domains":
        bad["domains"] = []
        return [bad], "at least one --domain is required"
    if case == "name of 100,000 characters":
        bad["name"] = "A" * 100_000
        return (
            [bad],
            f"accounts[0] ({a.account}): account {a.account}: the name is 100000 characters long; "
            "Keycloak stores at most 255",
        )
    if case == "IT contact name of 256 characters":
        bad["it_contact"] = {"name": "I" * 256, "email": f"it@{a.domain}"}
        return [bad], "the IT contact's name is 256 characters long; Keycloak stores at most 255"
    if case == "name with a newline":
        bad["name"] = "Acme\nAB"
        return [bad], "the name 'Acme\\nAB' contains a control character"
    if case == "email longer than 254":
        bad["pilot"] = [f"{'p' * 64}@{'d' * 60}.{'e' * 60}.{'f' * 60}.{'g' * 60}.example"]
        return [bad], "longer than 254 characters"
    if case == "secret file not utf-8":
        secret_file = a.secret_file.with_suffix(".latin1")
        secret_file.write_bytes(b"S\xe9cret-value-1234")
        bad["client_secret"] = {"file": str(secret_file)}
        return [bad], f"client_secret: {secret_file} is not UTF-8 text"
    raise AssertionError(case)


BAD_ENTRIES = [
    "unknown key",
    "inline secret",
    "secret ref with env and file",
    "secret env unset",
    "secret file missing",
    "duplicate account",
    "duplicate domain",
    "bad email",
    "bad domain",
    "bad tenant",
    "bad date",
    "past date for a new account",
    "bad stage",
    "bad account id",
    "no domains",
    "name of 100,000 characters",
    "IT contact name of 256 characters",
    "name with a newline",
    "email longer than 254",
    "secret file not utf-8",
]


@pytest.mark.parametrize("case", BAD_ENTRIES)
def test_a_bad_entry_is_one_line_exit_2_and_nothing_is_applied(iso: Cli, iso_api, entra_app, case):
    a: EntraApp = entra_app()
    b: EntraApp = entra_app()
    entries, message = _bad_entry(case, a, b)
    path = write(iso, *entries)
    result = iso.run("apply", "-f", path, "--yes", expect=2)
    assert message in result.stderr
    assert len(result.stderr) < 500, "the error repeats the bad value"
    assert result.stdout == ""
    assert iso_api.organization_by_alias(a.account) is None and iso_api.organization_by_alias(b.account) is None


@pytest.mark.parametrize("case", ["name of 100,000 characters", "email longer than 254", "secret file not utf-8"])
def test_bad_input_in_the_file_is_refused_before_any_request(iso: Cli, entra_app, case):
    """With Keycloak unreachable, the file's own error (not "unreachable") proves that
    nothing was asked of Keycloak or Entra before validation."""
    a: EntraApp = entra_app()
    entries, message = _bad_entry(case, a, entra_app())
    nowhere = {
        "APSIS_SSO_KEYCLOAK_URL": f"http://127.0.0.1:{free_port()}",
        "APSIS_SSO_ENTRA_AUTHORITY": f"https://127.0.0.1:{free_port()}",
    }
    for command in ("plan", "apply"):
        result = iso.run(command, "-f", write(iso, *entries), env=nowhere, expect=2)
        assert message in result.stderr


def test_a_non_utf8_file_is_refused_before_any_request(iso: Cli):
    path = iso.workdir / "latin1.yaml"
    path.write_bytes("version: 1\naccounts:\n  - id: acme\n    name: Åbro AB\n".encode("latin-1"))
    result = iso.run(
        "plan", "-f", str(path), env={"APSIS_SSO_KEYCLOAK_URL": f"http://127.0.0.1:{free_port()}"}, expect=2
    )
    assert result.stderr == f"error: {path}: not UTF-8 text (byte 0xc5 at line 4, column 11); save the file as UTF-8\n"


def test_a_domain_of_an_existing_account_is_refused(iso: Cli, iso_api, entra_app):
    a: EntraApp = entra_app()
    b: EntraApp = entra_app()
    iso.run("apply", "-f", write(iso, entry(a)), "--yes")
    result = iso.run(
        "apply", "-f", write(iso, entry(b, domains=[b.domain, a.domain]), name="b.yaml"), "--yes", expect=2
    )
    assert f"domain {a.domain} belongs to account '{a.account}'" in result.stderr
    assert iso_api.organization_by_alias(b.account) is None


def test_a_tenant_given_as_a_domain_is_pinned_as_its_guid(iso: Cli, iso_api, entra_app):
    a: EntraApp = entra_app()
    path = write(iso, entry(a, tenant_id=a.domain))
    iso.run("apply", "-f", path, "--yes")
    assert iso_api.organization_by_alias(a.account)["attributes"]["apsis.tenantId"] == [a.tenant_id]
    assert iso.json("plan", "-f", path)["changes"] == []


def test_plan_shows_its_progress_on_stderr_and_json_stays_alone_on_stdout(iso: Cli, entra_app):
    a: EntraApp = entra_app()
    b: EntraApp = entra_app()
    path = write(iso, entry(a, tenant_id=a.domain), entry(b))
    iso.run("apply", "-f", path, "--yes")

    planned = iso.run("plan", "-f", path, "-o", "json")
    assert json.loads(planned.stdout)["changes"] == []  # stdout is the document and nothing else
    lines = planned.stderr.splitlines()  # not a terminal: plain lines
    # The realm is this module's: it may hold other tests' accounts too (n organizations).
    n = int(re.fullmatch(r"reading organizations: (\d+) organizations", lines[0])[1])  # type: ignore[index]
    assert n >= 2 and re.fullmatch(
        rf"reading organizations: {n} of {n} organizations in [\d.]+ s(, \d+ organizations/s)?", lines[1]
    )
    assert lines[2] == "reading identity providers"
    assert re.fullmatch(r"reading identity providers: \d+ identity providers in [\d.]+ s.*", lines[3])
    assert lines[4:6] == [
        "resolving tenant domains with Entra: 1 tenants",
        f"  [1/1] {a.account}: tenant {a.domain} is {a.tenant_id}",
    ]
    assert lines[6].startswith("resolving tenant domains with Entra: 1 of 1 tenants in ")
    assert lines[7] == "comparing with the file: 2 accounts"
    assert lines[8].startswith("comparing with the file: 2 of 2 accounts in ") and len(lines) == 9

    table = iso.run("plan", "-f", path)
    assert "No changes." in table.stdout and "reading" not in table.stdout
    assert "comparing with the file: 2 of 2 accounts in " in table.stderr


def test_a_no_change_plan_costs_a_few_listings_however_many_accounts(isolated_realm, iso_api, unique, tmp_path):
    """The cost behind bench/plan_noop.py: paged listings of organizations and IdPs, and one
    listing of every IdP mapper (the extension's ``apsis-sso/idp-mappers``), however many
    accounts; comparing the real mappers is what makes a hand edit visible."""

    def onboard(n: int, tag: str) -> list[Account]:
        made = []
        for i in range(n):
            account_id = f"{unique}{tag}{i}"
            secret = f"Bulk~{account_id}~secret"
            account = Account.build(
                id=account_id,
                name=f"Bulk {account_id}",
                tenant_id="00000000-0000-0000-0000-0000000000aa",
                client_id="00000000-0000-0000-0000-0000000000bb",
                domains=[f"{account_id}.example"],
                secret_expires=date.today() + timedelta(days=90),
                it_contact_name="Ivy",
                it_contact_email=f"it@{account_id}.example",
                client_secret=secret,
            )
            onboarding.create(
                iso_api, isolated_realm, account, check_secret=False, allow_unproven="bulk accounts of a made-up tenant"
            )
            made.append(account.with_changes(client_secret=None))
        return made

    def plan_of(accounts: list[Account]) -> tuple[Plan, int]:
        api = KeycloakRepository.for_tooling(isolated_realm)
        plan = declarative.plan(api, isolated_realm, declarative.Desired(path=tmp_path / "x.yaml", accounts=accounts))
        return plan, api.requests

    few = onboard(2, "f")
    plan, cost_few = plan_of(few)
    assert plan.empty, [c.to_dict() for c in plan.changes]
    many = few + onboard(10, "m")
    plan, cost_many = plan_of(many)
    assert plan.empty and cost_many == cost_few <= 3

    # A mapper deleted by hand is seen through the one listing, and apply puts it back.
    alias = f"entra-{many[5].id}"
    mapper = iso_api.idp_mappers(alias)[0]
    iso_api.delete_idp_mapper(alias, mapper["id"])
    plan, cost = plan_of(many)
    assert cost == cost_few and [(c.kind, c.name) for c in plan.changes] == [("idp-mappers", alias)]
    plan.apply(iso_api)
    assert [m["name"] for m in iso_api.idp_mappers(alias)] == [mapper["name"]]


def test_the_mapper_listing_needs_the_right_to_view_identity_providers(isolated_realm, iso_api):
    import requests

    url = f"{isolated_realm.keycloak_url}/realms/{isolated_realm.realm}/{IDP_MAPPERS_RESOURCE}"
    assert requests.get(url, timeout=30).status_code == 401
    admin = KeycloakRepository.for_admin(isolated_realm)
    # A client of this realm with a service account but no realm-management role.
    uuid = admin.create_client(
        {
            "clientId": "no-roles",
            "serviceAccountsEnabled": True,
            "publicClient": False,
            "standardFlowEnabled": False,
            "secret": "no-roles-secret-0123456789",
        }
    )
    master_token = admin.admin.connection.token["access_token"]  # a master-realm admin: not this realm's
    assert requests.get(url, headers={"Authorization": f"Bearer {master_token}"}, timeout=30).status_code == 401
    token = requests.post(
        f"{isolated_realm.keycloak_url}/realms/{isolated_realm.realm}/protocol/openid-connect/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "no-roles",
            "client_secret": "no-roles-secret-0123456789",
        },
        timeout=30,
    ).json()["access_token"]
    assert requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30).status_code == 403
    listed = iso_api.all_idp_mappers()  # the tooling may, and sees every provider's own
    assert uuid and listed is not None
    for alias, mappers in listed.items():
        assert [m["id"] for m in mappers] == [m["id"] for m in iso_api.idp_mappers(alias)]


# -- the daemon's copy of each secret --------------------------------------------------------


def test_apply_hands_every_new_or_changed_secret_to_the_daemon(cli: Cli, entra_app, sync, tmp_path):
    """25 accounts applied from a file all failed their first sync with "no client secret":
    apply must write apsis-sync's copy in the same run, and plan must say it will."""
    harness = sync()
    daemon_dir = harness.sync_settings.secrets_path
    env = {"APSIS_SSO_SYNC_SECRETS_DIR": str(daemon_dir), "B_SECRET": ""}
    a: EntraApp = entra_app()
    b: EntraApp = entra_app()
    env["B_SECRET"] = b.secret
    path = write(cli, entry(a), entry(b, secret={"env": "B_SECRET"}))

    unset = cli.json("plan", "-f", path, env={**env, "APSIS_SSO_SYNC_SECRETS_DIR": None})
    assert not [c for c in unset["changes"] if c["kind"] == "daemon-secret"]
    assert (
        f"APSIS_SSO_SYNC_SECRETS_DIR is not set: hand the new secret of {a.account}, {b.account} to apsis-sync "
        "with `apsis-sync secret set ACCOUNT`"
    ) in unset["warnings"]

    plan = cli.json("plan", "-f", path, env=env)
    assert not [w for w in plan["warnings"] if "APSIS_SSO_SYNC_SECRETS_DIR" in w]
    daemon = [c for c in plan["changes"] if c["kind"] == "daemon-secret"]
    assert [(c["action"], c["name"]) for c in daemon] == [("create", a.account), ("create", b.account)]
    assert daemon[0]["fields"] == [{"path": "secret", "before": None, "after": "(set)"}]
    assert daemon[0]["note"] == f"for apsis-sync: {daemon_dir / a.account}"
    assert "+ create daemon-secret" in cli.run("plan", "-f", path, env=env).stdout
    assert not (daemon_dir / a.account).exists()  # a plan writes nothing

    cli.run("apply", "-f", path, "--yes", env=env)
    for app in (a, b):
        assert harness.secrets.get(app.account).get_secret_value() == app.secret
        assert (daemon_dir / app.account).stat().st_mode & 0o777 == 0o600
    report = harness.cycle(*(SimpleNamespace(id=app.account) for app in (a, b)))
    for app in (a, b):
        result = report.result(app.account)
        assert result.status == "ok", result.errors
    assert cli.json("plan", "-f", path, env=env)["changes"] == []

    # A new secret in the file: Keycloak's and the daemon's copies change in one apply.
    new = b.new_secret()
    env["B_SECRET"] = new
    plan = cli.json("plan", "-f", path, env=env)
    fields = {(c["kind"], f["path"]): f for c in plan["changes"] for f in c.get("fields", [])}
    assert fields[("daemon-secret", "secret")] == {"path": "secret", "before": "(set)", "after": "(changed)"}
    assert fields[("identity-provider", "config.clientSecret")]["after"] == "(changed)"
    cli.run("apply", "-f", path, "--yes", env=env)
    assert harness.secrets.get(b.account).get_secret_value() == new

    # A copy lost (or never written, before this fix) is restored without touching Keycloak.
    (daemon_dir / a.account).unlink()
    plan = cli.json("plan", "-f", path, env=env)
    assert [(c["action"], c["kind"], c["name"]) for c in plan["changes"]] == [("create", "daemon-secret", a.account)]
    applied = cli.run("apply", "-f", path, "--yes", env=env)
    assert "proving" not in applied.stderr  # Keycloak holds that secret already
    assert harness.secrets.get(a.account).get_secret_value() == a.secret

    # Without a secret reference the file cannot know the secret: nothing to hand over.
    keep = entry(a)
    del keep["client_secret"]
    (daemon_dir / a.account).unlink()
    assert cli.json("plan", "-f", write(cli, keep, name="keep.yaml"), env=env)["changes"] == []


def test_an_unusable_daemon_secrets_dir_is_refused_before_any_change(cli: Cli, entra_app, tmp_path, nothing_created):
    a: EntraApp = entra_app()
    not_a_dir = tmp_path / "plain-file"
    not_a_dir.write_text("")
    result = cli.run(
        "apply", "-f", write(cli, entry(a)), "--yes", env={"APSIS_SSO_SYNC_SECRETS_DIR": str(not_a_dir)}, expect=2
    )
    assert f"cannot read apsis-sync's secret file {not_a_dir / a.account}" in result.stderr
    nothing_created(a.account)


def test_prune_removes_the_daemons_copy_of_a_pruned_accounts_secret(iso: Cli, iso_api, entra_app, tmp_path):
    daemon_dir = tmp_path / "daemon"
    env = {"APSIS_SSO_SYNC_SECRETS_DIR": str(daemon_dir)}
    a: EntraApp = entra_app()
    b: EntraApp = entra_app()
    iso.run("apply", "-f", write(iso, entry(a), entry(b)), "--yes", env=env)
    assert (daemon_dir / b.account).exists()
    only_a = write(iso, entry(a), name="only-a.yaml")
    plan = iso.json("plan", "-f", only_a, "--prune", env=env)
    assert ("delete", "daemon-secret", b.account) in [(c["action"], c["kind"], c["name"]) for c in plan["changes"]]
    iso.run("apply", "-f", only_a, "--prune", "--yes", env=env)
    assert not (daemon_dir / b.account).exists() and (daemon_dir / a.account).exists()


# -- drift: what the templates own, as Keycloak holds it now --------------------------------


MAPPER = "entra object id as user id"


def _plan_paths(cli: Cli, path: str) -> dict[tuple[str, str], dict[str, Any]]:
    plan = cli.json("plan", "-f", path)
    return {(c["kind"], f["path"]): f for c in plan["changes"] for f in c.get("fields", [])}


def _repaired(cli: Cli, path: str) -> None:
    cli.run("plan", "-f", path, "--detailed-exitcode", expect=3)
    cli.run("apply", "-f", path, "--yes")
    assert cli.json("plan", "-f", path)["changes"] == []


def test_a_mapper_deleted_edited_retyped_or_added_by_hand_shows_and_is_repaired(iso: Cli, iso_api, entra_app):
    a: EntraApp = entra_app()
    alias = f"entra-{a.account}"
    path = write(iso, entry(a))
    iso.run("apply", "-f", path, "--yes")

    def ours() -> list[dict[str, Any]]:
        return [m for m in iso_api.idp_mappers(alias) if m["name"] == MAPPER]

    # deleted in the admin console: links would silently fall back to the pairwise sub
    iso_api.delete_idp_mapper(alias, ours()[0]["id"])
    paths = _plan_paths(iso, path)
    assert paths[("idp-mappers", f"mapper[{MAPPER}].identityProviderMapper")] == {
        "path": f"mapper[{MAPPER}].identityProviderMapper",
        "before": None,
        "after": "apsis-entra-oid-mapper",
    }
    _repaired(iso, path)
    assert [m["identityProviderMapper"] for m in ours()] == ["apsis-entra-oid-mapper"]

    # its configuration edited
    mapper = ours()[0]
    mapper["config"]["tenantId"] = "00000000-0000-0000-0000-000000000000"
    iso_api.update_idp_mapper(alias, mapper["id"], mapper)
    paths = _plan_paths(iso, path)
    assert paths[("idp-mappers", f"mapper[{MAPPER}].config.tenantId")]["after"] == a.tenant_id
    _repaired(iso, path)
    assert ours()[0]["config"]["tenantId"] == a.tenant_id

    # replaced by a mapper of another type under the same name
    iso_api.delete_idp_mapper(alias, ours()[0]["id"])
    iso_api.create_idp_mapper(
        alias,
        {
            "name": MAPPER,
            "identityProviderAlias": alias,
            "identityProviderMapper": "hardcoded-attribute-idp-mapper",
            "config": {"syncMode": "INHERIT", "attribute": "x", "attribute.value": "y"},
        },
    )
    paths = _plan_paths(iso, path)
    assert (
        paths[("idp-mappers", f"mapper[{MAPPER}].identityProviderMapper")]["before"] == "hardcoded-attribute-idp-mapper"
    )
    _repaired(iso, path)
    assert [m["identityProviderMapper"] for m in ours()] == ["apsis-entra-oid-mapper"]

    # one added by hand: the template owns the IdP's whole mapper list
    iso_api.create_idp_mapper(
        alias,
        {
            "name": "grant admin",
            "identityProviderAlias": alias,
            "identityProviderMapper": "oidc-hardcoded-role-idp-mapper",
            "config": {"syncMode": "INHERIT", "role": "admin"},
        },
    )
    paths = _plan_paths(iso, path)
    assert paths[("idp-mappers", "mapper[grant admin]")]["after"] is None
    _repaired(iso, path)
    assert [m["name"] for m in iso_api.idp_mappers(alias)] == [MAPPER]


def test_hand_edits_of_the_identity_provider_and_organization_show_and_are_repaired(iso: Cli, iso_api, entra_app):
    a: EntraApp = entra_app()
    alias = f"entra-{a.account}"
    path = write(iso, entry(a))
    iso.run("apply", "-f", path, "--yes")

    idp = iso_api.identity_provider(alias)
    idp.update(hideOnLogin=False, trustEmail=True, firstBrokerLoginFlowAlias="first broker login")
    idp["config"].update(validateIssuer="false", disableUserInfo="false", defaultScope="openid")
    iso_api.update_identity_provider(alias, idp)
    org = iso_api.organization_by_alias(a.account)
    org["description"] = "edited by hand"
    org["attributes"]["apsis.stage"] = ["live"]
    org["attributes"]["apsis.pilot"] = ["mallory@elsewhere.example"]
    iso_api.update_organization(org["id"], org)

    paths = _plan_paths(iso, path)
    for kind, field in [
        ("identity-provider", "hideOnLogin"),
        ("identity-provider", "trustEmail"),
        ("identity-provider", "firstBrokerLoginFlowAlias"),
        ("identity-provider", "config.validateIssuer"),
        ("identity-provider", "config.disableUserInfo"),
        ("identity-provider", "config.defaultScope"),
        ("organization", "description"),
        ("organization", "attributes.apsis.stage"),
        ("organization", "attributes.apsis.pilot"),
    ]:
        assert (kind, field) in paths, (kind, field)
    _repaired(iso, path)
    idp = iso_api.identity_provider(alias)
    assert idp["hideOnLogin"] is True and idp["trustEmail"] is False
    assert idp["firstBrokerLoginFlowAlias"] == "apsis first broker login"
    assert idp["config"]["validateIssuer"] == "true" and idp["config"]["disableUserInfo"] == "true"
    assert iso_api.organization_by_alias(a.account)["attributes"]["apsis.stage"] == ["pilot"]
