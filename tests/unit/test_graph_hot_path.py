"""The daemon's Graph hot path without a server: delta pages parsed into slim records, the
account's token kept across cycles, the applications cadence, and the state's staged round."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from azure.core.credentials import AccessToken

from sync.graph_client import REFRESH_SECONDS, AccountToken
from sync.graph_pages import EntraUser, MalformedAnswer, parse_delta_page, parse_password_credentials
from sync.graph_read import Applications
from sync.state import SCHEMA_VERSION, KnownUser, StateStore, round_key

pytestmark = pytest.mark.unit


def test_a_delta_page_becomes_slim_records() -> None:
    body = json.dumps(
        {
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users(id,accountEnabled,mail)",
            "@odata.nextLink": "https://graph.microsoft.com/v1.0/users/delta?$skiptoken=abc",
            "value": [
                {
                    "id": "a",
                    "accountEnabled": True,
                    "mail": "A@x.example",
                    "userPrincipalName": "a@x.example",
                    "displayName": "ignored",
                },
                {"id": "b", "@removed": {"reason": "deleted"}},
                {"id": "c", "@removed": {}},
                {"id": "d", "accountEnabled": "yes", "mail": ""},
            ],
        }
    ).encode()
    page = parse_delta_page(body)
    assert page.next_link and page.next_link.endswith("abc") and page.delta_link is None
    assert page.users == [
        EntraUser("a", True, "A@x.example", "a@x.example"),
        EntraUser("b", removed="deleted"),
        EntraUser("c", removed="changed"),
        EntraUser("d"),
    ]
    assert page.users[0].emails == ["a@x.example"]


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"value": []}', b'{"value": 1, "@odata.deltaLink": "x"}'])
def test_a_page_not_shaped_like_graphs_is_refused(body: bytes) -> None:
    with pytest.raises(MalformedAnswer):
        parse_delta_page(body)


def test_password_credentials_keep_only_what_expiry_needs() -> None:
    creds = parse_password_credentials(
        json.dumps(
            {
                "passwordCredentials": [
                    {
                        "keyId": "k",
                        "hint": "abc",
                        "displayName": "d",
                        "endDateTime": "2021-09-09T19:50:29.3086381Z",
                        "secretText": None,
                    }
                ]
            }
        )
    )
    assert [(c.key_id, c.hint, c.end) for c in creds] == [
        ("k", "abc", datetime(2021, 9, 9, 19, 50, 29, 308638, tzinfo=UTC))
    ]


class CountingCredential:
    def __init__(self, lifetime: int) -> None:
        self.lifetime, self.calls, self.closed = lifetime, 0, 0

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.calls += 1
        return AccessToken(f"token-{self.calls}", int(time.time()) + self.lifetime)

    async def close(self) -> None:
        self.closed += 1


def test_the_token_is_kept_until_shortly_before_it_expires() -> None:
    made: list[CountingCredential] = []

    def fetch() -> CountingCredential:
        made.append(CountingCredential(3600))
        return made[-1]

    token = AccountToken("scope", fetch=fetch)  # type: ignore[arg-type]

    async def cycles() -> list[str]:
        got = [await token.get(), await token.get()]
        got += await asyncio.gather(token.get(), token.get())
        return got

    assert asyncio.run(cycles()) == ["token-1"] * 4
    assert len(made) == 1 and made[0].closed == 1  # a short-lived credential, closed after use
    token._token = AccessToken("old", int(time.time()) + REFRESH_SECONDS - 1)
    assert asyncio.run(token.get()) == "token-1" and len(made) == 2


def test_applications_are_asked_daily_after_a_200_or_a_403_and_at_once_for_new_credentials() -> None:
    state = StateStore(":memory:")
    rt = SimpleNamespace(state=state)
    account = SimpleNamespace(id="acme")
    day = date(2030, 1, 1)
    apps = Applications(rt, account, day)  # type: ignore[arg-type]
    assert apps.due("s1")  # never asked
    state.record_applications(
        "acme",
        day.isoformat(),
        [{"key_id": "k", "hint": "abc", "display_name": None, "end": "2030-02-01T00:00:00+00:00"}],
        "s1",
    )
    for answer in ("200", "403"):
        apps = Applications(rt, account, day)  # type: ignore[arg-type]
        assert not apps.due("s1"), answer  # same day, same secret
        assert apps.due("s2"), answer  # a new secret: at once
        assert Applications(rt, account, date(2030, 1, 2)).due("s1"), answer  # type: ignore[arg-type]  # next day
        state.record_applications("acme", day.isoformat(), None, "s1")  # then a 403
    state.close()


def test_a_retry_after_a_403_asks_with_a_new_token_and_no_token_is_ever_read() -> None:
    """A permission granted since the held token was issued shows only in a new token; the
    token itself is opaque to the daemon (only its fingerprint of the credentials counts)."""
    state = StateStore(":memory:")
    state.record_applications("acme", "2030-01-01", None, "s1")  # a 403 yesterday
    renewed: list[bool] = []

    class Client:
        token = SimpleNamespace(fingerprint="s1", renew=lambda: renewed.append(True), held=None)

        async def password_credentials(self, app_id: str) -> list[Any]:
            assert app_id == "app"
            return []

    rt = SimpleNamespace(state=state)
    account = SimpleNamespace(id="acme", client_id="app")
    apps = Applications(rt, account, date(2030, 1, 2))  # type: ignore[arg-type]
    assert asyncio.run(apps.read(Client())) == [] and renewed == [True]  # type: ignore[arg-type]
    apps.record(dry_run=False)
    assert state.applications_read("acme") == ("2030-01-02", [], "s1")
    again = Applications(rt, account, date(2030, 1, 3))  # type: ignore[arg-type]
    asyncio.run(again.read(Client()))  # type: ignore[arg-type]
    assert renewed == [True]  # after a 200 the held token serves
    state.close()


def test_a_staged_round_becomes_the_known_users_only_with_its_delta_link() -> None:
    state = StateStore(":memory:")
    state.record_run(
        "acme",
        ok=True,
        status="ok",
        errors=[],
        deactivated=0,
        delta_link="d0",
        seen=[KnownUser("old", "old@x", None, True, None), KnownUser("keep", "k@x", None, True, None)],
    )
    key = round_key("acme")
    state.stage(key, [EntraUser("keep", True, "k@x"), EntraUser("new", True, "n@x")])
    assert [k.oid for k in state.absent_known_users("acme", key)] == ["old"]
    assert set(state.staged_among(key, ["keep", "new", "old"])) == {"keep", "new"}
    assert state.known_user("acme", "new") is None  # staged is not known yet
    state.record_run("acme", ok=False, status="error", errors=["x"], deactivated=0)  # the round failed
    assert state.staged_among(key, ["keep", "new"]) == {} and state.known_user("acme", "new") is None
    state.stage(key, [EntraUser("keep", True, "k@x"), EntraUser("new", True, "n@x")])
    state.record_run("acme", ok=True, status="ok", errors=[], deactivated=0, delta_link="d1", full_listing=True)
    assert state.known_user("acme", "new") is not None
    assert state.known_user("acme", "old").removed == "absent"  # type: ignore[union-attr]
    assert round_key("acme", dry_run=True) != key
    state.close()


def test_an_idle_round_advances_its_delta_link_and_leaves_the_known_users_alone() -> None:
    state = StateStore(":memory:")
    state.record_run(
        "acme",
        ok=True,
        status="ok",
        errors=[],
        deactivated=0,
        delta_link="d0",
        seen=[KnownUser("keep", "k@x", None, True, None)],
    )
    state.record_run("acme", ok=True, status="ok", errors=[], deactivated=0, delta_link="d1", staged=False)
    assert state.delta_link("acme") == "d1"
    kept = state.known_user("acme", "keep")
    assert kept is not None and kept.removed is None and kept.mail == "k@x"
    state.close()


def test_a_version_1_state_database_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema', '1');
        CREATE TABLE accounts (account TEXT PRIMARY KEY, delta_link TEXT, delta_updated TEXT, last_run TEXT,
            last_success TEXT, last_status TEXT, last_errors TEXT NOT NULL DEFAULT '[]',
            last_deactivated INTEGER NOT NULL DEFAULT 0, deactivated_total INTEGER NOT NULL DEFAULT 0,
            secret_expires TEXT, secret_expires_source TEXT, quarantined_at TEXT, quarantine_reason TEXT,
            quarantine_held INTEGER NOT NULL DEFAULT 0);
        INSERT INTO accounts (account, delta_link) VALUES ('acme', 'kept');
    """)
    db.commit()
    db.close()
    state = StateStore(path)
    assert state.account("acme").delta_link == "kept"
    assert state.applications_read("acme") == (None, None, None)
    state.record_applications("acme", "2030-01-01", [], "k")
    assert state._query("SELECT value FROM meta WHERE key='schema'")[0][0] == str(SCHEMA_VERSION)
    state.close()
