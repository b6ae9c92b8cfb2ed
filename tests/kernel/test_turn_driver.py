"""The turn driver against real stores: every test runs on the memory and SQLite backends."""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lashspec.kernel.driver import TurnDriver
from lashspec.kernel.errors import (
    BackendFailure,
    SessionExecutionLeaseExpired,
    TurnMachineError,
    UnsettledQueuedWorkClaim,
    UnsettledTurnInputClaim,
)
from lashspec.kernel.machine import (
    ApplySessionCommand,
    CheckpointReached,
    CheckpointWorkClaimed,
    CommitFailed,
    CommitSucceeded,
    CommitTurn,
    CycleOutcome,
    DeliverCheckpointWork,
    Effect,
    HostEffect,
    Interrupt,
    LeaseAcquired,
    LeaseBusy,
    ReclaimLease,
    RunTurn,
    StopTurn,
    StoreEffect,
    TurnFinished,
    TurnState,
)
from lashspec.kernel.store import Store
from lashspec.kernel.types import (
    ActiveTurn,
    CheckpointKind,
    DeliveryPolicy,
    LeaseOwnerIdentity,
    LeaseTimings,
    LocalProcessLiveness,
    NextTurn,
    PendingTurnInput,
    PendingTurnInputDraft,
    ProcessWake,
    ProcessWakeDelivery,
    QueuedWorkBatch,
    QueuedWorkBatchDraft,
    RefreshToolCatalog,
    RuntimeCommit,
    SessionCheckpoint,
    SessionCommand,
    TurnInput,
    TurnInputCheckpointBoundary,
    TurnInputState,
)

from ..conftest import StoreHarness

SESSION = "driver-session"
ALICE = LeaseOwnerIdentity.opaque("alice")
BOB = LeaseOwnerIdentity.opaque("bob")
TIMINGS = LeaseTimings(ttl_ms=3_000, renew_interval_ms=1_000)

# ---------------------------------------------------------------------------
# Store set-up helpers
# ---------------------------------------------------------------------------


def enqueue_command(store: Store, reason: str = "refresh") -> QueuedWorkBatch:
    return store.enqueue_queued_work(
        QueuedWorkBatchDraft(SESSION, (SessionCommand(RefreshToolCatalog(reason)),))
    )


def enqueue_wake(
    store: Store,
    text: str = "wake",
    delivery: DeliveryPolicy = DeliveryPolicy.EARLIEST_SAFE_BOUNDARY,
) -> QueuedWorkBatch:
    wake = ProcessWakeDelivery(f"wake:{text}", SESSION, f"process:{text}", 1, text, text)
    return store.enqueue_queued_work(
        QueuedWorkBatchDraft(SESSION, (ProcessWake(wake),), delivery_policy=delivery)
    )


def enqueue_next_turn(store: Store, text: str) -> PendingTurnInput:
    return store.enqueue_pending_turn_input(
        PendingTurnInputDraft(SESSION, NextTurn(), TurnInput.text(text))
    )


def enqueue_active_turn(
    store: Store,
    turn_id: str,
    text: str,
    boundary: TurnInputCheckpointBoundary = TurnInputCheckpointBoundary.AFTER_WORK,
) -> PendingTurnInput:
    return store.enqueue_pending_turn_input(
        PendingTurnInputDraft(SESSION, ActiveTurn(turn_id, boundary), TurnInput.text(text))
    )


def input_row(store: Store, row: PendingTurnInput) -> PendingTurnInput:
    current = store.get_pending_turn_input(SESSION, row.input_id)
    assert current is not None
    return current


def batch_ids(store: Store) -> list[str]:
    return [b.batch_id for b in store.list_queued_work(SESSION)]


def driver_for(
    harness: StoreHarness, owner: LeaseOwnerIdentity = ALICE, store: Store | None = None
) -> TurnDriver:
    return TurnDriver(
        store or harness.store,
        SESSION,
        owner,
        clock=harness.clock,
        liveness=harness.processes,
        timings=TIMINGS,
    )


def names(effects: list[HostEffect] | tuple[Effect, ...]) -> list[str]:
    return [type(e).__name__ for e in effects]


