"""The declarative file: desired accounts in YAML, secrets by reference.

::

    version: 1
    accounts:
      - id: acme
        name: Acme AB
        tenant_id: 2f4a...-...            # or a verified domain, resolved to the GUID
        client_id: 6a8b...-...
        client_secret: {env: ACME_ENTRA_SECRET}   # or {file: secrets/acme}; omit to keep the current one
        secret_expires: 2027-03-31
        domains: [acme.com, acme.se]
        it_contact: {name: Ivy Admin, email: ivy@acme.com}
        stage: pilot                      # awaiting-setup | pilot | live | disabled
        pilot: [ann@acme.com]
      - id: gamma                         # an Okta account (docs/providers.md)
        name: Gamma Inc
        provider: okta
        okta_org: https://gamma.okta.com  # the issuer, compared exactly at every sign-in
        client_id: 0oa1...
        okta_api_client_id: 0oa2...       # the API service app apsis-sync reads the org with
        client_secret: {env: GAMMA_OKTA_SECRET}
        secret_expires: 2027-03-31
        domains: [gamma.example]
        it_contact: {name: Gil IT, email: gil@gamma.example}
      - id: beta                          # awaiting setup by its IT (the portal): no Entra details
        name: Beta Ltd
        domains: [beta.example]
        it_contact: {name: Bo IT, email: bo@beta.example}

The file holds no secret values: a reference names an environment variable or a file
(relative to the YAML file), read when the plan is made. Everything is validated, and
every referenced secret read, before Keycloak is asked anything, so a bad file changes
nothing. Members are not part of the file (they come from APSIS One; see
`account members`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError, field_validator, model_validator

from apsis_core import entra, redaction
from apsis_core.account import Account, AccountRecord, Stage
from apsis_core.contract import CredentialKind
from apsis_core.entra import EntraEndpoints
from apsis_core.errors import InvalidInput
from apsis_core.keycloak import KeycloakPort
from apsis_core.settings import Settings
from provisioning import assertion_keys, okta_onboarding, ownership, parallel, proofs, yaml_load
from provisioning.accounts import check_accounts, plan_accounts, warn_unsent_secrets, writes_credential
from provisioning.plan import Plan
from provisioning.progress import SILENT, Progress, phase
from provisioning.snapshot import Snapshot


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class SecretRef(_Strict):
    env: str | None = None
    file: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of env: NAME or file: PATH")
        return self


class ItContactEntry(_Strict):
    name: str
    email: str


class AccountEntry(_Strict):
    id: str
    name: str
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: SecretRef | None = None
    secret_expires: date | str | None = None
    domains: list[str]
    it_contact: ItContactEntry
    stage: Stage | None = None
    pilot: list[str] = []
    credential: CredentialKind | None = None
    """``certificate``: no client_secret; secret_expires is the certificate's expiry."""
    provider: Literal["entra", "okta"] = "entra"
    okta_org: str | None = None
    okta_api_client_id: str | None = None

    @field_validator("client_secret", mode="before")
    @classmethod
    def _reference_only(cls, value: Any) -> Any:
        if isinstance(value, (str, int, float)):
            raise ValueError("must be a reference, {env: NAME} or {file: PATH}, never the secret itself")
        return value


class AccountsFile(_Strict):
    version: Literal[1] = 1
    accounts: list[AccountEntry]


@dataclass
class Desired:
    """A loaded file: the accounts, and where each came from (for error messages)."""

    path: Path
    accounts: list[Account]
    warnings: list[str] = field(default_factory=list)


def load(path: Path) -> Desired:
    """Parse, validate and resolve secret references; raises ``InvalidInput`` naming the
    file and the entry, never a secret value."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        line = exc.object.count(b"\n", 0, exc.start) + 1
        column = exc.start - (exc.object.rfind(b"\n", 0, exc.start) + 1) + 1
        raise InvalidInput(
            f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at line {line}, column "
            f"{column}); save the file as UTF-8"
        ) from None
    # libyaml's loader when PyYAML was built with it, and a walk of its nodes instead of
    # PyYAML's constructor: the same objects, faster (bench/README.md, "Figures behind the code").
    try:
        raw = yaml_load.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise InvalidInput(f"{path}: not valid YAML{where}: {problem}") from None
    if not isinstance(raw, dict):
        raise InvalidInput(f"{path}: expected a mapping with an `accounts:` list")
    try:
        model = AccountsFile.model_validate(raw)
    except ValidationError as exc:
        raise InvalidInput(f"{path}: {_first_error(exc, raw)}") from None
    accounts: list[Account] = []
    for index, entry in enumerate(model.accounts):
        where = f"{path}: accounts[{index}] ({entry.id})"
        try:
            secret = _resolve_secret(entry.client_secret, path.parent) if entry.client_secret else None
            _okta_entry(entry)
            accounts.append(
                Account.build(
                    id=entry.id,
                    name=entry.name,
                    tenant_id=entry.tenant_id,
                    client_id=entry.client_id,
                    domains=entry.domains,
                    secret_expires=entry.secret_expires,
                    it_contact_name=entry.it_contact.name,
                    it_contact_email=entry.it_contact.email,
                    stage=entry.stage,
                    pilot=entry.pilot,
                    client_secret=secret,
                    allow_past_expiry=True,
                    credential=entry.credential,
                    provider=entry.provider,
                    okta_api_client_id=entry.okta_api_client_id,
                )
            )
        except InvalidInput as exc:
            raise InvalidInput(f"{where}: {exc}") from None
    return Desired(path=path, accounts=accounts)


def _okta_entry(entry: AccountEntry) -> None:
    """An Okta entry names its issuer as ``okta_org``; ``tenant_id`` is Entra's."""
    if entry.provider == "okta":
        if entry.tenant_id is not None:
            raise InvalidInput("provider okta takes okta_org, not tenant_id")
        entry.tenant_id = entry.okta_org
    elif entry.okta_org is not None or entry.okta_api_client_id is not None:
        raise InvalidInput("okta_org and okta_api_client_id need provider: okta")


