"""Persistence conformance: the 37 cases of invariants.md §2.1, run against every backend.

Each ``test_case_NN_<name>`` follows the lash ``runtime_persistence`` case of the same name
(paraphrased in /work/shared/spec/invariants.md §2.1, semantics in store.md).  Every case
runs on a fresh store from the ``harness`` fixture (tests/conftest.py), once per backend.

Cases whose subject lies outside this kernel (session graphs and read scopes, agent frames,
usage ledgers, session metadata, attachment manifests, tombstoned graph nodes, blob GC,
declared durability tiers) are kept and adapted to what the kernel does store: the
checkpoint (turn index plus an opaque JSON state mapping), the head revision and
checkpoint ref, the session binding, turn-input attachments and the vacuum report.  Each
such test says in its docstring what was adapted and why.

Concurrency cases (3, 7, 11, 13, 36) use real threads released together by a barrier:
on SQLite every thread has its own handle on the same file (``harness.open()``), on the
in-memory backend the threads share the one store.  Time only moves through
``harness.clock``; dead lease holders are processes missing from, or with another start
time in, ``harness.processes``.
"""

from __future__ import annotations

import sqlite3
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from lashspec.kernel.clock import is_definitely_dead_for_claimant
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
from lashspec.kernel.sqlite import SqliteStore
from lashspec.kernel.store import Store
from lashspec.kernel.types import (
    MERGE_NEVER,
    Acquired,
    ActiveTurn,
    ActiveTurnMode,
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
    LeaseClaimOutcome,
    LeaseOwnerIdentity,
    LocalProcessLiveness,
    MergeKey,
    NextTurn,
    NextTurnMode,
    NotFound,
    PendingTurnInput,
    PendingTurnInputDraft,
    ProcessWake,
    ProcessWakeDelivery,
    QueuedWorkBatch,
    QueuedWorkBatchDraft,
    QueuedWorkClaim,
    RefreshToolCatalog,
    RuntimeCommit,
    RuntimeCommitResult,
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
    TurnInputClaim,
    TurnInputState,
    turn_commit_hash,
)

from tests.conftest import BACKENDS

if TYPE_CHECKING:
    from tests.conftest import StoreHarness

ESB = DeliveryPolicy.EARLIEST_SAFE_BOUNDARY
ACTC = DeliveryPolicy.AFTER_CURRENT_TURN_COMMIT
JOIN = SlotPolicy.JOIN
EXCLUSIVE = SlotPolicy.EXCLUSIVE
IDLE = ClaimBoundary.IDLE
AT_CHECKPOINT = ClaimBoundary.ACTIVE_TURN_CHECKPOINT
AFTER_WORK = CheckpointKind.AFTER_WORK
TTL = 60_000
YEAR_2100_MS = 4_102_444_800_000
RACE_ROUNDS = 4

# ---------------------------------------------------------------------------
# Helpers: identities, drafts, commits, races
# ---------------------------------------------------------------------------


def owner(owner_id: str, incarnation_id: str | None = None) -> LeaseOwnerIdentity:
    """An opaque owner ``x`` with incarnation ``x:incarnation`` (the lash helper convention)."""
    return LeaseOwnerIdentity.opaque(owner_id, incarnation_id)


def local_owner(
    owner_id: str, pid: int, process_start: str, host: str = "host-a", boot: str = "boot-a"
) -> LeaseOwnerIdentity:
    return LeaseOwnerIdentity(
        owner_id,
        f"{owner_id}:incarnation",
        LocalProcessLiveness(host, boot, pid, process_start),
    )


def expect_acquired(outcome: LeaseClaimOutcome) -> SessionExecutionLease:
    assert isinstance(outcome, Acquired), f"expected Acquired, got {outcome}"
    return outcome.lease


def expect_busy(outcome: LeaseClaimOutcome) -> SessionExecutionLease:
    assert isinstance(outcome, Busy), f"expected Busy, got {outcome}"
    return outcome.holder


def acquire(
    store: Store, session_id: str, who: LeaseOwnerIdentity | str, ttl_ms: int = TTL
) -> SessionExecutionLease:
    identity = owner(who) if isinstance(who, str) else who
    return expect_acquired(store.try_claim_session_execution_lease(session_id, identity, ttl_ms))


def wake(
    session_id: str,
    text: str,
    delivery: DeliveryPolicy = ESB,
    slot: SlotPolicy = EXCLUSIVE,
    merge: MergeKey = MERGE_NEVER,
    source_key: str | None = None,
    available_at_ms: int = 0,
) -> QueuedWorkBatchDraft:
    """A one-payload turn-work batch whose text is the wake input."""
    payload = ProcessWake(
        ProcessWakeDelivery(
            wake_id=f"wake:{text}",
            target_session_id=session_id,
            process_id="conformance-process",
            sequence=0,
            input=text,
            dedupe_key=f"dedupe:{text}",
        )
    )
    return QueuedWorkBatchDraft(
        session_id,
        (payload,),
        delivery_policy=delivery,
        slot_policy=slot,
        merge_key=merge,
        available_at_ms=available_at_ms,
        source_key=source_key,
    )


def command(session_id: str, reason: str) -> QueuedWorkBatchDraft:
    return QueuedWorkBatchDraft(
        session_id, (SessionCommand(RefreshToolCatalog(reason)),), ESB, EXCLUSIVE
    )


def batch_text(batch: QueuedWorkBatch) -> str:
    payload = batch.items[0].payload
    if isinstance(payload, ProcessWake):
        return payload.wake.input
    if isinstance(payload, AgentFrameTask):
        return payload.task
    return payload.command.reason


def next_input(
    session_id: str,
    text: str,
    source_key: str | None = None,
    attachment: bytes | None = None,
) -> PendingTurnInputDraft:
    return PendingTurnInputDraft(session_id, NextTurn(), _input(text, attachment), source_key)


def active_input(
    session_id: str,
    text: str,
    turn_id: str,
    min_boundary: TurnInputCheckpointBoundary = TurnInputCheckpointBoundary.AFTER_WORK,
    source_key: str | None = None,
    attachment: bytes | None = None,
) -> PendingTurnInputDraft:
    return PendingTurnInputDraft(
        session_id, ActiveTurn(turn_id, min_boundary), _input(text, attachment), source_key
    )


def _input(text: str, attachment: bytes | None) -> TurnInput:
    if attachment is None:
        return TurnInput.text(text)
    return TurnInput((TextItem(text), AttachmentItem("image/png", attachment)))


def batch_ids(batches: Sequence[QueuedWorkBatch]) -> list[str]:
    return [b.batch_id for b in batches]


def input_ids(inputs: Sequence[PendingTurnInput]) -> list[str]:
    return [i.input_id for i in inputs]


def state_commit(session_id: str, turn_index: int = 0, **state: Any) -> RuntimeCommit:
    return RuntimeCommit(session_id, SessionCheckpoint(turn_index, state))


def fenced(
    commit: RuntimeCommit,
    lease: SessionExecutionLease,
    release: bool = False,
    queue: Sequence[QueuedWorkClaim] = (),
    inputs: Sequence[TurnInputClaim] = (),
) -> RuntimeCommit:
    return replace(
        commit,
        session_execution_lease=lease.fence(),
        release_session_execution_lease=lease.completion() if release else None,
        completed_queue_claims=commit.completed_queue_claims + tuple(c.completion() for c in queue),
        completed_turn_input_claims=commit.completed_turn_input_claims
        + tuple(c.completion() for c in inputs),
    )


def stamped(commit: RuntimeCommit, turn_id: str) -> RuntimeCommit:
    """The commit with a turn stamp whose hash is the commit's own identity hash."""
    return replace(
        commit,
        turn_commit=RuntimeTurnCommitStamp(commit.session_id, turn_id, turn_commit_hash(commit)),
    )


def handles(harness: StoreHarness, count: int) -> list[Store]:
    """``count`` handles on the harness's store (the same object for the in-memory backend)."""
    return [harness.store] + [harness.open() for _ in range(count - 1)]


def race(actions: Sequence[Callable[[], object]]) -> list[object]:
    """Run each action on its own thread, all released by one barrier.

    A :class:`StoreError` raised by an action is returned as its outcome; any other
    exception fails the test.
    """
    barrier = threading.Barrier(len(actions))
    outcomes: list[object] = [None] * len(actions)
    failures: list[BaseException] = []

    def run(index: int, action: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=10)
            outcomes[index] = action()
        except StoreError as error:
            outcomes[index] = error
        except BaseException as error:  # surfaced below on the test thread
            failures.append(error)

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "a racing thread did not finish in 30 s"
    if failures:
        raise failures[0]
    return outcomes


def transaction_counts(store: Store) -> tuple[int, int]:
    """(read, write) transactions opened so far; not part of the Store protocol."""
    counts = getattr(store, "transaction_counts", None)
    assert isinstance(counts, tuple), f"{type(store).__name__} exposes no transaction_counts"
    return counts


def make_store(backend: str, harness: StoreHarness, path: Path) -> Store:
    """An independent store of the harness's backend (for cases that manage lifetimes)."""
    if backend == "memory":
        return InMemoryStore(clock=harness.clock, liveness=harness.processes)
    if backend == "postgres":
        return harness.open()  # a new handle on the harness's schema: the durable location
    return SqliteStore(path, clock=harness.clock, liveness=harness.processes)


# ---------------------------------------------------------------------------
# Commit store (cases 1-9)
# ---------------------------------------------------------------------------


def test_case_01_reports_declared_durability(harness: StoreHarness, tmp_path: Path) -> None:
    """Adapted: the kernel has no ``durability_tier()`` API, so the declared tier is checked
    by behaviour.  In-memory is *inline*: everything lives in the store object, and a second,
    independent in-memory store sees none of it.  SQLite is *durable*: lease row, head,
    queued batch and turn input written through one handle survive closing that handle and
    are read back by a new handle on the same file."""
    path = tmp_path / "durability.sqlite"
    first = make_store(harness.backend, harness, path)
    lease = acquire(first, "root", "durable-owner")
    result = first.commit_runtime_state(fenced(state_commit("root", 3, note="kept"), lease))
    batch = first.enqueue_queued_work(wake("root", "durable batch", source_key="durable:batch"))
    pending = first.enqueue_pending_turn_input(next_input("root", "durable input"))
    first.close()

    second = make_store(harness.backend, harness, path)
    try:
        read = second.load_session()
        if harness.backend == "memory":
            assert read is None, "a fresh in-memory store must not share state with another"
            assert second.list_queued_work("root") == []
            assert second.list_pending_turn_inputs("root") == []
            assert second.session_fencing_token("root") == 0
        else:
            assert read is not None, "a durable store must keep the head across reopen"
            assert (read.session_id, read.head_revision) == ("root", 1)
            assert read.checkpoint == SessionCheckpoint(3, {"note": "kept"})
            assert read.checkpoint_ref == result.checkpoint_ref
            assert second.list_queued_work("root") == [batch]
            assert second.list_pending_turn_inputs("root") == [pending]
            assert second.load_session_execution_lease("root") == lease
    finally:
        second.close()


