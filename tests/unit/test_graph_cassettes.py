"""The Graph client layer replayed against Microsoft's documented responses (vcrpy cassettes
in tests/cassettes/graph/, written by hand from the documentation — not recorded from the
emulator), so the client is checked against what Microsoft says Graph sends, independently
of how faithfully the emulator copies it.

Graph goes through httpx; the token through azure-identity over aiohttp.
Most tests inject a static token credential; the token_* cassettes replay the real
credential's token request, secret filtered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import pytest
import yaml
from pydantic import SecretStr

from apsis_core.entra import EntraEndpoints
from apsis_core.errors import DeltaTokenExpired, EntraRefused
from sync import expiry
from sync.graph_client import GraphClient, RetryPolicy
from tests.graph_vcr import CASSETTES, FILTERED, StaticTokenCredential, graph_vcr

pytestmark = pytest.mark.unit

PUBLIC = EntraEndpoints("https://login.microsoftonline.com", "https://graph.microsoft.com/v1.0")
TENANT = "aaaabbbb-0000-cccc-1111-dddd2222eeee"
CLIENT = "00001111-aaaa-2222-bbbb-3333cccc4444"
APP = "46e6adf4-a9cf-4b60-9390-0ba6fb00bf6b"
DELTA_LINK = (
    "https://graph.microsoft.com/v1.0/users/delta?$deltatoken=oEcOySpF_hWYmTIUZBOIfPzcwisr_rPe8o9M54L45qEXQGm"
    "vQC6T2dbL-9O7nSU-njKhFiGlAZqewNAThmCVnNxqPu5gOBegrm1CaVZ-ZtFZ2tPOAO98OD9y0ao460"
)
T = TypeVar("T")


def replay(
    cassette: str,
    call: Callable[[GraphClient], Awaitable[T]],
    *,
    secret: str | None = None,
    retry: RetryPolicy | None = None,
) -> tuple[T, Any]:
    """Run ``call`` against a client whose every request must come from ``cassette``; returns
    its result and the cassette (to check that every recorded answer was used)."""

    async def run() -> T:
        credential = None if secret else StaticTokenCredential("cassette-token")
        async with GraphClient(
            PUBLIC, TENANT, CLIENT, SecretStr(secret) if secret else None, credential=credential, retry=retry
        ) as client:
            return await call(client)

    with graph_vcr().use_cassette(f"{cassette}.yaml", allow_playback_repeats=False) as cass:
        result = asyncio.run(run())
    return result, cass


def recording_retry() -> RetryPolicy:
    async def no_sleep(_: float) -> None:
        return None

    return RetryPolicy(max_attempts=4, backoff=1.0, sleep=no_sleep)


def test_initial_round_follows_next_links_to_the_delta_link() -> None:
    round_, cass = replay("users_delta_initial_round", lambda c: c.delta_round(None))
    assert cass.all_played
    assert round_.full and round_.pages == 3
    assert round_.delta_link == DELTA_LINK
    assert len(round_.users) == 8
    removed = [u for u in round_.users if u.removed]
    assert [(u.oid, u.removed) for u in removed] == [("86462606-fde0-4fc4-9e0c-a20eb73e54c6", "deleted")]
    diego = next(u for u in round_.users if u.oid == "8b1ee412-cd8f-4d59-ffff-24010edb9f1f")
    assert (diego.enabled, diego.mail, diego.upn) == (False, "DiegoS@contoso.com", "DiegoS@contoso.com")
    room = next(u for u in round_.users if u.oid == "6ea91a8d-e32e-41a1-b7bd-d2d185eed0e0")
    assert room.mail is None and room.emails == ["confroomadams@contoso.com"]


def test_a_delta_link_round_returns_removed_disabled_and_changed_users() -> None:
    round_, cass = replay("users_delta_changes", lambda c: c.delta_round(DELTA_LINK))
    assert cass.all_played and not round_.full and round_.pages == 1
    assert round_.delta_link.endswith("-second-round")
    summary = [(u.oid[:8], u.removed, u.enabled) for u in round_.users]
    assert summary == [("605d1257", "changed", None), ("d8c37826", None, False), ("8b1ee412", None, True)]


def test_sync_state_not_found_is_an_expired_delta_token() -> None:
    with pytest.raises(DeltaTokenExpired) as caught:
        replay("users_delta_sync_state_not_found", lambda c: c.delta_round(DELTA_LINK))
    assert caught.value.code == "syncStateNotFound"
    assert caught.value.location is None


def test_resync_required_410_restarts_from_its_location() -> None:
    async def call(client: GraphClient) -> Any:
        try:
            await client.delta_round(DELTA_LINK)
        except DeltaTokenExpired as exc:
            assert exc.code == "resyncRequired"
            assert exc.location == (
                "https://graph.microsoft.com/v1.0/users/delta?$deltatoken="
                "&$select=id,accountEnabled,mail,userPrincipalName"
            )
            return await client.restart_round(exc)
        raise AssertionError("the 410 was not recognised")

    round_, cass = replay("users_delta_resync_required", call)
    assert cass.all_played
    assert round_.full and round_.delta_link.endswith("-restarted")
    assert [(u.oid[:8], u.enabled) for u in round_.users] == [("ffff7b1a", True), ("f6ede700", False)]


def test_throttling_honours_the_fractional_retry_after_and_backs_off_on_503() -> None:
    retry = recording_retry()
    round_, cass = replay("users_delta_throttled", lambda c: c.delta_round(None), retry=retry)
    assert cass.all_played and len(round_.users) == 1
    (throttled, seconds), (server_error, backoff) = retry.waits
    assert (throttled, seconds) == ("throttled", 2.128)
    assert server_error == "server_error" and 1.0 <= backoff <= 2.0  # second attempt: base 2 s, half jittered


def test_password_credentials_are_read_and_the_one_in_use_is_found_by_hint() -> None:
    creds, cass = replay("application_password_credentials", lambda c: c.password_credentials(APP))
    assert cass.all_played and creds is not None
    assert [(c.hint, c.key_id) for c in creds] == [
        ("[6g", "f0b0b335-1d71-4883-8f98-567911bfdca6"),
        ("Qx~", "0e5c1f0a-3b7d-4c2e-9a55-3d1e2f4a6b7c"),
    ]
    assert creds[0].end == datetime(2021, 9, 9, 19, 50, 29, 308638, tzinfo=UTC)
    ours = expiry.effective(date(2030, 1, 1), "[6g", creds, today=date(2021, 8, 31))
    assert ours is not None and (ours.source, ours.expires, ours.days_left) == ("graph", date(2021, 9, 9), 9)
    unknown = expiry.effective(date(2030, 1, 1), "zzz", creds, today=date(2021, 8, 31))
    assert unknown is not None and unknown.source == "recorded"


def test_without_application_read_all_the_credentials_are_simply_unknown() -> None:
    creds, cass = replay("application_forbidden", lambda c: c.password_credentials(APP))
    assert cass.all_played and creds is None


def test_the_real_credential_fetches_its_token_then_calls_graph() -> None:
    async def call(client: GraphClient) -> Any:
        round_ = await client.delta_round(None)
        # The token came from the replayed answer and is kept: asking again sends nothing
        # (a second token request would find no answer left in the cassette).
        return round_, await client.token.get()

    (round_, token), cass = replay("token_then_graph", call, secret="s3cr3t~" + "x" * 33)
    assert cass.all_played
    assert [u.mail for u in round_.users] == ["PattiF@contoso.com"]
    # vcrpy runs the response filter on load as well, so the token the credential parsed from
    # the replayed answer is the filtered one: proof that tokens never leave a cassette raw.
    assert token == FILTERED
    token_request = cass.requests[0]
    assert token_request.method == "POST" and token_request.uri.endswith(f"/{TENANT}/oauth2/v2.0/token")


@pytest.mark.parametrize(
    ("cassette", "code", "kind"),
    [
        ("token_secret_expired", 7000222, "expired"),
        ("token_secret_invalid", 7000215, "invalid"),
    ],
)
def test_token_errors_are_recognised_by_their_aadsts_code(cassette: str, code: int, kind: str) -> None:
    secret = "s3cr3t~" + "y" * 33
    with pytest.raises(EntraRefused) as caught:
        replay(cassette, lambda c: c.delta_round(None), secret=secret)
    assert (caught.value.aadsts, caught.value.kind) == (code, kind)
    assert f"AADSTS{code}" in str(caught.value) and secret not in str(caught.value)
    assert str(caught.value).count("\n") == 0


def test_no_cassette_holds_a_credential() -> None:
    for path in sorted(CASSETTES.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        for interaction in doc["interactions"]:
            request = interaction["request"]
            headers = {k.lower(): v for k, v in (request.get("headers") or {}).items()}
            assert headers.get("authorization") in (None, [FILTERED]), path.name
            body = request.get("body") or ""
            if isinstance(body, dict):
                assert body.get("client_secret", FILTERED) == FILTERED, path.name
            elif "client_secret=" in body:
                assert f"client_secret={FILTERED}" in body, path.name
            answer = interaction["response"]["body"]["string"]
            if '"access_token"' in answer:
                assert path.name == "token_then_graph.yaml"  # the documentation's truncated example only


def test_recording_filters_credentials() -> None:
    """What ``graph_vcr`` writes when it records: header, post data and tokens filtered."""
    from vcr.request import Request

    config = graph_vcr()
    request = Request(
        "POST",
        "https://login.microsoftonline.com/t/oauth2/v2.0/token",
        b"client_id=c&client_secret=hunter2-very-secret&grant_type=client_credentials",
        {"Authorization": "Bearer abc.def.ghi"},
    )
    filtered = config._build_before_record_request({})(request)
    assert b"hunter2" not in filtered.body and b"client_secret=FILTERED" in filtered.body
    assert filtered.headers["Authorization"] == FILTERED
    response = {
        "status": {"code": 200},
        "headers": {},
        "body": {"string": b'{"token_type": "Bearer", "access_token": "eyJ.secret.token"}'},
    }
    scrubbed = config._build_before_record_response({})(response)
    assert b"eyJ.secret.token" not in scrubbed["body"]["string"]
