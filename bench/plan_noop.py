"""What a no-change plan over many accounts costs: bulk snapshot vs. one account at a time.

Onboards N accounts straight into Keycloak through the library (one bulk plan, applied;
no Entra check, so no emulator is needed), then measures, side by side in one run:

* ``bulk``:  what `apsis-sso plan -f accounts.yaml` does (``declarative.plan``): one
  ``Snapshot.load`` (paged listings of organizations and identity providers) and every
  account compared against it, plus one ``GET`` of each IdP's mappers (Keycloak has no
  bulk listing of them, and only the real list shows a mapper deleted by hand);
* ``naive``: the same comparison with ``Snapshot.for_account`` per account (its
  organization, its IdP, a search per domain and one for its name, and its mappers);

reporting Admin API requests (``KeycloakRepository.requests``) and seconds, each the median of
``--rounds`` alternating rounds, and the ratios. With ``--cli`` it also times the real
``apsis-sso plan -f`` process on a file of the N accounts.

    .venv/bin/python bench/plan_noop.py --start --accounts 1000      # own throwaway Keycloak
    .venv/bin/python bench/plan_noop.py --accounts 200               # Keycloak from APSIS_SSO_*
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apsis_core.account import Account  # noqa: E402
from apsis_core.keycloak import KeycloakRepository  # noqa: E402
from apsis_core.settings import Settings  # noqa: E402
from devenv.keycloak import KeycloakServer  # noqa: E402
from provisioning import declarative  # noqa: E402
from provisioning.accounts import plan_account, plan_accounts  # noqa: E402
from provisioning.realm import apply_realm  # noqa: E402
from provisioning.snapshot import Snapshot  # noqa: E402

TENANT = "0b7c2d3e-0000-4000-8000-00000000beef"
CLIENT = "0b7c2d3e-0000-4000-8000-00000000c11e"
BATCH = 100


def desired_accounts(prefix: str, n: int) -> list[Account]:
    expires = date.today() + timedelta(days=180)
    return [
        Account.build(
            id=f"{prefix}{i:05d}", name=f"Bench {prefix}{i:05d}", tenant_id=TENANT, client_id=CLIENT,
            domains=[f"{prefix}{i:05d}.bench.example"], secret_expires=expires, it_contact_name="Bench",
            it_contact_email=f"it@{prefix}{i:05d}.bench.example", pilot=[f"pilot@{prefix}{i:05d}.bench.example"],
        )
        for i in range(n)
    ]


def onboard(api: KeycloakRepository, settings: Settings, accounts: list[Account]) -> float:
    """Create whatever is missing, in batches planned in bulk (the library's fast path)."""
    started = time.monotonic()
    existing = Snapshot.load(api).orgs
    missing = [a for a in accounts if a.id not in existing]
    for first in range(0, len(missing), BATCH):
        batch = [a.with_changes(client_secret=_secret()) for a in missing[first:first + BATCH]]
        plan_accounts(settings, batch, Snapshot.load(api)).apply(api)
        print(f"  onboarded {min(first + BATCH, len(missing))}/{len(missing)}", file=sys.stderr, flush=True)
    return time.monotonic() - started


def _secret() -> Any:
    from pydantic import SecretStr

    return SecretStr("Bench~" + secrets.token_urlsafe(24))


def bulk(settings: Settings, accounts: list[Account]) -> tuple[int, float]:
    api = _warm(settings)
    started = time.monotonic()
    plan = declarative.plan(api, settings, declarative.Desired(path=Path("bench.yaml"), accounts=list(accounts)))
    seconds = time.monotonic() - started
    assert plan.empty, plan.to_json()[:2000]
    return api.requests - 1, seconds


def naive(settings: Settings, accounts: list[Account]) -> tuple[int, float]:
    api = _warm(settings)
    started = time.monotonic()
    for account in accounts:
        snapshot = Snapshot.for_account(api, account.id, account.domains, account.name)
        plan = plan_account(settings, account, snapshot)
        assert plan.empty, plan.to_json()[:2000]
    return api.requests - 1, time.monotonic() - started


def _warm(settings: Settings) -> KeycloakRepository:
    """A fresh connection with its token already fetched (one counted request)."""
    api = KeycloakRepository.for_tooling(settings)
    api.get_realm()
    return api


def cli_plan(settings: Settings, accounts: list[Account], env: dict[str, str]) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "accounts.yaml"
        path.write_text(json.dumps({"accounts": [{
            "id": a.id, "name": a.name, "tenant_id": a.tenant_id, "client_id": a.client_id,
            "secret_expires": a.secret_expires.isoformat(), "domains": list(a.domains),
            "it_contact": {"name": a.it_contact.name, "email": a.it_contact.email},
            "stage": a.stage, "pilot": list(a.pilot)} for a in accounts]}))
        script = Path(sys.executable).parent / "apsis-sso"
        started = time.monotonic()
        done = subprocess.run([str(script), "plan", "-f", str(path), "--detailed-exitcode"], env=env,
                              capture_output=True, text=True, cwd=tmp)
        seconds = time.monotonic() - started
        if done.returncode != 0:
            raise SystemExit(f"apsis-sso plan exited {done.returncode}: {done.stderr.strip()[-500:]}")
        return seconds


def settings_env(settings: Settings) -> dict[str, str]:
    """The same settings as APSIS_SSO_* variables, for the CLI process."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[f"APSIS_SSO_{name.upper()}"] = json.dumps(value) if isinstance(value, (list, bool)) else str(value)
    return env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=1000, help="how many accounts (default 1000)")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds of each approach (median)")
    parser.add_argument("--start", action="store_true", help="start a throwaway Keycloak instead of APSIS_SSO_*")
    parser.add_argument("--prefix", default="bench", help="account id prefix (reuse to skip onboarding)")
    parser.add_argument("--cli", action="store_true", help="also time the apsis-sso plan process")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()

    server: KeycloakServer | None = None
    try:
        if args.start:
            server = KeycloakServer().start()
            settings = Settings(_env_file=None, keycloak_url=server.url, keycloak_admin_password=server.admin_password,  # type: ignore[call-arg]
                                keycloak_client_secret=secrets.token_urlsafe(32))
            apply_realm(KeycloakRepository.for_admin(settings), settings)
        else:
            settings = Settings()
        env = {k: v for k, v in os.environ.items() if not k.startswith("APSIS_SSO_")}
        env.update(settings_env(settings))

        accounts = desired_accounts(args.prefix, args.accounts)
        api = KeycloakRepository.for_tooling(settings)
        print(f"onboarding {args.accounts} accounts into {settings.keycloak_url} realm {settings.realm}", file=sys.stderr)
        onboard_seconds = onboard(api, settings, accounts)
        onboard_requests = api.requests

        results: dict[str, list[tuple[int, float]]] = {"bulk": [], "naive": []}
        for round_ in range(args.rounds):
            results["bulk"].append(bulk(settings, accounts))
            results["naive"].append(naive(settings, accounts))
            print(f"  round {round_ + 1}: bulk {results['bulk'][-1]}, naive {results['naive'][-1]}", file=sys.stderr)
        report: dict[str, Any] = {
            "accounts": args.accounts,
            "keycloak_url": settings.keycloak_url,
            "onboard": {"requests": onboard_requests, "seconds": round(onboard_seconds, 1)},
        }
        for name, runs in results.items():
            report[name] = {"requests": int(statistics.median(r for r, _ in runs)),
                            "seconds": round(statistics.median(s for _, s in runs), 3)}
        report["ratio"] = {
            "requests": round(report["naive"]["requests"] / max(report["bulk"]["requests"], 1), 1),
            "seconds": round(report["naive"]["seconds"] / max(report["bulk"]["seconds"], 1e-9), 1),
        }
        if args.cli:
            report["cli_plan_seconds"] = round(cli_plan(settings, accounts, env), 2)
    finally:
        if server is not None:
            server.stop()

    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"no-change plan over {report['accounts']} accounts (median of {args.rounds} rounds)")
    print(f"  {'':8} {'requests':>9} {'seconds':>9}")
    for name in ("bulk", "naive"):
        print(f"  {name:8} {report[name]['requests']:>9} {report[name]['seconds']:>9.3f}")
    print(f"  {'ratio':8} {report['ratio']['requests']:>8}x {report['ratio']['seconds']:>8}x   (naive / bulk)")
    print(f"onboarding: {report['onboard']['requests']} requests, {report['onboard']['seconds']} s")
    if "cli_plan_seconds" in report:
        print(f"`apsis-sso plan -f` process on the same {report['accounts']} accounts: {report['cli_plan_seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
