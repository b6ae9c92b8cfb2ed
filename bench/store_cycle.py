"""What the store benchmarks share: one claim+commit cycle, and a connection that records.

``bench/sqlite.py`` and ``bench/postgres.py`` time the same workload through the store and
then replay the statements it sent on a plain connection, so both import it from here.
"""

from __future__ import annotations

from typing import Any

from lashspec.kernel.store import Store
from lashspec.kernel.types import (
    Acquired,
    ClaimBoundary,
    DeliveryPolicy,
    LeaseOwnerIdentity,
    ProcessWake,
    ProcessWakeDelivery,
    QueuedWorkBatchDraft,
    RuntimeCommit,
    SessionCheckpoint,
)

SESSION = "bench"
WHO = LeaseOwnerIdentity.opaque("bench")

Statement = tuple[str, tuple[Any, ...]]
"""A statement as executed: its text and the arguments that followed it."""


def draft(index: int) -> QueuedWorkBatchDraft:
    wake = ProcessWakeDelivery(
        f"wake-{index}", SESSION, "bench", index, f"work {index}", f"dedupe-{index}"
    )
    return QueuedWorkBatchDraft(
        SESSION, (ProcessWake(wake),), delivery_policy=DeliveryPolicy.EARLIEST_SAFE_BOUNDARY
    )


def cycle(store: Store, index: int) -> None:
    """What a runtime does per turn of queued work: enqueue one batch, acquire the session
    lease, claim the batch, commit the checkpoint completing the claim and releasing the
    lease (four store operations; the queue never holds more than one batch)."""
    store.enqueue_queued_work(draft(index))
    outcome = store.try_claim_session_execution_lease(SESSION, WHO, 60_000)
    assert isinstance(outcome, Acquired), outcome
    lease = outcome.lease
    claim = store.claim_ready_queued_work(SESSION, lease.fence(), WHO, ClaimBoundary.IDLE, 1)
    assert claim is not None, "the queue ran dry"
    store.commit_runtime_state(
        RuntimeCommit(
            SESSION,
            SessionCheckpoint(index, {"turn": index}),
            session_execution_lease=lease.fence(),
            release_session_execution_lease=lease.completion(),
            completed_queue_claims=(claim.completion(),),
        )
    )


class RecordingConnection:
    """Forwards to a DB-API style connection (sqlite3 or psycopg) and records every statement
    executed with its arguments, to be replayed as ``execute(statement, *arguments)``."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection
        self.log: list[Statement] = []

    def execute(self, statement: str, *arguments: Any) -> Any:
        self.log.append((statement, arguments))
        return self._connection.execute(statement, *arguments)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)
