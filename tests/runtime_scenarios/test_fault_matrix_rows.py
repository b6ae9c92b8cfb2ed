"""Executable fault-matrix rows 8, 9 and 10 (scenarios.md §7.4), on every backend."""

from __future__ import annotations

import os

import pytest
from lashspec.kernel.errors import QueuedWorkClaimSuperseded, TurnInputClaimSuperseded
from lashspec.kernel.store import Store
from lashspec.kernel.types import (
    Acquired,
    ClaimBoundary,
    LeaseOwnerIdentity,
    LocalProcessLiveness,
    NextTurn,
    PendingTurnInputDraft,
    ProcessWake,
    ProcessWakeDelivery,
    QueuedWorkBatchDraft,
    RefreshToolCatalog,
    RuntimeCommit,
    SessionCheckpoint,
    SessionCommand,
    SessionExecutionLease,
    TurnInput,
)

from tests.conftest import StoreHarness

TTL = 60_000
S = "root"


def wake(session: str, text: str) -> QueuedWorkBatchDraft:
    delivery = ProcessWakeDelivery(f"wake:{text}", session, f"process:{text}", 1, text, text)
    return QueuedWorkBatchDraft(session, (ProcessWake(delivery),))


def acquire(store: Store, owner: LeaseOwnerIdentity, session: str = S) -> SessionExecutionLease:
    outcome = store.try_claim_session_execution_lease(session, owner, TTL)
    assert isinstance(outcome, Acquired), outcome
    return outcome.lease


def local(owner_id: str, start: str) -> LeaseOwnerIdentity:
    return LeaseOwnerIdentity(
        owner_id,
        f"{owner_id}:incarnation",
        LocalProcessLiveness("host-a", "boot-a", os.getpid(), start),
    )


def commit(lease: SessionExecutionLease, **kw: object) -> RuntimeCommit:
    return RuntimeCommit(S, SessionCheckpoint(0), session_execution_lease=lease.fence(), **kw)  # type: ignore[arg-type]


def test_queued_work_claims_supersede_across_session_lease_generations(
    harness: StoreHarness,
) -> None:
    store = harness.store
    batch = store.enqueue_queued_work(wake(S, "b"))
    owner_a = LeaseOwnerIdentity.opaque("gen-owner-a")
    lease_a = acquire(store, owner_a)
    assert lease_a.fencing_token == 1
    claim_a = store.claim_ready_queued_work(S, lease_a.fence(), owner_a, ClaimBoundary.IDLE, 10)
    assert claim_a is not None and [b.batch_id for b in claim_a.batches] == [batch.batch_id]
    assert claim_a.session_lease_generation == 1
    assert (
        store.claim_ready_queued_work(S, lease_a.fence(), owner_a, ClaimBoundary.IDLE, 10) is None
    )
    store.release_session_execution_lease(lease_a.completion())

    owner_b = LeaseOwnerIdentity.opaque("gen-owner-b")
    lease_b = acquire(store, owner_b)
    assert lease_b.fencing_token == 2
    claim_b = store.claim_ready_queued_work(S, lease_b.fence(), owner_b, ClaimBoundary.IDLE, 10)
    assert claim_b is not None and claim_b.fencing_token > claim_a.fencing_token
    with pytest.raises(QueuedWorkClaimSuperseded):
        store.commit_runtime_state(commit(lease_b, completed_queue_claims=(claim_a.completion(),)))
    store.release_session_execution_lease(lease_b.completion())

    harness.processes.spawn(os.getpid(), "taker-start")
    dead = local("gen-dead-owner", "not-the-current-process-start")
    lease_dead = acquire(store, dead)
    assert lease_dead.fencing_token == 3
    claim_dead = store.claim_ready_queued_work(S, lease_dead.fence(), dead, ClaimBoundary.IDLE, 10)
    assert claim_dead is not None
    taker = local("gen-taker", "taker-start")
    reclaimed = store.reclaim_session_execution_lease(S, taker, lease_dead.fence(), TTL)
    assert isinstance(reclaimed, Acquired) and reclaimed.lease.fencing_token == 4
    claim_taker = store.claim_ready_queued_work(
        S, reclaimed.lease.fence(), taker, ClaimBoundary.IDLE, 10
    )
    assert claim_taker is not None
    with pytest.raises(QueuedWorkClaimSuperseded):
        store.commit_runtime_state(
            commit(reclaimed.lease, completed_queue_claims=(claim_dead.completion(),))
        )
    assert [b.batch_id for b in store.list_queued_work(S)] == [batch.batch_id]


