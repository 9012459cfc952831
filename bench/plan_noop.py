"""What a no-change plan costs, and how it grows with the number of accounts.

One throwaway Keycloak (dev mode). The realm grows through ``--sizes`` (default 1,000 then
10,000 accounts), created the way `apply -f` creates them (the library path, ``--parallel``);
at each size, side by side in one run:

* ``library``: ``declarative.plan`` over every account, as `apsis-sso plan -f` runs it after
  loading the file: paged listings of organizations and identity providers (200 a page) and
  one listing of every IdP mapper (the extension's ``apsis-sso/idp-mappers``);
* ``per_provider``: the same plan reading each IdP's mappers with its own request (what a
  plan did before the listing, and what it still does against an older extension);
* ``cli``: the `apsis-sso plan -f accounts.yaml --detailed-exitcode` process on a file of
  those accounts, start-up, YAML and all;
* ``naive`` (sizes up to ``--naive-up-to``): one account at a time (``Snapshot.for_account``:
  its organization, its IdP, a search per domain and one for its name, its mappers).

Reports Admin API requests (``KeycloakRepository.requests``) and seconds (median of
``--rounds``; ``per_provider`` and ``naive`` once), the growth from the smallest size
(seconds per account against the smallest size's), and the CLI plan as a share of creating the
same accounts (the first size's create, measured in this run). Prints the load average.
About 6 minutes with the defaults on a quiet 2-core machine; ``--quick`` (100, 1,000) about 1.

    .venv/bin/python bench/plan_noop.py                    # 1000 -> 10000
    .venv/bin/python bench/plan_noop.py --quick --json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import yaml  # noqa: E402
from _common import accounts, load, made_up_tenants_own_their_domains, ratio, realm, realms_cache, start_keycloak  # noqa: E402

from apsis_core.account import Account  # noqa: E402
from apsis_core.keycloak import KeycloakRepository  # noqa: E402
from apsis_core.settings import Settings  # noqa: E402
from provisioning import declarative, parallel, snapshot  # noqa: E402
from provisioning.accounts import plan_account  # noqa: E402
from provisioning.snapshot import Snapshot  # noqa: E402

PREFIX = "bench"


def create(settings: Settings, batch: list[Account], workers: int) -> float:
    api = _warm(settings)
    started = time.perf_counter()
    plan = declarative.plan(
        api,
        settings,
        declarative.Desired(path=Path("bench.yaml"), accounts=batch),
        check_domains=made_up_tenants_own_their_domains,
    )
    parallel.apply_plan(plan, api, workers=workers)
    return time.perf_counter() - started


def library(settings: Settings, batch: list[Account], *, per_provider: bool = False) -> tuple[int, float]:
    api = _warm(settings)
    saved = snapshot.PER_PROVIDER_COST
    if per_provider:
        snapshot.PER_PROVIDER_COST = 0  # never worth the listing: one request per provider
    try:
        started = time.perf_counter()
        plan = declarative.plan(api, settings, declarative.Desired(path=Path("bench.yaml"), accounts=list(batch)))
        seconds = time.perf_counter() - started
    finally:
        snapshot.PER_PROVIDER_COST = saved
    assert plan.empty, plan.to_json()[:2000]
    return api.requests - 1, seconds


def naive(settings: Settings, batch: list[Account]) -> tuple[int, float]:
    api = _warm(settings)
    started = time.perf_counter()
    for account in batch:
        plan = plan_account(settings, account, Snapshot.for_account(api, account.id, account.domains, account.name))
        assert plan.empty, plan.to_json()[:2000]
    return api.requests - 1, time.perf_counter() - started


def _warm(settings: Settings) -> KeycloakRepository:
    """A fresh connection with its token already fetched (one counted request)."""
    api = KeycloakRepository.for_tooling(settings)
    api.get_realm()
    return api


def accounts_file(batch: list[Account], path: Path) -> None:
    path.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "accounts": [
                    {
                        "id": a.id,
                        "name": a.name,
                        "tenant_id": a.tenant_id,
                        "client_id": a.client_id,
                        "secret_expires": a.secret_expires,
                        "domains": list(a.domains),
                        "it_contact": {"name": a.it_contact.name, "email": a.it_contact.email},
                        "stage": a.stage,
                        "pilot": list(a.pilot),
                    }
                    for a in batch
                ],
            },
            sort_keys=False,
        )
    )


def compile_project() -> None:
    """Bytecode for the checkout's packages, as an installed wheel has it (pip compiles on
    install): run from an editable checkout with PYTHONDONTWRITEBYTECODE set (this machine's
    environment, and the image's), the CLI compiled its own 34 modules on every start, 0.16 s
    of a 1,000-account plan that no deployment pays."""
    import compileall

    root = Path(__file__).resolve().parent.parent
    for package in ("apsis_core", "provisioning"):
        compileall.compile_dir(root / package, quiet=1)


def cli_plan(path: Path, env: dict[str, str]) -> float:
    script = Path(sys.executable).parent / "apsis-sso"
    started = time.perf_counter()
    done = subprocess.run(
        [str(script), "plan", "-f", str(path), "--detailed-exitcode"],
        env=env,
        capture_output=True,
        text=True,
        cwd=path.parent,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"apsis-sso plan exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return seconds


def settings_env(settings: Settings) -> dict[str, str]:
    """The same settings as APSIS_SSO_* variables, for the CLI process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("APSIS_SSO_")}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[f"APSIS_SSO_{name.upper()}"] = json.dumps(value) if isinstance(value, (list, bool)) else str(value)
    return env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000], help="accounts (default 1000 10000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of library and cli at each size (median)")
    parser.add_argument("--workers", type=int, default=parallel.DEFAULT_WORKERS, help="--parallel of the create")
    parser.add_argument("--naive-up-to", type=int, default=1000, help="largest size to time one account at a time")
    parser.add_argument("--quick", action="store_true", help="sizes 100 and 1000, one round")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.rounds = [100, 1000], 1
    sizes = sorted(args.sizes)

    report: dict[str, Any] = {"load_before": load(), "workers": args.workers, "sizes": {}}
    compile_project()
    server, base = start_keycloak()
    try:
        settings = realm(base, "apsis")
        env = settings_env(settings)
        made = 0
        with tempfile.TemporaryDirectory() as tmp:
            for n in sizes:
                batch = accounts(PREFIX, n - made, secret=True, first=made)
                seconds = create(settings, batch, args.workers)
                row: dict[str, Any] = {"create": {"accounts": n - made, "seconds": seconds}}
                print(f"  created {n - made} accounts in {seconds:.1f} s", file=sys.stderr, flush=True)
                made = n
                everything = accounts(PREFIX, n)
                path = Path(tmp) / f"accounts-{n}.yaml"
                accounts_file(everything, path)
                runs: dict[str, list[tuple[int, float]]] = {"library": [], "cli": []}
                misses = []  # the realms cache's misses during each library round (0: all warm)
                for _ in range(args.rounds):
                    before = realms_cache(server)["misses"]
                    runs["library"].append(library(settings, everything))
                    misses.append(int(realms_cache(server)["misses"] - before))
                    runs["cli"].append((0, cli_plan(path, env)))
                for name, results in runs.items():
                    row[name] = {"requests": results[0][0], "seconds": statistics.median(s for _, s in results)}
                row["realms_cache"] = {"misses_per_library_round": misses, **realms_cache(server)}
                requests, seconds = library(settings, everything, per_provider=True)
                row["per_provider"] = {"requests": requests, "seconds": seconds}
                if n <= args.naive_up_to:
                    requests, seconds = naive(settings, everything)
                    row["naive"] = {"requests": requests, "seconds": seconds}
                report["sizes"][n] = row
                print(
                    f"  {n}: "
                    + ", ".join(f"{k} {v['seconds']:.2f} s" for k, v in row.items() if "seconds" in v)
                    + f"; realms cache misses per round {misses}",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        server.stop()
    report["load_after"] = load()

    first = sizes[0]
    # A share of a few per cent: ratio()'s two decimals would print 1.74 % as 2.0 %.
    report["cli_share_of_create"] = round(
        report["sizes"][first]["cli"]["seconds"] / report["sizes"][first]["create"]["seconds"], 4
    )
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"no-change plan, Keycloak 26.7.3 dev mode; load {report['load_before']} -> {report['load_after']}")
    print(f"  {'accounts':>8} {'variant':<13} {'requests':>9} {'seconds':>9} {'growth':>8}")
    for n, row in report["sizes"].items():
        for name in ("library", "cli", "per_provider", "naive"):
            if name in row:
                result = row[name]
                growth = (
                    ratio(result["seconds"], report["sizes"][first][name]["seconds"])
                    if name in report["sizes"][first]
                    else "-"
                )
                print(
                    f"  {n:>8} {name:<13} {result.get('requests', '-') or '-':>9} {result['seconds']:>9.2f} "
                    f"{growth:>7}x"
                )
    for n, row in report["sizes"].items():
        cache = row["realms_cache"]
        print(
            f"  {n:>8} Keycloak realms cache: {cache['entries']:.0f} entries, misses per library round "
            f"{cache['misses_per_library_round']}, {cache['evictions']:.0f} evictions so far"
        )
    print(f"  growth is seconds at N / seconds at {first} ({sizes[-1] // first}x the accounts at the largest size)")
    print(
        f"creating the first {first} accounts: {report['sizes'][first]['create']['seconds']:.1f} s "
        f"(--parallel {args.workers}); the CLI plan of them is {report['cli_share_of_create'] * 100:.1f} % of that"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
