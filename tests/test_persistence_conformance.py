"""The 37 persistence conformance cases (invariants.md §2.1), on every backend.

Cases about things the kernel does not store (conversation graphs, agent frames, usage
ledgers, attachments, blob GC) are adapted to what it does store — the checkpoint and its
opaque runtime state, the head revision, the session binding — and each such test says what
was adapted in its docstring.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from lashspec.kernel.errors import (
    HeadRevisionConflict,
    PendingTurnInputSourceKeyConflict,
    QueuedWorkClaimSuperseded,
    RuntimeTurnCommitConflict,
    SessionBindingMismatch,
    SessionExecutionLeaseExpired,
    StoreError,
    TurnInputClaimSuperseded,
)
from lashspec.kernel.memory import InMemoryStore
from lashspec.kernel.store import Store
from lashspec.kernel.types import (
    Acquired,
    ActiveTurn,
    AgentFrameTask,
    AlreadyCancelled,
    AlreadyClaimed,
    AlreadyCompleted,
    AnchorNotFound,
    AttachmentItem,
    Busy,
    Cancelled,
    CheckpointKind,
    ClaimBoundary,
    DeliveryPolicy,
    InputIdTarget,
    LeaseOwnerIdentity,
    LocalProcessLiveness,
    MergeKey,
    NextTurn,
    NotFound,
    PendingTurnInputDraft,
    ProcessWake,
    ProcessWakeDelivery,
    QueuedWorkBatchDraft,
    RefreshToolCatalog,
    RuntimeCommit,
    RuntimeTurnCommitStamp,
    SessionCheckpoint,
    SessionCommand,
    SessionExecutionLease,
    SlotPolicy,
    SourceKeyTarget,
    SuffixOutcomes,
    TextItem,
    TurnInput,
    TurnInputCheckpointBoundary,
    TurnInputState,
    turn_commit_hash,
)

from tests.conftest import StoreHarness
from tests.runtime_scenarios import test_fault_matrix_rows as fault_rows

TTL = 60_000
S = "root"
IDLE = ClaimBoundary.IDLE
ACTIVE = ClaimBoundary.ACTIVE_TURN_CHECKPOINT
ESB = DeliveryPolicy.EARLIEST_SAFE_BOUNDARY
ACTC = DeliveryPolicy.AFTER_CURRENT_TURN_COMMIT
PNG = "image/png"


# -- helpers -----------------------------------------------------------------------------


def owner(name: str) -> LeaseOwnerIdentity:
    return LeaseOwnerIdentity.opaque(name)


def local(
    name: str, host: str, boot: str, start: str, pid: int | None = None
) -> LeaseOwnerIdentity:
    liveness = LocalProcessLiveness(host, boot, os.getpid() if pid is None else pid, start)
    return LeaseOwnerIdentity(name, f"{name}:incarnation", liveness)


def acquire(
    store: Store, who: LeaseOwnerIdentity, session: str = S, ttl: int = TTL
) -> SessionExecutionLease:
    outcome = store.try_claim_session_execution_lease(session, who, ttl)
    assert isinstance(outcome, Acquired), outcome
    return outcome.lease


def wake(text: str, session: str = S, **kw: Any) -> QueuedWorkBatchDraft:
    delivery = ProcessWakeDelivery(f"wake:{text}", session, f"process:{text}", 1, text, text)
    kw.setdefault("delivery_policy", ESB)
    kw.setdefault("slot_policy", SlotPolicy.EXCLUSIVE)
    return QueuedWorkBatchDraft(session, (ProcessWake(delivery),), **kw)


def command(reason: str, session: str = S) -> QueuedWorkBatchDraft:
    return QueuedWorkBatchDraft(session, (SessionCommand(RefreshToolCatalog(reason)),))


def next_input(text: str, session: str = S, key: str | None = None) -> PendingTurnInputDraft:
    return PendingTurnInputDraft(session, NextTurn(), TurnInput.text(text), key)


def active_input(
    text: str,
    turn_id: str,
    boundary: TurnInputCheckpointBoundary = TurnInputCheckpointBoundary.AFTER_WORK,
    key: str | None = None,
    items: tuple[TextItem | AttachmentItem, ...] = (),
) -> PendingTurnInputDraft:
    turn_input = TurnInput((TextItem(text), *items))
    return PendingTurnInputDraft(S, ActiveTurn(turn_id, boundary), turn_input, key)


def commit(
    lease: SessionExecutionLease | None, session: str = S, turn_index: int = 0, **kw: Any
) -> RuntimeCommit:
    fence = lease.fence() if lease is not None else None
    return RuntimeCommit(
        session, SessionCheckpoint(turn_index), session_execution_lease=fence, **kw
    )


def ids(rows: Any) -> list[str]:
    return [getattr(r, "batch_id", None) or r.input_id for r in rows]


def race(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls in threads released together; return each result or raised error."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int, call: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results[i] = call()
        except StoreError as error:
            results[i] = error

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results


# -- commit store -------------------------------------------------------------------------


def test_case_01_reports_declared_durability(harness: StoreHarness) -> None:
    """Adapted: durability is observed, not declared — a second handle sees committed state
    on SQLite (durable), while a fresh in-memory store starts empty (inline)."""
    lease = acquire(harness.store, owner("a"))
    harness.store.commit_runtime_state(commit(lease, turn_index=3))
    other = harness.open() if harness.backend == "sqlite" else InMemoryStore()
    read = other.load_session()
    if harness.backend == "sqlite":
        assert read is not None and read.checkpoint.turn_index == 3
    else:
        assert read is None


def test_case_02_commit_increments_head_and_round_trips_agent_frames(harness: StoreHarness) -> None:
    """Adapted: agent frames live in the checkpoint's opaque state, which must round-trip."""
    store = harness.store
    lease = acquire(store, owner("a"))
    state = {
        "agent_frames": [{"id": "frame-1"}, {"id": "frame-2", "reason": "plan_mode"}],
        "current_agent_frame_id": "frame-2",
        "execution_state": "frame-vm",
    }
    first = store.commit_runtime_state(commit(lease))
    second = store.commit_runtime_state(
        replace(commit(lease), checkpoint=SessionCheckpoint(1, state))
    )
    assert (first.head_revision, second.head_revision) == (1, 2)
    read = store.load_session()
    assert read is not None and read.head_revision == 2
    assert read.checkpoint == SessionCheckpoint(1, state)


