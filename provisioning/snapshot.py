"""What the account planners compare against, read up front: a ``Snapshot``.

The planners (``provisioning.accounts``) are pure functions of a snapshot and the desired
accounts, so they are unit-tested without a server and a plan never reads Keycloak halfway.
Reading is here, and bulk where Keycloak allows: all organizations and all identity
providers are a few paged listings however many accounts there are. An IdP's mappers are
the one exception: Keycloak 26 has no listing of mappers across identity providers (they
left the realm representation), and comparing the real list is what makes a mapper deleted or
changed by hand visible, so the extension lists every mapper of the realm in one request
(``apsis-sso/idp-mappers``); a plan of a few accounts asks per provider instead.
The daemon's copies of the secrets (``APSIS_SSO_SYNC_SECRETS_DIR``) are read here too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from apsis_core import secret_files
from apsis_core.account import idp_alias, is_managed
from apsis_core.errors import InvalidInput
from apsis_core.keycloak import KeycloakPort
from apsis_core.keycloak.port import IdentityProvider, IdentityProviderMapper, Organization
from apsis_core.keycloak.repository import PAGE_SIZE
from provisioning.progress import SILENT, Progress, counted, phase

# Relative costs, measured (bench/plan_noop.py): one request for one provider's mappers, against
# one mapper's share of the realm-wide listing.
PER_PROVIDER_COST = 25
PER_MAPPER_COST = 1


@dataclass(frozen=True)
class DaemonFile:
    """apsis-sync's copy of one account's secret: is there a file, and what it holds."""

    path: Path
    exists: bool
    secret: SecretStr | None = field(default=None, repr=False)


@dataclass
class Snapshot:
    """What Keycloak (and the daemon's secrets directory) hold now."""

    orgs: dict[str, Organization] = field(default_factory=dict)
    idps: dict[str, IdentityProvider] = field(default_factory=dict)
    mappers: dict[str, list[IdentityProviderMapper]] = field(default_factory=dict)
    """Per IdP alias; read for the IdPs a plan compares (``mappers_for``)."""
    daemon_files: dict[str, DaemonFile] = field(default_factory=dict)
    """Per account id; read when ``APSIS_SSO_SYNC_SECRETS_DIR`` is set."""
    _owners: dict[str, str] | None = field(default=None, init=False, repr=False, compare=False)
    _names: dict[str, str] | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def load(
        cls,
        api: KeycloakPort,
        *,
        mappers_for: Iterable[str] = (),
        secrets_dir: Path | None = None,
        daemon_files_for: Iterable[str] = (),
        progress: Progress = SILENT,
    ) -> Snapshot:
        """Everything, in bulk; the mappers of the named accounts' IdPs (those that exist).
        The two listings are phases of ``progress``, a page at a time."""
        # The count is for the display only (its total and time left): a silent load skips it.
        total = api.organizations_count() if progress is not SILENT else None
        with phase(progress, "reading organizations", total, "organizations"):
            orgs = {o["alias"]: o for o in counted(api.organizations(), progress, PAGE_SIZE)}
        with phase(progress, "reading identity providers", None, "identity providers"):
            idps = {i["alias"]: i for i in counted(api.identity_providers(), progress, PAGE_SIZE)}
        snapshot = cls(orgs=orgs, idps=idps)
        snapshot.read_mappers(api, mappers_for)
        snapshot.read_daemon_files(secrets_dir, daemon_files_for)
        return snapshot

    @classmethod
    def for_account(
        cls,
        api: KeycloakPort,
        account_id: str,
        domains: tuple[str, ...] = (),
        name: str | None = None,
        *,
        secrets_dir: Path | None = None,
        with_mappers: bool = True,
    ) -> Snapshot:
        """Just what one account's plan needs: its organization, its IdP and that IdP's
        mappers, the owners of its domains (one search per domain) and of its name (one
        search), and the daemon's copy of its secret."""
        orgs: dict[str, Organization] = {}
        own = api.organization_by_alias(account_id)
        if own is not None:
            orgs[own["alias"]] = own
        for text in [*domains, *([name] if name is not None else [])]:
            for org in api.organizations_named(text):
                orgs.setdefault(org["alias"], org)
        idp = api.identity_provider(idp_alias(account_id))
        snapshot = cls(orgs=orgs, idps={idp["alias"]: idp} if idp else {})
        snapshot.read_mappers(api, [account_id] if with_mappers else [])
        snapshot.read_daemon_files(secrets_dir, [account_id])
        return snapshot

    def read_mappers(self, api: KeycloakPort, account_ids: Iterable[str]) -> None:
        """The mappers of the named accounts' existing IdPs: one listing of every mapper in the
        realm (the extension's) when that is cheaper than a request per provider, which it is
        from a few dozen providers on; per provider otherwise, or when the server's extension
        has no such listing."""
        wanted = [
            alias for alias in (idp_alias(a) for a in account_ids) if alias in self.idps and alias not in self.mappers
        ]
        if len(wanted) * PER_PROVIDER_COST > len(self.idps) * PER_MAPPER_COST:
            everything = api.all_idp_mappers()
            if everything is not None:
                for alias in wanted:
                    self.mappers[alias] = everything.get(alias, [])
                return
        for alias in wanted:
            self.mappers[alias] = api.idp_mappers(alias)

    def read_daemon_files(self, directory: Path | None, account_ids: Iterable[str]) -> None:
        if directory is None:
            return
        for account_id in account_ids:
            path = secret_files.path_for(directory, account_id)
            try:
                secret = secret_files.read(directory, account_id)
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
                raise InvalidInput(f"cannot read apsis-sync's secret file {path}: {reason}") from None
            self.daemon_files[account_id] = DaemonFile(path, secret is not None or path.exists(), secret)

    def mappers_of(self, alias: str) -> list[IdentityProviderMapper]:
        """The IdP's mappers as read (none for an IdP that does not exist yet)."""
        if alias not in self.idps:
            return []
        if alias not in self.mappers:
            raise KeyError(f"the snapshot holds no mappers of {alias}: load it with mappers_for")
        return self.mappers[alias]

    def domain_owner(self, domain: str) -> str | None:
        # An index built once: a plan over N accounts asks this N times.
        if self._owners is None:
            self._owners = {
                d.get("name", ""): alias for alias, org in self.orgs.items() for d in org.get("domains", [])
            }
        return self._owners.get(domain)

    def name_owner(self, name: str) -> str | None:
        """Keycloak refuses two organizations with one name: who has this one?"""
        if self._names is None:
            self._names = {}
            for alias, org in self.orgs.items():
                self._names.setdefault(str(org.get("name")), alias)
        return self._names.get(name)

    def managed(self) -> dict[str, Organization]:
        return {a: o for a, o in self.orgs.items() if is_managed(o)}

    def without_pruned(self, keep: set[str]) -> Snapshot:
        """Domains and names of managed accounts about to be pruned are free for the desired ones."""
        orgs = {a: o for a, o in self.orgs.items() if a in keep or not is_managed(o)}
        return Snapshot(orgs=orgs, idps=self.idps, mappers=self.mappers, daemon_files=self.daemon_files)
