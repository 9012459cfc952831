"""Which tenant owns an account's email domains: the tenant–domain binding, the root of trust.

Any tenant's administrator can set any ``mail`` on their users, so an email claim from a
tenant says something only for a domain that tenant owns. Microsoft Entra lets a domain be
verified in one tenant only, and its OpenID discovery resolves a domain to the tenant it is
verified in (``{authority}/{domain}/v2.0/.well-known/openid-configuration``: the issuer names
the tenant id); a domain verified nowhere answers ``AADSTS90002``. That answer is the proof:
public, needing no credentials or Graph permission (Graph's ``organization.verifiedDomains``
would need ``Organization.Read.All``, an application permission customers do not grant us),
so the portal, the CLI and the daily re-check of ``apsis-sync`` ask the same way.

Three records on the account (organization attributes, one value per domain, each for one
tenant, so a proof or an override never carries over to another tenant):

* ``apsis.domainProofs``: ``<domain> <tenant id> <time> <method>`` — proven (method ``discovery``);
* ``apsis.ownershipOverride``: ``<domain> <tenant id> <time> <reason>`` — linked without proof
  by an operator's explicit decision (``--allow-unproven-domains REASON``);
* ``apsis.domainAlerts``: ``<domain> <tenant id> <time> <status> [<owner tenant>]`` — the last
  check found the domain ``other-tenant`` or ``unverified`` (the daemon's flag).

Everything above the reader at the end is pure and unit-tested: the rule (``judge``), the
records, what counts for the account's current tenant, and what a re-check changes.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from apsis_core import timestamps
from apsis_core.contract import DOMAIN_ALERTS_KEY, DOMAIN_PROOFS_KEY, OWNERSHIP_OVERRIDE_KEY
from apsis_core.errors import EntraUnavailable, InvalidInput
from apsis_core.timestamps import to_text as iso
from apsis_core.timestamps import utc as _utc

if TYPE_CHECKING:
    from apsis_core.entra import EntraEndpoints

METHOD_DISCOVERY = "discovery"
RECHECK_AFTER = timedelta(hours=24)
"""How long a proof (or an alert) stands before the daemon asks Entra again."""
VALUE_MAX = 255
"""Keycloak's limit for one attribute value."""
REASON_MAX = 150

Answer = Literal["resolved", "unknown", "unavailable"]
"""What Entra's discovery said: the domain resolves to a tenant, to none (AADSTS90002), or no answer."""
Status = Literal["proven", "other-tenant", "unverified", "unavailable"]
"""The rule's verdict on one domain for one tenant."""
Refused = Literal["other-tenant", "unverified"]
_REFUSED: tuple[Refused, ...] = ("other-tenant", "unverified")


def _time(text: str) -> datetime | None:
    try:
        return timestamps.from_text(text)
    except ValueError:
        return None


_TENANT = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _tenant(text: str) -> str | None:
    value = text.strip().lower()
    return value if _TENANT.match(value) else None


# -- the records --------------------------------------------------------------------------


@dataclass(frozen=True)
class DomainProof:
    """Entra placed ``domain`` in tenant ``tenant_id`` when asked at ``at``."""

    domain: str
    tenant_id: str
    at: datetime
    method: str = METHOD_DISCOVERY

    def value(self) -> str:
        return f"{self.domain} {self.tenant_id} {iso(self.at)} {self.method}"

    @classmethod
    def parse(cls, value: str) -> DomainProof | None:
        """A stored value, or None for anything malformed (edited by hand): it proves nothing."""
        parts = value.split()
        if len(parts) != 4:
            return None
        tenant, at = _tenant(parts[1]), _time(parts[2])
        if tenant is None or at is None or parts[3] != METHOD_DISCOVERY:
            return None
        return cls(parts[0].lower(), tenant, at, parts[3])


@dataclass(frozen=True)
class OwnershipOverride:
    """An operator linked ``domain`` to tenant ``tenant_id`` without proof, for ``reason``."""

    domain: str
    tenant_id: str
    at: datetime
    reason: str

    def value(self) -> str:
        return f"{self.domain} {self.tenant_id} {iso(self.at)} {self.reason}"

    @classmethod
    def parse(cls, value: str) -> OwnershipOverride | None:
        parts = value.split(" ", 3)
        if len(parts) != 4 or not parts[3].strip():
            return None
        tenant, at = _tenant(parts[1]), _time(parts[2])
        if tenant is None or at is None:
            return None
        return cls(parts[0].lower(), tenant, at, parts[3].strip())


