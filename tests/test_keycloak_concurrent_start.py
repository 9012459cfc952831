"""Two dev-mode Keycloaks started at the same moment (the tests beside the demo or a
benchmark) both become ready and answer, and neither writes into the installed distribution:
each re-augments a ``lib/quarkus`` of its own. Both use a build option (``--db=dev-file``)
other than the test session's server, so both re-augment at once, as a benchmark with other
options would."""

from __future__ import annotations

import json
import os
import threading
import urllib.request
from pathlib import Path

from devenv.keycloak import KeycloakServer, dist_home, install


def _tree(root: Path) -> dict[str, tuple[int, int, int]]:
    out: dict[str, tuple[int, int, int]] = {}
    for folder, _, files in os.walk(root):
        for name in files:
            st = os.lstat(os.path.join(folder, name))
            out[os.path.relpath(os.path.join(folder, name), root)] = (st.st_ino, st.st_mtime_ns, st.st_size)
    return out


def test_two_dev_mode_keycloaks_started_at_once_both_answer_and_leave_the_distribution_alone(
    keycloak: KeycloakServer,
    tmp_path: Path,
) -> None:
    install()
    before = _tree(dist_home() / "lib") | _tree(dist_home() / "providers")
    servers = [KeycloakServer(database="dev-file", log_file=tmp_path / f"kc{i}.log") for i in range(2)]
    together = threading.Barrier(len(servers))
    failures: list[BaseException] = []

    def start(server: KeycloakServer) -> None:
        together.wait()
        try:
            server.start(timeout=540)
        except BaseException as exc:  # noqa: BLE001 - reported below with the log
            failures.append(exc)

    threads = [threading.Thread(target=start, args=(s,)) for s in servers]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == [], [
            f"{f}: {Path(str(s.log_file)).read_text()[-3000:]}" for f, s in zip(failures, servers, strict=True)
        ]
        for server in servers:
            with urllib.request.urlopen(
                f"{server.url}/realms/master/.well-known/openid-configuration", timeout=30
            ) as r:
                assert json.load(r)["issuer"] == f"{server.url}/realms/master"
        after = _tree(dist_home() / "lib") | _tree(dist_home() / "providers")
        assert [k for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)] == []
    finally:
        for server in servers:
            server.stop()
