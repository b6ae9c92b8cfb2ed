"""Bad inputs: each gets a typed error saying what was wrong, and the store is left as it was.

Every test starts from a populated store (two sessions, live leases, held queue and input
claims, an unclaimed batch, pending, active and cancelled inputs) built by ``world`` on
both backends.  A rejected call is made through :func:`assert_rejected`, which checks the
exact error type, that the message names what was wrong, and that a full snapshot of the
store (``load_session``, lease rows and fencing tokens, ``inspect_*`` with claim columns,
pending lists) is unchanged afterwards.  The SQLite file tests at the end open damaged or
foreign files directly (there is no file behind the in-memory backend).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from lashspec.kernel.clock import FakeProcessTable, ManualClock
from lashspec.kernel.errors import (
    HeadRevisionConflict,
    InvalidRequest,
    LeaseTimingsError,
    PendingTurnInputSourceKeyConflict,
    QueuedWorkClaimSuperseded,
    RuntimeTurnCommitConflict,
    SchemaVersionMismatch,
    SessionBindingMismatch,
    SessionExecutionLeaseExpired,
    StoreError,
    StoreFileError,
    TurnInputClaimSuperseded,
)
from lashspec.kernel.sqlite import SqliteStore
from lashspec.kernel.store import Store
from lashspec.kernel.types import (
    Acquired,
    ActiveTurn,
    AgentFrameTask,
    CheckpointKind,
    ClaimBoundary,
    LeaseOwnerIdentity,
    LeaseTimings,
    NextTurn,
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
    RuntimeTurnCommitStamp,
    SessionCheckpoint,
    SessionCommand,
    SessionExecutionLease,
    SessionExecutionLeaseCompletion,
    SessionExecutionLeaseFence,
    TurnInput,
    TurnInputClaim,
    turn_commit_hash,
)

if TYPE_CHECKING:
    from tests.conftest import StoreHarness

TTL = 60_000
IDLE = ClaimBoundary.IDLE
AFTER_WORK = CheckpointKind.AFTER_WORK
SESSIONS = ("root", "other", "ghost", "spare")


def owner(name: str, incarnation: str | None = None) -> LeaseOwnerIdentity:
    return LeaseOwnerIdentity.opaque(name, incarnation)


def wake(session_id: str, text: str) -> ProcessWake:
    return ProcessWake(ProcessWakeDelivery(f"wake:{text}", session_id, "p", 0, text, text))


def batch(session_id: str, text: str) -> QueuedWorkBatchDraft:
    return QueuedWorkBatchDraft(session_id, (wake(session_id, text),))


def next_input(session_id: str, text: str, key: str | None = None) -> PendingTurnInputDraft:
    return PendingTurnInputDraft(session_id, NextTurn(), TurnInput.text(text), key)


def acquire(store: Store, session_id: str, who: str, ttl_ms: int = TTL) -> SessionExecutionLease:
    outcome = store.try_claim_session_execution_lease(session_id, owner(who), ttl_ms)
    assert isinstance(outcome, Acquired), outcome
    return outcome.lease


def commit(session_id: str, lease: SessionExecutionLease | None, **fields: Any) -> RuntimeCommit:
    fence = lease.fence() if lease is not None else None
    return RuntimeCommit(
        session_id,
        SessionCheckpoint(1, {"by": "bad-input"}),
        session_execution_lease=fence,
        **fields,
    )


@dataclass
class World:
    harness: StoreHarness
    store: Store
    lease: SessionExecutionLease
    queue_claim: QueuedWorkClaim
    input_claim: TurnInputClaim
    free_batch: QueuedWorkBatch
    keyed_input: PendingTurnInput
    other_lease: SessionExecutionLease
    other_queue_claim: QueuedWorkClaim
    other_input_claim: TurnInputClaim


@pytest.fixture
def world(harness: StoreHarness) -> World:
    store = harness.store
    store.enqueue_queued_work(batch("root", "claimed batch"))
    free_batch = store.enqueue_queued_work(batch("root", "free batch"))
    store.enqueue_pending_turn_input(next_input("root", "claimed input", "input:claimed"))
    keyed = store.enqueue_pending_turn_input(next_input("root", "keyed input", "input:keyed"))
    store.enqueue_pending_turn_input(
        PendingTurnInputDraft("root", ActiveTurn("turn-1"), TurnInput.text("active"), "input:a")
    )
    cancelled = store.enqueue_pending_turn_input(next_input("root", "cancelled"))
    store.cancel_pending_turn_input("root", cancelled.input_id)
    lease = acquire(store, "root", "holder")
    queue_claim = store.claim_ready_queued_work("root", lease.fence(), owner("holder"), IDLE, 1)
    input_claim = store.claim_next_turn_inputs("root", lease.fence(), owner("holder"), 1)
    assert queue_claim is not None and input_claim is not None

    store.enqueue_queued_work(batch("other", "other batch"))
    store.enqueue_pending_turn_input(next_input("other", "other input"))
    other_lease = acquire(store, "other", "other-holder")
    who = owner("other-holder")
    other_queue = store.claim_ready_queued_work("other", other_lease.fence(), who, IDLE, 1)
    other_input = store.claim_next_turn_inputs("other", other_lease.fence(), who, 1)
    assert other_queue is not None and other_input is not None
    return World(
        harness,
        store,
        lease,
        queue_claim,
        input_claim,
        free_batch,
        keyed,
        other_lease,
        other_queue,
        other_input,
    )


def snapshot(store: Store) -> tuple[Any, ...]:
    """Everything observable through the read API, for every session the tests touch."""
    per_session = tuple(
        (
            session,
            store.inspect_lease_row(session),
            store.session_fencing_token(session),
            store.load_session_execution_lease(session),
            tuple(store.inspect_queued_work(session)),
            tuple(store.inspect_turn_inputs(session)),
            tuple(store.list_pending_queued_work(session)),
            tuple(store.list_pending_turn_inputs(session)),
        )
        for session in SESSIONS
    )
    return (store.load_session(), per_session)


def assert_rejected(
    store: Store, call: Callable[[], object], error_type: type[StoreError], *mentions: str
) -> StoreError:
    """The call raises exactly ``error_type`` naming every ``mentions`` and changes nothing."""
    before = snapshot(store)
    with pytest.raises(StoreError) as raised:
        call()
    error = raised.value
    assert type(error) is error_type, f"expected {error_type.__name__}, got {error!r}"
    message = str(error)
    for part in mentions:
        assert part in message, f"message {message!r} does not mention {part!r}"
    assert snapshot(store) == before, f"the rejected call changed the store ({error_type.__name__})"
    return error


# ---------------------------------------------------------------------------
# Sessions that never had a lease
# ---------------------------------------------------------------------------

GHOST_FENCE = SessionExecutionLeaseFence("ghost", owner("nobody"), "ghost:nobody:forged:1", 1)

GHOST_CALLS: dict[str, Callable[[Store], object]] = {
    "commit": lambda s: s.commit_runtime_state(
        replace(commit("ghost", None), session_execution_lease=GHOST_FENCE)
    ),
    "commit_without_fence": lambda s: s.commit_runtime_state(commit("ghost", None)),
    "renew": lambda s: s.renew_session_execution_lease(GHOST_FENCE, TTL),
    "claim_ready": lambda s: s.claim_ready_queued_work(
        "ghost", GHOST_FENCE, owner("nobody"), IDLE, 1
    ),
    "claim_command": lambda s: s.claim_leading_ready_session_command(
        "ghost", GHOST_FENCE, owner("nobody")
    ),
    "claim_by_ids": lambda s: s.claim_ready_queued_work_by_batch_ids(
        "ghost", GHOST_FENCE, owner("nobody"), IDLE, ["qwb-1"]
    ),
    "claim_next_inputs": lambda s: s.claim_next_turn_inputs(
        "ghost", GHOST_FENCE, owner("nobody"), 1
    ),
    "claim_active_inputs": lambda s: s.claim_active_turn_inputs(
        "ghost", GHOST_FENCE, owner("nobody"), "turn-1", AFTER_WORK, 1
    ),
}


@pytest.mark.parametrize("call", sorted(GHOST_CALLS))
def test_fenced_call_for_a_session_that_never_had_a_lease(world: World, call: str) -> None:
    error = assert_rejected(
        world.store, lambda: GHOST_CALLS[call](world.store), SessionExecutionLeaseExpired, "ghost"
    )
    assert isinstance(error, SessionExecutionLeaseExpired) and error.session_id == "ghost"
    if call != "commit_without_fence":
        assert "never had a lease" in str(error)


def test_lease_less_calls_for_an_unknown_session_are_harmless(world: World) -> None:
    """Release, cancels and reads for a session that never existed neither fail nor create
    rows (release is a fenced no-op; store.md §2.4, §3.8, §4.6)."""
    store = world.store
    before = snapshot(store)
    store.release_session_execution_lease(
        SessionExecutionLeaseCompletion("ghost", owner("nobody"), "forged", 1)
    )
    assert store.cancel_queued_work_batch("ghost", world.free_batch.batch_id) is None
    assert isinstance(
        store.cancel_pending_turn_input("ghost", world.keyed_input.input_id), NotFound
    )
    assert store.get_pending_turn_input("ghost", world.keyed_input.input_id) is None
    assert store.claim_checkpoint_work(
        "ghost", GHOST_FENCE, owner("nobody"), "turn-1", AFTER_WORK, 10, 10
    ) == (None, None)
    assert store.inspect_lease_row("ghost") is None
    assert snapshot(store) == before


# ---------------------------------------------------------------------------
# Stale fences
# ---------------------------------------------------------------------------


def _stale_fence(world: World, how: str) -> tuple[str, SessionExecutionLeaseFence, str]:
    """(session, a fence that is not that session's live lease, a word the message names)."""
    store, fence = world.store, world.lease.fence()
    if how == "released":
        spare = acquire(store, "spare", "spare-holder")
        store.release_session_execution_lease(spare.completion())
        return "spare", spare.fence(), "released"
    if how == "expired":
        short = acquire(store, "spare", "spare-holder", ttl_ms=1_000)
        world.harness.clock.advance(1_001)
        return "spare", short.fence(), "expired"
    if how == "wrong_token":
        return "root", replace(fence, lease_token=fence.lease_token + ":forged"), "token"
    if how == "wrong_fencing":
        return "root", replace(fence, fencing_token=fence.fencing_token + 1), "fencing"
    if how == "other_incarnation":
        restarted = replace(fence, owner=owner("holder", "holder:restarted"))
        return "root", restarted, "holder:restarted"
    assert how == "other_sessions_fence"
    return "root", world.other_lease.fence(), "other"


@pytest.mark.parametrize(
    "how",
    [
        "released",
        "expired",
        "wrong_token",
        "wrong_fencing",
        "other_incarnation",
        "other_sessions_fence",
    ],
)
def test_stale_fences_are_rejected_everywhere(world: World, how: str) -> None:
    store = world.store
    session, fence, word = _stale_fence(world, how)
    who = fence.owner
    calls: list[Callable[[], object]] = [
        lambda: store.commit_runtime_state(
            replace(commit(session, None), session_execution_lease=fence)
        ),
        lambda: store.claim_ready_queued_work(session, fence, who, IDLE, 5),
        lambda: store.claim_leading_ready_session_command(session, fence, who),
        lambda: store.claim_next_turn_inputs(session, fence, who, 5),
        lambda: store.claim_active_turn_inputs(session, fence, who, "turn-1", AFTER_WORK, 5),
    ]
    if how != "other_sessions_fence":  # renew takes its session from the fence itself
        calls.append(lambda: store.renew_session_execution_lease(fence, TTL))
    for call in calls:
        error = assert_rejected(store, call, SessionExecutionLeaseExpired, word)
        assert isinstance(error, SessionExecutionLeaseExpired) and error.session_id == session


def test_renewing_an_expired_lease_does_not_revive_it(world: World) -> None:
    store, clock = world.store, world.harness.clock
    short = acquire(store, "spare", "spare-holder", ttl_ms=1_000)
    clock.advance(1_000)  # expires_at == now is already expired
    assert_rejected(
        store,
        lambda: store.renew_session_execution_lease(short.fence(), TTL),
        SessionExecutionLeaseExpired,
        "spare",
        "expired",
    )
    assert store.load_session_execution_lease("spare") is None


# ---------------------------------------------------------------------------
# Claim completions that do not own their rows
# ---------------------------------------------------------------------------


def test_completion_with_a_wrong_claim_token_is_superseded(world: World) -> None:
    store, lease = world.store, world.lease
    queue = replace(world.queue_claim.completion(), lease_token="forged-token")
    error = assert_rejected(
        store,
        lambda: store.commit_runtime_state(commit("root", lease, completed_queue_claims=(queue,))),
        QueuedWorkClaimSuperseded,
        world.queue_claim.claim_id,
        "root",
    )
    assert isinstance(error, QueuedWorkClaimSuperseded)
    assert error.claim_id == world.queue_claim.claim_id
    inputs = replace(world.input_claim.completion(), lease_token="forged-token")
    assert_rejected(
        store,
        lambda: store.commit_runtime_state(
            commit("root", lease, completed_turn_input_claims=(inputs,))
        ),
        TurnInputClaimSuperseded,
        world.input_claim.claim_id,
    )


def test_completion_naming_rows_it_does_not_own_is_superseded(world: World) -> None:
    """An extra unclaimed batch, a missing claimed batch, or a duplicated id (store.md §8.2:
    the stamped rows must equal the listed ids)."""
    store, lease = world.store, world.lease
    own = world.queue_claim.completion()
    for batch_ids in (
        (*own.batch_ids, world.free_batch.batch_id),
        (),
        (*own.batch_ids, *own.batch_ids),
    ):
        bad = replace(own, batch_ids=batch_ids)
        assert_rejected(
            store,
            lambda bad=bad: store.commit_runtime_state(
                commit("root", lease, completed_queue_claims=(bad,))
            ),
            QueuedWorkClaimSuperseded,
            own.claim_id,
        )
    own_inputs = world.input_claim.completion()
    extra = replace(own_inputs, input_ids=(*own_inputs.input_ids, world.keyed_input.input_id))
    assert_rejected(
        store,
        lambda: store.commit_runtime_state(
            commit("root", lease, completed_turn_input_claims=(extra,))
        ),
        TurnInputClaimSuperseded,
        own_inputs.claim_id,
    )


def test_completion_for_another_session_is_superseded(world: World) -> None:
    store, lease = world.store, world.lease
    foreign_queue = world.other_queue_claim.completion()
    assert_rejected(
        store,
        lambda: store.commit_runtime_state(
            commit("root", lease, completed_queue_claims=(foreign_queue,))
        ),
        QueuedWorkClaimSuperseded,
        "other",
        foreign_queue.claim_id,
    )
    foreign_inputs = world.other_input_claim.completion()
    assert_rejected(
        store,
        lambda: store.commit_runtime_state(
            commit("root", lease, completed_turn_input_claims=(foreign_inputs,))
        ),
        TurnInputClaimSuperseded,
        "other",
        foreign_inputs.claim_id,
    )


def test_a_bad_completion_rolls_back_the_valid_ones_in_the_same_commit(world: World) -> None:
    """store.md §8.1: validate everything before any mutation — a valid queue completion
    next to a forged input completion deletes nothing."""
    store, lease = world.store, world.lease
    forged = replace(world.input_claim.completion(), lease_token="forged")
    assert_rejected(
        store,
        lambda: store.commit_runtime_state(
            commit(
                "root",
                lease,
                completed_queue_claims=(world.queue_claim.completion(),),
                completed_turn_input_claims=(forged,),
                release_session_execution_lease=lease.completion(),
            )
        ),
        TurnInputClaimSuperseded,
        world.input_claim.claim_id,
    )


# ---------------------------------------------------------------------------
# Conflicts on commit and on source keys
# ---------------------------------------------------------------------------


def test_commit_conflicts_name_what_conflicted(world: World) -> None:
    store, lease = world.store, world.lease
    store.commit_runtime_state(commit("root", lease))  # binds the store to "root", head 1
    error = assert_rejected(
        store,
        lambda: store.commit_runtime_state(commit("root", lease, expected_head_revision=0)),
        HeadRevisionConflict,
        "0",
        "1",
    )
    assert isinstance(error, HeadRevisionConflict) and (error.expected, error.actual) == (0, 1)
    assert_rejected(
        store,
        lambda: store.commit_runtime_state(commit("other", world.other_lease)),
        SessionBindingMismatch,
        "root",
        "other",
    )
    outbox = QueuedWorkBatchDraft("other", (AgentFrameTask("f", "t"),))
    assert_rejected(
        store,
        lambda: store.commit_runtime_state(commit("root", lease, enqueued_queue_batches=(outbox,))),
        SessionBindingMismatch,
        "other",
    )
    foreign_stamp = RuntimeTurnCommitStamp("other", "turn-x", "hash")
    assert_rejected(
        store,
        lambda: store.commit_runtime_state(commit("root", lease, turn_commit=foreign_stamp)),
        RuntimeTurnCommitConflict,
        "turn-x",
    )
    first = commit("root", lease)
    store.commit_runtime_state(
        replace(
            first, turn_commit=RuntimeTurnCommitStamp("root", "turn-y", turn_commit_hash(first))
        )
    )
    changed = replace(first, checkpoint=SessionCheckpoint(2, {"changed": True}))
    stamp = RuntimeTurnCommitStamp("root", "turn-y", turn_commit_hash(changed))
    assert_rejected(
        store,
        lambda: store.commit_runtime_state(replace(changed, turn_commit=stamp)),
        RuntimeTurnCommitConflict,
        "turn-y",
        "root",
    )


def test_conflicting_source_key_names_the_existing_input(world: World) -> None:
    store, keyed = world.store, world.keyed_input
    changed_text = next_input("root", "different text", "input:keyed")
    changed_ingress = PendingTurnInputDraft(
        "root", ActiveTurn("turn-1"), keyed.input, "input:keyed"
    )
    for draft in (changed_text, changed_ingress):
        error = assert_rejected(
            store,
            lambda draft=draft: store.enqueue_pending_turn_input(draft),
            PendingTurnInputSourceKeyConflict,
            "input:keyed",
            keyed.input_id,
        )
        assert isinstance(error, PendingTurnInputSourceKeyConflict)
        assert error.existing_input_id == keyed.input_id


# ---------------------------------------------------------------------------
# Malformed arguments
# ---------------------------------------------------------------------------


def test_batch_drafts_without_one_payload_class_are_invalid(world: World) -> None:
    """store.md §8.10: this kernel rejects empty and mixed batches at enqueue."""
    store = world.store
    empty = QueuedWorkBatchDraft("root", ())
    mixed = QueuedWorkBatchDraft(
        "root", (wake("root", "w"), SessionCommand(RefreshToolCatalog("r")))
    )
    assert_rejected(store, lambda: store.enqueue_queued_work(empty), InvalidRequest, "no payloads")
    assert_rejected(store, lambda: store.enqueue_queued_work(mixed), InvalidRequest, "mixed")
    assert_rejected(
        store,
        lambda: store.commit_runtime_state(
            commit("root", world.lease, enqueued_queue_batches=(empty,))
        ),
        InvalidRequest,
        "no payloads",
    )


@pytest.mark.parametrize("blank", ["", "   "])
def test_blank_session_ids_are_invalid(world: World, blank: str) -> None:
    store, fence, who = world.store, world.lease.fence(), owner("holder")
    calls: list[Callable[[], object]] = [
        lambda: store.enqueue_queued_work(batch(blank, "x")),
        lambda: store.enqueue_pending_turn_input(next_input(blank, "x")),
        lambda: store.try_claim_session_execution_lease(blank, who, TTL),
        lambda: store.reclaim_session_execution_lease(blank, who, fence, TTL),
        lambda: store.claim_ready_queued_work(blank, fence, who, IDLE, 1),
        lambda: store.claim_leading_ready_session_command(blank, fence, who),
        lambda: store.claim_next_turn_inputs(blank, fence, who, 1),
        lambda: store.claim_active_turn_inputs(blank, fence, who, "turn-1", AFTER_WORK, 1),
        lambda: store.commit_runtime_state(commit(blank, world.lease)),
    ]
    for call in calls:
        assert_rejected(store, call, InvalidRequest, "session id", repr(blank))


def test_negative_ttls_and_sizes_are_invalid(world: World) -> None:
    store, fence, who = world.store, world.lease.fence(), owner("holder")
    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: store.try_claim_session_execution_lease("spare", who, -1), "ttl_ms"),
        (lambda: store.renew_session_execution_lease(fence, -5), "ttl_ms"),
        (lambda: store.reclaim_session_execution_lease("root", who, fence, -1), "ttl_ms"),
        (lambda: store.claim_ready_queued_work("root", fence, who, IDLE, -1), "max_batches"),
        (lambda: store.claim_next_turn_inputs("root", fence, who, -1), "max_inputs"),
        (
            lambda: store.claim_active_turn_inputs("root", fence, who, "turn-1", AFTER_WORK, -1),
            "max_inputs",
        ),
        (
            lambda: store.claim_checkpoint_work("root", fence, who, "turn-1", AFTER_WORK, -1, 1),
            "max_inputs",
        ),
        (
            lambda: store.claim_checkpoint_work("root", fence, who, "turn-1", AFTER_WORK, 1, -1),
            "max_batches",
        ),
        (
            lambda: store.enqueue_queued_work(replace(batch("root", "x"), available_at_ms=-1)),
            "available_at_ms",
        ),
        (
            lambda: store.commit_runtime_state(
                replace(commit("root", world.lease), checkpoint=SessionCheckpoint(-1))
            ),
            "turn_index",
        ),
    ]
    for call, name in cases:
        assert_rejected(store, call, InvalidRequest, name, "-")


