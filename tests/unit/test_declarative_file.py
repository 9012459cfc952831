"""Loading the accounts file: the C YAML loader when PyYAML has it, the same result either way."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from provisioning import declarative

pytestmark = pytest.mark.unit

FILE = """\
version: 1
accounts:
  - id: acme
    name: Acme AB
    tenant_id: 11111111-1111-1111-1111-111111111111
    client_id: 22222222-2222-2222-2222-222222222222
    secret_expires: 2031-03-31
    domains: [acme.example]
    it_contact: {name: Ivy Admin, email: ivy@acme.example}
    stage: live
"""


def test_the_file_is_parsed_by_libyaml_when_pyyaml_has_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    if not yaml.__with_libyaml__:
        pytest.fail("PyYAML without libyaml: the wheel bootstrap installs has it")
    used: list[str] = []

    class Spy(yaml.CSafeLoader):  # type: ignore[misc, name-defined]
        def __init__(self, stream: str) -> None:
            used.append("C")
            super().__init__(stream)

    monkeypatch.setattr(yaml, "CSafeLoader", Spy)
    path = tmp_path / "accounts.yaml"
    path.write_text(FILE)
    with_c = declarative.load(path).accounts
    assert used == ["C"]

    monkeypatch.delattr(yaml, "CSafeLoader")
    assert declarative.load(path).accounts == with_c
    assert with_c[0].stage == "live" and with_c[0].secret_expires.isoformat() == "2031-03-31"
