"""What the extension costs an SSO login: the guard, safe linking, and 10,000 accounts.

Side by side in one run, against one throwaway Keycloak (dev mode) and the Entra emulator (a
process of its own, as Microsoft is). Every login is the whole browser-side round trip of the
login driver: the application's authorization request with ``kc_idp_hint``, Entra's sign-in
form, the broker endpoint, the code exchange. Logins alternate between the variants so the
machine's noise hits each alike; each figure is the median.

Returning logins (the user is linked), variants that differ only in the guard: three identity
providers on one tenant and app, all linked to the account's organization, with the same
mappers, config and first-broker-login flow:

* ``plain``: no guard: ``apsis.managedBy`` left out, so Keycloak's own OIDC provider serves it;
* ``guarded``: as apsis-sso configures it: the guard runs in the identity provider;
* ``flow``: guarded, plus the post-broker-login flow earlier versions ran the guard in (two more
  browser redirects; the check then runs twice): what the guard cost before.

First logins (no link yet; a fresh person each time), differing only in how the link is made:

* ``built-in``: Keycloak's ``idp-detect-existing-broker-user`` + ``idp-auto-link`` flow, plain provider;
* ``safe-link``: ``apsis-safe-link`` and the guard, as apsis-sso configures it.

Scale (``--accounts N``): guarded returning logins in a realm of 10 accounts and in one of N
(default 10,000), alternating.

About 6 minutes with the defaults (most of it creating the 10,000 accounts); ``--quick``
(5 users, 2 rounds, 1,000 accounts) about 2.

    .venv/bin/python bench/login_overhead.py
    .venv/bin/python bench/login_overhead.py --users 20 --rounds 5 --accounts 10000 --json
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Emulator, accounts, load, made_up_tenants_own_their_domains, ratio, realm, start_keycloak  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from apsis_core import contract  # noqa: E402
from apsis_core.keycloak import KeycloakRepository  # noqa: E402
from apsis_core.settings import Settings  # noqa: E402
from devenv.keycloak import KeycloakServer  # noqa: E402
from devenv.login_driver import Browser  # noqa: E402
from provisioning import declarative, parallel  # noqa: E402
from provisioning.links import redirect_uri  # noqa: E402

PASSWORD = "Correct-Horse-7"
BUILT_IN_FLOW = "bench built-in first login"


class Site:
    """One realm with one live account whose tenant is in the emulator, its people, and
    variants of its identity provider."""

    def __init__(self, settings: Settings, emulator: Emulator, name: str, fillers: int = 0) -> None:
        self.settings, self.emulator = settings, emulator
        self.api = KeycloakRepository.for_tooling(settings)
        self.admin = KeycloakRepository.for_admin(settings)
        self.domain = f"{name}.bench.example"
        self.tenant, self.app, secret = emulator.app(self.domain)
        self.secret = secret
        account = accounts(name, 1, tenant=self.tenant, client=self.app)[0].with_changes(
            id=name, domains=(self.domain,), stage="live", pilot=(), client_secret=SecretStr(secret)
        )
        batch = [account, *accounts(f"{name}f", fillers, secret=True)]
        plan = declarative.plan(
            self.api,
            settings,
            declarative.Desired(path=Path("bench.yaml"), accounts=batch),
            check_domains=made_up_tenants_own_their_domains,
        )
        parallel.apply_plan(plan, self.api, workers=parallel.DEFAULT_WORKERS)
        self.alias = account.idp_alias
        org = self.api.organization_by_alias(name)
        assert org is not None
        self.org_id = str(org["id"])
        self.redirects: list[str] = []
        self.register(redirect_uri(settings, name))
        self.people = 0

    def register(self, uri: str) -> None:
        """A redirect URI of the app registration (Entra sends the browser back only there)."""
        self.redirects.append(uri)
        self.emulator.control(
            "PATCH", f"/tenants/{self.tenant}/applications/{self.app}", {"redirect_uris": self.redirects}
        )

    def variant(
        self, suffix: str, *, managed: bool = True, post_flow: str | None = None, first_flow: str | None = None
    ) -> str:
        """A copy of the account's provider, linked to its organization (a link of its own:
        Keycloak 26.7.3 ignores ``organizationId`` in a create)."""
        idp = self.api.identity_provider(self.alias)
        assert idp is not None
        alias = f"{self.alias}-{suffix}"
        config = {**idp["config"], "clientSecret": self.secret}
        if not managed:
            config.pop(contract.MANAGED_BY_KEY)
        rep = {k: v for k, v in idp.items() if k not in {"internalId", "alias", "config", "organizationId"}}
        rep.update(alias=alias, config=config, postBrokerLoginFlowAlias=post_flow or "")
        if first_flow:
            rep["firstBrokerLoginFlowAlias"] = first_flow
        self.api.create_identity_provider(rep)
        self.api.link_organization_idp(self.org_id, alias)
        for mapper in self.api.idp_mappers(self.alias):
            self.api.create_idp_mapper(
                alias, {k: v for k, v in mapper.items() if k != "id"} | {"identityProviderAlias": alias}
            )
        self.register(redirect_uri(self.settings, self.alias.removeprefix("entra-")).replace(self.alias, alias))
        return alias

    def flow(self, alias: str, *steps: str) -> str:
        """A top-level flow of REQUIRED steps (the admin: the tooling may not manage flows)."""
        self.admin.create_flow(
            {"alias": alias, "providerId": "basic-flow", "topLevel": True, "builtIn": False, "description": "benchmark"}
        )
        for step in steps:
            self.admin.add_execution(alias, step)
        for execution in self.admin.executions(alias):
            self.admin.update_execution(alias, {**execution, "requirement": "REQUIRED"})
        return alias

    def person(self, links: tuple[str, ...] = ()) -> str:
        """Someone in the tenant and in APSIS One (a member), linked to ``links``."""
        self.people += 1
        email = f"user{self.people}@{self.domain}"
        oid = self.emulator.control(
            "POST", f"/tenants/{self.tenant}/users", {"user_principal_name": email, "password": PASSWORD, "mail": email}
        )["oid"]
        user_id = self.api.create_user(
            {
                "username": email,
                "email": email,
                "enabled": True,
                "emailVerified": True,
                "firstName": "Bench",
                "lastName": "User",
                "credentials": [{"type": "password", "value": PASSWORD, "temporary": False}],
            }
        )
        self.api.add_member(self.org_id, user_id)
        for alias in links:
            self.api.link_user(user_id, alias, oid, email)
        return email

    def login(self, email: str, alias: str, *, claim: bool = True) -> float:
        """One whole SSO login; with ``claim``, the tokens must name the account (the guard's note)."""
        browser = Browser(self.settings.keycloak_url, self.settings.realm, ca_bundle=str(self.emulator.ca_bundle))
        started = time.perf_counter()
        result = browser.sso_login(email, PASSWORD, alias)
        elapsed = time.perf_counter() - started
        if not result.ok:
            raise RuntimeError(f"login of {email} through {alias} failed: {result.text[:300]}")
        if claim and result.id_claims.get("apsis_account") != self.alias.removeprefix("entra-"):
            raise RuntimeError(f"no apsis_account claim after {alias}: {result.id_claims}")
        return elapsed


def alternate(variants: dict[str, Any], people: int, rounds: int) -> dict[str, float]:
    """Median seconds per variant; ``run(i)`` is one login of person ``i``. The variants take
    turns login by login, and who goes first rotates (a login right after another differs)."""
    SPREAD.clear()
    timings: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    turn = 0
    for _ in range(rounds):
        for i in range(people):
            turn += 1
            for name in names[turn % len(names) :] + names[: turn % len(names)]:
                timings[name].append(variants[name](i))
    for name, values in timings.items():
        quartiles = statistics.quantiles(values, n=4, method="inclusive") if len(values) > 1 else [values[0]] * 3
        SPREAD[name] = {"p25": quartiles[0], "p75": quartiles[2], "logins": len(values)}
    return {name: statistics.median(values) for name, values in timings.items()}


ACCESS_LOG = ["--http-access-log-enabled=true", "--http-access-log-pattern=ACCESS %m %U %s %D"]
# %D (time taken) is "-" unless Quarkus records when a request started; Keycloak has no option for it.
ACCESS_LOG_TIMES = {"quarkus.http.record-request-start-time": "true"}
ACCESS_LINE = re.compile(r"ACCESS (\S+) (\S+) (\d+) (\d+)")


def server_times(server: KeycloakServer, variants: dict[str, Any], logins: int) -> dict[str, dict[str, float]]:
    """Keycloak's own milliseconds per login and per step (its access log's time taken), each
    variant's ``logins`` in a block of their own: where a login's server time goes."""
    assert server.log_file is not None
    out: dict[str, dict[str, float]] = {}
    for name, run in variants.items():
        start = server.log_file.stat().st_size
        for i in range(logins):
            run(i)
        time.sleep(1)  # the access log is written after the response
        with open(server.log_file, "rb") as log:
            log.seek(start)
            text = log.read().decode(errors="replace")
        steps: dict[str, float] = {}
        for method, path, _status, millis in ACCESS_LINE.findall(text):
            if path.startswith("/admin/"):
                continue
            step = f"{method} {_step(path)}"
            steps[step] = steps.get(step, 0.0) + int(millis) / logins
        out[name] = steps
    return out


def _step(path: str) -> str:
    """A request path without the realm, the provider's alias and ids: what step of a login it is."""
    parts = path.split("?", 1)[0].split("/")
    if len(parts) > 3 and parts[1] == "realms":
        parts = parts[3:]
    if parts and parts[0] == "broker" and len(parts) > 2:  # broker/{alias}/login, not broker/after-first-broker-login
        parts[1] = "{alias}"
    return "/".join(parts)


SPREAD: dict[str, dict[str, float]] = {}
"""Per variant of the last ``alternate``: the quartiles around its median, and how many logins."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=10, help="people per variant (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="logins per person and variant (default 3)")
    parser.add_argument("--accounts", type=int, default=10000, help="accounts of the large realm (0: skip scale)")
    parser.add_argument("--quick", action="store_true", help="5 users, 2 rounds, 1000 accounts")
    parser.add_argument(
        "--server-times",
        type=int,
        default=0,
        metavar="N",
        help="also N first logins per variant in blocks, with Keycloak's access log: its milliseconds per login step",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    if args.quick:
        args.users, args.rounds, args.accounts = 5, 2, 1000

    report: dict[str, Any] = {"load_before": load(), "users": args.users, "rounds": args.rounds}
    with Emulator() as emulator:
        server, base = start_keycloak(
            truststore=[emulator.ca_bundle],
            extra_args=ACCESS_LOG if args.server_times else [],
            quarkus_properties=ACCESS_LOG_TIMES if args.server_times else {},
        )
        try:
            base = emulator.settings_for(base)
            site = Site(realm(base, "login"), emulator, "acme")
            site.flow(contract.POST_BROKER_LOGIN_FLOW, contract.SSO_GUARD_AUTHENTICATOR)
            built_in_flow = site.flow(BUILT_IN_FLOW, "idp-detect-existing-broker-user", "idp-auto-link")
            returning = {
                "plain": site.variant("plain", managed=False),
                "guarded": site.alias,
                "flow": site.variant("flow", post_flow=contract.POST_BROKER_LOGIN_FLOW),
            }
            first = {
                "built-in": site.variant("builtin", managed=False, first_flow=built_in_flow),
                "safe-link": site.alias,
            }
            people = [site.person(tuple(returning.values())) for _ in range(args.users)]
            print("  returning logins ...", file=sys.stderr, flush=True)
            medians = alternate(
                {
                    name: (lambda i, a=alias, n=name: site.login(people[i], a, claim=n != "plain"))
                    for name, alias in returning.items()
                },
                args.users,
                args.rounds,
            )
            report["returning"] = {
                **medians,
                "guarded_x_plain": ratio(medians["guarded"], medians["plain"]),
                "flow_x_plain": ratio(medians["flow"], medians["plain"]),
                "spread": dict(SPREAD),
            }
            print("  first logins ...", file=sys.stderr, flush=True)
            medians = alternate(
                {
                    name: (lambda i, a=alias, n=name: site.login(site.person(), a, claim=n == "safe-link"))
                    for name, alias in first.items()
                },
                args.users,
                args.rounds,
            )
            report["first"] = {
                **medians,
                "safe_link_x_built_in": ratio(medians["safe-link"], medians["built-in"]),
                "spread": dict(SPREAD),
            }
            if args.server_times:
                print("  first logins with the access log ...", file=sys.stderr, flush=True)
                fresh = {name: [site.person() for _ in range(args.server_times)] for name in first}  # made up front
                report["first_server_ms"] = server_times(
                    server,
                    {
                        name: (lambda i, a=alias, n=name: site.login(fresh[n][i], a, claim=n == "safe-link"))
                        for name, alias in first.items()
                    },
                    args.server_times,
                )
            if args.accounts:
                print(f"  creating a realm of {args.accounts} accounts ...", file=sys.stderr, flush=True)
                small = Site(realm(base, "scale10"), emulator, "small", fillers=9)
                started = time.perf_counter()
                large = Site(realm(base, "scalebig"), emulator, "large", fillers=args.accounts - 1)
                report["scale_create_seconds"] = time.perf_counter() - started
                by_realm = {
                    "10": (small, [small.person((small.alias,)) for _ in range(args.users)]),
                    str(args.accounts): (large, [large.person((large.alias,)) for _ in range(args.users)]),
                }
                medians = alternate(
                    {name: (lambda i, s=s, ps=ps: s.login(ps[i], s.alias)) for name, (s, ps) in by_realm.items()},
                    args.users,
                    args.rounds,
                )
                report["scale"] = {
                    **medians,
                    "large_x_small": ratio(medians[str(args.accounts)], medians["10"]),
                    "spread": dict(SPREAD),
                }
        finally:
            server.stop()
    report["load_after"] = load()

    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"SSO logins, median seconds; {args.users} people x {args.rounds} rounds per variant; "
        f"load {report['load_before']} -> {report['load_after']}"
    )
    r = report["returning"]
    print(
        f"  returning: plain {r['plain']:.4f}, guarded {r['guarded']:.4f} ({r['guarded_x_plain']}x), "
        f"post-broker flow {r['flow']:.4f} ({r['flow_x_plain']}x)"
    )
    f = report["first"]
    print(
        f"  first:     built-in detect + auto-link {f['built-in']:.4f}, safe-link + guard {f['safe-link']:.4f} "
        f"({f['safe_link_x_built_in']}x)"
    )
    for part in ("returning", "first", "scale"):
        if part in report:
            print(
                f"  {part} quartiles: "
                + ", ".join(
                    f"{name} {q['p25']:.4f}-{q['p75']:.4f} ({q['logins']} logins)"
                    for name, q in report[part]["spread"].items()
                )
            )
    if "first_server_ms" in report:
        times = report["first_server_ms"]
        steps = sorted({step for by_step in times.values() for step in by_step})
        print(f"  Keycloak's milliseconds per first login ({args.server_times} per variant, access log):")
        for step in steps:
            print(f"    {step:<60} " + "  ".join(f"{name} {times[name].get(step, 0):7.1f}" for name in times))
        print(f"    {'total':<60} " + "  ".join(f"{name} {sum(times[name].values()):7.1f}" for name in times))
    if "scale" in report:
        s = report["scale"]
        print(
            f"  scale:     10 accounts {s['10']:.4f}, {args.accounts} accounts {s[str(args.accounts)]:.4f} "
            f"({s['large_x_small']}x; creating them took {report['scale_create_seconds']:.0f} s)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
