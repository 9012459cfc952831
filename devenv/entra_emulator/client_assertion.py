"""Client authentication with a signed assertion (``private_key_jwt``), checked as Microsoft
documents it: https://learn.microsoft.com/entra/identity-platform/certificate-credentials

* header: ``alg`` RS256 or PS256, the certificate named by ``x5t`` (base64url SHA-1 of its DER)
  and/or ``x5t#S256`` (SHA-256); ``kid`` plays no part;
* claims: ``aud`` = the tenant's v2.0 token endpoint, ``iss`` = ``sub`` = the client id,
  ``exp`` (and ``nbf`` when present) bounding the time it may be used;
* the certificate must be uploaded to the app and not expired, and must verify the signature.

Each fault gets the AADSTS code Entra answers for it. Microsoft documents no check of a replayed
``jti`` and no cap on ``exp`` ("Microsoft Entra ID doesn't place restrictions on the exp time
currently"), so none is made here either.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography import x509

from .errors import AadError
from .state import Application, KeyCredential

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = ("RS256", "PS256")
# Entra tolerates some clock skew between the client and its servers; the amount is not
# documented. Five minutes is what Microsoft's own token validation libraries default to.
CLOCK_SKEW = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class ReceivedAssertion:
    """What a client sent (header and claims, never the signature): tests read it to see what
    a real client such as Keycloak's OIDC broker puts in its assertions."""

    app_id: str
    header: dict[str, Any]
    claims: dict[str, Any]


def _thumbprint_bytes(value: object) -> bytes | None:
    """A header's thumbprint as bytes: base64url, with or without padding (MSAL pads its
    ``x5t#S256``; Keycloak does not pad its ``x5t``)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except ValueError:
        return None


def decode_unverified(assertion: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    try:
        header = jwt.get_unverified_header(assertion)
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    return header, claims


def malformed() -> AadError:
    return AadError(
        50027,
        "invalid_request",
        400,
        "JWT token is invalid or is malformed. Review the documentation at "
        "https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
    )


def client_id_mismatch() -> AadError:
    return AadError(
        700021,
        "invalid_client",
        401,
        "Client assertion application identifier doesn't match 'client_id' parameter. Review the "
        "documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
    )


def audience_mismatch() -> AadError:
    return AadError(
        700023,
        "invalid_client",
        401,
        "Client assertion audience claim does not match Realm issuer. Review the documentation at "
        "https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
    )


def key_not_found(app_id: str, thumbprint: str) -> AadError:
    return AadError(
        700027,
        "invalid_client",
        401,
        "The certificate with identifier used to sign the client assertion is not registered on "
        f"application. [Reason - The key was not found., Thumbprint of key used by client: '{thumbprint}', "
        "Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys "
        f"for app Id '{app_id}'.]",
    )


def key_expired(app_id: str, cred: KeyCredential) -> AadError:
    return AadError(
        700027,
        "invalid_client",
        401,
        "The certificate with identifier used to sign the client assertion is expired on application. "
        f"[Reason - The key used is expired., Thumbprint of key used by client: '{cred.sha1_thumbprint}', "
        f"Found key 'Start={cred.start:%m/%d/%Y %H:%M:%S}, End={cred.end:%m/%d/%Y %H:%M:%S}', "
        f"Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys "
        f"for app Id '{app_id}'.]",
    )


def bad_signature() -> AadError:
    return AadError(700027, "invalid_client", 401, "Client assertion failed signature validation.")


def outside_time_range(now: dt.datetime, nbf: dt.datetime | None, exp: dt.datetime) -> AadError:
    start = nbf.strftime("%Y-%m-%dT%H:%M:%S.0000000Z") if nbf else "1970-01-01T00:00:00.0000000Z"
    return AadError(
        700024,
        "invalid_client",
        401,
        f"Client assertion is not within its valid time range. Current time: "
        f"{now:%Y-%m-%dT%H:%M:%S.0000000Z}, assertion valid from {start}, expiry time of assertion "
        f"{exp:%Y-%m-%dT%H:%M:%S.0000000Z}. Review the documentation at "
        "https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
    )


def _named_certificate(app: Application, header: dict[str, Any]) -> tuple[KeyCredential | None, str]:
    """The uploaded certificate the header names, and the thumbprint the client sent (hex)."""
    s256, s1 = _thumbprint_bytes(header.get("x5t#S256")), _thumbprint_bytes(header.get("x5t"))
    for cred in app.key_credentials:
        if s256 is not None and s256.hex().upper() == cred.sha256_thumbprint:
            return cred, cred.sha256_thumbprint
        if s1 is not None and s1.hex().upper() == cred.sha1_thumbprint:
            return cred, cred.sha1_thumbprint
    named = s256 if s256 is not None else s1
    return None, named.hex().upper() if named is not None else ""


def _timestamp(claims: dict[str, Any], name: str) -> dt.datetime | None:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return dt.datetime.fromtimestamp(value, dt.UTC)


def verify(
    assertion: str, app: Application, client_id: str, token_endpoints: list[str], now: dt.datetime
) -> AadError | None:
    """None when ``assertion`` authenticates ``app``; otherwise Entra's error for it."""
    decoded = decode_unverified(assertion)
    if decoded is None:
        return malformed()
    header, claims = decoded
    if header.get("alg") not in ALGORITHMS:
        return malformed()
    if claims.get("iss") != client_id or claims.get("sub") != client_id or client_id != app.app_id:
        return client_id_mismatch()
    if claims.get("aud") not in token_endpoints:
        return audience_mismatch()
    cred, named = _named_certificate(app, header)
    if cred is None:
        return key_not_found(app.app_id, named)
    if cred.expired(now) or cred.start > now:
        return key_expired(app.app_id, cred)
    public_key = x509.load_der_x509_certificate(cred.der).public_key()
    try:
        jwt.decode(
            assertion,
            key=public_key,  # type: ignore[arg-type]
            algorithms=[header["alg"]],
            options={"verify_exp": False, "verify_nbf": False, "verify_iat": False, "verify_aud": False},
        )
    except jwt.InvalidSignatureError:
        return bad_signature()
    except jwt.PyJWTError:
        return malformed()
    exp, nbf = _timestamp(claims, "exp"), _timestamp(claims, "nbf")
    if exp is None:
        return malformed()
    if exp + CLOCK_SKEW <= now or (nbf is not None and nbf - CLOCK_SKEW > now):
        return outside_time_range(now, nbf, exp)
    return None
