"""Whole SSO logins in a real headless Chromium (Debian's package, driven by Playwright):
through the test-login link, and from the ordinary login page by typing an address."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from devenv.accounts import PASSWORD, AccountFactory, user_count
from devenv.login_driver import CLIENT_ID, REDIRECT_URI

CHROMIUM = os.environ.get("APSIS_SSO_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def sign_in_with_chromium(settings, realm: str, extra: dict[str, str], steps: Callable[[Any], None]) -> dict[str, Any]:
    """Open APSIS One's authorization request in Chromium, let ``steps`` do what a person does
    on the pages, and return the ID token's claims of the code APSIS One received."""
    from playwright.sync_api import sync_playwright

    assert shutil.which(CHROMIUM) or os.path.exists(CHROMIUM), f"Chromium is not installed at {CHROMIUM}"
    verifier = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    auth_url = f"{settings.keycloak_url}/realms/{realm}/protocol/openid-connect/auth?" + urlencode(
        {
            "client_id": CLIENT_ID,
            "redirect_uri": REDIRECT_URI,
            "response_type": "code",
            "scope": "openid",
            "state": "chromium-state",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            **extra,
        }
    )
    landed: list[str] = []
    with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        browser = pw.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=FLAGS,
            ignore_https_errors=True,
        )
        try:
            page = browser.new_page()

            def application(route) -> None:  # stands in for APSIS One's callback
                landed.append(route.request.url)
                route.fulfill(status=200, content_type="text/html", body="<h1>Signed in to APSIS One</h1>")

            page.route(f"{REDIRECT_URI}**", application)
            page.goto(auth_url)
            steps(page)
            page.wait_for_selector("text=Signed in to APSIS One", timeout=30_000)
        finally:
            browser.close()

    assert len(landed) == 1
    params = parse_qs(urlsplit(landed[0]).query)
    assert params["state"] == ["chromium-state"]
    token = requests.post(
        f"{settings.keycloak_url}/realms/{realm}/protocol/openid-connect/token",
        data={
            "grant_type": "authorization_code",
            "client_id": CLIENT_ID,
            "code": params["code"][0],
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        },
        timeout=30,
    )
    assert token.status_code == 200, token.text
    payload = token.json()["id_token"].split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def entra_sign_in(page, emulator, email: str) -> None:
    page.wait_for_selector("input[name=passwd]")
    assert emulator.url.split("://")[1] in page.url  # Entra's sign-in page
    page.fill("input[name=login]", email)
    page.fill("input[name=passwd]", PASSWORD)
    page.click("[type=submit]")


@pytest.mark.browser
def test_sso_login_in_headless_chromium(accounts: AccountFactory, api, settings, realm, emulator):
    acct = accounts.create()
    email, user_id = acct.person("frank")
    before = user_count(api)
    # The test-login link: no Keycloak page first.
    claims = sign_in_with_chromium(
        settings, realm, {"kc_idp_hint": acct.alias}, lambda page: entra_sign_in(page, emulator, email)
    )
    assert claims["sub"] == user_id
    assert user_count(api) == before


@pytest.mark.browser
def test_live_member_types_her_address_on_the_login_page_in_chromium(
    accounts: AccountFactory, api, settings, realm, emulator
):
    acct = accounts.create(stage="live")
    email, user_id = acct.person("gina", pilot=False)

    def steps(page) -> None:
        page.wait_for_selector("input[name=username]")
        assert page.locator("input[name=password]").count() == 0  # identity first: the address alone
        page.fill("input[name=username]", email)
        page.click("[type=submit]")
        entra_sign_in(page, emulator, email)

    claims = sign_in_with_chromium(settings, realm, {}, steps)
    assert claims["sub"] == user_id
    assert claims["apsis_account"] == acct.id