def test_case_02_commit_increments_head_and_round_trips_agent_frames(
    harness: StoreHarness,
) -> None:
    """Adapted: the kernel stores no agent-frame records; frames, the current frame id and
    the execution snapshot are carried in the checkpoint's opaque state mapping, which must
    round-trip exactly while each commit increments the head revision by one."""
    store = harness.store
    assert store.load_session() is None
    frames = [
        {"frame_id": "frame-1", "reason": "root", "parent": None},
        {"frame_id": "frame-2", "reason": "plan_mode", "parent": "frame-1"},
    ]
    state = {"agent_frames": frames, "current_agent_frame_id": "frame-2", "execution": "frame-vm"}
    lease = acquire(store, "root", "commit-round-trip")
    first = store.commit_runtime_state(fenced(state_commit("root", 0, **state), lease))
    assert first.head_revision == 1
    read = store.load_session()
    assert read is not None
    assert read.session_id == "root"
    assert read.head_revision == 1
    assert read.checkpoint_ref == first.checkpoint_ref
    assert read.checkpoint.turn_index == 0
    assert read.checkpoint.state["current_agent_frame_id"] == "frame-2"
    assert len(read.checkpoint.state["agent_frames"]) == 2
    assert read.checkpoint.state["agent_frames"][1]["reason"] == "plan_mode"
    assert read.checkpoint.state["execution"] == "frame-vm"
    assert dict(read.checkpoint.state) == state

    second = store.commit_runtime_state(
        fenced(
            replace(state_commit("root", 1, **state), expected_head_revision=1), lease, release=True
        )
    )
    assert second.head_revision == 2
    read = store.load_session()
    assert read is not None and read.head_revision == 2 and read.checkpoint.turn_index == 1


def test_case_03_concurrent_head_revision_cas_applies_exactly_once(harness: StoreHarness) -> None:
    """Two writers commit from the same base revision at the same time: exactly one applies,
    the other gets HeadRevisionConflict{expected, actual}; the head moves by exactly one and
    holds the winner's state.  Repeated for several rounds (each from the new head)."""
    store = harness.store
    assert store.load_session() is None, "an empty store has no head (revision 0)"
    left, right = handles(harness, 2)
    lease = acquire(store, "root", "cas-owner")
    for base in range(RACE_ROUNDS):

        def writer(handle: Store, name: str, base: int = base) -> Callable[[], object]:
            commit = replace(
                state_commit("root", base, writer=name, nodes=[f"{name}-node-{base}"]),
                expected_head_revision=base,
            )
            return lambda: handle.commit_runtime_state(fenced(commit, lease))

        outcomes = race([writer(left, "left"), writer(right, "right")])
        applied = [i for i, o in enumerate(outcomes) if isinstance(o, RuntimeCommitResult)]
        conflicts = [o for o in outcomes if isinstance(o, HeadRevisionConflict)]
        assert len(applied) == 1 and len(conflicts) == 1, f"round {base}: {outcomes}"
        assert (conflicts[0].expected, conflicts[0].actual) == (base, base + 1)
        winner = ("left", "right")[applied[0]]
        read = store.load_session()
        assert read is not None
        assert read.head_revision == base + 1
        assert read.checkpoint.state == {"writer": winner, "nodes": [f"{winner}-node-{base}"]}


def test_case_04_commit_rejects_a_different_session_id(harness: StoreHarness) -> None:
    """The first commit binds the store to its session; a commit for another session is
    rejected with SessionBindingMismatch and applies nothing, not even its lease release."""
    store = harness.store
    alpha = acquire(store, "alpha", "bind-alpha")
    store.commit_runtime_state(fenced(state_commit("alpha"), alpha, release=True))
    beta = acquire(store, "beta", "bind-beta")
    with pytest.raises(SessionBindingMismatch) as rejected:
        store.commit_runtime_state(fenced(state_commit("beta", 5), beta, release=True))
    assert (rejected.value.bound_session_id, rejected.value.attempted_session_id) == (
        "alpha",
        "beta",
    )
    read = store.load_session()
    assert read is not None and (read.session_id, read.head_revision) == ("alpha", 1)
    assert store.load_session_execution_lease("beta") == beta, "rejected commit released a lease"


def test_case_05_load_hydrates_checkpoint_and_usage(harness: StoreHarness) -> None:
    """Adapted: tool-state generation, plugin snapshot revision and the usage ledger are not
    kernel records; they ride in the checkpoint state, and load must hydrate them unchanged
    under the committed session id."""
    store = harness.store
    usage = {"input_tokens": 11, "output_tokens": 7, "cache_read": 3, "reasoning": 5}
    state = {
        "tool_state": {"generation": 9},
        "plugin_snapshot_revision": 12,
        "token_ledger": [{"source": "turn", "model": "mock-model", "usage": usage}],
    }
    lease = acquire(store, "hydrated", "hydrate")
    store.commit_runtime_state(fenced(state_commit("hydrated", 2, **state), lease, release=True))
    read = store.load_session()
    assert read is not None
    assert read.session_id == "hydrated"
    assert read.checkpoint.turn_index == 2
    assert read.checkpoint.state["tool_state"]["generation"] == 9
    assert read.checkpoint.state["plugin_snapshot_revision"] == 12
    assert len(read.checkpoint.state["token_ledger"]) == 1
    assert read.checkpoint.state["token_ledger"][0]["usage"]["input_tokens"] == 11


def test_case_06_active_path_read_scope_selects_only_requested_ancestry(
    harness: StoreHarness,
) -> None:
    """Adapted: the kernel has no session graph and no read scopes; ``load_session`` always
    returns the head checkpoint.  What carries over is that a read returns exactly the
    requested (current) state and nothing of other branches: after a commit replacing a
    branchy node list with only the right-hand path, the read holds that path alone, in
    commit order, and the old branch is gone."""
    store = harness.store
    branchy = [
        ["root-node", None],
        ["left-node", "root-node"],
        ["left-leaf", "left-node"],
        ["right-leaf", "root-node"],
    ]
    lease = acquire(store, "branchy", "active-path")
    store.commit_runtime_state(
        fenced(state_commit("branchy", 0, nodes=branchy, leaf="left-leaf"), lease)
    )
    read = store.load_session()
    assert read is not None
    assert [n[0] for n in read.checkpoint.state["nodes"]] == [
        "root-node",
        "left-node",
        "left-leaf",
        "right-leaf",
    ]
    right_path = [["root-node", None], ["right-leaf", "root-node"]]
    store.commit_runtime_state(
        fenced(state_commit("branchy", 1, nodes=right_path, leaf="right-leaf"), lease, True)
    )
    read = store.load_session()
    assert read is not None
    assert dict(read.checkpoint.state) == {"nodes": right_path, "leaf": "right-leaf"}
    assert read.checkpoint.turn_index == 1 and read.head_revision == 2


def test_case_07_session_metadata_round_trips(harness: StoreHarness) -> None:
    """Adapted: there is no separate session-meta record; metadata (name, created-at, model,
    cwd, relation) is saved as checkpoint state, and every JSON type (unicode text, null,
    booleans, floats, nested lists and objects) must come back equal."""
    store = harness.store
    meta = {
        "session_name": "Conformance Root — ünïcode ✓",
        "created_at": "2026-06-02T00:00:00Z",
        "model": "gpt-5.4-mini",
        "cwd": None,
        "relation": {"kind": "root", "parents": []},
        "flags": [True, False],
        "temperature": 0.25,
        "limits": {"tokens": 200_000, "nested": [[1, 2], {"x": "y"}]},
    }
    lease = acquire(store, "root", "meta-owner")
    store.commit_runtime_state(fenced(state_commit("root", 0, meta=meta), lease, release=True))
    read = store.load_session()
    assert read is not None
    assert read.checkpoint.state["meta"] == meta


def test_case_08_attachment_manifest(harness: StoreHarness) -> None:
    """Adapted: attachment intent/commit manifests are out of the kernel's scope (spec case
    8 itself is marked out of scope).  The attachments the kernel does store are the
    ``AttachmentItem`` bytes of pending turn inputs, so this case checks that they are kept
    byte-exact (all 256 byte values, an empty attachment) through enqueue, source-key
    replay, listing, claiming, completion and direct lookup."""
    store = harness.store
    every_byte = bytes(range(256))
    draft = PendingTurnInputDraft(
        "root",
        NextTurn(),
        TurnInput(
            (
                TextItem("see attached"),
                AttachmentItem("image/png", every_byte),
                AttachmentItem("application/octet-stream", b""),
            )
        ),
        source_key="attachment:first",
    )
    stored = store.enqueue_pending_turn_input(draft)
    assert stored.input == draft.input
    assert store.enqueue_pending_turn_input(draft) == stored
    assert store.list_pending_turn_inputs("root")[0].input == draft.input
    lease = acquire(store, "root", "attachment-owner")
    claim = store.claim_next_turn_inputs("root", lease.fence(), owner("attachment-owner"), 10)
    assert claim is not None
    items = claim.inputs[0].input.items
    assert isinstance(items[1], AttachmentItem) and items[1].data == every_byte
    assert isinstance(items[2], AttachmentItem) and items[2].data == b""
    store.commit_runtime_state(fenced(state_commit("root"), lease, True, inputs=[claim]))
    completed = store.get_pending_turn_input("root", stored.input_id)
    assert completed is not None and completed.state is TurnInputState.COMPLETED
    assert completed.input == draft.input


def test_case_09_final_commit_stamp_is_idempotent_and_conflicts_on_changed_hash(
    harness: StoreHarness,
) -> None:
    """A stamped final commit under a lease (released by the commit) can be retried without
    any lease and returns the original result; the hash ignores expected_head_revision; the
    same turn id with different content conflicts (checked before the lease)."""
    store = harness.store
    base = state_commit("root")
    commit = stamped(base, "provider-turn")
    lease = acquire(store, "root", "provider-turn")
    first = store.commit_runtime_state(fenced(commit, lease, release=True))
    assert store.load_session_execution_lease("root") is None
    retry = store.commit_runtime_state(commit)
    assert (retry.head_revision, retry.checkpoint_ref) == (
        first.head_revision,
        first.checkpoint_ref,
    )
    read = store.load_session()
    assert read is not None and read.head_revision == first.head_revision == 1

    from_new_head = replace(base, expected_head_revision=first.head_revision)
    assert turn_commit_hash(from_new_head) == turn_commit_hash(base)

    changed = stamped(state_commit("root", 1), "provider-turn")
    with pytest.raises(RuntimeTurnCommitConflict) as conflict:
        store.commit_runtime_state(changed)
    assert (conflict.value.session_id, conflict.value.turn_id) == ("root", "provider-turn")
    read = store.load_session()
    assert read is not None and read.head_revision == 1 and read.checkpoint.turn_index == 0


# ---------------------------------------------------------------------------
# Lease store (cases 10-11)
# ---------------------------------------------------------------------------


