"""Validation of operator input, before anything touches Keycloak.

Each function returns the normalised value or raises ``InvalidInput`` with a one-line
message that names the bad value (never a secret).
"""

from __future__ import annotations

import re
import uuid
from datetime import date

from provisioning.errors import InvalidInput

ACCOUNT_ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
# RFC 1035 labels, at least one dot, a TLD of letters (or an IDN A-label).
DOMAIN = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$")
EMAIL_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}$")


def account_id(value: str) -> str:
    value = value.strip()
    if not ACCOUNT_ID.match(value):
        raise InvalidInput(
            f"invalid account id {value!r}: use 1-40 lower-case letters, digits and inner hyphens"
        )
    return value


def domain(value: str) -> str:
    normalised = value.strip().lower().rstrip(".")
    if not DOMAIN.match(normalised):
        raise InvalidInput(f"invalid domain {value!r}: expected a DNS name such as example.com")
    return normalised


def email(value: str) -> str:
    raw = value.strip()
    local, sep, host = raw.rpartition("@")
    if not sep or not EMAIL_LOCAL.match(local) or local.startswith(".") or local.endswith(".") or ".." in local:
        raise InvalidInput(f"invalid email {value!r}")
    try:
        host = domain(host)
    except InvalidInput:
        raise InvalidInput(f"invalid email {value!r}: bad domain") from None
    return f"{local.lower()}@{host}"


def tenant_id(value: str) -> str:
    """A tenant is named by its GUID or by one of its verified domains."""
    raw = value.strip()
    try:
        return str(uuid.UUID(raw)) if len(raw) == 36 else _not_guid(raw)
    except ValueError:
        pass
    try:
        return domain(raw)
    except InvalidInput:
        raise InvalidInput(
            f"invalid tenant id {value!r}: expected a GUID (Directory (tenant) ID) or a domain such as contoso.onmicrosoft.com"
        ) from None


def _not_guid(raw: str) -> str:
    raise ValueError(raw)


def client_id(value: str) -> str:
    raw = value.strip()
    try:
        return str(uuid.UUID(raw)) if len(raw) == 36 else _not_guid(raw)
    except ValueError:
        raise InvalidInput(
            f"invalid client id {value!r}: expected the Application (client) ID, a GUID"
        ) from None


def future_date(value: str, today: date | None = None) -> date:
    today = today or date.today()
    try:
        parsed = date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"invalid date {value!r}: expected YYYY-MM-DD") from None
    if parsed <= today:
        raise InvalidInput(f"date {parsed.isoformat()} is not in the future")
    return parsed


def client_secret(value: str) -> str:
    secret = value.strip()
    if not secret:
        raise InvalidInput("the client secret is empty")
    if len(secret) < 8 or any(c.isspace() for c in secret):
        raise InvalidInput("the client secret does not look like an Entra client secret value")
    try:
        uuid.UUID(secret)
    except ValueError:
        return secret
    raise InvalidInput("that is a secret ID (a GUID), not the secret value: copy the Value column in Entra")
