"""Both CLIs read a secret the same way (file, variable, hidden prompt) and every secret read
is scrubbed from whatever is printed afterwards."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from apsis_core import redaction
from apsis_core.errors import InvalidInput
from apsis_core.secret_input import SecretOptions, read_secret

pytestmark = pytest.mark.unit
SSO = SecretOptions("--client-secret-file", "APSIS_SSO_ENTRA_CLIENT_SECRET", "--client-secret-env")
SYNC = SecretOptions("--client-secret-file", "APSIS_SYNC_CLIENT_SECRET")


def test_a_file_a_named_variable_then_the_default_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    secret_file = tmp_path / "s"
    secret_file.write_text("From~file-secret-value\n")
    monkeypatch.setenv("MY_SECRET", "From~named-variable-value")
    monkeypatch.setenv("APSIS_SYNC_CLIENT_SECRET", "From~default-variable-value")
    assert read_secret(str(secret_file), None, SYNC) == "From~file-secret-value"
    assert read_secret(None, "MY_SECRET", SSO) == "From~named-variable-value"
    assert read_secret(None, None, SYNC) == "From~default-variable-value"
    assert redaction.scrub("x From~default-variable-value y") == "x ******** y"


def test_errors_name_the_commands_own_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with pytest.raises(InvalidInput, match="either by --client-secret-file or by --client-secret-env"):
        read_secret("f", "V", SSO)
    with pytest.raises(InvalidInput, match="cannot read the client secret file"):
        read_secret(str(tmp_path / "missing"), None, SYNC)
    monkeypatch.delenv("APSIS_SYNC_CLIENT_SECRET", raising=False)

    @click.command()
    def ask() -> None:
        read_secret(None, None, SYNC)

    closed = CliRunner().invoke(ask, input="")  # nobody at the prompt
    assert closed.exit_code == 2
    assert "error: no client secret given: use --client-secret-file PATH, set APSIS_SYNC_CLIENT_SECRET" in closed.stderr


def test_the_hidden_prompt_asks_twice_and_remembers_the_answer(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("APSIS_SYNC_CLIENT_SECRET", raising=False)
    typed: list[str] = []

    @click.command()
    def ask() -> None:
        typed.append(read_secret(None, None, SYNC))

    result = CliRunner().invoke(ask, input="Typed~secret-value-42\nTyped~secret-value-42\n")
    assert result.exit_code == 0 and typed == ["Typed~secret-value-42"]
    assert "Typed~secret-value-42" not in result.output and redaction.scrub("Typed~secret-value-42") == "********"