def test_case_10_session_execution_lease_contract(harness: StoreHarness) -> None:
    """Re-entry, exclusion of other owners and other incarnations, renew, stale renew,
    fenced idempotent release, generation advance after release and after a TTL-0 lease,
    commits that need a live fence, releasing commits, turn-stamp replay without a lease,
    and claims that need a live fence."""
    store, clock = harness.store, harness.clock
    owner_a = owner("owner-a")
    owner_a_next = owner("owner-a", "owner-a:next-incarnation")

    now = clock.now_ms()
    first = acquire(store, "root", owner_a)
    assert first.fencing_token == 1
    assert (first.claimed_at_ms, first.expires_at_ms) == (now, now + TTL)
    clock.advance(10)
    reentered = expect_acquired(store.try_claim_session_execution_lease("root", owner_a, 120_000))
    assert (reentered.lease_token, reentered.fencing_token) == (
        first.lease_token,
        first.fencing_token,
    )
    assert reentered.claimed_at_ms == first.claimed_at_ms
    assert reentered.expires_at_ms == clock.now_ms() + 120_000 >= first.expires_at_ms
    holder = expect_busy(store.try_claim_session_execution_lease("root", owner_a_next, TTL))
    assert holder.lease_token == first.lease_token, "another incarnation must be excluded"
    expect_busy(store.try_claim_session_execution_lease("root", owner("owner-b"), TTL))

    clock.advance(10)
    renewed = store.renew_session_execution_lease(reentered.fence(), 120_000)
    assert (renewed.lease_token, renewed.fencing_token) == (first.lease_token, 1)
    assert renewed.expires_at_ms == clock.now_ms() + 120_000 >= reentered.expires_at_ms
    stale_fence = replace(reentered.fence(), lease_token=first.lease_token + ":stale")
    with pytest.raises(SessionExecutionLeaseExpired) as stale:
        store.renew_session_execution_lease(stale_fence, TTL)
    assert stale.value.session_id == "root"

    store.release_session_execution_lease(
        replace(first.completion(), lease_token=first.lease_token + ":stale")
    )
    expect_busy(store.try_claim_session_execution_lease("root", owner("owner-b"), TTL))
    store.release_session_execution_lease(renewed.completion())
    row = store.inspect_lease_row("root")
    assert row is not None
    assert (row.owner, row.lease_token, row.claimed_at_ms, row.expires_at_ms) == (None, None, 0, 0)
    assert row.fencing_token == 1, "release must keep the fencing token"
    store.release_session_execution_lease(renewed.completion())  # idempotent

    second = acquire(store, "root", "owner-b")
    assert second.fencing_token == 2 > first.fencing_token
    assert second.lease_token != first.lease_token
    store.release_session_execution_lease(first.completion())
    expect_busy(store.try_claim_session_execution_lease("root", owner("owner-c"), TTL))
    store.release_session_execution_lease(second.completion())

    expired = acquire(store, "root", "owner-expired", ttl_ms=0)
    assert expired.expires_at_ms == clock.now_ms(), "a TTL-0 lease is born expired"
    assert store.load_session_execution_lease("root") is None
    with pytest.raises(SessionExecutionLeaseExpired):
        store.renew_session_execution_lease(expired.fence(), TTL)
    reclaimed = acquire(store, "root", "owner-reclaim")
    assert reclaimed.fencing_token > expired.fencing_token
    store.release_session_execution_lease(reclaimed.completion())

    with pytest.raises(SessionExecutionLeaseExpired):
        store.commit_runtime_state(state_commit("root"))
    assert store.load_session() is None

    commit_lease = acquire(store, "root", "commit-owner")
    store.commit_runtime_state(fenced(state_commit("root"), commit_lease, release=True))
    after_commit = acquire(store, "root", "after-commit")
    store.release_session_execution_lease(after_commit.completion())

    turn_commit = stamped(state_commit("root", 1), "lease-replay-turn")
    turn_lease = acquire(store, "root", "turn-owner")
    applied = store.commit_runtime_state(fenced(turn_commit, turn_lease, release=True))
    replayed = store.commit_runtime_state(turn_commit)
    assert replayed.head_revision == applied.head_revision == 2

    batch = store.enqueue_queued_work(wake("root", "fenced queue"))
    with pytest.raises(SessionExecutionLeaseExpired):
        store.claim_ready_queued_work("root", commit_lease.fence(), owner("queue-owner"), IDLE, 1)
    queue_lease = acquire(store, "root", "queue-owner")
    claim = store.claim_ready_queued_work(
        "root", queue_lease.fence(), owner("queue-owner"), IDLE, 1
    )
    assert claim is not None and batch_ids(claim.batches) == [batch.batch_id]
    store.release_session_execution_lease(queue_lease.completion())
    assert store.session_fencing_token("root") == queue_lease.fencing_token == 8


def test_case_11_session_execution_lease_reclaim_contract(harness: StoreHarness) -> None:
    """Fenced dead-holder reclaim: plain claims stay Busy, the fenced reclaim of a provably
    dead holder wins with a higher generation, a stale observation is Busy, of two racing
    reclaimers exactly one wins, and cross-host, other-boot, opaque and live holders are
    never reclaimed before their TTL.  An expired row is taken whatever the observation."""
    store, processes = harness.store, harness.processes
    processes.spawn(4242, "holder-real-start")  # pid 4242 runs, but started at another time
    dead_holder = local_owner("dead-holder", 4242, "holder-recorded-start")
    claimant = local_owner("claimant", 4343, "claimant-start")
    processes.spawn(4343, "claimant-start")

    holder = acquire(store, "reclaim-dead", dead_holder)
    observed = expect_busy(store.try_claim_session_execution_lease("reclaim-dead", claimant, TTL))
    assert observed.owner == dead_holder, "Busy must report the holder with its liveness"
    assert is_definitely_dead_for_claimant(observed.owner, claimant, processes)
    reclaimed = expect_acquired(
        store.reclaim_session_execution_lease("reclaim-dead", claimant, observed.fence(), TTL)
    )
    assert reclaimed.fencing_token == holder.fencing_token + 1
    assert reclaimed.owner == claimant
    late = local_owner("late-claimant", 4444, "late-start")
    stale = expect_busy(
        store.reclaim_session_execution_lease("reclaim-dead", late, holder.fence(), TTL)
    )
    assert stale.lease_token == reclaimed.lease_token, "stale observation cleared a newer lease"
    assert store.load_session_execution_lease("reclaim-dead") == reclaimed
    store.release_session_execution_lease(reclaimed.completion())

    vanished = local_owner("vanished-holder", 5151, "vanished-start")  # pid not running at all
    gone = acquire(store, "reclaim-gone", vanished)
    taken = expect_acquired(
        store.reclaim_session_execution_lease("reclaim-gone", claimant, gone.fence(), TTL)
    )
    assert taken.fencing_token == gone.fencing_token + 1

    left, right = handles(harness, 2)
    left_claimant = local_owner("race-left", 4545, "race-left-start")
    right_claimant = local_owner("race-right", 4646, "race-right-start")
    for round_index in range(RACE_ROUNDS):
        session = f"reclaim-race-{round_index}"
        race_holder = acquire(store, session, dead_holder)
        outcomes = race(
            [
                lambda s=session, h=race_holder: left.reclaim_session_execution_lease(
                    s, left_claimant, h.fence(), TTL
                ),
                lambda s=session, h=race_holder: right.reclaim_session_execution_lease(
                    s, right_claimant, h.fence(), TTL
                ),
            ]
        )
        winners = [o.lease for o in outcomes if isinstance(o, Acquired)]
        losers = [o.holder for o in outcomes if isinstance(o, Busy)]
        assert len(winners) == 1 and len(losers) == 1, f"round {round_index}: {outcomes}"
        assert winners[0].fencing_token == race_holder.fencing_token + 1
        assert losers[0].lease_token == winners[0].lease_token
        assert store.load_session_execution_lease(session) == winners[0]

    unprovable = [
        ("reclaim-cross-host", dead_holder, local_owner("x-host", 4343, "s", host="host-b")),
        ("reclaim-other-boot", dead_holder, local_owner("x-boot", 4343, "s", boot="boot-b")),
        ("reclaim-opaque", owner("opaque-holder"), claimant),
    ]
    processes.spawn(4747, "live-start")
    live_holder = local_owner("live-holder", 4747, "live-start")
    unprovable.append(("reclaim-live", live_holder, claimant))
    for session, holder_identity, reclaimer in unprovable:
        held = acquire(store, session, holder_identity)
        busy = expect_busy(
            store.reclaim_session_execution_lease(session, reclaimer, held.fence(), 1)
        )
        assert busy == held, f"{session}: an unprovable death must leave the holder in place"
        assert store.session_fencing_token(session) == held.fencing_token

    harness.clock.advance(TTL)
    bogus = replace(held.fence(), lease_token="never-issued", fencing_token=99)
    after_expiry = expect_acquired(
        store.reclaim_session_execution_lease("reclaim-live", claimant, bogus, TTL)
    )
    assert after_expiry.fencing_token == held.fencing_token + 1


# ---------------------------------------------------------------------------
# Queued work (cases 12-26)
# ---------------------------------------------------------------------------


def test_case_12_queued_work_source_keys_are_idempotent_and_list_ordered(
    harness: StoreHarness,
) -> None:
    """A source-key replay returns the original batch (ids and payload) even with another
    payload; lists are per session and ordered by enqueue_seq."""
    store = harness.store
    first = store.enqueue_queued_work(wake("root", "first", slot=JOIN, source_key="source:first"))
    replay = store.enqueue_queued_work(
        wake("root", "different replay payload", slot=JOIN, source_key="source:first")
    )
    second = store.enqueue_queued_work(wake("root", "second"))
    other = store.enqueue_queued_work(wake("other", "other session"))
    assert replay.batch_id == first.batch_id
    assert replay.items[0].item_id == first.items[0].item_id
    assert batch_text(replay) == "first"
    listed = store.list_queued_work("root")
    assert batch_ids(listed) == [first.batch_id, second.batch_id]
    assert listed[0].enqueue_seq < listed[1].enqueue_seq
    assert store.list_queued_work("other") == [other]


def test_case_13_concurrent_queue_and_turn_input_claims_have_one_owner(
    harness: StoreHarness,
) -> None:
    """Under one lease, two concurrent queue claims (max 1) of one batch: exactly one wins
    and the batch leaves the pending list; two concurrent next-turn input claims: exactly
    one wins.  The lanes are independent (the two winners are different owners).  Repeated
    for several rounds, each with a fresh batch and input."""
    store = harness.store
    left, right = handles(harness, 2)
    lease = acquire(store, "root", "lane-owner")
    fence = lease.fence()
    for round_index in range(RACE_ROUNDS):
        batch = store.enqueue_queued_work(wake("root", f"contended batch {round_index}"))
        pending = store.enqueue_pending_turn_input(next_input("root", f"contended {round_index}"))
        queue_outcomes = race(
            [
                lambda: left.claim_ready_queued_work("root", fence, owner("queue-left"), IDLE, 1),
                lambda: right.claim_ready_queued_work("root", fence, owner("queue-right"), IDLE, 1),
            ]
        )
        queue_wins = [o for o in queue_outcomes if isinstance(o, QueuedWorkClaim)]
        assert len(queue_wins) == 1 and queue_outcomes.count(None) == 1, queue_outcomes
        assert batch_ids(queue_wins[0].batches) == [batch.batch_id]
        assert store.list_pending_queued_work("root") == []

        input_outcomes = race(
            [
                lambda: left.claim_next_turn_inputs("root", fence, owner("input-left"), 1),
                lambda: right.claim_next_turn_inputs("root", fence, owner("input-right"), 1),
            ]
        )
        input_wins = [o for o in input_outcomes if isinstance(o, TurnInputClaim)]
        assert len(input_wins) == 1 and input_outcomes.count(None) == 1, input_outcomes
        assert input_ids(input_wins[0].inputs) == [pending.input_id]
        assert store.list_pending_turn_inputs("root") == []
        assert queue_wins[0].owner.owner_id.startswith("queue-")
        assert input_wins[0].owner.owner_id.startswith("input-")
        assert queue_wins[0].owner.owner_id != input_wins[0].owner.owner_id
        claims = store.inspect_queued_work("root")
        assert [c.claim_owner for b, c in claims if b.batch_id == batch.batch_id] == [
            queue_wins[0].owner
        ]


