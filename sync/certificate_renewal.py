"""Renewal of certificate credentials: is APSIS's *next* certificate uploaded to an account's
app registration, and when to ask its IT contact to upload it.

APSIS publishes the next certificate long before the current one expires
(``APSIS_SSO_ASSERTION_NEXT_KEY_FILE``). Each cycle of a certificate account asks Entra whether
the app holds it: Graph ``applications(appId)`` ``keyCredentials`` (the optional
``Application.Read.All``, as for client secrets), else a client-credentials token request signed
with the next key (Entra answers AADSTS700027 while it is not uploaded; no permission needed).
Until it is uploaded, the IT contact is mailed at each threshold (30/14/7/1 days before the
current certificate expires, once per threshold). The switch to the next key is realm-wide
(``apsis-sso assertion-key switch``, refused while any certificate account lacks it), so an
account that has not uploaded it keeps working on the current one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from apsis_core import entra
from apsis_core.certificates import KeyPair, PublicCertificate
from apsis_core.entra import EntraEndpoints
from apsis_core.errors import EntraRefused
from sync import expiry

NOT_REGISTERED = 700027


@dataclass(frozen=True)
class RenewalState:
    """What a cycle learnt: the current certificate, the next one (None: none published yet) and
    whether the app holds the next one (None: it could not be told)."""

    current: PublicCertificate
    upcoming: PublicCertificate | None
    uploaded: bool | None

    def days_left(self, today: date) -> int:
        return (self.current.not_after.date() - today).days

    def due(self, today: date, thresholds: list[int]) -> int | None:
        """The threshold a notice is due for: none once the next certificate is uploaded."""
        if self.uploaded:
            return None
        return expiry.due_threshold(self.days_left(today), thresholds)

    def notice_key(self, threshold: int) -> str:
        upcoming = self.upcoming.sha1_thumbprint if self.upcoming else "-"
        return f"certificate:{self.current.sha1_thumbprint}:{upcoming}:{threshold}"


def holds(thumbprints: list[str], cert: PublicCertificate) -> bool:
    """Graph's ``customKeyIdentifier`` values name the certificate (SHA-1, hex)."""
    return cert.sha1_thumbprint in {t.strip().upper().replace(":", "") for t in thumbprints}


async def probe(endpoints: EntraEndpoints, tenant: str, client_id: str, upcoming: KeyPair) -> bool | None:
    """Does Entra accept an assertion signed with the next key? False on AADSTS700027."""
    try:
        await entra.prove_secret_async(endpoints, tenant, client_id, upcoming)
    except EntraRefused as exc:
        return False if exc.aadsts == NOT_REGISTERED else None
    except Exception:  # noqa: BLE001 - Entra unreachable: not known this cycle, asked again next
        return None
    return True
