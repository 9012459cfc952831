"""apsis-sync replicas on one PostgreSQL state against one daemon, side by side in one run.

Against a throwaway Keycloak (dev mode), the Entra emulator with injected latency per Graph
and token answer (``--latency-ms``, default 50) and a throwaway PostgreSQL cluster (Debian's
server), N idle tenants (``--tenants``) are synced by daemons (``apsis-sync run``, real
processes, ``--interval``) in three setups, each on a fresh state:

* ``sqlite``: one daemon on its SQLite file (today's single-node default);
* ``postgres-1``: one daemon on the PostgreSQL state (leases, one replica);
* ``postgres-2``: two daemons on one PostgreSQL state (leases share the accounts out).

Per setup, after the first cycle (tokens, full listings) every daemon runs idle cycles; the
row gives the idle cycle (the wall time from the first replica's cycle start to the last
one's end, i.e. until every account was synced once), the CPU the daemons spent on it (the
OS's accounting, ``/proc/<pid>/stat``), and for PostgreSQL the transactions the database
committed per idle tenant (``pg_stat_database``: an upper bound of the round trips, since a
pipelined read of two statements counts two). The ratio of two replicas' idle cycle to
one's closes the run.

    .venv/bin/python bench/sync_replicas.py --tenants 300 --interval 30
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from sync_scale import World, uptime  # noqa: E402

from devenv.postgres import PostgresServer  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def committed(pg: PostgresServer, database: str) -> int:
    out = pg.sql(f"SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '{database}'")
    return int(out.strip() or 0)


class Daemon:
    """``apsis-sync run`` reporting each cycle as a JSON line on stdout."""

    def __init__(self, env: dict[str, str], interval: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sync", "run", "--interval", str(interval), "-o", "json"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )

    def next_cycle(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the daemon ended")
        report = json.loads(line)
        report["ended"] = time.time()
        return report

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=120)


def setup(world: World, pg: PostgresServer, name: str, replicas: int, n: int, interval: int) -> dict[str, Any]:
    extra = {"APSIS_SYNC_WORKERS": "32", "APSIS_SYNC_LEASE_SECONDS": str(max(10, interval))}
    database = f"bench_{name.replace('-', '_')}_{n}"
    if name != "sqlite":
        extra["APSIS_SYNC_STATE_URL"] = pg.create_database(database)
    else:
        extra["APSIS_SYNC_STATE_PATH"] = str(world.tmp / f"{database}.sqlite3")
    daemons = [Daemon(world.env(**extra), interval) for _ in range(replicas)]
    try:
        first = [d.next_cycle() for d in daemons]  # tokens, full listings
        while sum(len(r["accounts"]) for r in first) < n:  # the replicas' first cycles may split
            first.append(daemons[0].next_cycle())
        cpu0 = [cpu_seconds(d.proc.pid) for d in daemons]
        xacts0 = committed(pg, database) if name != "sqlite" else 0
        idle = [d.next_cycle() for d in daemons]
        synced = sum(len(r["accounts"]) for r in idle)
        cpu = sum(cpu_seconds(d.proc.pid) - c for d, c in zip(daemons, cpu0, strict=True))
        xacts = committed(pg, database) - xacts0 if name != "sqlite" else 0
        ends = [r["ended"] for r in idle]
        starts = [r["ended"] - r["seconds"] for r in idle]
        wall = max(ends) - min(starts)
        return {
            "setup": name,
            "tenants": n,
            "replicas": replicas,
            "idle_cycle_s": round(wall, 2),
            "per_replica_s": [round(r["seconds"], 2) for r in idle],
            "accounts_synced": synced,
            "cpu_ms_per_tenant": round(cpu * 1000 / max(synced, 1), 2),
            "pg_transactions_per_tenant": round(xacts / max(synced, 1), 2) if name != "sqlite" else None,
            "load": uptime(),
        }
    finally:
        for d in daemons:
            d.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=300)
    parser.add_argument("--interval", type=int, default=30)
    parser.add_argument("--latency-ms", type=int, default=50)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-replicas-"))
    world = World(tmp)
    pg = PostgresServer(tmp).start()
    rows = []
    try:
        accounts = [world.account(f"rep{i}") for i in range(args.tenants)]
        seeded = world.seed_organizations(accounts)
        print(f"[replicas] {args.tenants} accounts seeded in {seeded:.0f} s (load {uptime()})", file=sys.stderr)
        world.emulator.configure(graph_latency_ms=args.latency_ms, token_latency_ms=args.latency_ms)
        for name, replicas in (("sqlite", 1), ("postgres-1", 1), ("postgres-2", 2)):
            row = setup(world, pg, name, replicas, args.tenants, args.interval)
            row["latency_ms"] = args.latency_ms
            rows.append(row)
            print(json.dumps(row), flush=True)
        one = next(r for r in rows if r["setup"] == "postgres-1")
        two = next(r for r in rows if r["setup"] == "postgres-2")
        print(
            json.dumps({"two_replicas_vs_one": round(two["idle_cycle_s"] / one["idle_cycle_s"], 2), "load": uptime()}),
            flush=True,
        )
    finally:
        pg.stop()
        world.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