@dataclass(frozen=True)
class DomainAlert:
    """The last check found ``domain`` not owned by tenant ``tenant_id``: ``status`` says how
    (``other-tenant``, with ``owner``, or ``unverified``)."""

    domain: str
    tenant_id: str
    at: datetime
    status: Refused
    owner: str | None = None

    def value(self) -> str:
        tail = f" {self.owner}" if self.owner else ""
        return f"{self.domain} {self.tenant_id} {iso(self.at)} {self.status}{tail}"

    @property
    def change(self) -> str:
        """What the alert is about, without when it was last seen: a new one is news, the same
        one seen again the next day is not."""
        return f"{self.domain} {self.tenant_id} {self.status} {self.owner or '-'}"

    @classmethod
    def parse(cls, value: str) -> DomainAlert | None:
        parts = value.split()
        if len(parts) not in (4, 5) or parts[3] not in _REFUSED:
            return None
        tenant, at = _tenant(parts[1]), _time(parts[2])
        owner = _tenant(parts[4]) if len(parts) == 5 else None
        if tenant is None or at is None or (len(parts) == 5 and owner is None):
            return None
        return cls(parts[0].lower(), tenant, at, parts[3], owner)

    def describe(self) -> str:
        if self.status == "other-tenant":
            return (
                f"{self.domain} is verified in another Entra tenant ({self.owner}), not in {self.tenant_id} "
                f"(checked {iso(self.at)})"
            )
        return f"{self.domain} is not a verified domain of any Entra tenant (checked {iso(self.at)})"


@dataclass(frozen=True)
class Ownership:
    """What an account's records say for its current tenant and domains: only these count."""

    tenant_id: str
    domains: tuple[str, ...]
    proofs: tuple[DomainProof, ...] = ()
    overrides: tuple[OwnershipOverride, ...] = ()
    alerts: tuple[DomainAlert, ...] = ()

    @classmethod
    def of(cls, attributes: Mapping[str, list[str]], tenant_id: str, domains: Sequence[str]) -> Ownership:
        """The records of ``tenant_id`` for ``domains``; others (another tenant's, a removed
        domain's, malformed ones) are left out, so a tenant change can never inherit a proof."""
        tenant = (tenant_id or "").lower()
        wanted = tuple(d.lower() for d in domains)

        def ours(records: Iterable[Any]) -> tuple[Any, ...]:
            latest: dict[str, Any] = {}
            for r in records:
                mine = r is not None and tenant and r.tenant_id == tenant and r.domain in wanted
                if mine and (r.domain not in latest or r.at > latest[r.domain].at):
                    latest[r.domain] = r
            return tuple(latest[d] for d in wanted if d in latest)

        return cls(
            tenant,
            wanted,
            ours(DomainProof.parse(v) for v in attributes.get(DOMAIN_PROOFS_KEY) or []),
            ours(OwnershipOverride.parse(v) for v in attributes.get(OWNERSHIP_OVERRIDE_KEY) or []),
            ours(DomainAlert.parse(v) for v in attributes.get(DOMAIN_ALERTS_KEY) or []),
        )

    @property
    def proven(self) -> tuple[str, ...]:
        return tuple(p.domain for p in self.proofs)

    @property
    def unproven(self) -> tuple[str, ...]:
        proven = set(self.proven)
        return tuple(d for d in self.domains if d not in proven)

    @property
    def overridden(self) -> tuple[str, ...]:
        """Unproven domains an operator linked anyway."""
        unproven = set(self.unproven)
        return tuple(o.domain for o in self.overrides if o.domain in unproven)

    @property
    def uncovered(self) -> tuple[str, ...]:
        """Domains neither proven nor overridden: linking them to the tenant needs one or the other."""
        covered = set(self.proven) | {o.domain for o in self.overrides}
        return tuple(d for d in self.domains if d not in covered)

    def due(self, now: datetime | None = None) -> tuple[str, ...]:
        """Domains the daily re-check should ask Entra about: never checked for this tenant,
        or last checked (proven or alerted) ``RECHECK_AFTER`` ago."""
        moment = _utc(now)
        seen: dict[str, datetime] = {}
        records: tuple[DomainProof | DomainAlert, ...] = (*self.proofs, *self.alerts)
        for record in records:
            if record.domain not in seen or record.at > seen[record.domain]:
                seen[record.domain] = record.at
        return tuple(d for d in self.domains if d not in seen or moment - seen[d] >= RECHECK_AFTER)

    def covers_all(self) -> bool:
        return not self.uncovered

    def to_dict(self) -> dict[str, Any]:
        """For ``account show`` and ``apsis-sync status`` (``-o json``)."""
        return {
            "proven": {p.domain: {"at": iso(p.at), "method": p.method} for p in self.proofs},
            "unproven": list(self.unproven),
            "override": {o.domain: {"at": iso(o.at), "reason": o.reason} for o in self.overrides},
            "alerts": [
                {"domain": a.domain, "status": a.status, "owner": a.owner, "at": iso(a.at)} for a in self.alerts
            ],
        }

    def summary(self) -> str:
        """One line for tables: every domain and where it stands."""
        parts: list[str] = []
        alerts = {a.domain: a for a in self.alerts}
        overridden = {o.domain: o for o in self.overrides}
        proven = set(self.proven)
        for domain in self.domains:
            if domain in proven:
                parts.append(f"{domain}: proven")
            elif domain in alerts:
                alert = alerts[domain]
                state = f"in tenant {alert.owner}" if alert.status == "other-tenant" else "verified nowhere"
                parts.append(f"{domain}: NOT proven ({state})" + (" - override" if domain in overridden else ""))
            elif domain in overridden:
                parts.append(f"{domain}: not proven - override ({overridden[domain].reason})")
            else:
                parts.append(f"{domain}: not proven yet")
        return "; ".join(parts)


