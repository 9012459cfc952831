"""Creating accounts: `apply -f` against Keycloak's own bulk import, and with the Entra check.

Side by side in one run, against one throwaway Keycloak (dev mode), each variant in a fresh
realm of its own so none pays for another's data:

* ``partialImport``: Keycloak's ``POST /admin/realms/{realm}/partialImport`` of the same
  identity providers and mappers `apply -f` writes (no organizations: partialImport has
  none), in one request: the reference for what Keycloak itself needs;
* ``library``: what `apply -f` does without the Entra check (``declarative.plan`` and
  ``parallel.apply_plan``): organization, identity provider (with its mappers hash, not yet
  linked), mapper, link: four writes per account, ``--parallel`` accounts at a time (each
  figure of ``--workers``);
* with ``--entra N``: ``library`` and ``checked`` (``declarative.apply``: every account's
  secret proved with the Entra emulator first, each token answer delayed by
  ``--token-latency-ms``, as a far-away Microsoft is) on N accounts.

Prints seconds, Admin API requests per account and the ratios, for each size of ``--sizes``
(growth: seconds per account at each size against the smallest). The load average is
printed with the result. Takes about 2 minutes with the defaults (100 and 1000 accounts),
about 15 with ``--sizes 100 1000 10000``; ``--quick`` is 20 and 100 accounts.

    .venv/bin/python bench/create_accounts.py                       # 100, 1000; entra 100
    .venv/bin/python bench/create_accounts.py --sizes 100 1000 10000 --workers 1 4 8
    .venv/bin/python bench/create_accounts.py --quick --json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Emulator, accounts, load, made_up_tenants_own_their_domains, ratio, realm, start_keycloak  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from apsis_core.keycloak import KeycloakRepository  # noqa: E402
from apsis_core.settings import Settings  # noqa: E402
from provisioning import declarative, parallel  # noqa: E402
from provisioning.render import render  # noqa: E402


def partial_import(settings: Settings, n: int) -> dict[str, Any]:
    """The same IdPs and mappers, in one partialImport request (needs manage-realm: the admin)."""
    # Aliases of their own per size, so a rerun of one size never meets another's providers.
    batch = accounts(f"ref{n}x", n, secret=True)
    idps, mappers = [], []
    for account in batch:
        rendered = render(account, settings)
        idps.append(rendered.identity_provider)
        mappers += [{**m, "identityProviderAlias": account.idp_alias} for m in rendered.mappers]
    # One request doing all the work: it may take longer than a request's usual timeout (a
    # timed-out import still completes in Keycloak, and the retry then answers 409).
    admin = KeycloakRepository.for_admin(settings.model_copy(update={"keycloak_timeout": 900.0}))
    admin.get_realm()  # the token, outside the timing
    body = {"ifResourceExists": "FAIL", "identityProviders": idps, "identityProviderMappers": mappers}
    started = time.perf_counter()
    result = admin.admin.connection.raw_post(f"admin/realms/{settings.realm}/partialImport", data=json.dumps(body))
    seconds = time.perf_counter() - started
    if result.status_code != 200:
        raise SystemExit(f"partialImport answered HTTP {result.status_code}: {result.text[:300]}")
    return {"seconds": seconds, "requests_per_account": 1 / n}


def library(settings: Settings, batch: list[Any], workers: int, *, check: bool = False) -> dict[str, Any]:
    """`apply -f` as the CLI runs it after loading the file: plan, (prove,) apply."""
    api = KeycloakRepository.for_tooling(settings)
    api.get_realm()  # the token, outside the timing
    desired = declarative.Desired(path=Path("bench.yaml"), accounts=list(batch))
    started = time.perf_counter()
    plan = declarative.plan(api, settings, desired, check_domains=made_up_tenants_own_their_domains)
    before = api.requests
    if check:
        declarative.apply(api, settings, desired, plan, workers=workers)
    else:
        parallel.apply_plan(plan, api, workers=workers)
    seconds = time.perf_counter() - started
    assert plan.counts()["create"] == 4 * len(batch), plan.counts()
    return {"seconds": seconds, "requests_per_account": (api.requests - before) / len(batch)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000], help="accounts per run (default 100 1000)")
    parser.add_argument("--workers", type=int, nargs="+", default=[4], help="--parallel figures to measure (default 4)")
    parser.add_argument("--entra", type=int, default=100, help="accounts for the Entra-check rows (0: skip)")
    parser.add_argument("--token-latency-ms", type=int, default=50, help="the emulator's delay per token answer")
    parser.add_argument("--quick", action="store_true", help="20 and 100 accounts, Entra check on 20")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.entra = [20, 100], 20

    report: dict[str, Any] = {"load_before": load(), "sizes": {}, "workers": args.workers}
    server, base = start_keycloak()
    try:
        for n in args.sizes:
            row: dict[str, Any] = {"partialImport": partial_import(realm(base, f"ref{n}"), n)}
            for workers in args.workers:
                row[f"library_p{workers}"] = library(
                    realm(base, f"lib{n}p{workers}"), accounts("lib", n, secret=True), workers
                )
            report["sizes"][n] = row
            print(
                f"  {n} accounts: " + ", ".join(f"{k} {v['seconds']:.1f} s" for k, v in row.items()),
                file=sys.stderr,
                flush=True,
            )
        if args.entra:
            with Emulator() as emulator:
                settings = emulator.settings_for(base)
                batch = []
                for account in accounts("chk", args.entra, secret=True):
                    tenant, app, secret = emulator.app(account.domains[0])
                    batch.append(account.with_changes(tenant_id=tenant, client_id=app, client_secret=SecretStr(secret)))
                emulator.configure(token_latency_ms=args.token_latency_ms)
                workers = args.workers[-1]
                report["entra"] = {
                    "accounts": args.entra,
                    "token_latency_ms": args.token_latency_ms,
                    "workers": workers,
                    "library": library(realm(settings, "entralib"), batch, workers),
                    "checked": library(realm(settings, "entrachk"), batch, workers, check=True),
                }
    finally:
        server.stop()
    report["load_after"] = load()

    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    smallest = min(report["sizes"])
    print(f"creating accounts, Keycloak 26.7.3 dev mode; load {report['load_before']} -> {report['load_after']}")
    print(
        f"  {'accounts':>8} {'variant':<16} {'seconds':>8} {'req/acct':>9} {'x partialImport':>16} {'s/acct growth':>14}"
    )
    for n, row in report["sizes"].items():
        reference = row["partialImport"]["seconds"]
        for name, result in row.items():
            per = result["seconds"] / n
            base_per = report["sizes"][smallest][name]["seconds"] / smallest
            print(
                f"  {n:>8} {name:<16} {result['seconds']:>8.2f} {result['requests_per_account']:>9.2f} "
                f"{ratio(result['seconds'], reference):>15}x {ratio(per, base_per):>13}x"
            )
    if "entra" in report:
        e = report["entra"]
        print(
            f"apply -f of {e['accounts']} accounts with the Entra check ({e['token_latency_ms']} ms per token answer, "
            f"--parallel {e['workers']}): library {e['library']['seconds']:.2f} s, checked {e['checked']['seconds']:.2f} s, "
            f"{ratio(e['checked']['seconds'], e['library']['seconds'])}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