def store_calls(driver: TurnDriver) -> list[str]:
    return [
        type(e).__name__ for _, effects in driver.log for e in effects if isinstance(e, StoreEffect)
    ]


def outcome_of(driver: TurnDriver) -> tuple[TurnState, CycleOutcome | None]:
    """State and last outcome, read fresh (a plain attribute read would be narrowed)."""
    return driver.state, driver.last_outcome


def assert_lease_released(store: Store, fencing_token: int) -> None:
    row = store.inspect_lease_row(SESSION)
    assert row is not None
    assert (row.owner, row.lease_token, row.fencing_token) == (None, None, fencing_token)
    assert store.load_session_execution_lease(SESSION) is None


# ---------------------------------------------------------------------------
# A full turn
# ---------------------------------------------------------------------------


def test_a_full_turn_settles_command_work_and_input_and_releases_the_lease(
    harness: StoreHarness,
) -> None:
    store = harness.store
    command = enqueue_command(store)
    harness.clock.advance(1)  # the command is strictly earlier, so it is drained first
    wake = enqueue_wake(store)
    question = enqueue_next_turn(store, "what changed?")
    driver = driver_for(harness)

    apply, run = driver.start("turn-1")
    assert apply == ApplySessionCommand((command,))
    assert isinstance(run, RunTurn) and run.turn_id == "turn-1" and run.batches == ()
    assert [i.input_id for i in run.inputs] == [question.input_id]
    assert batch_ids(store) == [wake.batch_id], "the command's own commit deleted it"
    assert driver.state is TurnState.ACTIVE_TURN and driver.lease is not None

    (deliver,) = driver.reach_checkpoint(1, state={"step": 1})
    assert isinstance(deliver, DeliverCheckpointWork)
    assert [b.batch_id for b in deliver.batches] == [wake.batch_id] and deliver.inputs == ()
    read = store.load_session()
    assert read is not None and read.checkpoint == SessionCheckpoint(1, {"step": 1})

    assert driver.finish_turn(2, {"done": True}) == []
    assert outcome_of(driver) == (TurnState.IDLE, CycleOutcome.COMMITTED)
    assert store.list_queued_work(SESSION) == []
    assert input_row(store, question).state is TurnInputState.COMPLETED
    assert store.list_pending_turn_inputs(SESSION) == []
    assert_lease_released(store, fencing_token=1)
    read = store.load_session()
    assert read is not None and read.checkpoint == SessionCheckpoint(2, {"done": True})
    assert read.head_revision == 3  # command, checkpoint, turn
    assert driver.store_errors == []
    assert store_calls(driver) == [
        "AcquireLease",
        "InspectPendingWork",
        "ClaimLeadingCommand",
        "CommitSessionCommand",
        "ClaimLeadingCommand",
        "ClaimNextTurnInputs",
        "WriteCheckpoint",
        "ClaimCheckpointWork",
        "CommitTurn",
    ]


def test_input_enqueued_before_a_command_runs_first_and_the_command_gates_the_checkpoint(
    harness: StoreHarness,
) -> None:
    store = harness.store
    question = enqueue_next_turn(store, "first")
    harness.clock.advance(1)
    command = enqueue_command(store)
    wake = enqueue_wake(store)
    driver = driver_for(harness)

    (run,) = driver.start("turn-1")
    assert isinstance(run, RunTurn) and [i.input_id for i in run.inputs] == [question.input_id]
    assert driver.reach_checkpoint(1) == [], "a leading command blocks checkpoint turn work"
    driver.finish_turn(1)
    assert batch_ids(store) == [command.batch_id, wake.batch_id]
    assert input_row(store, question).state is TurnInputState.COMPLETED

    apply, run = driver.start("turn-2")
    assert apply == ApplySessionCommand((command,))
    assert isinstance(run, RunTurn) and [b.batch_id for b in run.batches] == [wake.batch_id]
    driver.finish_turn(2)
    assert store.list_queued_work(SESSION) == []
    assert_lease_released(store, fencing_token=2)


