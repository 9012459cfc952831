"""What endpoint handlers share: the directory, the token issuer, faults, issued codes, the base URL."""

from __future__ import annotations

import datetime as dt
import secrets
import threading
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .certs import SigningKey
from .client_assertion import ReceivedAssertion
from .faults import FaultInjector
from .state import EmulatorState
from .tokens import GRAPH_APP_ID, GRAPH_RESOURCE, TokenIssuer

CODE_LIFETIME = dt.timedelta(minutes=10)


@dataclass
class AuthCode:
    tenant_id: str
    app_id: str
    oid: str
    redirect_uri: str
    scopes: list[str]
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    expires: dt.datetime
    redeemed: bool = False


class CodeStore:
    """Authorization codes live in memory only, like the short-lived grants they are."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._codes: dict[str, AuthCode] = {}

    def issue(self, code: AuthCode) -> str:
        value = "1.A" + secrets.token_urlsafe(48)
        with self._lock:
            now = dt.datetime.now(dt.UTC)
            for key in [k for k, c in self._codes.items() if c.expires < now - CODE_LIFETIME]:
                del self._codes[key]
            self._codes[value] = code
        return value

    def get(self, value: str) -> AuthCode | None:
        with self._lock:
            return self._codes.get(value)

    def redeem(self, value: str) -> bool:
        """Mark redeemed; False when it already was (codes are single use)."""
        with self._lock:
            code = self._codes.get(value)
            if code is None or code.redeemed:
                return False
            code.redeemed = True
            return True


@dataclass
class Services:
    state: EmulatorState
    signing: SigningKey
    issuer: TokenIssuer
    faults: FaultInjector
    codes: CodeStore = field(default_factory=CodeStore)
    base_url: str = ""
    # The client assertions the token endpoint received (header and claims only), newest last.
    assertions: deque[ReceivedAssertion] = field(default_factory=lambda: deque(maxlen=200))

    @property
    def graph_base_url(self) -> str:
        return f"{self.base_url}/v1.0"

    def graph_audiences(self) -> list[str]:
        """Resource identifiers that mean "Microsoft Graph" here: the real ones, and this server."""
        parts = urlsplit(self.base_url)
        portless = f"{parts.scheme}://{parts.hostname}"
        return list(
            dict.fromkeys(
                [
                    GRAPH_RESOURCE,
                    GRAPH_RESOURCE + "/",
                    GRAPH_APP_ID,
                    self.base_url,
                    self.base_url + "/",
                    portless,
                    portless + "/",
                ]
            )
        )
