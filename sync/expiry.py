"""When does the account's client secret expire, and is it time to say so?

Two sources. The date recorded at onboarding (``apsis.secretExpires``) is always there but is
what the customer told us. Where the tenant granted ``Application.Read.All``, Graph's
``passwordCredentials`` of the app registration give the real ``endDateTime``; the ``hint``
(first three characters, ``apsis.secretHint``) says which of the app's secrets is ours.
Graph wins when it knows our secret; otherwise the recorded date stands.

Thresholds (30/14/7/1 days, and expiry itself) are each notified once per secret: the
notification key carries the secret's hint and expiry date, so a rotated secret starts over.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date

from pydantic import SecretStr

from apsis_core.certificates import KeyPair
from sync.graph_pages import PasswordCredential

EXPIRED = 0


@dataclass(frozen=True)
class SecretExpiry:
    expires: date
    source: str  # graph | recorded | certificate (a certificate account: APSIS's current certificate)
    hint: str | None
    days_left: int

    @property
    def secret_id(self) -> str:
        """Names the secret in notification keys (its hint and date; never the secret)."""
        return f"{self.hint or '-'}:{self.expires.isoformat()}"


def effective(
    recorded: date | None,
    hint: str | None,
    credentials: list[PasswordCredential] | None,
    today: date,
) -> SecretExpiry | None:
    if credentials:
        ours = [c for c in credentials if c.end is not None and (hint is None or c.hint == hint)]
        if hint is None and len(ours) != 1:
            ours = []  # without a hint, only an app with exactly one secret is unambiguous
        if ours:
            end = max(c.end for c in ours if c.end is not None).date()
            return SecretExpiry(end, "graph", hint, (end - today).days)
    if recorded is not None:
        return SecretExpiry(recorded, "recorded", hint, (recorded - today).days)
    return None


def due_threshold(days_left: int, thresholds: list[int]) -> int | None:
    """The most urgent threshold reached: ``EXPIRED`` (0) once expired, else the smallest
    threshold >= days left, or None while the secret has more time than every threshold."""
    if days_left <= 0:
        return EXPIRED
    reached = [t for t in thresholds if days_left <= t]
    return min(reached) if reached else None


def notice_key(expiry: SecretExpiry, threshold: int) -> str:
    return f"expiry:{expiry.secret_id}:{'expired' if threshold == EXPIRED else threshold}"


def token_notice_key(kind: str, hint: str | None, secret: SecretStr | KeyPair | None) -> str:
    """Once per secret (or certificate) in use: a fingerprint (non-reversible) tells one wrong
    secret from the next."""
    if isinstance(secret, SecretStr):
        fingerprint = hashlib.sha256(secret.get_secret_value().encode()).hexdigest()[:12]
    else:
        fingerprint = secret.certificate.sha1_thumbprint[:12] if secret else "-"
    return f"token:{kind}:{hint or '-'}:{fingerprint}"


def window(days_left: int, thresholds: list[int]) -> str | None:
    """Label for metrics: ``expired`` or the threshold reached (low cardinality)."""
    due = due_threshold(days_left, thresholds)
    if due is None:
        return None
    return "expired" if due == EXPIRED else str(due)