def test_case_14_checkpoint_work_claims_both_families_once(harness: StoreHarness) -> None:
    """One checkpoint claim takes the active input and the earliest-safe batch, both pinned
    to the lease generation; a second call in the same generation gets nothing."""
    store = harness.store
    pending = store.enqueue_pending_turn_input(
        active_input("root", "checkpoint input", "checkpoint-turn")
    )
    batch = store.enqueue_queued_work(wake("root", "checkpoint batch"))
    lease = acquire(store, "root", "checkpoint-owner")
    who = owner("checkpoint-owner")
    input_claim, queue_claim = store.claim_checkpoint_work(
        "root", lease.fence(), who, "checkpoint-turn", AFTER_WORK, 10, 10
    )
    assert input_claim is not None and queue_claim is not None
    assert input_ids(input_claim.inputs) == [pending.input_id]
    assert batch_ids(queue_claim.batches) == [batch.batch_id]
    assert input_claim.session_lease_generation == lease.fencing_token
    assert queue_claim.session_lease_generation == lease.fencing_token
    assert input_claim.mode == ActiveTurnMode("checkpoint-turn", AFTER_WORK)
    assert input_claim.inputs[0].state is TurnInputState.ACCEPTED
    again = store.claim_checkpoint_work(
        "root", lease.fence(), who, "checkpoint-turn", AFTER_WORK, 10, 10
    )
    assert again == (None, None)


def test_case_15_queued_work_cancel_removes_only_unclaimed_batches(harness: StoreHarness) -> None:
    """Cancel deletes and returns an unclaimed batch; a live-claimed batch is hidden from
    the pending list, still in the raw list, and not cancellable until abandoned."""
    store = harness.store
    cancellable = store.enqueue_queued_work(wake("root", "cancel me", delivery=ACTC))
    cancelled = store.cancel_queued_work_batch("root", cancellable.batch_id)
    assert cancelled == cancellable and batch_text(cancelled) == "cancel me"
    assert store.list_queued_work("root") == []
    assert store.cancel_queued_work_batch("root", cancellable.batch_id) is None

    claimed = store.enqueue_queued_work(wake("root", "claimed", delivery=ACTC))
    lease = acquire(store, "root", "owner")
    claim = store.claim_ready_queued_work("root", lease.fence(), owner("owner"), IDLE, 1)
    assert claim is not None and batch_ids(claim.batches) == [claimed.batch_id]
    assert store.list_pending_queued_work("root") == []
    assert batch_ids(store.list_queued_work("root")) == [claimed.batch_id]
    assert store.cancel_queued_work_batch("root", claimed.batch_id) is None
    assert batch_ids(store.list_queued_work("root")) == [claimed.batch_id]
    store.abandon_queued_work_claim(claim)
    store.release_session_execution_lease(lease.completion())
    assert batch_ids(store.list_pending_queued_work("root")) == [claimed.batch_id]
    assert store.cancel_queued_work_batch("root", claimed.batch_id) == claimed
    assert store.list_queued_work("root") == []


def test_case_16_queued_work_exact_claim_uses_selected_batch_ids(harness: StoreHarness) -> None:
    """By-ids claims respect the boundary gate and never combine exclusive batches, but may
    pick a batch out of order (store.md §3.7); unknown ids and empty lists claim nothing."""
    store = harness.store
    first = store.enqueue_queued_work(wake("root", "first", delivery=ACTC))
    second = store.enqueue_queued_work(wake("root", "second", delivery=ACTC))
    lease = acquire(store, "root", "owner")
    who = owner("owner")
    fence = lease.fence()
    by_ids = store.claim_ready_queued_work_by_batch_ids
    assert by_ids("root", fence, who, AT_CHECKPOINT, [second.batch_id]) is None
    assert by_ids("root", fence, who, IDLE, [first.batch_id, second.batch_id]) is None
    assert by_ids("root", fence, who, IDLE, []) is None
    assert by_ids("root", fence, who, IDLE, ["no-such-batch"]) is None
    claim = by_ids("root", fence, who, IDLE, [second.batch_id])
    assert claim is not None and batch_ids(claim.batches) == [second.batch_id]
    assert batch_ids(store.list_pending_queued_work("root")) == [first.batch_id]
    store.commit_runtime_state(fenced(state_commit("root"), lease, True, queue=[claim]))
    assert batch_ids(store.list_queued_work("root")) == [first.batch_id]

    next_lease = acquire(store, "root", "owner")
    exact = by_ids("root", next_lease.fence(), who, IDLE, [first.batch_id])
    assert exact is not None and batch_ids(exact.batches) == [first.batch_id]
    assert store.list_pending_queued_work("root") == []


def test_case_17_queued_work_classes_gate_command_and_turn_claims(harness: StoreHarness) -> None:
    """A leading ready session command blocks turn-work claims and is claimed alone; turn
    work behind a command held by the caller's own generation becomes claimable; a command
    never jumps ahead of earlier turn work."""
    store = harness.store
    cmd = store.enqueue_queued_work(command("root", "refresh before turn"))
    turn = store.enqueue_queued_work(wake("root", "user turn", delivery=ACTC))
    lease = acquire(store, "root", "command-owner")
    who = owner("command-owner")
    assert store.claim_ready_queued_work("root", lease.fence(), who, IDLE, 10) is None
    command_claim = store.claim_leading_ready_session_command("root", lease.fence(), who)
    assert command_claim is not None and batch_ids(command_claim.batches) == [cmd.batch_id]
    behind = store.claim_ready_queued_work("root", lease.fence(), who, IDLE, 10)
    assert behind is not None and batch_ids(behind.batches) == [turn.batch_id]
    store.commit_runtime_state(fenced(state_commit("root"), lease, True, queue=[command_claim]))
    assert batch_ids(store.list_queued_work("root")) == [turn.batch_id]

    turn_lease = acquire(store, "root", "turn-owner")
    selected = store.claim_ready_queued_work_by_batch_ids(
        "root", turn_lease.fence(), owner("turn-owner"), IDLE, [turn.batch_id]
    )
    assert selected is not None and batch_ids(selected.batches) == [turn.batch_id]
    assert selected.fencing_token > behind.fencing_token

    first_turn = store.enqueue_queued_work(wake("turn-first", "first turn", delivery=ACTC))
    later_cmd = store.enqueue_queued_work(command("turn-first", "later refresh"))
    tf_lease = acquire(store, "turn-first", "command-owner")
    assert store.claim_leading_ready_session_command("turn-first", tf_lease.fence(), who) is None
    turn_claim = store.claim_ready_queued_work("turn-first", tf_lease.fence(), who, IDLE, 10)
    assert turn_claim is not None and batch_ids(turn_claim.batches) == [first_turn.batch_id]
    store.abandon_queued_work_claim(turn_claim)
    store.release_session_execution_lease(tf_lease.completion())
    assert batch_ids(store.list_queued_work("turn-first")) == [
        first_turn.batch_id,
        later_cmd.batch_id,
    ]


def test_case_18_queued_work_claims_respect_boundaries_abandon_and_stale_completion(
    harness: StoreHarness,
) -> None:
    """An after-commit head gates checkpoint claims until it is held; abandon hands the row
    back and a re-claim advances its fencing; the pre-abandon claim is then superseded."""
    store = harness.store
    after_commit = store.enqueue_queued_work(wake("root", "after current commit", delivery=ACTC))
    earliest = store.enqueue_queued_work(wake("root", "earliest"))
    lease = acquire(store, "root", "owner-a")
    who = owner("owner-a")
    assert store.claim_ready_queued_work("root", lease.fence(), who, AT_CHECKPOINT, 10) is None
    idle_claim = store.claim_ready_queued_work("root", lease.fence(), who, IDLE, 10)
    assert idle_claim is not None and batch_ids(idle_claim.batches) == [after_commit.batch_id]
    checkpoint_claim = store.claim_ready_queued_work("root", lease.fence(), who, AT_CHECKPOINT, 10)
    assert checkpoint_claim is not None
    assert batch_ids(checkpoint_claim.batches) == [earliest.batch_id]
    store.abandon_queued_work_claim(idle_claim)
    reclaimed = store.claim_ready_queued_work("root", lease.fence(), who, IDLE, 10)
    assert reclaimed is not None and batch_ids(reclaimed.batches) == [after_commit.batch_id]
    assert reclaimed.fencing_token > idle_claim.fencing_token
    assert reclaimed.claim_id != idle_claim.claim_id
    store.release_session_execution_lease(lease.completion())

    new_lease = acquire(store, "root", "owner-b")
    with pytest.raises(QueuedWorkClaimSuperseded) as superseded:
        store.commit_runtime_state(fenced(state_commit("root"), new_lease, queue=[idle_claim]))
    assert superseded.value.claim_id == idle_claim.claim_id
    assert len(store.list_queued_work("root")) == 2
    assert store.load_session() is None


