"""The store's semantics, written once over a small transactional row interface.

Theory of operation
-------------------
:class:`StoreEngine` implements every operation of the :class:`~lashspec.kernel.store.Store`
protocol.  A backend supplies only :class:`Backend` — a way to open a transaction that
exposes :class:`Tables` (get/put/delete rows).  Each operation:

1. opens one transaction (the in-memory backend takes its global lock and keeps an undo
   snapshot; SQLite runs ``BEGIN IMMEDIATE``),
2. reads the injected clock **once**,
3. validates *everything* (arguments, fence, every claim completion) before any write, and
4. writes, or raises a typed :class:`~lashspec.kernel.errors.StoreError`; on any exception
   the backend rolls the whole transaction back, so nothing partial is ever visible.

Decisions (who may claim what, which cancel outcome, which state transition) come from
:mod:`lashspec.kernel.rules`; this module only moves rows.

Choices where lash's backends differ (store.md §8), all following the SQL backends:
commits validate every completion first; a completion must own exactly the rows it lists;
``max == 0`` returns ``None`` after argument checks but before fence validation; by-ids claims
that meet a batch with mixed or empty payload classes return ``None``; ``enqueue_seq`` comes
from a never-reused counter.  Unlike lash, ``enqueue_queued_work`` rejects drafts whose
payloads are empty or of mixed classes with :class:`InvalidRequest` (§8.10), while a stored
row of that kind (written by another implementation) still fails claim scans with
:class:`BackendFailure`.  A queued-work claim scan classifies the first ``max_batches + 32``
ready claimable rows (one plus 32 for the leading-command lane), as lash's SQLite backend
does; lash's in-memory store classifies every candidate, which differs only for a malformed
row beyond that window.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar

from . import codec, rules
from .clock import Clock, LivenessOracle, is_definitely_dead_for_claimant
from .errors import (
    BackendFailure,
    HeadRevisionConflict,
    InvalidRequest,
    PendingTurnInputSourceKeyConflict,
    QueuedWorkClaimSuperseded,
    RuntimeTurnCommitConflict,
    SessionBindingMismatch,
    SessionExecutionLeaseExpired,
    TurnInputClaimSuperseded,
)
from .types import (
    Acquired,
    ActiveTurn,
    ActiveTurnMode,
    AlreadyCancelled,
    AlreadyClaimed,
    AlreadyCompleted,
    AnchorNotFound,
    Busy,
    Cancelled,
    CancelOutcome,
    CancelResult,
    CancelTarget,
    CheckpointKind,
    ClaimBoundary,
    ClaimColumns,
    ClaimDiagnostics,
    DeliveryPolicy,
    InputIdTarget,
    LeaseClaimOutcome,
    LeaseOwnerIdentity,
    LeaseRow,
    NextTurn,
    NextTurnMode,
    NotFound,
    PendingTurnInput,
    PendingTurnInputDraft,
    QueuedWorkBatch,
    QueuedWorkBatchDraft,
    QueuedWorkClaim,
    QueuedWorkClass,
    QueuedWorkItem,
    RuntimeCommit,
    RuntimeCommitResult,
    SessionCheckpoint,
    SessionExecutionLease,
    SessionExecutionLeaseCompletion,
    SessionExecutionLeaseFence,
    SessionInspection,
    SessionRead,
    SuffixCancelOutcome,
    SuffixOutcomes,
    TurnInputClaim,
    TurnInputClaimMode,
    TurnInputState,
    VacuumReport,
    batch_work_class,
)

# ---------------------------------------------------------------------------
# Rows and the backend interface
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BatchRecord:
    batch: QueuedWorkBatch
    claim: ClaimColumns


@dataclass(frozen=True, slots=True)
class InputRecord:
    row: PendingTurnInput
    claim: ClaimColumns


@dataclass(frozen=True, slots=True)
class HeadRecord:
    session_id: str
    head_revision: int
    checkpoint: SessionCheckpoint
    checkpoint_ref: str
    checkpoint_json: str = ""  # the checkpoint's codec encoding when known (hashed for the ref)


@dataclass(frozen=True, slots=True)
class TurnRecord:
    session_id: str
    turn_id: str
    turn_commit_hash: str
    result: RuntimeCommitResult


class Tables(Protocol):
    """Row access inside one transaction.  Lists are ordered by ``enqueue_seq``."""

    def lease(self, session_id: str) -> LeaseRow | None: ...
    def put_lease(self, row: LeaseRow) -> None: ...

    def batches(self, session_id: str) -> list[BatchRecord]: ...
    def batch(self, batch_id: str) -> BatchRecord | None: ...
    def batch_by_source_key(self, session_id: str, source_key: str) -> BatchRecord | None: ...
    def put_batch(self, record: BatchRecord) -> None: ...
    def put_batch_claim(self, record: BatchRecord) -> None:
        """Write the claim columns of an existing row; its batch is stored unchanged."""
        ...

    def delete_batch(self, batch_id: str) -> None: ...

    def inputs(self, session_id: str) -> list[InputRecord]: ...
    def input(self, input_id: str) -> InputRecord | None: ...
    def input_by_source_key(self, session_id: str, source_key: str) -> InputRecord | None: ...
    def terminal_inputs(self) -> list[InputRecord]: ...
    def put_input(self, record: InputRecord) -> None: ...
    def update_input(self, record: InputRecord) -> None:
        """Rewrite an existing row whose id, session, sequence and source key are unchanged
        (its state, ingress and claim columns may differ)."""
        ...

    def delete_input(self, input_id: str) -> None: ...

    def next_seq(self) -> int: ...

    def head(self) -> HeadRecord | None: ...
    def head_position(self) -> tuple[str, int] | None:
        """The head's session id and revision, without reading its checkpoint."""
        ...

    def put_head(self, record: HeadRecord) -> None: ...

    def turn(self, session_id: str, turn_id: str) -> TurnRecord | None: ...
    def put_turn(self, record: TurnRecord) -> None: ...