def test_with_nothing_to_do_the_lease_is_released_at_once(harness: StoreHarness) -> None:
    enqueue_wake(harness.store, delivery=DeliveryPolicy.AFTER_CURRENT_TURN_COMMIT)
    later = harness.store.enqueue_queued_work(
        QueuedWorkBatchDraft(
            SESSION,
            (ProcessWake(ProcessWakeDelivery("w", SESSION, "p", 2, "x", "x")),),
            available_at_ms=harness.clock.now_ms() + 60_000,
        )
    )
    driver = driver_for(harness)
    (run,) = driver.start("turn-1")  # the first wake runs; the later one is not available
    assert isinstance(run, RunTurn)
    driver.finish_turn(1)
    assert driver.start("turn-2") == []
    assert driver.last_outcome is CycleOutcome.NOTHING_TO_DO
    assert batch_ids(harness.store) == [later.batch_id]
    assert_lease_released(harness.store, fencing_token=2)


# ---------------------------------------------------------------------------
# Interrupts
# ---------------------------------------------------------------------------


def test_an_interrupted_turn_defers_its_active_turn_input_to_the_next_turn(
    harness: StoreHarness,
) -> None:
    store = harness.store
    asked = enqueue_next_turn(store, "start working")
    steer = enqueue_active_turn(store, "turn-1", "also do this")
    elsewhere = enqueue_active_turn(store, "turn-other", "not for this turn")
    driver = driver_for(harness)

    (run,) = driver.start("turn-1")
    assert isinstance(run, RunTurn) and [i.input_id for i in run.inputs] == [asked.input_id]
    assert driver.interrupt() == []
    assert driver.state is TurnState.IDLE and driver.last_outcome is CycleOutcome.INTERRUPTED
    assert input_row(store, asked).state is TurnInputState.COMPLETED
    deferred = input_row(store, steer)
    assert (deferred.state, deferred.ingress) == (TurnInputState.DEFERRED_NEXT_TURN, NextTurn())
    assert input_row(store, elsewhere).state is TurnInputState.PENDING_ACTIVE
    assert_lease_released(store, fencing_token=1)

    (run,) = driver.start("turn-2")
    assert isinstance(run, RunTurn) and [i.input_id for i in run.inputs] == [steer.input_id]


def test_input_accepted_at_a_checkpoint_completes_and_a_later_one_is_deferred(
    harness: StoreHarness,
) -> None:
    store = harness.store
    enqueue_next_turn(store, "go")
    early = enqueue_active_turn(store, "turn-1", "early steer")
    final_only = enqueue_active_turn(
        store, "turn-1", "only before completion", TurnInputCheckpointBoundary.BEFORE_COMPLETION
    )
    driver = driver_for(harness)
    driver.start("turn-1")

    (deliver,) = driver.reach_checkpoint(1, CheckpointKind.AFTER_WORK)
    assert isinstance(deliver, DeliverCheckpointWork)
    assert [i.input_id for i in deliver.inputs] == [early.input_id]
    assert input_row(store, early).state is TurnInputState.ACCEPTED
    late = enqueue_active_turn(store, "turn-1", "late steer")
    driver.interrupt()

    assert input_row(store, early).state is TurnInputState.COMPLETED
    for row in (final_only, late):
        assert input_row(store, row).state is TurnInputState.DEFERRED_NEXT_TURN
        assert input_row(store, row).ingress == NextTurn()


def test_interrupting_during_a_checkpoint_claim_hands_the_new_work_back(
    harness: StoreHarness,
) -> None:
    store = harness.store
    asked = enqueue_next_turn(store, "go")
    steer = enqueue_active_turn(store, "turn-1", "steer")
    wake = enqueue_wake(store)
    driver = driver_for(harness)
    driver.start("turn-1")

    # Drive the checkpoint by hand so the interrupt lands while the claim is outstanding.
    (write,) = driver.machine.handle(CheckpointReached(1))
    assert isinstance(write, StoreEffect)
    written = driver.execute(write)
    assert isinstance(written, CommitSucceeded)
    (claim,) = driver.machine.handle(written)
    assert isinstance(claim, StoreEffect)
    claimed = driver.execute(claim)
    assert isinstance(claimed, CheckpointWorkClaimed) and claimed.inputs and claimed.work
    assert input_row(store, steer).state is TurnInputState.ACCEPTED
    assert driver.feed(Interrupt()) == []
    assert driver.state is TurnState.INTERRUPTING

    assert driver.feed(claimed) == []
    assert names(driver.log[-2][1]) == ["AbandonClaims", "CommitTurn"]
    assert driver.last_outcome is CycleOutcome.INTERRUPTED
    assert input_row(store, asked).state is TurnInputState.COMPLETED
    handed_back = input_row(store, steer)
    assert (handed_back.state, handed_back.ingress) == (
        TurnInputState.DEFERRED_NEXT_TURN,
        NextTurn(),
    )
    assert batch_ids(store) == [wake.batch_id]
    assert [b.batch_id for b in store.list_pending_queued_work(SESSION)] == [wake.batch_id]