def test_case_19_queued_work_claims_supersede_across_session_lease_generations(
    harness: StoreHarness,
) -> None:
    """(a) a generation cannot re-claim its own rows; (b) after release a newer generation
    re-claims them with higher fencing and the old completion is superseded; (c) the same
    after a dead-holder takeover."""
    store, processes = harness.store, harness.processes
    batch = store.enqueue_queued_work(wake("root", "generation batch"))
    lease_a = acquire(store, "root", "owner-a")
    claim_a = store.claim_ready_queued_work("root", lease_a.fence(), owner("owner-a"), IDLE, 1)
    assert claim_a is not None and batch_ids(claim_a.batches) == [batch.batch_id]
    assert claim_a.session_lease_generation == lease_a.fencing_token
    assert store.claim_ready_queued_work("root", lease_a.fence(), owner("owner-a"), IDLE, 1) is None

    store.release_session_execution_lease(lease_a.completion())
    lease_b = acquire(store, "root", "owner-b")
    assert lease_b.fencing_token > lease_a.fencing_token
    claim_b = store.claim_ready_queued_work("root", lease_b.fence(), owner("owner-b"), IDLE, 1)
    assert claim_b is not None and batch_ids(claim_b.batches) == [batch.batch_id]
    assert claim_b.fencing_token > claim_a.fencing_token
    assert claim_b.session_lease_generation == lease_b.fencing_token
    with pytest.raises(QueuedWorkClaimSuperseded):
        store.commit_runtime_state(fenced(state_commit("root"), lease_b, queue=[claim_a]))
    assert batch_ids(store.list_queued_work("root")) == [batch.batch_id]
    store.commit_runtime_state(fenced(state_commit("root"), lease_b, True, queue=[claim_b]))
    assert store.list_queued_work("root") == []

    second = store.enqueue_queued_work(wake("root", "takeover batch"))
    processes.spawn(4343, "taker-start")
    dead = local_owner("dead-owner", 5252, "dead-start")  # pid 5252 is not running
    taker = local_owner("taker", 4343, "taker-start")
    dead_lease = acquire(store, "root", dead)
    dead_claim = store.claim_ready_queued_work("root", dead_lease.fence(), dead, IDLE, 1)
    assert dead_claim is not None
    taken = expect_acquired(
        store.reclaim_session_execution_lease("root", taker, dead_lease.fence(), TTL)
    )
    assert taken.fencing_token > dead_lease.fencing_token
    taker_claim = store.claim_ready_queued_work("root", taken.fence(), taker, IDLE, 1)
    assert taker_claim is not None and batch_ids(taker_claim.batches) == [second.batch_id]
    assert taker_claim.fencing_token > dead_claim.fencing_token
    with pytest.raises(QueuedWorkClaimSuperseded):
        store.commit_runtime_state(fenced(state_commit("root"), taken, queue=[dead_claim]))
    assert batch_ids(store.list_queued_work("root")) == [second.batch_id]


def _retained_claims(
    store: Store, session: str, holder: LeaseOwnerIdentity, ttl_ms: int = TTL
) -> tuple[SessionExecutionLease, QueuedWorkBatch, PendingTurnInput]:
    """A live lease holding a queue claim and an input claim, checked to be live."""
    batch = store.enqueue_queued_work(wake(session, f"{session} batch"))
    pending = store.enqueue_pending_turn_input(next_input(session, f"{session} input"))
    lease = acquire(store, session, holder, ttl_ms)
    assert store.claim_ready_queued_work(session, lease.fence(), holder, IDLE, 1) is not None
    assert store.claim_next_turn_inputs(session, lease.fence(), holder, 1) is not None
    assert store.list_pending_queued_work(session) == []
    assert store.list_pending_turn_inputs(session) == []
    assert store.cancel_queued_work_batch(session, batch.batch_id) is None
    assert isinstance(store.cancel_pending_turn_input(session, pending.input_id), AlreadyClaimed)
    return lease, batch, pending


def test_case_20_claim_liveness_for_lease_less_paths_tracks_session_generations(
    harness: StoreHarness,
) -> None:
    """For lease-less callers (pending lists, cancels) a claim is live only while its
    generation is the live lease: after a release, after expiry (1 000 ms lease, clock
    +1 100 ms) and after a dead-holder takeover that claims nothing, the batch and the input
    are listed and cancellable again."""
    store, clock, processes = harness.store, harness.clock, harness.processes

    lease, batch_r, input_r = _retained_claims(store, "released", owner("owner-r"))
    store.release_session_execution_lease(lease.completion())

    _, batch_e, input_e = _retained_claims(store, "expired", owner("owner-e"), ttl_ms=1_000)
    clock.advance(1_100)

    dead = local_owner("dead-owner", 5353, "dead-start")
    taker = local_owner("taker", 4343, "taker-start")
    processes.spawn(4343, "taker-start")
    dead_lease, batch_t, input_t = _retained_claims(store, "taken-over", dead)
    expect_acquired(
        store.reclaim_session_execution_lease("taken-over", taker, dead_lease.fence(), TTL)
    )

    for session, batch, pending in (
        ("released", batch_r, input_r),
        ("expired", batch_e, input_e),
        ("taken-over", batch_t, input_t),
    ):
        assert batch_ids(store.list_pending_queued_work(session)) == [batch.batch_id], session
        assert input_ids(store.list_pending_turn_inputs(session)) == [pending.input_id], session
        assert store.cancel_queued_work_batch(session, batch.batch_id) == batch, session
        outcome = store.cancel_pending_turn_input(session, pending.input_id)
        assert isinstance(outcome, Cancelled), f"{session}: {outcome}"
        assert store.list_queued_work(session) == []


def test_case_21_same_generation_claim_scans_reach_rows_beyond_the_scan_surplus(
    harness: StoreHarness,
) -> None:
    """34 exclusive batches, 34 session commands and 34 next-turn inputs (three sessions):
    34 successive single claims under one lease return every row in enqueue order (rows held
    by the same generation never hide later ones), then nothing is left."""
    store = harness.store
    rows = 34
    batches = [store.enqueue_queued_work(wake("work", f"w{i}")) for i in range(rows)]
    commands = [store.enqueue_queued_work(command("commands", f"c{i}")) for i in range(rows)]
    inputs = [store.enqueue_pending_turn_input(next_input("inputs", f"i{i}")) for i in range(rows)]
    work_lease = acquire(store, "work", "scanner")
    command_lease = acquire(store, "commands", "scanner")
    input_lease = acquire(store, "inputs", "scanner")
    who = owner("scanner")
    work_seen: list[str] = []
    command_seen: list[str] = []
    input_seen: list[str] = []
    for _ in range(rows):
        work = store.claim_ready_queued_work("work", work_lease.fence(), who, IDLE, 1)
        cmd = store.claim_leading_ready_session_command("commands", command_lease.fence(), who)
        inp = store.claim_next_turn_inputs("inputs", input_lease.fence(), who, 1)
        assert work is not None and cmd is not None and inp is not None
        work_seen += batch_ids(work.batches)
        command_seen += batch_ids(cmd.batches)
        input_seen += input_ids(inp.inputs)
    assert work_seen == batch_ids(batches)
    assert command_seen == batch_ids(commands)
    assert input_seen == input_ids(inputs)
    assert store.claim_ready_queued_work("work", work_lease.fence(), who, IDLE, 1) is None
    assert store.claim_leading_ready_session_command("commands", command_lease.fence(), who) is None
    assert store.claim_next_turn_inputs("inputs", input_lease.fence(), who, 1) is None


def test_case_22_queued_work_respects_membership_limits_exclusivity_reclaim_and_sessions(
    harness: StoreHarness,
) -> None:
    """Unavailable rows are skipped (but listed and cancellable), an exclusive head claims
    alone, sessions never see each other's work, a claim by a newer generation advances the
    row fencing, and max_batches caps a join group."""
    store = harness.store
    not_ready = store.enqueue_queued_work(wake("root", "not ready", available_at_ms=YEAR_2100_MS))
    exclusive = store.enqueue_queued_work(wake("root", "exclusive"))
    joined = store.enqueue_queued_work(
        wake("root", "joined", slot=JOIN, merge=MergeKey.named("root"))
    )
    other = store.enqueue_queued_work(wake("other", "other session"))
    lease = acquire(store, "root", "owner-a")
    who = owner("owner-a")
    claim = store.claim_ready_queued_work("root", lease.fence(), who, IDLE, 10)
    assert claim is not None and batch_ids(claim.batches) == [exclusive.batch_id]
    following = store.claim_ready_queued_work("root", lease.fence(), who, IDLE, 10)
    assert following is not None and batch_ids(following.batches) == [joined.batch_id]
    assert store.claim_ready_queued_work("root", lease.fence(), who, IDLE, 10) is None
    assert batch_ids(store.list_pending_queued_work("root")) == [not_ready.batch_id]
    other_lease = acquire(store, "other", "owner-c")
    other_claim = store.claim_ready_queued_work("other", other_lease.fence(), who, IDLE, 10)
    assert other_claim is not None and batch_ids(other_claim.batches) == [other.batch_id]
    assert store.cancel_queued_work_batch("root", not_ready.batch_id) == not_ready

    source = store.enqueue_queued_work(wake("reclaim", "reclaimed across generations"))
    lease_a = acquire(store, "reclaim", "owner-a")
    first = store.claim_ready_queued_work("reclaim", lease_a.fence(), who, IDLE, 1)
    store.release_session_execution_lease(lease_a.completion())
    lease_b = acquire(store, "reclaim", "owner-b")
    again = store.claim_ready_queued_work("reclaim", lease_b.fence(), who, IDLE, 1)
    assert first is not None and again is not None
    assert batch_ids(again.batches) == [source.batch_id]
    assert again.fencing_token > first.fencing_token and again.claim_id != first.claim_id

    group = MergeKey.named("limited")
    limited = [
        store.enqueue_queued_work(wake("limited", text, slot=JOIN, merge=group))
        for text in ("one", "two", "three")
    ]
    limited_lease = acquire(store, "limited", "owner")
    capped = store.claim_ready_queued_work("limited", limited_lease.fence(), who, IDLE, 2)
    assert capped is not None and batch_ids(capped.batches) == batch_ids(limited[:2])
    rest = store.claim_ready_queued_work("limited", limited_lease.fence(), who, IDLE, 10)
    assert rest is not None and batch_ids(rest.batches) == [limited[2].batch_id]


def test_case_23_queued_work_join_groups_by_delivery_policy_and_merge_key(
    harness: StoreHarness,
) -> None:
    """A join group is the contiguous run with the head's delivery policy and merge key;
    ``Never`` equals ``Never`` literally, so two never-keyed join batches join too."""
    store = harness.store
    group_a, group_b = MergeKey.named("a"), MergeKey.named("b")
    a1 = store.enqueue_queued_work(wake("root", "group a one", slot=JOIN, merge=group_a))
    a2 = store.enqueue_queued_work(wake("root", "group a two", slot=JOIN, merge=group_a))
    b = store.enqueue_queued_work(wake("root", "group b", slot=JOIN, merge=group_b))
    c = store.enqueue_queued_work(
        wake("root", "after commit", delivery=ACTC, slot=JOIN, merge=group_a)
    )
    lease = acquire(store, "root", "owner")
    who = owner("owner")
    claims = [store.claim_ready_queued_work("root", lease.fence(), who, IDLE, 10) for _ in "abc"]
    assert [batch_ids(cl.batches) if cl else None for cl in claims] == [
        [a1.batch_id, a2.batch_id],
        [b.batch_id],
        [c.batch_id],
    ]

    never = [store.enqueue_queued_work(wake("never", f"n{i}", slot=JOIN)) for i in range(2)]
    never_lease = acquire(store, "never", "owner")
    joined = store.claim_ready_queued_work("never", never_lease.fence(), who, IDLE, 10)
    assert joined is not None and batch_ids(joined.batches) == batch_ids(never)


