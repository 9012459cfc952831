"""Print only links Keycloak accepts.

The test-login link lands on the account console of ``APSIS_SSO_KEYCLOAK_PUBLIC_URL``;
Keycloak accepts that ``redirect_uri`` only if ``realm apply`` registered the same public
URL for the ``apsis-one`` client. Rather than re-implement Keycloak's redirect-URI matching
(and give the tooling's service account ``view-clients``, which would also let it read
every client's secret), the link itself is put to Keycloak: its authorization endpoint
answers a refused ``redirect_uri`` with HTTP 400 "Invalid parameter: redirect_uri" and an
accepted one with a redirect or the login page. The request goes to
``APSIS_SSO_KEYCLOAK_URL`` (the public URL may not be reachable from where the tool runs);
the ``redirect_uri`` it checks is the public one. It creates nothing but an anonymous,
short-lived authentication session.
"""

from __future__ import annotations

import html
import re

import requests

from apsis_core.errors import InvalidInput, KeycloakUnavailable
from apsis_core.settings import Settings


class LinkRefused(InvalidInput):
    """Keycloak would refuse a link we are about to print (exit code 2: a configuration error)."""


def check_test_login(settings: Settings, url: str) -> None:
    """Raise ``LinkRefused`` unless Keycloak accepts the test-login link ``url``."""
    probe = settings.keycloak_url + url.removeprefix(settings.public_url)
    try:
        resp = requests.get(
            probe, allow_redirects=False, timeout=settings.keycloak_timeout, verify=settings.keycloak_verify
        )
    except requests.RequestException:
        raise KeycloakUnavailable(f"Keycloak at {settings.keycloak_url} is unreachable") from None
    if resp.status_code < 400:
        return
    text = _visible_text(resp.text)
    if "redirect_uri" in text:
        raise LinkRefused(
            f"Keycloak would refuse the test-login link: its landing page {settings.public_url}/realms/"
            f"{settings.realm}/account/ is not a registered redirect URI of client apsis-one; run "
            f"`apsis-sso realm apply` with APSIS_SSO_KEYCLOAK_PUBLIC_URL={settings.public_url}"
        )
    raise LinkRefused(f"Keycloak would refuse the test-login link (HTTP {resp.status_code}: {text[:200]})")


def _visible_text(page: str) -> str:
    text = re.sub(r"(?is)<(script|style|head).*?</\1>", " ", page)
    text = re.sub(r"(?s)<[^>]+>", " ", text)
    return re.sub(r"\s+", " ", html.unescape(text)).strip()
