"""Login edge cases found by attacking it (issue 14, item 4), through the real Keycloak."""

from __future__ import annotations

import base64
import hashlib
import html
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urljoin

import pytest

from apsis_core.keycloak import KeycloakRepository
from devenv.accounts import PASSWORD, AccountFactory, now_ms, user_count
from devenv.keycloak import KeycloakServer
from devenv.login_driver import CLIENT_ID, REDIRECT_URI, Browser, LoginResult, forms
from tests.login_checks import assert_refused, linked_idp_user_ids, message


@pytest.mark.parametrize("sent", [None, "true", 1, [True]], ids=["null", "string", "number", "array"])
def test_xms_edov_that_is_not_the_boolean_true_is_refused(accounts: AccountFactory, api, browser, emulator, sent):
    acct = accounts.create(stage="live")
    email, user_id = acct.person("eve")
    oid = emulator.find_user(acct.tenant_id, email).oid
    emulator.override_id_token_claims(acct.tenant_id, oid, {"xms_edov": sent})
    since = now_ms()
    assert_refused(browser().sso_login(email, PASSWORD, acct.alias), api, since, "email_unverified")
    assert linked_idp_user_ids(api, user_id, acct.alias) == []

    emulator.override_id_token_claims(acct.tenant_id, oid, {"xms_edov": True})
    assert browser().sso_login(email, PASSWORD, acct.alias).ok


def test_two_concurrent_first_logins_of_one_person_both_sign_in_with_one_link(
    accounts: AccountFactory, api, browser, emulator
):
    acct = accounts.create(stage="live")
    for round_ in range(3):
        email, user_id = acct.person(f"twin{round_}")
        before = user_count(api)
        start = threading.Barrier(2)

        def tab(_: int, email: str = email, start: threading.Barrier = start) -> LoginResult:
            b = browser()
            start.wait()
            return b.sso_login(email, PASSWORD, acct.alias)

        with ThreadPoolExecutor(2) as pool:
            first, second = pool.map(tab, range(2))
        for result in (first, second):
            assert result.ok, result.text[:500]
            assert result.id_claims["sub"] == user_id
        assert linked_idp_user_ids(api, user_id, acct.alias) == [emulator.find_user(acct.tenant_id, email).oid]
        assert user_count(api) == before


def login_failures(api: KeycloakRepository, user_id: str) -> dict[str, Any]:
    return api.admin.get_bruteforce_detection_status(user_id)


def test_no_refusal_and_no_broker_round_trip_counts_as_a_failed_password(
    accounts: AccountFactory, api, browser, emulator
):
    """30 SSO logins at once: successes, every kind of refusal, broker errors, two tabs of one
    person, addresses typed on the login page. Keycloak's brute-force protection counts only
    failures of password, OTP and recovery-code steps; afterwards nobody has a failure on
    record, and nobody is locked. A contractor's wrong password shows the counting is seen."""
    live, pilot, broken = accounts.create(stage="live"), accounts.create(), accounts.create(stage="live")
    people: dict[str, str] = {}
    logins: list[tuple[str, str, str]] = []  # (how, email, password typed)

    for i in range(6):  # members who only know their Microsoft password
        email = f"ms{i}@{live.domain}"
        live.entra_user(f"ms{i}", password="Microsoft-Only-9")
        people[email] = live.apsis_user(email)
        logins.append(("page", email, "Microsoft-Only-9"))
    for i in range(4):  # not members: refused after Entra
        email = f"nm{i}@{live.domain}"
        live.entra_user(f"nm{i}")
        people[email] = live.apsis_user(email, member=False)
        logins.append(("page", email, PASSWORD))
    for i in range(4):  # pilot members not on the list: refused by the test-login link
        email, people[email] = pilot.person(f"np{i}", pilot=False)
        logins.append(("link", email, PASSWORD))
    for i in range(4):  # deactivated after their first login: refused at the broker endpoint
        email, user_id = live.person(f"off{i}")
        people[email] = user_id
        assert browser().login_page(email, PASSWORD).ok
        api.update_user(user_id, {**api.user(user_id), "enabled": False})
        logins.append(("page", email, PASSWORD))
    for i in range(3):  # deactivated before any login: refused in first-broker-login
        email, people[email] = live.person(f"new-off{i}", enabled=False)
        logins.append(("page", email, PASSWORD))
    for i in range(3):  # Entra's token endpoint fails: a broker error
        email, people[email] = broken.person(f"err{i}")
        logins.append(("page", email, PASSWORD))
    emulator.inject_token_fault("server_error", count=3, tenant_id=broken.tenant_id)
    for i in range(3):  # one person, two tabs
        email, people[email] = live.person(f"twin{i}")
        logins += [("page", email, PASSWORD), ("link-live", email, PASSWORD)]
    assert len(logins) == 30

    def login(job: tuple[str, str, str]) -> LoginResult:
        how, email, password = job
        b = browser()
        if how == "page":
            return b.login_page(email, password)
        return b.sso_login(email, password, (pilot if how == "link" else live).alias)

    with ThreadPoolExecutor(30) as pool:
        results = dict(enumerate(pool.map(login, logins)))
    signed_in = {logins[i][1] for i, r in results.items() if r.ok}
    assert {f"ms{i}@{live.domain}" for i in range(6)} <= signed_in, "Microsoft password users reach Entra"
    assert {f"twin{i}@{live.domain}" for i in range(3)} <= signed_in
    assert not any(results[i].forms.count("password") for i, job in enumerate(logins)), (
        "no address in a live domain ever saw the password form"
    )

    contractor = f"contractor-{live.id}@agency.example"
    contractor_id = live.apsis_user(contractor)
    assert not browser().login_page(contractor, "wrong-password").ok  # the control: this one counts

    deadline = time.monotonic() + 10  # the protector records on a background executor
    while login_failures(api, contractor_id)["numFailures"] == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert login_failures(api, contractor_id)["numFailures"] >= 1
    counted = {email: login_failures(api, user_id) for email, user_id in people.items()}
    assert {e: (s["numFailures"], s["disabled"]) for e, s in counted.items() if s["numFailures"] or s["disabled"]} == {}