def test_case_24_queued_work_completion_is_lease_guarded(harness: StoreHarness) -> None:
    """A completion must carry the claim's token and name exactly the claimed rows; a
    mutated token or a partial list is superseded and deletes nothing."""
    store = harness.store
    joined = MergeKey.named("joined")
    first = store.enqueue_queued_work(wake("root", "join one", slot=JOIN, merge=joined))
    second = store.enqueue_queued_work(wake("root", "join two", slot=JOIN, merge=joined))
    lease = acquire(store, "root", "owner-a")
    claim = store.claim_ready_queued_work("root", lease.fence(), owner("owner-a"), IDLE, 10)
    assert claim is not None and batch_ids(claim.batches) == [first.batch_id, second.batch_id]

    mutated = replace(claim.completion(), lease_token=claim.lease_token + ":stale")
    partial = replace(claim.completion(), batch_ids=(first.batch_id,))
    for bad in (mutated, partial):
        with pytest.raises(QueuedWorkClaimSuperseded) as superseded:
            store.commit_runtime_state(
                replace(fenced(state_commit("root"), lease), completed_queue_claims=(bad,))
            )
        assert superseded.value.claim_id == claim.claim_id
        assert len(store.list_queued_work("root")) == 2
    store.commit_runtime_state(fenced(state_commit("root"), lease, True, queue=[claim]))
    assert store.list_queued_work("root") == []


def test_case_25_queued_wake_delivery_is_source_key_idempotent_and_claimed_once(
    harness: StoreHarness,
) -> None:
    """The same process wake enqueued twice (wake source key) is one batch, claimed once
    and removed by its completion; afterwards the freed source key makes a new batch."""
    store = harness.store
    delivery = ProcessWakeDelivery(
        wake_id="wake-1",
        target_session_id="root",
        process_id="process-1",
        sequence=7,
        input="wake payload",
        dedupe_key="wake-dedupe-1",
        created_at_ms=1,
    )
    draft = QueuedWorkBatchDraft(
        "root",
        (ProcessWake(delivery),),
        ESB,
        EXCLUSIVE,
        source_key="process:process-1:event:7:wake",
    )
    first = store.enqueue_queued_work(draft)
    replay = store.enqueue_queued_work(draft)
    assert replay.batch_id == first.batch_id
    assert len(store.list_queued_work("root")) == 1
    lease = acquire(store, "root", "wake-owner")
    claim = store.claim_ready_queued_work("root", lease.fence(), owner("wake-owner"), IDLE, 10)
    assert claim is not None and len(claim.batches) == 1 and len(claim.batches[0].items) == 1
    assert claim.batches[0].items[0].payload == ProcessWake(delivery)
    store.commit_runtime_state(fenced(state_commit("root"), lease, True, queue=[claim]))
    assert store.list_queued_work("root") == []
    fresh = store.enqueue_queued_work(draft)
    assert fresh.batch_id != first.batch_id and fresh.enqueue_seq > first.enqueue_seq


def test_case_26_queue_completion_and_turn_commit_stamp_are_atomic(harness: StoreHarness) -> None:
    """A final commit (turn stamp, queue and input completions, outbox) applies entirely or
    not at all: a mutated queue completion or an outbox for another session leaves no head,
    the queue intact and the input claimed; the valid commit applies, and its identical
    retry returns the same head, checkpoint ref and outbox batch id."""
    store = harness.store
    batch = store.enqueue_queued_work(wake("root", "atomic queue"))
    pending = store.enqueue_pending_turn_input(next_input("root", "atomic input"))
    lease = acquire(store, "root", "queue-owner")
    who = owner("queue-owner")
    queue_claim = store.claim_ready_queued_work("root", lease.fence(), who, IDLE, 1)
    input_claim = store.claim_next_turn_inputs("root", lease.fence(), who, 1)
    assert queue_claim is not None and input_claim is not None
    handoff = QueuedWorkBatchDraft(
        "root",
        (AgentFrameTask("frame-2", "continue in frame 2"),),
        ACTC,
        EXCLUSIVE,
        source_key="agent-frame-handoff:turn-atomic",
    )
    valid = fenced(
        replace(state_commit("root", 41), enqueued_queue_batches=(handoff,)),
        lease,
        release=True,
        queue=[queue_claim],
        inputs=[input_claim],
    )
    valid = stamped(valid, "turn-atomic")
    claimed_before = store.inspect_turn_inputs("root")

    mutated = replace(queue_claim.completion(), lease_token=queue_claim.lease_token + ":stale")
    with pytest.raises(QueuedWorkClaimSuperseded):
        store.commit_runtime_state(replace(valid, completed_queue_claims=(mutated,)))
    retargeted = replace(valid, enqueued_queue_batches=(replace(handoff, session_id="other"),))
    with pytest.raises(SessionBindingMismatch):
        store.commit_runtime_state(stamped(retargeted, "turn-atomic"))
    assert store.load_session() is None
    assert store.list_queued_work("root") == [batch]
    assert store.list_queued_work("other") == []
    assert store.inspect_turn_inputs("root") == claimed_before
    assert store.load_session_execution_lease("root") == lease

    first = store.commit_runtime_state(valid)
    retry = store.commit_runtime_state(valid)
    assert (retry.head_revision, retry.checkpoint_ref) == (1, first.checkpoint_ref)
    assert batch_ids(retry.enqueued_queue_batches) == batch_ids(first.enqueued_queue_batches)
    outbox = first.enqueued_queue_batches
    assert len(outbox) == 1 and outbox[0].source_key == "agent-frame-handoff:turn-atomic"
    assert batch_ids(store.list_queued_work("root")) == batch_ids(outbox)
    assert store.list_pending_turn_inputs("root") == []
    done = store.get_pending_turn_input("root", pending.input_id)
    assert done is not None and done.state is TurnInputState.COMPLETED
    assert store.load_session_execution_lease("root") is None


# ---------------------------------------------------------------------------
# Turn inputs (cases 27-32)
# ---------------------------------------------------------------------------


def test_case_27_pending_turn_inputs_source_keys_order_cancel_and_cross_session(
    harness: StoreHarness,
) -> None:
    """Source-key replay returns the stored row in its current state, changed content
    conflicts naming the existing id, cancels are typed, vacuum removes only tombstones,
    frees their source keys, and other sessions are untouched."""
    store = harness.store
    first_draft = next_input("root", "first", source_key="source:first")
    first = store.enqueue_pending_turn_input(first_draft)
    assert store.enqueue_pending_turn_input(first_draft) == first
    with pytest.raises(PendingTurnInputSourceKeyConflict) as conflict:
        store.enqueue_pending_turn_input(next_input("root", "changed", source_key="source:first"))
    assert conflict.value.fields() == {
        "session_id": "root",
        "source_key": "source:first",
        "existing_input_id": first.input_id,
    }
    second = store.enqueue_pending_turn_input(next_input("root", "second"))
    other = store.enqueue_pending_turn_input(next_input("other", "other session"))
    assert input_ids(store.list_pending_turn_inputs("root")) == [first.input_id, second.input_id]
    assert first.enqueue_seq < second.enqueue_seq

    cancelled = store.cancel_pending_turn_input("root", second.input_id)
    assert isinstance(cancelled, Cancelled)
    assert cancelled.input.state is TurnInputState.CANCELLED
    assert isinstance(store.cancel_pending_turn_input("root", second.input_id), AlreadyCancelled)
    assert input_ids(store.list_pending_turn_inputs("root")) == [first.input_id]
    assert isinstance(store.cancel_pending_turn_input("root", first.input_id), Cancelled)
    replayed = store.enqueue_pending_turn_input(first_draft)
    assert replayed.input_id == first.input_id and replayed.state is TurnInputState.CANCELLED
    assert store.list_pending_turn_inputs("root") == []

    report = store.vacuum()
    assert (report.removed_node_count, report.removed_pending_turn_input_tombstone_count) == (0, 2)
    assert isinstance(store.cancel_pending_turn_input("root", second.input_id), NotFound)
    assert store.list_pending_turn_inputs("other") == [other]
    reused = store.enqueue_pending_turn_input(first_draft)
    assert reused.input_id != first.input_id and reused.state is TurnInputState.DEFERRED_NEXT_TURN


def test_case_28_pending_turn_input_bulk_and_suffix_cancellation(harness: StoreHarness) -> None:
    """Bulk cancel answers per target in order (duplicates see earlier effects); suffix
    cancel covers the anchor and every later row of the session, reporting accepted rows
    as AlreadyClaimed with the claim id; a missing anchor is AnchorNotFound."""
    store = harness.store
    first = store.enqueue_pending_turn_input(next_input("root", "first", source_key="bulk:first"))
    second = store.enqueue_pending_turn_input(next_input("root", "second"))
    third = store.enqueue_pending_turn_input(next_input("root", "third"))
    targets = [
        SourceKeyTarget("bulk:first"),
        InputIdTarget(third.input_id),
        SourceKeyTarget("bulk:missing"),
        SourceKeyTarget("bulk:first"),
    ]
    results = store.cancel_pending_turn_inputs("root", targets)
    assert [r.target for r in results] == targets
    assert [type(r.outcome) for r in results] == [
        Cancelled,
        Cancelled,
        NotFound,
        AlreadyCancelled,
    ]
    first_outcome = results[0].outcome
    assert isinstance(first_outcome, Cancelled) and first_outcome.input.input_id == first.input_id
    assert input_ids(store.list_pending_turn_inputs("root")) == [second.input_id]

    anchor = store.enqueue_pending_turn_input(next_input("root", "anchor", "suffix:anchor"))
    active = store.enqueue_pending_turn_input(
        active_input("root", "active", "suffix-active-turn", source_key="suffix:claimed")
    )
    later = store.enqueue_pending_turn_input(next_input("root", "later"))
    lease = acquire(store, "root", "suffix-owner")
    claim = store.claim_active_turn_inputs(
        "root", lease.fence(), owner("suffix-owner"), "suffix-active-turn", AFTER_WORK, 10
    )
    assert claim is not None and input_ids(claim.inputs) == [active.input_id]

    suffix = store.cancel_pending_turn_input_suffix("root", SourceKeyTarget("suffix:anchor"))
    assert isinstance(suffix, SuffixOutcomes)
    assert [type(o) for o in suffix.outcomes] == [Cancelled, AlreadyClaimed, Cancelled]
    claimed = suffix.outcomes[1]
    assert isinstance(claimed, AlreadyClaimed) and claimed.claim is not None
    assert claimed.claim.claim_id == claim.claim_id
    assert claimed.claim.state is TurnInputState.ACCEPTED
    assert [o.input.input_id for o in suffix.outcomes if not isinstance(o, NotFound)] == [
        anchor.input_id,
        active.input_id,
        later.input_id,
    ]

    id_anchor = store.enqueue_pending_turn_input(next_input("root", "id anchor"))
    id_later = store.enqueue_pending_turn_input(next_input("root", "id later"))
    by_id = store.cancel_pending_turn_input_suffix("root", InputIdTarget(id_anchor.input_id))
    assert isinstance(by_id, SuffixOutcomes)
    assert [type(o) for o in by_id.outcomes] == [Cancelled, Cancelled]
    assert [o.input.input_id for o in by_id.outcomes if isinstance(o, Cancelled)] == [
        id_anchor.input_id,
        id_later.input_id,
    ]
    missing = store.cancel_pending_turn_input_suffix("root", SourceKeyTarget("suffix:missing"))
    assert missing == AnchorNotFound(SourceKeyTarget("suffix:missing"))
    assert input_ids(store.list_pending_turn_inputs("root")) == [second.input_id]


