"""What each stage of an account means for its Entra identity provider: one pure rule.

Rendering (``provisioning.render``) overlays it on the provider from the template, so create,
the stage commands (``go-live``, ``back-to-pilot``, ``disable``), ``plan``/``apply -f`` and
drift detection all follow from it. The login page reads the same two organization
settings Keycloak defines for an identity provider linked to an organization (the
extension's ``apsis-identity-first`` step, see keycloak-extension/README.md):

==============  =========  =================================================================
stage           provider   login page
==============  =========  =================================================================
awaiting-setup  none       no SSO yet: the customer's IT has not set it up (the portal)
pilot           enabled    no redirect by domain: test users use the test-login link
live            enabled    an address in any of the account's domains goes straight to Entra
disabled        disabled   nobody reaches Entra; everyone gets the password form
==============  =========  =================================================================

An empty value is how Keycloak stores "not set" (it drops empty config values), so pilot and
disabled accounts carry no redirect setting at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apsis_core.contract import ANY_DOMAIN, ORG_DOMAIN_KEY, REDIRECT_WHEN_EMAIL_MATCHES_KEY, Stage


def identity_provider_settings(stage: Stage) -> dict[str, Any]:
    """The fields of the account's identity provider that the stage decides."""
    live = stage == "live"
    return {
        "enabled": stage in ("pilot", "live"),
        "config": {
            ORG_DOMAIN_KEY: ANY_DOMAIN if live else "",
            REDIRECT_WHEN_EMAIL_MATCHES_KEY: "true" if live else "",
        },
    }


def redirects_by_domain(identity_provider: Mapping[str, Any]) -> bool:
    """Whether Keycloak's copy of the provider sends the account's addresses to Entra."""
    config = identity_provider.get("config") or {}
    return (
        bool(identity_provider.get("enabled"))
        and config.get(REDIRECT_WHEN_EMAIL_MATCHES_KEY) == "true"
        and bool(config.get(ORG_DOMAIN_KEY))
    )


def login_page(stage: Stage, domains: tuple[str, ...]) -> str:
    """What the ordinary login page does for the account's people in this stage, in one line."""
    if stage == "live":
        return (
            f"the login page sends every address in {', '.join(domains)} straight to the account's Entra "
            "sign-in; other addresses (contractors) get the password form"
        )
    if stage == "pilot":
        return "the login page shows everyone the password form; test users sign in with the test-login link"
    if stage == "awaiting-setup":
        return (
            "no SSO yet (awaiting the customer's setup through the portal): everyone signs in with their "
            "APSIS One password"
        )
    return "SSO is off: everyone signs in with their APSIS One password"