def recheck_due(
    attributes: Mapping[str, list[str]], tenant_id: str, domains: Sequence[str], now: datetime | None = None
) -> tuple[str, ...]:
    """``Ownership.of(...).due(now)`` without parsing a time: the daemon asks this of every
    account every cycle, and ISO times of one format compare as strings."""
    if not domains or not tenant_id:
        return ()
    threshold = iso(_utc(now) - RECHECK_AFTER)
    tenant = tenant_id.lower()
    seen: dict[str, str] = {}
    for key in (DOMAIN_PROOFS_KEY, DOMAIN_ALERTS_KEY):
        for value in attributes.get(key) or ():
            parts = value.split(" ", 3)
            if len(parts) >= 3 and parts[1] == tenant and (parts[0] not in seen or parts[2] > seen[parts[0]]):
                seen[parts[0]] = parts[2]
    return tuple(d for d in domains if d not in seen or seen[d] <= threshold)


# -- the rule --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Discovery:
    """Entra's discovery answer for one domain (``reader``): the tenant it resolves to, or none."""

    domain: str
    answer: Answer
    owner: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class Verdict:
    """One domain judged for one tenant; ``proof`` is set when proven."""

    domain: str
    tenant_id: str
    status: Status
    owner: str | None = None
    detail: str = ""
    proof: DomainProof | None = field(default=None, compare=False)

    @property
    def refused(self) -> bool:
        return self.status in _REFUSED

    def alert(self, now: datetime) -> DomainAlert | None:
        return DomainAlert(self.domain, self.tenant_id, now, self.status, self.owner) if self.refused else None  # type: ignore[arg-type]

    def describe(self) -> str:
        """The operator's clause for this domain."""
        if self.status == "proven":
            return f"{self.domain} is verified in tenant {self.tenant_id}"
        if self.status == "other-tenant":
            return f"{self.domain} is verified in another Entra tenant ({self.owner}), not in {self.tenant_id}"
        if self.status == "unverified":
            return f"{self.domain} is not a verified domain of any Entra tenant (AADSTS90002)"
        return f"Entra could not say which tenant owns {self.domain} ({self.detail or 'no answer'})"


def judge(found: Discovery, tenant_id: str, now: datetime | None = None) -> Verdict:
    """The proof rule: a domain is proven for a tenant exactly when Entra's discovery resolves
    it to that tenant. Resolving to another tenant, or to none, is a refusal; no answer is no
    proof (never a pass) — it only means: ask again later."""
    tenant = tenant_id.lower()
    if found.answer == "resolved" and found.owner:
        owner = found.owner.lower()
        if owner == tenant:
            return Verdict(
                found.domain,
                tenant,
                "proven",
                owner,
                proof=DomainProof(found.domain, tenant, _utc(now), METHOD_DISCOVERY),
            )
        return Verdict(found.domain, tenant, "other-tenant", owner)
    if found.answer == "unknown":
        return Verdict(found.domain, tenant, "unverified", detail=found.detail)
    return Verdict(found.domain, tenant, "unavailable", detail=found.detail or "no answer")


def judge_all(found: Iterable[Discovery], tenant_id: str, now: datetime | None = None) -> list[Verdict]:
    moment = _utc(now)
    return [judge(f, tenant_id, moment) for f in found]


