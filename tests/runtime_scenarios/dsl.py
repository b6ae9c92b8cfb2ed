"""The Runtime Scenario DSL: a scenario is a list of phases run against one fresh store.

A scenario holds a lease, some claims and a session state, exactly like lash-core's
Runtime Scenario context; phases call the store and assert what they expect.  The phase
order is validated statically first (:meth:`RuntimeScenario.phase_order_is_valid_for_test`):

(a) a releasing phase (Commit, Fault.COMMIT_AFTER_SESSION_LEASE_RELEASE) may only be last;
(b) a dead-holder reclaim comes before any phase that uses the lease, and at most once;
(c) a stale queue completion needs an earlier turn-work claim;
(d) a next-turn input claim lists as many aliases as texts.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass, field
from typing import Any

from lashspec.kernel.clock import FakeProcessTable
from lashspec.kernel.errors import (
    PendingTurnInputSourceKeyConflict,
    QueuedWorkClaimSuperseded,
    SessionExecutionLeaseExpired,
)
from lashspec.kernel.store import Store
from lashspec.kernel.types import (
    Acquired,
    ActiveTurn,
    Busy,
    Cancelled,
    ClaimBoundary,
    LeaseOwnerIdentity,
    LocalProcessLiveness,
    NextTurn,
    PendingTurnInput,
    PendingTurnInputDraft,
    ProcessWake,
    ProcessWakeDelivery,
    QueuedWorkBatchDraft,
    QueuedWorkClaim,
    QueuedWorkClass,
    QueuedWorkCompletion,
    RefreshToolCatalog,
    RuntimeCommit,
    SessionCheckpoint,
    SessionCommand,
    SessionExecutionLease,
    TurnInput,
    TurnInputCheckpointBoundary,
    TurnInputClaim,
    TurnInputState,
)

LEASE_TTL_MS = 60_000


class ScenarioFailure(AssertionError):
    """A scenario expectation failed; the message names scenario, phase, expected and actual."""


# ---------------------------------------------------------------------------
# Ingress kinds
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RefreshToolCatalogIngress:
    reason: str


@dataclass(frozen=True)
class ProcessWakeIngress:
    text: str


QueueIngress = RefreshToolCatalogIngress | ProcessWakeIngress


@dataclass(frozen=True)
class NextTurnIngress:
    alias: str
    text: str
    source_key: str | None = None


@dataclass(frozen=True)
class ReplayNextTurnIngress:
    alias: str
    text: str
    source_key: str
    expected_alias: str
    expected_text: str


@dataclass(frozen=True)
class ConflictNextTurnReplayIngress:
    text: str
    source_key: str
    expected_alias: str


@dataclass(frozen=True)
class NextTurnForSessionIngress:
    session_id: str
    text: str


@dataclass(frozen=True)
class ActiveTurnIngress:
    alias: str
    turn_id: str
    min_boundary: TurnInputCheckpointBoundary
    text: str


TurnInputIngress = (
    NextTurnIngress
    | ReplayNextTurnIngress
    | ConflictNextTurnReplayIngress
    | NextTurnForSessionIngress
    | ActiveTurnIngress
)


@dataclass(frozen=True)
class PendingInputExpectation:
    """A listed pending input: its alias, state and (always next-turn) ingress."""

    alias: str
    state: TurnInputState


# ---------------------------------------------------------------------------
# Phases
# ---------------------------------------------------------------------------


@dataclass
class IngressPhase:
    queue: list[QueueIngress] = field(default_factory=list)
    turn_inputs: list[TurnInputIngress] = field(default_factory=list)
    cancel_before_commit: list[str] = field(default_factory=list)
    enqueued_classes: list[QueuedWorkClass] = field(default_factory=list)

    def enqueue(self, ingress: QueueIngress) -> IngressPhase:
        self.queue.append(ingress)
        return self

    def enqueue_turn_input(self, ingress: TurnInputIngress) -> IngressPhase:
        self.turn_inputs.append(ingress)
        return self

    def cancel_turn_input_before_commit(self, alias: str) -> IngressPhase:
        self.cancel_before_commit.append(alias)
        return self

    def expect_enqueued_classes(self, classes: list[QueuedWorkClass]) -> IngressPhase:
        self.enqueued_classes = list(classes)
        return self


@dataclass
class CheckpointPhase:
    turn_index: int | None = None
    defer_interrupted_turn_id: str | None = None
    cancel_after_deferral: list[str] = field(default_factory=list)
    pending_after_deferral: list[PendingInputExpectation] = field(default_factory=list)
    no_next_turn_input_claim_after_cancellations: bool = False

    def with_turn_index(self, turn_index: int) -> CheckpointPhase:
        self.turn_index = turn_index
        return self

    def defer_interrupted_turn_inputs(self, turn_id: str) -> CheckpointPhase:
        self.defer_interrupted_turn_id = turn_id
        return self

    def cancel_turn_input_after_deferral(self, alias: str) -> CheckpointPhase:
        self.cancel_after_deferral.append(alias)
        return self

    def expect_pending_after_deferral(
        self, expected: list[PendingInputExpectation]
    ) -> CheckpointPhase:
        self.pending_after_deferral = list(expected)
        return self

    def expect_no_next_turn_input_claim_after_cancellations(self) -> CheckpointPhase:
        self.no_next_turn_input_claim_after_cancellations = True
        return self


@dataclass
class LeadingCommandClaimPhase:
    expected_count: int = 0
    turn_claim_blocked_by_command: bool | None = None

    def expect_turn_work_blocked_before_command(self, blocked: bool) -> LeadingCommandClaimPhase:
        self.turn_claim_blocked_by_command = blocked
        return self

    def expect_count(self, count: int) -> LeadingCommandClaimPhase:
        self.expected_count = count
        return self


@dataclass
class TurnWorkClaimPhase:
    boundary: ClaimBoundary
    expected_count: int = 0
    pending_after_claim: list[PendingInputExpectation] = field(default_factory=list)

    @classmethod
    def at(cls, boundary: ClaimBoundary) -> TurnWorkClaimPhase:
        return cls(boundary)

    def expect_count(self, count: int) -> TurnWorkClaimPhase:
        self.expected_count = count
        return self

    def expect_pending_turn_inputs_after_claim(
        self, expected: list[PendingInputExpectation]
    ) -> TurnWorkClaimPhase:
        self.pending_after_claim = list(expected)
        return self


@dataclass
class NextTurnInputClaimPhase:
    expected_aliases: list[str] = field(default_factory=list)
    expected_texts: list[str] = field(default_factory=list)
    pending_hidden_after_claim: bool = False

    def expect_inputs(self, aliases: list[str], texts: list[str]) -> NextTurnInputClaimPhase:
        self.expected_aliases = list(aliases)
        self.expected_texts = list(texts)
        return self

    def expect_pending_hidden_after_claim(self) -> NextTurnInputClaimPhase:
        self.pending_hidden_after_claim = True
        return self


@dataclass
class ReclaimDeadHolderPhase:
    assert_stale_observed_holder_busy: bool = True


class LeasePhase:
    @staticmethod
    def reclaim_dead_holder() -> ReclaimDeadHolderPhase:
        return ReclaimDeadHolderPhase()


class Fault(enum.Enum):
    STALE_QUEUE_COMPLETION = "stale queue completion"
    COMMIT_AFTER_SESSION_LEASE_RELEASE = "commit after session lease release"


@dataclass
class CommitPhase:
    pending_turn_inputs_empty_after_commit: bool = False
    checkpoint_turn_index: int | None = None

    def expect_pending_turn_inputs_empty(self) -> CommitPhase:
        self.pending_turn_inputs_empty_after_commit = True
        return self

    def expect_checkpoint_turn_index(self, turn_index: int) -> CommitPhase:
        self.checkpoint_turn_index = turn_index
        return self


Phase = (
    IngressPhase
    | CheckpointPhase
    | LeadingCommandClaimPhase
    | TurnWorkClaimPhase
    | NextTurnInputClaimPhase
    | ReclaimDeadHolderPhase
    | Fault
    | CommitPhase
)

_REQUIRES_LIVE_LEASE = (
    CheckpointPhase,
    LeadingCommandClaimPhase,
    TurnWorkClaimPhase,
    NextTurnInputClaimPhase,
    CommitPhase,
)


def phase_requires_live_lease(phase: Phase) -> bool:
    return isinstance(phase, _REQUIRES_LIVE_LEASE) or phase is Fault.STALE_QUEUE_COMPLETION


def phase_releases_lease(phase: Phase) -> bool:
    return isinstance(phase, CommitPhase) or phase is Fault.COMMIT_AFTER_SESSION_LEASE_RELEASE


def phase_name(phase: Phase) -> str:
    return phase.name if isinstance(phase, Fault) else type(phase).__name__


def first_phase_order_violation(phases: list[Phase]) -> str | None:
    """The first rule a phase list breaks, or None when the order is valid."""
    saw_live = False
    saw_turn_work = False
    for index, phase in enumerate(phases):
        if phase_releases_lease(phase) and index != len(phases) - 1:
            return f"phase {index} ({phase_name(phase)}) releases the lease but is not last"
        if phase_requires_live_lease(phase):
            saw_live = True
        if isinstance(phase, ReclaimDeadHolderPhase):
            if saw_live:
                return f"phase {index} reclaims a dead holder after the lease was already used"
            saw_live = True
        elif isinstance(phase, TurnWorkClaimPhase):
            saw_live = True
            saw_turn_work = True
        elif phase is Fault.STALE_QUEUE_COMPLETION and not saw_turn_work:
            return f"phase {index} fakes a stale queue completion before any turn-work claim"
        elif isinstance(phase, NextTurnInputClaimPhase) and len(phase.expected_aliases) != len(
            phase.expected_texts
        ):
            return f"phase {index} expects {len(phase.expected_aliases)} aliases but " + (
                f"{len(phase.expected_texts)} texts"
            )
    return None


# ---------------------------------------------------------------------------
# The scenario and its run context
# ---------------------------------------------------------------------------


@dataclass
class _Context:
    store: Store
    processes: FakeProcessTable | None
    session_id: str
    owner: LeaseOwnerIdentity | None = None
    lease: SessionExecutionLease | None = None
    turn_index: int = 0
    aliases: dict[str, PendingTurnInput] = field(default_factory=dict)
    command_claim: QueuedWorkClaim | None = None
    turn_claim: QueuedWorkClaim | None = None
    turn_input_claim: TurnInputClaim | None = None
    lease_released: bool = False


class RuntimeScenario:
    def __init__(self, name: str) -> None:
        self.name = name
        self._session_id = "root"
        self._lease_owner_id = "runtime-scenario-owner"
        self.phases: list[Phase] = []

    def session_id(self, session_id: str) -> RuntimeScenario:
        self._session_id = session_id
        return self

    def host_behavior(self, lease_owner_id: str) -> RuntimeScenario:
        self._lease_owner_id = lease_owner_id
        return self

    def phase(self, phase: Phase) -> RuntimeScenario:
        self.phases.append(phase)
        return self

    def phase_order_is_valid_for_test(self) -> bool:
        return first_phase_order_violation(self.phases) is None

    # -- running ------------------------------------------------------------------------

    def run(self, store: Store, processes: FakeProcessTable | None = None) -> None:
        """Run every phase in order; ``processes`` is the store's liveness oracle, if fake."""
        if not self.phases:
            raise ScenarioFailure(f"scenario {self.name!r} has no phases")
        violation = first_phase_order_violation(self.phases)
        if violation is not None:
            raise ScenarioFailure(f"scenario {self.name!r}: invalid phase order: {violation}")
        ctx = _Context(store, processes, self._session_id)
        for index, phase in enumerate(self.phases):
            self._index = index
            self._phase = phase
            self._run_phase(ctx, phase)

    def _fail(self, what: str, expected: Any, actual: Any) -> ScenarioFailure:
        return ScenarioFailure(
            f"scenario {self.name!r}, phase {self._index} ({phase_name(self._phase)}): {what}: "
            f"expected {expected!r}, got {actual!r}"
        )

    def _expect(self, what: str, expected: Any, actual: Any) -> None:
        if expected != actual:
            raise self._fail(what, expected, actual)

    def _run_phase(self, ctx: _Context, phase: Phase) -> None:
        if isinstance(phase, IngressPhase):
            self._ingress(ctx, phase)
        elif isinstance(phase, CheckpointPhase):
            self._checkpoint(ctx, phase)
        elif isinstance(phase, LeadingCommandClaimPhase):
            self._leading_command_claim(ctx, phase)
        elif isinstance(phase, TurnWorkClaimPhase):
            self._turn_work_claim(ctx, phase)
        elif isinstance(phase, NextTurnInputClaimPhase):
            self._next_turn_input_claim(ctx, phase)
        elif isinstance(phase, ReclaimDeadHolderPhase):
            self._reclaim_dead_holder(ctx, phase)
        elif phase is Fault.STALE_QUEUE_COMPLETION:
            self._stale_queue_completion(ctx)
        elif phase is Fault.COMMIT_AFTER_SESSION_LEASE_RELEASE:
            self._commit_after_release(ctx)
        elif isinstance(phase, CommitPhase):
            self._commit(ctx, phase)
        else:  # pragma: no cover - the Phase union is closed
            raise ScenarioFailure(f"unknown phase {phase!r}")

    def _opaque_owner(self) -> LeaseOwnerIdentity:
        return LeaseOwnerIdentity.opaque(self._lease_owner_id)

    def _ensure_lease(self, ctx: _Context) -> tuple[SessionExecutionLease, LeaseOwnerIdentity]:
        if ctx.lease_released:
            raise self._fail("lease required after release", "an unreleased lease", "released")
        if ctx.lease is None or ctx.owner is None:
            owner = self._opaque_owner()
            outcome = ctx.store.try_claim_session_execution_lease(
                ctx.session_id, owner, LEASE_TTL_MS
            )
            if not isinstance(outcome, Acquired):
                raise self._fail("session lease acquisition", "Acquired", outcome)
            ctx.owner, ctx.lease = owner, outcome.lease
        return ctx.lease, ctx.owner

    def _persisted_state(self, ctx: _Context, fence: SessionExecutionLease) -> RuntimeCommit:
        return RuntimeCommit(
            session_id=ctx.session_id,
            checkpoint=SessionCheckpoint(ctx.turn_index),
            session_execution_lease=fence.fence(),
        )

    def _alias(self, ctx: _Context, alias: str) -> PendingTurnInput:
        if alias not in ctx.aliases:
            raise self._fail("known alias", alias, sorted(ctx.aliases))
        return ctx.aliases[alias]

    def _assert_pending(self, ctx: _Context, expected: list[PendingInputExpectation]) -> None:
        pending = ctx.store.list_pending_turn_inputs(ctx.session_id)
        expected_ids = [self._alias(ctx, e.alias).input_id for e in expected]
        self._expect("pending turn input ids", expected_ids, [p.input_id for p in pending])
        for expectation, row in zip(expected, pending, strict=True):
            self._expect(f"state of {expectation.alias}", expectation.state, row.state)
            self._expect(f"ingress of {expectation.alias}", NextTurn(), row.ingress)

    def _cancel(self, ctx: _Context, alias: str) -> None:
        row = self._alias(ctx, alias)
        outcome = ctx.store.cancel_pending_turn_input(ctx.session_id, row.input_id)
        if not isinstance(outcome, Cancelled):
            raise self._fail(f"cancel outcome of {alias}", "Cancelled", outcome)
        self._expect(f"cancelled input id of {alias}", row.input_id, outcome.input.input_id)

    # -- phase bodies --------------------------------------------------------------------

    def _queue_draft(self, session_id: str, ingress: QueueIngress) -> QueuedWorkBatchDraft:
        if isinstance(ingress, RefreshToolCatalogIngress):
            payload: SessionCommand | ProcessWake = SessionCommand(
                RefreshToolCatalog(ingress.reason)
            )
        else:
            text = ingress.text
            payload = ProcessWake(
                ProcessWakeDelivery(
                    wake_id=f"wake:{session_id}:{text}",
                    target_session_id=session_id,
                    process_id=f"process:{text}",
                    sequence=1,
                    input=text,
                    dedupe_key=f"wake:{session_id}:{text}:1",
                    created_at_ms=1,
                )
            )
        return QueuedWorkBatchDraft(session_id, (payload,))

    def _ingress(self, ctx: _Context, phase: IngressPhase) -> None:
        classes = []
        for ingress in phase.queue:
            batch = ctx.store.enqueue_queued_work(self._queue_draft(ctx.session_id, ingress))
            if batch.work_class is not None:
                classes.append(batch.work_class)
        self._expect("enqueued work classes", phase.enqueued_classes, classes)
        for item in phase.turn_inputs:
            self._turn_input_ingress(ctx, item)
        for alias in phase.cancel_before_commit:
            self._cancel(ctx, alias)

    def _turn_input_ingress(self, ctx: _Context, item: TurnInputIngress) -> None:
        s = ctx.session_id
        if isinstance(item, NextTurnIngress):
            row = ctx.store.enqueue_pending_turn_input(
                PendingTurnInputDraft(s, NextTurn(), TurnInput.text(item.text), item.source_key)
            )
            self._expect(
                f"state of new input {item.alias}", TurnInputState.DEFERRED_NEXT_TURN, row.state
            )
            ctx.aliases[item.alias] = row
        elif isinstance(item, ReplayNextTurnIngress):
            original = self._alias(ctx, item.expected_alias)
            row = ctx.store.enqueue_pending_turn_input(
                PendingTurnInputDraft(s, NextTurn(), TurnInput.text(item.text), item.source_key)
            )
            self._expect("replayed input id", original.input_id, row.input_id)
            self._expect("replayed input text", item.expected_text, row.input.first_text())
            ctx.aliases[item.alias] = row
        elif isinstance(item, ConflictNextTurnReplayIngress):
            original = self._alias(ctx, item.expected_alias)
            try:
                row = ctx.store.enqueue_pending_turn_input(
                    PendingTurnInputDraft(s, NextTurn(), TurnInput.text(item.text), item.source_key)
                )
            except PendingTurnInputSourceKeyConflict as conflict:
                self._expect(
                    "source key conflict",
                    (s, item.source_key, original.input_id),
                    (conflict.session_id, conflict.source_key, conflict.existing_input_id),
                )
            else:
                raise self._fail("changed replay", "PendingTurnInputSourceKeyConflict", row)
        elif isinstance(item, NextTurnForSessionIngress):
            ctx.store.enqueue_pending_turn_input(
                PendingTurnInputDraft(item.session_id, NextTurn(), TurnInput.text(item.text))
            )
        else:
            row = ctx.store.enqueue_pending_turn_input(
                PendingTurnInputDraft(
                    s, ActiveTurn(item.turn_id, item.min_boundary), TurnInput.text(item.text)
                )
            )
            self._expect(
                f"state of new input {item.alias}", TurnInputState.PENDING_ACTIVE, row.state
            )
            ctx.aliases[item.alias] = row

    def _checkpoint(self, ctx: _Context, phase: CheckpointPhase) -> None:
        lease, owner = self._ensure_lease(ctx)
        if phase.turn_index is not None:
            ctx.turn_index = phase.turn_index
        commit = self._persisted_state(ctx, lease)
        if ctx.command_claim is not None:
            commit = _with(commit, completed_queue_claims=(ctx.command_claim.completion(),))
        if phase.defer_interrupted_turn_id is not None:
            commit = _with(commit, interrupted_turn_input_turn_id=phase.defer_interrupted_turn_id)
        ctx.store.commit_runtime_state(commit)
        ctx.command_claim = None
        if phase.pending_after_deferral:
            self._assert_pending(ctx, phase.pending_after_deferral)
        for alias in phase.cancel_after_deferral:
            self._cancel(ctx, alias)
        if phase.no_next_turn_input_claim_after_cancellations:
            claim = ctx.store.claim_next_turn_inputs(ctx.session_id, lease.fence(), owner, 10)
            self._expect("next-turn input claim after cancellations", None, claim)

    def _leading_command_claim(self, ctx: _Context, phase: LeadingCommandClaimPhase) -> None:
        lease, owner = self._ensure_lease(ctx)
        if phase.turn_claim_blocked_by_command is not None:
            probe = ctx.store.claim_ready_queued_work(
                ctx.session_id, lease.fence(), owner, ClaimBoundary.IDLE, 10
            )
            self._expect(
                "turn work blocked by the leading command",
                phase.turn_claim_blocked_by_command,
                probe is None,
            )
        claim = ctx.store.claim_leading_ready_session_command(ctx.session_id, lease.fence(), owner)
        self._expect(
            "leading command batches claimed",
            phase.expected_count,
            len(claim.batches) if claim else 0,
        )
        ctx.command_claim = claim

    def _turn_work_claim(self, ctx: _Context, phase: TurnWorkClaimPhase) -> None:
        lease, owner = self._ensure_lease(ctx)
        claim = ctx.store.claim_ready_queued_work(
            ctx.session_id, lease.fence(), owner, phase.boundary, 10
        )
        self._expect(
            f"turn work batches claimed at {phase.boundary.value}",
            phase.expected_count,
            len(claim.batches) if claim else 0,
        )
        if phase.pending_after_claim:
            self._assert_pending(ctx, phase.pending_after_claim)
        ctx.turn_claim = claim

    def _next_turn_input_claim(self, ctx: _Context, phase: NextTurnInputClaimPhase) -> None:
        lease, owner = self._ensure_lease(ctx)
        if len(phase.expected_aliases) != len(phase.expected_texts):
            raise self._fail(
                "aliases and texts of equal length",
                len(phase.expected_aliases),
                len(phase.expected_texts),
            )
        claim = ctx.store.claim_next_turn_inputs(ctx.session_id, lease.fence(), owner, 10)
        if not phase.expected_aliases:
            self._expect("next-turn input claim", None, claim)
            return
        if claim is None:
            raise self._fail("next-turn input claim", phase.expected_aliases, None)
        expected_ids = [self._alias(ctx, a).input_id for a in phase.expected_aliases]
        self._expect("claimed input ids", expected_ids, [i.input_id for i in claim.inputs])
        texts = [t for t in (i.input.first_text() for i in claim.inputs) if t is not None]
        self._expect("claimed input texts", phase.expected_texts, texts)
        if phase.pending_hidden_after_claim:
            pending = ctx.store.list_pending_turn_inputs(ctx.session_id)
            self._expect("pending inputs while claimed", [], pending)
        ctx.turn_input_claim = claim

    def _local_owner(self, owner_id: str, process_start: str) -> LeaseOwnerIdentity:
        return LeaseOwnerIdentity(
            owner_id,
            f"{owner_id}:incarnation",
            LocalProcessLiveness(
                host_id="runtime-scenario-host",
                boot_id="runtime-scenario-boot",
                pid=os.getpid(),
                process_start=process_start,
            ),
        )

    def _reclaim_dead_holder(self, ctx: _Context, phase: ReclaimDeadHolderPhase) -> None:
        if ctx.lease is not None:
            raise self._fail("no lease held before a dead-holder reclaim", None, ctx.lease)
        if ctx.processes is not None:
            # The claimants are running; the dead holder's start time is not the process's.
            ctx.processes.spawn(os.getpid(), "claimant-start")
        s = ctx.session_id
        dead = self._local_owner("runtime-scenario-dead-holder", "not-the-current-process-start")
        holder_outcome = ctx.store.try_claim_session_execution_lease(s, dead, LEASE_TTL_MS)
        if not isinstance(holder_outcome, Acquired):
            raise self._fail("dead holder acquisition", "Acquired", holder_outcome)
        holder = holder_outcome.lease
        claimant = self._local_owner(self._lease_owner_id, "claimant-start")
        busy = ctx.store.try_claim_session_execution_lease(s, claimant, LEASE_TTL_MS)
        if not isinstance(busy, Busy):
            raise self._fail("plain claim against a live (dead) holder", "Busy", busy)
        reclaimed = ctx.store.reclaim_session_execution_lease(
            s, claimant, holder.fence(), LEASE_TTL_MS
        )
        if not isinstance(reclaimed, Acquired):
            raise self._fail("dead-holder reclaim", "Acquired", reclaimed)
        if reclaimed.lease.fencing_token <= holder.fencing_token:
            raise self._fail(
                "reclaimed fencing token above the holder's",
                f"> {holder.fencing_token}",
                reclaimed.lease.fencing_token,
            )
        if phase.assert_stale_observed_holder_busy:
            late = self._local_owner("runtime-scenario-late-claimant", "late-claimant-start")
            stale = ctx.store.reclaim_session_execution_lease(s, late, holder.fence(), LEASE_TTL_MS)
            if not isinstance(stale, Busy):
                raise self._fail("reclaim with a stale observed holder", "Busy", stale)
        ctx.owner, ctx.lease = claimant, reclaimed.lease

    def _stale_queue_completion(self, ctx: _Context) -> None:
        lease, _ = self._ensure_lease(ctx)
        if ctx.turn_claim is None:
            raise self._fail("a turn-work claim to fake a stale completion for", "a claim", None)
        real = ctx.turn_claim.completion()
        stale = QueuedWorkCompletion(
            real.session_id, real.claim_id, real.lease_token + ":stale", real.batch_ids
        )
        commit = _with(self._persisted_state(ctx, lease), completed_queue_claims=(stale,))
        try:
            ctx.store.commit_runtime_state(commit)
        except QueuedWorkClaimSuperseded as error:
            self._expect("superseded claim id", real.claim_id, error.claim_id)
        else:
            raise self._fail("stale queue completion commit", "QueuedWorkClaimSuperseded", "Ok")

    def _commit_after_release(self, ctx: _Context) -> None:
        if not ctx.lease_released:
            self._commit(ctx, CommitPhase())
        if ctx.lease is None:
            raise self._fail("a released lease to reuse", "a lease", None)
        ctx.turn_index += 1
        try:
            ctx.store.commit_runtime_state(self._persisted_state(ctx, ctx.lease))
        except SessionExecutionLeaseExpired as error:
            self._expect("lease-expired session id", ctx.session_id, error.session_id)
        else:
            raise self._fail("commit with a released fence", "SessionExecutionLeaseExpired", "Ok")

    def _commit(self, ctx: _Context, phase: CommitPhase) -> None:
        lease, _ = self._ensure_lease(ctx)
        queue = tuple(c.completion() for c in (ctx.command_claim, ctx.turn_claim) if c is not None)
        inputs = (ctx.turn_input_claim.completion(),) if ctx.turn_input_claim else ()
        commit = _with(
            self._persisted_state(ctx, lease),
            release_session_execution_lease=lease.completion(),
            completed_queue_claims=queue,
            completed_turn_input_claims=inputs,
        )
        ctx.store.commit_runtime_state(commit)
        ctx.command_claim = ctx.turn_claim = ctx.turn_input_claim = None
        ctx.lease_released = True
        if phase.pending_turn_inputs_empty_after_commit:
            self._expect(
                "pending inputs after commit",
                [],
                ctx.store.list_pending_turn_inputs(ctx.session_id),
            )
        read = ctx.store.load_session()
        self._expect("loaded session id", ctx.session_id, read.session_id if read else None)
        if phase.checkpoint_turn_index is not None and read is not None:
            self._expect(
                "checkpoint turn index", phase.checkpoint_turn_index, read.checkpoint.turn_index
            )
        self._expect("queued work after commit", [], ctx.store.list_queued_work(ctx.session_id))


def _with(commit: RuntimeCommit, **changes: Any) -> RuntimeCommit:
    from dataclasses import replace

    return replace(commit, **changes)
