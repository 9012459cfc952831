"""Log in through Keycloak the way a person's browser would, over plain HTTP.

Follows redirects one hop at a time (so the final redirect to the application is
observed, not fetched), submits the forms it is shown, and exchanges the code for tokens
with PKCE like a public client. Used by the end-to-end tests and the demo.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
import sys
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import requests

CLIENT_ID = "apsis-one"
REDIRECT_URI = "http://127.0.0.1:9/callback"


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str]


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._current: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._current = Form(attr.get("action", ""), attr.get("method", "get").lower(), {})
            self.forms.append(self._current)
        elif tag == "input" and self._current is not None and attr.get("name"):
            if attr.get("type") in ("checkbox", "radio") and "checked" not in attr:
                return
            self._current.fields[attr["name"]] = attr.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def forms(page: str) -> list[Form]:
    parser = _FormParser()
    parser.feed(page)
    return parser.forms


def visible_text(page: str) -> str:
    text = re.sub(r"(?is)<(script|style).*?</\1>", " ", page)
    text = re.sub(r"(?s)<[^>]+>", " ", text)
    return re.sub(r"\s+", " ", html.unescape(text)).strip()


@dataclass
class LoginResult:
    """Where a login ended: at the application with a code, or on a page with a message."""

    code: str | None
    status: int
    page: str = ""
    url: str = ""
    tokens: dict[str, Any] = field(default_factory=dict)
    # The forms submitted on the way, in order: "username" / "password" (Keycloak's login
    # pages), "entra" (Entra's sign-in). "No extra page" assertions read this.
    forms: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.code is not None

    @property
    def text(self) -> str:
        return visible_text(self.page)

    @property
    def id_claims(self) -> dict[str, Any]:
        token = self.tokens.get("id_token")
        if not token:
            return {}
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


class Browser:
    """One person's browser: a cookie jar shared across Keycloak and the emulator."""

    def __init__(self, keycloak_url: str, realm: str, ca_bundle: str | None = None) -> None:
        self.keycloak_url = keycloak_url.rstrip("/")
        self.realm = realm
        self._verifier = ""
        self.session = requests.Session()
        self.session.verify = ca_bundle if ca_bundle else True

    def _request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        resp = self.session.request(
            method, url, allow_redirects=False, timeout=30, verify=self.session.verify, **kwargs
        )
        # Browsers treat http://127.0.0.1 and localhost as secure contexts and send
        # ``Secure`` cookies there (Keycloak's session cookies are Secure); do the same.
        for cookie in self.session.cookies:
            if cookie.secure and (
                cookie.domain.startswith("127.") or cookie.domain in ("localhost", "localhost.local")
            ):
                cookie.secure = False
        return resp

    def _follow(self, resp: requests.Response, stop_at: str) -> requests.Response | str:
        """Follow redirects until the application's redirect URI (returned as a URL)."""
        for _ in range(30):
            if resp.status_code not in (301, 302, 303, 307, 308):
                return resp
            location = urljoin(resp.url, resp.headers["Location"])
            if location.startswith(stop_at):
                return location
            resp = self._request("GET", location)
            if os.environ.get("APSIS_SSO_TRACE_LOGIN"):
                print("HOP", resp.status_code, location[:160], file=sys.stderr)
        raise RuntimeError("too many redirects")

    def sso_login(self, login: str, password: str, idp_alias: str, **extra: str) -> LoginResult:
        """Start at the application with ``kc_idp_hint``, sign in at Entra, come back."""
        return self._login({"kc_idp_hint": idp_alias, **extra}, login, password, entra=True)

    def idp_login(self, login: str, password: str, idp_alias: str, **extra: str) -> LoginResult:
        """The same through any identity provider's sign-in form (Okta's: ``username`` and
        ``password``), filled with whatever form comes next."""
        return self._login({"kc_idp_hint": idp_alias, **extra}, login, password, entra=None)

    def password_login(self, username: str, password: str) -> LoginResult:
        return self._login({}, username, password, entra=False)

    def login_page(self, address: str, password: str, **extra: str) -> LoginResult:
        """The ordinary login page: type the address, then fill whatever comes next (Keycloak's
        password form, or Entra's sign-in) with ``password``. ``LoginResult.forms`` says which."""
        return self._login(extra, address, password, entra=None)

    def follow(self, url: str, password: str, login: str = "", landing: str = REDIRECT_URI) -> LoginResult:
        """Open a link (one shown on a page, like "sign in with your password instead", or one
        we print, like the test-login link) and sign in with whatever forms come. The login ends
        at ``landing``; only at the application's own redirect URI is the code exchanged."""
        verifier = self._verifier
        outcome = self._follow(self._request("GET", url), landing)
        if isinstance(outcome, str):
            return self._finish(outcome, verifier, landing)
        return self._fill_forms(outcome, login, password, None, verifier, landing)

    def admin_consent(self, url: str, login: str, password: str, *, accept: bool = True) -> LoginResult:
        """An Entra administrator opens the admin-consent link, signs in and accepts (or
        cancels); Entra redirects back and the page the admin lands on is returned."""
        prompt = self._request("GET", url)
        found = [f for f in forms(prompt.text) if {"login", "passwd"} <= set(f.fields)]
        if not found:
            return LoginResult(code=None, status=prompt.status_code, page=prompt.text, url=prompt.url)
        form = found[0]
        data = {**form.fields, "login": login, "passwd": password, "consent": "accept" if accept else "cancel"}
        action = urljoin(prompt.url, html.unescape(form.action)) if form.action else prompt.url
        landed = self._follow(self._request("POST", action, data=data), "\0")
        assert not isinstance(landed, str)
        return LoginResult(code=None, status=landed.status_code, page=landed.text, url=landed.url)

    def _login(self, extra: dict[str, str], login: str, password: str, entra: bool | None) -> LoginResult:
        verifier = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        query = {
            "client_id": CLIENT_ID,
            "redirect_uri": REDIRECT_URI,
            "response_type": "code",
            "scope": "openid email profile",
            "state": base64.urlsafe_b64encode(os.urandom(9)).decode(),
            "nonce": base64.urlsafe_b64encode(os.urandom(9)).decode(),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            **extra,
        }
        url = f"{self.keycloak_url}/realms/{self.realm}/protocol/openid-connect/auth?{urlencode(query)}"
        self._verifier = verifier
        outcome = self._follow(self._request("GET", url), REDIRECT_URI)
        if isinstance(outcome, str):  # already signed in: straight back to the application
            return self._finish(outcome, verifier)
        return self._fill_forms(outcome, login, password, entra, verifier)

    def _fill_forms(
        self,
        outcome: requests.Response,
        login: str,
        password: str,
        entra: bool | None,
        verifier: str,
        landing: str = REDIRECT_URI,
    ) -> LoginResult:
        # Entra shows one form (login + passwd); Keycloak with organizations asks for the
        # username first and the password on a second page.
        submitted: list[str] = []
        for _ in range(4):
            found = self._login_form(outcome.text, entra)
            if found is None:
                return LoginResult(
                    code=None, status=outcome.status_code, page=outcome.text, url=outcome.url, forms=submitted
                )
            kind, form = found
            submitted.append(kind)
            data = dict(form.fields)
            for name, value in (("login", login), ("passwd", password), ("username", login), ("password", password)):
                if name in data:
                    data[name] = value
            action = urljoin(outcome.url, html.unescape(form.action)) if form.action else outcome.url
            outcome = self._follow(self._request("POST", action, data=data), landing)
            if isinstance(outcome, str):
                result = self._finish(outcome, verifier, landing)
                result.forms = submitted
                return result
        return LoginResult(code=None, status=outcome.status_code, page=outcome.text, url=outcome.url, forms=submitted)

    @staticmethod
    def _login_form(page: str, entra: bool | None) -> tuple[str, Form] | None:
        """The form to fill next: Entra's (``entra`` True or None), Keycloak's (False or None)."""
        for form in forms(page):
            names = set(form.fields)
            if entra is not False and {"login", "passwd"} <= names:
                return "entra", form
            if entra is not True and "password" in names:
                return "password", form
            if entra is not True and "username" in names:
                return "username", form
        return None

    @staticmethod
    def links(page: str) -> dict[str, str]:
        """Links on a page by their id attribute."""
        return {
            m.group(1): html.unescape(m.group(2))
            for m in re.finditer(r'<a[^>]*\bid="([^"]+)"[^>]*\bhref="([^"]+)"', page)
        }

    def _finish(self, location: str, verifier: str, landing: str = REDIRECT_URI) -> LoginResult:
        params = parse_qs(urlsplit(location).query)
        if "code" not in params:
            return LoginResult(code=None, status=302, url=location, page=json.dumps(params))
        code = params["code"][0]
        if landing != REDIRECT_URI:  # another client's landing page: the code is its business
            return LoginResult(code=code, status=302, url=location)
        token = self.session.post(
            f"{self.keycloak_url}/realms/{self.realm}/protocol/openid-connect/token",
            data={
                "grant_type": "authorization_code",
                "client_id": CLIENT_ID,
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "code_verifier": verifier,
            },
            timeout=30,
            verify=self.session.verify,  # else REQUESTS_CA_BUNDLE would win over the session's CA
        )
        token.raise_for_status()
        return LoginResult(code=code, status=302, url=location, tokens=token.json())
