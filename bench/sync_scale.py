"""apsis-sync at scale, measured side by side in one run (issue 10's table).

Against a throwaway Keycloak (dev mode) and the Entra emulator with injected latency per
Graph and token answer (``--latency-ms``, default 50), the daemon runs as its own process
(``python -m sync run --once``) so its CPU time and peak RSS are its own (``os.wait4``):

* ``idle``: N accounts (``--tenants``, e.g. 100 1000 10000), each its own tenant; the daemon
  (``apsis-sync run`` as deployed: logs at INFO, ``/metrics`` scraped) does a first cycle
  (tokens, full listings, ``applications``), then ``--idle-cycles`` idle ones, measured from
  outside (``/proc/<pid>/stat`` CPU of the whole process per cycle, the cycle from the
  scheduler starting it to its report) against the ideal ``requests x latency / workers``
  (Graph-side requests per tenant counted by the emulator); ``--compare`` runs an older
  checkout's daemon on the same accounts; then ``run --once`` in a new process (which needs a
  token per account again), against its own ideal;
* ``initial``: one account whose tenant has N users (``--users``, e.g. 1000 10000 100000),
  of whom ``--members`` (a share) are APSIS One members in Keycloak, half of those linked;
  a first sync: CPU seconds per user, peak RSS, and the emulator alone paging the same
  listing (plain httpx, no daemon) so its share is known, without latency and then with it
  (the wall-clock floor of a reader chaining pages at that moment's load);
* ``deactivations``: one account with M members, all but K linked; K linked ones deleted in
  Entra per cycle: the incremental cycle's Keycloak requests (counted by a proxy) per
  deactivated user, with ``APSIS_SYNC_KEYCLOAK_CONCURRENCY`` 1 and 8 side by side; then the K
  who never signed in with SSO (matched by their remembered address, ``unlinked_c8``); and a
  full resync's link reads through the links resource against one Admin API request per
  linked member.

Keycloak accounts are seeded straight through the Admin API, 8 requests at a time (only
the organization and a minimal IdP: the daemon reads nothing else of an account). ``--quick`` runs the
smallest sizes in a few minutes.

    .venv/bin/python bench/sync_scale.py idle --tenants 100 1000 10000
    .venv/bin/python bench/sync_scale.py initial --users 1000 10000 100000
    .venv/bin/python bench/sync_scale.py deactivations --members 200 --deleted 20
    .venv/bin/python bench/sync_scale.py all --quick
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import re
import ssl
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from apsis_core import contract  # noqa: E402
from apsis_core.keycloak import KeycloakRepository  # noqa: E402
from apsis_core.settings import Settings  # noqa: E402
from devenv.accounts import local_settings  # noqa: E402
from devenv.entra_emulator import EntraEmulator  # noqa: E402
from devenv.keycloak import KeycloakServer  # noqa: E402
from devenv.reverse_proxy import ReverseProxy  # noqa: E402
from provisioning.realm import apply_realm  # noqa: E402

FUTURE = dt.datetime(2035, 1, 1, tzinfo=dt.UTC)
PAGE_SIZE = 200  # what Graph returns per users/delta page (and its maximum for users)


def uptime() -> str:
    return Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"


class World:
    """A Keycloak, the emulator, settings, a state directory."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.emulator = EntraEmulator().start()
        self.emulator.configure(delta_page_size=PAGE_SIZE)
        self.server = KeycloakServer(truststore_paths=[Path(self.emulator.ca_bundle)])
        self.server.start()
        self.settings: Settings = local_settings(self.server.url, self.server.admin_password, self.emulator)
        apply_realm(KeycloakRepository.for_admin(self.settings), self.settings)
        self.api = KeycloakRepository.for_tooling(self.settings)
        self.secrets = tmp / "secrets"
        self.secrets.mkdir(exist_ok=True)

    def close(self) -> None:
        self.server.stop()
        self.emulator.stop()

    def account(self, account_id: str, users: int = 1, domain: str | None = None) -> dict[str, Any]:
        """A tenant with an app, a secret and ``users`` users; the organization in Keycloak."""
        domain = domain or f"{account_id}.example"
        tenant = self.emulator.add_tenant([domain])
        app = self.emulator.add_application(tenant.tenant_id, "APSIS", permissions=["User.Read.All"])
        secret = self.emulator.add_secret(tenant.tenant_id, app.app_id, FUTURE)
        oids = self.emulator.add_users(
            tenant.tenant_id,
            ({"user_principal_name": f"u{i}@{domain}", "mail": f"u{i}@{domain}"} for i in range(users)),
        )
        (self.secrets / account_id).write_text(secret)
        (self.secrets / account_id).chmod(0o600)
        return {
            "id": account_id,
            "domain": domain,
            "tenant": tenant.tenant_id,
            "app": app.app_id,
            "secret": secret,
            "oids": oids,
        }

    def organization(self, api: KeycloakRepository, acct: dict[str, Any]) -> str:
        rep = {
            "name": acct["id"],
            "alias": acct["id"],
            "enabled": True,
            "domains": [{"name": acct["domain"], "verified": True}],
            "attributes": {
                contract.MANAGED_BY_KEY: [contract.MANAGED_BY],
                contract.ACCOUNT_KEY: [acct["id"]],
                contract.STAGE_KEY: ["live"],
                contract.TENANT_ID_KEY: [acct["tenant"]],
                contract.CLIENT_ID_KEY: [acct["app"]],
                contract.SECRET_EXPIRES_KEY: ["2035-01-01"],
                contract.SECRET_HINT_KEY: [acct["secret"][:3]],
            },
        }
        api.create_organization(rep)
        org = api.organization_by_alias(acct["id"])
        assert org is not None
        return str(org["id"])

    def seed_organizations(self, accounts: list[dict[str, Any]]) -> float:
        started = time.perf_counter()
        local: dict[int, KeycloakRepository] = {}

        def one(acct: dict[str, Any]) -> None:
            import threading

            key = threading.get_ident()
            if key not in local:
                local[key] = KeycloakRepository.for_tooling(self.settings)
            acct["org_id"] = self.organization(local[key], acct)
            make_idp(local[key], acct)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(one, accounts))
        return time.perf_counter() - started

    def env(self, **extra: str) -> dict[str, str]:
        s = self.settings
        env = {k: v for k, v in os.environ.items() if not k.startswith(("APSIS_SSO_", "APSIS_SYNC_"))}
        env.update(
            {
                "APSIS_SSO_KEYCLOAK_URL": s.keycloak_url,
                "APSIS_SSO_REALM": s.realm,
                "APSIS_SSO_KEYCLOAK_CLIENT_SECRET": s.keycloak_client_secret.get_secret_value(),  # type: ignore[union-attr]
                "APSIS_SSO_ENTRA_AUTHORITY": s.entra_authority,
                "APSIS_SSO_GRAPH_BASE_URL": s.graph_base_url,
                "APSIS_SSO_ENTRA_CA_BUNDLE": str(s.entra_ca_bundle),
                "APSIS_SYNC_DATA_DIR": str(self.tmp / "sync"),
                "APSIS_SYNC_SECRETS_DIR": str(self.secrets),
                "APSIS_SYNC_GUARD_MAX_USERS": "1000000",
                "APSIS_SYNC_GUARD_MAX_PERCENT": "100",
                "APSIS_SYNC_LOG_LEVEL": "WARNING",
            }
        )
        env.update(extra)
        return env