def test_case_29_pending_turn_input_claims_reclaim_complete_and_fence(
    harness: StoreHarness,
) -> None:
    """Next-turn claims carry attachments byte-exact, hide and lock their rows, abandon
    hands them back, a re-claim advances fencing and supersedes the old claim, completion
    makes them Completed for cancels and replays, and they are never claimed again."""
    store = harness.store
    png = bytes([1, 2, 3])
    first_draft = next_input("root", "first", source_key="next:first", attachment=png)
    first = store.enqueue_pending_turn_input(first_draft)
    second = store.enqueue_pending_turn_input(next_input("root", "second"))
    lease = acquire(store, "root", "input-owner")
    who = owner("input-owner")
    claim = store.claim_next_turn_inputs("root", lease.fence(), who, 10)
    assert claim is not None and input_ids(claim.inputs) == [first.input_id, second.input_id]
    materialised = [item for i in claim.inputs for item in i.input.items]
    assert AttachmentItem("image/png", png) in materialised
    blocked = store.cancel_pending_turn_input("root", first.input_id)
    assert isinstance(blocked, AlreadyClaimed) and blocked.claim is not None
    assert blocked.claim.claim_id == claim.claim_id
    assert store.list_pending_turn_inputs("root") == []

    store.abandon_turn_input_claim(claim)
    assert len(store.list_pending_turn_inputs("root")) == 2
    reclaimed = store.claim_next_turn_inputs("root", lease.fence(), who, 10)
    assert reclaimed is not None and reclaimed.fencing_token > claim.fencing_token
    with pytest.raises(TurnInputClaimSuperseded) as superseded:
        store.commit_runtime_state(fenced(state_commit("root"), lease, inputs=[claim]))
    assert superseded.value.claim_id == claim.claim_id
    assert store.list_pending_turn_inputs("root") == []
    store.commit_runtime_state(fenced(state_commit("root"), lease, True, inputs=[reclaimed]))

    assert isinstance(store.cancel_pending_turn_input("root", first.input_id), AlreadyCompleted)
    replay = store.enqueue_pending_turn_input(first_draft)
    assert replay.input_id == first.input_id and replay.state is TurnInputState.COMPLETED
    new_lease = acquire(store, "root", "input-owner")
    assert store.claim_next_turn_inputs("root", new_lease.fence(), who, 10) is None


def test_case_30_turn_input_claims_supersede_across_session_lease_generations(
    harness: StoreHarness,
) -> None:
    """Case 19's pattern for a next-turn input: no same-generation re-claim; a newer
    generation (after release, or after a dead-holder takeover) re-claims with higher
    fencing and the older completion is TurnInputClaimSuperseded."""
    store, processes = harness.store, harness.processes
    pending = store.enqueue_pending_turn_input(next_input("root", "generation input"))
    lease_a = acquire(store, "root", "owner-a")
    claim_a = store.claim_next_turn_inputs("root", lease_a.fence(), owner("owner-a"), 1)
    assert claim_a is not None and claim_a.session_lease_generation == lease_a.fencing_token
    assert store.claim_next_turn_inputs("root", lease_a.fence(), owner("owner-a"), 1) is None

    store.release_session_execution_lease(lease_a.completion())
    lease_b = acquire(store, "root", "owner-b")
    claim_b = store.claim_next_turn_inputs("root", lease_b.fence(), owner("owner-b"), 1)
    assert claim_b is not None and input_ids(claim_b.inputs) == [pending.input_id]
    assert claim_b.fencing_token > claim_a.fencing_token
    with pytest.raises(TurnInputClaimSuperseded):
        store.commit_runtime_state(fenced(state_commit("root"), lease_b, inputs=[claim_a]))
    still = store.get_pending_turn_input("root", pending.input_id)
    assert still is not None and still.state is TurnInputState.DEFERRED_NEXT_TURN
    store.commit_runtime_state(fenced(state_commit("root"), lease_b, True, inputs=[claim_b]))

    second = store.enqueue_pending_turn_input(next_input("root", "takeover input"))
    processes.spawn(4343, "taker-start")
    dead = local_owner("dead-owner", 5454, "dead-start")
    taker = local_owner("taker", 4343, "taker-start")
    dead_lease = acquire(store, "root", dead)
    dead_claim = store.claim_next_turn_inputs("root", dead_lease.fence(), dead, 1)
    assert dead_claim is not None
    taken = expect_acquired(
        store.reclaim_session_execution_lease("root", taker, dead_lease.fence(), TTL)
    )
    taker_claim = store.claim_next_turn_inputs("root", taken.fence(), taker, 1)
    assert taker_claim is not None and input_ids(taker_claim.inputs) == [second.input_id]
    assert taker_claim.fencing_token > dead_claim.fencing_token
    with pytest.raises(TurnInputClaimSuperseded):
        store.commit_runtime_state(fenced(state_commit("root"), taken, inputs=[dead_claim]))
    store.commit_runtime_state(fenced(state_commit("root"), taken, True, inputs=[taker_claim]))
    done = store.get_pending_turn_input("root", second.input_id)
    assert done is not None and done.state is TurnInputState.COMPLETED


def test_case_31_pending_turn_input_cancel_covers_active_and_deferred_states(
    harness: StoreHarness,
) -> None:
    """Cancelling an active-turn row keeps its ingress; interrupt deferral turns the
    remaining active row into next-turn input (never resurrecting cancelled rows), which
    is cancellable again, after which a next-turn claim finds nothing."""
    store = harness.store
    turn = "cancel-active-turn"
    keep = store.enqueue_pending_turn_input(active_input("root", "active keep", turn))
    drop = store.enqueue_pending_turn_input(active_input("root", "active cancel", turn))
    next_drop = store.enqueue_pending_turn_input(next_input("root", "next cancel"))
    cancelled = store.cancel_pending_turn_input("root", drop.input_id)
    assert isinstance(cancelled, Cancelled)
    assert cancelled.input.ingress == ActiveTurn(turn, TurnInputCheckpointBoundary.AFTER_WORK)
    assert isinstance(store.cancel_pending_turn_input("root", next_drop.input_id), Cancelled)

    lease = acquire(store, "root", "defer-owner")
    store.commit_runtime_state(
        replace(fenced(state_commit("root"), lease), interrupted_turn_input_turn_id=turn)
    )
    listed = store.list_pending_turn_inputs("root")
    assert input_ids(listed) == [keep.input_id]
    assert listed[0].ingress == NextTurn() and listed[0].state is TurnInputState.DEFERRED_NEXT_TURN
    dropped = store.get_pending_turn_input("root", drop.input_id)
    assert dropped is not None and dropped.state is TurnInputState.CANCELLED
    assert isinstance(store.cancel_pending_turn_input("root", keep.input_id), Cancelled)
    assert store.claim_next_turn_inputs("root", lease.fence(), owner("defer-owner"), 10) is None


def test_case_32_pending_active_turn_inputs_defer_unaccepted_once_on_interrupt(
    harness: StoreHarness,
) -> None:
    """An interrupting commit completes the accepted input and defers every other pending
    active input of that turn (any min boundary) to next-turn input; another turn's input
    keeps its ingress; the deferred ones are then claimed and completed."""
    store = harness.store
    turn = "interrupted-turn"
    png = bytes([9, 8, 7])
    accepted = store.enqueue_pending_turn_input(
        active_input("root", "accepted", turn, source_key="active:accepted", attachment=png)
    )
    unaccepted = store.enqueue_pending_turn_input(active_input("root", "unaccepted", turn))
    before_completion = store.enqueue_pending_turn_input(
        active_input(
            "root", "before completion", turn, TurnInputCheckpointBoundary.BEFORE_COMPLETION
        )
    )
    other_active = store.enqueue_pending_turn_input(active_input("root", "other", "other-turn"))
    lease = acquire(store, "root", "interrupt-owner")
    who = owner("interrupt-owner")
    claim = store.claim_active_turn_inputs("root", lease.fence(), who, turn, AFTER_WORK, 1)
    assert claim is not None and input_ids(claim.inputs) == [accepted.input_id]
    assert claim.inputs[0].input.items[-1] == AttachmentItem("image/png", png)

    store.commit_runtime_state(
        replace(
            fenced(state_commit("root"), lease, inputs=[claim]),
            interrupted_turn_input_turn_id=turn,
        )
    )
    listed = store.list_pending_turn_inputs("root")
    assert input_ids(listed) == [
        unaccepted.input_id,
        before_completion.input_id,
        other_active.input_id,
    ]
    for row in listed[:2]:
        assert row.ingress == NextTurn() and row.state is TurnInputState.DEFERRED_NEXT_TURN
    assert listed[2].ingress == ActiveTurn("other-turn")
    assert listed[2].state is TurnInputState.PENDING_ACTIVE
    done = store.get_pending_turn_input("root", accepted.input_id)
    assert done is not None and done.state is TurnInputState.COMPLETED

    next_claim = store.claim_next_turn_inputs("root", lease.fence(), who, 10)
    assert next_claim is not None
    assert input_ids(next_claim.inputs) == [unaccepted.input_id, before_completion.input_id]
    assert next_claim.mode == NextTurnMode()
    store.commit_runtime_state(fenced(state_commit("root"), lease, True, inputs=[next_claim]))
    assert input_ids(store.list_pending_turn_inputs("root")) == [other_active.input_id]


# ---------------------------------------------------------------------------
# Maintenance (cases 33-34)
# ---------------------------------------------------------------------------


def test_case_33_tombstone_vacuum_and_gc_are_minimally_consistent(harness: StoreHarness) -> None:
    """Adapted: the kernel has no graph nodes to tombstone and no blob GC, so
    ``removed_node_count`` must always be 0.  Its tombstones are cancelled and completed
    turn inputs: hidden from pending lists but readable by id until ``vacuum``, which
    removes them in every session (reporting only this call's removals), leaves live rows
    and the head alone, and a second vacuum removes nothing."""
    store = harness.store
    keep = store.enqueue_pending_turn_input(next_input("root", "node-live"))
    drop = store.enqueue_pending_turn_input(next_input("root", "node-delete"))
    other = store.enqueue_pending_turn_input(next_input("other", "other tombstone"))
    assert isinstance(store.cancel_pending_turn_input("root", drop.input_id), Cancelled)
    assert isinstance(store.cancel_pending_turn_input("other", other.input_id), Cancelled)
    tomb = store.get_pending_turn_input("root", drop.input_id)
    assert tomb is not None and tomb.state is TurnInputState.CANCELLED
    assert input_ids(store.list_pending_turn_inputs("root")) == [keep.input_id]
    lease = acquire(store, "root", "tombstone")
    store.commit_runtime_state(fenced(state_commit("root", 4, graph="kept"), lease, True))
    head_before = store.load_session()

    report = store.vacuum()
    assert report.removed_node_count == 0
    assert report.removed_pending_turn_input_tombstone_count == 2
    assert store.get_pending_turn_input("root", drop.input_id) is None
    assert store.get_pending_turn_input("other", other.input_id) is None
    assert store.get_pending_turn_input("root", keep.input_id) == keep
    assert store.load_session() == head_before
    again = store.vacuum()
    assert (again.removed_node_count, again.removed_pending_turn_input_tombstone_count) == (0, 0)