def test_case_03_concurrent_head_revision_cas_applies_exactly_once(harness: StoreHarness) -> None:
    lease = acquire(harness.store, owner("a"))
    handles = [harness.open(), harness.open()]
    results = race(
        *(
            (
                lambda h=h, i=i: h.commit_runtime_state(
                    commit(lease, turn_index=i + 1, expected_head_revision=0)
                )
            )
            for i, h in enumerate(handles)
        )
    )
    conflicts = [r for r in results if isinstance(r, HeadRevisionConflict)]
    applied = [r for r in results if not isinstance(r, StoreError)]
    assert len(applied) == 1 and len(conflicts) == 1
    assert conflicts[0].expected == 0 and conflicts[0].actual == 1
    read = harness.store.load_session()
    assert read is not None and read.head_revision == 1
    assert read.checkpoint.turn_index in (1, 2)


def test_case_04_commit_rejects_a_different_session_id(harness: StoreHarness) -> None:
    store = harness.store
    alpha = acquire(store, owner("a"), "alpha")
    store.commit_runtime_state(commit(alpha, "alpha"))
    beta = acquire(store, owner("a"), "beta")
    with pytest.raises(SessionBindingMismatch) as error:
        store.commit_runtime_state(commit(beta, "beta"))
    assert (error.value.bound_session_id, error.value.attempted_session_id) == ("alpha", "beta")


def test_case_05_load_hydrates_checkpoint_and_usage(harness: StoreHarness) -> None:
    """Adapted: tool-state generation, plugin revision and usage are opaque checkpoint state."""
    store = harness.store
    lease = acquire(store, owner("a"), "hydrated")
    state = {
        "tool_state_generation": 9,
        "plugin_snapshot_revision": 12,
        "usage": [{"input": 11, "output": 7, "cache_read": 3, "reasoning": 5}],
    }
    store.commit_runtime_state(
        RuntimeCommit(
            "hydrated", SessionCheckpoint(4, state), session_execution_lease=lease.fence()
        )
    )
    read = store.load_session()
    assert read is not None and read.session_id == "hydrated"
    assert read.checkpoint.state == state and len(read.checkpoint.state["usage"]) == 1


def test_case_06_active_path_read_scope_selects_only_requested_ancestry(
    harness: StoreHarness,
) -> None:
    """Adapted: the kernel keeps no conversation graph; the read scope it has is the head, so
    a load returns exactly the newest committed checkpoint and never an ancestor."""
    store = harness.store
    lease = acquire(store, owner("a"))
    for index in range(3):
        store.commit_runtime_state(
            replace(commit(lease), checkpoint=SessionCheckpoint(index, {"leaf": f"node-{index}"}))
        )
    read = store.load_session()
    assert read is not None and read.head_revision == 3
    assert read.checkpoint == SessionCheckpoint(2, {"leaf": "node-2"})


def test_case_07_session_metadata_round_trips(harness: StoreHarness) -> None:
    """Adapted: metadata is checkpoint state; every JSON type must come back unchanged."""
    store = harness.store
    lease = acquire(store, owner("a"))
    meta = {
        "title": "t",
        "n": 3,
        "f": 1.5,
        "flag": True,
        "none": None,
        "tags": ["a", "b"],
        "nested": {"k": [1, {"x": "y"}]},
    }
    store.commit_runtime_state(replace(commit(lease), checkpoint=SessionCheckpoint(0, meta)))
    read = store.load_session()
    assert read is not None and read.checkpoint.state == meta


def test_case_08_checkpoint_refs_are_content_addressed(harness: StoreHarness) -> None:
    """Adapted (attachment manifests are out of scope): the checkpoint reference identifies
    the checkpoint's content — equal content, equal ref; changed content, new ref."""
    store = harness.store
    lease = acquire(store, owner("a"))
    a = store.commit_runtime_state(
        replace(commit(lease), checkpoint=SessionCheckpoint(1, {"x": 1}))
    )
    b = store.commit_runtime_state(
        replace(commit(lease), checkpoint=SessionCheckpoint(1, {"x": 1}))
    )
    c = store.commit_runtime_state(
        replace(commit(lease), checkpoint=SessionCheckpoint(1, {"x": 2}))
    )
    assert a.checkpoint_ref == b.checkpoint_ref != c.checkpoint_ref


def _stamped(base: RuntimeCommit, turn_id: str) -> RuntimeCommit:
    return replace(
        base, turn_commit=RuntimeTurnCommitStamp(base.session_id, turn_id, turn_commit_hash(base))
    )


def test_case_09_final_commit_stamp_is_idempotent_and_conflicts_on_changed_hash(
    harness: StoreHarness,
) -> None:
    store = harness.store
    lease = acquire(store, owner("a"))
    final = _stamped(
        commit(lease, release_session_execution_lease=lease.completion()), "provider-turn"
    )
    first = store.commit_runtime_state(final)
    assert store.load_session_execution_lease(S) is None
    retry = store.commit_runtime_state(replace(final, session_execution_lease=None))
    assert (retry.head_revision, retry.checkpoint_ref) == (
        first.head_revision,
        first.checkpoint_ref,
    )
    assert turn_commit_hash(replace(final, expected_head_revision=5)) == turn_commit_hash(final)
    changed = _stamped(commit(None, turn_index=1), "provider-turn")
    with pytest.raises(RuntimeTurnCommitConflict):
        store.commit_runtime_state(changed)


# -- lease store --------------------------------------------------------------------------