# ---------------------------------------------------------------------------
# Lease loss and contention
# ---------------------------------------------------------------------------


def test_a_lease_taken_over_mid_turn_fails_the_commit_and_completes_nothing(
    harness: StoreHarness,
) -> None:
    store = harness.store
    question = enqueue_next_turn(store, "slow question")
    wake = enqueue_wake(store)
    alice = driver_for(harness, ALICE)
    bob = driver_for(harness, BOB, harness.open())

    alice.start("turn-alice")
    alice.reach_checkpoint(1)  # alice now also holds the wake
    harness.clock.advance(TIMINGS.ttl_ms)  # alice's lease expires; bob takes the session
    (run,) = bob.start("turn-bob")
    assert isinstance(run, RunTurn) and [i.input_id for i in run.inputs] == [question.input_id]
    assert bob.lease is not None and bob.lease.fencing_token == 2

    assert alice.finish_turn(5) == []
    assert alice.state is TurnState.IDLE and alice.last_outcome is CycleOutcome.LEASE_LOST
    assert alice.lease is None
    (error,) = alice.store_errors
    assert isinstance(error, SessionExecutionLeaseExpired) and error.session_id == SESSION
    # lease-less hand-back of alice's claims at once, and no other store effect
    assert names(alice.log[-1][1]) == ["AbandonClaims"]
    read = store.load_session()
    assert read is not None and read.checkpoint.turn_index == 1, "alice's turn commit is absent"
    assert input_row(store, question).state is TurnInputState.DEFERRED_NEXT_TURN
    (wake_row,) = store.inspect_queued_work(SESSION)
    assert wake_row[0].batch_id == wake.batch_id
    assert not wake_row[1].is_claimed, "alice's wake claim was handed back right away"
    (question_row,) = store.inspect_turn_inputs(SESSION)
    assert question_row[1].claim_owner == BOB, "alice's stale hand-back left bob's claim alone"

    bob.reach_checkpoint(2)
    bob.finish_turn(2)
    assert input_row(store, question).state is TurnInputState.COMPLETED
    assert store.list_queued_work(SESSION) == []

    # Alice's next cycle starts clean: nothing is handed back after her acquisition.
    assert alice.start("turn-alice-2") == []
    acquired = [effects for event, effects in alice.log if isinstance(event, LeaseAcquired)]
    assert names(acquired[-1]) == ["InspectPendingWork"]
    assert_lease_released(store, fencing_token=3)


def test_a_lease_loss_hands_the_claims_back_before_any_new_generation(
    harness: StoreHarness,
) -> None:
    store = harness.store
    question = enqueue_next_turn(store, "question")
    alice = driver_for(harness, ALICE)
    alice.start("turn-alice")
    # the lease runs out; nobody has acquired since, so only an eager hand-back frees the row
    harness.clock.advance(TIMINGS.ttl_ms)
    (stop,) = alice.reach_checkpoint(1)
    assert stop == StopTurn("turn-alice", "session execution lease lost")
    assert store_calls(alice)[-1] == "AbandonClaims"
    (row,) = store.inspect_turn_inputs(SESSION)
    assert row[0].input_id == question.input_id and not row[1].is_claimed
    assert store.session_fencing_token(SESSION) == 1, "no generation was minted meanwhile"


