"""Creating an Okta account: the same steps as Entra's, with Okta's proofs.

Everything that can refuse runs before the first write, as for Entra (``onboarding.create``):
the account's name and domains against every other account (two accounts, Okta or Entra,
never share a domain: Keycloak's organizations hold each domain once), the issuer against its
discovery document, the login app's secret against Okta's token endpoint. The tenant–domain
binding of an Okta account is the issuer the platform team records at create: Okta publishes
no per-domain proof (Entra's discovery has one), so the extension trusts an Okta email only
with ``email_verified`` true and only in the account's domains, and go-live asks Okta nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from pathlib import Path
from typing import Any

from apsis_core import okta_proofs
from apsis_core.account import Account, AccountRecord
from apsis_core.errors import ApsisError, Conflict, InvalidInput
from apsis_core.keycloak import KeycloakPort
from apsis_core.settings import Settings
from provisioning import checks, link_check, links
from provisioning.accounts import check_account, plan_account, warn_unsent_secrets, written_daemon_file
from provisioning.plan import Plan
from provisioning.snapshot import Snapshot


def create(
    api: KeycloakPort,
    settings: Settings,
    account: Account,
    *,
    dry_run: bool = False,
    check_secret: bool = True,
    today: date | None = None,
    create_differences: Callable[[Account, Account, Mapping[str, Any] | None], list[str]],
) -> tuple[Account, Plan, dict[str, str], list[str], Path | None]:
    """Plan (and unless ``dry_run`` apply) an Okta account in pilot stage. Returns what
    ``onboarding.Result`` is made of: the account, the plan, its links, warnings, the daemon file.
    ``create_differences`` is onboarding's: what a create asks that the existing account lacks."""
    secret = account.client_secret
    if secret is None:
        raise InvalidInput("a client secret is required to create an account")
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
        account = account.with_changes(stage=record.stage)
    check_account(account, snapshot)
    link_check.check_test_login(settings, links.test_login_url(settings, account.id))
    okta_proofs.prove_issuer(account.tenant_id, settings.okta_ca_bundle)
    if check_secret and not exists:
        okta_proofs.prove_client_secret(
            account.tenant_id, account.client_id, secret.get_secret_value(), settings.okta_ca_bundle
        )
    plan = plan_account(settings, account, snapshot)
    warn_unsent_secrets(settings, plan)
    if not dry_run:
        plan.apply(api)
    account_links = {
        "redirect_uri": links.redirect_uri(settings, account.id),
        "test_login_url": links.test_login_url(settings, account.id),
    }
    daemon_file = written_daemon_file(settings, plan) if not dry_run else None
    return account, plan, account_links, checks.account_warnings(api, account, today=today), daemon_file


def prove_all(settings: Settings, accounts: list[Account]) -> None:
    """``apply -f``: the issuer and the login app's secret of every Okta account whose secret the
    plan writes, each proved before the first change; the first refusal names its account."""
    for account in accounts:
        assert account.client_secret is not None
        try:
            okta_proofs.prove_issuer(account.tenant_id, settings.okta_ca_bundle)
            okta_proofs.prove_client_secret(
                account.tenant_id, account.client_id, account.client_secret.get_secret_value(), settings.okta_ca_bundle
            )
        except ApsisError as exc:
            raise exc.with_message(f"account {account.id}: {exc.format_message()}") from None