def test_colliding_or_blank_caller_input_ids_are_invalid(world: World) -> None:
    """``input_id`` is unique store-wide (store.md §4.1), so reusing one in the same or in
    another session is rejected, as is a blank id."""
    store = world.store
    taken = world.keyed_input.input_id
    for session in ("root", "other"):
        draft = replace(next_input(session, "collides"), input_id=taken)
        assert_rejected(
            store,
            lambda draft=draft: store.enqueue_pending_turn_input(draft),
            InvalidRequest,
            taken,
        )
    blank = replace(next_input("root", "blank id"), input_id="")
    assert_rejected(store, lambda: store.enqueue_pending_turn_input(blank), InvalidRequest, "id")


def test_unknown_wire_strings_get_a_typed_error(world: World) -> None:
    """Boundaries and checkpoint kinds are accepted as wire strings (the backends coerce
    them); an unknown string must be a typed store error naming it, not a bare ValueError."""
    store, fence, who = world.store, world.lease.fence(), owner("holder")
    sideways: Any = "sideways"
    calls: list[tuple[str, Callable[[], object]]] = [
        ("claim_ready", lambda: store.claim_ready_queued_work("root", fence, who, sideways, 1)),
        (
            "claim_by_ids",
            lambda: store.claim_ready_queued_work_by_batch_ids(
                "root", fence, who, sideways, [world.free_batch.batch_id]
            ),
        ),
        (
            "claim_active_inputs",
            lambda: store.claim_active_turn_inputs("root", fence, who, "turn-1", sideways, 1),
        ),
        (
            "claim_checkpoint_work",
            lambda: store.claim_checkpoint_work("root", fence, who, "turn-1", sideways, 1, 1),
        ),
    ]
    untyped = []
    for name, call in calls:
        before = snapshot(store)
        with pytest.raises(Exception) as raised:
            call()
        if not isinstance(raised.value, StoreError) or "sideways" not in str(raised.value):
            untyped.append(f"{name}: {raised.value!r}")
        assert snapshot(store) == before
    assert untyped == [], "unknown wire strings without a typed store error: " + "; ".join(untyped)


