"""Graph misbehaving: throttling (Retry-After honoured, as the wait requested — the test's
sleep records instead of sleeping), server errors retried with backoff, and one failing
account never stopping the others."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC

from pydantic import SecretStr

from apsis_core.keycloak import KeycloakRepository
from devenv.accounts import AccountFactory
from devenv.entra_emulator import EntraEmulator
from tests.sync_fixtures import PLATFORM_TEAM, SmtpServer, SyncHarness, entra_oid


def delta_calls(emulator: EntraEmulator, status: int) -> int:
    return sum(1 for r in emulator.requests_log if r["path"].endswith("/users/delta") and r["status"] == status)


def test_429_waits_exactly_what_retry_after_asks_then_succeeds(
    accounts: AccountFactory,
    api: KeycloakRepository,
    emulator: EntraEmulator,
    sync: Callable[..., SyncHarness],
) -> None:
    acct = accounts.create(stage="live")
    email, user_id = acct.person("tia")
    harness = sync()
    harness.add(acct)
    harness.cycle(acct)
    emulator.delete_user(acct.tenant_id, entra_oid(emulator, acct, email))
    emulator.clear_requests_log()
    emulator.inject_graph_fault(
        "throttle", count=2, retry_after=7, path_contains="/users/delta", tenant_id=acct.tenant_id
    )

    result = harness.cycle(acct).result(acct.id)
    assert result.status == "ok", result.errors
    assert harness.waits == [7.0, 7.0]
    assert result.graph_waits == [("throttled", 7.0), ("throttled", 7.0)]
    assert delta_calls(emulator, 429) == 2 and delta_calls(emulator, 200) == 1
    assert [a.user_id for a in result.actions] == [user_id]
    retried = harness.rt.metrics.registry.get_sample_value("apsis_sync_graph_retries_total", {"reason": "throttled"})
    assert retried == 2.0


def test_5xx_is_retried_with_growing_backoff(
    accounts: AccountFactory,
    emulator: EntraEmulator,
    sync: Callable[..., SyncHarness],
) -> None:
    acct = accounts.create(stage="live")
    acct.person("uma")
    harness = sync(graph_backoff_seconds=0.5)
    harness.add(acct)
    emulator.inject_graph_fault(
        "server_error", count=2, status=503, retry_after=None, path_contains="/users/delta", tenant_id=acct.tenant_id
    )
    emulator.inject_graph_fault(
        "server_error", count=1, status=500, retry_after=None, path_contains="/users/delta", tenant_id=acct.tenant_id
    )
    result = harness.cycle(acct).result(acct.id)
    assert result.status == "ok", result.errors
    assert [r for r, _ in result.graph_waits] == ["server_error"] * 3
    # Backoff without Retry-After: half fixed, half jitter, doubling per attempt (0.5, 1, 2 s).
    for attempt, wait in enumerate(harness.waits, start=1):
        base = 0.5 * 2 ** (attempt - 1)
        assert base / 2 <= wait <= base
    assert harness.state.delta_link(acct.id)


def test_a_503_with_retry_after_is_honoured_too(
    accounts: AccountFactory,
    emulator: EntraEmulator,
    sync: Callable[..., SyncHarness],
) -> None:
    acct = accounts.create(stage="live")
    harness = sync()
    harness.add(acct)
    emulator.inject_graph_fault("server_error", count=1, status=503, retry_after=3, tenant_id=acct.tenant_id)
    assert harness.cycle(acct).result(acct.id).status == "ok"
    assert harness.waits == [3.0]


def test_a_retry_after_longer_than_allowed_fails_the_account_for_this_cycle_without_waiting(
    accounts: AccountFactory,
    emulator: EntraEmulator,
    sync: Callable[..., SyncHarness],
) -> None:
    acct = accounts.create(stage="live")
    harness = sync(graph_max_wait_seconds=60)
    harness.add(acct)
    emulator.inject_graph_fault("throttle", count=1, retry_after=600, tenant_id=acct.tenant_id)
    result = harness.cycle(acct).result(acct.id)
    assert result.status == "error"
    assert harness.waits == []
    assert "asked to retry after 600s" in result.errors[0]
    assert harness.state.account(acct.id).last_errors == result.errors
    assert harness.cycle(acct).result(acct.id).status == "ok"  # next cycle: fine again


def test_failing_accounts_do_not_stop_the_others(
    accounts: AccountFactory,
    api: KeycloakRepository,
    emulator: EntraEmulator,
    sync: Callable[..., SyncHarness],
    smtp_server: SmtpServer,
) -> None:
    wrong_secret = accounts.create(stage="live")
    down = accounts.create(stage="live")
    no_secret = accounts.create(stage="live")
    healthy = accounts.create(stage="live")
    email, user_id = healthy.person("vic")
    harness = sync(graph_max_attempts=3)
    harness.add(down, healthy)
    # A secret the customer deleted in Entra: it still starts with the recorded hint.
    harness.secrets.put(wrong_secret.id, SecretStr(wrong_secret.secret[:3] + "W" * 37))
    harness.cycle(healthy)
    emulator.delete_user(healthy.tenant_id, entra_oid(emulator, healthy, email))
    emulator.inject_graph_fault("server_error", count=50, status=502, retry_after=None, tenant_id=down.tenant_id)

    report = harness.cycle(wrong_secret, down, no_secret, healthy)
    emulator.clear_faults()
    assert not report.ok
    r_wrong, r_down, r_none, r_ok = (report.result(a.id) for a in (wrong_secret, down, no_secret, healthy))
    assert r_wrong.status == "error" and "AADSTS7000215" in r_wrong.errors[0]
    assert r_down.status == "error" and "kept failing with HTTP 502 after 3 attempts" in r_down.errors[0]
    assert r_none.status == "error" and r_none.errors[0].startswith(f"no client secret for account {no_secret.id}")
    assert r_ok.status == "ok" and [a.user_id for a in r_ok.actions] == [user_id]
    assert api.user(user_id)["enabled"] is False  # type: ignore[index]
    # The wrong secret is flagged to the IT contact at once, and only once.
    invalid = smtp_server.messages(to=f"it@{wrong_secret.domain}", kind="token-invalid")
    assert len(invalid) == 1
    harness.cycle(wrong_secret)
    assert len(smtp_server.messages(to=f"it@{wrong_secret.domain}", kind="token-invalid")) == 1
    statuses = {s.account: s.last_status for s in harness.state.accounts()}
    assert statuses[wrong_secret.id] == "error" and statuses[healthy.id] == "ok"


def test_the_token_endpoint_throttling_and_5xx_are_retried_by_the_same_policy(
    accounts: AccountFactory,
    emulator: EntraEmulator,
    sync: Callable[..., SyncHarness],
) -> None:
    acct = accounts.create(stage="live")
    harness = sync()
    harness.add(acct)
    emulator.inject_token_fault("throttle", count=1, retry_after=5, tenant_id=acct.tenant_id)
    emulator.inject_token_fault("server_error", count=1, retry_after=None, tenant_id=acct.tenant_id)
    result = harness.cycle(acct).result(acct.id)
    assert result.status == "ok", result.errors
    assert [r for r, _ in result.graph_waits] == ["token_throttled", "token_server_error"]
    assert harness.waits[0] == 5.0 and 0.5 <= harness.waits[1] <= 1.0


def test_an_unreachable_entra_fails_the_account_quickly_with_one_line(
    accounts: AccountFactory,
    sync: Callable[..., SyncHarness],
) -> None:
    from tests.sync_fixtures import free_port

    acct = accounts.create(stage="live")
    harness = sync(graph_max_attempts=3)
    harness.add(acct)
    nowhere = f"https://127.0.0.1:{free_port()}"
    harness.rt.settings = harness.rt.settings.model_copy(
        update={"entra_authority": nowhere, "graph_base_url": f"{nowhere}/v1.0"}
    )
    result = harness.cycle(acct).result(acct.id)
    assert result.status == "error"
    assert result.errors[0] == f"Entra at 127.0.0.1 is unreachable for tenant {acct.tenant_id} (ServiceRequestError)"
    assert len(harness.waits) == 2  # our backoff between the 3 attempts, recorded, not slept


def test_an_outdated_secret_file_is_our_problem_not_the_customers(
    accounts: AccountFactory,
    api: KeycloakRepository,
    emulator: EntraEmulator,
    sync: Callable[..., SyncHarness],
    smtp_server: SmtpServer,
    settings,
) -> None:
    """apsis-sso rotated the secret (new hint in Keycloak) but the daemon's file still holds the
    old one, which Entra still accepts: deprovisioning goes on, the platform team is told once,
    the customer's IT contact hears nothing."""
    from datetime import date, datetime, timedelta

    from provisioning import onboarding

    acct = accounts.create(stage="live")
    email, user_id = acct.person("yan")
    harness = sync()
    harness.add(acct)  # the old secret
    harness.cycle(acct)
    new_secret = emulator.add_secret(
        acct.tenant_id, acct.app_id, datetime.now(UTC) + timedelta(days=300), secret_text="N3w" + "n" * 37
    )
    onboarding.rotate_secret(api, settings, acct.id, new_secret, date.today() + timedelta(days=300))
    emulator.delete_user(acct.tenant_id, entra_oid(emulator, acct, email))

    result = harness.cycle(acct).result(acct.id)
    assert result.status == "error"
    assert "is not account" in result.errors[0] and "hint 'N3w'" in result.errors[0]
    assert [a.user_id for a in result.actions] == [user_id]  # the old secret still works
    assert api.user(user_id)["enabled"] is False  # type: ignore[index]
    harness.cycle(acct)
    stale = [
        m
        for m in smtp_server.messages(to=PLATFORM_TEAM, kind="secret-file-stale")
        if m["X-Apsis-Sync-Account"] == acct.id
    ]
    assert len(stale) == 1 and f"apsis-sync secret set {acct.id}" in stale[0].get_content()
    assert smtp_server.messages(to=f"it@{acct.domain}") == []

    harness.secrets.put(acct.id, SecretStr(new_secret))
    assert harness.cycle(acct).result(acct.id).status == "ok"


