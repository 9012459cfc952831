"""What apsis-sso and apsis-sync share and must do alike (issue 26): Ctrl-C exits 130 while a
declined question stays 1, the group's options work after the subcommand too, and every
moment in JSON output is written one way (RFC 3339, UTC, ``Z``)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from apsis_core import output, timestamps
from apsis_core.cli import ApsisCli, confirm, env_file_option, globals_first
from apsis_core.errors import EX_INTERRUPTED
from provisioning.cli import main as apsis_sso

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
MOMENT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@click.group(cls=ApsisCli)
@env_file_option
@click.option("--debug", is_flag=True)
def app(env_file: Path | None, debug: bool) -> None:
    """A test program."""
    click.echo(f"env-file={env_file} debug={debug}")


@app.command()
@click.argument("what")
@click.option("--name")
def act(what: str, name: str | None) -> None:
    """Act in the named way."""
    if what == "interrupt":
        raise KeyboardInterrupt
    if what == "ask":
        confirm("Go on?", yes=False)
    click.echo(f"acted name={name}")


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def test_ctrl_c_exits_130_and_a_declined_question_stays_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    interrupted = run("act", "interrupt")
    assert interrupted.exit_code == EX_INTERRUPTED == 130
    assert interrupted.stderr.strip().splitlines()[-1].startswith("error: interrupted")
    declined = run("act", "ask")  # no answer (closed input) means no
    assert declined.exit_code == 1 and "nothing was changed" in declined.stderr

    def ctrl_c(prompt: str) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(click.termui, "visible_prompt_func", ctrl_c)  # (CliRunner would replace it)
    assert app.main(["act", "ask"], standalone_mode=False) == 130  # Ctrl-C at the question is not an answer
    assert "error: interrupted" in capsys.readouterr().err


def test_sigint_to_a_real_apsis_sso_process_exits_130():
    """apsis-sso waiting for a secret on standard input, interrupted as a shell's Ctrl-C does."""
    args = ["account", "create", "acme", "--name", "Acme", "--domain", "acme.example"]
    args += [
        "--tenant-id",
        "3f2a1b4c-0000-4000-8000-000000000001",
        "--client-id",
        "3f2a1b4c-0000-4000-8000-000000000002",
    ]
    args += ["--secret-expires", (date.today() + timedelta(days=90)).isoformat()]
    args += ["--it-contact-name", "Ivy", "--it-contact-email", "it@acme.example", "--client-secret-file", "-"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("APSIS_SSO_")}
    entry = "from provisioning.cli import main; main()"  # the console script's entry point, this tree's code
    process = subprocess.Popen(
        [sys.executable, "-c", entry, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    waiting_for_stdin(process.pid)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("error: interrupted")


def waiting_for_stdin(pid: int) -> None:
    """Until the process blocks in read(0, ...) (x86-64 syscall 0 on fd 0), as a person's Ctrl-C
    would find it waiting for the secret."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/syscall").read_text().startswith("0 0x0 "):
                return
        except OSError:
            pass
        time.sleep(0.02)
    raise AssertionError("apsis-sso never waited for standard input")


def test_the_groups_options_work_after_the_subcommand(tmp_path: Path):
    env = tmp_path / "x.env"
    env.write_text("")
    before = run("--env-file", str(env), "--debug", "act", "go", "--name", "n")
    after = run("act", "go", "--env-file", str(env), "--name", "n", "--debug")
    assert after.exit_code == before.exit_code == 0, after.stderr
    assert after.stdout == before.stdout == f"env-file={env} debug=True\nacted name=n\n"
    missing = run("act", "go", f"--env-file={tmp_path / 'missing.env'}")  # checked as the group's option
    assert missing.exit_code == 2 and "does not exist" in missing.stderr and "No such option" not in missing.stderr


def test_only_the_groups_own_options_move_and_never_an_options_value_or_what_follows_double_dash():
    assert globals_first(app, ["act", "go", "--name", "--debug"]) == ["act", "go", "--name", "--debug"]
    assert globals_first(app, ["act", "--", "--debug"]) == ["act", "--", "--debug"]
    assert globals_first(app, ["--debug", "act", "x", "--env-file", "f"]) == ["--debug", "--env-file", "f", "act", "x"]
    assert globals_first(app, ["act", "--help"]) == ["act", "--help"]
    # the real CLI: --debug and --env-file after a nested subcommand
    assert globals_first(apsis_sso, ["account", "show", "acme", "--env-file", "f", "--debug"]) == [
        "--env-file",
        "f",
        "--debug",
        "account",
        "show",
        "acme",
    ]


def test_every_moment_in_json_is_rfc3339_utc_with_z(capsys: pytest.CaptureFixture[str]):
    cest = timezone(timedelta(hours=2))
    output.emit_json(
        {
            "aware": datetime(2026, 12, 7, 23, 30, 5, 847000, tzinfo=cest),
            "utc": datetime(2026, 12, 7, 21, 30, 5, tzinfo=UTC),
            "naive": datetime(2026, 12, 7, 21, 30, 5, 1),
            "day": date(2027, 3, 31),
        }
    )
    doc = json.loads(capsys.readouterr().out)
    assert doc == {
        "aware": "2026-12-07T21:30:05Z",
        "utc": "2026-12-07T21:30:05Z",
        "naive": "2026-12-07T21:30:05Z",
        "day": "2027-03-31",
    }
    assert all(MOMENT.match(doc[k]) for k in ("aware", "utc", "naive"))
    assert timestamps.from_text(doc["aware"]) == datetime(2026, 12, 7, 21, 30, 5, tzinfo=UTC)


def _options(program: click.Command, *names: str) -> set[str]:
    command = program
    for name in names:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return {opt for p in command.params if isinstance(p, click.Option) for opt in p.opts}


def test_both_clis_take_debug_and_log_level_and_name_the_secret_file_alike():
    from sync.cli import main as apsis_sync

    for program in (apsis_sso, apsis_sync):
        assert {"--debug", "--log-level", "--env-file"} <= _options(program)
    assert "--client-secret-file" in _options(apsis_sso, "account", "create")
    assert "--client-secret-file" in _options(apsis_sync, "secret", "set")


def test_apsis_sync_debug_logs_at_debug_unless_a_level_is_given(monkeypatch: pytest.MonkeyPatch):
    from sync import cli as sync_cli

    seen: list[object] = []

    @sync_cli.main.command("probe-context")
    @click.pass_obj
    def probe(obj: object) -> None:
        seen.append(obj)

    try:
        assert CliRunner().invoke(sync_cli.main, ["probe-context", "--debug"]).exit_code == 0
        assert CliRunner().invoke(sync_cli.main, ["--debug", "--log-level", "warning", "probe-context"]).exit_code == 0
    finally:
        del sync_cli.main.commands["probe-context"]
    assert [(o.debug, o.log_level) for o in seen] == [(True, "DEBUG"), (True, "WARNING")]  # type: ignore[attr-defined]


def test_apsis_sync_status_is_apsis_sso_s_table_style_with_moments_never_wrapped(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    from sync import status

    monkeypatch.setattr(output, "PIPE_WIDTH", 120)
    row = {
        "id": "acme-industries-europe",
        "stage": "live",
        "synced": True,
        "last_success": "2026-12-07T22:36:48Z",
        "last_run": "2026-12-07T22:41:48Z",
        "last_status": "error",
        "deactivated_last_run": 0,
        "deactivated_total": 12,
        "quarantined": None,
        "days_until_secret_expires": 45,
        "secret_expiry_source": "graph",
        "domain_ownership": None,
        "last_errors": ["Graph answered 503 Service Unavailable three times; the account is retried next cycle"],
    }
    status.render({"source": "keycloak", "accounts": [row, {**row, "id": "b"}]})
    text = capsys.readouterr().out
    assert "2026-12-07T22:36:48Z" in text and "2026-12-07T22:41:48Z" in text and "acme-industries-europe" in text
    assert not set("┏┓└┘╭╮╰╯┌┐") & set(text)  # no outer box: apsis-sso's style (output.table)
    assert not any(line.startswith(("│", "┃")) for line in text.splitlines())
    assert max(len(line) for line in text.splitlines()) <= 120


def test_apsis_portal_names_every_missing_setting_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from portal.cli import main as apsis_portal

    for name in list(os.environ):
        if name.startswith(("APSIS_SSO_", "APSIS_PORTAL_", "APSIS_SYNC_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no .env here
    result = CliRunner().invoke(apsis_portal, ["run"])
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    for named in ("APSIS_PORTAL_SESSION_KEY", "APSIS_SSO_PORTAL_URL", "APSIS_SSO_SYNC_SECRETS_DIR", "KEYCLOAK_CLIENT"):
        assert named in line, line


def test_every_bad_setting_of_a_program_is_named_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("APSIS_SSO_KEYCLOAK_TIMEOUT", "soon")
    monkeypatch.setenv("APSIS_SSO_INVITATION_DAYS", "99")
    result = CliRunner().invoke(apsis_sso, ["account", "list"])
    assert result.exit_code == 2
    assert "APSIS_SSO_KEYCLOAK_TIMEOUT" in result.stderr and "APSIS_SSO_INVITATION_DAYS" in result.stderr


def test_apsis_sync_status_names_each_account_s_provider_and_credential(capsys: pytest.CaptureFixture[str]):
    from apsis_core.account import AccountRecord
    from sync import status

    def record(alias: str, **attributes: str) -> AccountRecord:
        attrs = {"apsis.managed": ["true"], "apsis.stage": ["pilot"]} | {k: [v] for k, v in attributes.items()}
        return AccountRecord.parse({"id": f"id-{alias}", "alias": alias, "name": alias, "attributes": attrs})

    today = date(2026, 12, 8)
    rows = [
        status._row(today, "fab", None, None, record("fab", **{"apsis.provider": "okta"})),
        status._row(today, "con", None, None, record("con", **{"apsis.credential": "certificate"})),
        status._row(today, "old", None, None, record("old")),  # from before the choice: Entra, a secret
        status._row(today, "gone", None, None, None),  # in the state only
    ]
    assert [(r["provider"], r["credential"]) for r in rows] == [
        ("okta", "client-secret"),
        ("entra", "certificate"),
        ("entra", "client-secret"),
        (None, None),
    ]
    status.render({"source": "keycloak", "accounts": rows})
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert " okta " in lines["fab"] and "entra (certificate)" in lines["con"] and " entra " in lines["old"]
    assert " ? " in lines["gone"]
