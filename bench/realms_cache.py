"""What the sized realms cache costs in memory, and what it buys a plan.

Two throwaway Keycloaks (dev mode, in-memory database) side by side in one run: ``sized``
starts with the project's ``--cache-embedded-realms-max-count`` (``devenv.keycloak.
cache_options``, what every Keycloak of the project starts with), ``default`` with Keycloak's
own realms cache of 10,000 entries. Both get the same ``--accounts`` (default 10,000),
created through the library path (``plan_accounts`` of new accounts, then
``parallel.apply_plan``) in chunks that alternate between the two, so the machine's load
hits both alike. Then, per server:

* a no-change ``declarative.plan`` over every account, ``--rounds`` times (the first round
  right after the create, then warm; median of the rest), with the realms cache's entries,
  misses and evictions from Keycloak's metrics;
* the resident memory of the JVM (RSS of its process group) as the workload left it, and the
  live heap: the heap in use right after a full collection (``jcmd PID GC.run``), which is
  what the cache's entries actually hold (RSS also carries heap the JVM grew and keeps).

    .venv/bin/python bench/realms_cache.py                  # 10,000 accounts each: ~25 min quiet
    .venv/bin/python bench/realms_cache.py --accounts 3000 --json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import accounts, load, ratio, realm, realms_cache, start_keycloak  # noqa: E402

from apsis_core.keycloak import KeycloakRepository  # noqa: E402
from apsis_core.settings import Settings  # noqa: E402
from devenv.keycloak import KeycloakServer  # noqa: E402
from provisioning import declarative, parallel  # noqa: E402
from provisioning.accounts import plan_accounts  # noqa: E402
from provisioning.snapshot import Snapshot  # noqa: E402

PREFIX = "bench"
MB = 1024 * 1024


def create(settings: Settings, first: int, n: int, workers: int) -> float:
    """``n`` new accounts through the library path: the plan of new accounts (nothing to read:
    they are new) applied ``workers`` at a time, four writes each."""
    api = KeycloakRepository.for_tooling(settings)
    batch = accounts(PREFIX, n, secret=True, first=first)
    started = time.perf_counter()
    parallel.apply_plan(plan_accounts(settings, batch, Snapshot()), api, workers=workers)
    return time.perf_counter() - started


def plan_seconds(settings: Settings, n: int) -> float:
    api = KeycloakRepository.for_tooling(settings)
    api.get_realm()  # the token, outside the timing
    started = time.perf_counter()
    plan = declarative.plan(api, settings, declarative.Desired(path=Path("bench.yaml"), accounts=accounts(PREFIX, n)))
    seconds = time.perf_counter() - started
    assert plan.empty, plan.to_json()[:2000]
    return seconds


def heap_used(server: KeycloakServer) -> float:
    """Bytes of heap in use (every G1 pool), from Keycloak's metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{server.management_port}/metrics") as response:
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith('jvm_memory_used_bytes{area="heap"')
    )


def jvm_pid(server: KeycloakServer) -> int:
    """The JVM of the server's process group (kc.sh may run it as a child rather than exec it)."""
    assert server.process is not None
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            exe = (stat.parent / "exe").resolve().name
        except OSError:
            continue
        if int(fields[2]) == server.process.pid and exe == "java":
            return int(stat.parent.name)
    raise RuntimeError(f"no JVM in the process group of {server.process.pid}")


def live_heap(server: KeycloakServer) -> float:
    """The heap in use right after a full collection: what is actually held."""
    assert server.jdk is not None
    jcmd = server.jdk.home / "bin" / "jcmd"
    pid = jvm_pid(server)
    for _ in range(3):  # the JVM's attach listener may be slow to answer on a loaded machine
        done = subprocess.run([str(jcmd), str(pid), "GC.run"], capture_output=True, text=True, timeout=120)
        if done.returncode == 0:
            return heap_used(server)
        time.sleep(2)
    raise RuntimeError(f"jcmd {pid} GC.run: {(done.stdout + done.stderr).strip()[:400]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=10000, help="accounts in each Keycloak (default 10000)")
    parser.add_argument("--chunk", type=int, default=1000, help="accounts created in one before the other's turn")
    parser.add_argument("--rounds", type=int, default=3, help="plans per server (the first is right after the create)")
    parser.add_argument("--workers", type=int, default=parallel.DEFAULT_WORKERS, help="--parallel of the create")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()

    report: dict[str, Any] = {"load_before": load(), "accounts": args.accounts, "servers": {}}
    servers: dict[str, tuple[KeycloakServer, Settings]] = {}
    try:
        for name, sized in (("sized", True), ("default", False)):
            server, base = start_keycloak(sized_realms_cache=sized)
            servers[name] = (server, realm(base, "apsis"))
            report["servers"][name] = {"rss_idle_mb": server.rss_bytes() / MB, "create_seconds": 0.0}
        made = 0
        while made < args.accounts:
            n = min(args.chunk, args.accounts - made)
            for name, (_, settings) in servers.items():
                report["servers"][name]["create_seconds"] += create(settings, made, n, args.workers)
            made += n
            print(f"  {made} accounts in each ({load()})", file=sys.stderr, flush=True)
        for name, (server, settings) in servers.items():
            row = report["servers"][name]
            rounds = []
            misses = []
            for _ in range(args.rounds):
                before = realms_cache(server)["misses"]
                rounds.append(plan_seconds(settings, args.accounts))
                misses.append(int(realms_cache(server)["misses"] - before))
            row["plan_first_seconds"] = rounds[0]
            row["plan_seconds"] = statistics.median(rounds[1:] or rounds)
            row["plan_misses_per_round"] = misses
            row["realms_cache"] = realms_cache(server)
            row["rss_mb"] = server.rss_bytes() / MB
            row["live_heap_mb"] = live_heap(server) / MB
            row["rss_after_gc_mb"] = server.rss_bytes() / MB
            row["load"] = load()
            print(
                f"  {name}: plan {row['plan_seconds']:.2f} s, RSS {row['rss_mb']:.0f} MB, "
                f"live heap {row['live_heap_mb']:.0f} MB ({row['load']})",
                file=sys.stderr,
                flush=True,
            )
    finally:
        for server, _ in servers.values():
            server.stop()
    report["load_after"] = load()
    sized, default = report["servers"]["sized"], report["servers"]["default"]
    report["sized_x_default"] = {
        key: ratio(sized[key], default[key]) for key in ("plan_seconds", "rss_mb", "live_heap_mb", "create_seconds")
    }

    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"realms cache sized (--cache-embedded-realms-max-count) against Keycloak's default, "
        f"{args.accounts} accounts each; load {report['load_before']} -> {report['load_after']}"
    )
    print(
        f"  {'server':<8} {'create s':>9} {'plan s':>8} {'1st plan s':>10} {'entries':>8} {'evictions':>9} "
        f"{'RSS MB':>7} {'live heap MB':>12}"
    )
    for name, row in report["servers"].items():
        cache = row["realms_cache"]
        print(
            f"  {name:<8} {row['create_seconds']:>9.1f} {row['plan_seconds']:>8.2f} {row['plan_first_seconds']:>10.2f} "
            f"{cache['entries']:>8.0f} {cache['evictions']:>9.0f} {row['rss_mb']:>7.0f} {row['live_heap_mb']:>12.0f}"
        )
    print(f"  sized x default: {report['sized_x_default']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
