"""The client-assertion key of certificate accounts, in Keycloak and on disk.

One key pair signs the client assertions of every certificate account (docs/credentials.md says
why one and not one per account): Keycloak's OIDC broker picks the realm's active key of the
IdP's ``clientAssertionSigningAlg`` (``contract.ASSERTION_ALGORITHM``, PS256: the realm's own
tokens stay on their RS256 key), the sync daemon and the proofs read the same pair from
``APSIS_SSO_ASSERTION_KEY_FILE``. Each certificate is one ``rsa`` key provider named after its
thumbprint: the current one active, the next one installed *passive* (published, never used to
sign) until ``switch`` makes it the active one and the old one passive.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from apsis_core import certificates, entra
from apsis_core.account import AccountRecord
from apsis_core.certificates import KeyPair, PublicCertificate
from apsis_core.contract import ASSERTION_ALGORITHM, ASSERTION_KEY_PROVIDER, CREDENTIAL_KEY
from apsis_core.entra import EntraEndpoints
from apsis_core.errors import ApsisError, Conflict, InvalidInput
from apsis_core.keycloak import KeycloakPort, KeycloakRepository
from apsis_core.settings import Settings

KEY_PROVIDER_TYPE = "org.keycloak.keys.KeyProvider"


def current_pair(settings: Settings) -> KeyPair:
    """The current assertion key pair (``APSIS_SSO_ASSERTION_KEY_FILE``)."""
    if settings.assertion_key_file is None:
        raise InvalidInput(
            "certificate credentials need APSIS_SSO_ASSERTION_KEY_FILE (the assertion key's PEM; "
            "`apsis-sso assertion-key generate FILE` makes one)"
        )
    return certificates.load_key_pair(settings.assertion_key_file)


def next_pair(settings: Settings) -> KeyPair | None:
    """The next assertion key pair, when one is published (``APSIS_SSO_ASSERTION_NEXT_KEY_FILE``)."""
    if settings.assertion_next_key_file is None:
        return None
    return certificates.load_key_pair(settings.assertion_next_key_file)


def certificate(settings: Settings, *, upcoming: bool = False) -> PublicCertificate:
    """The public certificate customers upload: the current one, or with ``upcoming`` the next."""
    if not upcoming:
        return current_pair(settings).certificate
    pair = next_pair(settings)
    if pair is None:
        raise InvalidInput("no next certificate is published yet (APSIS_SSO_ASSERTION_NEXT_KEY_FILE is not set)")
    return pair.certificate


def provider_name(cert: PublicCertificate) -> str:
    return f"{ASSERTION_KEY_PROVIDER}-{cert.sha1_thumbprint}"


@dataclass(frozen=True)
class InstalledKey:
    name: str
    component_id: str
    active: bool


def installed(api: KeycloakRepository) -> list[InstalledKey]:
    """The assertion key providers the realm holds."""
    return [
        InstalledKey(str(c["name"]), str(c["id"]), _flag(c, "active"))
        for c in api.key_providers()
        if str(c.get("name", "")).startswith(ASSERTION_KEY_PROVIDER + "-")
    ]


def _flag(component: Mapping[str, Any], key: str) -> bool:
    return ((component.get("config") or {}).get(key) or ["true"])[0] == "true"


def priority(cert: PublicCertificate) -> int:
    """A later-expiring certificate gets a higher priority: of two active keys of the algorithm
    Keycloak signs with the higher, so during a switch the new key wins from its activation on."""
    return int(cert.not_after.timestamp() // 86400)


def _representation(realm_id: str, pair: KeyPair, active: bool) -> dict[str, Any]:
    return {
        "name": provider_name(pair.certificate),
        "providerId": "rsa",
        "providerType": KEY_PROVIDER_TYPE,
        "parentId": realm_id,
        "config": {
            "priority": [str(priority(pair.certificate))],
            "enabled": ["true"],
            "active": ["true" if active else "false"],
            "algorithm": [ASSERTION_ALGORITHM],
            "keyUse": ["sig"],
            "privateKey": [pair.private_key_pem],
            "certificate": [pair.certificate.pem],
        },
    }


def install(api: KeycloakRepository, pair: KeyPair, *, active: bool) -> str:
    """Put the key pair in the realm as its own key provider (idempotent): ``active`` for the
    current key, passive for the next one. Returns what was done (``created``/``updated``/``unchanged``)."""
    realm = api.get_realm()
    if realm is None:
        raise InvalidInput(f"realm {api.realm} does not exist: run `apsis-sso realm apply` first")
    rep = _representation(str(realm["id"]), pair, active)
    held = {k.name: k for k in installed(api)}.get(rep["name"])
    if held is None:
        api.create_component(rep)
        return "created"
    if held.active == active:
        return "unchanged"
    api.update_component(held.component_id, {**rep, "id": held.component_id})
    return "updated"


def switch(api: KeycloakRepository, current: KeyPair, upcoming: KeyPair) -> None:
    """Make ``upcoming`` the signing key and ``current`` passive. Keycloak signs with the
    highest-priority *active* key of the algorithm; the new one is activated first (both active
    for a moment, the new one at the higher ``priority``), then the old one is made passive."""
    if priority(upcoming.certificate) <= priority(current.certificate):
        raise InvalidInput("the next certificate must expire after the current one")
    keys = {k.name: k for k in installed(api)}
    if provider_name(upcoming.certificate) not in keys:
        raise Conflict("the next key is not installed in Keycloak: `apsis-sso assertion-key install --next` first")
    install(api, upcoming, active=True)
    if provider_name(current.certificate) in keys:
        install(api, current, active=False)


def certificate_accounts(api: KeycloakPort) -> list[AccountRecord]:
    """Every set-up account that authenticates with the certificate."""
    records = (AccountRecord.parse(org) for org in api.organizations(query=f"{CREDENTIAL_KEY}:certificate"))
    return [r for r in records if r.managed and r.credential == "certificate" and r.tenant_id and r.client_id]


def accounts_without(settings: Settings, accounts: list[AccountRecord], upcoming: KeyPair) -> list[str]:
    """The accounts whose app registration does not (yet) accept assertions signed with
    ``upcoming``: Entra answers AADSTS700027 until its certificate is uploaded. Any other
    refusal or an unreachable Entra counts as "not known to hold it" too: a switch must not
    guess."""
    endpoints = EntraEndpoints.from_settings(settings)

    async def check(record: AccountRecord) -> str | None:
        try:
            await entra.prove_secret_async(endpoints, record.tenant_id, record.client_id, upcoming)
        except ApsisError:
            return record.id
        return None

    async def check_all() -> list[str | None]:
        return list(await asyncio.gather(*(check(r) for r in accounts)))

    return sorted(a for a in asyncio.run(check_all()) if a is not None)


def signing_key_thumbprint(api: KeycloakRepository) -> str | None:
    """The SHA-1 thumbprint of the certificate Keycloak signs assertions with now (None: no key)."""
    keys = api.realm_keys()
    kid = (keys.get("active") or {}).get(ASSERTION_ALGORITHM)
    for key in keys.get("keys") or []:
        if key.get("kid") == kid and key.get("certificate"):
            return certificates.parse_public(_pem(str(key["certificate"]))).sha1_thumbprint
    return None


def _pem(b64: str) -> str:
    body = "\n".join(b64[i : i + 64] for i in range(0, len(b64), 64))
    return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"
