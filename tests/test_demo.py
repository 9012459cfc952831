"""The README's first command: the whole main job on the embedded default, as a process —
and `--keep-running`, stopped as a person stops it (Ctrl-C, or SIGTERM through make),
leaves nothing running: not Keycloak, not the SMTP server, not the Entra emulator."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
READY = "Press Ctrl-C (or send SIGTERM) to stop everything."


def descendants(pid: int) -> dict[int, str]:
    """Every process below ``pid`` (also those that started a session of their own), by command line."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found: dict[int, str] = {}
    todo = list(children.get(pid, []))
    while todo:
        child = todo.pop()
        try:
            found[child] = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        todo.extend(children.get(child, []))
    return found


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def listening(host_port: str) -> bool:
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return True
    except OSError:
        return False


@contextmanager
def started(args: list[str]) -> Iterator[subprocess.Popen[str]]:
    # A session of its own: the test can send "Ctrl-C" to its whole process group, as a terminal does.
    proc = subprocess.Popen(
        args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:  # the test failed before stopping it: let the demo clean up, as designed
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def stop(proc: subprocess.Popen[str], send: Callable[[int, int], None], signum: int) -> tuple[str, str]:
    send(proc.pid, signum)
    out, err = proc.communicate(timeout=180)
    assert "Stopping Keycloak, the SMTP server and the Entra emulator" in err, err[-2000:]
    return out, err


def wait_gone(pids: dict[int, str]) -> None:
    deadline = time.monotonic() + 30
    while any(running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = {pid: cmd for pid, cmd in pids.items() if running(pid)}
    assert not left, f"still running after the demo stopped: {left}"


def wait_for(proc: subprocess.Popen[str], marker: str, timeout: float = 900) -> str:
    assert proc.stderr is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            raise AssertionError(f"the demo exited ({proc.wait()}) before {marker!r}:\n{''.join(seen)[-3000:]}")
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError(f"no {marker!r} after {timeout}s")


def assert_all_stopped(pids: dict[int, str], services: dict[str, str]) -> None:
    wait_gone(pids)
    for name in ("keycloak", "entra", "okta", "portal"):
        assert not listening(urlsplit(services[name]).netloc), f"{name} still answers at {services[name]}"
    assert not listening(services["smtp"]), "the SMTP server still answers"


def assert_demo_report(report: dict, state: Path) -> None:
    assert report["ok"] is True
    summary = " ".join(f"{item['what']}: {item['result']}" for item in report["summary"])
    assert "signed in as alice@contoso.example" in summary
    assert "SSO login (dave, Okta): signed in as dave@fabrikam.example (account fabrikam)" in summary
    assert "Deprovisioning (erin, Okta): disabled by apsis-sync after Okta deactivated her" in summary
    assert "refused: not on the pilot list" in summary
    assert "Login page (carol, live): email field -> Entra sign-in: signed in as carol@contoso.example" in summary
    assert "disabled by apsis-sync" in summary and "sessions left: 0" in summary
    assert "SSO login refused, password login refused" in summary
    assert "the Entra client secret expires in 10 days" in summary
    # The customer's side went through the portal: setup, the test result, ready, the renewal.
    assert "set up by its IT through the portal" in summary
    assert "Portal page (test results): alice signed in, bob not yet" in summary
    assert "Ready for everyone (portal): the platform team was told" in summary
    assert "Renewal through the portal: new secret in Keycloak and in apsis-sync's copy" in summary
    later = lambda days: (date.today() + timedelta(days=days)).isoformat()  # noqa: E731
    assert sorted(m["subject"] for m in report["mails"]) == sorted(
        f"[APSIS One SSO] {subject}"
        for subject in (
            "Set up single sign-on for Contoso Ltd",  # the invitation, to their IT
            "contoso: SSO set up through the portal (pilot)",  # the platform team hears of each step
            "contoso: ready for everyone: please go live",
            f"contoso: the Entra client secret expires in 10 days ({later(10)})",  # with the renewal link
            f"contoso: client secret renewed through the portal (until {later(365)})",
        )
    )
    assert len(list((state / "mailbox" / "new").iterdir())) == 5
    # Where the tooling client's secret is: a path, never the value.
    secret_file = Path(report["services"]["tooling_client_secret_file"])
    assert secret_file.parent == state and (secret_file.stat().st_mode & 0o077) == 0
    assert f"Tooling client secret: {secret_file}" in summary


def test_demo_keep_running_stops_everything_on_ctrl_c_and_on_sigterm_through_make(tmp_path: Path) -> None:
    state = tmp_path / "demo"

    # 1. Ctrl-C: SIGINT to the demo's foreground process group, as a terminal sends it.
    with started(
        [sys.executable, "-m", "devenv.demo", "--keep-running", "--state-dir", str(state), "--output", "json"]
    ) as demo:
        wait_for(demo, READY)
        pids = descendants(demo.pid)
        assert any("java" in cmd and "kc.script.pid" in cmd for cmd in pids.values()), pids  # Keycloak
        assert any("aiosmtpd" in cmd for cmd in pids.values()), pids
        assert any("apsis-portal" in cmd for cmd in pids.values()), pids
        secrets = [
            (state / "tooling-client-secret").read_text(),
            (state / "admin-password").read_text(),
            (state / "portal-session-key").read_text(),
        ]
        env_file = state / "apsis.env"
        assert not any(secret in env_file.read_text() for secret in secrets)
        # A person explores the running demo with the CLIs and the settings file it wrote.
        shown = subprocess.run(
            [
                str(Path(sys.executable).parent / "apsis-sso"),
                "--env-file",
                str(env_file),
                "account",
                "show",
                "contoso",
                "-o",
                "json",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            env={k: v for k, v in os.environ.items() if not k.startswith("APSIS_")},
        )
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout)["id"] == "contoso"
        out, err = stop(demo, os.killpg, signal.SIGINT)
        assert demo.returncode == 0, err[-2000:]
    report = json.loads(out)
    assert_demo_report(report, state)
    assert_all_stopped(pids, report["services"])
    assert not any(secret in out + err for secret in secrets)

    # 2. Again in the same state directory (every run starts clean), through make, stopped
    #    by SIGTERM to make (a service manager's stop), which make passes on to the demo.
    with started(["make", "-s", "demo", f"ARGS=--keep-running --state-dir {state} --output json"]) as made:
        wait_for(made, READY)
        pids = descendants(made.pid)
        assert any("java" in cmd for cmd in pids.values()), pids
        out, err = stop(made, os.kill, signal.SIGTERM)
    report = json.loads(out)
    assert_demo_report(report, state)
    assert_all_stopped(pids, report["services"])


def test_sigterm_while_keycloak_starts_stops_what_was_started(tmp_path: Path) -> None:
    with started(
        [sys.executable, "-m", "devenv.demo", "--state-dir", str(tmp_path / "demo"), "--output", "json"]
    ) as demo:
        wait_for(demo, "Starting Keycloak")
        deadline = time.monotonic() + 60
        while not any("java" in cmd for cmd in descendants(demo.pid).values()):
            assert time.monotonic() < deadline, "Keycloak's JVM never started"
            time.sleep(0.2)
        pids = descendants(demo.pid)
        out, err = stop(demo, os.kill, signal.SIGTERM)
        assert demo.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert "SIGTERM received; stopping" in err and out == ""
    wait_gone(pids)
