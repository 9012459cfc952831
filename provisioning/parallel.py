"""Applying a plan over many accounts: accounts side by side, each account's changes in order.

An account's changes depend on each other (the provider needs the organization, the link
needs both) but not on another account's: the planners refuse a file in which two accounts
claim one domain or name, or one claims what another holds. The one exception is
``--prune``: a pruned account may hold a domain a listed one takes over, so accounts that
are only deleted go first, in a wave of their own.

Each worker thread has its own Keycloak connection (``KeycloakRepository.worker``): a
python-keycloak connection is one ``requests`` session with a token refreshed in place,
neither safe to share. The number of workers is bounded (``--parallel``): Keycloak on two
cores saturates at a few concurrent writers, and more only queue in its thread pool.

One failure stops new work: accounts already started finish their changes (a few requests
each, so fewer accounts are left half-made), no other starts, and the error says what was
done and that a rerun completes it (every planner re-reads Keycloak). Progress is reported
from the calling thread, account by account in plan order.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from provisioning.plan import Change, Plan, first_line, interrupted
from provisioning.progress import SILENT, InOrder, Progress

if TYPE_CHECKING:
    from apsis_core.keycloak import KeycloakPort

DEFAULT_WORKERS = 4
MAX_WORKERS = 32


@dataclass
class Lane:
    """One account's changes, applied in order by one worker."""

    index: int
    account: str | None
    changes: list[Change]
    done: int = 0
    failure: BaseException | None = None
    started: bool = False

    @property
    def failed_at(self) -> Change | None:
        return self.changes[self.done] if self.failure is not None else None

    def describe(self) -> str:
        done = ", ".join(f"{c.action} {c.kind}" for c in self.changes[: self.done]) or "nothing done"
        line = f"{self.account or 'realm'}: {done}"
        if self.failure is not None and self.failed_at is not None:
            line += f"; failed at {self.failed_at.action} {self.failed_at.kind}: {first_line(self.failure)}"
        return line


@dataclass
class _Run:
    api: KeycloakPort
    stop: threading.Event = field(default_factory=threading.Event)
    local: threading.local = field(default_factory=threading.local)
    lock: threading.Lock = field(default_factory=threading.Lock)
    first_failed: Lane | None = None

    def worker_api(self, parallel: bool) -> KeycloakPort:
        if not parallel:
            return self.api
        if getattr(self.local, "api", None) is None:
            self.local.api = self.api.worker()
        return self.local.api

    def run(self, lane: Lane, parallel: bool) -> Lane:
        if self.stop.is_set():
            return lane
        lane.started = True
        api = self.worker_api(parallel)
        for change in lane.changes:
            try:
                if change.apply is not None:
                    change.apply(api)
            except Exception as exc:  # noqa: BLE001 - reported by the caller, with what was done
                lane.failure = exc
                with self.lock:
                    self.first_failed = self.first_failed or lane
                self.stop.set()
                return lane
            lane.done += 1
        return lane


def lanes(plan: Plan) -> list[list[Lane]]:
    """The plan's changes per account in plan order, in waves: accounts only deleted first."""
    by_account: dict[str | None, list[Change]] = {}
    for change in plan.changes:
        by_account.setdefault(change.account, []).append(change)
    all_lanes = [Lane(i, account, changes) for i, (account, changes) in enumerate(by_account.items())]
    deleted = [lane for lane in all_lanes if all(c.action == "delete" for c in lane.changes)]
    rest = [lane for lane in all_lanes if lane not in deleted]
    return [wave for wave in (deleted, rest) if wave]


def apply_plan(plan: Plan, api: KeycloakPort, *, workers: int = DEFAULT_WORKERS, progress: Progress = SILENT) -> int:
    """Apply ``plan`` with up to ``workers`` accounts at once; returns the changes applied.

    Raises the first failure itself when nothing was applied (its own exit code), else
    ``Interrupted`` naming it, what was done, and that a rerun completes it."""
    if not 1 <= workers <= MAX_WORKERS:
        raise ValueError(f"workers must be between 1 and {MAX_WORKERS}")
    waves = lanes(plan)
    every = [lane for wave in waves for lane in wave]
    run = _Run(api)
    parallel = workers > 1 and len(every) > 1
    by_index = {lane.index: lane for lane in every}
    order = InOrder([lane.index for lane in every], lambda i: progress.advance(by_index[i].describe()))
    progress.begin("applying", len(every), "accounts")
    try:
        if parallel:
            with ThreadPoolExecutor(max_workers=min(workers, len(every)), thread_name_prefix="apsis-apply") as pool:
                for wave in waves:
                    futures: list[Future[Lane]] = [pool.submit(run.run, lane, True) for lane in wave]
                    try:
                        for future in as_completed(futures):
                            order.done(future.result().index)
                    except BaseException:
                        run.stop.set()  # Ctrl-C: no account starts any more; those under way finish
                        raise
                    if run.stop.is_set():
                        break
        else:
            for lane in every:
                run.run(lane, False)
                order.done(lane.index)
                if run.stop.is_set():
                    break
    finally:
        order.flush()
        done = sum(lane.done for lane in every)
        progress.end(f"applied {done} of {len(plan.changes)} changes")
    failed = [lane for lane in every if lane.failure is not None]
    first = run.first_failed
    if first is None:
        return done
    assert first.failure is not None and first.failed_at is not None
    if done == 0:
        raise first.failure
    complete = sum(1 for lane in every if lane.started and lane.failure is None)
    detail = f" ({complete} of {len(every)} accounts complete"
    detail += f", {len(failed) - 1} more failed)" if len(failed) > 1 else ")"
    raise interrupted(done, len(plan.changes), first.failed_at, first.failure, detail=detail) from first.failure
