"""The cassette recorder (tests/cassettes/record_graph.py) against the emulator: what it
writes replays, and holds no credential."""

from __future__ import annotations

import os
import subprocess
import sys

import yaml

from tests.graph_vcr import CASSETTES, FILTERED


def test_the_recorder_writes_cassettes_without_credentials(accounts, emulator, tmp_path) -> None:
    """tests/cassettes/record_graph.py, pointed at the emulator instead of a real tenant
    (national-cloud settings): what it writes replays, and holds no secret or token."""
    acct = accounts.create(stage="live")
    acct.person("rec")
    secret_file = tmp_path / "secret"
    secret_file.write_text(acct.secret)
    env = dict(
        os.environ,
        APSIS_SYNC_RECORD_TENANT_ID=acct.tenant_id,
        APSIS_SYNC_RECORD_CLIENT_ID=acct.app_id,
        APSIS_SYNC_RECORD_CLIENT_SECRET_FILE=str(secret_file),
        APSIS_SSO_ENTRA_AUTHORITY=emulator.authority,
        APSIS_SSO_GRAPH_BASE_URL=emulator.graph_base_url,
        APSIS_SSO_ENTRA_CA_BUNDLE=str(emulator.ca_bundle),
    )
    out = tmp_path / "recorded"
    script = CASSETTES.parent / "record_graph.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--out", str(out)], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "denied (no Application.Read.All)" in proc.stdout
    written = sorted(p.name for p in out.glob("*.yaml"))
    assert written == ["application_password_credentials.yaml", "token_then_graph.yaml", "users_delta_changes.yaml"]
    for path in out.glob("*.yaml"):
        text = path.read_text()
        assert acct.secret not in text and "Bearer ey" not in text
    token_call, graph_call = yaml.safe_load((out / "token_then_graph.yaml").read_text())["interactions"]
    assert token_call["request"]["body"]["client_secret"] == FILTERED  # aiohttp form data is kept as a mapping
    assert '"access_token": "FILTERED"' in token_call["response"]["body"]["string"]
    assert graph_call["request"]["headers"]["authorization"] == [FILTERED]