def test_case_34_gc_reclaims_unreachable_checkpoint_blobs_and_preserves_live(
    harness: StoreHarness,
) -> None:
    """Adapted: the kernel keeps no separate checkpoint blobs and has no GC; a superseded
    checkpoint is simply replaced.  What carries over: the checkpoint ref is a content
    address (equal content, equal ref; new content, new ref), after generation 1 then 2 only
    generation 2 is readable, and maintenance (vacuum) keeps the live head intact, also
    through a second handle."""
    store = harness.store
    lease = acquire(store, "root", "gc-owner")
    gen1 = store.commit_runtime_state(
        fenced(state_commit("root", 1, tool_state={"generation": 1}), lease)
    )
    gen2 = store.commit_runtime_state(
        fenced(state_commit("root", 2, tool_state={"generation": 2}), lease)
    )
    same = store.commit_runtime_state(
        fenced(state_commit("root", 2, tool_state={"generation": 2}), lease, True)
    )
    assert gen1.checkpoint_ref != gen2.checkpoint_ref == same.checkpoint_ref
    store.vacuum()
    for handle in handles(harness, 2):
        read = handle.load_session()
        assert read is not None
        assert read.head_revision == 3 and read.checkpoint_ref == gen2.checkpoint_ref
        assert read.checkpoint.state == {"tool_state": {"generation": 2}}


# ---------------------------------------------------------------------------
# Separate entry points (cases 35-37)
# ---------------------------------------------------------------------------


def test_case_35_runtime_persistence_clock_expiry(harness: StoreHarness) -> None:
    """With a 1 000 ms lease, advancing the injected clock by 1 001 ms lets a successor
    acquire a higher generation and re-claim the batch and the input at higher fencing; the
    stale fence can no longer commit; the successor completes both and releases."""
    store, clock = harness.store, harness.clock
    batch = store.enqueue_queued_work(wake("root", "expiring batch"))
    pending = store.enqueue_pending_turn_input(next_input("root", "expiring input"))
    stale_owner = owner("stale-owner")
    stale = acquire(store, "root", stale_owner, ttl_ms=1_000)
    stale_queue = store.claim_ready_queued_work("root", stale.fence(), stale_owner, IDLE, 1)
    stale_input = store.claim_next_turn_inputs("root", stale.fence(), stale_owner, 1)
    assert stale_queue is not None and stale_input is not None
    clock.advance(999)
    expect_busy(store.try_claim_session_execution_lease("root", owner("successor"), 1_000))
    clock.advance(2)

    successor_owner = owner("successor")
    successor = acquire(store, "root", successor_owner, ttl_ms=1_000)
    assert successor.fencing_token > stale.fencing_token
    queue_claim = store.claim_ready_queued_work("root", successor.fence(), successor_owner, IDLE, 1)
    input_claim = store.claim_next_turn_inputs("root", successor.fence(), successor_owner, 1)
    assert queue_claim is not None and batch_ids(queue_claim.batches) == [batch.batch_id]
    assert input_claim is not None and input_ids(input_claim.inputs) == [pending.input_id]
    assert queue_claim.fencing_token > stale_queue.fencing_token
    assert input_claim.fencing_token > stale_input.fencing_token
    with pytest.raises(SessionExecutionLeaseExpired):
        store.commit_runtime_state(
            fenced(state_commit("root"), stale, queue=[queue_claim], inputs=[input_claim])
        )
    store.commit_runtime_state(
        fenced(state_commit("root"), successor, True, queue=[queue_claim], inputs=[input_claim])
    )
    assert store.list_queued_work("root") == []
    done = store.get_pending_turn_input("root", pending.input_id)
    assert done is not None and done.state is TurnInputState.COMPLETED
    assert store.load_session_execution_lease("root") is None


def test_case_36_runtime_persistence_survives_reopen(harness: StoreHarness) -> None:
    """A first-claim race of four contenders (SQLite: four connections on one file; memory:
    one shared store) has exactly one winner and three Busy, repeatedly (invariant L7).
    Adapted: session meta and attachment intents are not kernel records, so what must be
    visible through a reopened handle is the checkpoint state (tool-state generation 77),
    the queued batch with its source key and text, the pending input with its attachment,
    and the live lease, which the new handle sees as Busy and can release with the
    completion."""
    store = harness.store
    contenders = handles(harness, 4)
    open_handle = contenders[0]
    for round_index in range(RACE_ROUNDS):
        session = f"first-claim-race-{round_index}"
        outcomes = race(
            [
                lambda s=session, h=handle, i=index: h.try_claim_session_execution_lease(
                    s, owner(f"owner-{i}"), TTL
                )
                for index, handle in enumerate(contenders)
            ]
        )
        winners = [o.lease for o in outcomes if isinstance(o, Acquired)]
        holders = [o.holder for o in outcomes if isinstance(o, Busy)]
        assert len(winners) == 1 and len(holders) == 3, f"round {round_index}: {outcomes}"
        assert winners[0].fencing_token == 1
        assert all(h.lease_token == winners[0].lease_token for h in holders)
        store.release_session_execution_lease(winners[0].completion())

    lease = acquire(open_handle, "root", "reopen")
    open_handle.commit_runtime_state(
        fenced(state_commit("root", 0, tool_state={"generation": 77}), lease, True)
    )
    queued = open_handle.enqueue_queued_work(
        wake("root", "survives reopen", source_key="reopen:queued")
    )
    pending = open_handle.enqueue_pending_turn_input(
        next_input("root", "with attachment", attachment=b"\x00reopen\xff")
    )
    held = acquire(open_handle, "held", "holder")
    reopened = harness.open()
    read = reopened.load_session()
    assert read is not None and read.session_id == "root"
    assert read.checkpoint.state["tool_state"]["generation"] == 77
    listed = reopened.list_queued_work("root")
    assert listed == [queued]
    assert listed[0].source_key == "reopen:queued" and batch_text(listed[0]) == "survives reopen"
    assert reopened.list_pending_turn_inputs("root") == [pending]
    assert reopened.load_session_execution_lease("held") == held
    expect_busy(reopened.try_claim_session_execution_lease("held", owner("other"), TTL))
    reopened.release_session_execution_lease(held.completion())
    assert open_handle.load_session_execution_lease("held") is None
    successor = acquire(reopened, "held", "other")
    assert successor.fencing_token == held.fencing_token + 1


def test_case_37_checkpoint_claim_probe_transaction_counts(harness: StoreHarness) -> None:
    """Quiescent checkpoint probes are read-only: with nothing eligible they return
    (None, None) without validating the fence (even a released one) and open one read and
    no write transaction; with work present one write transaction claims both families.
    The counts come from the backends' ``transaction_counts`` (read, write), which the
    Store protocol does not declare.  On SQLite and PostgreSQL the quiescent probe must also
    complete while another connection holds the store's write lock."""
    store = harness.store
    who = owner("probe-owner")
    stale = acquire(store, "root", who)
    store.release_session_execution_lease(stale.completion())

    def probe(fence_lease: SessionExecutionLease) -> tuple[object, object, int, int]:
        reads, writes = transaction_counts(store)
        claims = store.claim_checkpoint_work(
            "root", fence_lease.fence(), who, "probe-turn", AFTER_WORK, 10, 10
        )
        after_reads, after_writes = transaction_counts(store)
        return claims[0], claims[1], after_reads - reads, after_writes - writes

    assert probe(stale) == (None, None, 1, 0)
    deferred = store.enqueue_queued_work(wake("root", "deferred", delivery=ACTC))
    assert probe(stale) == (None, None, 1, 0), "an after-commit head must not open a write"

    lease = acquire(store, "root", who)
    idle = store.claim_ready_queued_work("root", lease.fence(), who, IDLE, 10)
    assert idle is not None and batch_ids(idle.batches) == [deferred.batch_id]
    active = store.enqueue_pending_turn_input(active_input("root", "probe input", "probe-turn"))
    esb = store.enqueue_queued_work(wake("root", "probe wake"))
    with pytest.raises(SessionExecutionLeaseExpired):
        store.claim_checkpoint_work("root", stale.fence(), who, "probe-turn", AFTER_WORK, 10, 10)
    input_claim, queue_claim, reads, writes = probe(lease)
    assert isinstance(input_claim, TurnInputClaim) and isinstance(queue_claim, QueuedWorkClaim)
    assert input_ids(input_claim.inputs) == [active.input_id]
    assert batch_ids(queue_claim.batches) == [esb.batch_id]
    assert (reads, writes) == (1, 1)
    assert probe(lease) == (None, None, 1, 0), "claims are granted once per generation"

    if harness.backend == "sqlite":
        blocker = sqlite3.connect(harness.path, timeout=0.1, isolation_level=None)
        try:
            blocker.execute("BEGIN IMMEDIATE")
            done: list[object] = []
            worker = threading.Thread(target=lambda: done.append(probe(stale)))
            worker.start()
            worker.join(timeout=5)
            finished = not worker.is_alive()
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        worker.join(timeout=60)
        assert finished, "a quiescent probe waited for the write lock"
        assert done == [(None, None, 1, 0)]
    if harness.backend == "postgres":
        import psycopg

        key = getattr(store, "write_lock_key")  # noqa: B009 - not part of the Store protocol
        with psycopg.connect(str(harness.postgres_dsn), autocommit=True) as locker:
            locker.execute("BEGIN")
            locker.execute("SELECT pg_advisory_xact_lock(%s)", (key,))
            done = []
            worker = threading.Thread(target=lambda: done.append(probe(stale)))
            worker.start()
            worker.join(timeout=5)
            finished = not worker.is_alive()
            locker.execute("ROLLBACK")
        worker.join(timeout=60)
        assert finished, "a quiescent probe waited for the write lock"
        assert done == [(None, None, 1, 0)]


# ---------------------------------------------------------------------------
# The index of cases
# ---------------------------------------------------------------------------

CONFORMANCE_CASES: dict[int, Callable[..., None]] = {
    int(name.split("_")[2]): function
    for name, function in sorted(globals().items())
    if name.startswith("test_case_") and callable(function)
}


def test_conformance_index_names_all_37_cases(request: pytest.FixtureRequest) -> None:
    """Every case number 1-37 maps to a ``test_case_NN_*`` function of this module, and
    when the module is collected as a whole, pytest collected each one for both backends."""
    assert sorted(CONFORMANCE_CASES) == list(range(1, 38))
    module = sys.modules[__name__]
    for number, function in CONFORMANCE_CASES.items():
        assert function.__name__.startswith(f"test_case_{number:02d}_"), function.__name__
        assert getattr(module, function.__name__) is function
    collected = {
        (item.originalname, item.callspec.params.get("harness"))
        for item in request.session.items
        if isinstance(item, pytest.Function) and item.module is module and hasattr(item, "callspec")
    }
    if len(collected) > 1:  # the module was collected as a whole, not a single test
        for function in CONFORMANCE_CASES.values():
            for backend in BACKENDS:
                assert (function.__name__, backend) in collected, (function.__name__, backend)
