"""The one path to Entra: where it is, the Graph scope, and what each refusal means (the CLI's
advice and the daemon's kind come from the same table)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from apsis_core import entra
from apsis_core.entra import EntraEndpoints
from apsis_core.errors import EX_TEMPFAIL, EX_USAGE, EntraError, EntraUnavailable, InvalidInput

pytestmark = pytest.mark.unit

APP, TENANT = "6a8b0000-0000-4000-8000-000000000001", "2f4a0000-0000-4000-8000-000000000002"


@dataclass
class Answer:
    status_code: int
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""

    def text(self) -> str:
        return self.body


@dataclass
class Refused(Exception):
    """Shaped like azure-core's ClientAuthenticationError: a message and the HTTP response."""

    message: str
    response: Any = None


@pytest.mark.parametrize(
    ("graph", "scope"),
    [
        ("https://graph.microsoft.com/v1.0", "https://graph.microsoft.com/.default"),
        ("https://microsoftgraph.chinacloudapi.cn/v1.0", "https://microsoftgraph.chinacloudapi.cn/.default"),
        ("https://127.0.0.1:8443/v1.0", "https://127.0.0.1:8443/.default"),
    ],
)
def test_the_graph_scope_follows_the_graph_base_url(graph, scope):
    endpoints = EntraEndpoints("https://login.microsoftonline.us", graph)
    assert endpoints.scope == scope
    assert (
        endpoints.discovery_url("acme.example")
        == "https://login.microsoftonline.us/acme.example/v2.0/.well-known/openid-configuration"
    )
    assert endpoints.ssl_context is True and endpoints.connection_verify is True


@pytest.mark.parametrize(
    ("code", "advice"),
    [
        (7000215, "Entra rejected the client secret (AADSTS7000215: invalid secret)"),
        (7000222, "the client secret has expired in Entra (AADSTS7000222)"),
        (700016, f"Entra has no application {APP} in tenant {TENANT} (AADSTS700016)"),
        (90002, f"Entra has no tenant {TENANT} (AADSTS90002)"),
    ],
)
def test_each_known_refusal_is_one_line_of_advice_exit_2(code, advice):
    body = f'{{"error": "invalid_client", "error_codes": [{code}]}}'
    error = entra.token_refused(
        Refused(f"Authentication failed: AADSTS{code}: ...", Answer(401, body=body)), APP, TENANT
    )
    assert isinstance(error, InvalidInput) and error.exit_code == EX_USAGE
    assert advice in str(error) and "\n" not in str(error)


def test_the_code_is_found_in_the_message_when_the_body_is_not_at_hand():
    error = entra.token_refused(Refused("ClientSecretCredential.get_token failed: AADSTS7000222: expired"), APP, TENANT)
    assert "AADSTS7000222" in str(error) and isinstance(error, InvalidInput)


def test_an_unknown_refusal_names_its_code_and_a_busy_endpoint_is_temporary():
    other = entra.token_refused(Refused("AADSTS50000: something", Answer(400)), APP, TENANT)
    assert type(other) is EntraError and "AADSTS50000" in str(other)
    throttled = entra.token_refused(Refused("throttled", Answer(429, {"Retry-After": "20"})), APP, TENANT)
    assert isinstance(throttled, EntraUnavailable) and throttled.exit_code == EX_TEMPFAIL
    assert str(throttled) == f"Entra answered HTTP 429 for a token for application {APP}; Entra asks to retry after 20s"
    failing = entra.token_refused(Refused("oops", Answer(503)), APP, TENANT)
    assert str(failing).endswith("; try again later") and failing.exit_code == EX_TEMPFAIL


def test_the_daemon_reads_the_same_table():
    assert entra.refusal(7000222).kind == "expired" and entra.refusal(7000215).kind == "invalid"
    assert entra.refusal(700016).kind == "other" and entra.refusal(None).kind == "other"
    assert entra.aadsts_codes("x", {"error_codes": [90002, "7000215"]}) == [90002, 7000215]


def test_timeouts_are_told_apart_from_refused_connections():
    endpoints = EntraEndpoints("https://login.microsoftonline.com", "https://graph.microsoft.com/v1.0")
    try:
        try:
            raise TimeoutError("read")
        except TimeoutError as inner:
            raise ConnectionError("wrapped") from inner
    except ConnectionError as exc:
        assert "did not answer in time" in str(entra.unreachable(endpoints, exc))
    assert "is unreachable" in str(entra.unreachable(endpoints, ConnectionRefusedError("no")))
