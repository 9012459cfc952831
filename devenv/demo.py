"""The main job on the embedded default, end to end, in one command (``make demo``).

On this machine, with nothing but the repository: start the Entra emulator, a local SMTP
server process writing to a mailbox directory, the pinned Keycloak and the self-serve
portal; apply the realm; create a sample account with the ``apsis-sso`` CLI exactly as the
platform team would and invite its IT; let the customer's IT set SSO up through the portal
with the link from the mail; log its test user in through SSO and see it on the portal's
page; take it live and sign a member in from the normal login page by typing her address;
delete a user in "Entra" and run one ``apsis-sync`` cycle that deactivates them; beside it, an
account whose users sign in with Okta (the Okta emulator), created with the CLI, one of its users
signing in and another deactivated in Okta by the same cycle; show the
mail that flags the client secret expiring in ten days, and renew the secret through its
link; print a summary. Every run starts from a clean state, so re-running works.

    python -m devenv.demo                 # run, print the summary, stop everything
    python -m devenv.demo --keep-running  # ...and keep Keycloak, Entra and SMTP up to explore
    make demo ARGS=--keep-running         # the same through make

Ctrl-C (SIGINT) or SIGTERM, at any moment, stops everything the demo started: the portal,
Keycloak, the SMTP server process and the Entra emulator. The demo writes ``apsis.env`` in its state
directory (settings with secret *file* paths, never values), so the CLIs work against the
running demo: ``apsis-sso --env-file .state/demo/apsis.env account show contoso``.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import mailbox
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from rich.console import Console
from rich.table import Table

from apsis_core.contract import KEYCLOAK_VERSION
from devenv.keycloak import KeycloakServer, free_port
from devenv.login_driver import forms, visible_text

REPO_ROOT = Path(__file__).resolve().parent.parent

ACCOUNT = "contoso"
DOMAIN = "contoso.example"
OKTA_ACCOUNT = "fabrikam"
OKTA_DOMAIN = "fabrikam.example"
PASSWORD = "Demo-Passw0rd!"
SECRET_DAYS = 10

console = Console(stderr=True, soft_wrap=True)  # progress lines carry paths: never wrapped
out = Console()


def print_summary(console: Console, title: str, summary: list[tuple[str, str]]) -> None:
    """A table on a terminal; elsewhere (a pipe, a file, CI's log) one plain line per row, so a
    path or URL is never wrapped and breaks no copy and paste."""
    if not console.is_terminal:
        console.print(title, soft_wrap=True, highlight=False, markup=False)
        for what, result in summary:
            console.print(f"{what}: {result}", soft_wrap=True, highlight=False, markup=False)
        return
    table = Table(title=title, show_lines=False)
    table.add_column("what", style="bold")
    table.add_column("result", overflow="fold")
    for what, result in summary:
        table.add_row(what, result)
    console.print(table)


def step(message: str) -> None:
    console.print(f"[bold cyan]==>[/] {message}")


def bin_path(name: str) -> str:
    """The console script next to this interpreter (the project's venv)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def run_cli(args: list[str], env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    shown = " ".join(args)
    console.print(f"    [dim]$ {shown}[/]")
    proc = subprocess.run(args, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise SystemExit(f"demo: `{shown}` failed with exit code {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return proc


def start_smtp(mail_dir: Path) -> tuple[subprocess.Popen[bytes], int]:
    """A real SMTP server process (aiosmtpd) delivering into a Maildir."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            f"127.0.0.1:{port}",
            "-c",
            "aiosmtpd.handlers.Mailbox",
            str(mail_dir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return proc, port
            except OSError:
                time.sleep(0.1)
        raise SystemExit("demo: the local SMTP server did not start")
    except BaseException:  # not started, or stopped by a signal meanwhile: leave nothing behind
        proc.kill()
        proc.wait(10)
        raise


def start_portal(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    """``apsis-portal run`` as a process of its own; returns once it answers ``/healthz``."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [bin_path("apsis-portal"), "run", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    return proc
            except requests.RequestException:
                time.sleep(0.1)
            if proc.poll() is not None:
                break
        raise SystemExit(f"demo: the portal did not start; see {log}")
    except BaseException:
        proc.kill()
        proc.wait(10)
        raise


def link_from_mail(mail_dir: Path, to: str, portal_url: str) -> str:
    """The portal link in the newest mail to ``to``, as its reader would click it."""
    links = []
    for message in sorted((mail_dir / "new").glob("*"), key=lambda p: p.stat().st_mtime):
        msg = email.message_from_bytes(message.read_bytes(), policy=email.policy.default)
        if to in str(msg.get("To", "")):
            links += re.findall(
                rf"{re.escape(portal_url)}/i/[a-z0-9-]+/[A-Za-z0-9_-]{{43}}", msg.get_body().get_content()
            )  # type: ignore[union-attr]
    if not links:
        raise SystemExit(f"demo: no portal link in a mail to {to}")
    return links[-1]


def submit(
    session: requests.Session, page: requests.Response, action: str, fields: dict[str, str]
) -> requests.Response:
    """Fill the page's form (its CSRF token included) and send it, as the browser would."""
    form = next(f for f in forms(page.text) if f.action == action)
    return session.post(page.url.rsplit("/", 1)[0] + action, data={**form.fields, **fields}, timeout=120)


STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


class Stopped(Exception):
    """SIGINT (Ctrl-C) or SIGTERM arrived: unwind, stopping whatever was started."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _stop_on_signal(signum: int, _frame: Any) -> None:
    raise Stopped(signum)


def write_private(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devenv.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--state-dir", type=Path, default=REPO_ROOT / ".state" / "demo")
    parser.add_argument("--keep-running", action="store_true", help="keep Keycloak, Entra and SMTP up afterwards")
    parser.add_argument("--output", choices=["table", "json"], default="table", help="summary as a table or JSON")
    args = parser.parse_args(argv)

    from devenv.entra_emulator import EntraEmulator
    from devenv.okta_emulator import OktaEmulator

    state: Path = args.state_dir.resolve()
    shutil.rmtree(state, ignore_errors=True)
    (state / "secrets").mkdir(parents=True)
    mail_dir = state / "mailbox"
    started = time.monotonic()
    summary: list[tuple[str, str]] = []

    for sig in STOP_SIGNALS:
        signal.signal(sig, _stop_on_signal)
    emulator = smtp = keycloak = portal = okta = None
    try:
        step("Starting the Entra emulator (stands in for login.microsoftonline.com and Graph)")
        # Python runs signal handlers in the main thread only, and the kernel may hand a
        # process's signal to any thread: the emulator's threads must not take Ctrl-C.
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            emulator = EntraEmulator(state_dir=state / "entra").start()
            okta = OktaEmulator(state_dir=state / "okta", ca_from=state / "entra").start()  # one CA for both
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        step(f"Starting a local SMTP server; mail lands in {mail_dir}")
        smtp, smtp_port = start_smtp(mail_dir)
        step(f"Starting Keycloak {KEYCLOAK_VERSION} with the apsis-sso extension (first start takes a minute)")
        keycloak = KeycloakServer(truststore_paths=[Path(emulator.ca_bundle)], log_file=state / "keycloak.log")
        keycloak.start()
        summary.append(
            ("Keycloak", f"{keycloak.url} (admin console: user admin, password in {state / 'admin-password'})")
        )
        admin_password_file = write_private(state / "admin-password", keycloak.admin_password)
        tooling_secret = secrets.token_urlsafe(32)
        tooling_secret_file = write_private(state / "tooling-client-secret", tooling_secret)
        portal_key_file = write_private(state / "portal-session-key", secrets.token_urlsafe(48))
        portal_port = free_port()
        portal_url = f"http://127.0.0.1:{portal_port}"

        # Secrets reach the CLIs as files (never argv, never a value in the environment);
        # the same settings are written to apsis.env for a person exploring afterwards.
        settings_env = {
            "APSIS_SSO_KEYCLOAK_URL": keycloak.url,
            "APSIS_SSO_REALM": "apsis",
            "APSIS_SSO_KEYCLOAK_ADMIN_USERNAME": keycloak.admin_username,
            "APSIS_SSO_KEYCLOAK_ADMIN_PASSWORD_FILE": str(admin_password_file),
            "APSIS_SSO_KEYCLOAK_CLIENT_SECRET_FILE": str(tooling_secret_file),
            "APSIS_SSO_ENTRA_AUTHORITY": emulator.authority,
            "APSIS_SSO_GRAPH_BASE_URL": emulator.graph_base_url,
            "APSIS_SSO_ENTRA_CA_BUNDLE": str(emulator.ca_bundle),
            "APSIS_SSO_OKTA_CA_BUNDLE": str(okta.ca_bundle),
            "APSIS_SYNC_DATA_DIR": str(state / "sync"),
            "APSIS_SYNC_SECRETS_DIR": str(state / "secrets"),
            "APSIS_SSO_SYNC_SECRETS_DIR": str(state / "secrets"),  # create hands the secret to the daemon
            "APSIS_SYNC_SMTP_HOST": "127.0.0.1",
            "APSIS_SYNC_SMTP_PORT": str(smtp_port),
            "APSIS_SYNC_MAIL_FROM": "apsis-sync@apsis.example",
            "APSIS_SYNC_PLATFORM_TEAM_EMAIL": "platform@apsis.example",
            "APSIS_SSO_PORTAL_URL": portal_url,  # invitation and renewal links point here
            "APSIS_PORTAL_SESSION_KEY_FILE": str(portal_key_file),
            "APSIS_PORTAL_AUDIT_LOG": str(state / "portal-audit.jsonl"),
        }
        env_file = write_private(state / "apsis.env", "".join(f"{k}={v}\n" for k, v in settings_env.items()))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("APSIS_SSO_", "APSIS_SYNC_"))}
        env.update(settings_env)
        summary.append(("Tooling client secret", f"{tooling_secret_file} (APSIS_SSO_KEYCLOAK_CLIENT_SECRET_FILE)"))
        summary.append(("Settings for the CLIs", f"{env_file}: apsis-sso --env-file {env_file} account show {ACCOUNT}"))

        step("Applying the realm (flows with the safe-linking authenticators, clients, policies)")
        run_cli([bin_path("apsis-sso"), "realm", "apply"], env)

        step("Contoso's Entra tenant (the emulator) has alice, bob and carol")
        tenant = emulator.add_tenant([DOMAIN], display_name="Contoso")
        people = {
            name: emulator.add_user(
                tenant.tenant_id, f"{name}@{DOMAIN}", PASSWORD, mail=f"{name}@{DOMAIN}", display_name=name.capitalize()
            ).oid
            for name in ("alice", "bob", "carol")
        }

        step("APSIS One users exist beforehand, with passwords")
        from apsis_core.keycloak import KeycloakRepository
        from apsis_core.settings import Settings

        settings = Settings(_env_file=None, keycloak_url=keycloak.url, keycloak_client_secret=tooling_secret)  # type: ignore[call-arg]
        api = KeycloakRepository.for_tooling(settings)
        for name in people:
            api.create_user(
                {
                    "username": f"{name}@{DOMAIN}",
                    "email": f"{name}@{DOMAIN}",
                    "firstName": name.capitalize(),
                    "lastName": "Contoso",
                    "enabled": True,
                    "emailVerified": True,
                    "credentials": [{"type": "password", "value": PASSWORD, "temporary": False}],
                }
            )

        step("The platform team creates the account (name, domain, IT contact) and invites its IT to the portal")
        run_cli(
            [
                bin_path("apsis-sso"),
                "account",
                "create",
                ACCOUNT,
                "--name",
                "Contoso Ltd",
                "--domain",
                DOMAIN,
                "--it-contact-name",
                "Ivy IT",
                "--it-contact-email",
                f"it@{DOMAIN}",
            ],
            env,
        )
        run_cli([bin_path("apsis-sso"), "account", "members", "add", ACCOUNT, "--from-domains"], env)
        portal = start_portal(env, portal_port, state / "portal.log")
        summary.append(
            ("Portal", f"{portal_url} (log {state / 'portal.log'}, audit trail {state / 'portal-audit.jsonl'})")
        )
        run_cli([bin_path("apsis-sso"), "account", "invite", ACCOUNT], env)

        step("Their IT opens the link from the mail, registers the app in Entra as the page says, and submits it")
        it_contact = requests.Session()
        page = it_contact.get(link_from_mail(mail_dir, f"it@{DOMAIN}", portal_url), timeout=60)
        shown = re.search(r'id="redirect-uri"[^>]*value="([^"]+)"', page.text)  # the page shows the redirect URI
        if shown is None:
            raise SystemExit(f"demo: the portal's setup page shows no redirect URI: {visible_text(page.text)[:300]}")
        redirect_uri = shown.group(1)
        app = emulator.add_application(tenant.tenant_id, "APSIS One SSO", [redirect_uri])
        expires = datetime.now(UTC) + timedelta(days=SECRET_DAYS)
        client_secret = emulator.add_secret(tenant.tenant_id, app.app_id, expires)
        page = submit(
            it_contact,
            page,
            "/setup",
            {
                "tenant": DOMAIN,
                "client_id": app.app_id,
                "client_secret": client_secret,
                "secret_expires": (date.today() + timedelta(days=SECRET_DAYS)).isoformat(),
                "test_users": f"alice@{DOMAIN}\nbob@{DOMAIN}",
            },
        )
        if page.status_code != 200 or "set up for testing" not in page.text:
            raise SystemExit(f"demo: the portal refused the setup: {visible_text(page.text)[:400]}")
        summary.append(
            (
                "Account",
                f"{ACCOUNT}: set up by its IT through the portal: Entra IdP entra-{ACCOUNT}, pilot with alice and bob",
            )
        )
        summary.append(("Redirect URI for their app", redirect_uri))
        daemon_copy = state / "secrets" / ACCOUNT  # the portal handed the secret to apsis-sync

        from devenv.login_driver import Browser

        step("alice (a test user) signs in through Entra: linked to her existing APSIS One user")
        alice = Browser(keycloak.url, "apsis", ca_bundle=str(emulator.ca_bundle)).sso_login(
            f"alice@{DOMAIN}", PASSWORD, f"entra-{ACCOUNT}"
        )
        if not alice.ok:
            raise SystemExit(f"demo: alice's SSO login failed: {alice.text[:300]}")
        summary.append(
            (
                "SSO login (alice)",
                f"signed in as {alice.id_claims.get('email')} (account {alice.id_claims.get('apsis_account')})",
            )
        )
        carol = Browser(keycloak.url, "apsis", ca_bundle=str(emulator.ca_bundle)).sso_login(
            f"carol@{DOMAIN}", PASSWORD, f"entra-{ACCOUNT}"
        )
        summary.append(
            (
                "SSO login (carol, not a test user)",
                "refused: " + ("not on the pilot list" if not carol.ok else "UNEXPECTEDLY ALLOWED"),
            )
        )
        status = it_contact.get(f"{portal_url}/setup", timeout=60)
        tested = visible_text(status.text)
        summary.append(
            (
                "Portal page (test results)",
                (
                    "alice signed in, bob not yet"
                    if f"alice@{DOMAIN} Signed in" in tested and f"bob@{DOMAIN} Not yet" in tested
                    else f"UNEXPECTED: {tested[:200]}"
                ),
            )
        )
        ready = submit(it_contact, status, "/setup/ready", {})
        summary.append(
            (
                "Ready for everyone (portal)",
                "the platform team was told"
                if "take it from here" in ready.text
                else f"NOT ACCEPTED: {visible_text(ready.text)[:200]}",
            )
        )
        bob = Browser(keycloak.url, "apsis", ca_bundle=str(emulator.ca_bundle))
        if not bob.sso_login(f"bob@{DOMAIN}", PASSWORD, f"entra-{ACCOUNT}").ok:
            raise SystemExit("demo: bob's SSO login failed")

        summary.append(("Secret for apsis-sync", str(daemon_copy) if daemon_copy.exists() else "NOT STORED"))

        step("Fabrikam signs in with Okta: its org has dave and erin; the platform team creates the account")
        org = "fabrikam"
        okta.add_org(org)
        okta_people = {name: okta.add_user(org, f"{name}@{OKTA_DOMAIN}", PASSWORD).id for name in ("dave", "erin")}
        for name in okta_people:
            api.create_user(
                {
                    "username": f"{name}@{OKTA_DOMAIN}",
                    "email": f"{name}@{OKTA_DOMAIN}",
                    "firstName": name.capitalize(),
                    "lastName": "Fabrikam",
                    "enabled": True,
                    "emailVerified": True,
                    "credentials": [{"type": "password", "value": PASSWORD, "temporary": False}],
                }
            )
        key = json.loads(
            run_cli([bin_path("apsis-sso"), "account", "okta-key", OKTA_ACCOUNT, "-o", "json"], env).stdout
        )
        service = okta.add_service_app(org, "APSIS sync", [key["jwk"]], ["okta.users.read", "okta.logs.read"])
        okta_redirect = redirect_uri.replace(f"entra-{ACCOUNT}", f"entra-{OKTA_ACCOUNT}")
        web_app, okta_secret = okta.add_web_app(org, "APSIS One", [okta_redirect])
        okta_secret_file = write_private(state / "fabrikam-okta-secret", okta_secret)
        run_cli(
            [
                bin_path("apsis-sso"),
                "account",
                "create",
                OKTA_ACCOUNT,
                "--name",
                "Fabrikam Inc",
                "--provider",
                "okta",
                "--okta-org",
                okta.issuer(org),
                "--client-id",
                web_app.client_id,
                "--okta-api-client-id",
                service.client_id,
                "--domain",
                OKTA_DOMAIN,
                "--secret-expires",
                (date.today() + timedelta(days=365)).isoformat(),
                "--it-contact-name",
                "Olga IT",
                "--it-contact-email",
                f"it@{OKTA_DOMAIN}",
                "--test-user",
                f"dave@{OKTA_DOMAIN}",
                "--test-user",
                f"erin@{OKTA_DOMAIN}",
                "--client-secret-file",
                str(okta_secret_file),
            ],
            env,
        )
        run_cli([bin_path("apsis-sso"), "account", "members", "add", OKTA_ACCOUNT, "--from-domains"], env)
        dave = Browser(keycloak.url, "apsis", ca_bundle=str(okta.ca_bundle)).idp_login(
            f"dave@{OKTA_DOMAIN}", PASSWORD, f"entra-{OKTA_ACCOUNT}"
        )
        summary.append(
            (
                "Okta account",
                f"{OKTA_ACCOUNT}: provider okta, issuer {okta.issuer(org)}, API service app {service.client_id}",
            )
        )
        summary.append(
            (
                "SSO login (dave, Okta)",
                f"signed in as {dave.id_claims.get('email')} (account {dave.id_claims.get('apsis_account')})"
                if dave.ok
                else f"NOT SIGNED IN: {dave.text[:200]}",
            )
        )

        step("First apsis-sync cycle: reads every Entra user once and keeps Graph's delta link")
        first = run_cli([bin_path("apsis-sync"), "run", "--once"], env, check=False)
        console.print(f"    [dim]{first.stdout.strip()[-600:]}[/]")

        step("bob leaves Contoso: his Entra user is deleted; the next cycle reads only the changes")
        emulator.delete_user(tenant.tenant_id, people["bob"])
        okta.deactivate(org, okta_people["erin"])  # and erin leaves Fabrikam: deactivated in Okta
        cycle = run_cli([bin_path("apsis-sync"), "run", "--once"], env, check=False)
        console.print(f"    [dim]{cycle.stdout.strip()[-600:]}[/]")
        bob_user = api.users_by_email(f"bob@{DOMAIN}")[0]
        sessions = api.user_sessions(bob_user["id"])
        again = bob.sso_login(f"bob@{DOMAIN}", PASSWORD, f"entra-{ACCOUNT}")
        password = Browser(keycloak.url, "apsis").password_login(f"bob@{DOMAIN}", PASSWORD)
        attrs = bob_user.get("attributes", {})
        summary.append(
            (
                "Deprovisioning (bob)",
                (
                    f"{'disabled' if not bob_user['enabled'] else 'STILL ENABLED'} by {attrs.get('apsis.disabledBy', ['?'])[0]}"
                    f" ({attrs.get('apsis.disabledReason', ['?'])[0]}); sessions left: {len(sessions)}; "
                    f"SSO login {'refused' if not again.ok else 'ALLOWED'}, password login {'refused' if not password.ok else 'ALLOWED'}"
                ),
            )
        )

        erin_user = api.users_by_email(f"erin@{OKTA_DOMAIN}")[0]
        summary.append(
            (
                "Deprovisioning (erin, Okta)",
                f"{'disabled' if not erin_user['enabled'] else 'STILL ENABLED'} by "
                f"{(erin_user.get('attributes') or {}).get('apsis.disabledBy', ['?'])[0]} after Okta deactivated her",
            )
        )

        step("The pilot went well: the account goes live; carol types her address on the normal login page")
        run_cli([bin_path("apsis-sso"), "account", "go-live", ACCOUNT], env)
        carol_live = Browser(keycloak.url, "apsis", ca_bundle=str(emulator.ca_bundle)).login_page(
            f"carol@{DOMAIN}", PASSWORD
        )
        pages = " -> ".join(
            {"username": "email field", "entra": "Entra sign-in", "password": "password form"}[f]
            for f in carol_live.forms
        )
        summary.append(
            (
                "Login page (carol, live)",
                (
                    f"{pages}: signed in as {carol_live.id_claims.get('email')}"
                    if carol_live.ok
                    else f"NOT SIGNED IN ({pages}): {carol_live.text[:200]}"
                ),
            )
        )

        step("The expiry mail carries a renewal link: their IT enters a new secret, and it is swapped in")
        renewer = requests.Session()
        page = renewer.get(link_from_mail(mail_dir, f"it@{DOMAIN}", portal_url), timeout=60)
        new_secret = emulator.add_secret(tenant.tenant_id, app.app_id, datetime.now(UTC) + timedelta(days=365))
        renewed = submit(
            renewer,
            page,
            "/renew",
            {"client_secret": new_secret, "secret_expires": (date.today() + timedelta(days=365)).isoformat()},
        )
        held = daemon_copy.read_text().strip() if daemon_copy.exists() else ""
        renewal_ok = "The new client secret is in place" in renewed.text and held == new_secret
        summary.append(
            (
                "Renewal through the portal",
                (
                    f'new secret in Keycloak and in apsis-sync\'s copy, old one ("{client_secret[:3]}...") can go'
                    if renewal_ok
                    else f"NOT DONE: {visible_text(renewed.text)[:200]}"
                ),
            )
        )

        mails = read_mailbox(mail_dir)
        for mail in mails:
            summary.append(("Mail", f"to {mail['to']}: {mail['subject']}"))
        if not mails:
            summary.append(("Mail", "none arrived (see the sync output above)"))
        else:
            summary.append(
                (
                    "Mails",
                    f"{len(mails)}: the invitation, the platform team's three from the portal, and "
                    "one expiry notice over two sync cycles (each threshold is notified once)",
                )
            )
        summary.append(("Mailbox", str(mail_dir)))

        healthy = (
            alice.ok
            and not carol.ok
            and renewal_ok
            and "take it from here" in ready.text
            and carol_live.ok
            and carol_live.forms == ["username", "entra"]
            and not bob_user["enabled"]
            and not sessions
            and not again.ok
            and not password.ok
            and any("expire" in m["subject"].lower() for m in mails)
            and dave.ok
            and not erin_user["enabled"]
        )
        services = {
            "keycloak": keycloak.url,
            "entra": emulator.url,
            "okta": okta.url,
            "smtp": f"127.0.0.1:{smtp_port}",
            "portal": portal_url,
            "env_file": str(env_file),
            "tooling_client_secret_file": str(tooling_secret_file),
            "admin_password_file": str(admin_password_file),
        }
        if args.output == "json":
            print(
                json.dumps(
                    {
                        "ok": healthy,
                        "seconds": round(time.monotonic() - started, 1),
                        "summary": [{"what": w, "result": r} for w, r in summary],
                        "mails": mails,
                        "services": services,
                    },
                    indent=2,
                ),
                flush=True,
            )
        else:
            print_summary(out, f"apsis-sso demo finished in {time.monotonic() - started:.0f}s", summary)
        sys.stdout.flush()
        if args.keep_running:
            console.print(
                f"Running: Keycloak {keycloak.url}, Entra {emulator.url}, SMTP 127.0.0.1:{smtp_port}, "
                f"portal {portal_url}.\n"
                f"Explore: {bin_path('apsis-sso')} --env-file {env_file} account show {ACCOUNT}\n"
                f"         {bin_path('apsis-sync')} --env-file {env_file} status\n"
                "Press Ctrl-C (or send SIGTERM) to stop everything.",
                soft_wrap=True,
                highlight=False,
            )
            try:
                while True:
                    time.sleep(0.5)  # the handler raises Stopped here
            except Stopped:
                pass
        return 0 if healthy else 1
    except Stopped as stop:
        console.print(f"demo: {stop} received; stopping")
        return 128 + stop.signum
    finally:
        for sig in STOP_SIGNALS:  # a second Ctrl-C must not cut the cleanup short
            signal.signal(sig, signal.SIG_IGN)
        if portal is not None:
            console.print("Stopping the portal ...")
            portal.terminate()
            portal.wait(20)
        if keycloak is not None or smtp is not None or emulator is not None:
            console.print("Stopping Keycloak, the SMTP server and the Entra emulator ...")
        if keycloak is not None:
            keycloak.stop()
        if smtp is not None:
            smtp.terminate()
            smtp.wait(10)
        if emulator is not None:
            emulator.stop()
        if okta is not None:
            okta.stop()


def read_mailbox(mail_dir: Path) -> list[dict[str, Any]]:
    if not mail_dir.exists():
        return []
    box = mailbox.Maildir(mail_dir, factory=None, create=False)
    found = []
    for key in box.iterkeys():
        msg = email.message_from_bytes(box.get_bytes(key))
        found.append({"to": msg.get("To", ""), "subject": " ".join(str(msg.get("Subject", "")).split())})
    return found


if __name__ == "__main__":
    raise SystemExit(main())
