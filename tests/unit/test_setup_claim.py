"""The setup claim (issue 19 item 5): of two setups of one account at once, one creates the
identity provider and the other is refused; a claim left by a run that died is taken over."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from apsis_core import contract
from apsis_core.account import AccountRecord
from provisioning.onboarding import SETUP_CLAIM_STALE, setup_claim
from provisioning.steps import SetupInProgress

pytestmark = pytest.mark.unit

NOW = datetime(2030, 5, 1, 12, 0, 0, tzinfo=UTC)


def idp(claimed: datetime | None, *, linked: bool = False) -> dict[str, Any]:
    config = {contract.SETUP_CLAIM_KEY: f"{claimed.strftime('%Y-%m-%dT%H:%M:%SZ')} 0123abcd"} if claimed else {}
    if linked:
        return {"alias": "entra-acme", "organizationId": "o1", "config": {**config, contract.MAPPERS_HASH_KEY: "h"}}
    return {"alias": "entra-acme", "config": config}


def record(stage: str, provider: dict[str, Any] | None = None) -> AccountRecord:
    """The account as onboarding reads it: the organization with its provider as it is."""
    org = {
        "id": "o1",
        "alias": "acme",
        "attributes": {contract.MANAGED_BY_KEY: [contract.MANAGED_BY], contract.STAGE_KEY: [stage]},
    }
    return AccountRecord.parse(org, provider)


def test_a_setup_claims_the_provider_it_creates():
    claim = setup_claim(record("awaiting-setup"), None, NOW)
    assert claim is not None and claim.startswith("2030-05-01T12:00:00Z ")
    assert setup_claim(record("awaiting-setup"), None, NOW) != claim  # each run its own


def test_a_fresh_claim_on_an_unfinished_account_refuses_any_other_run():
    provider = idp(NOW - timedelta(seconds=5))
    for stage in ("awaiting-setup", "pilot"):  # the org not yet updated, or updated and not yet linked
        with pytest.raises(SetupInProgress, match="being set up right now"):
            setup_claim(record(stage, provider), provider, NOW)


def test_a_stale_claim_is_taken_over_and_a_finished_account_is_left_alone():
    stale = idp(NOW - SETUP_CLAIM_STALE - timedelta(seconds=1))
    assert setup_claim(record("pilot", stale), stale, NOW) is not None
    done = idp(NOW, linked=True)
    assert setup_claim(record("pilot", done), done, NOW) is None  # complete: nothing to claim


def test_a_cli_create_claims_nothing():
    assert setup_claim(None, None, NOW) is None  # a new account
    unclaimed = idp(None)
    assert setup_claim(record("pilot", unclaimed), unclaimed, NOW) is None  # an interrupted create: completed as before
