"""Secrets never show: not in argv, not on stdout or stderr of any command (tables, JSON,
plans, errors, --debug tracebacks), including the installed console script run as a real
process."""

from __future__ import annotations

import json
from datetime import date, timedelta

from apsis_core import entra
from tests.cli_fixtures import KNOWN_SECRETS, Cli, EntraApp, assert_no_secret, run_console_script


def test_no_command_prints_the_secret(cli: Cli, entra_app, tmp_path):
    app: EntraApp = entra_app()
    secret = app.secret
    outputs: list[str] = []

    def run(*args: str, **kw) -> None:
        result = cli.run(*args, **kw)
        outputs.extend([result.stdout, result.stderr])

    run(*app.create_args(), "--dry-run")
    run(*app.create_args(), "-o", "json")
    run("account", "show", app.account)
    run("account", "show", app.account, "-o", "json")
    run("account", "list", "-o", "json")
    new = app.new_secret()
    run(
        "account",
        "rotate-secret",
        app.account,
        "--secret-expires",
        (date.today() + timedelta(days=99)).isoformat(),
        env={"APSIS_SSO_ENTRA_CLIENT_SECRET": new},
    )
    run(
        "--debug",
        "account",
        "rotate-secret",
        app.account,
        "--secret-expires",
        "2020-01-01",
        env={"APSIS_SSO_ENTRA_CLIENT_SECRET": new},
        expect=2,
    )
    wrong = "Wrong~" + secret[6:]
    KNOWN_SECRETS.add(wrong)
    run(
        "--debug",
        "account",
        "rotate-secret",
        app.account,
        "--secret-expires",
        (date.today() + timedelta(days=99)).isoformat(),
        env={"APSIS_SSO_ENTRA_CLIENT_SECRET": wrong},
        expect=2,
    )
    path = tmp_path / "accounts.yaml"
    path.write_text(
        json.dumps(
            {
                "accounts": [
                    {
                        "id": app.account,
                        "name": f"Account {app.account}",
                        "tenant_id": app.tenant_id,
                        "client_id": app.app_id,
                        "client_secret": {"env": "S"},
                        "secret_expires": (date.today() + timedelta(days=99)).isoformat(),
                        "domains": [app.domain],
                        "it_contact": {"name": "Ivy IT", "email": f"it@{app.domain}"},
                        "pilot": [f"ann@{app.domain}"],
                    }
                ]
            }
        )
    )
    run("plan", "-f", str(path), env={"S": secret})
    run("plan", "-f", str(path), "-o", "json", env={"S": secret})
    run("export")

    joined = "\n".join(outputs)
    assert "(changed)" in joined and "Traceback" in joined  # the runs did show plans and a traceback
    for value in (secret, new, wrong):
        assert value not in joined


def test_a_secret_inside_an_unexpected_error_is_blanked(cli: Cli, entra_app, monkeypatch):
    app: EntraApp = entra_app()

    def leaky(settings, tenant, client_id, secret):
        raise RuntimeError(f"transport failed for client_secret={secret}")

    monkeypatch.setattr(entra, "prove_secret", leaky)
    for debug in ([], ["--debug"]):
        result = cli.run(*debug, *app.create_args(), expect=1)
        assert "client_secret=********" in result.stderr
        assert app.secret not in result.stderr


def test_the_console_script_in_a_real_process(cli: Cli, entra_app):
    app: EntraApp = entra_app()
    args = app.create_args(**{"--client-secret-file": None})
    created = run_console_script(
        *args, "-o", "json", env={**cli.env, "APSIS_SSO_ENTRA_CLIENT_SECRET": app.secret}, cwd=cli.workdir
    )
    assert created.returncode == 0, created.stderr
    doc = json.loads(created.stdout)
    assert doc["applied"] is True and doc["account"] == app.account

    shown = run_console_script("account", "show", app.account, "-o", "json", env=cli.env, cwd=cli.workdir)
    assert shown.returncode == 0 and json.loads(shown.stdout)["tenant_id"] == app.tenant_id

    new = app.new_secret()
    piped = run_console_script(
        "account",
        "rotate-secret",
        app.account,
        "--secret-expires",
        (date.today() + timedelta(days=200)).isoformat(),
        "--client-secret-file",
        "-",
        env=cli.env,
        input=new + "\n",
        cwd=cli.workdir,
    )
    assert piped.returncode == 0, piped.stderr
    assert "proving the new client secret" in piped.stderr

    # The original create again, after the rotation: it asks for the old secret and expiry.
    duplicate = run_console_script(*args, env={**cli.env, "APSIS_SSO_ENTRA_CLIENT_SECRET": app.secret}, cwd=cli.workdir)
    assert duplicate.returncode == 2
    last = duplicate.stderr.splitlines()[-1]
    assert last.startswith(f"error: account '{app.account}' already exists with other settings: secret expiry: ")
    assert "client secret: another one asked (change with `apsis-sso account rotate-secret" in last
    assert_no_secret(created.stdout + created.stderr, piped.stdout + piped.stderr)