def _local(owner_id: str, pid: int) -> LeaseOwnerIdentity:
    return LeaseOwnerIdentity(
        owner_id, f"{owner_id}:1", LocalProcessLiveness("host", "boot", pid, f"start-{pid}")
    )


def test_a_dead_holder_is_taken_over_before_expiry_and_its_turn_is_stopped(
    harness: StoreHarness,
) -> None:
    store = harness.store
    question = enqueue_next_turn(store, "question")
    harness.processes.spawn(111, "start-111")
    harness.processes.spawn(222, "start-222")
    holder = driver_for(harness, _local("holder", 111))
    claimant = driver_for(harness, _local("claimant", 222), harness.open())
    holder.start("turn-holder")

    assert claimant.start("turn-claimant") == []
    assert claimant.last_outcome is CycleOutcome.BUSY and claimant.lease is None
    busy = claimant.log[-1][0]
    assert isinstance(busy, LeaseBusy) and not busy.holder_provably_dead

    harness.processes.kill(111)
    (run,) = claimant.start("turn-claimant-2")
    assert isinstance(run, RunTurn) and [i.input_id for i in run.inputs] == [question.input_id]
    assert any(isinstance(e, ReclaimLease) for _, effects in claimant.log for e in effects)
    assert claimant.lease is not None and claimant.lease.fencing_token == 2

    (stop,) = holder.reach_checkpoint(1)
    assert stop == StopTurn("turn-holder", "session execution lease lost")
    assert holder.last_outcome is CycleOutcome.LEASE_LOST
    assert store.load_session() is None, "the holder's checkpoint was fenced out"


def test_two_drivers_never_both_hold_the_lease(harness: StoreHarness) -> None:
    enqueue_next_turn(harness.store, "one")
    alice = driver_for(harness, ALICE)
    bob = driver_for(harness, BOB, harness.open())

    alice.start("a-1")
    assert alice.lease is not None
    assert bob.start("b-1") == [] and bob.lease is None
    assert bob.last_outcome is CycleOutcome.BUSY
    enqueue_next_turn(harness.store, "two")
    alice.finish_turn(1)
    assert alice.lease is None

    (run,) = bob.start("b-2")
    assert isinstance(run, RunTurn) and [i.input.first_text() for i in run.inputs] == ["two"]
    assert bob.lease is not None and bob.lease.fencing_token == 2
    assert alice.start("a-2") == [] and alice.last_outcome is CycleOutcome.BUSY


# ---------------------------------------------------------------------------
# Renewal
# ---------------------------------------------------------------------------


def test_renewal_keeps_a_long_turn_alive_and_fails_once_the_lease_expired(
    harness: StoreHarness,
) -> None:
    store = harness.store
    enqueue_next_turn(store, "long task")
    driver = driver_for(harness)
    driver.start("turn-1")
    assert driver.lease is not None
    first_expiry = driver.lease.expires_at_ms

    harness.clock.advance(TIMINGS.renew_interval_ms - 1)
    assert driver.renew_if_due() == [] and "RenewLease" not in store_calls(driver)
    harness.clock.advance(1)
    assert driver.renew_if_due() == []
    assert driver.lease.expires_at_ms == first_expiry + TIMINGS.renew_interval_ms
    assert driver.lease.fencing_token == 1
    harness.clock.set(first_expiry + 1)  # past the first expiry, inside the renewed one
    driver.finish_turn(1)
    assert driver.last_outcome is CycleOutcome.COMMITTED

    enqueue_next_turn(store, "stalled task")
    driver.start("turn-2")
    harness.clock.advance(TIMINGS.ttl_ms)  # stalled through every renewal slot
    (stop,) = driver.renew_if_due()
    assert isinstance(stop, StopTurn)
    assert outcome_of(driver) == (TurnState.IDLE, CycleOutcome.LEASE_LOST)
    assert isinstance(driver.store_errors[-1], SessionExecutionLeaseExpired)
    assert driver.renew_if_due() == []  # no lease, nothing to renew


# ---------------------------------------------------------------------------
# Store failures other than lease loss
# ---------------------------------------------------------------------------