def run_daemon(
    world: World, *args: str, env: dict[str, str] | None = None, profile: Path | None = None
) -> dict[str, Any]:
    """One ``apsis-sync run --once`` process: wall seconds, its own CPU seconds (``os.wait4``),
    its peak RSS and its JSON report.

    The peak RSS is the process's own ``VmHWM``, written by an ``atexit`` hook as it ends:
    ``ru_maxrss`` would not do, because Linux carries the parent's high-water mark over
    ``fork``/``exec`` into the child's, and the parent here is the benchmark holding the
    emulator (about 190 MB with 100,000 users)."""
    hwm = world.tmp / "daemon.vmhwm"
    hwm.unlink(missing_ok=True)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", _WITH_HWM, "run", "--once", "-o", "json", *args],
        cwd=ROOT,
        env={**(env or world.env()), "BENCH_VMHWM_FILE": str(hwm)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    spy = start_py_spy(proc.pid, profile, idle=True) if profile else None  # ends with the daemon
    import threading

    chunks: dict[str, bytes] = {}

    def drain(name: str, stream: Any) -> None:
        chunks[name] = stream.read()

    threads = [threading.Thread(target=drain, args=(n, s)) for n, s in (("out", proc.stdout), ("err", proc.stderr))]
    for t in threads:
        t.start()
    _, status, usage = os.wait4(proc.pid, 0)
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    if spy is not None:
        spy.wait(timeout=120)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"apsis-sync exited {code}: {chunks.get('err', b'')[-2000:].decode()}")
    report = json.loads(chunks["out"].decode().strip().splitlines()[-1])
    rss_kb = int(hwm.read_text()) if hwm.exists() else 0
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_mb": rss_kb / 1024, "report": report}


