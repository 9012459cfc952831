"""The URLs we hand to a customer's IT and test users."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import urlencode

from apsis_core.account import Account, idp_alias
from apsis_core.contract import ADMIN_CONSENT_STATE, EXAMPLE_CLIENT
from apsis_core.settings import Settings


def redirect_uri(settings: Settings, account_id: str) -> str:
    """What the customer registers as the Web redirect URI of their app registration."""
    return f"{settings.public_url}/realms/{settings.realm}/broker/{idp_alias(account_id)}/endpoint"


def admin_consent_url(settings: Settings, account: Account) -> str:
    """The tenant-specific admin-consent link their Entra admin approves.

    Its ``redirect_uri`` is the broker endpoint the customer already registered (Entra
    redirects only to a registered URI), so no second redirect URI is needed.
    """
    query = urlencode(
        {
            "client_id": account.client_id,
            "redirect_uri": redirect_uri(settings, account.id),
            "state": ADMIN_CONSENT_STATE,
        }
    )
    return f"{settings.entra_authority}/{account.tenant_id}/adminconsent?{query}"


def test_login_url(settings: Settings, account_id: str) -> str:
    """A link that sends a test user straight to their Entra sign-in (``kc_idp_hint``) and
    lands them in the account console once signed in.

    The example client requires PKCE, so the link carries a fixed challenge: the login
    itself is what is tested, and the code it yields is never exchanged (the account
    console starts its own flow on the session the login created).
    """
    landing = f"{settings.public_url}/realms/{settings.realm}/account/"
    challenge = base64.urlsafe_b64encode(hashlib.sha256(f"test-login-{account_id}".encode()).digest()).rstrip(b"=")
    query = urlencode(
        {
            "client_id": EXAMPLE_CLIENT,
            "redirect_uri": landing,
            "response_type": "code",
            "scope": "openid",
            "kc_idp_hint": idp_alias(account_id),
            "code_challenge": challenge.decode(),
            "code_challenge_method": "S256",
        }
    )
    return f"{settings.public_url}/realms/{settings.realm}/protocol/openid-connect/auth?{query}"
