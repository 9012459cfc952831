"""What the end-to-end login tests check after a login: the refusal a person sees, the event
Keycloak recorded, and the links a user ended up with."""

from __future__ import annotations

from pathlib import Path

from apsis_core.keycloak import KeycloakRepository
from devenv.accounts import refusals
from devenv.login_driver import LoginResult

MESSAGES = (
    Path(__file__).resolve().parent.parent
    / "keycloak-extension/src/main/resources/theme-resources/messages/messages_en.properties"
)


def message(reason: str) -> str:
    """The sentence the extension shows for a refusal reason (or any apsisSso.* key)."""
    for line in MESSAGES.read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition("=")
        if key.strip() in (f"apsisSso.{reason}", reason):
            return value.strip().replace("''", "'")
    raise KeyError(reason)


def assert_refused(result: LoginResult, api: KeycloakRepository, since: int, reason: str) -> None:
    assert not result.ok, f"login was expected to be refused ({reason}) but reached the application"
    assert message(reason) in result.text, result.text[:500]
    reasons = [e.get("details", {}).get("reason") for e in refusals(api, since)]
    assert reason in reasons, reasons


def linked_idp_user_ids(api: KeycloakRepository, user_id: str, alias: str) -> list[str]:
    return [f["userId"] for f in api.federated_identities(user_id) if f["identityProvider"] == alias]