def test_case_10_session_execution_lease_contract(harness: StoreHarness) -> None:
    store, clock = harness.store, harness.clock
    a = owner("a")
    lease_a = acquire(store, a)
    again = acquire(store, a, ttl=120_000)
    assert (again.lease_token, again.fencing_token) == (lease_a.lease_token, lease_a.fencing_token)
    assert again.expires_at_ms == clock.now_ms() + 120_000
    a_prime = LeaseOwnerIdentity("a", "a:other-incarnation")
    assert isinstance(store.try_claim_session_execution_lease(S, a_prime, TTL), Busy)
    assert isinstance(store.try_claim_session_execution_lease(S, owner("b"), TTL), Busy)
    renewed = store.renew_session_execution_lease(again.fence(), TTL)
    assert (renewed.lease_token, renewed.fencing_token) == (
        lease_a.lease_token,
        lease_a.fencing_token,
    )
    with pytest.raises(SessionExecutionLeaseExpired):
        store.renew_session_execution_lease(replace(again.fence(), lease_token="stale"), TTL)
    store.release_session_execution_lease(replace(lease_a.completion(), lease_token="stale"))
    assert isinstance(store.try_claim_session_execution_lease(S, owner("b"), TTL), Busy)
    store.release_session_execution_lease(lease_a.completion())
    lease_b = acquire(store, owner("b"))
    assert lease_b.fencing_token > lease_a.fencing_token
    store.release_session_execution_lease(lease_a.completion())
    assert isinstance(store.try_claim_session_execution_lease(S, owner("c"), TTL), Busy)
    store.release_session_execution_lease(lease_b.completion())
    zero = acquire(store, owner("z"), ttl=0)
    after_zero = acquire(store, owner("y"))
    assert after_zero.fencing_token > zero.fencing_token
    with pytest.raises(SessionExecutionLeaseExpired):
        store.commit_runtime_state(commit(None))
    store.commit_runtime_state(
        commit(after_zero, release_session_execution_lease=after_zero.completion())
    )
    next_owner = acquire(store, owner("n"))
    final = _stamped(
        commit(next_owner, release_session_execution_lease=next_owner.completion()), "t"
    )
    first = store.commit_runtime_state(final)
    assert (
        store.commit_runtime_state(replace(final, session_execution_lease=None)).head_revision
        == first.head_revision
    )
    batch = store.enqueue_queued_work(wake("after release"))
    with pytest.raises(SessionExecutionLeaseExpired):
        store.claim_ready_queued_work(S, next_owner.fence(), owner("n"), IDLE, 10)
    fresh = acquire(store, owner("f"))
    claim = store.claim_ready_queued_work(S, fresh.fence(), owner("f"), IDLE, 10)
    assert claim is not None and ids(claim.batches) == [batch.batch_id]


def test_case_11_session_execution_lease_reclaim_contract(harness: StoreHarness) -> None:
    store, procs = harness.store, harness.processes
    procs.spawn(os.getpid(), "claimant-start")
    dead = local("dead", "host-a", "boot-a", "wrong-start")
    claimant = local("claimant", "host-a", "boot-a", "claimant-start")
    holder = acquire(store, dead, "reclaim-dead")
    assert isinstance(store.try_claim_session_execution_lease("reclaim-dead", claimant, TTL), Busy)
    won = store.reclaim_session_execution_lease("reclaim-dead", claimant, holder.fence(), TTL)
    assert isinstance(won, Acquired) and won.lease.fencing_token > holder.fencing_token
    late = local("late", "host-a", "boot-a", "claimant-start")
    assert isinstance(
        store.reclaim_session_execution_lease("reclaim-dead", late, holder.fence(), TTL), Busy
    )

    racer_holder = acquire(store, dead, "reclaim-race")
    handles = [harness.open(), harness.open()]
    racers = [local(f"racer-{i}", "host-a", "boot-a", "claimant-start") for i in range(2)]
    results = race(
        *(
            (
                lambda h=h, r=r: h.reclaim_session_execution_lease(
                    "reclaim-race", r, racer_holder.fence(), TTL
                )
            )
            for h, r in zip(handles, racers, strict=True)
        )
    )
    winners = [r for r in results if isinstance(r, Acquired)]
    assert len(winners) == 1 and winners[0].lease.fencing_token == racer_holder.fencing_token + 1

    for session, who, holder_identity in (
        ("cross-host", local("c", "host-b", "boot-a", "claimant-start"), dead),
        ("cross-boot", local("c", "host-a", "boot-b", "claimant-start"), dead),
        ("opaque", claimant, owner("opaque-holder")),
        ("live", claimant, local("live", "host-a", "boot-a", "claimant-start")),
    ):
        h = acquire(store, holder_identity, session)
        assert isinstance(
            store.reclaim_session_execution_lease(session, who, h.fence(), TTL), Busy
        ), session


# -- queued work --------------------------------------------------------------------------


def test_case_12_queued_work_source_keys_are_idempotent_and_list_ordered(
    harness: StoreHarness,
) -> None:
    store = harness.store
    first = store.enqueue_queued_work(
        wake("first", slot_policy=SlotPolicy.JOIN, source_key="source:first")
    )
    replayed = store.enqueue_queued_work(
        wake("different replay payload", source_key="source:first")
    )
    second = store.enqueue_queued_work(wake("second"))
    store.enqueue_queued_work(wake("other", session="other"))
    assert replayed == first
    assert replayed.items[0].item_id == first.items[0].item_id
    assert (
        isinstance(replayed.items[0].payload, ProcessWake)
        and replayed.items[0].payload.wake.input == "first"
    )
    listed = store.list_queued_work(S)
    assert ids(listed) == [first.batch_id, second.batch_id]
    assert listed[0].enqueue_seq < listed[1].enqueue_seq


def test_case_13_concurrent_queue_and_turn_input_claims_have_one_owner(
    harness: StoreHarness,
) -> None:
    store = harness.store
    batch = store.enqueue_queued_work(wake("b"))
    row = store.enqueue_pending_turn_input(next_input("i"))
    a = owner("a")
    lease = acquire(store, a)
    handles = [harness.open(), harness.open()]
    queue = race(
        *((lambda h=h: h.claim_ready_queued_work(S, lease.fence(), a, IDLE, 1)) for h in handles)
    )
    won = [c for c in queue if c is not None]
    assert len(won) == 1 and ids(won[0].batches) == [batch.batch_id]
    assert store.list_pending_queued_work(S) == []
    inputs = race(
        *((lambda h=h: h.claim_next_turn_inputs(S, lease.fence(), a, 1)) for h in handles)
    )
    won_inputs = [c for c in inputs if c is not None]
    assert len(won_inputs) == 1 and ids(won_inputs[0].inputs) == [row.input_id]
    assert won[0].claim_id.startswith("qwc:") and won_inputs[0].claim_id.startswith("tic:")


