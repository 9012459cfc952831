"""The portal's two forms, read and checked before anything is sent to Entra or Keycloak.

Pure functions of the submitted fields (and the account they are for): every problem is
collected per field, in words for the customer's IT, so the page can show them all at
once. The secret's value is read into a ``SecretStr`` and never put back into the page.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from pydantic import SecretStr

from apsis_core import validation
from apsis_core.account import AccountRecord
from apsis_core.contract import CredentialKind
from apsis_core.errors import InvalidInput

MAX_TEST_USERS = 20
FIELD_MAX = 4000
"""No field of ours is longer; a bigger one is not a typo."""


@dataclass
class Submitted:
    """A form as read: the clean values, the problems per field, and what to show again
    (everything but the secret)."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class SetupForm:
    tenant: str
    client_id: str
    secret: SecretStr | None = field(repr=False)
    """None with a certificate."""
    expires: date | None
    """The secret's expiry; None with a certificate (its expiry is APSIS's certificate's)."""
    test_users: tuple[str, ...]
    credential: CredentialKind = "client-secret"


@dataclass(frozen=True)
class RenewForm:
    secret: SecretStr = field(repr=False)
    expires: date


def _text(fields: Mapping[str, str], name: str) -> str:
    return str(fields.get(name) or "")[:FIELD_MAX]


def _check(submitted: Submitted, name: str, check: object, value: str) -> object | None:
    try:
        return check(value)  # type: ignore[operator]
    except InvalidInput as exc:
        submitted.errors[name] = exc.format_message()
        return None


def _secret(submitted: Submitted, fields: Mapping[str, str]) -> SecretStr | None:
    raw = _text(fields, "client_secret")
    if not raw.strip():
        submitted.errors["client_secret"] = "Enter the client secret's Value."
        return None
    try:
        return SecretStr(validation.client_secret(raw))
    except InvalidInput as exc:
        submitted.errors["client_secret"] = exc.format_message()  # never names the value
        return None


def _expiry(submitted: Submitted, fields: Mapping[str, str], today: date | None) -> date | None:
    raw = _text(fields, "secret_expires").strip()
    submitted.values["secret_expires"] = raw
    if not raw:
        submitted.errors["secret_expires"] = "Enter the date the client secret expires (shown next to it in Entra)."
        return None
    return _check(submitted, "secret_expires", lambda v: validation.future_date(v, today), raw)  # type: ignore[return-value]


def parse_test_users(raw: str, account: AccountRecord) -> tuple[tuple[str, ...], str | None]:
    """Addresses separated by commas, spaces or lines: each valid and in the account's domains."""
    found: list[str] = []
    for item in (p for p in re.split(r"[\s,;]+", raw) if p):
        try:
            email = validation.email(item)
        except InvalidInput as exc:
            return (), exc.format_message()
        if not account.owns_email(email):
            return (), f"{email} is not in your account's domains ({', '.join(account.domains)})."
        if email not in found:
            found.append(email)
    if not found:
        return (), "Enter at least one test user's address."
    if len(found) > MAX_TEST_USERS:
        return (), f"Enter at most {MAX_TEST_USERS} test users; the others follow when SSO is on for everyone."
    return tuple(found), None


def read_setup(
    fields: Mapping[str, str], account: AccountRecord, today: date | None = None
) -> tuple[Submitted, SetupForm | None]:
    submitted = Submitted()
    tenant = _text(fields, "tenant").strip()
    client_id = _text(fields, "client_id").strip()
    users_raw = _text(fields, "test_users")
    submitted.values.update(tenant=tenant, client_id=client_id, test_users=users_raw)
    clean_tenant = _check(submitted, "tenant", validation.tenant_id, tenant) if tenant else None
    if not tenant:
        submitted.errors["tenant"] = "Enter the Directory (tenant) ID, or a verified domain of your tenant."
    clean_client = _check(submitted, "client_id", validation.client_id, client_id) if client_id else None
    if not client_id:
        submitted.errors["client_id"] = "Enter the Application (client) ID."
    credential = credential_choice(fields)
    submitted.values["credential"] = credential
    secret = expires = None
    if credential == "client-secret":
        secret = _secret(submitted, fields)
        expires = _expiry(submitted, fields, today)
    users, problem = parse_test_users(users_raw, account)
    if problem:
        submitted.errors["test_users"] = problem
    if not submitted.ok:
        return submitted, None
    assert clean_tenant and clean_client
    assert credential == "certificate" or (secret and expires)
    return submitted, SetupForm(str(clean_tenant), str(clean_client), secret, expires, users, credential)


def credential_choice(fields: Mapping[str, str]) -> CredentialKind:
    """The radio button: ``certificate`` (checked by default when APSIS publishes one) or
    ``client-secret`` (also when the field is missing: a form without the choice sends a secret)."""
    return "certificate" if _text(fields, "credential").strip() == "certificate" else "client-secret"


def read_renew(fields: Mapping[str, str], today: date | None = None) -> tuple[Submitted, RenewForm | None]:
    submitted = Submitted()
    secret = _secret(submitted, fields)
    expires = _expiry(submitted, fields, today)
    if not submitted.ok:
        return submitted, None
    assert secret and expires
    return submitted, RenewForm(secret, expires)
