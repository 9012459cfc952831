"""Where one account run's notices go (``Outbox``): sent once each, remembered in the state,
recorded instead of sent in a dry run."""

from __future__ import annotations

from collections.abc import Callable

from apsis_core.account import AccountRecord
from sync.notify import Notice, RecordingNotifier, Sender
from sync.report import AccountResult
from sync.runtime import Runtime


class Outbox:
    """Where one account run's notices go.

    A notice is delivered through the runtime's notifier and remembered under its ``key``
    (so each is sent once), and ``after`` runs once it was delivered; a notice no channel
    took fails the account temporarily and is tried again next cycle. In a dry run the
    notifier records instead of sending and nothing is remembered. The report lists every
    notice either way."""

    def __init__(self, rt: Runtime, account: AccountRecord, result: AccountResult, dry_run: bool) -> None:
        self.rt, self.account, self.result = rt, account, result
        self.dry_run = dry_run
        self.notifier: Sender = RecordingNotifier() if dry_run else rt.notifier

    def due(self, key: str) -> bool:
        """Not sent yet (a notice keyed by threshold, secret or quarantine goes out once)."""
        return not self.rt.state.notice_sent(self.account.id, key)

    def send(self, notice: Notice, key: str | None = None, after: Callable[[], None] | None = None) -> bool:
        delivered = self.notifier.send(notice)
        if not self.dry_run:
            self.rt.metrics.notifications.labels(notice.kind, "sent" if delivered else "failed").inc()
        if not delivered:
            self.result.fail(
                f"{notice.kind} notification for {self.account.id} could not be delivered; retrying next cycle",
                temporary=True,
            )
            return False
        self.result.notices.append(notice)
        if not self.dry_run:
            if key is not None:
                self.rt.state.mark_notice(self.account.id, key, notice.kind)
            if after is not None:
                after()
        return True
