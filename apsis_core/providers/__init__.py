"""Identity provider kinds behind one interface (``base.Provider``): Entra and Okta."""

from __future__ import annotations

from apsis_core.contract import DEFAULT_PROVIDER, PROVIDER_KINDS, ProviderKind
from apsis_core.errors import InvalidInput
from apsis_core.providers.base import Provider, SetupStep
from apsis_core.providers.entra import EntraProvider
from apsis_core.providers.okta import OktaProvider
from apsis_core.validation import shown

__all__ = ["Provider", "SetupStep", "kind_of", "provider_for"]


def kind_of(value: str | None) -> ProviderKind:
    """A provider kind as given (CLI, file) or stored (``apsis.provider``); absent is Entra."""
    word = (value or "").strip().lower() or DEFAULT_PROVIDER
    for kind in PROVIDER_KINDS:
        if word == kind:
            return kind
    raise InvalidInput(f"invalid provider {shown(value or '')}: expected one of {', '.join(PROVIDER_KINDS)}")


def provider_for(kind: str | None, entra_authority: str = "") -> Provider:
    """The account's provider. Entra's endpoints depend on the installation's authority setting."""
    if kind_of(kind) == "okta":
        return OktaProvider()
    return EntraProvider(entra_authority)