def test_case_14_checkpoint_work_claims_both_families_once(harness: StoreHarness) -> None:
    store = harness.store
    row = store.enqueue_pending_turn_input(active_input("a", "checkpoint-turn"))
    batch = store.enqueue_queued_work(wake("w"))
    a = owner("a")
    lease = acquire(store, a)
    inputs, work = store.claim_checkpoint_work(
        S, lease.fence(), a, "checkpoint-turn", CheckpointKind.AFTER_WORK, 10, 10
    )
    assert inputs is not None and ids(inputs.inputs) == [row.input_id]
    assert work is not None and ids(work.batches) == [batch.batch_id]
    assert inputs.session_lease_generation == work.session_lease_generation == lease.fencing_token
    assert inputs.inputs[0].state is TurnInputState.ACCEPTED
    assert store.claim_checkpoint_work(
        S, lease.fence(), a, "checkpoint-turn", CheckpointKind.AFTER_WORK, 10, 10
    ) == (None, None)


def test_case_15_queued_work_cancel_removes_only_unclaimed_batches(harness: StoreHarness) -> None:
    store = harness.store
    unclaimed = store.enqueue_queued_work(wake("cancel me", delivery_policy=ACTC))
    assert store.cancel_queued_work_batch(S, unclaimed.batch_id) == unclaimed
    assert store.list_queued_work(S) == []
    claimed = store.enqueue_queued_work(wake("claimed"))
    a = owner("a")
    lease = acquire(store, a)
    claim = store.claim_ready_queued_work(S, lease.fence(), a, IDLE, 10)
    assert claim is not None
    assert store.list_pending_queued_work(S) == [] and len(store.list_queued_work(S)) == 1
    assert store.cancel_queued_work_batch(S, claimed.batch_id) is None
    store.abandon_queued_work_claim(claim)
    store.release_session_execution_lease(lease.completion())
    assert ids(store.list_pending_queued_work(S)) == [claimed.batch_id]
    assert store.cancel_queued_work_batch(S, claimed.batch_id) == claimed


def test_case_16_queued_work_exact_claim_uses_selected_batch_ids(harness: StoreHarness) -> None:
    store = harness.store
    first = store.enqueue_queued_work(wake("first", delivery_policy=ACTC))
    second = store.enqueue_queued_work(wake("second", delivery_policy=ACTC))
    a = owner("a")
    lease = acquire(store, a)
    by_ids = store.claim_ready_queued_work_by_batch_ids
    assert by_ids(S, lease.fence(), a, ACTIVE, [second.batch_id]) is None
    assert by_ids(S, lease.fence(), a, IDLE, [first.batch_id, second.batch_id]) is None
    claim = by_ids(S, lease.fence(), a, IDLE, [second.batch_id])
    assert claim is not None and ids(claim.batches) == [second.batch_id]
    assert ids(store.list_pending_queued_work(S)) == [first.batch_id]
    store.commit_runtime_state(
        commit(
            lease,
            completed_queue_claims=(claim.completion(),),
            release_session_execution_lease=lease.completion(),
        )
    )
    lease2 = acquire(store, a)
    claim2 = by_ids(S, lease2.fence(), a, IDLE, [first.batch_id])
    assert claim2 is not None and ids(claim2.batches) == [first.batch_id]
    assert store.list_pending_queued_work(S) == []


def test_case_17_queued_work_classes_gate_command_and_turn_claims(harness: StoreHarness) -> None:
    store = harness.store
    cmd = store.enqueue_queued_work(command("refresh"))
    turn = store.enqueue_queued_work(wake("turn", delivery_policy=ACTC))
    a = owner("a")
    lease = acquire(store, a)
    assert store.claim_ready_queued_work(S, lease.fence(), a, IDLE, 10) is None
    cmd_claim = store.claim_leading_ready_session_command(S, lease.fence(), a)
    assert cmd_claim is not None and ids(cmd_claim.batches) == [cmd.batch_id]
    store.commit_runtime_state(commit(lease, completed_queue_claims=(cmd_claim.completion(),)))
    exact = store.claim_ready_queued_work_by_batch_ids(S, lease.fence(), a, IDLE, [turn.batch_id])
    assert exact is not None and ids(exact.batches) == [turn.batch_id]

    t = "turn-first"
    turn_first = store.enqueue_queued_work(wake("t", session=t))
    later_cmd = store.enqueue_queued_work(command("later", session=t))
    lease_t = acquire(store, a, t)
    assert store.claim_leading_ready_session_command(t, lease_t.fence(), a) is None
    claim = store.claim_ready_queued_work(t, lease_t.fence(), a, IDLE, 10)
    assert claim is not None and ids(claim.batches) == [turn_first.batch_id]
    store.abandon_queued_work_claim(claim)
    assert ids(store.list_queued_work(t)) == [turn_first.batch_id, later_cmd.batch_id]


def test_case_18_queued_work_claims_respect_boundaries_abandon_and_stale_completion(
    harness: StoreHarness,
) -> None:
    store = harness.store
    after_commit = store.enqueue_queued_work(wake("after_commit", delivery_policy=ACTC))
    earliest = store.enqueue_queued_work(wake("earliest", delivery_policy=ESB))
    a = owner("a")
    lease = acquire(store, a)
    assert store.claim_ready_queued_work(S, lease.fence(), a, ACTIVE, 10) is None
    idle = store.claim_ready_queued_work(S, lease.fence(), a, IDLE, 10)
    assert idle is not None and ids(idle.batches) == [after_commit.batch_id]
    at_checkpoint = store.claim_ready_queued_work(S, lease.fence(), a, ACTIVE, 10)
    assert at_checkpoint is not None and ids(at_checkpoint.batches) == [earliest.batch_id]
    store.abandon_queued_work_claim(idle)
    again = store.claim_ready_queued_work(S, lease.fence(), a, IDLE, 10)
    assert again is not None and ids(again.batches) == [after_commit.batch_id]
    assert again.fencing_token > idle.fencing_token
    store.release_session_execution_lease(lease.completion())
    lease2 = acquire(store, a)
    with pytest.raises(QueuedWorkClaimSuperseded):
        store.commit_runtime_state(commit(lease2, completed_queue_claims=(idle.completion(),)))
    assert len(store.list_queued_work(S)) == 2


def test_case_19_queued_work_claims_supersede_across_session_lease_generations(
    harness: StoreHarness,
) -> None:
    fault_rows.test_queued_work_claims_supersede_across_session_lease_generations(harness)


