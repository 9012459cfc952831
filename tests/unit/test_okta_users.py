"""The Okta reader's pure parts: users as the pipeline's changes, the cursor, the key store."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest

from apsis_core import okta_keys
from apsis_core.errors import InvalidInput
from sync.okta_users import Cursor, since, user_of

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("status", "enabled"),
    [
        ("ACTIVE", True),
        ("PROVISIONED", True),
        ("LOCKED_OUT", True),
        ("PASSWORD_EXPIRED", True),
        ("RECOVERY", True),
        ("SUSPENDED", False),
        ("DEPROVISIONED", False),
    ],
)
def test_okta_statuses_that_end_sso(status: str, enabled: bool):
    user = user_of({"id": "00u1", "status": status, "profile": {"login": "A@x.example", "email": "a@x.example"}})
    assert (user.oid, user.enabled, user.emails, user.removed) == ("00u1", enabled, ["a@x.example"], None)


def test_the_cursor_round_trips_and_says_when_a_full_listing_is_due():
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    cursor = Cursor("2026-01-02T03:00:00.123Z", moment, moment)
    assert Cursor.parse(cursor.text()) == cursor
    assert not cursor.due_full(moment + timedelta(hours=23))
    assert cursor.due_full(moment + timedelta(days=1))
    assert Cursor.parse(None) is None and Cursor.parse("https://graph.microsoft.com/…") is None
    assert Cursor.parse("okta:garbage") is None
    assert since("2026-01-02T03:00:00.123Z") == "2026-01-02T02:59:59.123Z", "one second of overlap"


def test_one_key_pair_per_account_owner_only_and_stable(tmp_path: Path):
    jwk = okta_keys.ensure(tmp_path, "acme")
    assert okta_keys.ensure(tmp_path, "acme") == jwk, "generated once"
    assert okta_keys.ensure(tmp_path, "beta")["kid"] != jwk["kid"], "another account, another key"
    path = okta_keys.path_for(tmp_path, "acme")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert (
        set(jwk) == {"kty", "n", "e", "kid", "alg", "use"}
        and "d" not in json.loads(okta_keys.jwks_text(jwk))["keys"][0]
    )
    token = jwt.encode({"sub": "x"}, okta_keys.load(tmp_path, "acme"), algorithm="RS256")
    assert jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=["RS256"]) == {"sub": "x"}
    with pytest.raises(InvalidInput, match="no Okta API key for account gamma"):
        okta_keys.load(tmp_path, "gamma")