# -- what a check changes ------------------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    """The attribute values after a check, and what changed: ``new_alerts`` are news (a mail);
    ``lost`` domains had a proof that no longer holds; ``recovered`` were alerted and are proven."""

    proofs: list[str]
    alerts: list[str]
    new_alerts: tuple[DomainAlert, ...] = ()
    lost: tuple[str, ...] = ()
    recovered: tuple[str, ...] = ()
    unavailable: tuple[Verdict, ...] = ()


def after_check(
    attributes: Mapping[str, list[str]],
    tenant_id: str,
    domains: Sequence[str],
    verdicts: Sequence[Verdict],
    now: datetime | None = None,
) -> Recorded:
    """The proofs and alerts after checking ``verdicts``' domains for ``tenant_id``: a proven
    domain gets a fresh proof and loses its alert; a refused one loses its proof and gets an
    alert (the same alert seen again is no news); an unanswered one keeps what it had. Records
    of other tenants and of removed domains are dropped."""
    moment = _utc(now)
    held = Ownership.of(attributes, tenant_id, domains)
    proofs = {p.domain: p for p in held.proofs}
    alerts = {a.domain: a for a in held.alerts}
    new_alerts: list[DomainAlert] = []
    lost: list[str] = []
    recovered: list[str] = []
    unavailable: list[Verdict] = []
    for verdict in verdicts:
        domain = verdict.domain
        if domain not in held.domains:
            continue
        if verdict.status == "proven":
            proofs[domain] = (
                replace(verdict.proof, at=moment) if verdict.proof else DomainProof(domain, held.tenant_id, moment)
            )
            if alerts.pop(domain, None) is not None:
                recovered.append(domain)
        elif verdict.refused:
            if proofs.pop(domain, None) is not None:
                lost.append(domain)
            alert = verdict.alert(moment)
            assert alert is not None
            before = alerts.get(domain)
            if before is None or before.change != alert.change:
                new_alerts.append(alert)
            alerts[domain] = alert
        else:
            unavailable.append(verdict)
    return Recorded(
        proofs=[proofs[d].value() for d in held.domains if d in proofs],
        alerts=[alerts[d].value() for d in held.domains if d in alerts],
        new_alerts=tuple(new_alerts),
        lost=tuple(lost),
        recovered=tuple(recovered),
        unavailable=tuple(unavailable),
    )


# -- the requirement ----------------------------------------------------------------------


class DomainsNotProven(InvalidInput):
    """Linking the account's domains to the tenant was refused: some are verified in another
    tenant or in none (exit code 2). ``verdicts`` are the refused ones, for pages that explain
    them in their own words."""

    def __init__(self, message: str, verdicts: Sequence[Verdict]) -> None:
        super().__init__(message)
        self.verdicts = tuple(verdicts)


OVERRIDE_HINT = "to link them anyway, give --allow-unproven-domains REASON (recorded on the account)"


def require(account_id: str, verdicts: Sequence[Verdict], *, override: str | None = None) -> list[Verdict]:
    """Raise unless every domain is proven. No answer from Entra is a temporary failure (try
    again); a refusal is ``DomainsNotProven`` — unless ``override`` (the operator's reason) is
    given, then the refused verdicts are returned, to be recorded as overrides."""
    unavailable = [v for v in verdicts if v.status == "unavailable"]
    if unavailable:
        raise EntraUnavailable(
            f"account {account_id}: {unavailable[0].describe()}; domain ownership is not proven "
            "until Entra answers; try again later"
        )
    refused = [v for v in verdicts if v.refused]
    if refused and override is None:
        raise DomainsNotProven(
            f"account {account_id}: {'; '.join(v.describe() for v in refused)}: the tenant must "
            f"own every domain of the account; {OVERRIDE_HINT}",
            refused,
        )
    return refused


def override_reason(reason: str) -> str:
    """The operator's reason for linking unproven domains: one line of plain text."""
    text = reason.strip()
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise InvalidInput("the reason for --allow-unproven-domains must be one line without control characters")
    if not text:
        raise InvalidInput(
            '--allow-unproven-domains needs a reason, e.g. "domain verified by phone with Acme IT, ticket 4711"'
        )
    if len(text) > REASON_MAX:
        raise InvalidInput(
            f"the reason for --allow-unproven-domains is {len(text)} characters long; keep it to {REASON_MAX}"
        )
    return text


def overrides_for(refused: Sequence[Verdict], reason: str, now: datetime | None = None) -> list[OwnershipOverride]:
    moment = _utc(now)
    out = [OwnershipOverride(v.domain, v.tenant_id, moment, reason) for v in refused]
    for o in out:
        if len(o.value()) > VALUE_MAX:
            raise InvalidInput(
                f"the override of {o.domain} would be {len(o.value())} characters; Keycloak stores at "
                f"most {VALUE_MAX}: shorten the reason"
            )
    return out


# -- the reader ----------------------------------------------------------------------------

_ISSUER_TENANT = re.compile(r"/([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})/")
DISCOVERY_TIMEOUT = 15.0
CONCURRENCY = 16


def issuer_tenant(doc: Any) -> str | None:
    """The tenant id a discovery document's issuer names (``https://…/{tid}/v2.0``)."""
    issuer = str(doc.get("issuer", "")) if isinstance(doc, dict) else ""
    match = _ISSUER_TENANT.search(issuer + "/")
    return match.group(1).lower() if match else None


async def discover_one(client: Any, endpoints: EntraEndpoints, domain: str) -> Discovery:
    """Entra's discovery for one domain, as an answer (never raises for Entra's sake)."""
    import httpx

    from apsis_core.entra import aadsts_codes
    from apsis_core.errors import retryable_status

    try:
        resp = await client.get(endpoints.discovery_url(domain), timeout=DISCOVERY_TIMEOUT)
    except httpx.HTTPError as exc:
        return Discovery(domain, "unavailable", detail=f"{type(exc).__name__} from {endpoints.authority_host}")
    if resp.status_code == 200:
        try:
            owner = issuer_tenant(resp.json())
        except ValueError:
            owner = None
        if owner is None:
            return Discovery(domain, "unavailable", detail="a discovery document naming no tenant")
        return Discovery(domain, "resolved", owner)
    if retryable_status(resp.status_code):
        return Discovery(domain, "unavailable", detail=f"HTTP {resp.status_code}")
    try:
        body = resp.json()
    except ValueError:
        body = None
    text = str(body.get("error_description", "")) if isinstance(body, dict) else ""
    codes = aadsts_codes(text, body)
    if resp.status_code in (400, 404) or 90002 in codes:
        return Discovery(domain, "unknown", detail=f"AADSTS{codes[0]}" if codes else f"HTTP {resp.status_code}")
    return Discovery(domain, "unavailable", detail=f"HTTP {resp.status_code}")


async def discover_async(endpoints: EntraEndpoints, domains: Sequence[str], client: Any = None) -> list[Discovery]:
    """Entra's discovery for each domain, concurrently (in ``domains``' order)."""
    import httpx

    if not domains:
        return []
    if client is None:
        async with httpx.AsyncClient(verify=endpoints.ssl_context) as own:
            return await discover_async(endpoints, domains, own)
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(domain: str) -> Discovery:
        async with gate:
            return await discover_one(client, endpoints, domain)

    return list(await asyncio.gather(*(one(d) for d in domains)))


def discover(endpoints: EntraEndpoints, domains: Sequence[str]) -> list[Discovery]:
    return asyncio.run(discover_async(endpoints, domains))


def check(
    endpoints: EntraEndpoints, tenant_id: str, domains: Sequence[str], now: datetime | None = None
) -> list[Verdict]:
    """Ask Entra about ``domains`` and judge each for ``tenant_id``."""
    return judge_all(discover(endpoints, domains), tenant_id, now)


# -- recording a check on the account ----------------------------------------------------


def store(
    api: Any,
    org_id: str,
    tenant_id: str,
    domains: Sequence[str],
    verdicts: Sequence[Verdict],
    now: datetime | None = None,
) -> Recorded | None:
    """Record a check on the organization (``api``: a ``KeycloakRepository``): its proofs and
    alerts as ``after_check`` says, from the organization as it is now (read, changed, written
    in one PUT: Keycloak has no version check, so a write at the same instant can be lost, as
    for the other attributes). None when the organization is gone."""
    org = api.organization(org_id)
    if org is None:
        return None
    attributes = dict(org.get("attributes") or {})
    recorded = after_check(attributes, tenant_id, domains, verdicts, now)
    changed = False
    for key, values in ((DOMAIN_PROOFS_KEY, recorded.proofs), (DOMAIN_ALERTS_KEY, recorded.alerts)):
        if list(attributes.get(key) or []) != values:
            changed = True
            if values:
                attributes[key] = values
            else:
                attributes.pop(key, None)
    if changed:
        org["attributes"] = attributes
        api.update_organization(org_id, org)
    return recorded