@pytest.mark.parametrize("how", ["release", "expiry", "takeover"])
def test_case_20_claim_liveness_for_lease_less_paths_tracks_session_generations(
    harness: StoreHarness, how: str
) -> None:
    store = harness.store
    batch = store.enqueue_queued_work(wake("b"))
    row = store.enqueue_pending_turn_input(next_input("i"))
    harness.processes.spawn(os.getpid(), "taker-start")
    holder = local("holder", "host-a", "boot-a", "gone") if how == "takeover" else owner("holder")
    lease = acquire(store, holder, ttl=1_000)
    assert store.claim_ready_queued_work(S, lease.fence(), holder, IDLE, 10) is not None
    assert store.claim_next_turn_inputs(S, lease.fence(), holder, 10) is not None
    assert store.list_pending_queued_work(S) == [] and store.list_pending_turn_inputs(S) == []
    assert store.cancel_queued_work_batch(S, batch.batch_id) is None
    if how == "release":
        store.release_session_execution_lease(lease.completion())
    elif how == "expiry":
        harness.clock.advance(1_100)
    else:
        taker = local("taker", "host-a", "boot-a", "taker-start")
        assert isinstance(
            store.reclaim_session_execution_lease(S, taker, lease.fence(), TTL), Acquired
        )
    assert ids(store.list_pending_queued_work(S)) == [batch.batch_id]
    assert ids(store.list_pending_turn_inputs(S)) == [row.input_id]
    assert store.cancel_queued_work_batch(S, batch.batch_id) == batch
    assert isinstance(store.cancel_pending_turn_input(S, row.input_id), Cancelled)


def test_case_21_same_generation_claim_scans_reach_rows_beyond_the_scan_surplus(
    harness: StoreHarness,
) -> None:
    fault_rows.test_same_generation_claim_scans_reach_rows_beyond_the_scan_surplus(harness)


def test_case_22_queued_work_respects_membership_limits_exclusivity_reclaim_and_sessions(
    harness: StoreHarness,
) -> None:
    store, clock = harness.store, harness.clock
    far_future = 4_102_444_800_000  # 2100-01-01
    store.enqueue_queued_work(wake("not ready", available_at_ms=far_future))
    exclusive = store.enqueue_queued_work(wake("exclusive"))
    joined = store.enqueue_queued_work(
        wake("joined", slot_policy=SlotPolicy.JOIN, merge_key=MergeKey.named("root"))
    )
    other = store.enqueue_queued_work(wake("other", session="other"))
    a = owner("a")
    lease = acquire(store, a)
    first = store.claim_ready_queued_work(S, lease.fence(), a, IDLE, 10)
    assert first is not None and ids(first.batches) == [exclusive.batch_id]
    second = store.claim_ready_queued_work(S, lease.fence(), a, IDLE, 10)
    assert second is not None and ids(second.batches) == [joined.batch_id]
    assert store.claim_ready_queued_work(S, lease.fence(), a, IDLE, 10) is None
    lease_other = acquire(store, a, "other")
    other_claim = store.claim_ready_queued_work("other", lease_other.fence(), a, IDLE, 10)
    assert other_claim is not None and ids(other_claim.batches) == [other.batch_id]
    store.release_session_execution_lease(lease.completion())
    lease2 = acquire(store, a)
    reclaimed = store.claim_ready_queued_work(S, lease2.fence(), a, IDLE, 10)
    assert reclaimed is not None and reclaimed.fencing_token > first.fencing_token
    limited = "limited"
    group = [
        store.enqueue_queued_work(
            wake(
                f"l{i}",
                session=limited,
                slot_policy=SlotPolicy.JOIN,
                merge_key=MergeKey.named("limited"),
            )
        ).batch_id
        for i in range(3)
    ]
    lease_l = acquire(store, a, limited)
    two = store.claim_ready_queued_work(limited, lease_l.fence(), a, IDLE, 2)
    assert two is not None and ids(two.batches) == group[:2]
    rest = store.claim_ready_queued_work(limited, lease_l.fence(), a, IDLE, 2)
    assert rest is not None and ids(rest.batches) == group[2:]
    assert clock.now_ms() < far_future


def test_case_23_queued_work_join_groups_by_delivery_policy_and_merge_key(
    harness: StoreHarness,
) -> None:
    store = harness.store
    join = SlotPolicy.JOIN

    def add(text: str, policy: DeliveryPolicy, key: str) -> str:
        return store.enqueue_queued_work(
            wake(text, delivery_policy=policy, slot_policy=join, merge_key=MergeKey.named(key))
        ).batch_id

    a1, a2, b, c = add("a1", ESB, "a"), add("a2", ESB, "a"), add("b", ESB, "b"), add("c", ACTC, "a")
    who = owner("a")
    lease = acquire(store, who)
    groups = []
    for _ in range(3):
        claim = store.claim_ready_queued_work(S, lease.fence(), who, IDLE, 10)
        assert claim is not None
        groups.append(ids(claim.batches))
    assert groups == [[a1, a2], [b], [c]]


def test_case_24_queued_work_completion_is_lease_guarded(harness: StoreHarness) -> None:
    store = harness.store
    for text in ("j1", "j2"):
        store.enqueue_queued_work(wake(text, slot_policy=SlotPolicy.JOIN))
    a = owner("a")
    lease = acquire(store, a)
    claim = store.claim_ready_queued_work(S, lease.fence(), a, IDLE, 10)
    assert claim is not None and len(claim.batches) == 2
    mutated = replace(claim.completion(), lease_token=claim.lease_token + ":mutated")
    with pytest.raises(QueuedWorkClaimSuperseded):
        store.commit_runtime_state(commit(lease, completed_queue_claims=(mutated,)))
    assert len(store.list_queued_work(S)) == 2
    store.commit_runtime_state(
        commit(
            lease,
            completed_queue_claims=(claim.completion(),),
            release_session_execution_lease=lease.completion(),
        )
    )
    assert store.list_queued_work(S) == []


