"""What an idle apsis-sync cycle costs for Okta accounts next to Entra accounts.

Side by side in one run, against one real Keycloak, the Entra emulator and the Okta emulator:
N Entra accounts and N Okta accounts (each with U users, members in Keycloak), synced once
(full listings, tokens), then idle cycles of each kind alternating round by round so machine
noise hits both alike. An idle Entra cycle is one Graph delta request per account (the token is
cached); an idle Okta cycle is one Users API request (``lastUpdated`` filter) and one System Log
request (deletions) per account, the token cached likewise.

    .venv/bin/python bench/okta_idle.py --accounts 20 --users 20 --rounds 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pydantic import SecretStr  # noqa: E402

from apsis_core.keycloak import KeycloakRepository  # noqa: E402
from devenv.accounts import AccountFactory, create_apsis_user, local_settings  # noqa: E402
from devenv.entra_emulator import EntraEmulator  # noqa: E402
from devenv.keycloak import KeycloakServer  # noqa: E402
from devenv.okta_accounts import create_okta_account, okta_settings  # noqa: E402
from devenv.okta_emulator import OktaEmulator  # noqa: E402
from provisioning.realm import apply_realm  # noqa: E402
from sync.accounts import discover  # noqa: E402
from sync.runtime import Runtime  # noqa: E402
from sync.scheduler import run_cycle  # noqa: E402
from sync.settings import SyncSettings  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        EntraEmulator(state_dir=Path(tmp) / "entra") as entra,
        OktaEmulator(ca_from=Path(tmp) / "entra") as okta,
    ):
        server = KeycloakServer(truststore_paths=[Path(entra.ca_bundle)])
        server.start()
        try:
            result = run(server, entra, okta, Path(tmp), args.accounts, args.users, args.rounds)
        finally:
            server.stop()
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{args.accounts} accounts of each kind, {args.users} users each, {args.rounds} idle rounds (medians):")
    for kind in ("entra", "okta"):
        r = result[kind]
        print(
            f"  {kind:<6} {r['wall_ms_per_account']:.1f} ms wall, {r['cpu_ms_per_account']:.1f} ms CPU, "
            f"{r['requests_per_account']:.1f} requests per account per idle cycle"
        )
    print(f"  okta/entra: {result['cpu_ratio']:.2f}x CPU, {result['wall_ratio']:.2f}x wall")
    return 0


def run(
    server: KeycloakServer, entra: EntraEmulator, okta: OktaEmulator, tmp: Path, n: int, users: int, rounds: int
) -> dict:
    base = local_settings(server.url, server.admin_password, entra)
    apply_realm(KeycloakRepository.for_admin(base), base)
    settings = okta_settings(base, okta)
    api = KeycloakRepository.for_tooling(settings)
    sync_settings = SyncSettings(_env_file=None, data_dir=tmp / "sync", guard_max_users=10_000)  # type: ignore[call-arg]
    rt = Runtime.build(settings, sync_settings)
    factory = AccountFactory(api=api, settings=settings, emulator=entra, prefix="ben")
    ids: dict[str, list[str]] = {"entra": [], "okta": []}
    for i in range(n):
        acct = factory.create(stage="live")
        rt.secrets.put(acct.id, SecretStr(acct.secret))  # type: ignore[attr-defined]
        for u in range(users):
            email = f"u{u}@{acct.domain}"
            entra.add_user(acct.tenant_id, email, "pw", mail=email)
            api.add_member(acct.org_id, create_apsis_user(api, email))
        ids["entra"].append(acct.id)
        o = create_okta_account(api, settings, okta, f"beo{i}", stage="live", key_dir=sync_settings.secrets_path)
        for u in range(users):
            email = f"u{u}@{o.domain}"
            okta.add_user(o.org, email, "Pw-12345678")
            api.add_member(o.org_id, create_apsis_user(api, email))
        ids["okta"].append(o.id)
    chosen = {kind: discover(api, ids[kind]) for kind in ids}
    for kind in ids:  # the first cycle: full listings, tokens
        report = run_cycle(rt, chosen[kind])
        bad = [r for r in report.results if r.status != "ok"]
        if bad:
            raise RuntimeError(f"{kind}: {bad[0].account} {bad[0].errors}")
    wall: dict[str, list[float]] = {"entra": [], "okta": []}
    cpu: dict[str, list[float]] = {"entra": [], "okta": []}
    requests: dict[str, float] = {}
    for _ in range(rounds):
        for kind in ("entra", "okta"):
            started, started_cpu = time.perf_counter(), time.process_time()
            report = run_cycle(rt, chosen[kind])
            wall[kind].append((time.perf_counter() - started) * 1000 / n)
            cpu[kind].append((time.process_time() - started_cpu) * 1000 / n)
            if any(r.status != "ok" or r.actions for r in report.results):
                raise RuntimeError(f"{kind}: an idle cycle was not idle")
            requests[kind] = sum(r.graph_requests for r in report.results) / n
    rt.close()
    out: dict = {"accounts": n, "users": users, "rounds": rounds}
    for kind in ("entra", "okta"):
        out[kind] = {
            "wall_ms_per_account": statistics.median(wall[kind]),
            "cpu_ms_per_account": statistics.median(cpu[kind]),
            "requests_per_account": requests[kind],
        }
    out["cpu_ratio"] = out["okta"]["cpu_ms_per_account"] / out["entra"]["cpu_ms_per_account"]
    out["wall_ratio"] = out["okta"]["wall_ms_per_account"] / out["entra"]["wall_ms_per_account"]
    return out


if __name__ == "__main__":
    raise SystemExit(main())
