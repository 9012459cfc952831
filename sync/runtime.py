"""The daemon's wiring: everything a cycle needs, built once per process.

Settings, the state database, where secrets come from, where notices go, metrics and
health, and a small pool of Keycloak repositories (one per worker thread, each keeping its
token). Tests build a ``Runtime`` with their own pieces (a recording ``sleep``, a fixed
``today``, another ``SecretSource``).
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from apsis_core.entra import EntraEndpoints
from apsis_core.keycloak import KeycloakRepository
from apsis_core.settings import Settings
from sync import guard
from sync.graph_client import Sleep
from sync.health import Health
from sync.metrics import SyncMetrics
from sync.notify import Notifier, Sender
from sync.secrets import DirectorySecrets, SecretSource
from sync.settings import SyncSettings
from sync.state import StateStore


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
    _apis: "queue.SimpleQueue[KeycloakRepository]" = field(default_factory=queue.SimpleQueue)

    @classmethod
    def build(cls, settings: Settings, sync: SyncSettings, **overrides: Any) -> "Runtime":
        return cls(
            settings=settings,
            sync=sync,
            state=overrides.pop("state", None) or StateStore(sync.database),
            secrets=overrides.pop("secrets", None) or DirectorySecrets(sync.secrets_path),
            notifier=overrides.pop("notifier", None) or Notifier(sync),
            metrics=overrides.pop("metrics", None) or SyncMetrics(),
            api_factory=overrides.pop("api_factory", None) or (lambda: KeycloakRepository.for_tooling(settings)),
            health=overrides.pop("health", None) or Health(sync.interval_seconds),
            **overrides,
        )

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

    @property
    def endpoints(self) -> EntraEndpoints:
        return EntraEndpoints.from_settings(self.settings, timeout=self.sync.graph_timeout)

    @property
    def limits(self) -> guard.GuardLimits:
        return guard.GuardLimits(self.sync.guard_max_users, self.sync.guard_max_percent, self.sync.guard_percent_min_users)