# ``python -m sync ARGS``, writing the process's own peak RSS (kB) to $BENCH_VMHWM_FILE at exit.
_WITH_HWM = """
import atexit, os, runpy, sys
def _hwm():
    status = open('/proc/self/status').read()
    open(os.environ['BENCH_VMHWM_FILE'], 'w').write(status.split('VmHWM:')[1].split()[0])
atexit.register(_hwm)
sys.argv = ['apsis-sync', *sys.argv[1:]]
runpy.run_module('sync', run_name='__main__', alter_sys=True)
"""


# -- idle ---------------------------------------------------------------------------------


def run_loop(
    world: World,
    env: dict[str, str],
    idle_cycles: int = 3,
    root: Path = ROOT,
    profile: Path | None = None,
    cprofile: Path | None = None,
) -> list[dict[str, Any]]:
    """The daemon as deployed (``apsis-sync run``, logs at INFO drained from its stderr,
    ``/metrics`` served and scraped every 5 s), measured from outside as the operating system
    sees it: a first cycle, then ``idle_cycles`` idle ones; stopped with SIGTERM.

    Per cycle: the daemon's own ``seconds`` (its report: the event loop's part only, after
    the account listing) and the cycle as an observer sees it (from the scheduler starting
    the job, a timestamp the wrapper writes, to its report line on stdout: the Keycloak
    listing, the state's bookkeeping and the report are in); the CPU of the whole process (utime + stime of
    ``/proc/<pid>/stat``: every thread, the metrics server's too) over the same window, and
    of its event-loop thread apart (``/proc/<pid>/task/<pid>/stat``); the peak RSS
    (``VmHWM``, what ``/usr/bin/time -v`` reports as maximum resident set size).

    ``root``: the checkout whose ``sync`` package runs (``--compare``: an older commit's
    worktree, same Python environment). ``profile``: py-spy from the end of the first cycle
    to the end of the last. ``cprofile``: cProfile of the event-loop thread over the idle
    cycles (pstats file)."""
    import signal
    import socket
    import threading

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **env,
        "APSIS_SYNC_LOG_LEVEL": "INFO",
        "APSIS_SYNC_METRICS_PORT": str(port),
        "APSIS_SYNC_METRICS_ADDRESS": "127.0.0.1",
    }
    starts = world.tmp / "cycle-starts"
    starts.write_text("")
    argv = [sys.executable, "-c", _WITH_CPROFILE, "run", "--interval", "10", "-o", "json"]
    proc = subprocess.Popen(
        argv,
        cwd=root,
        env={**env, "BENCH_CPROFILE_FILE": str(cprofile or ""), "BENCH_CYCLE_STARTS": str(starts)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    tick = os.sysconf("SC_CLK_TCK")
    tail: list[str] = []
    done = threading.Event()

    def drain_logs() -> None:  # INFO logs are written as deployed, and kept only for an error
        assert proc.stderr is not None
        for line in proc.stderr:
            tail.append(line)
            del tail[:-20]

    def scrape() -> None:  # what Prometheus does
        while not done.wait(5.0):
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)

    def cpu(task: str = "") -> float:
        path = f"/proc/{proc.pid}/task/{proc.pid}/stat" if task else f"/proc/{proc.pid}/stat"
        fields = Path(path).read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick

    for target in (drain_logs, scrape):
        threading.Thread(target=target, daemon=True).start()
    out: list[dict[str, Any]] = []
    world.emulator.clear_requests_log()
    before, loop_before = cpu(), cpu("loop")
    spy: subprocess.Popen[bytes] | None = None
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            now = time.monotonic()  # CLOCK_MONOTONIC: the same clock as the daemon's marks
            report = json.loads(line)
            started = float(starts.read_text().split()[len(out)])
            used, loop_used = cpu(), cpu("loop")
            counts = world.emulator.request_counts()
            world.emulator.clear_requests_log()
            out.append(
                {
                    "seconds": report["seconds"],
                    "observed_s": now - started,
                    "cpu": used - before,
                    "loop_cpu": loop_used - loop_before,
                    "counts": counts,
                    "accounts": len(report["accounts"]),
                    "failed": [a["id"] for a in report["accounts"] if a["status"] != "ok"][:5],
                    "rss_mb": int(Path(f"/proc/{proc.pid}/status").read_text().split("VmHWM:")[1].split()[0]) / 1024,
                    "load": uptime(),
                }
            )
            before, loop_before = used, loop_used
            if len(out) == 1:
                if profile is not None:
                    spy = start_py_spy(proc.pid, profile)
                if cprofile is not None:
                    proc.send_signal(signal.SIGUSR1)  # start profiling the event loop
            if len(out) == idle_cycles + 1:
                break
        if len(out) < idle_cycles + 1:
            proc.wait(timeout=120)
            raise RuntimeError(f"apsis-sync exited {proc.returncode} after {len(out)} cycles: {''.join(tail)[-2000:]}")
    finally:
        done.set()
        if spy is not None:
            stop_py_spy(spy)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    return out


# ``python -m sync ARGS``, appending the monotonic time each cycle starts (the scheduler
# calling ``run_once``) to $BENCH_CYCLE_STARTS; with $BENCH_CPROFILE_FILE, SIGUSR1 starts
# cProfile on the main thread (the event loop), the stats written to that file at exit.
_WITH_CPROFILE = """
import atexit, cProfile, os, runpy, signal, sys, time
import sync.scheduler
_run_once = sync.scheduler.run_once
def run_once(*args, **kwargs):
    with open(os.environ['BENCH_CYCLE_STARTS'], 'a') as marks:
        marks.write(f'{time.monotonic()}\\n')
    return _run_once(*args, **kwargs)
sync.scheduler.run_once = run_once
path = os.environ.get('BENCH_CPROFILE_FILE')
if path:
    prof = cProfile.Profile()
    signal.signal(signal.SIGUSR1, lambda *a: prof.enable())
    atexit.register(lambda: (prof.disable(), prof.dump_stats(path)))
sys.argv = ['apsis-sync', *sys.argv[1:]]
runpy.run_module('sync', run_name='__main__', alter_sys=True)
"""


def start_py_spy(pid: int, out: Path, idle: bool = False) -> subprocess.Popen[bytes]:
    """py-spy (``$PY_SPY`` or on PATH; ``pip install py-spy``) sampling ``pid`` at 250 Hz into
    ``out`` as collapsed stacks per thread; ``idle`` keeps the samples of waiting threads too
    (wall-clock rather than CPU). Only for ``--profile``: it costs the daemon a little CPU."""
    import shutil

    exe = os.environ.get("PY_SPY") or shutil.which("py-spy")
    if not exe:
        raise SystemExit("error: --profile needs py-spy (pip install py-spy; or set PY_SPY to its path)")
    args = [exe, "record", "--pid", str(pid), "--rate", "250", "--threads", "--format", "raw", "-o", str(out)]
    spy = subprocess.Popen(args + (["--idle"] if idle else []), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.5)  # attached before the work to profile starts
    return spy


def stop_py_spy(spy: subprocess.Popen[bytes]) -> None:
    import signal

    spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
    spy.wait(timeout=60)


def bench_idle(
    world: World,
    sizes: list[int],
    latency_ms: int,
    workers: int,
    profile: Path | None = None,
    *,
    idle_cycles: int = 3,
    compare: Path | None = None,
    once: bool = True,
) -> list[dict[str, Any]]:
    """At each size, the daemon of this checkout (``new``) and, with ``compare``, of that
    checkout (``old``) one after the other on the same accounts, each with a state of its own."""
    out = []
    made = 0
    variants = [("new", ROOT)] + ([("old", compare)] if compare else [])
    for n in sorted(sizes):
        new = [world.account(f"idle{i}") for i in range(made, n)]
        seed = world.seed_organizations(new)
        print(
            f"[idle] {n} accounts seeded in {seed:.0f} s (load {uptime()}); daemon cycles next",
            file=sys.stderr,
            flush=True,
        )
        made = n
        world.emulator.configure(graph_latency_ms=latency_ms, token_latency_ms=latency_ms)
        for label, root in variants:
            env = world.env(APSIS_SYNC_WORKERS=str(workers), APSIS_SYNC_DATA_DIR=str(world.tmp / f"sync-{label}"))
            cycles = run_loop(
                world,
                env,
                idle_cycles,
                root,
                profile=profile / f"idle-{n}-{label}.txt" if profile and _have_py_spy() else None,
                cprofile=profile / f"idle-{n}-{label}.pstats" if profile else None,
            )
            row = idle_row(n, cycles, latency_ms, workers)
            row.update(variant=label, seed_s=round(seed, 1))
            print(
                f"[idle] {label}: first cycle {cycles[0]['seconds']:.0f} s, idle cycles "
                + ", ".join(f"{c['observed_s']:.1f}" for c in cycles[1:])
                + " s",
                file=sys.stderr,
                flush=True,
            )
            if once and label == "new":
                # ``run --once`` right after: a new process, so a token per account again.
                world.emulator.clear_requests_log()
                run = run_daemon(world, env=env)
                once_graph = sum(_graph_requests(world.emulator.request_counts()).values())
                once_ideal = once_graph * latency_ms / 1000 / workers
                row.update(
                    once_s=round(run["wall"], 2),
                    once_ideal_s=round(once_ideal, 2),
                    once_ratio=round(run["wall"] / once_ideal, 2) if once_ideal else None,
                    once_requests_per_tenant=round(once_graph / n, 3),
                    once_cpu_s=round(run["cpu"], 2),
                )
            out.append(row)
            print(json.dumps(row), flush=True)
    world.emulator.configure(graph_latency_ms=0, token_latency_ms=0)
    return out


def _have_py_spy() -> bool:
    import shutil

    return bool(os.environ.get("PY_SPY") or shutil.which("py-spy"))


def _graph_requests(counts: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in counts.items() if k == "token" or k.startswith("graph")}


def idle_row(n: int, cycles: list[dict[str, Any]], latency_ms: int, workers: int) -> dict[str, Any]:
    """One size's idle figures: medians over the idle cycles (``cycles[1:]``), each against
    its ideal ``Graph requests x latency / workers``; the daemon's own figures beside the
    observer's."""
    from statistics import median

    first, idle = cycles[0], cycles[1:]
    graph = median(sum(_graph_requests(c["counts"]).values()) for c in idle)
    ideal = graph * latency_ms / 1000 / workers
    observed = median(c["observed_s"] for c in idle)
    reported = median(c["seconds"] for c in idle)
    cpu = median(c["cpu"] for c in idle)
    loop_cpu = median(c["loop_cpu"] for c in idle)
    return {
        "tenants": n,
        "first_cycle_s": round(first["observed_s"], 2),
        "first_requests_per_tenant": round(sum(first["counts"].values()) / n, 2),
        "idle_cycles": len(idle),
        "idle_cycle_s": round(observed, 2),
        "idle_cycle_reported_s": round(reported, 2),
        "ideal_s": round(ideal, 2),
        "ratio_to_ideal": round(observed / ideal, 2) if ideal else None,
        "reported_ratio_to_ideal": round(reported / ideal, 2) if ideal else None,
        "graph_requests_per_tenant": round(graph / n, 3),
        "requests": idle[-1]["counts"],
        "idle_cpu_s": round(cpu, 2),
        "idle_cpu_ms_per_tenant": round(cpu * 1000 / n, 2),
        "loop_cpu_ms_per_tenant": round(loop_cpu * 1000 / n, 2),
        "cpu_per_cycle_s": [round(c["cpu"], 2) for c in idle],
        "daemon_peak_rss_mb": round(idle[-1]["rss_mb"], 1),
        "failed": idle[-1]["failed"],
        "load": idle[-1]["load"],
        "latency_ms": latency_ms,
        "workers": workers,
    }


# -- initial sync ----------------------------------------------------------------------


def emulator_alone(world: World, acct: dict[str, Any]) -> tuple[float, int]:
    """The same listing paged by plain httpx: what the emulator itself costs."""
    em = world.emulator
    ctx = ssl.create_default_context(cafile=str(em.ca_bundle))
    with httpx.Client(verify=ctx, timeout=120) as c:
        token = c.post(
            em.token_endpoint(acct["tenant"]),
            data={
                "grant_type": "client_credentials",
                "client_id": acct["app"],
                "client_secret": acct["secret"],
                "scope": "https://graph.microsoft.com/.default",
            },
        ).json()["access_token"]
        url = f"{em.graph_base_url}/users/delta?$select=id,accountEnabled,mail,userPrincipalName"
        started, pages = time.perf_counter(), 0
        while url:
            doc = c.get(url, headers={"Authorization": f"Bearer {token}"}).json()
            pages += 1
            url = doc.get("@odata.nextLink")
        return time.perf_counter() - started, pages


def seed_members(world: World, acct: dict[str, Any], count: int) -> float:
    """``count`` APSIS One users, members of the account, every other one linked (partialImport
    for the users and their links, then memberships 8 at a time)."""
    started = time.perf_counter()
    admin = KeycloakRepository.for_admin(world.settings)
    users = []
    for i in range(count):
        email = f"u{i}@{acct['domain']}"
        rep: dict[str, Any] = {"username": email, "email": email, "enabled": True, "emailVerified": True}
        if i % 2 == 0:
            rep["federatedIdentities"] = [
                {"identityProvider": f"entra-{acct['id']}", "userId": acct["oids"][i], "userName": email}
            ]
        users.append(rep)
    for i in range(0, len(users), 2000):
        admin.admin.connection.raw_post(
            f"admin/realms/{world.settings.realm}/partialImport",
            data=json.dumps({"ifResourceExists": "SKIP", "users": users[i : i + 2000]}),
        )
    ids = [u["id"] for u in admin.users(search=f"*@{acct['domain']}", briefRepresentation="true")]
    assert len(ids) == count, (len(ids), count)
    local: dict[int, KeycloakRepository] = {}

    def add(user_id: str) -> None:
        import threading

        key = threading.get_ident()
        if key not in local:
            local[key] = KeycloakRepository.for_tooling(world.settings)
        local[key].add_member(acct["org_id"], user_id)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(add, ids))
    return time.perf_counter() - started


