"""What an Okta account's setup proves with Okta before anything is created.

* The issuer: the authorization server's discovery document names exactly the issuer the
  account will be bound to (a typo, a trailing slash or the org URL given for a custom server
  is caught here, not at the first sign-in).
* The login app's client secret: a token request authenticated with it. A web app integration
  is not allowed the client-credentials grant, and Okta authenticates the client before it looks
  at the grant: a wrong secret is ``401 invalid_client``, a right one ``400 unauthorized_client``.
  Nothing is issued, nothing is changed in the org.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx

from apsis_core.errors import InvalidInput, TemporaryFailure
from apsis_core.providers import okta

TIMEOUT = 30.0


def verify(ca_bundle: Path | None) -> ssl.SSLContext | bool:
    return ssl.create_default_context(cafile=str(ca_bundle)) if ca_bundle else True


def prove_issuer(issuer: str, ca_bundle: Path | None = None) -> None:
    """Raise unless the issuer's discovery document names exactly this issuer."""
    url = f"{issuer}/.well-known/openid-configuration"
    try:
        response = httpx.get(url, verify=verify(ca_bundle), timeout=TIMEOUT)
    except httpx.HTTPError as exc:
        raise TemporaryFailure(f"Okta did not answer at {url}: {type(exc).__name__}") from None
    if response.status_code == 404:
        raise InvalidInput(f"no Okta authorization server at {issuer} (its discovery document answered 404)")
    if response.status_code >= 500 or response.status_code == 429:
        raise TemporaryFailure(f"Okta answered HTTP {response.status_code} at {url}")
    try:
        named = response.json().get("issuer")
    except (ValueError, AttributeError):
        named = None
    if response.status_code != 200 or not isinstance(named, str):
        raise InvalidInput(f"{url} is not an OpenID Connect discovery document (HTTP {response.status_code})")
    if named != issuer:
        raise InvalidInput(f"the authorization server at {issuer} names its issuer {named!r}: give exactly that")


def prove_client_secret(issuer: str, client_id: str, secret: str, ca_bundle: Path | None = None) -> None:
    """Raise unless Okta accepts the login app's client id and secret (``client_secret_basic``)."""
    url = okta.endpoint(issuer, "token")
    try:
        response = httpx.post(
            url,
            data={"grant_type": "client_credentials", "scope": "okta.users.read"},
            auth=(client_id, secret),
            verify=verify(ca_bundle),
            timeout=TIMEOUT,
        )
    except httpx.HTTPError as exc:
        raise TemporaryFailure(f"Okta did not answer at {url}: {type(exc).__name__}") from None
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    if response.status_code == 401 or error == "invalid_client":
        raise OktaRefused(
            f"Okta refused client id {client_id} with the given secret at {issuer} (invalid_client): "
            "check the app integration's Client ID and secret"
        )
    if response.status_code >= 500 or response.status_code == 429:
        raise TemporaryFailure(f"Okta answered HTTP {response.status_code} at {url}")
    if error in ("unauthorized_client", "invalid_scope", "invalid_grant") or response.status_code == 200:
        return
    raise InvalidInput(
        f"Okta answered the client check at {url} with HTTP {response.status_code} ({error or 'no error'})"
    )


class OktaRefused(InvalidInput):
    """Okta refused the credentials a person typed (exit code 2, like a refused Entra secret)."""