class Backend(Protocol):
    def transaction(self, write: bool = True) -> AbstractContextManager[Tables]:
        """One atomic unit: commits on normal exit, rolls back on any exception."""
        ...

    def close(self) -> None: ...


T = TypeVar("T")
JsonValue = Any


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# ``_encode_checkpoint`` of a checkpoint with an empty state, by turn index (bounded).
_EMPTY_CHECKPOINTS: dict[int, tuple[str, str]] = {}


def _encode_checkpoint(checkpoint: SessionCheckpoint) -> tuple[str, str]:
    """The checkpoint's canonical encoding and its reference: ``ckpt:`` and the SHA-256 of
    that encoding."""
    index = checkpoint.turn_index
    empty = not checkpoint.state and type(index) is int
    if empty and index in _EMPTY_CHECKPOINTS:
        return _EMPTY_CHECKPOINTS[index]
    text = codec.dumps(checkpoint)
    encoded = text, "ckpt:" + _sha256(text)
    if empty:
        if len(_EMPTY_CHECKPOINTS) >= 1024:
            _EMPTY_CHECKPOINTS.clear()
        _EMPTY_CHECKPOINTS[index] = encoded
    return encoded


def _check_session_id(session_id: object, what: str = "session id") -> str:
    if not isinstance(session_id, str) or not session_id.strip():
        raise InvalidRequest(f"{what} must be a non-empty string, got {session_id!r}")
    return session_id


