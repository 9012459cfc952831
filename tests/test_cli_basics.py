"""The CLI as a program: help everywhere, fast start, one-line errors, exit codes,
configuration and connection failures (against the real Keycloak)."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest

from devenv.keycloak import free_port
from provisioning.cli import main
from tests.cli_fixtures import CONSOLE_SCRIPT, Cli, assert_one_line_error, run_console_script


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    out: list[tuple[tuple[str, ...], click.Command]] = []
    for name, command in sorted(group.commands.items()):
        out.append(((*path, name), command))
        if isinstance(command, click.Group):
            out.extend(_commands(command, (*path, name)))
    return out


ALL_COMMANDS = _commands(main)
LEAF_COMMANDS = [(path, cmd) for path, cmd in ALL_COMMANDS if not isinstance(cmd, click.Group)]


@pytest.mark.unit
def test_the_command_tree_is_the_documented_one():
    names = {" ".join(path) for path, _ in LEAF_COMMANDS}
    assert names == {
        "realm apply",
        "account create",
        "account show",
        "account list",
        "account go-live",
        "account back-to-pilot",
        "account disable",
        "account delete",
        "account rotate-secret",
        "account certificate",
        "account credential",
        "account invite",
        "account prove-domains",
        "account okta-key",
        "account pilot add",
        "account pilot remove",
        "account members add",
        "account members remove",
        "account members list",
        "plan",
        "apply",
        "export",
        "keycloak-admin ensure",
        "assertion-key generate",
        "assertion-key install",
        "assertion-key status",
        "assertion-key switch",
    }


@pytest.mark.unit
@pytest.mark.parametrize("path", [p for p, _ in ALL_COMMANDS], ids=lambda p: " ".join(p))
def test_every_command_has_help_with_examples(path, tmp_path):
    result = Cli(env={}, workdir=tmp_path).run(*path, "--help")
    assert result.stdout.startswith(f"Usage: apsis-sso {' '.join(path)}")
    command = dict(ALL_COMMANDS)[path]
    if not isinstance(command, click.Group):
        assert "Example" in result.stdout, f"{' '.join(path)} --help shows no example"


@pytest.mark.unit
def test_top_level_help_documents_exit_codes(tmp_path):
    out = Cli(env={}, workdir=tmp_path).run("--help").stdout
    for code in (
        "0  success",
        "1  unexpected failure",
        "2  bad input",
        "3  plan --detailed-exitcode",
        "75 temporary failure (EX_TEMPFAIL)",
    ):
        assert code in out


@pytest.mark.unit
def test_a_group_without_a_command_shows_its_help(tmp_path):
    result = Cli(env={}, workdir=tmp_path).run("account")
    assert "create" in result.stdout and "go-live" in result.stdout


@pytest.mark.unit
def test_there_is_no_option_that_takes_a_secret_value():
    for path, command in LEAF_COMMANDS:
        for param in command.params:
            for opt in getattr(param, "opts", []):
                if "secret" in opt:
                    assert opt in {"--client-secret-file", "--client-secret-env", "--secret-expires"}, (path, opt)


@pytest.mark.unit
def test_importing_the_cli_loads_neither_graph_nor_heavy_libraries():
    code = (
        "import sys, provisioning.cli\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'msgraph', 'azure', 'kiota_abstractions', 'keycloak', 'pydantic', 'pydantic_settings', 'rich', 'httpx', 'yaml'})\n"
        "print(repr(heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout


@pytest.mark.unit
def test_the_console_script_runs_help_and_version():
    assert CONSOLE_SCRIPT.exists(), CONSOLE_SCRIPT
    done = run_console_script("--help", env={})
    assert done.returncode == 0 and "Usage: apsis-sso" in done.stdout
    done = run_console_script("--version", env={})
    assert done.returncode == 0 and done.stdout.startswith("apsis-sso, version ")


@pytest.mark.unit
def test_usage_errors_are_one_line_with_exit_2(tmp_path):
    cli = Cli(env={}, workdir=tmp_path)
    result = cli.run("account", "create", "acme", expect=2)
    assert "Missing option" in result.stderr and "apsis-sso account create --help" in result.stderr
    result = cli.run("account", "create", "acme", "--client-secret", "s3cret-value", expect=2)
    assert "No such option" in result.stderr
    result = cli.run("nonsense", expect=2)
    assert "No such command" in result.stderr
    result = cli.run("account", "members", "add", "acme", expect=2)
    assert "--from-domains" in result.stderr


def test_configuration_errors_are_one_line_with_exit_2(cli: Cli, tmp_path):
    result = cli.run("account", "list", env={"APSIS_SSO_KEYCLOAK_TIMEOUT": "soon"}, expect=2)
    assert "configuration: APSIS_SSO_KEYCLOAK_TIMEOUT" in result.stderr
    missing = tmp_path / "missing.secret"
    result = cli.run(
        "account",
        "list",
        env={"APSIS_SSO_KEYCLOAK_CLIENT_SECRET": None, "APSIS_SSO_KEYCLOAK_CLIENT_SECRET_FILE": str(missing)},
        expect=2,
    )
    assert "cannot read secret file" in result.stderr
    result = cli.run("account", "list", env={"APSIS_SSO_KEYCLOAK_CLIENT_SECRET": None}, expect=2)
    assert "no Keycloak client secret" in result.stderr
    result = cli.run("--env-file", str(tmp_path / "nope.env"), "account", "list", expect=2)
    assert "nope.env does not exist" in result.stderr


def test_an_env_file_configures_the_cli(cli: Cli, tmp_path):
    env_file = tmp_path / "ops.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in cli.env.items() if v is not None))
    bare = {k: None for k in cli.env}
    result = cli.run("--env-file", str(env_file), "account", "list", "--no-counts", "-o", "json", env=bare)
    assert "accounts" in json.loads(result.stdout)
    # ./.env of the working directory is read by default (a real process started there)
    (cli.workdir / ".env").write_text(env_file.read_text())
    done = run_console_script("account", "list", "--no-counts", "-o", "json", env=bare, cwd=cli.workdir)
    assert done.returncode == 0 and "accounts" in json.loads(done.stdout), done.stderr


def _in_workdir(cli: Cli, args: tuple[str, ...]) -> tuple[str, ...]:
    """The arguments with an (empty) accounts file in the CLI's working directory."""
    path = cli.workdir / "accounts.yaml"
    path.write_text("accounts: []\n")
    return tuple(str(path) if a == "accounts.yaml" else a for a in args)


