"""The key pairs with which ``apsis-sync`` authenticates to Okta's APIs (``private_key_jwt``).

One key pair per account, kept next to the account's secret file in the daemon's secrets
directory (``<directory>/<account id>.okta-key.pem``, owner-only, written atomically). Why per
account rather than one for the installation: the public key is registered in each customer's
API service app, so a key per account means a leaked or revoked key concerns one customer's
org, and a customer who removes APSIS's app revokes only its own; the cost is one key to
generate per account (at create, by the CLI) instead of one to publish once. Nothing secret
travels: the customer registers the public JWK (``public_jwk``), shown by the CLI and portal.

RSA 2048 and RS256, which every Okta org accepts for service apps; the JWK's ``kid`` is its
RFC 7638 thumbprint, so it names the key and nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from apsis_core import validation
from apsis_core.errors import InvalidInput

SUFFIX = ".okta-key.pem"


def path_for(directory: Path, account_id: str) -> Path:
    return directory / f"{validation.account_id(account_id)}{SUFFIX}"


def ensure(directory: Path, account_id: str) -> dict[str, str]:
    """The account's public JWK, generating (and storing) its key pair the first time."""
    path = path_for(directory, account_id)
    if not path.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{account_id}.")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(pem)
            os.chmod(tmp, 0o600)
            os.link(tmp, path)  # never replaces a key another process stored first
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    return public_jwk(load(directory, account_id))


def load(directory: Path, account_id: str) -> rsa.RSAPrivateKey:
    path = path_for(directory, account_id)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise InvalidInput(
            f"no Okta API key for account {account_id} in {directory} (create it with `apsis-sso account okta-key {account_id}`)"
        ) from None
    except ValueError:
        raise InvalidInput(f"{path} does not hold a PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise InvalidInput(f"{path} does not hold an RSA private key")
    return key


def public_jwk(key: rsa.RSAPrivateKey) -> dict[str, str]:
    numbers = key.public_key().public_numbers()
    jwk = {"e": _b64(numbers.e), "kty": "RSA", "n": _b64(numbers.n)}
    thumbprint = hashlib.sha256(json.dumps(jwk, separators=(",", ":"), sort_keys=True).encode()).digest()
    return {**jwk, "kid": base64.urlsafe_b64encode(thumbprint).rstrip(b"=").decode(), "alg": "RS256", "use": "sig"}


def _b64(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def jwks_text(jwk: dict[str, Any]) -> str:
    """What the customer pastes into the service app's public keys (Okta takes a JWK Set)."""
    return json.dumps({"keys": [jwk]}, indent=2)
