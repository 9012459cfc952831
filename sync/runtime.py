"""The daemon's wiring: everything a cycle needs, built once per process.

Settings, the state database, where secrets come from, where notices go, metrics and
health; and the long-lived async runtime every cycle (``run --once`` too) runs in: one event
loop, one TLS context, a small ``GraphStack`` (an httpx connection pool) per account
in flight, taken from a free list and given back after its Graph reads, each account's Graph
token kept across cycles, and a bounded pool of Keycloak repositories
(python-keycloak is blocking: its calls run in threads, at most ``keycloak_concurrency``
requests in flight). Tests build a ``Runtime`` with their own pieces (a recording ``sleep``,
a fixed ``today``, another ``SecretSource``).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from apsis_core.account import AccountRecord
from apsis_core.certificates import KeyPair, load_key_pair
from apsis_core.entra import EntraEndpoints
from apsis_core.errors import ApsisError
from apsis_core.keycloak import KeycloakPort, KeycloakRepository
from apsis_core.keycloak.port import (
    Event,
    FederatedIdentity,
    IdentityProvider,
    IdentityProviderMapper,
    LinkRow,
    Organization,
    OrganizationRef,
    User,
    UserSession,
)
from apsis_core.settings import Settings
from sync import guard
from sync.graph_client import Sleep
from sync.health import Health
from sync.metrics import SyncMetrics
from sync.notify import Notifier, Sender
from sync.secrets import DirectorySecrets, SecretSource
from sync.settings import SyncSettings
from sync.state import StateStore

if TYPE_CHECKING:
    from pydantic import SecretStr

    from sync.graph_client import AccountToken, GraphClient, GraphStack, RetryPolicy

T = TypeVar("T")

log = logging.getLogger("apsis_sync.daemon")


@dataclass
class Runtime:
    """Everything a cycle needs, built once per process."""

    settings: Settings
    sync: SyncSettings
    state: StateStore
    secrets: SecretSource
    notifier: Sender
    metrics: SyncMetrics
    api_factory: Callable[[], KeycloakRepository]
    sleep: Sleep = asyncio.sleep
    today: Callable[[], date] = date.today
    stop: threading.Event = field(default_factory=threading.Event)
    health: Health = field(default_factory=lambda: Health(300))
    _apis: queue.SimpleQueue[KeycloakRepository] = field(default_factory=queue.SimpleQueue)
    _loop: asyncio.AbstractEventLoop | None = None
    _graph: GraphStack | None = None
    _free_stacks: list[GraphStack] = field(default_factory=list)
    _stacks: list[GraphStack] = field(default_factory=list)
    _tokens: dict[str, AccountToken] = field(default_factory=dict)
    _key_files: dict[str, tuple[float, KeyPair]] = field(default_factory=dict)
    _threads: ThreadPoolExecutor | None = None
    okta: dict[str, Any] = field(default_factory=dict)
    """The Okta reader's state for the process (``sync.okta_read``): its HTTP pool and clients."""

    @classmethod
    def build(cls, settings: Settings, sync: SyncSettings, **overrides: Any) -> Runtime:
        return cls(
            settings=settings,
            sync=sync,
            state=overrides.pop("state", None) or StateStore(sync.state_location),
            secrets=overrides.pop("secrets", None) or DirectorySecrets(sync.secrets_path),
            notifier=overrides.pop("notifier", None) or Notifier(sync),
            metrics=overrides.pop("metrics", None) or SyncMetrics(),
            api_factory=overrides.pop("api_factory", None) or (lambda: KeycloakRepository.for_tooling(settings)),
            health=overrides.pop("health", None) or Health(sync.interval_seconds),
            **overrides,
        )

    def assertion_key(self, upcoming: bool = False) -> KeyPair | None:
        """The assertion key pair of certificate accounts (``APSIS_SSO_ASSERTION_KEY_FILE``; with
        ``upcoming`` the next one), read again when the file changes (a key switch replaces it);
        None when unset or unreadable."""
        path = self.settings.assertion_next_key_file if upcoming else self.settings.assertion_key_file
        if path is None:
            return None
        try:
            mtime = path.stat().st_mtime
            held = self._key_files.get(str(path))
            if held is None or held[0] != mtime:
                held = self._key_files[str(path)] = (mtime, load_key_pair(path))
        except (OSError, ApsisError) as exc:
            log.warning("cannot read the assertion key file %s: %s", path, exc)
            return None
        return held[1]

    # -- Keycloak ---------------------------------------------------------------------

    @contextmanager
    def api(self) -> Iterator[KeycloakRepository]:
        """A Keycloak repository for this thread's work; repositories (and their tokens) are reused."""
        try:
            api = self._apis.get_nowait()
        except queue.Empty:
            api = self.api_factory()
        try:
            yield api
        finally:
            self._apis.put(api)

    @cached_property
    def keycloak(self) -> PooledKeycloak:
        """The repository's methods, callable from any thread, within the request bound."""
        return PooledKeycloak(self, threading.BoundedSemaphore(self.sync.keycloak_concurrency))

    async def blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking work (Keycloak, the state database) off the event loop."""
        if self._threads is None:
            self._threads = ThreadPoolExecutor(
                max_workers=self.sync.keycloak_concurrency + 2, thread_name_prefix="apsis-sync"
            )
        return await asyncio.get_running_loop().run_in_executor(self._threads, fn, *args)

    # -- the event loop and Graph -----------------------------------------------------

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` on the runtime's one event loop (created on first use, kept until
        ``close``): Graph connections and tokens live as long as the process."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(work)

    @cached_property
    def endpoints(self) -> EntraEndpoints:
        """One ``EntraEndpoints`` (and so one TLS context) for the process."""
        return EntraEndpoints.from_settings(self.settings, timeout=self.sync.graph_timeout)

    def graph_client(self, account: AccountRecord, secret: SecretStr | KeyPair, retry: RetryPolicy) -> GraphClient:
        """This cycle's client of the account: a stack of its own until ``release_graph``, its kept token
        (a new one when the tenant, app or secret changed), a fresh request count and waits."""
        from sync.graph_client import AccountToken, GraphClient, GraphStack, secret_fingerprint

        if self._graph is None:
            # owns the token transport (aiohttp) every account's token requests share
            self._graph = GraphStack(self.endpoints, max_connections=2)
        # httpcore's pool walks every connection it holds (a poll() per idle socket, through
        # has_expired) on each request and each release, so one large shared pool was a large
        # share of an idle cycle's event-loop CPU (bench/README.md). A stack per account in flight holds two
        # (the page and its prefetch); released by AccountCycle.read_changes when its reads are done.
        stack = self._free_stacks.pop() if self._free_stacks else None
        if stack is None:
            stack = GraphStack(self.endpoints, max_connections=2)
            self._stacks.append(stack)
        tenant, client_id = account.tenant_id or "", account.client_id or ""
        token = self._tokens.get(account.id)
        if token is None or token.fingerprint != secret_fingerprint(tenant, client_id, secret):
            token = AccountToken.for_secret(
                self.endpoints, tenant, client_id, secret, transport=self._graph.token_transport
            )
            self._tokens[account.id] = token
        return GraphClient(self.endpoints, tenant, client_id, retry=retry, stack=stack, token=token)

    def release_graph(self, client: GraphClient) -> None:
        self._free_stacks.append(client.stack)

    def forget_tokens_except(self, keep: set[str]) -> None:
        for gone in set(self._tokens) - keep:
            del self._tokens[gone]

    def close(self) -> None:
        """Close Graph's connections, the event loop and the worker threads."""
        if self._loop is not None:
            for stack in self._stacks:
                self._loop.run_until_complete(stack.close())
            self._stacks.clear()
            self._free_stacks.clear()
            if self._graph is not None:
                self._loop.run_until_complete(self._graph.close())
                self._graph = None
            if "http" in self.okta:
                self._loop.run_until_complete(self.okta["http"].aclose())
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()
            self._loop = None
        self._tokens.clear()  # they fetch through the stack just closed
        self.okta.clear()
        if self._threads is not None:
            self._threads.shutdown(wait=True)
            self._threads = None

    @property
    def limits(self) -> guard.GuardLimits:
        return guard.GuardLimits(
            self.sync.guard_max_users, self.sync.guard_max_percent, self.sync.guard_percent_min_users
        )