def entra_round_trip(b: Browser, email: str, alias: str) -> tuple[str, str]:
    """An SSO login up to Entra's redirect back to Keycloak's broker endpoint, not followed:
    (the callback URL, the PKCE verifier that finishes the login)."""
    verifier = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = {
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "scope": "openid",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "kc_idp_hint": alias,
    }
    broker = f"{b.keycloak_url}/realms/{b.realm}/broker/{alias}/endpoint"
    prompt = b._follow(
        b._request("GET", f"{b.keycloak_url}/realms/{b.realm}/protocol/openid-connect/auth?{urlencode(query)}"), broker
    )
    assert not isinstance(prompt, str)
    form = next(f for f in forms(prompt.text) if {"login", "passwd"} <= set(f.fields))
    callback = b._follow(
        b._request(
            "POST",
            urljoin(prompt.url, html.unescape(form.action)),
            data={**form.fields, "login": email, "passwd": PASSWORD},
        ),
        broker,
    )
    assert isinstance(callback, str), callback
    return callback, verifier


def finish(b: Browser, callback: str, verifier: str) -> LoginResult:
    """Follow Entra's redirect back into Keycloak to the application (or a page)."""
    outcome = b._follow(b._request("GET", callback), REDIRECT_URI)
    if isinstance(outcome, str):
        return b._finish(outcome, verifier)
    return LoginResult(code=None, status=outcome.status_code, page=outcome.text, url=outcome.url)


def test_concurrent_sso_logins_of_one_person_are_never_locked_out(accounts: AccountFactory, api, browser):
    """Several tabs or devices of one linked person come back from Entra at the same moment.
    Keycloak's default brute-force protector treats a second login of a user still in flight
    on another thread as an attack (``user_temporarily_disabled``, although nobody typed a
    password); no SSO callback of ours may be answered that way."""
    acct = accounts.create(stage="live")
    email, user_id = acct.person("six")
    assert browser().sso_login(email, PASSWORD, acct.alias).ok  # linked: the returning path from now on
    since = now_ms()
    for _ in range(4):
        tabs = [browser() for _ in range(6)]
        callbacks = [entra_round_trip(b, email, acct.alias) for b in tabs]
        start = threading.Barrier(len(tabs))

        def back(
            i: int, start: threading.Barrier = start, tabs: list = tabs, callbacks: list = callbacks
        ) -> LoginResult:
            start.wait()
            return finish(tabs[i], *callbacks[i])

        with ThreadPoolExecutor(len(tabs)) as pool:
            results = list(pool.map(back, range(len(tabs))))
        assert [r.ok for r in results] == [True] * len(tabs), [r.text[:200] for r in results if not r.ok]
        assert all(r.id_claims["sub"] == user_id for r in results)
    errors = [e for e in api.events(max=200, type="IDENTITY_PROVIDER_LOGIN_ERROR") if e.get("time", 0) >= since]
    assert [e.get("error") for e in errors] == []
    status = login_failures(api, user_id)
    assert (status["numFailures"], status["disabled"]) == (0, False)


