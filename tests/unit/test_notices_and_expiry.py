"""When a secret's expiry is due, what each notice says and to whom, and that a dry run's
notices are recorded, never sent or remembered."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from pydantic import SecretStr

from apsis_core import contract
from apsis_core.account import AccountRecord
from sync import expiry
from sync.deprovision import Action, Restored
from sync.graph_client import PasswordCredential
from sync.notify import (
    RecordingNotifier,
    expiry_notice,
    quarantine_notice,
    restored_notice,
    stale_secret_notice,
    token_notice,
)
from sync.outbox import Outbox
from sync.report import AccountResult
from sync.settings import SyncSettings
from sync.state import StateStore

pytestmark = pytest.mark.unit
TODAY = date(2030, 1, 1)
SECRET = "Abc~secret-value-of-forty-characters-123"


def account(**attributes: list[str]) -> AccountRecord:
    attrs = {
        contract.MANAGED_BY_KEY: [contract.MANAGED_BY],
        contract.CLIENT_ID_KEY: ["app-1"],
        contract.TENANT_ID_KEY: ["tenant-1"],
        contract.SECRET_HINT_KEY: ["Abc"],
        contract.SECRET_EXPIRES_KEY: ["2030-01-31"],
        contract.IT_CONTACT_NAME_KEY: ["Ivy"],
        contract.IT_CONTACT_EMAIL_KEY: ["ivy@acme.example"],
        **attributes,
    }
    return AccountRecord.parse(
        {"id": "org-1", "alias": "acme", "name": "Acme", "attributes": attrs, "domains": [{"name": "acme.example"}]}
    )


def settings(**overrides: Any) -> SyncSettings:
    return SyncSettings(_env_file=None, platform_team_email="platform@apsis.example", **overrides)  # type: ignore[call-arg]


def credential(hint: str, end: str) -> PasswordCredential:
    return PasswordCredential("k", hint, "secret", datetime.fromisoformat(end).replace(tzinfo=UTC))


def test_graph_knows_the_real_end_date_of_the_secret_in_use_else_the_record_stands():
    ours, other = credential("Abc", "2030-03-01T00:00:00"), credential("Xyz", "2031-01-01T00:00:00")
    assert expiry.effective(date(2030, 1, 31), "Abc", [ours, other], TODAY) == expiry.SecretExpiry(
        date(2030, 3, 1), "graph", "Abc", 59
    )
    assert expiry.effective(date(2030, 1, 31), "Abc", None, TODAY).source == "recorded"  # type: ignore[union-attr]
    assert expiry.effective(date(2030, 1, 31), None, [ours, other], TODAY).source == "recorded"  # ambiguous
    assert expiry.effective(None, "Abc", [], TODAY) is None


@pytest.mark.parametrize(("days", "due"), [(45, None), (30, 30), (29, 30), (14, 14), (1, 1), (0, 0), (-3, 0)])
def test_each_threshold_is_due_once_reached(days, due):
    assert expiry.due_threshold(days, [30, 14, 7, 1]) == due


def test_notice_keys_name_the_secret_never_hold_it():
    exp = expiry.SecretExpiry(date(2030, 1, 31), "recorded", "Abc", 30)
    assert expiry.notice_key(exp, 30) == "expiry:Abc:2030-01-31:30"
    assert expiry.notice_key(exp, expiry.EXPIRED) == "expiry:Abc:2030-01-31:expired"
    key = expiry.token_notice_key("expired", "Abc", SecretStr(SECRET))
    assert SECRET not in key and key != expiry.token_notice_key("expired", "Abc", SecretStr(SECRET + "x"))


def test_secret_notices_go_to_the_it_contact_with_the_platform_team_in_copy():
    exp = expiry.SecretExpiry(date(2030, 1, 31), "graph", "Abc", 30)
    notice = expiry_notice(account(), exp, 30, settings())
    assert (notice.kind, notice.to, notice.cc) == ("secret-expiry", ("ivy@acme.example",), ("platform@apsis.example",))
    assert "expires in 30 days (2030-01-31)" in notice.subject and "Hello Ivy," in notice.body
    assert expiry_notice(account(), exp, expiry.EXPIRED, settings()).kind == "secret-expired"
    nobody = expiry_notice(account(**{contract.IT_CONTACT_EMAIL_KEY: []}), exp, 30, settings())
    assert nobody.to == ("platform@apsis.example",) and nobody.cc == ()
    assert token_notice(account(), "invalid", 7000215, settings()).kind == "token-invalid"


def test_operational_notices_go_to_the_platform_team_only_and_never_carry_a_secret():
    held = [Action("disable", "u1", "lin", "lin@acme.example", "oid-1", "deleted", "link")]
    for notice in (
        quarantine_notice(account(), "30 deactivations", held, settings()),
        stale_secret_notice(account(), "/secrets/acme", settings()),
        restored_notice(account(), [Restored("u1", "lin@acme.example", "oid-1", "restored")], settings()),
    ):
        assert notice.to == ("platform@apsis.example",) and notice.cc == ()
        assert SECRET not in notice.body and "ivy@acme.example" not in notice.to
    assert "apsis-sync release acme" in quarantine_notice(account(), "x", held, settings()).body


class MiniRuntime:
    """Just what an Outbox uses of the daemon's runtime."""

    def __init__(self, notifier: Any) -> None:
        from sync.metrics import SyncMetrics

        self.state = StateStore(":memory:")
        self.notifier = notifier
        self.metrics = SyncMetrics()


def test_a_dry_runs_outbox_records_and_remembers_nothing_a_real_one_sends_once():
    exp = expiry.SecretExpiry(date(2030, 1, 31), "recorded", "Abc", 30)
    notice = expiry_notice(account(), exp, 30, settings())
    real = RecordingNotifier()
    rt = MiniRuntime(real)
    dry = AccountResult("acme")
    outbox = Outbox(rt, account(), dry, dry_run=True)  # type: ignore[arg-type]
    assert outbox.send(notice, "k", after=lambda: pytest.fail("a dry run never runs after-delivery steps"))
    assert dry.notices == [notice] and real.sent == [] and outbox.due("k")
    done = AccountResult("acme")
    outbox = Outbox(rt, account(), done, dry_run=False)  # type: ignore[arg-type]
    assert outbox.send(notice, "k") and real.sent == [notice] and not outbox.due("k")


def test_with_a_renewal_link_the_notice_says_to_renew_there_and_the_webhook_never_gets_the_link():
    from sync.notify import RenewalLink

    exp = expiry.SecretExpiry(date(2030, 1, 31), "recorded", "Abc", 14)
    link = RenewalLink("https://sso-setup.apsis.example/i/acme/" + "T" * 43, datetime(2030, 1, 8, tzinfo=UTC))
    for notice in (
        expiry_notice(account(), exp, 14, settings(), link),
        token_notice(account(), "expired", 7000222, settings(), link),
    ):
        assert link.url in notice.body and "works until 2030-01-08 00:00 UTC" in notice.body
        assert "secure channel" not in notice.body  # nothing to send us any more
        shared = notice.to_dict()
        assert link.url not in shared["text"] and shared["data"]["renewal_link"] is True
    without = expiry_notice(account(), exp, 14, settings())
    assert "secure channel you used" in without.body and without.to_dict()["data"]["renewal_link"] is False