def make_idp(api: KeycloakRepository, acct: dict[str, Any]) -> None:
    """The account's IdP, for its links (a minimal one: the daemon only reads links)."""
    api.create_identity_provider(
        {
            "alias": f"entra-{acct['id']}",
            "providerId": "oidc",
            "enabled": True,
            "config": {
                "clientId": acct["app"],
                "clientSecret": "x",
                "authorizationUrl": "https://example.invalid/a",
                "tokenUrl": "https://example.invalid/t",
            },
        }
    )


def bench_initial(
    world: World, sizes: list[int], share: float, latency_ms: int, profile: Path | None = None
) -> list[dict[str, Any]]:
    out = []
    for n in sorted(sizes):
        acct = world.account(f"big{n}", users=n)
        world.seed_organizations([acct])
        members = int(n * share)
        seed = seed_members(world, acct, members)
        alone, pages = emulator_alone(world, acct)
        world.emulator.configure(graph_latency_ms=latency_ms, token_latency_ms=latency_ms)
        load = uptime()
        run = run_daemon(world, "--account", acct["id"], profile=profile / f"initial-{n}.txt" if profile else None)
        # The same pages chained by plain httpx with the same latency, right after: what one
        # client reading page after page gets on this machine at this load (the daemon's floor).
        paged, _ = emulator_alone(world, acct)
        world.emulator.configure(graph_latency_ms=0, token_latency_ms=0)
        result = run["report"]["accounts"][0]
        row = {
            "users": n,
            "members": members,
            "seed_members_s": round(seed, 1),
            "pages": pages,
            "emulator_alone_s": round(alone, 2),
            "wall_s": round(run["wall"], 2),
            "cpu_s": round(run["cpu"], 2),
            "cpu_ms_per_user": round(run["cpu"] * 1000 / n, 3),
            "peak_rss_mb": round(run["rss_mb"], 1),
            "latency_floor_s": round(pages * latency_ms / 1000, 2),
            "plain_paging_s": round(paged, 2),
            "ratio_to_plain_paging": round(run["wall"] / paged, 2),
            "status": result["status"],
            "mode": result["mode"],
            "load": load,
            "latency_ms": latency_ms,
        }
        out.append(row)
        print(json.dumps(row), flush=True)
    return out


