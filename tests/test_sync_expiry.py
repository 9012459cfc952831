"""Secret expiry: thresholds notified once each (mail received by a real SMTP server process),
Graph's passwordCredentials where Application.Read.All is granted, the recorded date where
it is not, and token-time errors flagged at once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from apsis_core.keycloak import KeycloakRepository
from devenv.accounts import AccountFactory
from devenv.accounts import OnboardedAccount as Acct
from devenv.entra_emulator import EntraEmulator
from tests.sync_fixtures import PLATFORM_TEAM, SmtpServer, SyncHarness, free_port


def set_recorded_expiry(api: KeycloakRepository, acct: Acct, when: date) -> None:
    """What the customer told us at onboarding (may differ from the truth in Entra)."""
    org = api.organization(acct.org_id)
    assert org is not None
    org["attributes"]["apsis.secretExpires"] = [when.isoformat()]
    api.update_organization(acct.org_id, org)


def mails(smtp: SmtpServer, acct: Acct, kind: str | None = None) -> list:
    return smtp.messages(to=f"it@{acct.domain}", kind=kind)


def test_a_30_day_expiring_secret_produces_exactly_one_mail_to_the_it_contact(
    accounts: AccountFactory,
    sync: Callable[..., SyncHarness],
    smtp_server: SmtpServer,
) -> None:
    acct = accounts.create(stage="live", secret_days=30)
    harness = sync()
    harness.add(acct)
    for _ in range(3):
        result = harness.cycle(acct).result(acct.id)
        assert result.status == "ok", result.errors
    received = mails(smtp_server, acct)
    assert len(received) == 1
    msg = received[0]
    assert msg["To"] == f"it@{acct.domain}"
    assert msg["Cc"] == PLATFORM_TEAM
    assert msg["X-Apsis-Sync-Kind"] == "secret-expiry"
    assert "expires in 30 days" in msg["Subject"]
    body = msg.get_content()
    assert "Hello Ivy IT," in body and acct.app_id in body and f'starts with "{acct.secret[:3]}"' in body
    assert acct.secret not in msg.as_string()
    assert harness.state.account(acct.id).secret_expires == date.today() + timedelta(days=30)


def test_each_threshold_and_the_expiry_itself_are_notified_once(
    accounts: AccountFactory,
    sync: Callable[..., SyncHarness],
    smtp_server: SmtpServer,
) -> None:
    acct = accounts.create(stage="live", secret_days=40)
    expires = date.today() + timedelta(days=40)
    harness = sync()
    harness.add(acct)
    days_before = [40, 31, 30, 29, 20, 14, 10, 7, 7, 2, 1, 0, -3]
    subjects: list[str] = []
    for days in days_before:
        harness.rt.today = (lambda when: lambda: when)(expires - timedelta(days=days))
        result = harness.cycle(acct).result(acct.id)
        subjects += [n.subject for n in result.notices]
    assert [s.split(": ", 1)[1] for s in subjects] == [
        f"the Entra client secret expires in 30 days ({expires})",
        f"the Entra client secret expires in 14 days ({expires})",
        f"the Entra client secret expires in 7 days ({expires})",
        f"the Entra client secret expires in 1 day ({expires})",
        f"the Entra client secret has expired ({expires})",
    ]
    assert len(mails(smtp_server, acct)) == 5


def test_application_read_all_gives_the_real_end_date_of_the_secret_in_use(
    accounts: AccountFactory,
    api: KeycloakRepository,
    emulator: EntraEmulator,
    sync: Callable[..., SyncHarness],
    smtp_server: SmtpServer,
) -> None:
    acct = accounts.create(stage="live", secret_days=10)
    set_recorded_expiry(api, acct, date.today() + timedelta(days=300))  # the customer misremembered
    # Another secret of the app, expiring sooner: not ours, told apart by its hint.
    other = emulator.add_secret(
        acct.tenant_id, acct.app_id, datetime.now(UTC) + timedelta(days=2), secret_text="Zz9" + "q" * 37
    )
    assert other[:3] != acct.secret[:3]
    emulator.grant_application_permission(acct.tenant_id, acct.app_id, "Application.Read.All")
    harness = sync()
    harness.add(acct)
    result = harness.cycle(acct).result(acct.id)
    assert result.status == "ok", result.errors
    assert result.expiry is not None
    assert (result.expiry.source, result.expiry.days_left) == ("graph", 10)
    (msg,) = mails(smtp_server, acct)
    assert "expires in 10 days" in msg["Subject"]
    assert "the app registration in your tenant" in msg.get_content()
    assert any(r["path"].startswith("/v1.0/applications(appId=") and r["status"] == 200 for r in emulator.requests_log)


def test_without_application_read_all_the_recorded_date_is_used_silently(
    accounts: AccountFactory,
    api: KeycloakRepository,
    emulator: EntraEmulator,
    sync: Callable[..., SyncHarness],
    smtp_server: SmtpServer,
) -> None:
    acct = accounts.create(stage="live", secret_days=10)
    set_recorded_expiry(api, acct, date.today() + timedelta(days=300))
    emulator.clear_requests_log()
    harness = sync()
    harness.add(acct)
    result = harness.cycle(acct).result(acct.id)
    assert result.status == "ok" and result.errors == []
    assert result.expiry is not None
    assert (result.expiry.source, result.expiry.days_left) == ("recorded", 300)
    assert mails(smtp_server, acct) == []
    denied = [r for r in emulator.requests_log if r["path"].startswith("/v1.0/applications(appId=")]
    assert [r["status"] for r in denied] == [403]


def test_an_expired_secret_at_token_time_is_flagged_at_once(
    accounts: AccountFactory,
    api: KeycloakRepository,
    emulator: EntraEmulator,
    sync: Callable[..., SyncHarness],
    smtp_server: SmtpServer,
) -> None:
    acct = accounts.create(stage="live", secret_days=200)  # the recorded date is far away ...
    emulator.expire_secret(acct.tenant_id, acct.app_id, acct.secret[:3])  # ... but Entra says expired
    harness = sync()
    harness.add(acct)
    result = harness.cycle(acct).result(acct.id)
    assert result.status == "error"
    assert "AADSTS7000222" in result.errors[0] and "expired" in result.errors[0]
    assert acct.secret not in " ".join(result.errors)
    flagged = mails(smtp_server, acct, kind="token-expired")
    assert len(flagged) == 1
    assert "AADSTS7000222" in flagged[0]["Subject"]
    harness.cycle(acct)
    harness.cycle(acct)
    assert len(mails(smtp_server, acct, kind="token-expired")) == 1
    token_errors = harness.rt.metrics.registry.get_sample_value("apsis_sync_token_errors_total", {"kind": "expired"})
    assert token_errors == 3.0


def test_mail_that_cannot_be_delivered_is_tried_again_next_cycle(
    accounts: AccountFactory,
    sync: Callable[..., SyncHarness],
    smtp_server: SmtpServer,
) -> None:
    acct = accounts.create(stage="live", secret_days=5)
    broken = sync(smtp_port=free_port())  # nothing listens there
    broken.add(acct)
    result = broken.cycle(acct).result(acct.id)
    assert result.status == "error" and "could not be delivered" in result.errors[0]
    assert mails(smtp_server, acct) == []
    broken.rt.notifier.settings = broken.rt.notifier.settings.model_copy(update={"smtp_port": smtp_server.port})
    assert broken.cycle(acct).result(acct.id).status == "ok"
    assert len(mails(smtp_server, acct)) == 1


def test_notices_are_also_posted_to_the_webhook_as_json(
    accounts: AccountFactory,
    sync: Callable[..., SyncHarness],
    smtp_server: SmtpServer,
) -> None:
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received: list[tuple[str, dict]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.headers["Content-Type"], json.loads(body)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        acct = accounts.create(stage="live", secret_days=7)
        harness = sync(webhook_url=f"http://127.0.0.1:{server.server_port}/hooks/apsis")
        harness.add(acct)
        harness.cycle(acct)
        harness.cycle(acct)
    finally:
        server.shutdown()
    assert len(received) == 1
    content_type, doc = received[0]
    assert content_type == "application/json"
    assert doc["kind"] == "secret-expiry" and doc["account"] == acct.id
    assert doc["to"] == [f"it@{acct.domain}"] and doc["cc"] == [PLATFORM_TEAM]
    assert doc["data"]["threshold"] == 7 and doc["data"]["days_left"] == 7 and doc["data"]["source"] == "recorded"
    assert "expires in 7 days" in doc["subject"] and doc["text"].startswith("Hello Ivy IT,")
    assert acct.secret not in json.dumps(doc)
    assert len(mails(smtp_server, acct)) == 1  # mail and webhook, both once


def test_with_the_portal_configured_each_expiry_notice_carries_a_fresh_renewal_link(
    accounts: AccountFactory,
    api: KeycloakRepository,
    sync: Callable[..., SyncHarness],
    smtp_server: SmtpServer,
) -> None:
    import re

    from apsis_core import invitations
    from provisioning.onboarding import load

    acct = accounts.create(stage="live", secret_days=20)
    expires = date.today() + timedelta(days=20)
    harness = sync()
    harness.rt.settings = harness.rt.settings.model_copy(update={"portal_url": "https://sso-setup.apsis.example"})
    harness.add(acct)
    links = []
    for days in (14, 7):
        harness.rt.today = (lambda when: lambda: when)(expires - timedelta(days=days))
        assert harness.cycle(acct).result(acct.id).status == "ok"
        (msg,) = [m for m in mails(smtp_server, acct) if f"expires in {days} days" in m["Subject"]]
        found = re.findall(rf"https://sso-setup\.apsis\.example/i/{acct.id}/([A-Za-z0-9_-]{{43}})", msg.get_content())
        assert len(found) == 1, msg.get_content()
        links.append(found[0])
    record = load(api, acct.id)
    held = invitations.of_record(record)
    first, second = (invitations.find(held, token) for token in links)
    assert first is not None and second is not None
    assert (first.intent, first.verdict(), second.intent, second.verdict()) == ("renew", "superseded", "renew", "valid")
    # Only hashes are stored: no token appears in the account's attributes.
    assert not any(token in " ".join(v for values in record.attributes.values() for v in values) for token in links)

    # A dry run shows where the link would go and mints nothing.
    harness.rt.today = lambda: expires - timedelta(days=1)
    (dry,) = harness.cycle(acct, dry_run=True).result(acct.id).notices
    assert f"https://sso-setup.apsis.example/i/{acct.id}/<minted when the notice is sent>" in dry.body
    assert invitations.of_record(load(api, acct.id)) == held


def test_renewal_links_stay_out_of_the_webhook(accounts: AccountFactory, sync: Callable[..., SyncHarness]) -> None:
    from sync.notify import Notice, expiry_notice  # noqa: F401 - the notice the webhook would carry

    acct = accounts.create(stage="live", secret_days=7)
    harness = sync(smtp_host=None)
    harness.rt.settings = harness.rt.settings.model_copy(update={"portal_url": "https://sso-setup.apsis.example"})
    harness.add(acct)
    result = harness.cycle(acct).result(acct.id)
    (notice,) = result.notices
    assert "https://sso-setup.apsis.example/i/" in notice.body
    assert "https://sso-setup.apsis.example/i/" not in notice.to_dict()["text"]
    assert notice.to_dict()["data"]["renewal_link"] is True