def test_wrong_passwords_still_lock_the_password_login(accounts: AccountFactory, api, browser):
    """The control for the test above: brute-force protection of passwords is intact."""
    acct = accounts.create(stage="live")
    contractor = f"locked-{acct.id}@agency.example"
    user_id = acct.apsis_user(contractor)
    for _ in range(3):
        assert not browser().login_page(contractor, "wrong-password").ok
    deadline = time.monotonic() + 10  # the protector records on a background executor
    while not login_failures(api, user_id)["disabled"] and time.monotonic() < deadline:
        time.sleep(0.2)
    status = login_failures(api, user_id)
    assert status["numFailures"] >= 2 and status["disabled"]
    refused = browser().login_page(contractor, PASSWORD)  # the right password, too soon
    assert not refused.ok


WAITS = "A first login through {alias} waits for another first login of the same person"


def waits(keycloak: KeycloakServer, alias: str) -> int:
    """How many first logins through ``alias`` waited for another one (the server's log says so)."""
    return Path(str(keycloak.log_file)).read_text(errors="replace").count(WAITS.format(alias=alias))


def test_a_first_login_waits_only_for_another_one_still_in_flight(
    accounts: AccountFactory, api, browser, emulator, keycloak
):
    """A person's first-login claim ends with that login: a retry after the link was removed,
    or after a refusal, starts at once (it waited the full 10 s for a link that never came);
    a second tab while the first is still on its way does wait, and signs in through its link."""
    acct = accounts.create(stage="live")

    # Linked, then unlinked by an administrator: the retry is a first login again, and nobody is in flight.
    email, user_id = acct.person("again")
    assert browser().sso_login(email, PASSWORD, acct.alias).ok
    api.unlink_user(user_id, acct.alias)
    again = browser().sso_login(email, PASSWORD, acct.alias)
    assert again.ok and again.id_claims["sub"] == user_id
    assert linked_idp_user_ids(api, user_id, acct.alias) == [emulator.find_user(acct.tenant_id, email).oid]

    # Refused after the claim (the object id mapper: a token of another tenant), then tried again.
    other = accounts.create(stage="live")
    refused_email, _ = other.person("refused")
    mapper = next(m for m in api.idp_mappers(other.alias) if m["identityProviderMapper"] == "apsis-entra-oid-mapper")
    api.update_idp_mapper(
        other.alias,
        mapper["id"],
        {**mapper, "config": {**mapper["config"], "tenantId": "11111111-1111-4111-8111-111111111111"}},
    )
    for _ in range(2):
        result = browser().sso_login(refused_email, PASSWORD, other.alias)
        assert not result.ok and message("tenant_mismatch") in result.text
    assert (waits(keycloak, acct.alias), waits(keycloak, other.alias)) == (0, 0)

    # The first tab came back from Entra and is on its way to first-broker-login when the second arrives.
    email, user_id = acct.person("tabs")
    first, second = browser(), browser()
    callback, verifier = entra_round_trip(first, email, acct.alias)
    on_its_way = first._request("GET", callback)  # the broker endpoint: this login claims the person
    assert on_its_way.status_code in (302, 303), on_its_way.text[:300]
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(finish, second, *entra_round_trip(second, email, acct.alias))
        deadline = time.monotonic() + 60
        while waits(keycloak, acct.alias) == 0 and time.monotonic() < deadline and not waiting.done():
            time.sleep(0.1)
        assert waits(keycloak, acct.alias) == 1, "the second tab waits while the first login is in flight"
        outcome = first._follow(first._request("GET", urljoin(callback, on_its_way.headers["Location"])), REDIRECT_URI)
        assert isinstance(outcome, str)
        signed_in = [first._finish(outcome, verifier), waiting.result()]
    assert [r.ok for r in signed_in] == [True, True], [r.text[:300] for r in signed_in]
    assert {r.id_claims["sub"] for r in signed_in} == {user_id}
    assert linked_idp_user_ids(api, user_id, acct.alias) == [emulator.find_user(acct.tenant_id, email).oid]
    assert waits(keycloak, acct.alias) == 1
