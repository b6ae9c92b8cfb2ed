"""Seeded-bug kernel variants: a replay that cannot fail is not a check.

Each variant wraps a correct store and breaks one rule at the store API, the way a port
could get it wrong. The conformance suite must make every variant diverge, and the first
divergence must say what went wrong. (Finer, line-level bugs are the job of the mutation
campaign in ``tools/mutation/``.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ..kernel.clock import FakeProcessTable, ManualClock
from ..kernel.memory import InMemoryStore
from ..kernel.store import Store
from ..kernel.types import ClaimBoundary, RuntimeCommit, VacuumReport


class _Wrapped:
    """Delegates every store call to ``inner`` unless the variant overrides it."""

    def __init__(self, inner: Store) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class CommitKeepsLease(_Wrapped):
    def commit_runtime_state(self, commit: RuntimeCommit) -> Any:
        return self._inner.commit_runtime_state(
            replace(commit, release_session_execution_lease=None)
        )


class CommitSkipsInterruptDeferral(_Wrapped):
    def commit_runtime_state(self, commit: RuntimeCommit) -> Any:
        return self._inner.commit_runtime_state(
            replace(commit, interrupted_turn_input_turn_id=None)
        )


class CheckpointClaimsAsIdle(_Wrapped):
    def claim_ready_queued_work(self, *args: Any, **kwargs: Any) -> Any:
        if "boundary" in kwargs:
            kwargs["boundary"] = ClaimBoundary.IDLE
        else:
            args = (*args[:3], ClaimBoundary.IDLE, *args[4:])
        return self._inner.claim_ready_queued_work(*args, **kwargs)


class VacuumKeepsTombstones(_Wrapped):
    def vacuum(self) -> VacuumReport:
        return VacuumReport(0)


class ReleaseDoesNothing(_Wrapped):
    def release_session_execution_lease(self, *args: Any, **kwargs: Any) -> Any:
        return None


class LeaseIgnoresSession(_Wrapped):
    """Acquires every session's lease as session-0's: one lease row for the whole store."""

    def try_claim_session_execution_lease(self, session_id: str, *args: Any, **kwargs: Any) -> Any:
        return self._inner.try_claim_session_execution_lease("session-0", *args, **kwargs)


class CancelIgnoresSession(_Wrapped):
    """Finds the batch to cancel by id alone, whatever session it belongs to."""

    def cancel_queued_work_batch(self, session_id: str, batch_id: str) -> Any:
        for session in (session_id, "session-0", "session-1"):
            batch_ids = {b.batch_id for b, _ in self._inner.inspect_session(session).queued_work}
            if batch_id in batch_ids:
                return self._inner.cancel_queued_work_batch(session, batch_id)
        return self._inner.cancel_queued_work_batch(session_id, batch_id)


class SourceKeyOutlivesRow(_Wrapped):
    """Remembers every source key for good: a replay after the row was deleted returns the
    deleted batch instead of enqueueing a new one."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self._seen: dict[tuple[str, str | None], Any] = {}

    def enqueue_queued_work(self, draft: Any) -> Any:
        key = (draft.session_id, draft.source_key)
        known = self._seen.get(key)
        if known is not None and draft.source_key is not None:
            return known
        batch = self._inner.enqueue_queued_work(draft)
        self._seen[key] = batch
        return batch


class EnqueueIgnoresAvailableAt(_Wrapped):
    """Stores every batch as available at once, whatever available_at its draft asks for."""

    def enqueue_queued_work(self, draft: Any) -> Any:
        return self._inner.enqueue_queued_work(replace(draft, available_at_ms=0))


class CommitDropsOutbox(_Wrapped):
    """Applies a commit but enqueues none of its outbox batches."""

    def commit_runtime_state(self, commit: RuntimeCommit) -> Any:
        return self._inner.commit_runtime_state(replace(commit, enqueued_queue_batches=()))


@dataclass(frozen=True)
class BrokenKernel:
    name: str
    description: str
    wrap: Callable[[Store], Any]


BROKEN_KERNELS: tuple[BrokenKernel, ...] = (
    BrokenKernel(
        "commit_keeps_lease", "a releasing commit leaves the lease row held", CommitKeepsLease
    ),
    BrokenKernel(
        "commit_skips_interrupt_deferral",
        "an interrupted commit does not defer the turn's active inputs",
        CommitSkipsInterruptDeferral,
    ),
    BrokenKernel(
        "checkpoint_claims_as_idle",
        "queued-work claims at an active-turn checkpoint use the idle boundary's rules",
        CheckpointClaimsAsIdle,
    ),
    BrokenKernel(
        "vacuum_keeps_tombstones", "vacuum removes nothing and reports zero", VacuumKeepsTombstones
    ),
    BrokenKernel(
        "release_does_nothing", "releasing the lease leaves the row held", ReleaseDoesNothing
    ),
    BrokenKernel(
        "lease_ignores_session",
        "every session's lease is acquired on one row (the lease table keyed without the session)",
        LeaseIgnoresSession,
    ),
    BrokenKernel(
        "cancel_ignores_session",
        "cancelling a batch finds it by id alone, so one session cancels another's batch",
        CancelIgnoresSession,
    ),
    BrokenKernel(
        "source_key_outlives_row",
        "a source key replayed after its batch was deleted returns the deleted batch",
        SourceKeyOutlivesRow,
    ),
    BrokenKernel(
        "enqueue_ignores_available_at",
        "a batch enqueued for later is available at once",
        EnqueueIgnoresAvailableAt,
    ),
    BrokenKernel(
        "commit_drops_outbox",
        "a commit applies without enqueueing its outbox batches",
        CommitDropsOutbox,
    ),
)


def broken_kernel(name: str) -> BrokenKernel:
    for variant in BROKEN_KERNELS:
        if variant.name == name:
            return variant
    known = ", ".join(v.name for v in BROKEN_KERNELS)
    raise KeyError(f"unknown kernel variant {name!r}; known: {known}")


def broken_memory_store_factory(name: str) -> Callable[[ManualClock, FakeProcessTable], Store]:
    """A store factory for :class:`KernelAdapter` that builds the named broken variant."""
    variant = broken_kernel(name)

    def factory(clock: ManualClock, processes: FakeProcessTable) -> Store:
        wrapped: Store = variant.wrap(InMemoryStore(clock=clock, liveness=processes))
        return wrapped

    return factory