def _check_non_negative(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidRequest(f"{what} must be an integer >= 0, got {value!r}")
    return value


def _lease_of(row: LeaseRow) -> SessionExecutionLease:
    assert row.owner is not None and row.lease_token is not None
    return SessionExecutionLease(
        row.session_id,
        row.owner,
        row.lease_token,
        row.fencing_token,
        row.claimed_at_ms,
        row.expires_at_ms,
    )


def _candidate(record: BatchRecord) -> rules.Candidate:
    work_class = record.batch.work_class
    if work_class is None:
        raise BackendFailure(
            f"queued-work batch `{record.batch.batch_id}` has mixed or empty payload classes"
        )
    b = record.batch
    return rules.Candidate(work_class, b.delivery_policy, b.slot_policy, b.merge_key)


UNCLAIMED = ClaimColumns()

E = TypeVar("E", ClaimBoundary, CheckpointKind)


def _wire(enum_type: type[E], value: object) -> E:
    """Accept an enum member or its wire string; anything else is an InvalidRequest."""
    if isinstance(value, enum_type):
        return value
    try:
        if isinstance(value, str):
            return enum_type(value)
        raise ValueError(value)
    except ValueError:
        allowed = ", ".join(repr(m.value) for m in enum_type)
        raise InvalidRequest(
            f"unknown {enum_type.__name__} {value!r}; expected one of {allowed}"
        ) from None


def _plain_json_copy(value: object, path: str = "state") -> JsonValue:
    """A deep copy of JSON data (str keys, lists, scalars); anything else is rejected so
    that every backend returns exactly what was committed."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list):
        return [_plain_json_copy(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        copied = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidRequest(
                    f"checkpoint {path} has the non-string key {key!r}; JSON objects need "
                    f"string keys"
                )
            copied[key] = _plain_json_copy(item, f"{path}.{key}")
        return copied
    raise InvalidRequest(
        f"checkpoint {path} holds a {type(value).__name__}, which is not plain JSON "
        f"(use objects with string keys, lists, strings, numbers, booleans and null)"
    )


class StoreEngine:
    """Every store operation, atomic over any :class:`Backend`."""

    def __init__(self, backend: Backend, clock: Clock, liveness: LivenessOracle) -> None:
        self._backend = backend
        self._clock = clock
        self._liveness = liveness

    # -- plumbing -----------------------------------------------------------------------

    def _run(self, operation: Callable[[Tables, int], T], write: bool = True) -> T:
        with self._backend.transaction(write) as tx:
            return operation(tx, self._clock.now_ms())

    def close(self) -> None:
        self._backend.close()

    # -- session execution lease ----------------------------------------------------------

    def _acquire(
        self,
        tx: Tables,
        session_id: str,
        owner: LeaseOwnerIdentity,
        previous: int,
        now: int,
        ttl: int,
    ) -> SessionExecutionLease:
        fencing = previous + 1
        row = LeaseRow(
            session_id=session_id,
            owner=owner,
            lease_token=f"{session_id}:{owner.owner_id}:{owner.incarnation_id}:{now}:{fencing}",
            fencing_token=fencing,
            claimed_at_ms=now,
            expires_at_ms=now + ttl,
        )
        tx.put_lease(row)
        return _lease_of(row)

    def _validate_fence(
        self, tx: Tables, session_id: str, fence: SessionExecutionLeaseFence | None, now: int
    ) -> LeaseRow:
        def expired(reason: str) -> SessionExecutionLeaseExpired:
            return SessionExecutionLeaseExpired(session_id, reason)

        if fence is None:
            raise expired("no lease fence was presented")
        if fence.session_id != session_id:
            raise expired(f"the fence belongs to session {fence.session_id!r}")
        row = tx.lease(session_id)
        if row is None:
            raise expired("the session has never had a lease")
        if row.owner is None or row.lease_token is None:
            raise expired("the lease was released")
        if not row.owner.same_incarnation(fence.owner):
            raise expired(
                f"the lease is held by {row.owner.owner_id!r}/{row.owner.incarnation_id!r}, "
                f"not {fence.owner.owner_id!r}/{fence.owner.incarnation_id!r}"
            )
        if row.lease_token != fence.lease_token:
            raise expired("the lease token does not match the live lease")
        if row.fencing_token != fence.fencing_token:
            raise expired(
                f"fencing token {fence.fencing_token} is stale (live generation "
                f"{row.fencing_token})"
            )
        if row.expires_at_ms <= now:
            raise expired(f"the lease expired at {row.expires_at_ms} ms (now {now} ms)")
        return row

    def try_claim_session_execution_lease(
        self, session_id: str, owner: LeaseOwnerIdentity, ttl_ms: int
    ) -> LeaseClaimOutcome:
        _check_session_id(session_id)
        _check_non_negative(ttl_ms, "ttl_ms")

        def op(tx: Tables, now: int) -> LeaseClaimOutcome:
            row = tx.lease(session_id)
            if row is not None and row.is_live(now):
                assert row.owner is not None
                if row.owner.same_incarnation(owner):
                    extended = replace(row, expires_at_ms=now + ttl_ms)
                    tx.put_lease(extended)
                    return Acquired(_lease_of(extended))
                return Busy(_lease_of(row))
            previous = row.fencing_token if row is not None else 0
            return Acquired(self._acquire(tx, session_id, owner, previous, now, ttl_ms))

        return self._run(op)

    def reclaim_session_execution_lease(
        self,
        session_id: str,
        claimant: LeaseOwnerIdentity,
        observed_holder: SessionExecutionLeaseFence,
        ttl_ms: int,
    ) -> LeaseClaimOutcome:
        _check_session_id(session_id)
        _check_non_negative(ttl_ms, "ttl_ms")

        def op(tx: Tables, now: int) -> LeaseClaimOutcome:
            row = tx.lease(session_id)
            if row is None:
                return Acquired(self._acquire(tx, session_id, claimant, 0, now, ttl_ms))
            if not row.is_live(now):
                return Acquired(
                    self._acquire(tx, session_id, claimant, row.fencing_token, now, ttl_ms)
                )
            assert row.owner is not None
            observation_current = (
                observed_holder.session_id == session_id
                and row.owner.same_incarnation(observed_holder.owner)
                and row.lease_token == observed_holder.lease_token
                and row.fencing_token == observed_holder.fencing_token
            )
            if observation_current and is_definitely_dead_for_claimant(
                row.owner, claimant, self._liveness
            ):
                return Acquired(
                    self._acquire(tx, session_id, claimant, row.fencing_token, now, ttl_ms)
                )
            return Busy(_lease_of(row))

        return self._run(op)

    def renew_session_execution_lease(
        self, fence: SessionExecutionLeaseFence, ttl_ms: int
    ) -> SessionExecutionLease:
        _check_non_negative(ttl_ms, "ttl_ms")

        def op(tx: Tables, now: int) -> SessionExecutionLease:
            row = self._validate_fence(tx, fence.session_id, fence, now)
            renewed = replace(row, expires_at_ms=now + ttl_ms)
            tx.put_lease(renewed)
            return _lease_of(renewed)

        return self._run(op)

    @staticmethod
    def _release(
        tx: Tables, completion: SessionExecutionLeaseCompletion, current: LeaseRow | None = None
    ) -> None:
        """Release the lease ``completion`` names if it is still that lease; ``current`` is
        the lease row as this transaction last read (or wrote) it, when the caller has it."""
        row = current
        if row is None or row.session_id != completion.session_id:
            row = tx.lease(completion.session_id)
        if (
            row is not None
            and row.owner is not None
            and row.owner.same_incarnation(completion.owner)
            and row.lease_token == completion.lease_token
            and row.fencing_token == completion.fencing_token
        ):
            tx.put_lease(
                replace(row, owner=None, lease_token=None, claimed_at_ms=0, expires_at_ms=0)
            )

    def release_session_execution_lease(self, completion: SessionExecutionLeaseCompletion) -> None:
        self._run(lambda tx, now: self._release(tx, completion))

    def load_session_execution_lease(self, session_id: str) -> SessionExecutionLease | None:
        def op(tx: Tables, now: int) -> SessionExecutionLease | None:
            row = tx.lease(session_id)
            return _lease_of(row) if row is not None and row.is_live(now) else None

        return self._run(op, write=False)

    def session_fencing_token(self, session_id: str) -> int:
        def op(tx: Tables, now: int) -> int:
            row = tx.lease(session_id)
            return row.fencing_token if row is not None else 0

        return self._run(op, write=False)

    # -- queued work ----------------------------------------------------------------------

    @staticmethod
    def _check_draft(draft: QueuedWorkBatchDraft) -> None:
        _check_session_id(draft.session_id, "draft session id")
        _check_non_negative(draft.available_at_ms, "available_at_ms")
        if batch_work_class(draft.payloads) is None:
            what = "no payloads" if not draft.payloads else "payloads of mixed classes"
            raise InvalidRequest(
                f"queued-work draft for session {draft.session_id!r} has {what}; a batch must "
                f"hold one or more payloads of a single class"
            )

    @staticmethod
    def _enqueue(tx: Tables, draft: QueuedWorkBatchDraft, now: int) -> QueuedWorkBatch:
        if draft.source_key is not None:
            existing = tx.batch_by_source_key(draft.session_id, draft.source_key)
            if existing is not None:
                return existing.batch
        seq = tx.next_seq()
        batch_id = f"qwb-{seq}"
        batch = QueuedWorkBatch(
            batch_id=batch_id,
            session_id=draft.session_id,
            enqueue_seq=seq,
            source_key=draft.source_key,
            delivery_policy=draft.delivery_policy,
            slot_policy=draft.slot_policy,
            merge_key=draft.merge_key,
            available_at_ms=draft.available_at_ms,
            enqueued_at_ms=now,
            items=tuple(
                QueuedWorkItem(f"{batch_id}:item:{i}", payload)
                for i, payload in enumerate(draft.payloads)
            ),
        )
        tx.put_batch(BatchRecord(batch, UNCLAIMED))
        return batch

    def enqueue_queued_work(self, draft: QueuedWorkBatchDraft) -> QueuedWorkBatch:
        self._check_draft(draft)
        return self._run(lambda tx, now: self._enqueue(tx, draft, now))

    @staticmethod
    def _ready_claimable(
        tx: Tables, session_id: str, generation: int, now: int
    ) -> list[BatchRecord]:
        return [
            r
            for r in tx.batches(session_id)
            if r.batch.available_at_ms <= now and rules.claimable_by_generation(r.claim, generation)
        ]

    def _claim_scan(
        self,
        tx: Tables,
        session_id: str,
        generation: int,
        now: int,
        boundary: ClaimBoundary,
        max_batches: int,
    ) -> tuple[list[BatchRecord], list[rules.Candidate]]:
        """The claim candidates, classified, as lash's SQLite backend scans them.

        At an active-turn checkpoint a head that is not ``earliest_safe_boundary`` yields no
        candidates at all; otherwise the first ``max_batches + 32`` ready claimable rows are
        each classified, so a stored row with mixed or empty payload classes anywhere in that
        window fails the scan with :class:`BackendFailure` even when it would not be taken.
        """
        ready = self._ready_claimable(tx, session_id, generation, now)
        if (
            boundary is ClaimBoundary.ACTIVE_TURN_CHECKPOINT
            and ready
            and ready[0].batch.delivery_policy is not DeliveryPolicy.EARLIEST_SAFE_BOUNDARY
        ):
            return [], []
        window = ready[: rules.claim_scan_limit(max_batches)]
        return window, [_candidate(record) for record in window]

    @staticmethod
    def _stamp_batches(
        tx: Tables,
        session_id: str,
        selected: Sequence[BatchRecord],
        fence: SessionExecutionLeaseFence,
        owner: LeaseOwnerIdentity,
        now: int,
    ) -> QueuedWorkClaim:
        head = selected[0]
        fencing = head.claim.claim_fencing_token + 1
        claim_id = f"qwc:{head.batch.enqueue_seq}:{fencing}"
        token = _sha256(f"{session_id}:{owner.owner_id}:{owner.incarnation_id}:{claim_id}:{now}")
        for record in selected:
            tx.put_batch_claim(
                BatchRecord(
                    record.batch,
                    ClaimColumns(
                        claim_id=claim_id,
                        claim_owner=owner,
                        claim_token=token,
                        claim_fencing_token=record.claim.claim_fencing_token + 1,
                        claim_session_lease_generation=fence.fencing_token,
                    ),
                )
            )
        return QueuedWorkClaim(
            session_id=session_id,
            claim_id=claim_id,
            owner=owner,
            lease_token=token,
            fencing_token=fencing,
            session_lease_generation=fence.fencing_token,
            batches=tuple(r.batch for r in selected),
        )

    def claim_leading_ready_session_command(
        self, session_id: str, fence: SessionExecutionLeaseFence, owner: LeaseOwnerIdentity
    ) -> QueuedWorkClaim | None:
        _check_session_id(session_id)

        def op(tx: Tables, now: int) -> QueuedWorkClaim | None:
            row = self._validate_fence(tx, session_id, fence, now)
            records, candidates = self._claim_scan(
                tx, session_id, row.fencing_token, now, ClaimBoundary.IDLE, 1
            )
            if rules.select_leading_session_command(candidates) == 0:
                return None
            return self._stamp_batches(tx, session_id, records[:1], fence, owner, now)

        return self._run(op)

    def _claim_turn_work(
        self,
        tx: Tables,
        session_id: str,
        fence: SessionExecutionLeaseFence,
        owner: LeaseOwnerIdentity,
        boundary: ClaimBoundary,
        max_batches: int,
        now: int,
    ) -> QueuedWorkClaim | None:
        records, candidates = self._claim_scan(
            tx, session_id, fence.fencing_token, now, boundary, max_batches
        )
        taken = rules.select_turn_work_claim_prefix(candidates, boundary, max_batches)
        if taken == 0:
            return None
        return self._stamp_batches(tx, session_id, records[:taken], fence, owner, now)

    def claim_ready_queued_work(
        self,
        session_id: str,
        fence: SessionExecutionLeaseFence,
        owner: LeaseOwnerIdentity,
        boundary: ClaimBoundary,
        max_batches: int,
    ) -> QueuedWorkClaim | None:
        _check_session_id(session_id)
        _check_non_negative(max_batches, "max_batches")
        boundary = _wire(ClaimBoundary, boundary)
        if max_batches == 0:
            return None

        def op(tx: Tables, now: int) -> QueuedWorkClaim | None:
            self._validate_fence(tx, session_id, fence, now)
            return self._claim_turn_work(tx, session_id, fence, owner, boundary, max_batches, now)

        return self._run(op)

    def claim_ready_queued_work_by_batch_ids(
        self,
        session_id: str,
        fence: SessionExecutionLeaseFence,
        owner: LeaseOwnerIdentity,
        boundary: ClaimBoundary,
        batch_ids: Sequence[str],
    ) -> QueuedWorkClaim | None:
        _check_session_id(session_id)
        boundary = _wire(ClaimBoundary, boundary)
        ids = list(batch_ids)
        if not ids:
            return None

        def op(tx: Tables, now: int) -> QueuedWorkClaim | None:
            self._validate_fence(tx, session_id, fence, now)
            if len(set(ids)) != len(ids):
                return None
            selected: list[BatchRecord] = []
            for batch_id in ids:
                record = tx.batch(batch_id)
                if (
                    record is None
                    or record.batch.session_id != session_id
                    or record.batch.available_at_ms > now
                    or not rules.claimable_by_generation(record.claim, fence.fencing_token)
                    or record.batch.work_class is not QueuedWorkClass.TURN_WORK
                ):
                    return None
                selected.append(record)
            if not rules.exact_selection_is_valid([_candidate(r) for r in selected], boundary):
                return None
            return self._stamp_batches(tx, session_id, selected, fence, owner, now)

        return self._run(op)

    def abandon_queued_work_claim(self, claim: QueuedWorkClaim) -> None:
        def op(tx: Tables, now: int) -> None:
            for record in tx.batches(claim.session_id):
                c = record.claim
                if c.claim_id == claim.claim_id and c.claim_token == claim.lease_token:
                    tx.put_batch_claim(
                        BatchRecord(
                            record.batch, ClaimColumns(claim_fencing_token=c.claim_fencing_token)
                        )
                    )

        self._run(op)

    def cancel_queued_work_batch(self, session_id: str, batch_id: str) -> QueuedWorkBatch | None:
        _check_session_id(session_id)

        def op(tx: Tables, now: int) -> QueuedWorkBatch | None:
            record = tx.batch(batch_id)
            if record is None or record.batch.session_id != session_id:
                return None
            if rules.claim_is_live(record.claim, tx.lease(session_id), now):
                return None
            tx.delete_batch(batch_id)
            return record.batch

        return self._run(op)

    def list_queued_work(self, session_id: str) -> list[QueuedWorkBatch]:
        return self._run(lambda tx, now: [r.batch for r in tx.batches(session_id)], write=False)

    def list_pending_queued_work(self, session_id: str) -> list[QueuedWorkBatch]:
        def op(tx: Tables, now: int) -> list[QueuedWorkBatch]:
            lease = tx.lease(session_id)
            return [
                r.batch
                for r in tx.batches(session_id)
                if not rules.claim_is_live(r.claim, lease, now)
            ]

        return self._run(op, write=False)

    # -- pending turn inputs ----------------------------------------------------------------

    def enqueue_pending_turn_input(self, draft: PendingTurnInputDraft) -> PendingTurnInput:
        session_id = _check_session_id(draft.session_id, "draft session id")
        if draft.input_id is not None:
            _check_session_id(draft.input_id, "caller-supplied input id")
        if not isinstance(draft.ingress, NextTurn | ActiveTurn):
            raise InvalidRequest(f"unknown turn-input ingress {draft.ingress!r}")

        def op(tx: Tables, now: int) -> PendingTurnInput:
            if draft.source_key is not None:
                existing = tx.input_by_source_key(session_id, draft.source_key)
                if existing is not None:
                    if existing.row.ingress == draft.ingress and existing.row.input == draft.input:
                        return existing.row
                    raise PendingTurnInputSourceKeyConflict(
                        session_id, draft.source_key, existing.row.input_id
                    )
            seq = tx.next_seq()
            input_id = draft.input_id if draft.input_id is not None else f"ti-{seq}"
            if tx.input(input_id) is not None:
                raise InvalidRequest(
                    f"input id {input_id!r} is already used by another pending turn input"
                )
            trigger = (
                "enqueue_active_turn"
                if isinstance(draft.ingress, ActiveTurn)
                else "enqueue_next_turn"
            )
            row = PendingTurnInput(
                input_id=input_id,
                session_id=session_id,
                enqueue_seq=seq,
                source_key=draft.source_key,
                ingress=draft.ingress,
                state=rules.next_input_state(None, trigger),
                enqueued_at_ms=now,
                input=draft.input,
            )
            tx.put_input(InputRecord(row, UNCLAIMED))
            return row

        return self._run(op)

    def list_pending_turn_inputs(self, session_id: str) -> list[PendingTurnInput]:
        def op(tx: Tables, now: int) -> list[PendingTurnInput]:
            lease = tx.lease(session_id)
            return [
                r.row
                for r in tx.inputs(session_id)
                if r.row.state.is_pending and not rules.claim_is_live(r.claim, lease, now)
            ]

        return self._run(op, write=False)

    def get_pending_turn_input(self, session_id: str, input_id: str) -> PendingTurnInput | None:
        def op(tx: Tables, now: int) -> PendingTurnInput | None:
            record = tx.input(input_id)
            return (
                record.row if record is not None and record.row.session_id == session_id else None
            )

        return self._run(op, write=False)

    @staticmethod
    def _selectable_inputs(
        tx: Tables, session_id: str, generation: int, mode: TurnInputClaimMode, max_inputs: int
    ) -> list[InputRecord]:
        selected: list[InputRecord] = []
        for record in tx.inputs(session_id):
            if len(selected) >= max_inputs:
                break
            if not rules.claimable_by_generation(record.claim, generation):
                continue
            row = record.row
            if isinstance(mode, ActiveTurnMode):
                if (
                    row.state is TurnInputState.PENDING_ACTIVE
                    and isinstance(row.ingress, ActiveTurn)
                    and row.ingress.turn_id == mode.turn_id
                    and row.ingress.admits_checkpoint(mode.checkpoint)
                ):
                    selected.append(record)
            elif row.state is TurnInputState.DEFERRED_NEXT_TURN:
                selected.append(record)
        return selected

    def _claim_inputs(
        self,
        tx: Tables,
        session_id: str,
        fence: SessionExecutionLeaseFence,
        owner: LeaseOwnerIdentity,
        mode: TurnInputClaimMode,
        max_inputs: int,
        now: int,
    ) -> TurnInputClaim | None:
        selected = self._selectable_inputs(tx, session_id, fence.fencing_token, mode, max_inputs)
        if not selected:
            return None
        head = selected[0]
        fencing = head.claim.claim_fencing_token + 1
        claim_id = f"tic:{head.row.enqueue_seq}:{fencing}"
        token = _sha256(f"{session_id}:{owner.owner_id}:{owner.incarnation_id}:{claim_id}:{now}")
        trigger = "claim_active" if isinstance(mode, ActiveTurnMode) else "claim_next"
        claimed: list[PendingTurnInput] = []
        for record in selected:
            row = replace(record.row, state=rules.next_input_state(record.row.state, trigger))
            tx.update_input(
                InputRecord(
                    row,
                    ClaimColumns(
                        claim_id=claim_id,
                        claim_owner=owner,
                        claim_token=token,
                        claim_fencing_token=record.claim.claim_fencing_token + 1,
                        claim_session_lease_generation=fence.fencing_token,
                    ),
                )
            )
            claimed.append(row)
        return TurnInputClaim(
            session_id=session_id,
            claim_id=claim_id,
            owner=owner,
            lease_token=token,
            fencing_token=fencing,
            session_lease_generation=fence.fencing_token,
            mode=mode,
            inputs=tuple(claimed),
        )

    def claim_next_turn_inputs(
        self,
        session_id: str,
        fence: SessionExecutionLeaseFence,
        owner: LeaseOwnerIdentity,
        max_inputs: int,
    ) -> TurnInputClaim | None:
        _check_session_id(session_id)
        _check_non_negative(max_inputs, "max_inputs")
        if max_inputs == 0:
            return None

        def op(tx: Tables, now: int) -> TurnInputClaim | None:
            self._validate_fence(tx, session_id, fence, now)
            return self._claim_inputs(tx, session_id, fence, owner, NextTurnMode(), max_inputs, now)

        return self._run(op)

    def claim_active_turn_inputs(
        self,
        session_id: str,
        fence: SessionExecutionLeaseFence,
        owner: LeaseOwnerIdentity,
        turn_id: str,
        checkpoint: CheckpointKind,
        max_inputs: int,
    ) -> TurnInputClaim | None:
        _check_session_id(session_id)
        _check_session_id(turn_id, "turn id")
        _check_non_negative(max_inputs, "max_inputs")
        mode = ActiveTurnMode(turn_id, _wire(CheckpointKind, checkpoint))
        if max_inputs == 0:
            return None

        def op(tx: Tables, now: int) -> TurnInputClaim | None:
            self._validate_fence(tx, session_id, fence, now)
            return self._claim_inputs(tx, session_id, fence, owner, mode, max_inputs, now)

        return self._run(op)

    def claim_checkpoint_work(
        self,
        session_id: str,
        fence: SessionExecutionLeaseFence,
        owner: LeaseOwnerIdentity,
        turn_id: str,
        checkpoint: CheckpointKind,
        max_inputs: int,
        max_batches: int,
    ) -> tuple[TurnInputClaim | None, QueuedWorkClaim | None]:
        _check_session_id(session_id)
        _check_session_id(turn_id, "turn id")
        _check_non_negative(max_inputs, "max_inputs")
        _check_non_negative(max_batches, "max_batches")
        mode = ActiveTurnMode(turn_id, _wire(CheckpointKind, checkpoint))
        generation = fence.fencing_token

        def probe(tx: Tables, now: int) -> bool:
            if max_inputs > 0 and self._selectable_inputs(tx, session_id, generation, mode, 1):
                return True
            boundary = ClaimBoundary.ACTIVE_TURN_CHECKPOINT
            _, candidates = self._claim_scan(tx, session_id, generation, now, boundary, max_batches)
            return rules.select_turn_work_claim_prefix(candidates, boundary, max_batches) > 0

        if not self._run(probe, write=False):
            return None, None

        def op(tx: Tables, now: int) -> tuple[TurnInputClaim | None, QueuedWorkClaim | None]:
            self._validate_fence(tx, session_id, fence, now)
            inputs = self._claim_inputs(tx, session_id, fence, owner, mode, max_inputs, now)
            work = self._claim_turn_work(
                tx,
                session_id,
                fence,
                owner,
                ClaimBoundary.ACTIVE_TURN_CHECKPOINT,
                max_batches,
                now,
            )
            return inputs, work

        return self._run(op)

    def abandon_turn_input_claim(self, claim: TurnInputClaim) -> None:
        trigger = "abandon_active" if isinstance(claim.mode, ActiveTurnMode) else "abandon_next"

        def op(tx: Tables, now: int) -> None:
            for record in tx.inputs(claim.session_id):
                c = record.claim
                if c.claim_id == claim.claim_id and c.claim_token == claim.lease_token:
                    state = record.row.state
                    if state in (TurnInputState.ACCEPTED, TurnInputState.DEFERRED_NEXT_TURN):
                        state = rules.next_input_state(state, trigger)
                    tx.update_input(
                        InputRecord(
                            replace(record.row, state=state),
                            ClaimColumns(claim_fencing_token=c.claim_fencing_token),
                        )
                    )

        self._run(op)

    @staticmethod
    def _cancel_row(
        tx: Tables, record: InputRecord, lease: LeaseRow | None, now: int
    ) -> CancelOutcome:
        row = record.row
        decision = rules.decide_cancel(row.state, rules.claim_is_live(record.claim, lease, now))
        if decision == rules.CancelDecision.ALREADY_CANCELLED:
            return AlreadyCancelled(row)
        if decision == rules.CancelDecision.ALREADY_COMPLETED:
            return AlreadyCompleted(row)
        if decision == rules.CancelDecision.ALREADY_CLAIMED:
            c = record.claim
            diagnostics = None
            if c.claim_token is not None or row.state is TurnInputState.ACCEPTED:
                diagnostics = ClaimDiagnostics(
                    state=row.state,
                    claim_id=c.claim_id,
                    claim_owner=c.claim_owner,
                    claim_session_lease_generation=(
                        c.claim_session_lease_generation if c.claim_token is not None else None
                    ),
                    claim_fencing_token=c.claim_fencing_token,
                )
            return AlreadyClaimed(row, diagnostics)
        cancelled = replace(row, state=rules.next_input_state(row.state, "cancel"))
        tx.update_input(
            InputRecord(
                cancelled, ClaimColumns(claim_fencing_token=record.claim.claim_fencing_token)
            )
        )
        return Cancelled(cancelled)

    @staticmethod
    def _resolve(tx: Tables, session_id: str, target: CancelTarget) -> InputRecord | None:
        if isinstance(target, InputIdTarget):
            record = tx.input(target.input_id)
            return record if record is not None and record.row.session_id == session_id else None
        return tx.input_by_source_key(session_id, target.source_key)

    def cancel_pending_turn_inputs(
        self, session_id: str, targets: Sequence[CancelTarget]
    ) -> list[CancelResult]:
        _check_session_id(session_id)

        def op(tx: Tables, now: int) -> list[CancelResult]:
            lease = tx.lease(session_id)
            results: list[CancelResult] = []
            for target in targets:
                record = self._resolve(tx, session_id, target)
                outcome: CancelOutcome = (
                    NotFound() if record is None else self._cancel_row(tx, record, lease, now)
                )
                results.append(CancelResult(target, outcome))
            return results

        return self._run(op)

    def cancel_pending_turn_input(self, session_id: str, input_id: str) -> CancelOutcome:
        results = self.cancel_pending_turn_inputs(session_id, [InputIdTarget(input_id)])
        return results[0].outcome if results else NotFound()

    def cancel_pending_turn_input_suffix(
        self, session_id: str, anchor: CancelTarget
    ) -> SuffixCancelOutcome:
        _check_session_id(session_id)

        def op(tx: Tables, now: int) -> SuffixCancelOutcome:
            anchor_record = self._resolve(tx, session_id, anchor)
            if anchor_record is None:
                return AnchorNotFound(anchor)
            lease = tx.lease(session_id)
            outcomes = tuple(
                self._cancel_row(tx, record, lease, now)
                for record in tx.inputs(session_id)
                if record.row.enqueue_seq >= anchor_record.row.enqueue_seq
            )
            return SuffixOutcomes(anchor, outcomes)

        return self._run(op)

    def vacuum(self) -> VacuumReport:
        def op(tx: Tables, now: int) -> VacuumReport:
            removed = tx.terminal_inputs()
            for record in removed:
                tx.delete_input(record.row.input_id)
            return VacuumReport(removed_pending_turn_input_tombstone_count=len(removed))

        return self._run(op)

    # -- commit -----------------------------------------------------------------------------

    def commit_runtime_state(self, commit: RuntimeCommit) -> RuntimeCommitResult:
        session_id = _check_session_id(commit.session_id, "commit session id")
        _check_non_negative(commit.checkpoint.turn_index, "checkpoint turn_index")
        for draft in commit.enqueued_queue_batches:
            self._check_draft(draft)
        checkpoint = SessionCheckpoint(
            commit.checkpoint.turn_index, _plain_json_copy(dict(commit.checkpoint.state))
        )
        checkpoint_json, checkpoint_ref = _encode_checkpoint(checkpoint)

        def op(tx: Tables, now: int) -> RuntimeCommitResult:
            head = tx.head_position()
            # 1. session binding (the outbox check comes first too: nothing has been written)
            if head is not None and head[0] != session_id:
                raise SessionBindingMismatch(head[0], session_id)
            for draft in commit.enqueued_queue_batches:
                if draft.session_id != session_id:
                    raise SessionBindingMismatch(session_id, draft.session_id)
            # 2. turn-commit idempotency
            stamp = commit.turn_commit
            if stamp is not None:
                if stamp.session_id != session_id:
                    raise RuntimeTurnCommitConflict(
                        stamp.session_id,
                        stamp.turn_id,
                        f"stamp is for another session than {session_id!r}",
                    )
                recorded = tx.turn(session_id, stamp.turn_id)
                if recorded is not None:
                    if recorded.turn_commit_hash != stamp.turn_commit_hash:
                        raise RuntimeTurnCommitConflict(
                            session_id, stamp.turn_id, "already committed with different content"
                        )
                    if commit.release_session_execution_lease is not None:
                        self._release(tx, commit.release_session_execution_lease)
                    return recorded.result
            # 3. lease fence
            lease = self._validate_fence(tx, session_id, commit.session_execution_lease, now)
            # 4. head CAS
            current = head[1] if head is not None else 0
            expected = commit.expected_head_revision
            if expected is not None and expected != current:
                raise HeadRevisionConflict(expected, current)
            # 5. queued-work completions: each must own exactly the rows it names
            batches = tx.batches(session_id)
            for completion in commit.completed_queue_claims:
                listed = set(completion.batch_ids)
                stamped = {
                    r.batch.batch_id
                    for r in batches
                    if r.claim.claim_id == completion.claim_id
                    and r.claim.claim_token == completion.lease_token
                }
                if completion.session_id != session_id:
                    reason = f"the completion is for session {completion.session_id!r}"
                elif len(listed) != len(completion.batch_ids):
                    reason = "the completion lists a batch more than once"
                elif stamped != listed:
                    reason = (
                        f"rows stamped with this claim are {sorted(stamped)}, the completion "
                        f"names {sorted(listed)}"
                    )
                else:
                    continue
                raise QueuedWorkClaimSuperseded(completion.session_id, completion.claim_id, reason)
            # 6. turn-input completions, same rule
            inputs = tx.inputs(session_id)
            for input_completion in commit.completed_turn_input_claims:
                listed = set(input_completion.input_ids)
                stamped = {
                    r.row.input_id
                    for r in inputs
                    if r.claim.claim_id == input_completion.claim_id
                    and r.claim.claim_token == input_completion.lease_token
                }
                if input_completion.session_id != session_id:
                    reason = f"the completion is for session {input_completion.session_id!r}"
                elif len(listed) != len(input_completion.input_ids):
                    reason = "the completion lists an input more than once"
                elif stamped != listed:
                    reason = (
                        f"rows stamped with this claim are {sorted(stamped)}, the completion "
                        f"names {sorted(listed)}"
                    )
                else:
                    continue
                raise TurnInputClaimSuperseded(
                    input_completion.session_id, input_completion.claim_id, reason
                )
            # -- everything validated: apply --
            new_revision = current + 1
            tx.put_head(
                HeadRecord(session_id, new_revision, checkpoint, checkpoint_ref, checkpoint_json)
            )
            for completion in commit.completed_queue_claims:
                for batch_id in completion.batch_ids:
                    tx.delete_batch(batch_id)
            completed_ids = {
                input_id
                for input_completion in commit.completed_turn_input_claims
                for input_id in input_completion.input_ids
            }
            interrupted = commit.interrupted_turn_input_turn_id
            for record in inputs:  # as read above: nothing since has written an input row
                row = record.row
                if row.input_id in completed_ids:
                    tx.update_input(
                        InputRecord(
                            replace(row, state=rules.next_input_state(row.state, "complete")),
                            ClaimColumns(claim_fencing_token=record.claim.claim_fencing_token),
                        )
                    )
                elif (
                    interrupted is not None
                    and row.state is TurnInputState.PENDING_ACTIVE
                    and isinstance(row.ingress, ActiveTurn)
                    and row.ingress.turn_id == interrupted
                ):
                    tx.update_input(
                        InputRecord(
                            replace(
                                row,
                                state=rules.next_input_state(row.state, "defer_interrupted"),
                                ingress=NextTurn(),
                            ),
                            ClaimColumns(claim_fencing_token=record.claim.claim_fencing_token),
                        )
                    )
            outbox = tuple(self._enqueue(tx, d, now) for d in commit.enqueued_queue_batches)
            result = RuntimeCommitResult(new_revision, checkpoint_ref, outbox)
            if stamp is not None:
                tx.put_turn(TurnRecord(session_id, stamp.turn_id, stamp.turn_commit_hash, result))
            if commit.release_session_execution_lease is not None:
                self._release(tx, commit.release_session_execution_lease, lease)
            return result

        return self._run(op)

    def load_session(self) -> SessionRead | None:
        def op(tx: Tables, now: int) -> SessionRead | None:
            head = tx.head()
            if head is None:
                return None
            checkpoint = SessionCheckpoint(
                head.checkpoint.turn_index, _plain_json_copy(dict(head.checkpoint.state))
            )
            return SessionRead(head.session_id, head.head_revision, checkpoint, head.checkpoint_ref)

        return self._run(op, write=False)

    # -- inspection -------------------------------------------------------------------------

    def inspect_lease_row(self, session_id: str) -> LeaseRow | None:
        return self._run(lambda tx, now: tx.lease(session_id), write=False)

    def inspect_queued_work(self, session_id: str) -> list[tuple[QueuedWorkBatch, ClaimColumns]]:
        return self._run(
            lambda tx, now: [(r.batch, r.claim) for r in tx.batches(session_id)], write=False
        )

    def inspect_turn_inputs(self, session_id: str) -> list[tuple[PendingTurnInput, ClaimColumns]]:
        return self._run(
            lambda tx, now: [(r.row, r.claim) for r in tx.inputs(session_id)], write=False
        )

    def inspect_session(self, session_id: str) -> SessionInspection:
        def op(tx: Tables, now: int) -> SessionInspection:
            head = tx.head_position()
            return SessionInspection(
                tx.lease(session_id),
                tuple([(r.batch, r.claim) for r in tx.batches(session_id)]),
                tuple([(r.row, r.claim) for r in tx.inputs(session_id)]),
                head[1] if head is not None and head[0] == session_id else 0,
            )

        return self._run(op, write=False)