class PooledKeycloak(KeycloakPort):
    """``KeycloakPort`` safe to call from many threads at once: each call takes a repository of
    the runtime's pool (python-keycloak's session is not meant to be shared) and one of
    ``keycloak_concurrency`` request slots. A paged listing keeps its repository while the
    caller iterates and takes a slot per item fetched, so a caller may ask other things
    between items without waiting on itself. Every method forwards explicitly, so mypy
    checks the pool against the port like the repository it forwards to."""

    def __init__(self, rt: Runtime, gate: threading.BoundedSemaphore) -> None:
        self._rt = rt
        self._gate = gate
        self.realm = rt.settings.realm

    # -- forwarding -------------------------------------------------------------------

    def _call(self, ask: Callable[[KeycloakPort], T]) -> T:
        with self._rt.api() as api, self._gate:
            return ask(api)

    def _paged(self, listing: Callable[[KeycloakPort], Iterator[T]]) -> Iterator[T]:
        with self._rt.api() as api:
            with self._gate:
                items = listing(api)
            while True:
                with self._gate:
                    try:
                        item = next(items)
                    except StopIteration:
                        return
                yield item

    @property
    def who(self) -> str:
        return self._call(lambda api: api.who)

    def worker(self) -> KeycloakPort:
        return self  # every call takes a repository of its own already

    # -- organizations ----------------------------------------------------------------

    def organizations(self, query: str | None = None) -> Iterator[Organization]:
        return self._paged(lambda api: api.organizations(query))

    def organizations_count(self) -> int:
        return self._call(lambda api: api.organizations_count())

    def organizations_named(self, text: str, limit: int = 50) -> list[Organization]:
        return self._call(lambda api: api.organizations_named(text, limit))

    def organization_by_alias(self, alias: str) -> Organization | None:
        return self._call(lambda api: api.organization_by_alias(alias))

    def organization(self, org_id: str) -> Organization | None:
        return self._call(lambda api: api.organization(org_id))

    def create_organization(self, rep: Organization) -> str | None:
        return self._call(lambda api: api.create_organization(rep))

    def update_organization(self, org_id: str, rep: Organization) -> None:
        self._call(lambda api: api.update_organization(org_id, rep))

    def change_organization_attribute(
        self, org_id: str, key: str, change: Callable[[list[str]], list[str] | None]
    ) -> Organization | None:
        return self._call(lambda api: api.change_organization_attribute(org_id, key, change))

    def delete_organization(self, org_id: str) -> None:
        self._call(lambda api: api.delete_organization(org_id))

    def link_organization_idp(self, org_id: str, alias: str) -> None:
        self._call(lambda api: api.link_organization_idp(org_id, alias))

    def unlink_organization_idp(self, org_id: str, alias: str) -> None:
        self._call(lambda api: api.unlink_organization_idp(org_id, alias))

    def members(self, org_id: str) -> Iterator[User]:
        return self._paged(lambda api: api.members(org_id))

    def members_count(self, org_id: str) -> int:
        return self._call(lambda api: api.members_count(org_id))

    def add_member(self, org_id: str, user_id: str) -> None:
        self._call(lambda api: api.add_member(org_id, user_id))

    def remove_member(self, org_id: str, user_id: str) -> None:
        self._call(lambda api: api.remove_member(org_id, user_id))

    def user_organizations(self, user_id: str) -> list[OrganizationRef]:
        return self._call(lambda api: api.user_organizations(user_id))

    # -- identity providers -----------------------------------------------------------

    def identity_providers(self) -> Iterator[IdentityProvider]:
        return self._paged(lambda api: api.identity_providers())

    def identity_provider(self, alias: str) -> IdentityProvider | None:
        return self._call(lambda api: api.identity_provider(alias))

    def create_identity_provider(self, rep: IdentityProvider) -> None:
        self._call(lambda api: api.create_identity_provider(rep))

    def update_identity_provider(self, alias: str, rep: IdentityProvider) -> None:
        self._call(lambda api: api.update_identity_provider(alias, rep))

    def delete_identity_provider(self, alias: str) -> None:
        self._call(lambda api: api.delete_identity_provider(alias))

    def idp_mappers(self, alias: str) -> list[IdentityProviderMapper]:
        return self._call(lambda api: api.idp_mappers(alias))

    def all_idp_mappers(self) -> dict[str, list[IdentityProviderMapper]] | None:
        return self._call(lambda api: api.all_idp_mappers())

    def create_idp_mapper(self, alias: str, rep: IdentityProviderMapper) -> None:
        self._call(lambda api: api.create_idp_mapper(alias, rep))

    def update_idp_mapper(self, alias: str, mapper_id: str, rep: IdentityProviderMapper) -> None:
        self._call(lambda api: api.update_idp_mapper(alias, mapper_id, rep))

    def delete_idp_mapper(self, alias: str, mapper_id: str) -> None:
        self._call(lambda api: api.delete_idp_mapper(alias, mapper_id))

    # -- users ------------------------------------------------------------------------

    def users(self, **params: Any) -> Iterator[User]:
        return self._paged(lambda api: api.users(**params))

    def users_by_email(self, email: str) -> list[User]:
        return self._call(lambda api: api.users_by_email(email))

    def users_count(self, **params: Any) -> int:
        return self._call(lambda api: api.users_count(**params))

    def user(self, user_id: str) -> User | None:
        return self._call(lambda api: api.user(user_id))

    def update_user(self, user_id: str, rep: User) -> None:
        self._call(lambda api: api.update_user(user_id, rep))

    def logout_user(self, user_id: str) -> None:
        self._call(lambda api: api.logout_user(user_id))

    def user_sessions(self, user_id: str) -> list[UserSession]:
        return self._call(lambda api: api.user_sessions(user_id))

    # -- links to an account's identity provider --------------------------------------

    def user_by_idp_link(self, alias: str, idp_user_id: str) -> User | None:
        return self._call(lambda api: api.user_by_idp_link(alias, idp_user_id))

    def linked_users(self, alias: str, *, brief: bool = True) -> Iterator[User]:
        return self._paged(lambda api: api.linked_users(alias, brief=brief))

    def idp_links(self, alias: str, oids: list[str] | None = None) -> Iterator[LinkRow]:
        return self._paged(lambda api: api.idp_links(alias, oids))

    def users_by_emails(self, alias: str, emails: list[str]) -> Iterator[LinkRow]:
        return self._paged(lambda api: api.users_by_emails(alias, emails))

    def linked_users_count(self, alias: str) -> int:
        return self._call(lambda api: api.linked_users_count(alias))

    def federated_identities(self, user_id: str) -> list[FederatedIdentity]:
        return self._call(lambda api: api.federated_identities(user_id))

    def unlink_user(self, user_id: str, alias: str) -> None:
        self._call(lambda api: api.unlink_user(user_id, alias))

    # -- events -----------------------------------------------------------------------

    def events(self, **params: Any) -> list[Event]:
        return self._call(lambda api: api.events(**params))