def test_turn_input_claims_supersede_across_session_lease_generations(
    harness: StoreHarness,
) -> None:
    store = harness.store
    row = store.enqueue_pending_turn_input(
        PendingTurnInputDraft(S, NextTurn(), TurnInput.text("i"))
    )
    owner_a = LeaseOwnerIdentity.opaque("gen-owner-a")
    lease_a = acquire(store, owner_a)
    claim_a = store.claim_next_turn_inputs(S, lease_a.fence(), owner_a, 10)
    assert claim_a is not None and [i.input_id for i in claim_a.inputs] == [row.input_id]
    assert store.claim_next_turn_inputs(S, lease_a.fence(), owner_a, 10) is None
    store.release_session_execution_lease(lease_a.completion())

    owner_b = LeaseOwnerIdentity.opaque("gen-owner-b")
    lease_b = acquire(store, owner_b)
    claim_b = store.claim_next_turn_inputs(S, lease_b.fence(), owner_b, 10)
    assert claim_b is not None and claim_b.fencing_token > claim_a.fencing_token
    with pytest.raises(TurnInputClaimSuperseded):
        store.commit_runtime_state(
            commit(lease_b, completed_turn_input_claims=(claim_a.completion(),))
        )
    store.release_session_execution_lease(lease_b.completion())

    harness.processes.spawn(os.getpid(), "taker-start")
    dead = local("gen-dead-owner", "not-the-current-process-start")
    lease_dead = acquire(store, dead)
    claim_dead = store.claim_next_turn_inputs(S, lease_dead.fence(), dead, 10)
    assert claim_dead is not None
    taker = local("gen-taker", "taker-start")
    reclaimed = store.reclaim_session_execution_lease(S, taker, lease_dead.fence(), TTL)
    assert isinstance(reclaimed, Acquired)
    assert store.claim_next_turn_inputs(S, reclaimed.lease.fence(), taker, 10) is not None
    with pytest.raises(TurnInputClaimSuperseded):
        store.commit_runtime_state(
            commit(reclaimed.lease, completed_turn_input_claims=(claim_dead.completion(),))
        )


def test_same_generation_claim_scans_reach_rows_beyond_the_scan_surplus(
    harness: StoreHarness,
) -> None:
    store = harness.store
    count = 34
    owner = LeaseOwnerIdentity.opaque("scan-owner")

    wakes = [store.enqueue_queued_work(wake("scan-work", f"w{i}")).batch_id for i in range(count)]
    lease = acquire(store, owner, "scan-work")
    got = []
    for _ in range(count):
        claim = store.claim_ready_queued_work(
            "scan-work", lease.fence(), owner, ClaimBoundary.IDLE, 1
        )
        assert claim is not None
        got.extend(b.batch_id for b in claim.batches)
    assert got == wakes
    store.release_session_execution_lease(lease.completion())

    commands = [
        store.enqueue_queued_work(
            QueuedWorkBatchDraft("scan-commands", (SessionCommand(RefreshToolCatalog(f"c{i}")),))
        ).batch_id
        for i in range(count)
    ]
    lease = acquire(store, owner, "scan-commands")
    got = []
    for _ in range(count):
        claim = store.claim_leading_ready_session_command("scan-commands", lease.fence(), owner)
        assert claim is not None
        got.extend(b.batch_id for b in claim.batches)
    assert got == commands
    store.release_session_execution_lease(lease.completion())

    inputs = [
        store.enqueue_pending_turn_input(
            PendingTurnInputDraft("scan-inputs", NextTurn(), TurnInput.text(f"i{i}"))
        ).input_id
        for i in range(count)
    ]
    lease = acquire(store, owner, "scan-inputs")
    got = []
    for _ in range(count):
        input_claim = store.claim_next_turn_inputs("scan-inputs", lease.fence(), owner, 1)
        assert input_claim is not None
        got.extend(i.input_id for i in input_claim.inputs)
    assert got == inputs
    store.release_session_execution_lease(lease.completion())