@pytest.mark.parametrize(
    "args",
    [
        ("account", "list"),
        ("account", "show", "acme"),
        ("plan", "-f", "accounts.yaml"),
        ("realm", "apply", "--dry-run"),
    ],
)
def test_keycloak_unreachable_is_one_line_with_exit_75(cli: Cli, args):
    args = _in_workdir(cli, args)
    result = cli.run(*args, env={"APSIS_SSO_KEYCLOAK_URL": f"http://127.0.0.1:{free_port()}"}, expect=75)
    assert "is unreachable" in result.stderr


@pytest.mark.parametrize("args", [("account", "list"), ("plan", "-f", "accounts.yaml")])
def test_wrong_tooling_credentials_are_one_line_with_exit_2(cli: Cli, args):
    args = _in_workdir(cli, args)
    result = cli.run(*args, env={"APSIS_SSO_KEYCLOAK_CLIENT_SECRET": "not-the-secret"}, expect=2)
    assert "rejected the credentials of client apsis-sso-admin" in result.stderr


def test_wrong_admin_credentials_for_realm_apply_are_one_line_with_exit_2(cli: Cli):
    result = cli.run("realm", "apply", env={"APSIS_SSO_KEYCLOAK_ADMIN_PASSWORD": "not-the-password"}, expect=2)
    assert "rejected the credentials of admin" in result.stderr


def test_wrong_realm_is_one_line_with_exit_2(cli: Cli):
    result = cli.run("account", "list", env={"APSIS_SSO_REALM": "no-such-realm"}, expect=2)
    assert "refused a token" in result.stderr


def test_an_unexpected_failure_is_one_line_exit_1_and_debug_shows_the_traceback(cli: Cli, monkeypatch):
    from provisioning import status

    def broken(*args, **kwargs):
        raise RuntimeError("injected failure\nsecond line")

    monkeypatch.setattr(status, "list_accounts", broken)
    result = cli.run("account", "list", expect=1)
    assert result.stderr.strip() == (
        "error: unexpected failure: RuntimeError: injected failure (rerun with --debug for the traceback)"
    )
    result = cli.run("--debug", "account", "list", expect=1)
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1] == "error: unexpected failure: RuntimeError: injected failure"


def test_error_path_of_the_console_script_in_a_real_process(cli: Cli):
    done = run_console_script("account", "show", "Not_An_Id", env=cli.env, cwd=cli.workdir)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: invalid account id 'Not_An_Id': use 1-40 lower-case letters, digits and inner hyphens"
    ]
    assert done.stdout == ""


@pytest.mark.unit
def test_one_line_error_helper_rejects_tracebacks(tmp_path):
    """The assertion every failing CLI run goes through must itself be able to fail."""
    result = Cli(env={}, workdir=tmp_path).run("nonsense", expect=2)
    assert_one_line_error(result)
    result.stderr_bytes += b"Traceback (most recent call last):\nerror: two\n"
    with pytest.raises(AssertionError):
        assert_one_line_error(result)