# -- deactivations ------------------------------------------------------------------------


def bench_deactivations(world: World, members: int, deleted: int) -> dict[str, Any]:
    acct = world.account("deact", users=members)
    world.seed_organizations([acct])
    seed_members(world, acct, members)
    # Link every member but ``deleted`` of them (the incremental cycle finds a linked leaver
    # through the links read, one who never signed in with SSO through the by-address read).
    admin = KeycloakRepository.for_tooling(world.settings)
    linked = {r["oid"] for r in admin.idp_links(f"entra-{acct['id']}")}
    unlinked = [oid for oid in acct["oids"] if oid not in linked][-deleted:]
    for i, oid in enumerate(acct["oids"]):
        if oid not in linked and oid not in unlinked:
            user = admin.users_by_email(f"u{i}@{acct['domain']}")[0]
            admin.link_user(user["id"], f"entra-{acct['id']}", oid, user["email"])
    out: dict[str, Any] = {"members": members, "deleted_per_run": deleted, "load": uptime()}
    run_daemon(world, "--account", acct["id"])  # first sync: delta link stored
    victims = iter(oid for oid in acct["oids"] if oid not in unlinked)
    for label, concurrency in (("c1", 1), ("c8", 8), ("unlinked_c8", 8)):
        for _ in range(deleted):
            world.emulator.delete_user(acct["tenant"], next(victims) if label != "unlinked_c8" else unlinked.pop())
        with ReverseProxy.to(world.settings.keycloak_url) as proxy:
            env = world.env(APSIS_SSO_KEYCLOAK_URL=proxy.url, APSIS_SYNC_KEYCLOAK_CONCURRENCY=str(concurrency))
            run = run_daemon(world, "--account", acct["id"], env=env)
        requests = [r for r in proxy.requests if "/protocol/openid-connect/token" not in r]
        applied = run["report"]["accounts"][0]["applied"]
        out[label] = {
            "seconds": round(run["wall"], 2),
            "applied": applied,
            "keycloak_requests": len(requests),
            "writes": len(proxy.writes),
            "requests_per_deactivated": round(len(requests) / max(applied, 1), 2),
            "by_kind": _kinds(requests),
        }
    # A full resync's link reads: the links resource against one GET per linked member.
    tooling = KeycloakRepository.for_tooling(world.settings)
    alias = f"entra-{acct['id']}"
    before, started = tooling.requests, time.perf_counter()
    bulk = list(tooling.idp_links(alias))
    out["links_bulk"] = {
        "links": len(bulk),
        "requests": tooling.requests - before,
        "seconds": round(time.perf_counter() - started, 3),
    }
    before, started = tooling.requests, time.perf_counter()
    for user in tooling.linked_users(alias):
        tooling.federated_identities(user["id"])
    out["links_per_user"] = {"requests": tooling.requests - before, "seconds": round(time.perf_counter() - started, 3)}
    out["links_speedup"] = round(out["links_per_user"]["seconds"] / max(out["links_bulk"]["seconds"], 1e-6), 1)
    print(json.dumps(out), flush=True)
    return out