def test_an_unexpected_error_in_one_account_is_contained(
    accounts: AccountFactory,
    sync: Callable[..., SyncHarness],
) -> None:
    """A vault plugged in as the SecretSource blows up for one account: that account fails
    with a one-line error, the other is synced."""
    broken = accounts.create(stage="live")
    fine = accounts.create(stage="live")
    harness = sync()
    harness.add(fine)
    directory = harness.rt.secrets

    class FlakyVault:
        def get(self, account_id: str) -> SecretStr | None:
            if account_id == broken.id:
                raise RuntimeError("vault lease expired\nsecond line")
            return directory.get(account_id)

        def describe(self, account_id: str) -> str:
            return f"vault:{account_id}"

    harness.rt.secrets = FlakyVault()
    report = harness.cycle(broken, fine)
    assert report.result(broken.id).errors == ["unexpected RuntimeError: vault lease expired"]
    assert report.result(fine.id).status == "ok"


def test_consent_revoked_in_the_tenant_fails_the_account_and_counts_a_graph_refusal(
    accounts: AccountFactory, emulator: EntraEmulator, sync: Callable[..., SyncHarness]
) -> None:
    """Entra still issues the app's token after an admin removed its consent, without the role;
    Graph then answers 403 Authorization_RequestDenied. The account fails (its leavers would stay
    enabled) and apsis_sync_graph_refusals counts it for the alert."""
    acct = accounts.create(stage="live")
    emulator.revoke_application_permission(acct.tenant_id, acct.app_id, "User.Read.All")
    try:
        harness = sync()  # a runtime of its own: no token kept from before the revocation
        harness.add(acct)
        result = harness.cycle(acct).result(acct.id)
    finally:
        emulator.grant_application_permission(acct.tenant_id, acct.app_id, "User.Read.All")
    assert result.status == "error" and "HTTP 403" in result.errors[0], result.errors
    refusals = harness.rt.metrics.registry.get_sample_value("apsis_sync_graph_refusals_total", {"status": "403"})
    assert refusals == 1
