"""The README's first command: the whole main job on the embedded default, as a process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_demo_runs_end_to_end_and_again(tmp_path: Path) -> None:
    for run in (1, 2):  # re-running works
        proc = subprocess.run(
            [sys.executable, "-m", "devenv.demo", "--state-dir", str(tmp_path / "demo"), "--output", "json"],
            cwd=ROOT, capture_output=True, text=True, timeout=900,
        )
        assert proc.returncode == 0, f"run {run}: {proc.stderr[-2000:]}"
        report = json.loads(proc.stdout)
        assert report["ok"] is True
        summary = " ".join(f"{item['what']}: {item['result']}" for item in report["summary"])
        assert "signed in as alice@contoso.example" in summary
        assert "refused: not on the pilot list" in summary
        assert "Login page (carol, live): email field -> Entra sign-in: signed in as carol@contoso.example" in summary
        assert "disabled by apsis-sync" in summary and "sessions left: 0" in summary
        assert "SSO login refused, password login refused" in summary
        assert "the Entra client secret expires in 10 days" in summary
        mails = list((tmp_path / "demo" / "mailbox" / "new").iterdir())
        assert len(mails) == 1