def _first_error(exc: ValidationError, raw: dict[str, Any]) -> str:
    """One line from pydantic's errors, without the offending input (it may be a secret)."""
    error = exc.errors()[0]
    loc = list(error.get("loc", ()))
    parts: list[str] = []
    for i, item in enumerate(loc):
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1]}[{item}]" if parts else f"[{item}]"]
            if i == 1 and loc[0] == "accounts":
                entry = (raw.get("accounts") or [None] * (item + 1))[item]
                if isinstance(entry, dict) and entry.get("id"):
                    parts[-1] += f" ({entry['id']})"
        else:
            parts.append(str(item))
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    if error.get("type") == "extra_forbidden":
        message = "unknown key"
    return f"{'.'.join(parts) or 'file'}: {message}"


def _resolve_secret(ref: SecretRef, base: Path) -> SecretStr:
    if ref.env is not None:
        if ref.env not in os.environ:
            raise InvalidInput(f"client_secret: environment variable {ref.env} is not set")
        value = os.environ[ref.env]
    else:
        assert ref.file is not None
        file = Path(ref.file).expanduser()
        file = file if file.is_absolute() else base / file
        try:
            value = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"client_secret: cannot read {file}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise InvalidInput(f"client_secret: {file} is not UTF-8 text") from None
    redaction.remember(value.strip())
    return SecretStr(value.strip())


def plan(
    api: KeycloakPort,
    settings: Settings,
    desired: Desired,
    *,
    prune: bool = False,
    today: date | None = None,
    progress: Progress = SILENT,
    allow_unproven: str | None = None,
    check_domains: ownership.Check | None = None,
) -> Plan:
    """The changes that make Keycloak hold exactly the file's accounts (and, with
    ``prune``, no other managed ones). Reads Keycloak in bulk: a few paged listings and
    the desired accounts' IdP mappers (``Snapshot.read_mappers``: one listing of the realm's
    mappers, or a request per provider for a few accounts).

    Tenants given as domains are resolved to their GUIDs (one Entra discovery request
    each; files of many accounts should name GUIDs) and written back into ``desired``, so
    the secrets proved before apply are proved against the tenant Keycloak will pin.

    Every account with (or getting) an identity provider must have each domain proven for
    its tenant (``provisioning.ownership``): domains without a proof are asked of Entra and
    the proofs become part of the plan; one verified in another tenant or in none is refused
    for the whole file, unless ``allow_unproven`` (the operator's reason) is recorded for it.
    ``check_domains`` stands in for Entra (benchmarks with made-up tenants).
    Reading, resolving, proving and comparing are phases of ``progress``."""
    today = today or date.today()
    snapshot = Snapshot.load(api, mappers_for=[a.id for a in desired.accounts], progress=progress)
    warnings: list[str] = []
    for account in desired.accounts:
        if account.awaiting_setup:
            continue
        assert account.secret_expires is not None
        if account.secret_expires <= today:
            # A past date already in Keycloak is a fact to flag; a new one is a mistake.
            current = snapshot.orgs.get(account.id)
            recorded = AccountRecord.parse(current).secret_expires if current else None
            if recorded != account.secret_expires:
                raise InvalidInput(
                    f"{desired.path}: account {account.id}: secret_expires {account.secret_expires.isoformat()} is not in the future"
                )
            warnings.append(f"account {account.id}: the client secret expired on {account.secret_expires.isoformat()}")
    endpoints = EntraEndpoints.from_settings(settings)
    tenants = _resolve_tenants(endpoints, desired.accounts, progress)
    accounts = [a.with_changes(tenant_id=tenants[a.id]) if a.id in tenants else a for a in desired.accounts]
    listed = {a.id for a in accounts}
    pruned = [alias for alias in snapshot.managed() if alias not in listed] if prune else []
    check_accounts(accounts, snapshot, prune=prune)  # what the file and Keycloak refuse, before Entra is asked
    held = {a.id: snapshot.orgs[a.id].get("attributes") or {} for a in accounts if a.id in snapshot.orgs}
    entra_accounts = [a for a in accounts if a.provider == "entra"]  # an Okta account's binding is its issuer
    established = ownership.establish_all(
        endpoints, entra_accounts, held, override=allow_unproven, progress=progress, check=check_domains
    )
    proven = {e.account.id: e.account for e in established}
    accounts = [proven.get(a.id, a) for a in accounts]
    warnings.extend(w for e in established for w in e.warnings())
    snapshot.read_daemon_files(settings.sync_secrets_dir, [a.id for a in accounts if a.client_secret] + pruned)
    result = plan_accounts(settings, accounts, snapshot, prune=prune, progress=progress)
    result.warnings.extend(warnings)
    warn_unsent_secrets(settings, result)
    desired.accounts = accounts
    return result