class FlakyStore:
    """Delegates to a real store, failing the calls a test picks with a backend error."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.fail_commit: Any = lambda commit: False
        self.fail_release = False

    def commit_runtime_state(self, commit: RuntimeCommit) -> Any:
        if self.fail_commit(commit):
            raise BackendFailure("injected commit failure")
        return self._store.commit_runtime_state(commit)

    def release_session_execution_lease(self, completion: Any) -> None:
        if self.fail_release:
            raise BackendFailure("injected release failure")
        self._store.release_session_execution_lease(completion)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def test_a_failed_turn_commit_keeps_the_lease_until_its_ttl_and_hands_nothing_back(
    harness: StoreHarness,
) -> None:
    flaky = FlakyStore(harness.store)
    question = enqueue_next_turn(harness.store, "question")
    wake = enqueue_wake(harness.store)
    driver = driver_for(harness, store=cast(Store, flaky))
    peer = driver_for(harness, BOB, harness.open())
    driver.start("turn-1")
    driver.reach_checkpoint(1)  # the turn also holds the wake now
    flaky.fail_commit = lambda commit: commit.release_session_execution_lease is not None

    assert driver.finish_turn(1) == []  # a finished turn is not stopped; its commit failed
    assert driver.state is TurnState.FAILED and driver.last_outcome is CycleOutcome.FAILED
    assert isinstance(driver.machine.failure, BackendFailure)
    assert names(driver.log[-1][1]) == [], "lash's StoreCommitFailed: no release, no hand-back"
    assert driver.lease is None and driver.machine.queue_claims == ()
    # the rows stay stamped by the failed generation and the lease stays live
    for _, claim in harness.store.inspect_turn_inputs(SESSION):
        assert claim.claim_owner == ALICE and claim.claim_session_lease_generation == 1
    for _, claim in harness.store.inspect_queued_work(SESSION):
        assert claim.claim_owner == ALICE and claim.claim_session_lease_generation == 1
    assert peer.start("peer-1") == [] and peer.last_outcome is CycleOutcome.BUSY
    harness.clock.advance(TIMINGS.ttl_ms - 1)
    assert peer.start("peer-2") == [] and peer.last_outcome is CycleOutcome.BUSY
    with pytest.raises(TurnMachineError, match="'Failed' cannot accept 'Start'"):
        driver.start("turn-2")

    # once the TTL has passed, a new generation supersedes the stranded claims
    harness.clock.advance(1)
    (run,) = peer.start("peer-3")
    assert isinstance(run, RunTurn) and [i.input_id for i in run.inputs] == [question.input_id]
    assert peer.lease is not None and peer.lease.fencing_token == 2
    (deliver,) = peer.reach_checkpoint(1)
    assert isinstance(deliver, DeliverCheckpointWork)
    assert [b.batch_id for b in deliver.batches] == [wake.batch_id]
    peer.finish_turn(2)
    assert input_row(harness.store, question).state is TurnInputState.COMPLETED
    driver.reset()
    assert outcome_of(driver)[0] is TurnState.IDLE


def test_a_failed_claim_keeps_the_lease_until_its_ttl(harness: StoreHarness) -> None:
    class FailingClaims(FlakyStore):
        def claim_next_turn_inputs(self, *args: Any) -> Any:
            raise BackendFailure("injected claim failure")

    enqueue_next_turn(harness.store, "question")
    driver = driver_for(harness, store=cast(Store, FailingClaims(harness.store)))
    assert driver.start("turn-1") == []
    assert outcome_of(driver) == (TurnState.FAILED, CycleOutcome.FAILED)
    assert "ReleaseLease" not in store_calls(driver)
    live = harness.store.load_session_execution_lease(SESSION)
    assert live is not None and live.owner == ALICE


def test_a_failed_command_commit_releases_the_lease_but_hands_nothing_back(
    harness: StoreHarness,
) -> None:
    flaky = FlakyStore(harness.store)
    command = enqueue_command(harness.store)
    flaky.fail_commit = lambda commit: True
    driver = driver_for(harness, store=cast(Store, flaky))
    (apply,) = driver.start("turn-1")
    assert isinstance(apply, ApplySessionCommand)
    assert outcome_of(driver) == (TurnState.FAILED, CycleOutcome.FAILED)
    assert names(driver.log[-1][1]) == ["ReleaseLease"]
    assert_lease_released(harness.store, fencing_token=1)
    (row,) = harness.store.inspect_queued_work(SESSION)
    assert row[0].batch_id == command.batch_id and row[1].claim_session_lease_generation == 1
    # the next generation supersedes the command claim
    driver.reset()
    flaky.fail_commit = lambda commit: False
    assert driver.start("turn-2") == [ApplySessionCommand((command,))]
    assert harness.store.list_queued_work(SESSION) == []


def test_a_failed_checkpoint_write_only_skips_that_boundary(harness: StoreHarness) -> None:
    flaky = FlakyStore(harness.store)
    flaky.fail_commit = lambda commit: commit.release_session_execution_lease is None
    enqueue_next_turn(harness.store, "question")
    wake = enqueue_wake(harness.store)
    driver = driver_for(harness, store=cast(Store, flaky))
    driver.start("turn-1")

    (deliver,) = driver.reach_checkpoint(1)
    assert isinstance(deliver, DeliverCheckpointWork)
    assert [b.batch_id for b in deliver.batches] == [wake.batch_id]
    assert harness.store.load_session() is None and len(driver.store_errors) == 1
    driver.finish_turn(2)
    read = harness.store.load_session()
    assert read is not None and read.checkpoint.turn_index == 2
    assert harness.store.list_queued_work(SESSION) == []


def test_a_failed_release_is_recorded_and_the_lease_left_to_expire(harness: StoreHarness) -> None:
    flaky = FlakyStore(harness.store)
    flaky.fail_release = True
    driver = driver_for(harness, store=cast(Store, flaky))
    assert driver.start("turn-1") == []
    assert driver.last_outcome is CycleOutcome.NOTHING_TO_DO and driver.state is TurnState.IDLE
    (error,) = driver.store_errors
    assert isinstance(error, BackendFailure)
    live = harness.store.load_session_execution_lease(SESSION)
    assert live is not None and live.owner == ALICE
    harness.clock.advance(TIMINGS.ttl_ms)
    assert harness.store.load_session_execution_lease(SESSION) is None


def test_the_driver_resumes_from_the_stored_checkpoint(harness: StoreHarness) -> None:
    enqueue_next_turn(harness.store, "one")
    first = driver_for(harness)
    first.start("turn-1")
    first.finish_turn(4, {"k": "v"})
    second = driver_for(harness, BOB, harness.open())
    assert second.machine.committed_checkpoint == SessionCheckpoint(4, {"k": "v"})
    enqueue_next_turn(harness.store, "two")
    second.start("turn-2")
    with pytest.raises(TurnMachineError, match="below the last checkpoint's 4"):
        second.finish_turn(3)


# ---------------------------------------------------------------------------
# Two drivers, random interleavings
# ---------------------------------------------------------------------------

ACTIONS = ("start", "checkpoint", "finish", "interrupt", "renew", "reset", "enqueue", "expire")


def completed_by(driver: TurnDriver) -> Counter[str]:
    """Input ids completed by this driver's successful turn commits."""
    completed: Counter[str] = Counter()
    for (_, effects), (reply, _) in zip(driver.log, driver.log[1:], strict=False):
        for effect in effects:
            if isinstance(effect, CommitTurn) and isinstance(reply, CommitSucceeded):
                for claim in effect.commit.completed_turn_input_claims:
                    completed.update(claim.input_ids)
    return completed


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
@settings(max_examples=40, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(ACTIONS), st.sampled_from([0, 1])), min_size=1, max_size=30
    )
)
def test_random_interleavings_of_two_drivers_keep_one_live_holder_and_do_nothing_twice(
    backend: str, steps: list[tuple[str, int]]
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        harness = StoreHarness(backend, Path(folder))
        try:
            drivers = [driver_for(harness, ALICE), driver_for(harness, BOB, harness.open())]
            turn_index = [0, 0]
            for number, (action, who) in enumerate(steps):
                driver = drivers[who]
                if action == "enqueue":
                    enqueue_next_turn(harness.store, f"input {number}")
                elif action == "expire":
                    harness.clock.advance(TIMINGS.ttl_ms)
                elif action == "start" and driver.state is TurnState.IDLE:
                    driver.start(f"turn-{who}-{number}")
                elif action == "checkpoint" and driver.state is TurnState.ACTIVE_TURN:
                    turn_index[who] += 1
                    driver.reach_checkpoint(turn_index[who])
                elif action == "finish" and driver.state is TurnState.ACTIVE_TURN:
                    driver.finish_turn(turn_index[who])
                elif action == "interrupt" and driver.state is TurnState.ACTIVE_TURN:
                    driver.interrupt()
                elif action == "renew":
                    driver.renew_if_due()
                elif action == "reset" and driver.state is TurnState.FAILED:
                    driver.reset()

                live = harness.store.load_session_execution_lease(SESSION)
                believers = [d for d in drivers if d.lease is not None]
                holders = [d for d in believers if live is not None and d.lease == live]
                assert len(holders) <= 1, "two drivers hold the live lease"
                if len(believers) == 2:
                    tokens = {d.lease.fencing_token for d in believers if d.lease is not None}
                    assert len(tokens) == 2, "two drivers believe in the same generation"
                assert all(d.state is not TurnState.FAILED for d in drivers), [
                    d.store_errors for d in drivers
                ]

            completions = completed_by(drivers[0]) + completed_by(drivers[1])
            assert all(count == 1 for count in completions.values()), "an input completed twice"
            for row, _ in harness.store.inspect_turn_inputs(SESSION):
                done = row.state is TurnInputState.COMPLETED
                assert done == (row.input_id in completions)
        finally:
            harness.close()


# ---------------------------------------------------------------------------
# Claim settlement is checked before a turn commit reaches the store
# ---------------------------------------------------------------------------


def test_a_turn_commit_that_omits_a_held_claim_is_refused_before_the_store(
    harness: StoreHarness,
) -> None:
    store = harness.store
    enqueue_next_turn(store, "question")
    enqueue_wake(store)
    driver = driver_for(harness)
    driver.start("turn-1")
    driver.reach_checkpoint(1)  # the turn holds an input claim and a wake claim
    (held_inputs,) = driver.machine.input_claims
    (held_work,) = driver.machine.queue_claims
    settling = driver.machine._commit_turn()
    before = store.inspect_session(SESSION)
    results_before = list(driver.commit_results)

    without_work = replace(settling, commit=replace(settling.commit, completed_queue_claims=()))
    answer = driver.execute(without_work)
    assert isinstance(answer, CommitFailed) and isinstance(answer.error, UnsettledQueuedWorkClaim)
    assert answer.error.fields() == {"session_id": SESSION, "claim_id": held_work.claim_id}

    without_inputs = replace(
        settling, commit=replace(settling.commit, completed_turn_input_claims=())
    )
    answer = driver.execute(without_inputs)
    assert isinstance(answer, CommitFailed) and isinstance(answer.error, UnsettledTurnInputClaim)
    assert f"turn-input claim {held_inputs.claim_id!r}" in str(answer.error)
    assert store.inspect_session(SESSION) == before, "the store was not touched"
    assert driver.commit_results == results_before

    assert isinstance(driver.execute(settling), CommitSucceeded)  # the full commit goes through


def test_a_refused_settlement_fails_the_cycle_and_keeps_the_lease(harness: StoreHarness) -> None:
    store = harness.store
    enqueue_next_turn(store, "question")
    driver = driver_for(harness)
    driver.start("turn-1")
    commit_turn = driver.machine._commit_turn()
    unsettled = replace(commit_turn.commit, completed_turn_input_claims=())
    refused = driver.execute(replace(commit_turn, commit=unsettled))
    assert isinstance(refused, CommitFailed)
    driver.machine.handle(TurnFinished(1))  # the machine now awaits the answer to a CommitTurn
    assert driver.feed(refused) == []
    assert outcome_of(driver) == (TurnState.FAILED, CycleOutcome.FAILED)
    live = store.load_session_execution_lease(SESSION)
    assert live is not None and live.owner == ALICE, "lash keeps the lease on StoreCommitFailed"
