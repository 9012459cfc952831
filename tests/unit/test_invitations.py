"""Invitation tokens, without a server: what is minted, what is stored, which link is still
good, and how issuing, revoking and completing change an account's invitations."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from apsis_core import invitations
from apsis_core.account import AccountRecord
from apsis_core.contract import INVITATIONS_KEY
from apsis_core.errors import InvalidInput
from apsis_core.invitations import Invitation
from tests.keycloak_memory import MemoryKeycloak

pytestmark = pytest.mark.unit

NOW = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
WEEK = timedelta(days=7)


def test_a_token_is_256_random_bits_and_only_its_sha256_is_kept():
    token, invitation = invitations.mint("setup", WEEK, NOW)
    assert len(base64.urlsafe_b64decode(token + "=")) == 32 and invitations.well_formed(token)
    assert invitation.digest == invitations.digest(token) and token not in invitation.value()
    assert len({invitations.mint("setup", WEEK, NOW)[0] for _ in range(200)}) == 200
    assert (invitation.issued, invitation.expires, invitation.state) == (NOW, NOW + WEEK, "open")


def test_a_stored_value_fits_keycloaks_255_characters_and_reads_back():
    _, invitation = invitations.mint("renew", timedelta(days=30), NOW)
    closed = invitation.close("superseded", NOW + timedelta(days=29, hours=23))
    for value in (invitation.value(), closed.value()):
        assert len(value) <= 255
        assert Invitation.parse(value) == (invitation if value == invitation.value() else closed)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "v2 setup open 2026-05-01T12:00:00Z 2026-05-08T12:00:00Z " + "a" * 64,
        "v1 delete open 2026-05-01T12:00:00Z 2026-05-08T12:00:00Z " + "a" * 64,
        "v1 setup open yesterday 2026-05-08T12:00:00Z " + "a" * 64,
        "v1 setup open 2026-05-01T12:00:00Z 2026-05-08T12:00:00Z " + "A" * 64,
        "v1 setup pending 2026-05-01T12:00:00Z 2026-05-08T12:00:00Z " + "a" * 64,
    ],
)
def test_a_malformed_value_is_no_invitation(value):
    assert Invitation.parse(value) is None


def test_verdicts_open_until_expiry_then_what_became_of_it():
    token, invitation = invitations.mint("setup", WEEK, NOW)
    assert invitations.verdict(invitation, NOW + WEEK - timedelta(seconds=1)) == "valid"
    assert invitations.verdict(invitation, NOW + WEEK) == "expired"
    assert invitations.verdict(None, NOW) == "unknown"
    for state in ("used", "revoked", "superseded"):
        assert invitation.close(state, NOW).verdict(NOW) == state  # type: ignore[arg-type]


def test_find_needs_the_exact_token_of_a_well_formed_shape():
    token, invitation = invitations.mint("setup", WEEK, NOW)
    _, other = invitations.mint("setup", WEEK, NOW)
    assert invitations.find([other, invitation], token) == invitation
    assert invitations.find([other], token) is None
    assert invitations.find([invitation], token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert invitations.find([invitation], invitation.digest) is None  # the hash is not the token
    assert not invitations.well_formed("../../etc/passwd") and not invitations.well_formed(token + "x")


def test_a_new_invitation_supersedes_the_open_one_of_its_intent_only():
    _, setup = invitations.mint("setup", WEEK, NOW)
    _, renew = invitations.mint("renew", WEEK, NOW)
    _, newer = invitations.mint("setup", WEEK, NOW + timedelta(hours=1))
    after = invitations.with_issued([setup, renew], newer)
    assert [(i.intent, i.state) for i in after] == [("setup", "superseded"), ("renew", "open"), ("setup", "open")]
    assert after[0].closed == NOW + timedelta(hours=1)
    assert invitations.open_invitation(after, "setup", NOW) == newer


def test_revoke_and_use_close_only_open_ones():
    _, a = invitations.mint("setup", WEEK, NOW)
    _, b = invitations.mint("renew", WEEK, NOW)
    everything, ended = invitations.with_revoked([a, b], "renew", NOW)
    assert ended == [b] and [i.state for i in everything] == ["open", "revoked"]
    used = invitations.with_used(everything, a.digest, NOW)
    assert [i.state for i in used] == ["used", "revoked"]
    assert invitations.with_used(used, b.digest, NOW) == used  # a revoked link cannot be used


def test_closed_invitations_are_pruned_to_the_newest_ten_and_open_ones_kept():
    closed = [
        invitations.mint("renew", WEEK, NOW)[1].close("superseded", NOW + timedelta(minutes=n)) for n in range(15)
    ]
    _, open_one = invitations.mint("setup", WEEK, NOW)
    kept = invitations.pruned([open_one, *closed])
    assert open_one in kept and len(kept) == 11
    assert {i.closed for i in kept if i.state != "open"} == {NOW + timedelta(minutes=n) for n in range(5, 15)}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("7d", timedelta(days=7)),
        ("36h", timedelta(hours=36)),
        (" 90m ", timedelta(minutes=90)),
        ("30d", timedelta(days=30)),
    ],
)
def test_validity_parses(text, expected):
    assert invitations.parse_validity(text) == expected


@pytest.mark.parametrize("text", ["", "7", "1w", "31d", "4m", "-1d", "7 days"])
def test_validity_is_refused_in_one_line(text):
    with pytest.raises(InvalidInput) as failed:
        invitations.parse_validity(text)
    assert "\n" not in str(failed.value)


def test_issue_revoke_and_complete_keep_only_hashes_on_the_organization():
    api = MemoryKeycloak()
    org_id = api.create_organization(
        {
            "alias": "acme",
            "name": "Acme",
            "domains": [],
            "attributes": {"apsis.stage": ["pilot"], "apsis.quarantined": ["x"]},
        }
    )
    assert org_id is not None

    def record() -> AccountRecord:
        org = api.organization(org_id)
        assert org is not None
        return AccountRecord.parse(org)

    token, first = invitations.issue(api, record(), "renew", WEEK, NOW)
    token2, second = invitations.issue(api, record(), "renew", WEEK, NOW + timedelta(minutes=1))
    stored = record().attributes[INVITATIONS_KEY]
    assert token not in " ".join(stored) and token2 not in " ".join(stored)
    assert record().attributes["apsis.quarantined"] == ["x"]  # the rest of the organization untouched
    held = invitations.of_record(record())
    assert invitations.find(held, token).state == "superseded"  # type: ignore[union-attr]
    invitations.complete(api, record(), second, NOW + timedelta(minutes=2))
    assert invitations.find(invitations.of_record(record()), token2).state == "used"  # type: ignore[union-attr]
    assert invitations.revoke(api, record(), None, NOW) == []
    assert first.id == first.digest[:12]