@pytest.mark.parametrize(
    "state",
    [
        {"blob": b"\x00bytes"},
        {"set": {1, 2}},
        {1: "integer key"},
        {"pair": (1, 2)},
    ],
    ids=["bytes", "set", "integer-key", "tuple"],
)
def test_checkpoint_state_must_be_plain_json(world: World, state: dict[Any, Any]) -> None:
    """A checkpoint state is either stored so that every backend returns it unchanged, or
    rejected with InvalidRequest; it must never be silently rewritten (an integer key coming
    back as a string, a tuple as a list)."""
    store, lease = world.store, world.lease
    bad = replace(commit("root", lease), checkpoint=SessionCheckpoint(1, state))
    before = snapshot(store)
    try:
        store.commit_runtime_state(bad)
    except InvalidRequest as error:
        assert "JSON" in str(error) or "json" in str(error)
        assert snapshot(store) == before
        return
    read = store.load_session()
    assert read is not None
    assert read.checkpoint.state == state, (
        f"state {state!r} was accepted but read back as {read.checkpoint.state!r}"
    )
    for handle in (world.harness.open(),):
        again = handle.load_session()
        assert again is not None and again.checkpoint.state == state


def test_callers_mutating_their_objects_cannot_change_the_store(world: World) -> None:
    """The store keeps what was committed: mutating the caller's state mapping after the
    commit, or the mapping a read returned, must not change what the next read sees."""
    store, lease = world.store, world.lease
    state: dict[str, Any] = {"frames": ["frame-1"], "note": "committed"}
    store.commit_runtime_state(
        replace(commit("root", lease), checkpoint=SessionCheckpoint(1, state))
    )
    state["note"] = "mutated by the caller"
    state["frames"].append("frame-2")
    read = store.load_session()
    assert read is not None
    assert read.checkpoint.state == {"frames": ["frame-1"], "note": "committed"}
    returned = read.checkpoint.state
    if isinstance(returned, dict):
        returned["note"] = "mutated by a reader"
    again = store.load_session()
    assert again is not None and again.checkpoint.state["note"] == "committed"