def test_case_25_queued_wake_delivery_is_source_key_idempotent_and_claimed_once(
    harness: StoreHarness,
) -> None:
    store = harness.store
    key = "process:process-1:event:7:wake"
    first = store.enqueue_queued_work(wake("process-1 seq 7", source_key=key))
    second = store.enqueue_queued_work(wake("process-1 seq 7", source_key=key))
    assert first.batch_id == second.batch_id and len(store.list_queued_work(S)) == 1
    a = owner("a")
    lease = acquire(store, a)
    claim = store.claim_ready_queued_work(S, lease.fence(), a, IDLE, 10)
    assert claim is not None and len(claim.batches) == 1 and len(claim.batches[0].items) == 1
    assert isinstance(claim.batches[0].items[0].payload, ProcessWake)
    store.commit_runtime_state(commit(lease, completed_queue_claims=(claim.completion(),)))
    assert store.list_queued_work(S) == []


def test_case_26_queue_completion_and_turn_commit_stamp_are_atomic(harness: StoreHarness) -> None:
    store = harness.store
    store.enqueue_queued_work(wake("b"))
    store.enqueue_pending_turn_input(next_input("i"))
    a = owner("a")
    lease = acquire(store, a)
    queue_claim = store.claim_ready_queued_work(S, lease.fence(), a, IDLE, 10)
    input_claim = store.claim_next_turn_inputs(S, lease.fence(), a, 1)
    assert queue_claim is not None and input_claim is not None
    outbox = QueuedWorkBatchDraft(
        S,
        (AgentFrameTask("frame-2", "continue"),),
        ACTC,
        source_key="agent-frame-handoff:turn-atomic",
    )
    base = commit(
        lease,
        turn_index=41,
        completed_queue_claims=(queue_claim.completion(),),
        completed_turn_input_claims=(input_claim.completion(),),
        enqueued_queue_batches=(outbox,),
    )
    mutated = replace(
        base, completed_queue_claims=(replace(queue_claim.completion(), lease_token="x"),)
    )
    with pytest.raises(QueuedWorkClaimSuperseded):
        store.commit_runtime_state(_stamped(mutated, "turn-atomic"))
    assert store.load_session() is None and len(store.list_queued_work(S)) == 1
    foreign = replace(base, enqueued_queue_batches=(replace(outbox, session_id="other-session"),))
    with pytest.raises(SessionBindingMismatch):
        store.commit_runtime_state(_stamped(foreign, "turn-atomic"))
    assert store.load_session() is None and len(store.list_queued_work(S)) == 1
    final = _stamped(
        replace(base, release_session_execution_lease=lease.completion()), "turn-atomic"
    )
    result = store.commit_runtime_state(final)
    retry = store.commit_runtime_state(final)
    assert (retry.head_revision, retry.checkpoint_ref) == (
        result.head_revision,
        result.checkpoint_ref,
    )
    assert ids(retry.enqueued_queue_batches) == ids(result.enqueued_queue_batches)
    assert ids(store.list_queued_work(S)) == ids(result.enqueued_queue_batches)
    assert store.list_pending_turn_inputs(S) == []


# -- turn inputs --------------------------------------------------------------------------


def test_case_27_pending_turn_inputs_source_keys_order_cancel_and_cross_session(
    harness: StoreHarness,
) -> None:
    store = harness.store
    first = store.enqueue_pending_turn_input(next_input("first", key="source:first"))
    assert store.enqueue_pending_turn_input(next_input("first", key="source:first")) == first
    with pytest.raises(PendingTurnInputSourceKeyConflict) as conflict:
        store.enqueue_pending_turn_input(next_input("changed", key="source:first"))
    assert (
        conflict.value.session_id,
        conflict.value.source_key,
        conflict.value.existing_input_id,
    ) == (
        S,
        "source:first",
        first.input_id,
    )
    second = store.enqueue_pending_turn_input(next_input("second"))
    store.enqueue_pending_turn_input(next_input("other", session="other"))
    assert ids(store.list_pending_turn_inputs(S)) == [first.input_id, second.input_id]
    assert isinstance(store.cancel_pending_turn_input(S, second.input_id), Cancelled)
    assert isinstance(store.cancel_pending_turn_input(S, second.input_id), AlreadyCancelled)
    assert ids(store.list_pending_turn_inputs(S)) == [first.input_id]
    assert isinstance(store.cancel_pending_turn_input(S, first.input_id), Cancelled)
    replay = store.enqueue_pending_turn_input(next_input("first", key="source:first"))
    assert replay.input_id == first.input_id and replay.state is TurnInputState.CANCELLED
    assert store.list_pending_turn_inputs(S) == []
    report = store.vacuum()
    assert (report.removed_node_count, report.removed_pending_turn_input_tombstone_count) == (0, 2)
    assert isinstance(store.cancel_pending_turn_input(S, second.input_id), NotFound)
    assert len(store.list_pending_turn_inputs("other")) == 1


def test_case_28_pending_turn_input_bulk_and_suffix_cancellation(harness: StoreHarness) -> None:
    store = harness.store
    store.enqueue_pending_turn_input(next_input("first", key="bulk:first"))
    second = store.enqueue_pending_turn_input(next_input("second"))
    third = store.enqueue_pending_turn_input(next_input("third"))
    results = store.cancel_pending_turn_inputs(
        S,
        [
            SourceKeyTarget("bulk:first"),
            InputIdTarget(third.input_id),
            SourceKeyTarget("bulk:missing"),
            SourceKeyTarget("bulk:first"),
        ],
    )
    assert [type(r.outcome) for r in results] == [Cancelled, Cancelled, NotFound, AlreadyCancelled]
    assert ids(store.list_pending_turn_inputs(S)) == [second.input_id]
    # the suffix cases run in their own session so that "second" stays pending
    t = "suffix"
    store.enqueue_pending_turn_input(next_input("anchor", session=t, key="suffix:anchor"))
    store.enqueue_pending_turn_input(
        replace(active_input("active", "suffix-active-turn", key="suffix:claimed"), session_id=t)
    )
    later = store.enqueue_pending_turn_input(next_input("later", session=t))
    a = owner("a")
    lease = acquire(store, a, t)
    claim = store.claim_active_turn_inputs(
        t, lease.fence(), a, "suffix-active-turn", CheckpointKind.AFTER_WORK, 10
    )
    assert claim is not None
    outcome = store.cancel_pending_turn_input_suffix(t, SourceKeyTarget("suffix:anchor"))
    assert isinstance(outcome, SuffixOutcomes)
    assert [type(o) for o in outcome.outcomes] == [Cancelled, AlreadyClaimed, Cancelled]
    claimed = outcome.outcomes[1]
    assert isinstance(claimed, AlreadyClaimed) and claimed.claim is not None
    assert claimed.claim.claim_id == claim.claim_id
    fresh = store.enqueue_pending_turn_input(next_input("fresh", session=t))
    fresh2 = store.enqueue_pending_turn_input(next_input("fresh2", session=t))
    by_id = store.cancel_pending_turn_input_suffix(t, InputIdTarget(fresh.input_id))
    assert isinstance(by_id, SuffixOutcomes) and [type(o) for o in by_id.outcomes] == [
        Cancelled,
        Cancelled,
    ]
    assert fresh2.enqueue_seq > later.enqueue_seq
    assert isinstance(
        store.cancel_pending_turn_input_suffix(t, SourceKeyTarget("suffix:missing")), AnchorNotFound
    )
    assert ids(store.list_pending_turn_inputs(S)) == [second.input_id]


