"""What every local server harness of devenv needs: a free loopback port, the resident
memory of a server's process group, and stopping that group (politely, then for good)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def group_rss_bytes(pgid: int) -> int:
    """Resident memory of every process in the process group ``pgid`` (a server started
    with ``start_new_session=True``: the JVM behind ``kc.sh``, PostgreSQL's backends)."""
    total = 0
    page = os.sysconf("SC_PAGE_SIZE")
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:
                total += int(fields[21]) * page
        except (OSError, IndexError, ValueError):
            continue
    return total


def stop_group(process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """SIGTERM the process group, SIGKILL it if it is still there after ``timeout``."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        kill_group(process)
    except ProcessLookupError:
        pass


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group: a crash, as the kernel's OOM killer or a pulled plug does it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    process.wait(10)
