"""`apsis-sso assertion-key ...`: the client-assertion key of certificate accounts."""

from __future__ import annotations

from pathlib import Path

import click

from apsis_core import output
from apsis_core.cli import AppContext, output_option, pass_app
from apsis_core.errors import Conflict


@click.group("assertion-key", short_help="The key pair certificate accounts authenticate with.")
def assertion_key() -> None:
    """The client-assertion key of certificate accounts (docs/credentials.md).

    \b
    One key pair signs the client assertions of every certificate account: Keycloak's
    identity providers (private_key_jwt) and apsis-sync (Graph). Customers upload only
    its public certificate (`apsis-sso account certificate ACCOUNT`).
      generate FILE         a new key pair (PEM, owner-only) for a secret mount
      install [--next]      put APSIS_SSO_ASSERTION_KEY_FILE (or the next one) in Keycloak
      status                which certificate Keycloak signs with, which are published
      switch                make the next key the signing key
    """


@assertion_key.command("generate", short_help="Make a new key pair file (never overwrites).")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--days", type=click.IntRange(30, 3650), default=730, show_default=True, help="Certificate lifetime.")
@click.option(
    "--common-name", default="APSIS SSO client assertions", show_default=True, help="The certificate's subject CN."
)
@output_option
def generate(file: Path, days: int, common_name: str, output_format: str) -> None:
    """Generate an RSA key and its self-signed certificate into FILE (private key first, then the
    certificate; mode 0600). The private key never leaves APSIS: mount FILE as a secret for
    Keycloak's install, apsis-sync and the portal (APSIS_SSO_ASSERTION_KEY_FILE). Prints the
    public certificate's thumbprints only.

    \b
    Example:
      apsis-sso assertion-key generate /run/secrets/assertion-key-2027.pem --days 730
    """
    import datetime as dt

    from apsis_core import certificates

    if file.exists():
        raise Conflict(f"{file} exists; a key file is never overwritten (choose another name)")
    pair = certificates.generate(common_name, lifetime=dt.timedelta(days=days))
    certificates.write_key_pair(file, pair)
    _show_certificate(pair.certificate, output_format, f"key pair written to {file}")


def _show_certificate(cert: object, output_format: str, title: str) -> None:
    from apsis_core.certificates import PublicCertificate

    assert isinstance(cert, PublicCertificate)
    data = {
        "subject": cert.subject,
        "thumbprint_sha1": cert.sha1_thumbprint,
        "thumbprint_sha256": cert.sha256_thumbprint,
        "not_before": cert.not_before.isoformat(),
        "not_after": cert.not_after.isoformat(),
    }
    if output_format == "json":
        output.emit_json(data)
    else:
        output.status(title)
        output.key_values(data.items())


@assertion_key.command("install", short_help="Put the key pair in Keycloak as its own key provider.")
@click.option("--next", "upcoming", is_flag=True, help="The next key (APSIS_SSO_ASSERTION_NEXT_KEY_FILE), passive.")
@output_option
@pass_app
def install(app: AppContext, upcoming: bool, output_format: str) -> None:
    """Install the current key (active: Keycloak signs with it) or, with --next, the next one
    (passive: published, not used until `switch`) as an `rsa` key provider of the realm with
    algorithm PS256. Needs the master-realm administrator, like `realm apply`. Idempotent.

    \b
    Examples:
      APSIS_SSO_ASSERTION_KEY_FILE=/run/secrets/assertion-key.pem apsis-sso assertion-key install
      APSIS_SSO_ASSERTION_NEXT_KEY_FILE=/run/secrets/assertion-key-next.pem apsis-sso assertion-key install --next
    """
    from provisioning import assertion_keys

    settings = app.settings()
    pair = assertion_keys.next_pair(settings) if upcoming else assertion_keys.current_pair(settings)
    if pair is None:
        raise click.UsageError("--next needs APSIS_SSO_ASSERTION_NEXT_KEY_FILE")
    done = assertion_keys.install(app.admin_api(), pair, active=not upcoming)
    what = "next (passive)" if upcoming else "current (active)"
    if output_format == "json":
        output.emit_json({"key": what, "thumbprint_sha1": pair.certificate.sha1_thumbprint, "result": done})
    else:
        output.status(f"{what} assertion key {pair.certificate.sha1_thumbprint}: {done}")


@assertion_key.command("status", short_help="Which certificate Keycloak signs with; which are published.")
@output_option
@pass_app
def status(app: AppContext, output_format: str) -> None:
    """The certificate Keycloak signs client assertions with, the current and next key files and
    the key providers the realm holds (master-realm administrator).

    \b
    Example:
      apsis-sso assertion-key status -o json
    """
    from provisioning import assertion_keys

    settings = app.settings()
    admin = app.admin_api()
    current = assertion_keys.current_pair(settings).certificate
    upcoming = assertion_keys.next_pair(settings)
    keys = assertion_keys.installed(admin)
    data: dict[str, object] = {
        "signing": assertion_keys.signing_key_thumbprint(admin),
        "current": current.sha1_thumbprint,
        "current_expires": current.not_after.isoformat(),
        "next": upcoming.certificate.sha1_thumbprint if upcoming else None,
        "installed": [{"name": k.name, "active": k.active} for k in keys],
    }
    if output_format == "json":
        output.emit_json(data)
        return
    output.key_values((k, v) for k, v in data.items() if k != "installed")
    output.table(["key provider", "active"], [[k.name, str(k.active).lower()] for k in keys])


@assertion_key.command("switch", short_help="Make the next key the one Keycloak signs with.")
@click.option(
    "--force",
    is_flag=True,
    help="Switch even though some certificate accounts do not hold the next certificate (they stop working).",
)
@pass_app
def switch(app: AppContext, force: bool) -> None:
    """Activate the next key (higher priority: Keycloak signs with it at once) and make the current
    one passive. Every certificate account's app registration must hold the next certificate
    first (apsis-sync's certificate check lists the ones that do not). Afterwards, point
    APSIS_SSO_ASSERTION_KEY_FILE at the next key's file and unset the next one.

    \b
    Example:
      apsis-sso assertion-key status && apsis-sso assertion-key switch
    """
    from provisioning import assertion_keys

    settings = app.settings()
    upcoming = assertion_keys.next_pair(settings)
    if upcoming is None:
        raise click.UsageError("switch needs APSIS_SSO_ASSERTION_NEXT_KEY_FILE")
    accounts = assertion_keys.certificate_accounts(app.api())
    output.status(f"asking Entra whether {len(accounts)} certificate account(s) accept the next certificate ...")
    missing = assertion_keys.accounts_without(settings, accounts, upcoming)
    if missing and not force:
        raise Conflict(
            f"{len(missing)} certificate account(s) have not uploaded the next certificate "
            f"{upcoming.certificate.sha1_thumbprint} ({', '.join(missing[:10])}{', ...' if len(missing) > 10 else ''}); "
            "nothing was changed: they keep working on the current one (apsis-sync reminds their IT)"
        )
    assertion_keys.switch(app.admin_api(), assertion_keys.current_pair(settings), upcoming)
    output.status(f"Keycloak now signs client assertions with {upcoming.certificate.sha1_thumbprint}")
