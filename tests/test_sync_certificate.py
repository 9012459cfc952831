"""The sync daemon with a certificate account: Graph read with a client assertion signed by the
assertion key (``APSIS_SSO_ASSERTION_KEY_FILE``), no client secret file at all."""

from __future__ import annotations

from pathlib import Path

from apsis_core.keycloak import KeycloakRepository
from apsis_core.settings import Settings
from devenv.accounts import AccountFactory
from devenv.entra_emulator import EntraEmulator
from tests.certificate_fixtures import AssertionKey
from tests.sync_fixtures import SmtpServer, build_harness, entra_oid


def test_a_certificate_account_is_deprovisioned_with_no_secret_anywhere(
    cert_accounts: AccountFactory,
    cert_settings: Settings,
    api: KeycloakRepository,
    emulator: EntraEmulator,
    smtp_server: SmtpServer,
    assertion_key: AssertionKey,
    tmp_path: Path,
) -> None:
    acct = cert_accounts.create(certificate=True)
    email, user_id = acct.person("erin")
    _, keep_id = acct.person("finn")
    harness = build_harness(cert_settings, smtp_server, tmp_path / "sync")
    try:
        first = harness.cycle(acct)
        assert first.result(acct.id).status == "ok", first.result(acct.id).errors
        held = first.result(acct.id).expiry  # the credential's expiry: the certificate's, for metrics and status
        assert held is not None and held.source == "certificate"
        assert held.expires == assertion_key.pair.certificate.not_after.date()
        assert not any(harness.sync_settings.secrets_path.glob("*"))  # no secret file was needed

        emulator.delete_user(acct.tenant_id, entra_oid(emulator, acct, email))
        result = harness.cycle(acct).result(acct.id)
        assert result.status == "ok", result.errors
        assert [(a.kind, a.user_id) for a in result.actions] == [("disable", user_id)]
        user = api.user(user_id)
        assert user is not None and user["enabled"] is False
        kept = api.user(keep_id)
        assert kept is not None and kept["enabled"] is True

        # Every token the daemon got was asked with an assertion naming the certificate.
        daemon = [a for a in emulator.received_client_assertions(acct.app_id) if "x5t#S256" in a.header]
        assert len(daemon) >= 2
        assert {a.header["x5t#S256"].rstrip("=") for a in daemon} == {assertion_key.pair.certificate.x5t_s256}
    finally:
        harness.rt.close()
        harness.rt.state.close()


def test_a_certificate_missing_from_the_app_is_flagged_as_an_invalid_credential(
    cert_accounts: AccountFactory,
    cert_settings: Settings,
    emulator: EntraEmulator,
    smtp_server: SmtpServer,
    assertion_key: AssertionKey,
    tmp_path: Path,
) -> None:
    acct = cert_accounts.create(certificate=True)
    emulator.remove_certificate(acct.tenant_id, acct.app_id, assertion_key.pair.certificate.sha1_thumbprint)
    harness = build_harness(cert_settings, smtp_server, tmp_path / "sync")
    try:
        result = harness.cycle(acct).result(acct.id)
        assert result.status == "error"
        assert any("AADSTS700027" in e for e in result.errors), result.errors
    finally:
        harness.rt.close()
        harness.rt.state.close()