def test_invalid_lease_timings_name_the_rule() -> None:
    cases = [
        ((0, 1), "TtlTooSmall", "ttl"),
        ((30, 0), "RenewIntervalTooSmall", "renew"),
        ((29, 10), "TtlRenewRatioTooSmall", "3 x"),
    ]
    for (ttl, renew), variant, mention in cases:
        with pytest.raises(LeaseTimingsError) as raised:
            LeaseTimings(ttl, renew)
        assert raised.value.variant == variant and mention in str(raised.value)
    with pytest.raises(LeaseTimingsError) as raised:
        LeaseTimings.from_ttl(2)  # renew 0 ms
    assert raised.value.variant == "RenewIntervalTooSmall"


# ---------------------------------------------------------------------------
# Damaged and foreign SQLite files (no file exists behind the in-memory backend)
# ---------------------------------------------------------------------------


def _open(path: Path) -> SqliteStore:
    return SqliteStore(path, clock=ManualClock(), liveness=FakeProcessTable())


def _populated_file(path: Path) -> None:
    store = _open(path)
    store.enqueue_queued_work(batch("root", "kept"))
    store.close()


@pytest.mark.parametrize(
    "garbage",
    [
        b"this is not a database at all\n" * 64,
        bytes(range(256)) * 16,
        b"SQLite format 3\x00" + b"\xff" * 200,
    ],
    ids=["text", "binary", "bad-header"],
)
def test_garbage_file_is_refused_by_its_cause_and_is_left_alone(
    tmp_path: Path, garbage: bytes
) -> None:
    path = tmp_path / "garbage.sqlite"
    path.write_bytes(garbage)
    with pytest.raises(StoreFileError) as raised:
        _open(path)
    message = str(raised.value)
    # not a schema mismatch: advising deletion here would destroy someone's file
    assert str(path) in message and "delete" not in message
    assert raised.value.cause in ("not-a-database", "corrupt"), raised.value.cause
    assert path.read_bytes() == garbage, "opening a foreign file must not modify it"


