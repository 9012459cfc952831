"""What the SSO guard costs on the daily path: a returning user's SSO login.

Side by side in one run, against one real Keycloak and the Entra emulator:

* ``guarded``: the account's identity provider as apsis-sso configures it, with the
  post-broker-login flow that re-checks membership and stage on every login;
* ``plain``:   a second identity provider on the same tenant and app, identical but with
  no post-broker-login flow (what Keycloak does out of the box for a linked user).

Both carry a link for every user (created through the Admin API), so every login measured
is a returning login. Logins alternate between the two variants so machine noise hits
both alike; the report is the ratio of medians.

    .venv/bin/python bench/login_overhead.py --users 20 --rounds 5
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

from apsis_core.keycloak import KeycloakRepository  # noqa: E402
from devenv.entra_emulator import EntraEmulator  # noqa: E402
from devenv.keycloak import KeycloakServer  # noqa: E402
from devenv.login_driver import Browser  # noqa: E402
from provisioning import onboarding  # noqa: E402
from provisioning.links import redirect_uri  # noqa: E402
from provisioning.realm import apply_realm  # noqa: E402
from tests.helpers import AccountFactory, local_settings  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, EntraEmulator(state_dir=Path(tmp)) as emulator:
        server = KeycloakServer(truststore_paths=[Path(emulator.ca_bundle)])
        server.start()
        try:
            result = run(server, emulator, args.users, args.rounds)
        finally:
            server.stop()
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"returning SSO logins, {result['logins_per_variant']} per variant, median seconds:")
        print(f"  plain (no guard) {result['plain_median_s']:.4f}")
        print(f"  guarded          {result['guarded_median_s']:.4f}")
        print(f"  guarded / plain  {result['ratio']:.2f}x")
    return 0


def run(server: KeycloakServer, emulator: EntraEmulator, users: int, rounds: int) -> dict[str, float | int]:
    settings = local_settings(server.url, server.admin_password, emulator)
    apply_realm(KeycloakRepository.for_admin(settings), settings)
    api = KeycloakRepository.for_tooling(settings)
    acct = AccountFactory(api=api, settings=settings, emulator=emulator, prefix="bench").create(stage="live")

    plain = f"{acct.alias}-plain"
    idp = api.identity_provider(acct.alias)
    assert idp is not None
    clone = {k: v for k, v in idp.items() if k not in {"internalId", "organizationId", "alias", "postBrokerLoginFlowAlias"}}
    clone["config"] = {**idp["config"], "clientSecret": acct.secret}
    api.create_identity_provider({**clone, "alias": plain})
    for mapper in api.idp_mappers(acct.alias):
        api.create_idp_mapper(plain, {k: v for k, v in mapper.items() if k != "id"} | {"identityProviderAlias": plain})
    emulator.set_redirect_uris(acct.tenant_id, acct.app_id,
                               [redirect_uri(settings, acct.id), redirect_uri(settings, acct.id) .replace(acct.alias, plain)])

    people = []
    for n in range(users):
        email, user_id = acct.person(f"user{n}", pilot=False)
        oid = emulator.find_user(acct.tenant_id, email).oid
        for alias in (acct.alias, plain):
            api.link_user(user_id, alias, oid, email)
        people.append(email)

    timings: dict[str, list[float]] = {"guarded": [], "plain": []}
    for _ in range(rounds):
        for email in people:
            for variant, alias in (("guarded", acct.alias), ("plain", plain)):
                browser = Browser(settings.keycloak_url, settings.realm, ca_bundle=str(emulator.ca_bundle))
                started = time.perf_counter()
                result = browser.sso_login(email, "Correct-Horse-7", alias)
                elapsed = time.perf_counter() - started
                if not result.ok:
                    raise RuntimeError(f"{variant} login of {email} failed: {result.text[:200]}")
                timings[variant].append(elapsed)
    guarded = statistics.median(timings["guarded"])
    plain_median = statistics.median(timings["plain"])
    onboarding.delete(api, settings, acct.id)
    return {
        "logins_per_variant": len(timings["guarded"]),
        "guarded_median_s": guarded,
        "plain_median_s": plain_median,
        "ratio": guarded / plain_median,
    }


if __name__ == "__main__":
    raise SystemExit(main())