def test_case_29_pending_turn_input_claims_reclaim_complete_and_fence(
    harness: StoreHarness,
) -> None:
    store = harness.store
    png = AttachmentItem(PNG, bytes([1, 2, 3]))
    first = store.enqueue_pending_turn_input(
        PendingTurnInputDraft(S, NextTurn(), TurnInput((TextItem("first"), png)), "next:first")
    )
    second = store.enqueue_pending_turn_input(next_input("second"))
    a = owner("a")
    lease = acquire(store, a)
    claim = store.claim_next_turn_inputs(S, lease.fence(), a, 10)
    assert claim is not None and ids(claim.inputs) == [first.input_id, second.input_id]
    assert png in [item for i in claim.inputs for item in i.input.items]
    blocked = store.cancel_pending_turn_input(S, first.input_id)
    assert isinstance(blocked, AlreadyClaimed) and blocked.claim is not None
    assert blocked.claim.claim_id == claim.claim_id
    assert store.list_pending_turn_inputs(S) == []
    store.abandon_turn_input_claim(claim)
    assert len(store.list_pending_turn_inputs(S)) == 2
    reclaimed = store.claim_next_turn_inputs(S, lease.fence(), a, 10)
    assert reclaimed is not None and reclaimed.fencing_token > claim.fencing_token
    with pytest.raises(TurnInputClaimSuperseded):
        store.commit_runtime_state(commit(lease, completed_turn_input_claims=(claim.completion(),)))
    assert store.list_pending_turn_inputs(S) == []
    store.commit_runtime_state(
        commit(
            lease,
            completed_turn_input_claims=(reclaimed.completion(),),
            release_session_execution_lease=lease.completion(),
        )
    )
    assert isinstance(store.cancel_pending_turn_input(S, first.input_id), AlreadyCompleted)
    replay = store.enqueue_pending_turn_input(
        PendingTurnInputDraft(S, NextTurn(), TurnInput((TextItem("first"), png)), "next:first")
    )
    assert replay.input_id == first.input_id and replay.state is TurnInputState.COMPLETED
    lease2 = acquire(store, a)
    assert store.claim_next_turn_inputs(S, lease2.fence(), a, 10) is None


def test_case_30_turn_input_claims_supersede_across_session_lease_generations(
    harness: StoreHarness,
) -> None:
    fault_rows.test_turn_input_claims_supersede_across_session_lease_generations(harness)


def test_case_31_pending_turn_input_cancel_covers_active_and_deferred_states(
    harness: StoreHarness,
) -> None:
    store = harness.store
    turn = "cancel-active-turn"
    keep = store.enqueue_pending_turn_input(active_input("keep", turn))
    cancel_active = store.enqueue_pending_turn_input(active_input("cancel", turn))
    cancel_next = store.enqueue_pending_turn_input(next_input("next"))
    outcome = store.cancel_pending_turn_input(S, cancel_active.input_id)
    assert isinstance(outcome, Cancelled) and isinstance(outcome.input.ingress, ActiveTurn)
    assert isinstance(store.cancel_pending_turn_input(S, cancel_next.input_id), Cancelled)
    a = owner("a")
    lease = acquire(store, a)
    store.commit_runtime_state(commit(lease, interrupted_turn_input_turn_id=turn))
    pending = store.list_pending_turn_inputs(S)
    assert ids(pending) == [keep.input_id]
    assert (
        pending[0].ingress == NextTurn() and pending[0].state is TurnInputState.DEFERRED_NEXT_TURN
    )
    assert isinstance(store.cancel_pending_turn_input(S, keep.input_id), Cancelled)
    assert store.claim_next_turn_inputs(S, lease.fence(), a, 10) is None


def test_case_32_pending_active_turn_inputs_defer_unaccepted_once_on_interrupt(
    harness: StoreHarness,
) -> None:
    store = harness.store
    turn = "interrupted-turn"
    png = AttachmentItem(PNG, bytes([9, 8, 7]))
    accepted = store.enqueue_pending_turn_input(
        active_input("accepted", turn, key="active:accepted", items=(png,))
    )
    unaccepted = store.enqueue_pending_turn_input(active_input("unaccepted", turn))
    before = store.enqueue_pending_turn_input(
        active_input("before", turn, TurnInputCheckpointBoundary.BEFORE_COMPLETION)
    )
    other = store.enqueue_pending_turn_input(active_input("other", "other-turn"))
    a = owner("a")
    lease = acquire(store, a)
    claim = store.claim_active_turn_inputs(S, lease.fence(), a, turn, CheckpointKind.AFTER_WORK, 1)
    assert claim is not None and ids(claim.inputs) == [accepted.input_id]
    assert claim.inputs[0].input.items[-1] == png
    store.commit_runtime_state(
        commit(
            lease,
            completed_turn_input_claims=(claim.completion(),),
            interrupted_turn_input_turn_id=turn,
        )
    )
    pending = store.list_pending_turn_inputs(S)
    assert ids(pending) == [unaccepted.input_id, before.input_id, other.input_id]
    for row in pending[:2]:
        assert row.ingress == NextTurn() and row.state is TurnInputState.DEFERRED_NEXT_TURN
    assert pending[2].ingress == ActiveTurn("other-turn")
    next_claim = store.claim_next_turn_inputs(S, lease.fence(), a, 10)
    assert next_claim is not None and ids(next_claim.inputs) == [
        unaccepted.input_id,
        before.input_id,
    ]
    store.commit_runtime_state(
        commit(
            lease,
            completed_turn_input_claims=(next_claim.completion(),),
            release_session_execution_lease=lease.completion(),
        )
    )
    assert ids(store.list_pending_turn_inputs(S)) == [other.input_id]