def _kinds(requests: list[str]) -> dict[str, int]:
    """Requests by method and path with ids blanked: where a cycle's requests go."""
    kinds: dict[str, int] = {}
    for r in requests:
        kind = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "{id}", r)
        kinds[kind] = kinds.get(kind, 0) + 1
    return dict(sorted(kinds.items(), key=lambda kv: -kv[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["idle", "initial", "deactivations", "all"])
    parser.add_argument("--tenants", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--users", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--members", type=float, default=0.1, help="share of users who are APSIS One members (initial)")
    parser.add_argument("--deact-members", type=int, default=200)
    parser.add_argument("--deleted", type=int, default=20)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--idle-cycles", type=int, default=3, help="idle cycles measured after the first (idle)")
    parser.add_argument(
        "--compare",
        type=Path,
        metavar="CHECKOUT",
        help="idle: also run the daemon of that checkout (e.g. a worktree of an older commit), same accounts",
    )
    parser.add_argument("--no-once", action="store_true", help="idle: skip the run --once process after the loop")
    parser.add_argument("--quick", action="store_true", help="small sizes: 100 tenants, 1,000 users, 100 members")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="profile the daemon into DIR: idle: cProfile of its event-loop thread over the idle cycles "
        "(idle-N-VARIANT.pstats), and py-spy CPU samples when py-spy is installed; initial: py-spy of its "
        "whole run, waits included; bench/profile_split.py sums py-spy files by component",
    )
    args = parser.parse_args()
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    if args.quick:
        args.tenants, args.users, args.deact_members, args.deleted = [100], [1000], 100, 10
    results: dict[str, Any] = {"load_at_start": uptime()}
    with tempfile.TemporaryDirectory() as tmp:
        world = World(Path(tmp))
        try:
            if args.what in ("idle", "all"):
                results["idle"] = bench_idle(
                    world,
                    args.tenants,
                    args.latency_ms,
                    args.workers,
                    args.profile,
                    idle_cycles=args.idle_cycles,
                    compare=args.compare,
                    once=not args.no_once,
                )
            if args.what in ("initial", "all"):
                results["initial"] = bench_initial(world, args.users, args.members, args.latency_ms, args.profile)
            if args.what in ("deactivations", "all"):
                results["deactivations"] = bench_deactivations(world, args.deact_members, args.deleted)
        finally:
            world.close()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
