"""The portal's pure parts, without a server: form validation, the session cookie and its
one-hour limit, CSRF and origin checks, security headers, the rate limiter, the test results
read from login events, and what a dead link's page says."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from starlette.testclient import TestClient

from apsis_core.account import AccountRecord
from apsis_core.errors import EntraRefused
from apsis_core.invitations import mint
from apsis_core.mail import MailSettings
from apsis_core.settings import Settings
from portal import explain, forms, pages, results
from portal.app import create_app
from portal.audit import Audit
from portal.context import Portal, Repositories
from portal.ratelimit import RateLimiter
from portal.refusals import Refused
from portal.security import SessionCodec, csrf_ok, origin_ok, response_headers
from portal.settings import PortalSettings

pytestmark = pytest.mark.unit

TODAY = date(2026, 5, 1)
SECRET = "Abc8Q~" + "x" * 34
ACCOUNT = AccountRecord.parse(
    {
        "id": "org-1",
        "alias": "acme",
        "name": "Acme",
        "domains": [{"name": "acme.com"}],
        "attributes": {"apsis.stage": ["awaiting-setup"]},
    }
)


def setup_fields(**overrides: str) -> dict[str, str]:
    fields = {
        "tenant": "acme.onmicrosoft.com",
        "client_id": "6a8b0b2e-1c3d-4e5f-8a9b-0c1d2e3f4a5b",
        "client_secret": SECRET,
        "secret_expires": "2027-01-31",
        "test_users": "Ann@Acme.com, bo@acme.com\nann@acme.com",
    }
    fields.update(overrides)
    return fields


# -- forms ----------------------------------------------------------------------------------


def test_a_good_setup_form_is_read_clean():
    submitted, form = forms.read_setup(setup_fields(), ACCOUNT, TODAY)
    assert submitted.ok and form is not None
    assert (form.tenant, form.expires, form.test_users) == (
        "acme.onmicrosoft.com",
        date(2027, 1, 31),
        ("ann@acme.com", "bo@acme.com"),
    )
    assert form.secret.get_secret_value() == SECRET and SECRET not in repr(form)


def test_every_problem_is_named_per_field_and_the_secret_never_comes_back():
    guid = "8d3c6f3e-0a5b-4a3c-9d0e-1f2a3b4c5d6e"
    submitted, form = forms.read_setup(
        setup_fields(
            tenant="", client_id="nope", client_secret=guid, secret_expires="2026-04-30", test_users="eve@evil.example"
        ),
        ACCOUNT,
        TODAY,
    )
    assert form is None
    assert set(submitted.errors) == {"tenant", "client_id", "client_secret", "secret_expires", "test_users"}
    assert (
        "secret ID" in submitted.errors["client_secret"] and "not in the future" in submitted.errors["secret_expires"]
    )
    assert "acme.com" in submitted.errors["test_users"]
    assert "client_secret" not in submitted.values and guid not in " ".join(submitted.errors.values())


def test_test_users_are_required_and_limited():
    assert forms.parse_test_users(" \n, ", ACCOUNT)[1] == "Enter at least one test user's address."
    many = " ".join(f"u{n}@acme.com" for n in range(forms.MAX_TEST_USERS + 1))
    assert "at most" in (forms.parse_test_users(many, ACCOUNT)[1] or "")
    assert "invalid email" in (forms.parse_test_users("not-an-address", ACCOUNT)[1] or "")


def test_the_renewal_form_needs_a_secret_value_and_a_future_date():
    submitted, form = forms.read_renew({"client_secret": " ", "secret_expires": ""}, TODAY)
    assert form is None and set(submitted.errors) == {"client_secret", "secret_expires"}
    _, form = forms.read_renew({"client_secret": SECRET, "secret_expires": "2026-05-02"}, TODAY)
    assert form is not None and form.expires == date(2026, 5, 2)


def test_an_oversized_field_is_cut_before_it_is_read():
    submitted, _ = forms.read_setup(setup_fields(tenant="a" * 100_000), ACCOUNT, TODAY)
    assert len(submitted.values["tenant"]) == forms.FIELD_MAX and "tenant" in submitted.errors


# -- sessions, CSRF, origin, headers ----------------------------------------------------------


def test_the_session_cookie_is_signed_and_bound_to_account_and_invitation():
    codec = SessionCodec("k" * 40, 3600, secure=False)
    session, cookie = codec.new("acme", "d" * 64)
    assert codec.read(cookie) == session
    assert codec.read(cookie[:-2] + ("A" if cookie[-2] != "A" else "B") + cookie[-1]) is None
    assert SessionCodec("other-key" * 5, 3600, secure=False).read(cookie) is None
    assert codec.read(None) is None and codec.read("") is None


def test_a_session_lasts_at_most_its_max_age_from_opening(monkeypatch: pytest.MonkeyPatch):
    import itsdangerous.timed

    codec = SessionCodec("k" * 40, 3600, secure=False)
    _, cookie = codec.new("acme", "d" * 64)
    real = itsdangerous.timed.time.time
    monkeypatch.setattr(itsdangerous.timed.time, "time", lambda: real() + 3599)
    assert codec.read(cookie) is not None
    monkeypatch.setattr(itsdangerous.timed.time, "time", lambda: real() + 3601)
    assert codec.read(cookie) is None


def test_cookie_flags_and_the_host_prefix_on_https():
    plain = SessionCodec("k" * 40, 3600, secure=False).cookie_header("v")
    assert plain == "apsis-portal=v; Path=/; Max-Age=3600; HttpOnly; SameSite=Strict"
    secure = SessionCodec("k" * 40, 3600, secure=True)
    assert secure.cookie_header("v").startswith("__Host-apsis-portal=v; Path=/;") and secure.cookie_header(
        "v"
    ).endswith("Secure")
    assert "Max-Age=0" in secure.clear_header() and "Domain" not in secure.clear_header()


def test_csrf_and_origin():
    codec = SessionCodec("k" * 40, 3600, secure=False)
    session, _ = codec.new("acme", "d" * 64)
    assert csrf_ok(session, session.csrf)
    assert not csrf_ok(session, None) and not csrf_ok(session, "") and not csrf_ok(session, session.csrf + "x")
    portal = "https://sso-setup.apsis.example"
    assert origin_ok(None, portal) and origin_ok("null", portal) and origin_ok(portal, portal)
    assert not origin_ok("https://evil.example", portal) and not origin_ok("http://sso-setup.apsis.example", portal)


def test_headers_forbid_inline_script_framing_referrers_and_add_hsts_on_https():
    headers = response_headers(https=False)
    csp = headers["content-security-policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp and "frame-ancestors 'none'" in csp
    assert headers["referrer-policy"] == "no-referrer" and headers["x-content-type-options"] == "nosniff"
    assert "strict-transport-security" not in headers
    assert response_headers(https=True)["strict-transport-security"].startswith("max-age=")


def make_portal(tmp_path: Path, url: str = "https://sso-setup.apsis.example") -> Portal:
    settings = Settings(
        _env_file=None,
        keycloak_client_secret="x" * 32,
        portal_url=url,  # type: ignore[call-arg]
        sync_secrets_dir=tmp_path / "secrets",
    )
    portal_settings = PortalSettings(_env_file=None, session_key=SecretStr("s" * 40))  # type: ignore[call-arg]

    def no_keycloak():  # the pages tested here never ask Keycloak
        raise AssertionError("Keycloak was asked")

    return Portal(
        settings,
        portal_settings,
        MailSettings(_env_file=None, platform_team_email="team@apsis.example"),  # type: ignore[call-arg]
        Audit(tmp_path / "audit.jsonl"),
        Repositories(no_keycloak),
    )


def test_every_response_of_the_app_carries_the_headers(tmp_path: Path):
    client = TestClient(create_app(make_portal(tmp_path)), base_url="https://sso-setup.apsis.example")
    for path, status in (
        ("/", 200),
        ("/healthz", 200),
        ("/static/copy.js", 200),
        ("/nope", 404),
        ("/setup", 401),
        ("/i/acme/short", 404),
    ):
        response = client.get(path)
        assert response.status_code == status, path
        assert response.headers["strict-transport-security"].startswith("max-age=")
        assert response.headers["x-frame-options"] == "DENY"
        assert "<script>" not in response.text
    assert client.get("/").headers["cache-control"] == "no-store"
    assert "no-store" not in client.get("/static/portal.css").headers.get("cache-control", "")
    assert client.post("/healthz").status_code == 405


def test_a_bad_link_shape_is_refused_without_asking_keycloak_and_audited(tmp_path: Path):
    portal = make_portal(tmp_path)
    client = TestClient(create_app(portal), base_url="https://sso-setup.apsis.example")
    assert client.get("/i/ACME/" + "a" * 43).status_code == 404  # not an account id
    assert client.get("/i/acme/" + "a" * 42).status_code == 404  # not a token
    portal.audit.close()
    records = (tmp_path / "audit.jsonl").read_text().splitlines()
    assert len(records) == 2 and all('"outcome": "refused"' in r and "a" * 42 not in r for r in records)


def test_refusals_are_raised_and_rendered_by_one_handler_with_the_headers(tmp_path: Path):
    portal = make_portal(tmp_path)
    client = TestClient(create_app(portal), base_url="https://sso-setup.apsis.example")
    for _ in range(portal.portal.opens_per_minute):
        assert client.get("/i/ACME/x").status_code == 404
    limited = client.get("/i/ACME/x")  # the rate limit, raised in the page, rendered by the handler
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert "Too many attempts" in limited.text and limited.headers["x-frame-options"] == "DENY"
    ended = client.get("/renew")
    assert ended.status_code == 401 and "__Host-" in ended.headers.get("set-cookie", "")  # the session is cleared
    with pytest.raises(ValueError):
        Refused()
    with pytest.raises(ValueError):
        Refused(explain.FORM_EXPIRED, redirect="/setup")


def test_no_page_steers_by_the_type_of_what_a_helper_returned():
    source = Path(pages.__file__).read_text(encoding="utf-8")
    assert "isinstance(found, Response)" not in source and "isinstance(form, Response)" not in source
    assert "action ==" not in source, "an audit action never decides which page follows"


# -- rate limits ----------------------------------------------------------------------------


def test_the_rate_limiter_allows_a_window_of_events_per_key():
    now = [0.0]
    limiter = RateLimiter(3, 60, clock=lambda: now[0])
    assert [limiter.hit("a") for _ in range(3)] == [None, None, None]
    assert limiter.hit("a") == 60 and limiter.hit("b") is None
    now[0] = 30
    assert limiter.hit("a") == 30
    now[0] = 60.5
    assert limiter.hit("a") is None  # the first three left the window
    now[0] = 1000
    limiter.hit("c")
    assert set(limiter._events) == {"c"}  # old keys are forgotten


# -- test results ---------------------------------------------------------------------------


def event(kind: str, minute: int, alias: str = "entra-acme", **details: str) -> dict:
    error = {"error": "apsis_sso_refused"} if kind == "refused" else {}
    return {
        "type": "LOGIN" if kind == "login" else "IDENTITY_PROVIDER_FIRST_LOGIN_ERROR",
        "time": minute * 60_000,
        "details": {"identity_provider": alias, **details},
        **error,
    }


def test_a_test_users_state_is_their_newest_sso_event():
    none = results.summarise("ann@acme.com", "entra-acme", [])
    assert (none.signed_in, none.refused, none.ok) == (None, None, False)
    signed = results.summarise(
        "ann@acme.com", "entra-acme", [event("refused", 1, reason="not_member"), event("login", 2)]
    )
    assert signed.ok and signed.refused is None and signed.signed_in == datetime.fromtimestamp(120, UTC)
    refused = results.summarise(
        "ann@acme.com", "entra-acme", [event("login", 1), event("refused", 3, reason="not_member")]
    )
    assert not refused.ok and refused.refused == "not_member"
    other = results.summarise(
        "ann@acme.com",
        "entra-acme",
        [event("login", 5, alias="entra-other"), {"type": "LOGIN", "time": 1, "details": {}}],
    )
    assert other.signed_in is None  # a password login or another account's SSO is no test result


# -- pages for dead links ---------------------------------------------------------------------


def test_each_dead_link_says_what_happened_and_how_to_get_a_new_one():
    _, invitation = mint("setup", timedelta(days=7), datetime(2026, 5, 1, tzinfo=UTC))
    cases = {
        "expired": (410, "has expired"),
        "used": (410, "has been used"),
        "revoked": (410, "withdrawn"),
        "superseded": (410, "newer link"),
        "unknown": (404, "not valid"),
    }
    for verdict, (status, words) in cases.items():
        found = explain.link_problem(verdict, invitation, "team@apsis.example")  # type: ignore[arg-type]
        assert found.status == status and words in found.title
        assert "team@apsis.example" in found.action or verdict == "superseded"


def test_entra_refusals_are_explained_in_the_customers_words():
    error = EntraRefused("Entra has no application x in tenant t (AADSTS700016)", "AADSTS700016")
    assert "Application (client) ID 6a8b" in explain.entra_refusal(error, "t", "6a8b")
    other = EntraRefused("some operator line", "AADSTS50000")
    assert explain.entra_refusal(other, "t", "c") == "some operator line"
    assert explain.sign_in_refused("not_pilot") == "this address is not on the test-user list"
