"""Issue 19 through the portal: a setup link used with a tenant that does not own the account's
domains is refused (nothing created, the page says why, audit and mail record it); two setups
submitted at once through one link end with one set up and one refused; and opening a link
costs the same Keycloak requests whether the account exists or not."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import requests

from apsis_core.settings import Settings
from devenv.entra_emulator import EntraEmulator
from devenv.reverse_proxy import ReverseProxy
from provisioning.links import redirect_uri
from tests.portal_fixtures import PORTAL_SECRETS, Customer, PortalProcess, Visitor, start_portal
from tests.sync_fixtures import PLATFORM_TEAM, SmtpServer


def nothing_set_up(c: Customer, portal: PortalProcess) -> None:
    record = c.record()
    assert record.stage == "awaiting-setup" and not record.tenant_id and not record.client_id
    assert c.api.identity_provider(f"entra-{c.id}") is None
    assert not (portal.secrets_dir / c.id).exists()


def opened(visitor: Callable[[], Visitor], c: Customer) -> Visitor:
    v = visitor()
    page = v.get(c.link)
    assert page.status_code == 200 and page.url.endswith("/setup"), v.text[:300]
    return v


def audit_of(portal: PortalProcess, c: Customer) -> list[dict]:
    return [r for r in portal.audit_records() if r.get("account") == c.id]


def test_a_setup_with_a_tenant_that_does_not_own_the_domains_is_refused_and_reported(
    customer: Callable[..., Customer],
    visitor: Callable[[], Visitor],
    portal: PortalProcess,
    smtp_server: SmtpServer,
    emulator: EntraEmulator,
    settings: Settings,
) -> None:
    c = customer()
    # Whoever holds the link: their own tenant X, their app (consented), their secret.
    x = emulator.add_tenant([f"x-{c.domain}"])
    app = emulator.add_application(x.tenant_id, "SSO", [redirect_uri(settings, c.id)])
    secret = emulator.add_secret(x.tenant_id, app.app_id, datetime.now(UTC) + timedelta(days=100))
    PORTAL_SECRETS.add(secret)
    v = opened(visitor, c)
    page = v.submit("/setup", c.form(tenant=x.tenant_id, client_id=app.app_id, client_secret=secret))

    assert page.status_code == 400, v.text[:500]
    assert (
        f"{c.domain} is a verified domain of another Microsoft Entra tenant ({c.tenant_id}), not of the tenant "
        f"you entered ({x.tenant_id})"
    ) in v.text
    assert "nothing was set up" in v.text and "set up for testing" not in v.text
    nothing_set_up(c, portal)
    refused = [r for r in audit_of(portal, c) if r["action"] == "setup-submitted"]
    assert [(r["outcome"], r["reason"]) for r in refused] == [("refused", "domain-ownership")]
    assert refused[0]["tenant"] == x.tenant_id
    assert refused[0]["domains"] == [{"domain": c.domain, "status": "other-tenant", "owner": c.tenant_id}]
    (mail,) = [m for m in smtp_server.messages(to=PLATFORM_TEAM) if m["X-Apsis-Account"] == c.id]
    assert mail["X-Apsis-Portal"] == "setup-refused" and "REFUSED" in mail["Subject"]
    body = mail.get_content()
    assert x.tenant_id in body and f"{c.domain} is verified in another Entra tenant ({c.tenant_id})" in body
    assert f"apsis-sso account invite {c.id} --revoke" in body

    # A domain verified in no tenant at all says so.
    emulator.remove_domain(c.tenant_id, c.domain, force=True)
    page = v.submit("/setup", c.form())
    assert page.status_code == 400 and f"{c.domain} is not a verified domain of any Microsoft Entra tenant" in v.text
    nothing_set_up(c, portal)

    # The real owner's details go through, and the proof is on the account.
    emulator.add_domain(c.tenant_id, c.domain)
    assert v.submit("/setup", c.form()).status_code == 200, v.text[:500]
    assert c.record().ownership.proven == (c.domain,)


def test_two_setups_submitted_at_once_through_one_link_set_up_once(
    customer: Callable[..., Customer],
    visitor: Callable[[], Visitor],
    portal: PortalProcess,
    smtp_server: SmtpServer,
    emulator: EntraEmulator,
) -> None:
    c = customer()
    tabs = [opened(visitor, c), opened(visitor, c)]  # two tabs (or two people) with the link
    forms = [{"csrf": t.csrf(), **c.form()} for t in tabs]
    start = threading.Barrier(2)
    answers: list[requests.Response | BaseException] = [None, None]  # type: ignore[list-item]

    def submit(i: int) -> None:
        start.wait()
        try:
            answers[i] = tabs[i].session.post(f"{portal.url}/setup", data=forms[i], timeout=120)
        except BaseException as exc:  # noqa: BLE001 - reported below
            answers[i] = exc

    emulator.configure(token_latency_ms=300)  # both are surely in flight at once
    try:
        threads = [threading.Thread(target=submit, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(180)
    finally:
        emulator.configure(token_latency_ms=0)
    assert all(isinstance(a, requests.Response) for a in answers), answers
    statuses = sorted(a.status_code for a in answers)  # type: ignore[union-attr]
    assert statuses in ([200, 409], [200, 200]), statuses  # 200 twice: the second saw it done (the status page)
    assert sum("set up for testing" in a.text for a in answers) >= 1  # type: ignore[union-attr]
    record = c.record()
    assert (record.stage, record.complete, record.tenant_id) == ("pilot", True, c.tenant_id)
    submitted = [(r["outcome"], r.get("reason")) for r in audit_of(portal, c) if r["action"] == "setup-submitted"]
    assert sorted(outcome for outcome, _ in submitted) == ["ok", "refused"], submitted
    assert [reason for outcome, reason in submitted if outcome == "refused"][0] in ("concurrent", "already-set-up")
    mails = [m for m in smtp_server.messages(to=PLATFORM_TEAM) if m["X-Apsis-Account"] == c.id]
    assert [m["X-Apsis-Portal"] for m in mails] == ["setup-submitted"]


@pytest.fixture
def counted_portal(settings: Settings, realm: str, smtp_server: SmtpServer, tmp_path_factory: pytest.TempPathFactory):
    """A second portal process whose Keycloak traffic goes through a counting proxy."""
    with ReverseProxy.to(settings.keycloak_url) as proxy:
        running = start_portal(
            settings.model_copy(update={"keycloak_url": proxy.url}),
            smtp_server,
            tmp_path_factory.mktemp("counted-portal"),
        )
        try:
            yield running, proxy
        finally:
            running.stop()


def test_opening_a_link_does_the_same_keycloak_work_whether_the_account_exists_or_not(
    customer: Callable[..., Customer], counted_portal: tuple[PortalProcess, ReverseProxy]
) -> None:
    running, proxy = counted_portal
    c = customer()
    wrong = secrets.token_urlsafe(32)
    session = requests.Session()

    def work(path: str) -> tuple[int, list[str]]:
        before = len(proxy.requests)
        status = session.get(f"{running.url}{path}", allow_redirects=False, timeout=60).status_code
        return status, [r for r in proxy.requests[before:] if " /admin/" in r]  # paths, without the query

    session.get(f"{running.url}/healthz", timeout=30)
    existing = work(f"/i/{c.id}/{wrong}")
    missing = work(f"/i/nobody-{c.id}/{wrong}")
    assert existing[0] == missing[0] == 404
    assert existing[1] == missing[1] and len(existing[1]) == 1, (existing, missing)
    # A valid link does the same lookup before it opens the session.
    assert work(c.link.replace(c.settings.portal_url or "", ""))[1] == existing[1]