def _resolve_tenants(endpoints: EntraEndpoints, accounts: list[Account], progress: Progress) -> dict[str, str]:
    """The GUID of each account's tenant given as a domain (by account id): an Entra
    discovery request each, one after another, so a phase of its own."""
    by_domain = [
        a
        for a in accounts
        if a.provider == "entra" and not a.awaiting_setup and a.tenant_id and not entra.is_tenant_guid(a.tenant_id)
    ]
    resolved: dict[str, str] = {}
    if not by_domain:
        return resolved
    with phase(progress, "resolving tenant domains with Entra", len(by_domain), "tenants"):
        for account in by_domain:
            assert account.tenant_id is not None
            resolved[account.id] = entra.resolve_tenant(endpoints, account.tenant_id)
            progress.advance(f"{account.id}: tenant {account.tenant_id} is {resolved[account.id]}")
    return resolved


def secrets_to_prove(plan: Plan, desired: Desired) -> list[Account]:
    """Accounts whose credential the plan writes into Keycloak (new IdP, a changed secret, a
    switch to the certificate): apply proves each with Entra before the first change."""
    ids = writes_credential(plan)
    return [
        a for a in desired.accounts if a.id in ids and (a.client_secret is not None or a.credential == "certificate")
    ]


def apply(
    api: KeycloakPort,
    settings: Settings,
    desired: Desired,
    plan: Plan,
    *,
    confirm: Callable[[Plan], None] | None = None,
    workers: int = parallel.DEFAULT_WORKERS,
    progress: Progress = SILENT,
) -> bool:
    """Apply ``plan`` (from ``plan``): every new or changed secret is proved with Entra
    first (concurrently, ``provisioning.proofs``), then ``confirm`` sees the plan (and raises
    to stop it), then the changes run, ``workers`` accounts at a time
    (``provisioning.parallel``). Returns whether anything was applied (an empty plan
    applies nothing)."""
    if plan.empty:
        return False
    to_prove = secrets_to_prove(plan, desired)
    on_entra = [a for a in to_prove if a.provider == "entra"]
    key = assertion_keys.current_pair(settings) if any(a.credential == "certificate" for a in on_entra) else None
    proofs.prove_all(EntraEndpoints.from_settings(settings), on_entra, key=key, progress=progress)
    okta_onboarding.prove_all(settings, [a for a in to_prove if a.provider == "okta"])
    if confirm is not None:
        confirm(plan)
    parallel.apply_plan(plan, api, workers=workers, progress=progress)
    return True


def export(api: KeycloakPort) -> dict[str, Any]:
    """The managed accounts as a file document (no secret references: applying it keeps
    every current secret). A starting point for adopting the declarative mode."""
    snapshot = Snapshot.load(api)
    entries: list[dict[str, Any]] = []
    for _alias, org in sorted(snapshot.managed().items()):
        a = AccountRecord.parse(org).settings()
        entra: dict[str, Any] = (
            {}
            if a.awaiting_setup or a.secret_expires is None
            else {"tenant_id": a.tenant_id, "client_id": a.client_id, "secret_expires": a.secret_expires.isoformat()}
        )
        if entra and a.credential == "certificate":
            entra["credential"] = a.credential
        if a.provider == "okta" and entra:  # the issuer is okta_org; absent provider means entra
            entra = {"provider": "okta", "okta_org": entra.pop("tenant_id"), **entra}
            entra |= {"okta_api_client_id": a.okta_api_client_id} if a.okta_api_client_id else {}
        entries.append(
            {
                "id": a.id,
                "name": a.name,
                **entra,
                "domains": list(a.domains),
                "it_contact": {"name": a.it_contact.name, "email": a.it_contact.email},
                "stage": a.stage,
                "pilot": list(a.pilot),
            }
        )
    return {"version": 1, "accounts": entries}
