"""Renewal of the assertion key with two certificate accounts: one uploaded the next certificate,
one did not. The daemon finds out per account (Graph keyCredentials, or a token request with the
next key), reminds only the one that did not, and the realm-wide switch is refused while it would
break that account; once both hold it, the switch moves every login to the next key."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from apsis_core import certificates
from apsis_core.errors import InvalidInput
from apsis_core.keycloak import KeycloakRepository
from apsis_core.settings import Settings
from devenv.accounts import PASSWORD, AccountFactory
from devenv.entra_emulator import EntraEmulator
from provisioning import assertion_keys
from tests.certificate_fixtures import AssertionKey
from tests.cli_fixtures import Cli, cli_environment
from tests.sync_fixtures import SmtpServer, build_harness


def test_rotation_switches_only_when_every_account_holds_the_next_certificate(
    cert_accounts: AccountFactory,
    cert_settings: Settings,
    settings: Settings,
    api: KeycloakRepository,
    emulator: EntraEmulator,
    smtp_server: SmtpServer,
    assertion_key: AssertionKey,
    browser,
    tmp_path: Path,
) -> None:
    current = assertion_key.pair
    upcoming = certificates.generate("APSIS SSO client assertions (next)", lifetime=timedelta(days=1000))
    next_file = certificates.write_key_pair(tmp_path / "next.pem", upcoming)
    admin = KeycloakRepository.for_admin(settings)
    assertion_keys.install(admin, upcoming, active=False)  # published, not signing
    renewing = cert_settings.model_copy(update={"assertion_next_key_file": next_file})
    try:
        ready = cert_accounts.create(certificate=True)
        late = cert_accounts.create(certificate=True)
        emulator.upload_certificate(ready.tenant_id, ready.app_id, upcoming.certificate.pem)
        emulator.grant_application_permission(late.tenant_id, late.app_id, "Application.Read.All")  # Graph path
        ready_email, _ = ready.person("hal")
        late_email, _ = late.person("ida")

        day = current.certificate.not_after.date() - timedelta(days=10)  # within the 14-day threshold
        harness = build_harness(renewing, smtp_server, tmp_path / "sync", today=day)
        try:
            report = harness.cycle(ready, late)
            r, lt = report.result(ready.id), report.result(late.id)
            assert r.status == "ok" and lt.status == "ok", (r.errors, lt.errors)
            assert f"next certificate {upcoming.certificate.sha1_thumbprint}: uploaded" in r.notes
            assert f"next certificate {upcoming.certificate.sha1_thumbprint}: NOT uploaded" in lt.notes
            mails = smtp_server.messages(to=f"it@{late.domain}", kind="certificate-renewal")
            assert len(mails) == 1 and upcoming.certificate.sha1_thumbprint in mails[0].get_content()
            assert "PRIVATE KEY" not in mails[0].get_content()
            assert smtp_server.messages(to=f"it@{ready.domain}", kind="certificate-renewal") == []
            harness.cycle(ready, late)  # once per threshold
            assert len(smtp_server.messages(to=f"it@{late.domain}", kind="certificate-renewal")) == 1
        finally:
            harness.rt.close()
            harness.rt.state.close()

        # The switch would break `late`: refused, and both keep signing in with the current key.
        cli = Cli(
            env={
                **cli_environment(settings),
                "APSIS_SSO_ASSERTION_KEY_FILE": str(assertion_key.path),
                "APSIS_SSO_ASSERTION_NEXT_KEY_FILE": str(next_file),
            },
            workdir=tmp_path / "cwd",
        )
        refused = cli.run("assertion-key", "switch", expect=2)
        assert late.id in refused.stderr and ready.id not in refused.stderr.split("(")[-1]
        assert assertion_keys.signing_key_thumbprint(admin) == current.certificate.sha1_thumbprint
        assert browser().sso_login(late_email, PASSWORD, late.alias).ok
        assert browser().sso_login(ready_email, PASSWORD, ready.alias).ok

        emulator.upload_certificate(late.tenant_id, late.app_id, upcoming.certificate.pem)
        cli.run("assertion-key", "switch")
        assert assertion_keys.signing_key_thumbprint(admin) == upcoming.certificate.sha1_thumbprint
        for acct, email in ((ready, ready_email), (late, late_email)):
            assert browser().sso_login(email, PASSWORD, acct.alias).ok
            assert emulator.received_client_assertions(acct.app_id)[-1].header["x5t"] == upcoming.certificate.x5t
    finally:
        # The session's other tests sign with the current key: put it back.
        assertion_keys.install(admin, current, active=True)
        assertion_keys.install(admin, upcoming, active=False)
    assert assertion_keys.signing_key_thumbprint(admin) == current.certificate.sha1_thumbprint


@pytest.mark.unit
def test_switch_refuses_a_next_certificate_that_expires_first() -> None:
    older = certificates.generate("a", lifetime=timedelta(days=100))
    newer = certificates.generate("b", lifetime=timedelta(days=400))
    with pytest.raises(InvalidInput, match="must expire after"):
        assertion_keys.switch(None, newer, older)  # type: ignore[arg-type]
