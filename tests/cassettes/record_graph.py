"""Record the Graph client layer's calls against a real Entra tenant, credentials filtered.

The cassettes the tests replay (tests/cassettes/graph/) are written by hand from Microsoft's
documentation. This script records the same calls from a real tenant into
tests/cassettes/recorded/ so the shapes can be compared (and the hand-written cassettes
updated) when Microsoft changes something. Use a test tenant: a recording holds its users'
ids, mail addresses and UPNs.

    APSIS_SYNC_RECORD_TENANT_ID=<tenant guid> \\
    APSIS_SYNC_RECORD_CLIENT_ID=<app id> \\
    APSIS_SYNC_RECORD_CLIENT_SECRET_FILE=<file holding the secret> \\
    .venv/bin/python tests/cassettes/record_graph.py [--out DIR]

The secret is read from a file (or APSIS_SYNC_RECORD_CLIENT_SECRET), never from argv. The
Authorization header, client_secret and tokens are filtered by the same configuration the
tests use (tests/graph_vcr.py), and the script refuses to finish if the secret or a bearer
token still appears in a written file.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pydantic import SecretStr  # noqa: E402

from apsis_core.entra import EntraEndpoints  # noqa: E402
from apsis_core.settings import PUBLIC_CLOUD_AUTHORITY, PUBLIC_CLOUD_GRAPH  # noqa: E402
from sync.graph_client import GraphClient  # noqa: E402
from tests.graph_vcr import graph_vcr  # noqa: E402


def _secret() -> str:
    path = os.environ.get("APSIS_SYNC_RECORD_CLIENT_SECRET_FILE")
    if path:
        return Path(path).read_text(encoding="utf-8").strip()
    value = os.environ.get("APSIS_SYNC_RECORD_CLIENT_SECRET", "").strip()
    if not value:
        raise SystemExit("error: set APSIS_SYNC_RECORD_CLIENT_SECRET_FILE (or APSIS_SYNC_RECORD_CLIENT_SECRET)")
    return value


async def _record(out: Path, tenant: str, client_id: str, secret: str) -> None:
    endpoints = EntraEndpoints(
        os.environ.get("APSIS_SSO_ENTRA_AUTHORITY", PUBLIC_CLOUD_AUTHORITY),
        os.environ.get("APSIS_SSO_GRAPH_BASE_URL", PUBLIC_CLOUD_GRAPH),
        Path(os.environ["APSIS_SSO_ENTRA_CA_BUNDLE"]) if os.environ.get("APSIS_SSO_ENTRA_CA_BUNDLE") else None,
    )
    recorder = graph_vcr(record_mode="all", library=out)
    async with GraphClient(endpoints, tenant, client_id, SecretStr(secret)) as client:
        with recorder.use_cassette("token_then_graph.yaml"):
            first = await client.delta_round(None)
        with recorder.use_cassette("users_delta_changes.yaml"):
            await client.delta_round(first.delta_link)
        with recorder.use_cassette("application_password_credentials.yaml"):
            creds = await client.password_credentials(client_id)
    print(
        f"recorded {first.pages} page(s), {len(first.users)} user(s); "
        f"passwordCredentials {'readable' if creds is not None else 'denied (no Application.Read.All)'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "cassettes" / "recorded")
    args = parser.parse_args()
    tenant = os.environ.get("APSIS_SYNC_RECORD_TENANT_ID", "")
    client_id = os.environ.get("APSIS_SYNC_RECORD_CLIENT_ID", "")
    if not tenant or not client_id:
        raise SystemExit("error: set APSIS_SYNC_RECORD_TENANT_ID and APSIS_SYNC_RECORD_CLIENT_ID")
    secret = _secret()
    args.out.mkdir(parents=True, exist_ok=True)
    asyncio.run(_record(args.out, tenant, client_id, secret))
    for path in args.out.glob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        if secret in text or "Bearer ey" in text:
            path.unlink()
            raise SystemExit(f"error: {path.name} still held a credential and was deleted; check tests/graph_vcr.py")
    print(f"cassettes written to {args.out}; review them before committing anything")


if __name__ == "__main__":
    main()