@pytest.mark.parametrize("stored", ["2", "0", "not-a-number"])
def test_wrong_schema_version_is_a_mismatch_that_mentions_deletion(
    tmp_path: Path, stored: str
) -> None:
    path = tmp_path / "versioned.sqlite"
    _populated_file(path)
    with closing(sqlite3.connect(path)) as connection, connection:
        connection.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (stored,))
    with pytest.raises(SchemaVersionMismatch) as raised:
        _open(path)
    message = str(raised.value)
    assert "delete" in message and str(path) in message
    expected_actual = int(stored) if stored.isdigit() else None
    assert raised.value.actual == expected_actual
    with closing(sqlite3.connect(path)) as connection:
        assert connection.execute(
            "SELECT value FROM meta WHERE key = 'schema_version'"
        ).fetchone() == (stored,)
        assert connection.execute("SELECT count(*) FROM queued_batches").fetchone() == (1,)


def test_foreign_sqlite_database_is_refused_and_keeps_its_data(tmp_path: Path) -> None:
    """Another application's SQLite file is refused before anything is written to it: its
    tables, rows and journal mode stay as they were."""
    path = tmp_path / "foreign.sqlite"
    with closing(sqlite3.connect(path)) as connection, connection:
        connection.execute("CREATE TABLE notes (body TEXT)")
        connection.execute("INSERT INTO notes VALUES ('keep me')")
    with pytest.raises(StoreFileError) as raised:
        _open(path)
    assert raised.value.cause == "not-a-lashspec-store" and "delete" not in str(raised.value)
    with closing(sqlite3.connect(path)) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        assert tables == {"notes"}, f"the foreign file gained tables: {tables}"
        assert connection.execute("SELECT body FROM notes").fetchall() == [("keep me",)]
        journal = connection.execute("PRAGMA journal_mode").fetchone()
        assert journal == ("delete",), f"the foreign file's journal mode became {journal}"
