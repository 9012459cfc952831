"""The CLI with look-alike and internationalised domains, against the real Keycloak: a
KELVIN SIGN never becomes ``k`` (exit 2, one line naming the character, nothing created or
changed), and a valid IDNA 2008 name is planned and stored as its A-label."""

from __future__ import annotations

from devenv.accounts import create_apsis_user
from tests.cli_fixtures import Cli, EntraApp

KELVIN = "\N{KELVIN SIGN}"


def test_create_refuses_a_kelvin_sign_domain_instead_of_planning_kelvin(cli: Cli, entra_app, nothing_created):
    app: EntraApp = entra_app()
    for option, value in (
        ("--domain", [f"{KELVIN}elvin.example"]),
        ("--it-contact-email", f"ivy@{KELVIN}elvin.example"),
        ("--test-user", [f"ann@{KELVIN}{app.domain[1:]}"]),
    ):
        result = cli.run(*app.create_args(**{option: value}), "--dry-run", expect=2)
        assert "U+212A KELVIN SIGN" in result.stderr, result.stderr
        assert len(result.stderr.splitlines()) == 1 and result.stdout == ""
    nothing_created(app.account)


def test_an_internationalised_domain_is_planned_and_stored_as_its_a_label(cli: Cli, entra_app, api, emulator):
    app: EntraApp = entra_app()
    idn = f"b\N{LATIN SMALL LETTER U WITH DIAERESIS}cher-{app.account}.example"
    a_label = idn.encode("idna").decode()  # IDNA 2003 agrees with 2008 for this name
    emulator.add_domain(app.tenant_id, a_label)  # the tenant owns it (DNS and Entra know A-labels only)
    doc = cli.json(*app.create_args(**{"--domain": [app.domain, idn]}), "--dry-run")
    assert a_label in str(doc["plan"]) and idn not in str(doc["plan"])
    cli.run(*app.create_args(**{"--domain": [app.domain, idn]}))
    org = api.organization_by_alias(app.account)
    assert sorted(d["name"] for d in org["domains"]) == sorted([app.domain, a_label])


def test_members_and_pilot_add_refuse_a_kelvin_sign_address(cli: Cli, onboarded, api):
    acct = onboarded()
    known = f"known@{acct.domain}"
    create_apsis_user(api, known)
    look_alike = f"known@{KELVIN}elvin.example"  # before: known@kelvin.example
    for command in ("members", "pilot"):
        result = cli.run("account", command, "add", acct.id, known, look_alike, expect=2)
        assert "U+212A KELVIN SIGN" in result.stderr, result.stderr
    org = api.organization_by_alias(acct.id)
    assert list(api.members(org["id"])) == []
    assert known not in (org["attributes"].get("apsis.pilot") or [])
