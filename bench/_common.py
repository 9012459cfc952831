"""What the benchmarks share: a throwaway Keycloak, realms of their own, accounts, the Entra
emulator in a process of its own, the machine's load, and ratio tables.

Every benchmark measures its variants side by side in one run and prints ratios; absolute
seconds depend on the machine and its load, so each report carries the load average read
before and after (``uptime``'s three figures), to be quoted with every figure.
"""

from __future__ import annotations

import json
import os
import secrets
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pydantic import SecretStr  # noqa: E402

from apsis_core.account import Account  # noqa: E402
from apsis_core.domain_ownership import Discovery, Verdict, judge_all  # noqa: E402
from apsis_core.keycloak import KeycloakRepository  # noqa: E402
from apsis_core.settings import Settings  # noqa: E402
from devenv.keycloak import KeycloakServer  # noqa: E402
from provisioning.realm import apply_realm  # noqa: E402

TENANT = "0b7c2d3e-0000-4000-8000-00000000beef"
CLIENT = "0b7c2d3e-0000-4000-8000-00000000c11e"


def made_up_tenants_own_their_domains(
    _endpoints: Any, tenant: str, domains: Sequence[str], now: datetime | None
) -> list[Verdict]:
    """The Entra answer a benchmark's made-up tenant would give (``declarative.plan``'s
    ``check_domains``): every domain of an account is verified in its tenant. Real Entra is
    asked once per new domain (a discovery request), which these figures leave out."""
    return judge_all([Discovery(d, "resolved", tenant) for d in domains], tenant, now)


def load() -> str:
    """The load average (1, 5, 15 minutes), as ``uptime`` prints it."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def realms_cache(server: KeycloakServer) -> dict[str, float]:
    """Keycloak's local ``realms`` cache, from its metrics: entries, hits, misses, evictions."""
    wanted = {"number_of_entries": "entries", "hits": "hits", "misses": "misses", "evictions": "evictions"}
    with urllib.request.urlopen(f"http://127.0.0.1:{server.management_port}/metrics") as response:
        text = response.read().decode()
    out = dict.fromkeys(wanted.values(), 0.0)
    for line in text.splitlines():
        name, _, rest = line.partition("{")
        if 'cache="realms"' in rest and name.startswith("vendor_statistics_"):
            key = wanted.get(name.removeprefix("vendor_statistics_"))
            if key:
                out[key] += float(line.rsplit(" ", 1)[1])
    return out


def start_keycloak(
    truststore: list[Path] | None = None,
    *,
    sized_realms_cache: bool = True,
    extra_args: list[str] | None = None,
    quarkus_properties: dict[str, str] | None = None,
) -> tuple[KeycloakServer, Settings]:
    """A throwaway Keycloak (dev mode, in-memory database) and settings for it; the realm of
    those settings is not created yet (``realm``). ``sized_realms_cache=False``: Keycloak's
    default realms cache instead of the project's (``devenv.keycloak.cache_options``)."""
    server = KeycloakServer(
        truststore_paths=list(truststore or []),
        sized_realms_cache=sized_realms_cache,
        extra_args=list(extra_args or []),
        quarkus_properties=dict(quarkus_properties or {}),
    )
    server.start()
    settings = Settings(
        _env_file=None,
        keycloak_url=server.url,  # type: ignore[call-arg]
        keycloak_admin_password=server.admin_password,
        keycloak_client_secret=secrets.token_urlsafe(32),
    )
    return server, settings


def realm(settings: Settings, name: str, **changes: Any) -> Settings:
    """Settings for a fresh realm ``name``, applied (flows, clients, the tooling account)."""
    scoped = settings.model_copy(update={"realm": name, **changes})
    apply_realm(KeycloakRepository.for_admin(scoped), scoped)
    return scoped


def accounts(
    prefix: str, n: int, *, secret: bool = False, tenant: str = TENANT, client: str = CLIENT, first: int = 0
) -> list[Account]:
    """``n`` accounts ``<prefix>00000``..., one domain each, pilot stage."""
    expires = date.today() + timedelta(days=180)
    out = []
    for i in range(first, first + n):
        name = f"{prefix}{i:05d}"
        account = Account.build(
            id=name,
            name=f"Bench {name}",
            tenant_id=tenant,
            client_id=client,
            domains=[f"{name}.bench.example"],
            secret_expires=expires,
            it_contact_name="Bench",
            it_contact_email=f"it@{name}.bench.example",
            pilot=[f"pilot@{name}.bench.example"],
        )
        out.append(
            account.with_changes(client_secret=SecretStr("Bench~" + secrets.token_urlsafe(24))) if secret else account
        )
    return out


@dataclass
class Emulator:
    """The Entra emulator in a process of its own (as Microsoft is: its CPU is not ours),
    driven through its HTTP control API."""

    process: subprocess.Popen[bytes] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __enter__(self) -> Emulator:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devenv.entra_emulator", "--port", "0"], stdout=subprocess.PIPE, cwd=ROOT
        )
        assert self.process.stdout is not None
        self.info = json.loads(self.process.stdout.readline())
        self._ssl = ssl.create_default_context(cafile=self.info["ca_bundle"])
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)

    @property
    def url(self) -> str:
        return str(self.info["url"])

    @property
    def ca_bundle(self) -> Path:
        return Path(self.info["ca_bundle"])

    def control(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url + "/_emulator" + path, method=method, data=data, headers={"content-type": "application/json"}
        )
        with urllib.request.urlopen(request, context=self._ssl) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def app(self, domain: str) -> tuple[str, str, str]:
        """A tenant with ``domain``, an app registration and a secret: (tenant id, app id, secret)."""
        tenant = self.control("POST", "/tenants", {"domains": [domain]})["tenant_id"]
        app = self.control("POST", f"/tenants/{tenant}/applications", {"display_name": "APSIS One SSO"})["app_id"]
        secret = self.control(
            "POST",
            f"/tenants/{tenant}/applications/{app}/secrets",
            {"expires": f"{date.today().year + 2}-01-01T00:00:00Z"},
        )["secret_text"]
        return tenant, app, secret

    def configure(self, **settings: Any) -> None:
        self.control("POST", "/settings", settings)

    def settings_for(self, settings: Settings) -> Settings:
        return settings.model_copy(
            update={
                "entra_authority": self.url,
                "graph_base_url": self.url + "/v1.0",
                "entra_ca_bundle": self.ca_bundle,
            }
        )


def ratio(a: float, b: float) -> float:
    return round(a / b, 2) if b else float("inf")
