"""Edges of the store rules that mutation testing showed no other test pins down.

Each test names the rule (store.md) it holds the kernel to; all run on both backends.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

import pytest
from lashspec.kernel.engine import BatchRecord, StoreEngine
from lashspec.kernel.errors import BackendFailure, InvalidRequest, RuntimeTurnCommitConflict
from lashspec.kernel.rules import CLAIM_SCAN_SURPLUS
from lashspec.kernel.types import (
    Acquired,
    AlreadyClaimed,
    CheckpointKind,
    ClaimBoundary,
    ClaimColumns,
    DeliveryPolicy,
    InputIdTarget,
    LeaseOwnerIdentity,
    MergeKey,
    NextTurn,
    PendingTurnInputDraft,
    ProcessWake,
    ProcessWakeDelivery,
    QueuedWorkBatch,
    QueuedWorkBatchDraft,
    RefreshToolCatalog,
    RuntimeCommit,
    RuntimeTurnCommitStamp,
    SessionCheckpoint,
    SessionCommand,
    SessionExecutionLease,
    SlotPolicy,
    TurnInput,
    turn_commit_hash,
)

if TYPE_CHECKING:
    from lashspec.kernel.store import Store

    from tests.conftest import StoreHarness

TTL = 60_000
SESSION = "edges"


def owner(name: str) -> LeaseOwnerIdentity:
    return LeaseOwnerIdentity.opaque(name)


def wake(text: str, available_at_ms: int = 0) -> QueuedWorkBatchDraft:
    delivery = ProcessWakeDelivery(f"wake:{text}", SESSION, "p", 0, text, text)
    return QueuedWorkBatchDraft(SESSION, (ProcessWake(delivery),), available_at_ms=available_at_ms)


def command(reason: str) -> QueuedWorkBatchDraft:
    return QueuedWorkBatchDraft(SESSION, (SessionCommand(RefreshToolCatalog(reason)),))


def acquire(store: Store, who: str = "worker") -> SessionExecutionLease:
    outcome = store.try_claim_session_execution_lease(SESSION, owner(who), TTL)
    assert isinstance(outcome, Acquired), outcome
    return outcome.lease


def test_a_batch_available_exactly_now_is_claimable(harness: StoreHarness) -> None:
    """store.md §6.20: rows with available_at_ms > now are not claimed; = now is."""
    store, now = harness.store, harness.clock.now_ms()
    store.enqueue_queued_work(wake("later", now + 1))
    store.enqueue_queued_work(wake("now", now))
    lease = acquire(store)
    claim = store.claim_ready_queued_work(
        SESSION, lease.fence(), lease.owner, ClaimBoundary.IDLE, 10
    )
    assert claim is not None
    assert [b.items[0].payload for b in claim.batches] == [wake("now", now).payloads[0]]


def test_re_entry_keeps_the_generation_and_extends_the_lease(harness: StoreHarness) -> None:
    """store.md §6.2: re-entry by the same incarnation keeps the fencing token."""
    store = harness.store
    first = acquire(store)
    harness.clock.advance(TTL // 2)
    again = acquire(store)
    assert again.fencing_token == first.fencing_token
    assert again.expires_at_ms == harness.clock.now_ms() + TTL > first.expires_at_ms
    row = store.inspect_lease_row(SESSION)
    assert row is not None and row.expires_at_ms == again.expires_at_ms


def test_reclaim_of_a_session_that_never_had_a_lease_mints_generation_one(
    harness: StoreHarness,
) -> None:
    store = harness.store
    other = harness.open()
    observed = acquire(other, "ghost")  # an observation of another session's row
    observed = replace(observed, session_id="never-leased")
    outcome = store.reclaim_session_execution_lease(
        "never-leased", owner("claimant"), observed.fence(), TTL
    )
    assert isinstance(outcome, Acquired), outcome
    assert outcome.lease.fencing_token == 1


def test_abandon_with_a_stale_token_leaves_the_claim_in_place(harness: StoreHarness) -> None:
    """store.md §6.14: abandon only affects rows stamped with the exact claim id and token."""
    store = harness.store
    store.enqueue_queued_work(wake("held"))
    lease = acquire(store)
    claim = store.claim_ready_queued_work(
        SESSION, lease.fence(), lease.owner, ClaimBoundary.IDLE, 10
    )
    assert claim is not None
    store.abandon_queued_work_claim(replace(claim, lease_token=claim.lease_token + ":stale"))
    [(_, columns)] = store.inspect_queued_work(SESSION)
    assert columns.claim_id == claim.claim_id
    store.abandon_queued_work_claim(claim)
    [(_, columns)] = store.inspect_queued_work(SESSION)
    assert columns.claim_id is None


def test_abandon_of_an_input_claim_with_a_stale_token_leaves_it_in_place(
    harness: StoreHarness,
) -> None:
    store = harness.store
    store.enqueue_pending_turn_input(
        PendingTurnInputDraft(SESSION, NextTurn(), TurnInput.text("held"))
    )
    lease = acquire(store)
    claim = store.claim_next_turn_inputs(SESSION, lease.fence(), lease.owner, 10)
    assert claim is not None
    store.abandon_turn_input_claim(replace(claim, lease_token=claim.lease_token + ":stale"))
    [(_, columns)] = store.inspect_turn_inputs(SESSION)
    assert columns.claim_id == claim.claim_id
    assert store.list_pending_turn_inputs(SESSION) == []


def test_the_leading_command_is_the_earliest_enqueued(harness: StoreHarness) -> None:
    """store.md §6.17: commands are claimed one batch at a time, in enqueue order."""
    store = harness.store
    first = store.enqueue_queued_work(command("first"))
    store.enqueue_queued_work(command("second"))
    lease = acquire(store)
    claim = store.claim_leading_ready_session_command(SESSION, lease.fence(), lease.owner)
    assert claim is not None
    assert [b.batch_id for b in claim.batches] == [first.batch_id]


def test_cancelling_an_accepted_input_reports_already_claimed(harness: StoreHarness) -> None:
    """store.md §6.26: accepted rows are never cancelled."""
    store = harness.store
    row = store.enqueue_pending_turn_input(
        PendingTurnInputDraft(SESSION, NextTurn(), TurnInput.text("taken"))
    )
    lease = acquire(store)
    assert store.claim_next_turn_inputs(SESSION, lease.fence(), lease.owner, 10) is not None
    assert isinstance(store.cancel_pending_turn_input(SESSION, row.input_id), AlreadyClaimed)
    [result] = store.cancel_pending_turn_inputs(SESSION, [InputIdTarget(row.input_id)])
    assert isinstance(result.outcome, AlreadyClaimed)


@pytest.mark.parametrize(
    "call",
    [
        "cancel_queued_work_batch",
        "cancel_pending_turn_inputs",
        "cancel_pending_turn_input_suffix",
        "claim_active_turn_inputs_turn",
        "claim_ready_queued_work_by_batch_ids",
    ],
)
def test_empty_ids_are_invalid_requests(harness: StoreHarness, call: str) -> None:
    store = harness.store
    lease = acquire(store)
    with pytest.raises(InvalidRequest, match="id"):
        if call == "cancel_queued_work_batch":
            store.cancel_queued_work_batch("", "qwb-1")
        elif call == "cancel_pending_turn_inputs":
            store.cancel_pending_turn_inputs("", [InputIdTarget("ti-1")])
        elif call == "cancel_pending_turn_input_suffix":
            store.cancel_pending_turn_input_suffix("", InputIdTarget("ti-1"))
        elif call == "claim_active_turn_inputs_turn":
            store.claim_active_turn_inputs(
                SESSION, lease.fence(), lease.owner, "", CheckpointKind.AFTER_WORK, 10
            )
        else:
            store.claim_ready_queued_work_by_batch_ids(
                "", lease.fence(), lease.owner, ClaimBoundary.IDLE, ["qwb-1"]
            )


def test_an_unknown_ingress_is_an_invalid_request(harness: StoreHarness) -> None:
    draft = PendingTurnInputDraft(SESSION, NextTurn(), TurnInput.text("x"))
    bogus = replace(draft, ingress="next_turn")  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest, match="ingress"):
        harness.store.enqueue_pending_turn_input(bogus)
    assert harness.store.list_pending_turn_inputs(SESSION) == []


def test_inspect_session_reads_what_the_separate_inspections_read(
    harness: StoreHarness,
) -> None:
    store = harness.store
    store.enqueue_queued_work(command("c"))
    store.enqueue_queued_work(wake("w"))
    store.enqueue_pending_turn_input(
        PendingTurnInputDraft(SESSION, NextTurn(), TurnInput.text("i"))
    )
    lease = acquire(store)
    assert store.claim_leading_ready_session_command(SESSION, lease.fence(), lease.owner)
    empty = store.inspect_session("elsewhere")
    assert empty.lease_row is None and empty.queued_work == () and empty.turn_inputs == ()
    seen = store.inspect_session(SESSION)
    assert seen.lease_row == store.inspect_lease_row(SESSION)
    assert list(seen.queued_work) == store.inspect_queued_work(SESSION)
    assert list(seen.turn_inputs) == store.inspect_turn_inputs(SESSION)
    assert seen.head_revision == 0
    assert seen.queued_work[0][1].claim_id is not None


# ---------------------------------------------------------------------------
# Claim scans classify a window of candidates, as lash's SQLite backend does
# ---------------------------------------------------------------------------


def _store_malformed_copy(store: Store, batch: QueuedWorkBatch) -> None:
    """Rewrite a stored batch with no payloads, as another implementation might have."""
    engine = cast(StoreEngine, store)
    record = BatchRecord(replace(batch, items=()), ClaimColumns())
    engine._run(lambda tx, now: tx.put_batch(record))


@pytest.mark.parametrize("max_batches", [1, 3])
def test_a_malformed_row_after_the_taken_ones_still_fails_the_claim_scan(
    harness: StoreHarness, max_batches: int
) -> None:
    """lash classifies every candidate of the scan window (max_batches + 32 rows), not just
    the ones it takes: a malformed row behind an exclusive head fails the claim."""
    store = harness.store
    store.enqueue_queued_work(wake("head"))
    for index in range(max_batches):
        store.enqueue_queued_work(wake(f"filler-{index}"))
    broken = store.enqueue_queued_work(wake("broken"))
    _store_malformed_copy(store, broken)
    lease = acquire(store)
    with pytest.raises(BackendFailure, match="mixed or empty payload classes"):
        store.claim_ready_queued_work(
            SESSION, lease.fence(), lease.owner, ClaimBoundary.IDLE, max_batches
        )
    with pytest.raises(BackendFailure, match=broken.batch_id):
        store.claim_leading_ready_session_command(SESSION, lease.fence(), lease.owner)
    assert all(not claim.is_claimed for _, claim in store.inspect_queued_work(SESSION))


def test_a_malformed_row_beyond_the_scan_window_is_not_classified(harness: StoreHarness) -> None:
    store = harness.store
    for index in range(1 + CLAIM_SCAN_SURPLUS):
        store.enqueue_queued_work(wake(f"w{index}"))
    broken = store.enqueue_queued_work(wake("broken"))
    _store_malformed_copy(store, broken)
    lease = acquire(store)
    claim = store.claim_ready_queued_work(
        SESSION, lease.fence(), lease.owner, ClaimBoundary.IDLE, 1
    )
    assert claim is not None and len(claim.batches) == 1


def test_a_gated_checkpoint_head_yields_nothing_without_classifying(harness: StoreHarness) -> None:
    """At an active-turn checkpoint an after-commit head gates the scan before any row is
    classified (lash's SQLite head query), so a malformed row behind it does not fail."""
    store = harness.store
    late = replace(wake("late"), delivery_policy=DeliveryPolicy.AFTER_CURRENT_TURN_COMMIT)
    store.enqueue_queued_work(late)
    broken = store.enqueue_queued_work(wake("broken"))
    _store_malformed_copy(store, broken)
    lease = acquire(store)
    boundary = ClaimBoundary.ACTIVE_TURN_CHECKPOINT
    assert store.claim_ready_queued_work(SESSION, lease.fence(), lease.owner, boundary, 5) is None


# ---------------------------------------------------------------------------
# The turn-commit hash covers the whole commit but the revision, lease and stamp
# ---------------------------------------------------------------------------

_DRAFT = QueuedWorkBatchDraft(SESSION, wake("follow-up").payloads)


def _stamped_turn_commit(store: Store, lease: SessionExecutionLease) -> RuntimeCommit:
    claim = store.claim_ready_queued_work(
        SESSION, lease.fence(), lease.owner, ClaimBoundary.IDLE, 1
    )
    assert claim is not None
    commit = RuntimeCommit(
        SESSION,
        SessionCheckpoint(1, {"done": True}),
        session_execution_lease=lease.fence(),
        completed_queue_claims=(claim.completion(),),
        enqueued_queue_batches=(_DRAFT,),
    )
    stamp = RuntimeTurnCommitStamp(SESSION, "turn-1", turn_commit_hash(commit))
    return replace(commit, turn_commit=stamp)


@pytest.mark.parametrize(
    "change",
    [
        {"delivery_policy": DeliveryPolicy.AFTER_CURRENT_TURN_COMMIT},
        {"slot_policy": SlotPolicy.JOIN},
        {"merge_key": MergeKey.named("group")},
        {"available_at_ms": 99},
    ],
    ids=lambda change: next(iter(change)),
)
def test_a_second_turn_commit_differing_in_an_outbox_field_conflicts(
    harness: StoreHarness, change: dict[str, Any]
) -> None:
    """lash hashes every field of the outbox drafts: a second delivery of the same turn that
    differs in one of them is a different commit, not a replay."""
    store = harness.store
    store.enqueue_queued_work(wake("w"))
    lease = acquire(store)
    first = _stamped_turn_commit(store, lease)
    store.commit_runtime_state(first)
    second = replace(first, enqueued_queue_batches=(replace(_DRAFT, **change),))
    second = replace(
        second,
        turn_commit=RuntimeTurnCommitStamp(SESSION, "turn-1", turn_commit_hash(second)),
    )
    before = store.inspect_session(SESSION)
    with pytest.raises(RuntimeTurnCommitConflict):
        store.commit_runtime_state(second)
    assert store.inspect_session(SESSION) == before


def test_a_second_turn_commit_differing_in_a_completion_token_conflicts(
    harness: StoreHarness,
) -> None:
    store = harness.store
    store.enqueue_queued_work(wake("w"))
    lease = acquire(store)
    first = _stamped_turn_commit(store, lease)
    store.commit_runtime_state(first)
    (completion,) = first.completed_queue_claims
    second = replace(first, completed_queue_claims=(replace(completion, lease_token="other"),))
    second = replace(
        second,
        turn_commit=RuntimeTurnCommitStamp(SESSION, "turn-1", turn_commit_hash(second)),
    )
    with pytest.raises(RuntimeTurnCommitConflict):
        store.commit_runtime_state(second)


def test_the_turn_commit_hash_ignores_what_lash_scrubs() -> None:
    base = RuntimeCommit(SESSION, SessionCheckpoint(1, {"message": {"role": "u", "parts": []}}))
    volatile = RuntimeCommit(
        SESSION,
        SessionCheckpoint(
            1,
            {"message": {"role": "u", "parts": [], "id": "m-1", "timestamp": 5, "node_id": "n"}},
        ),
        expected_head_revision=4,
    )
    assert turn_commit_hash(volatile) == turn_commit_hash(base)
    renamed = RuntimeCommit(SESSION, SessionCheckpoint(1, {"message": {"role": "u", "id": "m"}}))
    assert turn_commit_hash(renamed) != turn_commit_hash(
        RuntimeCommit(SESSION, SessionCheckpoint(1, {"message": {"role": "u"}}))
    ), "an id outside a message-shaped object is content"
