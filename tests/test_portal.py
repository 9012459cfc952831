"""The portal over HTTP (the real `apsis-portal` process, Keycloak, the Entra emulator, SMTP):
every refusal the issue lists shows its plain message and creates nothing; links that are
used, expired, revoked, replaced or for another account do not open; forms without the
session's CSRF token and bursts of submissions are refused; headers are strict; no secret
reaches a response, the log or the audit trail (checked on every response here, and on the
whole log and audit trail at the end of the session)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apsis_core import invitations
from apsis_core.contract import INVITATIONS_KEY
from apsis_core.keycloak import KeycloakRepository
from tests.portal_fixtures import Customer, PortalProcess, Visitor, assert_no_portal_secret
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
    assert c.token not in page.url  # the token leaves the address bar at once
    return v


def audit_of(portal: PortalProcess, c: Customer) -> list[dict]:
    return [r for r in portal.audit_records() if r.get("account") == c.id]


def test_setup_through_the_portal_creates_the_idp_in_pilot_and_hands_the_secret_to_the_daemon(
    customer: Callable[..., Customer], visitor: Callable[[], Visitor], portal: PortalProcess, smtp_server: SmtpServer
) -> None:
    c = customer()
    v = opened(visitor, c)
    assert f"/realms/apsis/broker/entra-{c.id}/endpoint" in v.last.text  # the redirect URI to register
    page = v.submit("/setup", c.form())
    assert page.status_code == 200, v.text[:500]
    assert "set up for testing" in v.text and "Not yet signed in" in v.text
    record = c.record()
    assert (record.stage, record.tenant_id, record.client_id, record.complete) == ("pilot", c.tenant_id, c.app_id, True)
    assert sorted(record.pilot) == sorted(c.test_users)
    assert (portal.secrets_dir / c.id).read_text().strip() == c.secret  # apsis-sync's copy
    assert 'http-equiv="refresh"' in page.text  # live results without JavaScript
    (mail,) = [m for m in smtp_server.messages(to=PLATFORM_TEAM) if c.id in m["Subject"]]
    assert "pilot" in mail["Subject"] and c.tenant_id in mail.get_content()
    actions = [(r["action"], r["outcome"]) for r in audit_of(portal, c)]
    assert actions == [("link-opened", "ok"), ("setup-submitted", "ok")]
    ok = audit_of(portal, c)[-1]
    assert ok["actor"] == f"it@{c.domain}" and ok["client"] == "127.0.0.1"
    assert ok["invitation"] == invitations.digest(c.token)[:12]  # named by its hash, never the token


def test_wrong_secret_unknown_app_unknown_tenant_and_missing_consent_each_say_so_and_create_nothing(
    customer: Callable[..., Customer], visitor: Callable[[], Visitor], portal: PortalProcess
) -> None:
    c = customer()
    v = opened(visitor, c)
    wrong = "Qx9" + "w" * 37
    cases = [
        ({"client_secret": wrong}, "Entra did not accept the client secret", "AADSTS7000215"),
        (
            {"client_id": "0f0f0f0f-1111-2222-3333-444455556666"},
            "has no application with the Application (client) ID",
            "AADSTS700016",
        ),
        ({"tenant": "nobody-here.onmicrosoft.com"}, "Microsoft Entra has no tenant", "AADSTS90002"),
    ]
    for fields, message, _code in cases:
        page = v.submit("/setup", c.form(**fields))
        assert page.status_code == 400 and message in v.text, v.text[:600]
        assert wrong not in page.text and c.secret not in page.text  # never echoed
        nothing_set_up(c, portal)
    refused = [r.get("reason") for r in audit_of(portal, c) if r["outcome"] == "refused"]
    assert refused == ["AADSTS7000215", "AADSTS700016", "AADSTS90002"]

    unconsented = customer(consented=False)
    v = opened(visitor, unconsented)
    page = v.submit("/setup", unconsented.form())
    assert page.status_code == 400 and "has no admin consent" in v.text and "Grant admin consent" in v.text
    nothing_set_up(unconsented, portal)
    assert [r.get("reason") for r in audit_of(portal, unconsented) if r["outcome"] == "refused"] == ["consent"]
    # The admin grants consent in Entra; the same form then goes through.
    unconsented.emulator.grant_application_permission(unconsented.tenant_id, unconsented.app_id, "User.Read.All")
    assert v.submit("/setup", unconsented.form()).status_code == 200
    assert unconsented.record().stage == "pilot"


def test_form_problems_are_listed_per_field_and_the_values_but_the_secret_come_back(
    customer: Callable[..., Customer], visitor: Callable[[], Visitor], portal: PortalProcess
) -> None:
    c = customer()
    v = opened(visitor, c)
    page = v.submit(
        "/setup",
        c.form(
            tenant="not a tenant",
            client_secret="8d3c6f3e-0a5b-4a3c-9d0e-1f2a3b4c5d6e",
            secret_expires="2001-01-01",
            test_users="ann@elsewhere.example",
        ),
    )
    assert page.status_code == 400
    for message in (
        "invalid tenant id",
        "that is a secret ID",
        "is not in the future",
        "not in your account's domains",
    ):
        assert message in v.text, message
    assert 'value="not a tenant"' in page.text and "ann@elsewhere.example" in page.text
    assert "8d3c6f3e-0a5b-4a3c-9d0e-1f2a3b4c5d6e" not in page.text
    nothing_set_up(c, portal)


def test_a_link_that_was_used_expired_revoked_replaced_or_is_for_another_account_does_not_open(
    customer: Callable[..., Customer], visitor: Callable[[], Visitor], api: KeycloakRepository
) -> None:
    a, b = customer(), customer()

    other = visitor().get(f"/i/{b.id}/{a.token}")  # a's token on b's account
    assert other.status_code == 404 and "This link is not valid" in other.text
    garbage = visitor().get(f"/i/{a.id}/not-a-token")
    assert garbage.status_code == 404

    newer, _ = a.link_for("setup")
    replaced = visitor().get(a.link)
    assert replaced.status_code == 410 and "A newer link was sent" in replaced.text
    a.link = newer

    revoked_url, _ = b.link_for("setup")
    from provisioning import invite

    assert [i.intent for i in invite.revoke(api, b.id)] == ["setup"]
    gone = visitor().get(revoked_url)
    assert gone.status_code == 410 and "withdrawn" in gone.text

    c = customer()
    record = c.record()
    past = datetime.now(UTC) - timedelta(minutes=1)
    api.change_organization_attribute(
        record.org_id,
        INVITATIONS_KEY,
        lambda values: [
            i.value()
            for i in [
                invitations.Invitation(x.intent, x.digest, x.issued - timedelta(days=8), past)
                for x in invitations.parse_all(values)
            ]
        ],
    )
    expired = visitor().get(c.link)
    assert expired.status_code == 410 and "This link has expired" in expired.text
    assert PLATFORM_TEAM in expired.text  # how to get a new one


def test_a_session_survives_only_while_its_link_is_open(
    customer: Callable[..., Customer], visitor: Callable[[], Visitor], api: KeycloakRepository
) -> None:
    c = customer()
    v = opened(visitor, c)
    from provisioning import invite

    invite.revoke(api, c.id)
    page = v.get("/setup")
    assert page.status_code == 410 and "withdrawn" in page.text
    assert v.get("/setup").status_code == 401  # the cookie was cleared with that page

    forged = visitor()
    forged.session.cookies.set("apsis-portal", "eyJhIjoieCJ9.forged.signature")
    assert forged.get("/setup").status_code == 401 and "session has ended" in forged.text


def test_forms_without_the_sessions_csrf_token_are_refused(
    customer: Callable[..., Customer], visitor: Callable[[], Visitor], portal: PortalProcess
) -> None:
    c = customer()
    v = opened(visitor, c)
    missing = v.post("/setup", c.form())
    assert missing.status_code == 403 and "security token" in v.text
    v.get("/setup")
    other = v.post("/setup", {"csrf": "x" * 43, **c.form()})
    assert other.status_code == 403
    v.get("/setup")
    foreign = v.post("/setup", {"csrf": v.csrf(), **c.form()}, headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403
    nothing_set_up(c, portal)
    assert [r.get("reason") for r in audit_of(portal, c) if r["outcome"] == "refused"] == ["csrf"] * 3


def test_a_burst_of_submissions_through_one_link_is_refused(
    customer: Callable[..., Customer], visitor: Callable[[], Visitor]
) -> None:
    c = customer()
    v = opened(visitor, c)
    statuses = []
    for _ in range(12):  # APSIS_PORTAL_SUBMISSIONS_PER_LINK defaults to 10 per 15 minutes
        statuses.append(v.submit("/setup", c.form(tenant="no such thing!")).status_code)
        if statuses[-1] == 429:
            assert int(v.last.headers["retry-after"]) > 0 and "Too many attempts" in v.text
            v.get("/setup")
    assert statuses == [400] * 10 + [429, 429]
    # Another link of another account is not affected.
    other = customer()
    w = opened(visitor, other)
    assert w.submit("/setup", other.form(tenant="no such thing!")).status_code == 400


def test_every_response_carries_strict_headers_and_pages_are_not_cached(
    customer: Callable[..., Customer], visitor: Callable[[], Visitor]
) -> None:
    c = customer()
    v = visitor()
    for response in (v.get("/"), v.get("/healthz"), v.get("/static/portal.css"), v.get("/nothing"), v.get(c.link)):
        headers = response.headers
        assert "script-src 'self'" in headers["content-security-policy"]
        assert "unsafe-inline" not in headers["content-security-policy"]
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-content-type-options"] == "nosniff"
        assert "strict-transport-security" not in headers  # plain http here; https adds it (unit lane)
    assert v.get("/healthz").json() == {"status": "ok"}
    page = v.get("/setup")
    assert page.headers["cache-control"] == "no-store"
    cookie = v.session.cookies.get_dict()
    assert list(cookie) == ["apsis-portal"]
    raw = [h for h in opened(visitor, customer()).seen if "set-cookie" in h.lower()]
    assert any("HttpOnly" in h and "SameSite=Strict" in h and "Max-Age=3600" in h for h in raw)
    assert "<script>" not in page.text  # no inline script anywhere


def set_up(visitor: Callable[[], Visitor], c: Customer) -> Visitor:
    v = opened(visitor, c)
    assert v.submit("/setup", c.form()).status_code == 200, v.text[:500]
    return v


def test_test_users_sign_in_show_on_the_page_and_ready_ends_the_link(
    customer: Callable[..., Customer],
    visitor: Callable[[], Visitor],
    portal: PortalProcess,
    smtp_server: SmtpServer,
    settings,
    emulator,
) -> None:
    from devenv.login_driver import Browser
    from provisioning.links import test_login_url

    c = customer()
    v = opened(visitor, c)
    csrf = v.csrf()
    assert v.submit("/setup", c.form()).status_code == 200
    assert 'action="/setup/ready"' not in v.last.text  # no button before a test sign-in ...
    early = v.post("/setup/ready", {"csrf": csrf})  # ... and the server refuses it too
    assert early.status_code == 409 and "None of your test users has signed in" in v.text
    assert c.record().stage == "pilot"

    ann = f"ann@{c.domain}"
    landing = f"{settings.public_url}/realms/{settings.realm}/account/"
    signed = Browser(settings.keycloak_url, settings.realm, ca_bundle=str(emulator.ca_bundle)).follow(
        test_login_url(settings, c.id), "Entra-Passw0rd!", login=ann, landing=landing
    )
    assert signed.code, signed.text[:300]
    refused = Browser(settings.keycloak_url, settings.realm, ca_bundle=str(emulator.ca_bundle)).follow(
        test_login_url(settings, c.id), "Entra-Passw0rd!", login=f"cid@{c.domain}", landing=landing
    )
    assert not refused.code  # cid is a member but no test user

    v.get("/setup")
    assert f"{ann} Signed in " in v.text and f"ben@{c.domain} Not yet signed in" in v.text
    done = v.submit("/setup/ready", {})
    assert done.status_code == 200 and "we take it from here" in v.text
    assert c.record().stage == "pilot"  # the platform team goes live (APSIS_PORTAL_GO_LIVE is off)
    (mail,) = [m for m in smtp_server.messages(to=PLATFORM_TEAM) if c.id in m["Subject"] and "go live" in m["Subject"]]
    assert f"apsis-sso account go-live {c.id}" in mail.get_content() and ann in mail.get_content()

    again = visitor().get(c.link)
    assert again.status_code == 410 and "This link has been used" in again.text
    assert v.get("/setup").status_code == 401  # the session ended with it
    assert [r["action"] for r in audit_of(portal, c) if r["outcome"] == "ok"][-1] == "ready"


def test_renewal_proves_the_new_secret_swaps_it_and_updates_the_daemons_copy(
    customer: Callable[..., Customer],
    visitor: Callable[[], Visitor],
    portal: PortalProcess,
    smtp_server: SmtpServer,
    api: KeycloakRepository,
) -> None:
    c = customer()
    set_up(visitor, c)
    before = api.identity_provider(f"entra-{c.id}")["config"]["apsis.secretFingerprint"]
    url, token = c.link_for("renew")
    v = visitor()
    page = v.get(url)
    assert page.url.endswith("/renew") and c.secret[:3] in v.text  # which secret is meant (its hint)
    expired = c.new_secret()
    c.emulator.expire_secret(c.tenant_id, c.app_id, expired[:3])
    refused = v.submit("/renew", {"client_secret": expired, "secret_expires": "2031-01-01"})
    assert refused.status_code == 400 and "has expired in Entra" in v.text
    assert api.identity_provider(f"entra-{c.id}")["config"]["apsis.secretFingerprint"] == before

    fresh = c.new_secret()
    expires = (datetime.now(UTC) + timedelta(days=400)).date().isoformat()
    done = v.submit("/renew", {"client_secret": fresh, "secret_expires": expires})
    assert done.status_code == 200 and "The new client secret is in place" in v.text and c.secret[:3] in v.text
    record = c.record()
    assert (record.secret_hint, record.secret_expires.isoformat()) == (fresh[:3], expires)
    assert api.identity_provider(f"entra-{c.id}")["config"]["apsis.secretFingerprint"] != before
    assert (portal.secrets_dir / c.id).read_text().strip() == fresh
    (mail,) = [m for m in smtp_server.messages(to=PLATFORM_TEAM) if c.id in m["Subject"] and "renewed" in m["Subject"]]
    assert fresh not in mail.as_string() and f'"{fresh[:3]}"' in mail.get_content()
    assert visitor().get(url).status_code == 410  # used
    assert token not in portal.log.read_text()


def test_where_the_setting_allows_it_ready_takes_the_account_live_itself(
    customer: Callable[..., Customer], settings, smtp_server: SmtpServer, emulator, tmp_path
) -> None:
    from devenv.login_driver import Browser
    from provisioning.links import test_login_url
    from tests.portal_fixtures import start_portal

    own = start_portal(settings, smtp_server, tmp_path / "go-live", APSIS_PORTAL_GO_LIVE="true")
    try:
        c = customer()
        v = Visitor(own)
        v.get(own.url + c.link.removeprefix(c.settings.portal_url or ""))
        assert v.submit("/setup", c.form()).status_code == 200
        landing = f"{settings.public_url}/realms/{settings.realm}/account/"
        assert (
            Browser(settings.keycloak_url, settings.realm, ca_bundle=str(emulator.ca_bundle))
            .follow(test_login_url(settings, c.id), "Entra-Passw0rd!", login=f"ben@{c.domain}", landing=landing)
            .code
        )
        v.get("/setup")
        assert "switched on at once" in v.text
        assert v.submit("/setup/ready", {}).status_code == 200 and "on for everyone" in v.text
        record = c.record()
        assert (record.stage, record.redirects_by_domain) == ("live", True)
        (mail,) = [
            m for m in smtp_server.messages(to=PLATFORM_TEAM) if c.id in m["Subject"] and "went live" in m["Subject"]
        ]
        assert "APSIS_PORTAL_GO_LIVE" in mail.get_content()
    finally:
        own.stop()
    assert_no_portal_secret(own.log.read_text(), own.audit.read_text())


def test_entra_or_graph_unavailable_says_try_again_and_creates_nothing(
    customer: Callable[..., Customer], visitor: Callable[[], Visitor], portal: PortalProcess
) -> None:
    c = customer()
    v = opened(visitor, c)
    c.emulator.inject_token_fault("server_error", count=1, tenant_id=c.tenant_id)
    down = v.submit("/setup", c.form())
    assert (
        down.status_code == 503 and "try again in a few minutes" in v.text.lower() and "Nothing was changed" in v.text
    )
    nothing_set_up(c, portal)
    v.get("/setup")
    c.emulator.inject_graph_fault("throttle", count=1, retry_after=30, tenant_id=c.tenant_id)
    assert v.submit("/setup", c.form()).status_code == 503  # Graph's 429 while proving the permission
    nothing_set_up(c, portal)
    assert [r.get("reason") for r in audit_of(portal, c) if r["outcome"] == "failed"] == ["unavailable"] * 2
    v.get("/setup")
    assert v.submit("/setup", c.form()).status_code == 200  # the same form later goes through
