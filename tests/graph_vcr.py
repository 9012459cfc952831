"""vcrpy configuration for the Graph client layer's cassettes (tests/cassettes/graph/).

The cassettes there are written by hand from Microsoft's documented examples and replayed
with ``record_mode="none"``. ``tests/cassettes/record_graph.py`` records the same calls
against a real tenant with the same filters, for comparing shapes; see README.md. Whatever
is recorded, these filters keep credentials out of the files: the ``Authorization`` header,
``client_secret``/``client_assertion`` in token requests, and tokens in token responses.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import vcr
from azure.core.credentials import AccessToken
from azure.core.credentials_async import AsyncTokenCredential

CASSETTES = Path(__file__).resolve().parent / "cassettes" / "graph"
FILTERED = "FILTERED"
_TOKEN_FIELDS = ("access_token", "refresh_token", "id_token")


def scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    """Blank tokens in token-endpoint answers before they are written."""
    body = response.get("body", {}).get("string")
    if not body:
        return response
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        doc = json.loads(text)
    except ValueError:
        return response
    if isinstance(doc, dict) and any(k in doc for k in _TOKEN_FIELDS):
        for key in _TOKEN_FIELDS:
            if key in doc:
                doc[key] = FILTERED
        new = json.dumps(doc)
        response["body"]["string"] = new.encode() if isinstance(body, bytes) else new
    return response


def graph_vcr(record_mode: str = "none", library: Path = CASSETTES) -> vcr.VCR:
    return vcr.VCR(
        cassette_library_dir=str(library),
        record_mode=record_mode,
        match_on=["method", "scheme", "host", "port", "path", "query"],
        filter_headers=[("authorization", FILTERED), ("cookie", None), ("set-cookie", None)],
        filter_post_data_parameters=[("client_secret", FILTERED), ("client_assertion", FILTERED)],
        before_record_response=scrub_response,
        decode_compressed_response=True,
    )


class StaticTokenCredential(AsyncTokenCredential):
    """A fixed bearer token: for replaying cassettes, where no token endpoint exists."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self._token, int(time.time()) + 3600)

    async def close(self) -> None:
        return None

    async def __aexit__(self, *args: Any) -> None:
        return None