# -- maintenance and separate entry points ------------------------------------------------


def test_case_33_tombstone_vacuum_and_gc_are_minimally_consistent(harness: StoreHarness) -> None:
    """Adapted: the kernel's tombstones are cancelled/completed inputs; vacuum removes only
    them (any session), reports the count of this call, and a second vacuum removes none."""
    store = harness.store
    done = store.enqueue_pending_turn_input(next_input("done"))
    live = store.enqueue_pending_turn_input(next_input("live"))
    other = store.enqueue_pending_turn_input(next_input("other", session="other"))
    store.cancel_pending_turn_input(S, done.input_id)
    store.cancel_pending_turn_input("other", other.input_id)
    first = store.vacuum()
    assert first.removed_pending_turn_input_tombstone_count == 2 and first.removed_node_count <= 1
    assert store.vacuum().removed_pending_turn_input_tombstone_count == 0
    assert ids(store.list_pending_turn_inputs(S)) == [live.input_id]
    assert store.get_pending_turn_input(S, done.input_id) is None


def test_case_34_gc_keeps_only_the_live_checkpoint(harness: StoreHarness) -> None:
    """Adapted: checkpoints are stored inline in the head row, so there are no blobs to
    collect; a superseded checkpoint is unreachable and the live one is kept."""
    store = harness.store
    lease = acquire(store, owner("a"))
    one = store.commit_runtime_state(
        replace(commit(lease), checkpoint=SessionCheckpoint(1, {"gen": 1}))
    )
    two = store.commit_runtime_state(
        replace(commit(lease), checkpoint=SessionCheckpoint(2, {"gen": 2}))
    )
    read = store.load_session()
    assert read is not None and read.checkpoint_ref == two.checkpoint_ref != one.checkpoint_ref
    assert read.checkpoint.state == {"gen": 2}


def test_case_35_runtime_persistence_clock_expiry(harness: StoreHarness) -> None:
    store, clock = harness.store, harness.clock
    store.enqueue_queued_work(wake("b"))
    store.enqueue_pending_turn_input(next_input("i"))
    stale_owner = owner("stale")
    stale = acquire(store, stale_owner, ttl=1_000)
    stale_queue = store.claim_ready_queued_work(S, stale.fence(), stale_owner, IDLE, 10)
    stale_inputs = store.claim_next_turn_inputs(S, stale.fence(), stale_owner, 10)
    assert stale_queue is not None and stale_inputs is not None
    clock.advance(1_001)
    successor_owner = owner("successor")
    successor = acquire(store, successor_owner)
    assert successor.fencing_token > stale.fencing_token
    queue = store.claim_ready_queued_work(S, successor.fence(), successor_owner, IDLE, 10)
    inputs = store.claim_next_turn_inputs(S, successor.fence(), successor_owner, 10)
    assert queue is not None and queue.fencing_token > stale_queue.fencing_token
    assert inputs is not None and inputs.fencing_token > stale_inputs.fencing_token
    with pytest.raises(SessionExecutionLeaseExpired):
        store.commit_runtime_state(
            commit(stale, completed_queue_claims=(stale_queue.completion(),))
        )
    store.commit_runtime_state(
        commit(
            successor,
            completed_queue_claims=(queue.completion(),),
            completed_turn_input_claims=(inputs.completion(),),
            release_session_execution_lease=successor.completion(),
        )
    )
    assert store.list_queued_work(S) == [] and store.list_pending_turn_inputs(S) == []


def test_case_36_runtime_persistence_survives_reopen(harness: StoreHarness) -> None:
    first, second = harness.open(), harness.open()
    results = race(
        lambda: first.try_claim_session_execution_lease(S, owner("one"), TTL),
        lambda: second.try_claim_session_execution_lease(S, owner("two"), TTL),
    )
    winners = [r for r in results if isinstance(r, Acquired)]
    assert len(winners) == 1 and sum(isinstance(r, Busy) for r in results) == 1
    lease = winners[0].lease
    first.commit_runtime_state(
        replace(commit(lease), checkpoint=SessionCheckpoint(1, {"tool": 77}))
    )
    batch = first.enqueue_queued_work(wake("survives reopen", source_key="reopen:queued"))
    read = second.load_session()
    assert read is not None and read.checkpoint.state == {"tool": 77}
    assert second.list_queued_work(S) == [batch]


def test_case_37_checkpoint_claim_probe_transaction_counts(harness: StoreHarness) -> None:
    store = harness.store
    counts: Callable[[], tuple[int, int]] = lambda: store.transaction_counts  # type: ignore[attr-defined]  # noqa: E731
    a = owner("a")
    lease = acquire(store, a)
    turn, kind = "probe-turn", CheckpointKind.AFTER_WORK

    def probe() -> tuple[Any, Any]:
        return store.claim_checkpoint_work(S, lease.fence(), a, turn, kind, 10, 10)

    reads, writes = counts()
    assert probe() == (None, None)
    assert counts() == (reads + 1, writes)
    deferred = store.enqueue_queued_work(wake("deferred", delivery_policy=ACTC))
    reads, writes = counts()
    assert probe() == (None, None)
    assert counts() == (reads + 1, writes)
    idle = store.claim_ready_queued_work(S, lease.fence(), a, IDLE, 10)
    assert idle is not None and ids(idle.batches) == [deferred.batch_id]
    store.enqueue_pending_turn_input(active_input("active", turn))
    store.enqueue_queued_work(wake("esb"))
    reads, writes = counts()
    inputs, work = probe()
    assert inputs is not None and work is not None
    assert counts() == (reads + 1, writes + 1)


CONFORMANCE_CASES: dict[int, Callable[..., None]] = {
    int(name.split("_")[2]): obj
    for name, obj in list(globals().items())
    if name.startswith("test_case_") and callable(obj)
}


def test_all_thirty_seven_cases_are_present() -> None:
    assert sorted(CONFORMANCE_CASES) == list(range(1, 38))
