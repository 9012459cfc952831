"""Every Keycloak of the project starts with a realms cache that holds a 10,000-account realm.

Keycloak's default (10,000 entries) holds ~2,400 accounts: past that, listing every
organization evicts what the next page needs and the whole listing is read cold (issue 11's
no-change plan grew 105x for 10x the accounts). ``bench/plan_noop.py`` measures the effect
(the realms cache's misses per plan); these tests keep the option on every command line.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from devenv.cluster import node_options
from devenv.keycloak import REALMS_CACHE_ENTRIES_PER_ACCOUNT, REALMS_CACHE_MAX_COUNT, KeycloakServer, cache_options

pytestmark = pytest.mark.unit

OPTION = "--cache-embedded-realms-max-count"
ACCOUNTS_AT_SCALE = 10_000  # issue 11's largest realm
KEYCLOAK_DEFAULT = 10_000  # Keycloak's own cache-embedded-realms-max-count


def max_count(args: list[str]) -> int:
    values = [a.split("=", 1)[1] for a in args if a.startswith(OPTION + "=")]
    assert len(values) == 1, args
    return int(values[0])


def test_the_realms_cache_holds_every_account_of_a_realm_at_scale() -> None:
    needed = ACCOUNTS_AT_SCALE * REALMS_CACHE_ENTRIES_PER_ACCOUNT
    assert REALMS_CACHE_MAX_COUNT >= needed > KEYCLOAK_DEFAULT
    assert max_count(cache_options()) == REALMS_CACHE_MAX_COUNT


def test_dev_mode_starts_with_the_cache_size() -> None:
    command = KeycloakServer().command(Path("/opt/keycloak"))
    assert "start-dev" in command
    assert max_count(command) == REALMS_CACHE_MAX_COUNT


def test_production_nodes_start_with_the_cache_size() -> None:
    # docker-compose.yml's command is checked against node_options in tests/test_deploy_files.py
    assert max_count(node_options("https://sso.example.com")) == REALMS_CACHE_MAX_COUNT
