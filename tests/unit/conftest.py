"""Fixtures shared by unit-test modules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sync.state import StateStore
from tests.deprovision_world import World, record
from tests.keycloak_memory import MemoryKeycloak


@pytest.fixture
def world() -> Iterator[World]:
    kc = MemoryKeycloak()
    state = StateStore(":memory:")
    yield World(kc, state, record(kc, "acme", "acme.example"), record(kc, "other", "other.example"))
    state.close()
