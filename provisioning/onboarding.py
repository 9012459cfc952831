"""The account lifecycle as library functions: create, pilot, stage, rotation, disable,
delete. The CLI is a thin shell over these; tests call them directly too (members:
``provisioning.members``; warnings: ``provisioning.checks``).

Each mutating function builds a plan first and applies it only when ``dry_run`` is false,
so ``--dry-run`` shows exactly what would happen.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from apsis_core import domain_ownership, entra, validation
from apsis_core.account import Account, AccountRecord, Stage, idp_alias, secret_fingerprint
from apsis_core.certificates import KeyPair
from apsis_core.contract import SECRET_FINGERPRINT_KEY, SETUP_CLAIM_KEY, SSO_STAGES, CredentialKind
from apsis_core.domain_ownership import Recorded, Verdict
from apsis_core.entra import EntraEndpoints
from apsis_core.errors import Conflict, InvalidInput, NotFound
from apsis_core.keycloak import KeycloakPort
from apsis_core.settings import Settings
from apsis_core.timestamps import from_text
from apsis_core.timestamps import to_text as iso
from provisioning import assertion_keys, checks, link_check, links, okta_onboarding, ownership
from provisioning.accounts import check_account, plan_account, plan_delete, warn_unsent_secrets, written_daemon_file
from provisioning.plan import Change, Plan
from provisioning.snapshot import Snapshot
from provisioning.steps import SetupInProgress

SETUP_CLAIM_STALE = timedelta(minutes=10)
"""A setup's claim on its identity provider (``apsis.setupClaim``) older than this belongs to a
run that stopped midway: another run may take it over and complete the setup. A setup takes
seconds; any run that still holds it after ten minutes is not coming back."""


@dataclass
class Result:
    """What an operation did (or would do), and what the operator should know next."""

    account: Account
    plan: Plan
    applied: bool
    links: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    secret_file: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.account.id,
            "account": self.account.id,  # the same id, kept for scripts written before "id"
            "applied": self.applied,
            "plan": self.plan.to_dict(),
            "links": self.links,
            "warnings": self.warnings + self.plan.warnings,
            "secret_file": str(self.secret_file) if self.secret_file else None,
        }


def load(api: KeycloakPort, account_id: str) -> AccountRecord:
    """The account as Keycloak holds it; ``NotFound`` if there is none."""
    account_id = validation.account_id(account_id)
    org = api.organization_by_alias(account_id)
    if org is None:
        raise NotFound(f"no account {account_id!r}")
    record = AccountRecord.parse(org, api.identity_provider(idp_alias(account_id)))
    if not record.managed:
        raise Conflict(f"organization {account_id!r} is not managed by apsis-sso; leaving it alone")
    return record


def require_setup_done(record: AccountRecord) -> None:
    """Stage and secret commands need the account's identity provider: an account awaiting
    setup has none yet."""
    if record.awaiting_setup:
        raise InvalidInput(
            f"account {record.id} awaits setup: it has no Entra connection yet; its IT sets it up "
            f"through the portal (`apsis-sso account invite {record.id}`), or run `apsis-sso account "
            f"create {record.id}` with the Entra details"
        )


def create(
    api: KeycloakPort,
    settings: Settings,
    account: Account,
    *,
    dry_run: bool = False,
    check_secret: bool = True,
    require_graph_access: bool = False,
    today: date | None = None,
    allow_unproven: str | None = None,
    now: datetime | None = None,
) -> Result:
    """Onboard an account in pilot stage, or (without Entra details) create it awaiting
    setup; for an account awaiting setup, this is the setup. Running it twice changes nothing
    the second time: a rerun after an interrupted create completes it; a rerun for a complete
    account that asks for what the account already has is a no-op (it only repairs what the
    templates own and the daemon's copy of the secret); one that asks for something else is
    refused with what differs and the command that changes it. Setting up an account that
    awaits setup takes its name, domains and IT contact as they are (others are refused) and
    adds the Entra details and the test users.

    Order matters: everything that can refuse (tenant lookup, ownership and domain checks,
    template rendering, Entra's verdict on the secret) runs before the first write.
    ``check_secret=False`` skips only the token request (bulk loads, air-gapped tests); a
    tenant given as a domain is always resolved to its GUID, which is what Keycloak pins.
    ``require_graph_access`` also proves, with the app's own token, that Graph lets it read
    users (admin consent for User.Read.All), as the portal's setup does.

    The tenant must own every domain of the account (``provisioning.ownership``: Entra's
    discovery, before the first write); ``allow_unproven`` (the operator's reason) links the
    ones it does not own anyway and records that. Two setups of one account at once: the
    first write of a setup creates its identity provider carrying a claim, and Keycloak
    refuses a second provider of the alias, so the later one is refused (``SetupInProgress``)
    before it changed anything.
    """
    if account.awaiting_setup:
        return _create_awaiting_setup(api, settings, account, dry_run=dry_run, today=today)
    if account.provider == "okta":  # Okta's proofs (provisioning.okta_onboarding)
        done, plan, made, warnings, daemon_file = okta_onboarding.create(
            api,
            settings,
            account,
            dry_run=dry_run,
            check_secret=check_secret,
            today=today,
            create_differences=create_differences,
        )
        return Result(done, plan, not dry_run, made, warnings, daemon_file)
    secret = account.client_secret
    proof: str | KeyPair
    if account.credential == "certificate":
        proof = assertion_keys.current_pair(settings)
    elif secret is None:
        raise InvalidInput("a client secret is required to create an account")
    else:
        proof = secret.get_secret_value()
    endpoints = EntraEndpoints.from_settings(settings)
    tenant = entra.resolve_tenant(endpoints, account.tenant_id)
    account = account.with_changes(tenant_id=tenant)
    snapshot = Snapshot.for_account(
        api, account.id, account.domains, account.name, secrets_dir=settings.sync_secrets_dir
    )
    org, idp = snapshot.orgs.get(account.id), snapshot.idps.get(account.idp_alias)
    record = AccountRecord.parse(org, idp) if org is not None else None
    exists = record is not None and record.managed and record.complete and not record.awaiting_setup
    if record is not None and record.managed and (exists or record.awaiting_setup):
        differences = create_differences(record.settings(), account, idp)
        if differences:
            held = "awaits setup" if record.awaiting_setup else "already exists"
            raise Conflict(
                f"account {account.id!r} {held} with other settings: {'; '.join(differences)}; nothing was changed"
            )
    if exists:
        assert record is not None
        account = account.with_changes(stage=record.stage)  # create does not choose the stage of an account
    claim = setup_claim(record, idp, now)
    check_account(account, snapshot)  # another account's domain or name: refused before Entra is asked
    # The links it prints must work: a test-login link Keycloak refuses stops it here.
    link_check.check_test_login(settings, links.test_login_url(settings, account.id))
    if check_secret and not exists:
        prove = entra.prove_graph_access if require_graph_access else entra.prove_secret
        prove(endpoints, tenant, account.client_id, proof)
    # The tenant is real and the app is its (a typo is explained first); does it own the domains?
    established = ownership.establish(
        endpoints, account, org.get("attributes") if org else None, override=allow_unproven, now=now
    )
    account = established.account
    plan = plan_account(settings, account, snapshot, claim=claim)
    warn_unsent_secrets(settings, plan)
    if not dry_run:
        plan.apply(api)
    return Result(
        account=account,
        plan=plan,
        applied=not dry_run,
        links=customer_links(settings, account),
        warnings=established.warnings() + checks.account_warnings(api, account, today=today),
        secret_file=written_daemon_file(settings, plan) if not dry_run else None,
    )


def setup_claim(record: AccountRecord | None, idp: Mapping[str, Any] | None, now: datetime | None = None) -> str | None:
    """The claim this run puts on the account's identity provider, when it sets one up.

    A setup (an account awaiting setup, no provider yet) claims it by creating it: of two at
    once, Keycloak lets one create the alias. The provider of an unfinished setup carries the
    claim of the run making it: younger than ``SETUP_CLAIM_STALE`` it is refused here
    (``SetupInProgress``), older it is taken over (that run stopped midway). An unfinished
    create of the CLI (no claim) is completed as before."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    fresh = f"{iso(moment)} {secrets.token_hex(8)}"
    held = str(((idp or {}).get("config") or {}).get(SETUP_CLAIM_KEY) or "")
    if idp is not None and held and not (record is not None and record.complete):
        try:
            since: datetime | None = from_text(held.split(" ")[0])
        except ValueError:
            since = None
        if since is not None and moment - since < SETUP_CLAIM_STALE:
            account = record.id if record is not None else str(idp.get("alias"))
            raise SetupInProgress(
                f"account {account} is being set up right now (since {held.split(' ')[0]}); "
                "nothing was changed; try again in a few minutes"
            )
        return fresh
    if idp is None and record is not None and record.managed and record.awaiting_setup:
        return fresh
    return None


def _create_awaiting_setup(
    api: KeycloakPort, settings: Settings, account: Account, *, dry_run: bool, today: date | None
) -> Result:
    """The organization alone (name, domains, IT contact, test users if given): no SSO until
    the customer's IT fills in the Entra details through the portal (``account invite``)."""
    snapshot = Snapshot.for_account(api, account.id, account.domains, account.name, with_mappers=False)
    org, idp = snapshot.orgs.get(account.id), snapshot.idps.get(account.idp_alias)
    record = AccountRecord.parse(org, idp) if org is not None else None
    if record is not None and record.managed and not record.awaiting_setup:
        raise Conflict(f"account {account.id!r} already exists in stage {record.stage}; nothing was changed")
    if record is not None and record.managed:
        differences = create_differences(record.settings(), account, idp)
        if differences:
            raise Conflict(
                f"account {account.id!r} already exists with other settings: {'; '.join(differences)}; "
                "nothing was changed"
            )
    plan = plan_account(settings, account, snapshot)
    if not dry_run:
        plan.apply(api)
    return Result(
        account=account,
        plan=plan,
        applied=not dry_run,
        links={"redirect_uri": links.redirect_uri(settings, account.id)},
        warnings=checks.account_warnings(api, account, today=today),
    )


def create_differences(current: Account, asked: Account, idp: Mapping[str, Any] | None) -> list[str]:
    """What a create asks for that the existing account does not have, each with the
    command that changes it (create itself never changes an existing account's settings).
    An account awaiting setup has no Entra details to compare, and its setup sets the test
    users."""
    out: list[str] = []
    file_cmd = "`apsis-sso apply -f FILE`, starting from `apsis-sso export`"
    rotate = f"`apsis-sso account rotate-secret {asked.id}`"
    entra_held = not current.awaiting_setup

    def differs(what: str, have: object, want: object, command: str) -> None:
        if have != want:
            out.append(f"{what}: {_shown(have)} in Keycloak, {_shown(want)} asked (change with {command})")

    differs("name", current.name, asked.name, file_cmd)
    if entra_held:
        differs("tenant id", current.tenant_id, asked.tenant_id, file_cmd)
        differs("client id", current.client_id, asked.client_id, file_cmd)
    differs("domains", sorted(current.domains), sorted(asked.domains), file_cmd)
    differs(
        "IT contact",
        f"{current.it_contact.name} <{current.it_contact.email}>",
        f"{asked.it_contact.name} <{asked.it_contact.email}>",
        file_cmd,
    )
    if entra_held or asked.awaiting_setup:
        differs(
            "test users", sorted(current.pilot), sorted(asked.pilot), f"`apsis-sso account pilot add|remove {asked.id}`"
        )
    if not entra_held or current.secret_expires is None or asked.secret_expires is None:
        return out
    differs("secret expiry", current.secret_expires.isoformat(), asked.secret_expires.isoformat(), rotate)
    held = (idp or {}).get("config", {}).get(SECRET_FINGERPRINT_KEY)
    if asked.client_secret is not None and held != secret_fingerprint(asked.client_secret.get_secret_value()):
        out.append(f"client secret: another one asked (change with {rotate})")
    return out


def _shown(value: object) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(value) + "]"
    return validation.shown(str(value))


def customer_links(settings: Settings, account: Account) -> dict[str, str]:
    return {
        "redirect_uri": links.redirect_uri(settings, account.id),
        "admin_consent_url": links.admin_consent_url(settings, account),
        "test_login_url": links.test_login_url(settings, account.id),
    }


def checked_links(
    settings: Settings, account: Account, *, stage: Stage | None = None
) -> tuple[dict[str, str], list[str]]:
    """The links to print, and a warning instead of a link Keycloak would refuse.

    With ``stage``, just what the stage commands show: the test-login link while SSO is on.
    An account awaiting setup has only its redirect URI.
    """
    if account.awaiting_setup:
        return {"redirect_uri": links.redirect_uri(settings, account.id)}, []
    found = customer_links(settings, account)
    if stage is not None:
        found = {"test_login_url": found["test_login_url"]} if stage != "disabled" else {}
    if "test_login_url" not in found:
        return found, []
    try:
        link_check.check_test_login(settings, found["test_login_url"])
    except link_check.LinkRefused as exc:
        del found["test_login_url"]
        return found, [str(exc)]
    return found, []


def update(api: KeycloakPort, settings: Settings, account: Account, *, dry_run: bool = False) -> Result:
    """Converge one existing account to ``account`` (stage, pilot list, metadata, secret)."""
    snapshot = Snapshot.for_account(
        api, account.id, account.domains, account.name, secrets_dir=settings.sync_secrets_dir
    )
    plan = plan_account(settings, account, snapshot)
    if not dry_run:
        plan.apply(api)
    return Result(account=account, plan=plan, applied=not dry_run)


def set_stage(
    api: KeycloakPort,
    settings: Settings,
    account_id: str,
    stage: Stage,
    *,
    dry_run: bool = False,
    allow_unproven: str | None = None,
    now: datetime | None = None,
) -> Result:
    """Move an account between pilot, live and disabled. ``disabled`` turns the IdP off;
    password logins of the account's users are untouched. Going live needs every domain
    proven for the account's tenant (those without a proof are asked of Entra now and
    recorded) or ``allow_unproven``, the operator's recorded reason."""
    record = load(api, account_id)
    if stage not in SSO_STAGES:
        raise InvalidInput(f"an account cannot be moved to stage {stage}")
    require_setup_done(record)
    account = record.settings()
    established = ownership.Established(account)
    if stage == "live" and record.provider == "entra":  # an Okta account's binding is its issuer
        established = ownership.establish(
            EntraEndpoints.from_settings(settings), account, record.attributes, override=allow_unproven, now=now
        )
    elif allow_unproven is not None:
        raise InvalidInput("--allow-unproven-domains is for go-live (and create, apply): no other stage links domains")
    result = update(api, settings, established.account.with_changes(stage=stage), dry_run=dry_run)
    result.links, result.warnings = checked_links(settings, result.account, stage=stage)
    result.warnings.extend(established.warnings())
    result.warnings.extend(checks.stage_warnings(api, record, stage))
    return result


@dataclass
class ProvenDomains:
    """``account prove-domains``: what Entra said of each domain, and what was recorded."""

    account: AccountRecord
    verdicts: list[Verdict]
    recorded: Recorded | None
    applied: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.account.id,
            "account": self.account.id,  # the same id, kept for scripts written before "id"
            "tenant_id": self.account.tenant_id,
            "applied": self.applied,
            "domains": [
                {"domain": v.domain, "status": v.status, "owner": v.owner, "detail": v.detail or None}
                for v in self.verdicts
            ],
        }


def prove_domains(
    api: KeycloakPort, settings: Settings, account_id: str, *, dry_run: bool = False, now: datetime | None = None
) -> ProvenDomains:
    """Ask Entra now which tenant owns each of the account's domains and record it, as the
    daemon's daily re-check does: a proven domain gets a fresh proof, one verified in another
    tenant or in none loses its proof and is flagged. The upgrade path for accounts created
    before proofs existed; also the way to clear a flag once the customer fixed the domain.
    Raises after recording when a domain is not proven (exit 2), or Entra did not answer (75)."""
    record = load(api, account_id)
    require_setup_done(record)
    verdicts = domain_ownership.check(EntraEndpoints.from_settings(settings), record.tenant_id, record.domains, now)
    recorded = (
        None if dry_run else domain_ownership.store(api, record.org_id, record.tenant_id, record.domains, verdicts, now)
    )
    return ProvenDomains(record, verdicts, recorded, not dry_run)


def require_proven(result: ProvenDomains) -> None:
    """The exit code of ``prove-domains``: 0 when every domain is proven."""
    domain_ownership.require(result.account.id, result.verdicts)


def pilot_add(
    api: KeycloakPort, settings: Settings, account_id: str, emails: list[str], *, dry_run: bool = False
) -> Result:
    """Put test users on the pilot list; warns about the new ones that cannot sign in yet."""
    added = [validation.email(e) for e in emails]
    account = load(api, account_id).settings()
    wanted = tuple(dict.fromkeys([*account.pilot, *added]))
    result = update(api, settings, account.with_changes(pilot=wanted), dry_run=dry_run)
    result.warnings = checks.account_warnings(api, result.account.with_changes(pilot=tuple(added)))
    return result


def pilot_remove(
    api: KeycloakPort, settings: Settings, account_id: str, emails: list[str], *, dry_run: bool = False
) -> Result:
    drop = {validation.email(e) for e in emails}
    account = load(api, account_id).settings()
    unknown = sorted(drop - set(account.pilot))
    if unknown:
        raise NotFound(f"{unknown[0]} is not on the pilot list of {account.id}")
    return update(
        api, settings, account.with_changes(pilot=tuple(e for e in account.pilot if e not in drop)), dry_run=dry_run
    )


def rotate_secret(
    api: KeycloakPort,
    settings: Settings,
    account_id: str,
    secret: str,
    expires: str | date,
    *,
    dry_run: bool = False,
    check_secret: bool = True,
) -> Result:
    """Prove the new secret with Entra, then swap it in. The IdP update is one atomic PUT,
    and Entra accepts both secrets while they overlap, so no sign-in breaks."""
    expiry = expires if isinstance(expires, date) else validation.future_date(expires)
    clean = validation.client_secret(secret)
    record = load(api, account_id)
    require_setup_done(record)
    if record.credential == "certificate":
        raise InvalidInput(
            f"account {account_id} authenticates with APSIS's certificate, not a secret; to go back to a "
            f"secret: `apsis-sso account credential {account_id} --use client-secret`"
        )
    account = record.settings()
    new = account.with_changes(client_secret=SecretStr(clean), secret_expires=expiry)
    if check_secret:
        entra.prove_secret(EntraEndpoints.from_settings(settings), account.tenant_id, account.client_id, clean)
    result = update(api, settings, new, dry_run=dry_run)
    warn_unsent_secrets(settings, result.plan)
    if not dry_run:
        result.secret_file = written_daemon_file(settings, result.plan)
    return result


def switch_credential(
    api: KeycloakPort,
    settings: Settings,
    account_id: str,
    use: CredentialKind,
    *,
    secret: str | None = None,
    expires: str | date | None = None,
    dry_run: bool = False,
    check_credential: bool = True,
) -> Result:
    """Move a set-up account from its client secret to APSIS's certificate, or back (a secret
    and its expiry then). The new credential is proved with Entra first (a client-credentials
    token: for a certificate, Entra must know the certificate, i.e. the customer uploaded it), so
    a switch never breaks a working account; then the identity provider is updated in one PUT
    and the daemon takes the new credential at its next cycle."""
    record = load(api, account_id)
    require_setup_done(record)
    account = record.settings()
    endpoints = EntraEndpoints.from_settings(settings)
    if use == "certificate":
        if secret is not None:
            raise InvalidInput("a certificate account has no client secret")
        pair = assertion_keys.current_pair(settings)
        new = account.with_changes(
            credential="certificate", client_secret=None, secret_expires=pair.certificate.not_after.date()
        )
        proof: str | KeyPair = pair
    else:
        if secret is None or expires is None:
            raise InvalidInput("switching to a client secret needs the secret and its expiry date")
        clean = validation.client_secret(secret)
        expiry = expires if isinstance(expires, date) else validation.future_date(expires)
        new = account.with_changes(credential="client-secret", client_secret=SecretStr(clean), secret_expires=expiry)
        proof = clean
    if record.credential == use and use == "certificate":
        result = update(api, settings, new, dry_run=True)
        if result.plan.empty:
            return result
    if check_credential:
        entra.prove_secret(endpoints, account.tenant_id, account.client_id, proof)
    result = update(api, settings, new, dry_run=dry_run)
    warn_unsent_secrets(settings, result.plan)
    if not dry_run:
        result.secret_file = written_daemon_file(settings, result.plan)
    return result


def delete(
    api: KeycloakPort,
    settings: Settings,
    account_id: str,
    *,
    dry_run: bool = False,
    confirm: Callable[[Plan], None] | None = None,
    progress: Callable[[Change], None] | None = None,
) -> Plan:
    """Plan (and unless ``dry_run`` apply) the removal of the account's SSO and of
    apsis-sync's copy of its secret. ``confirm`` sees the plan before anything changes and
    raises to stop it (the CLI asks the operator)."""
    account_id = validation.account_id(account_id)
    snapshot = Snapshot.for_account(api, account_id, secrets_dir=settings.sync_secrets_dir, with_mappers=False)
    plan = plan_delete(account_id, snapshot)
    if not dry_run:
        if confirm is not None:
            confirm(plan)
        plan.apply(api, progress)
    return plan
