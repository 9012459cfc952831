"""The audit trail: every action through the portal, as one JSON object per line.

Who (the invitation's holder: the account's IT contact, the invitation's id and the client
address), the request (its id, as in the access log), which account, what (``link-opened``, ``setup-submitted``, ``ready``,
``renewal-submitted``, a refusal ...), the outcome, and when. Never a secret or a token:
the invitation is named by a prefix of its hash, Entra's refusals by their code. Written to
stderr with the other logs, or appended to ``APSIS_PORTAL_AUDIT_LOG``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, Literal

from apsis_core.logs import JsonFormatter, ScrubSecrets
from portal.observability import REQUEST_ID, count_action

Outcome = Literal["ok", "refused", "failed"]
AuditAction = Literal["link-opened", "setup-submitted", "ready", "renewal-submitted"]
"""What a visitor did through the portal (each one line of the trail)."""
LOGGER = "apsis_portal.audit"


class Audit:
    def __init__(self, path: Path | None = None) -> None:
        self.log = logging.getLogger(LOGGER)
        handler: logging.Handler = (
            logging.FileHandler(path, encoding="utf-8") if path else logging.StreamHandler(sys.stderr)
        )
        handler.setFormatter(JsonFormatter())
        handler.addFilter(ScrubSecrets())  # the last line of defence; nothing here should need it
        self.log.handlers[:] = [handler]
        self.log.setLevel(logging.INFO)
        self.log.propagate = False

    def record(
        self,
        action: AuditAction,
        *,
        account: str | None,
        outcome: Outcome,
        actor: str | None = None,
        invitation: str | None = None,
        client: str | None = None,
        **details: Any,
    ) -> None:
        count_action(action, outcome, details)
        self.log.info(
            action,
            extra={
                "audit": True,
                "action": action,
                "account": account,
                "outcome": outcome,
                "actor": actor,
                "invitation": invitation,
                "client": client,
                "request_id": REQUEST_ID.get(),  # the access-log line of the same request
                **details,
            },
        )

    def close(self) -> None:
        for handler in self.log.handlers:
            handler.close()
