"""Exit codes a scheduler can branch on: 75 (EX_TEMPFAIL) when Keycloak or Entra could not
be reached, timed out or was overloaded (5xx, 429) — retry later; 2 when the input is
wrong — retrying changes nothing. Keycloak is the real one; the failures come from a proxy
in front of it (an overloaded load balancer, a slow node) and from the Entra emulator's
documented fault answers."""

from __future__ import annotations

import pytest

from apsis_core.errors import EX_TEMPFAIL, KeycloakUnavailable
from apsis_core.keycloak import KeycloakRepository
from apsis_core.settings import Settings
from devenv.entra_emulator import EntraEmulator
from devenv.keycloak import free_port
from devenv.reverse_proxy import ReverseProxy
from tests.cli_fixtures import Cli, EntraApp


@pytest.mark.parametrize(("status", "retry_after"), [(503, None), (502, None), (429, 30)])
def test_keycloak_overloaded_exits_75(cli: Cli, settings: Settings, status: int, retry_after: int | None) -> None:
    with ReverseProxy.to(settings.keycloak_url) as proxy:
        proxy.answer_with(status, retry_after=retry_after)
        result = cli.run("account", "list", env={"APSIS_SSO_KEYCLOAK_URL": proxy.url}, expect=EX_TEMPFAIL)
    assert f"answered HTTP {status} to the token request" in result.stderr and "try again later" in result.stderr


def test_keycloak_answering_5xx_to_an_admin_request_is_temporary(settings: Settings, realm: str) -> None:
    with ReverseProxy.to(settings.keycloak_url) as proxy:
        api = KeycloakRepository.for_tooling(settings.model_copy(update={"keycloak_url": proxy.url}))
        api.users_count()  # works through the proxy; the token is held now
        proxy.answer_with(503, count=1)  # so the next answer refused is an Admin API one
        with pytest.raises(KeycloakUnavailable, match=r"answered HTTP 503 to GET users/count; try again later") as err:
            api.users_count()
        assert err.value.exit_code == EX_TEMPFAIL


def test_keycloak_timing_out_exits_75(cli: Cli, settings: Settings) -> None:
    with ReverseProxy.to(settings.keycloak_url) as proxy:
        proxy.stall(3)
        result = cli.run(
            "account",
            "list",
            env={"APSIS_SSO_KEYCLOAK_URL": proxy.url, "APSIS_SSO_KEYCLOAK_TIMEOUT": "1"},
            expect=EX_TEMPFAIL,
        )
    assert "did not answer in time" in result.stderr


def test_a_typo_still_exits_2(cli: Cli) -> None:
    assert "invalid account id" in cli.run("account", "show", "Not_An_Id", expect=2).stderr


def test_entra_unreachable_during_create_exits_75_and_creates_nothing(cli: Cli, entra_app, nothing_created) -> None:
    app: EntraApp = entra_app()
    result = cli.run(
        *app.create_args(), env={"APSIS_SSO_ENTRA_AUTHORITY": f"https://127.0.0.1:{free_port()}"}, expect=EX_TEMPFAIL
    )
    assert "is unreachable" in result.stderr and "try again later" in result.stderr
    nothing_created(app.account)
    by_domain = cli.run(
        *app.create_args(**{"--tenant-id": app.domain}),
        env={"APSIS_SSO_ENTRA_AUTHORITY": f"https://127.0.0.1:{free_port()}"},
        expect=EX_TEMPFAIL,
    )
    assert "is unreachable" in by_domain.stderr
    nothing_created(app.account)


@pytest.mark.parametrize("kind", ["server_error", "throttle"])
def test_entra_overloaded_during_create_exits_75_and_creates_nothing(
    cli: Cli,
    entra_app,
    nothing_created,
    emulator: EntraEmulator,
    kind: str,
) -> None:
    app: EntraApp = entra_app()
    emulator.inject_token_fault(kind, count=1, retry_after=20, tenant_id=app.tenant_id)
    result = cli.run(*app.create_args(), expect=EX_TEMPFAIL)
    status = 503 if kind == "server_error" else 429
    assert f"Entra answered HTTP {status} for a token for application {app.app_id}" in result.stderr
    if kind == "throttle":
        assert "retry after 20s" in result.stderr
    nothing_created(app.account)
    cli.run(*app.create_args())  # the same command later: done


def test_a_create_cut_short_by_keycloak_going_away_exits_75(cli: Cli, entra_app, api, monkeypatch) -> None:
    app: EntraApp = entra_app()

    def gone(self, org_id, alias):
        raise KeycloakUnavailable("Keycloak at http://kc is unreachable")

    monkeypatch.setattr(KeycloakRepository, "link_organization_idp", gone)
    result = cli.run(*app.create_args(), expect=EX_TEMPFAIL)
    # The link is the last of the four writes (a linked provider is a complete one).
    assert "stopped after 3 of 4 changes" in result.stderr and "run the same command again" in result.stderr
    assert api.organization_by_alias(app.account) is not None and api.identity_provider(f"entra-{app.account}")
    monkeypatch.undo()
    cli.run(*app.create_args())  # a retry completes it
    assert cli.json("account", "show", app.account)["complete"] is True
