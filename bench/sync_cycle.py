"""What one apsis-sync cycle costs for an account of N users, by kind of cycle.

Side by side in one run, against one real Keycloak and the Entra emulator, for one account
whose N users exist in Entra and as members in Keycloak (half of them linked to the IdP):

* ``full``:        a full resync (no delta link: first sync, lost state, expired token);
* ``incremental``: a delta round with no change (the steady state, every 5 minutes);
* ``deletions``:   a delta round in which K users were deleted in Entra (deactivated).

Kinds alternate round by round so machine noise hits all alike; the report is medians and
the ratio of each to the steady state.

    .venv/bin/python bench/sync_cycle.py --users 500 --rounds 3 --deletions 5
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
from provisioning import onboarding  # noqa: E402
from provisioning.realm import apply_realm  # noqa: E402
from sync.accounts import discover  # noqa: E402
from sync.runtime import Runtime  # noqa: E402
from sync.scheduler import run_cycle  # noqa: E402
from sync.settings import SyncSettings  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--deletions", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, EntraEmulator(state_dir=Path(tmp) / "entra") as emulator:
        server = KeycloakServer(truststore_paths=[Path(emulator.ca_bundle)])
        server.start()
        try:
            result = run(server, emulator, Path(tmp), args.users, args.rounds, args.deletions)
        finally:
            server.stop()
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"one account, {result['users']} users, {result['rounds']} rounds, median seconds per cycle:")
        for kind in ("incremental", "deletions", "full"):
            print(f"  {kind:<12} {result[kind + '_median_s']:.3f}  ({result[kind + '_ratio']:.1f}x incremental)")
        print(
            f"  Graph requests: full {result['full_graph_requests']}, incremental {result['incremental_graph_requests']}"
        )
    return 0


def run(server: KeycloakServer, emulator: EntraEmulator, tmp: Path, users: int, rounds: int, deletions: int) -> dict:
    settings = local_settings(server.url, server.admin_password, emulator)
    apply_realm(KeycloakRepository.for_admin(settings), settings)
    api = KeycloakRepository.for_tooling(settings)
    emulator.set_delta_page_size(100)
    acct = AccountFactory(api=api, settings=settings, emulator=emulator, prefix="bench").create(stage="live")
    people: list[tuple[str, str]] = []
    for n in range(users):
        email = f"user{n}@{acct.domain}"
        oid = emulator.add_user(acct.tenant_id, email, "pw", mail=email).oid
        user_id = create_apsis_user(api, email)
        api.add_member(acct.org_id, user_id)
        if n % 2 == 0:
            api.link_user(user_id, acct.alias, oid, email)
        people.append((email, oid))

    sync_settings = SyncSettings(
        _env_file=None,
        data_dir=tmp / "sync",
        guard_max_users=10_000,  # type: ignore[call-arg]
        guard_max_percent=100,
    )
    rt = Runtime.build(settings, sync_settings)
    rt.secrets.put(acct.id, SecretStr(acct.secret))  # type: ignore[attr-defined]
    account = discover(api, [acct.id])

    timings: dict[str, list[float]] = {"full": [], "incremental": [], "deletions": []}
    requests: dict[str, int] = {}
    victims = iter(people)
    for _ in range(rounds):
        for kind in ("full", "incremental", "deletions"):
            if kind == "full":
                rt.state.forget_delta_link(acct.id)
            if kind == "deletions":
                for _ in range(deletions):
                    emulator.delete_user(acct.tenant_id, next(victims)[1])
            started = time.perf_counter()
            report = run_cycle(rt, account)
            timings[kind].append(time.perf_counter() - started)
            result = report.result(acct.id)
            if result.status != "ok" or result.mode != ("full" if kind == "full" else "incremental"):
                raise RuntimeError(f"{kind} cycle: {result.status} {result.mode} {result.errors}")
            if kind == "deletions" and result.applied != deletions:
                raise RuntimeError(f"deletions cycle deactivated {result.applied}, expected {deletions}")
            requests[kind] = result.graph_requests
    base = statistics.median(timings["incremental"])
    rt.close()
    onboarding.delete(api, settings, acct.id)
    out: dict = {"users": users, "rounds": rounds, "deletions_per_round": deletions}
    for kind, values in timings.items():
        out[f"{kind}_median_s"] = statistics.median(values)
        out[f"{kind}_ratio"] = statistics.median(values) / base
        out[f"{kind}_graph_requests"] = requests[kind]
    return out


if __name__ == "__main__":
    raise SystemExit(main())
