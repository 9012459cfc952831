"""Token issuance and validation.

Claim sets follow Microsoft's references:
* ID tokens (v2.0): https://learn.microsoft.com/entra/identity-platform/id-token-claims-reference
* Access tokens: https://learn.microsoft.com/entra/identity-platform/access-token-claims-reference
  Microsoft Graph requests v1.0 access tokens, so Graph tokens carry ``ver`` 1.0, the
  ``https://sts.windows.net/{tid}/`` issuer, ``appid``/``appidacr`` and ``idtyp``.
* Optional claim ``xms_edov``: https://learn.microsoft.com/entra/identity-platform/optional-claims-reference
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
import uuid
from typing import Any

import jwt
from cryptography.fernet import Fernet, InvalidToken

from .certs import SigningKey
from .state import Application, Tenant, User

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH_RESOURCE = "https://graph.microsoft.com"


def _rand(n: int = 24) -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(n)).rstrip(b"=").decode()


def pairwise_sub(tenant: Tenant, app_id: str, oid: str) -> str:
    """Entra's ``sub`` is pairwise: stable for one user and one application, different across
    applications. 43 characters of base64url, like Microsoft's."""
    digest = hashlib.sha256(f"{tenant.pairwise_salt}:{app_id.lower()}:{oid.lower()}".encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def v2_issuer(base_url: str, tenant_id: str) -> str:
    return f"{base_url}/{tenant_id}/v2.0"


def v1_issuer(tenant_id: str) -> str:
    return f"https://sts.windows.net/{tenant_id}/"


class TokenIssuer:
    def __init__(self, signing: SigningKey) -> None:
        self._signing = signing
        self._public_key = signing.private_key.public_key()
        # Opaque access tokens (setting ``opaque_access_tokens``): the JWT encrypted with a key
        # only this process knows, as Microsoft reserves the right to do ("access tokens are
        # opaque to clients"; Graph tokens for personal accounts already are): a client that
        # reads claims out of an access token breaks here as it would there.
        self._opaque = Fernet(Fernet.generate_key())

    def opaque(self, token: str) -> str:
        """``token`` as an opaque string: no dots, nothing a client can decode."""
        return self._opaque.encrypt(token.encode()).decode().rstrip("=")

    def reveal(self, token: str) -> str:
        """The JWT inside an opaque token; any other string unchanged (then it fails to decode)."""
        if "." in token:
            return token
        try:
            return self._opaque.decrypt((token + "=" * (-len(token) % 4)).encode()).decode()
        except (InvalidToken, ValueError):
            return token

    def _sign(self, claims: dict[str, Any], typ: str = "JWT") -> str:
        headers = {"typ": typ, "alg": "RS256", "kid": self._signing.kid, "x5t": self._signing.kid}
        # The key object, not its PEM: PyJWT would parse and validate the PEM (RSA key checks)
        # on every token, which made the emulator, not the client, the bottleneck.
        return jwt.encode(claims, self._signing.private_key, algorithm="RS256", headers=headers)

    def id_token(
        self,
        base_url: str,
        tenant: Tenant,
        app: Application,
        user: User,
        scopes: list[str],
        nonce: str | None,
        lifetime: int,
        email_domain_verified: bool = False,
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "aud": app.app_id,
            "iss": v2_issuer(base_url, tenant.tenant_id),
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "aio": _rand(),
        }
        if ("email" in scopes or "email" in app.optional_claims) and user.mail:
            claims["email"] = user.mail
        if "profile" in scopes and user.display_name:
            claims["name"] = user.display_name
        if nonce:
            claims["nonce"] = nonce
        claims["oid"] = user.oid
        if "profile" in scopes:
            claims["preferred_username"] = user.user_principal_name
        claims.update(
            {
                "rh": _rand(16),
                "sid": str(uuid.uuid4()),
                "sub": pairwise_sub(tenant, app.app_id, user.oid),
                "tid": tenant.tenant_id,
                "uti": _rand(16),
                "ver": "2.0",
            }
        )
        if "email" in claims and "xms_edov" in app.optional_claims:
            claims["xms_edov"] = email_domain_verified
        claims.update(user.id_token_overrides)  # attack control (state.User), never set by Entra itself
        return self._sign(claims)

    def app_token(self, tenant: Tenant, app: Application, audience: str, lifetime: int) -> str:
        """An app-only (client credentials) access token; ``roles`` are the granted permissions."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "aud": audience,
            "iss": v1_issuer(tenant.tenant_id),
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "aio": _rand(),
            "app_displayname": app.display_name,
            "appid": app.app_id,
            "appidacr": "1",
            "idp": v1_issuer(tenant.tenant_id),
            "idtyp": "app",
            "oid": app.sp_object_id,
            "rh": _rand(16),
            "sub": app.sp_object_id,
            "tenant_region_scope": tenant.region_scope,
            "tid": tenant.tenant_id,
            "uti": _rand(16),
            "ver": "1.0",
        }
        if app.permissions:
            claims["roles"] = sorted(app.permissions)
        return self._sign(claims)

    def user_token(self, tenant: Tenant, app: Application, user: User, scopes: list[str], lifetime: int) -> str:
        """A delegated Graph access token for the signed-in user (``scp``, no ``roles``)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "aud": GRAPH_APP_ID,
            "iss": v1_issuer(tenant.tenant_id),
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "acct": 0,
            "acr": "1",
            "aio": _rand(),
            "amr": ["pwd"],
            "app_displayname": app.display_name,
            "appid": app.app_id,
            "appidacr": "1",
            "family_name": user.surname,
            "given_name": user.given_name,
            "idtyp": "user",
            "name": user.display_name,
            "oid": user.oid,
            "rh": _rand(16),
            "scp": " ".join(scopes),
            "sub": pairwise_sub(tenant, GRAPH_APP_ID, user.oid),
            "tenant_region_scope": tenant.region_scope,
            "tid": tenant.tenant_id,
            "unique_name": user.user_principal_name,
            "upn": user.user_principal_name,
            "uti": _rand(16),
            "ver": "1.0",
        }
        return self._sign({k: v for k, v in claims.items() if v is not None})

    def decode(self, token: str, audiences: list[str]) -> dict[str, Any]:
        """Validate signature, lifetime and audience; raises ``jwt.InvalidTokenError``."""
        return jwt.decode(
            self.reveal(token),
            self._public_key,
            algorithms=["RS256"],
            audience=audiences,
            options={"require": ["exp", "iat", "aud", "tid"]},
            leeway=5,
        )
