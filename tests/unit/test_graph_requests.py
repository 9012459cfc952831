"""The daemon's two Graph GETs sent with httpx directly, without msgraph-sdk's request adapter
and msgraph-core's middleware chain: the same URLs as msgraph-sdk's request builders, the
token only to Graph's host over HTTPS, Graph's error bodies mapped, redirects followed."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable

import httpx
import pytest

from apsis_core.entra import EntraEndpoints
from apsis_core.errors import DeltaTokenExpired, GraphRequestFailed
from sync.graph_client import GraphAnswer, GraphClient, RetryPolicy, application_url, delta_url
from tests.graph_vcr import StaticTokenCredential

pytestmark = pytest.mark.unit

PUBLIC = EntraEndpoints("https://login.microsoftonline.com", "https://graph.microsoft.com/v1.0")
APP = "46e6adf4-a9cf-4b60-9390-0ba6fb00bf6b"
PAGE = b'{"value": [], "@odata.deltaLink": "https://graph.microsoft.com/v1.0/users/delta?$deltatoken=d1"}'


def sdk_urls() -> tuple[str, str]:
    """The URLs msgraph-sdk puts on the wire for the daemon's two reads: its request
    builders, sent through msgraph-core's default middleware to a recording transport."""
    from kiota_abstractions.authentication import AnonymousAuthenticationProvider
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph.generated.applications_with_app_id.applications_with_app_id_request_builder import (
        ApplicationsWithAppIdRequestBuilder as Apps,
    )
    from msgraph.generated.users.delta.delta_request_builder import DeltaRequestBuilder as Delta
    from msgraph_core import GraphClientFactory

    wire: list[str] = []

    def record(request: httpx.Request) -> httpx.Response:
        wire.append(str(request.url))
        return httpx.Response(200, content=PAGE)

    async def go() -> None:
        http = GraphClientFactory.create_with_default_middleware(
            client=httpx.AsyncClient(transport=httpx.MockTransport(record))
        )
        adapter = GraphRequestAdapter(AnonymousAuthenticationProvider(), client=http)
        adapter.base_url = PUBLIC.graph_base_url
        client = GraphServiceClient(request_adapter=adapter)
        delta = Delta.DeltaRequestBuilderGetQueryParameters(
            select=["id", "accountEnabled", "mail", "userPrincipalName"]
        )
        apps = Apps.ApplicationsWithAppIdRequestBuilderGetQueryParameters(select=["id", "appId", "passwordCredentials"])
        for info in (
            client.users.delta.to_get_request_information(RequestConfiguration(query_parameters=delta)),
            client.applications_with_app_id(APP).to_get_request_information(
                RequestConfiguration(query_parameters=apps)
            ),
        ):
            await adapter.send_primitive_async(info, "bytes", {})
        await http.aclose()

    asyncio.run(go())
    return wire[0], wire[1]


def test_the_urls_are_the_ones_msgraph_sdk_sent() -> None:
    assert (delta_url(PUBLIC.graph_base_url), application_url(PUBLIC.graph_base_url, APP)) == sdk_urls()


def test_the_graph_client_loads_neither_msgraph_sdk_nor_kiota() -> None:
    code = (
        "import sys, sync.graph_client\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'msgraph', 'msgraph_core', 'kiota_http', "
        "'kiota_abstractions', 'opentelemetry'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def run(handler: Callable[[httpx.Request], httpx.Response], call: Callable[[GraphClient], object], **retry: object):
    """``call`` on a client whose stack answers with ``handler`` (the stack's own client,
    headers and redirect policy kept: only the transport is replaced)."""
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    async def go() -> object:
        waits: list[float] = []

        async def sleep(seconds: float) -> None:
            waits.append(seconds)

        async with GraphClient(
            PUBLIC,
            "tenant",
            "client",
            credential=StaticTokenCredential("tok"),
            retry=RetryPolicy(sleep=sleep, **retry),  # type: ignore[arg-type]
        ) as client:
            client.stack.http._transport = httpx.MockTransport(record)
            return await call(client)  # type: ignore[misc]

    return asyncio.run(go()), seen


def test_the_token_goes_to_graphs_host_with_the_headers_graph_expects() -> None:
    round_, seen = run(lambda r: httpx.Response(200, content=PAGE), lambda c: c.delta_round())
    assert round_.delta_link.endswith("d1")  # type: ignore[attr-defined]
    (request,) = seen
    assert (
        str(request.url)
        == "https://graph.microsoft.com/v1.0/users/delta()?$select=id,accountEnabled,mail,userPrincipalName"
    )
    assert request.headers["authorization"] == "Bearer tok"
    assert request.headers["accept"] == "application/json"
    assert len(request.headers["client-request-id"]) == 36


def test_no_token_to_another_host_and_none_over_plain_http() -> None:
    _, seen = run(
        lambda r: httpx.Response(200, content=PAGE), lambda c: c.delta_round("https://elsewhere.example/users/delta")
    )
    assert "authorization" not in seen[0].headers
    with pytest.raises(ValueError, match="HTTPS"):
        run(
            lambda r: httpx.Response(200, content=PAGE),
            lambda c: c.delta_round("http://graph.microsoft.com/v1.0/users/delta"),
        )


def test_a_redirect_is_followed_and_the_token_stays_on_graphs_host() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "graph.microsoft.com":
            return httpx.Response(302, headers={"location": "https://elsewhere.example/page"})
        return httpx.Response(200, content=PAGE)

    _, seen = run(handler, lambda c: c.delta_round())
    assert [r.url.host for r in seen] == ["graph.microsoft.com", "elsewhere.example"]
    assert "authorization" in seen[0].headers and "authorization" not in seen[1].headers


def test_throttling_is_waited_as_asked_then_the_answer_read() -> None:
    answers = iter([httpx.Response(429, headers={"Retry-After": "2.5"}), httpx.Response(200, content=PAGE)])
    (round_, seen) = run(lambda r: next(answers), lambda c: c.delta_round())
    assert len(seen) == 2 and round_.pages == 1  # type: ignore[attr-defined]


def test_graphs_error_bodies_are_mapped() -> None:
    gone = httpx.Response(
        410,
        json={"error": {"code": "resyncRequired", "message": "Resync required."}},
        headers={"Location": "https://graph.microsoft.com/v1.0/users/delta?$deltatoken="},
    )
    with pytest.raises(DeltaTokenExpired) as expired:
        run(lambda r: gone, lambda c: c.delta_round("https://graph.microsoft.com/v1.0/users/delta?$deltatoken=x"))
    assert expired.value.code == "resyncRequired" and expired.value.location and expired.value.location.endswith("=")
    html = httpx.Response(400, content=b"<html>bad gateway</html>")
    with pytest.raises(GraphRequestFailed, match=r"HTTP 400: no error message") as failed:
        run(lambda r: html, lambda c: c.delta_round())
    assert failed.value.status == 400
    denied = httpx.Response(
        403, json={"error": {"code": "Authorization_RequestDenied", "message": "Insufficient privileges.\nmore"}}
    )
    assert run(lambda r: denied, lambda c: c.password_credentials(APP))[0] is None  # optional permission
    answer = GraphAnswer.of(httpx.Response(503, json={"error": {"code": 7, "message": "busy"}}))
    assert (answer.status, answer.code, answer.message) == (503, None, "busy")
