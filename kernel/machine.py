"""The sans-IO turn machine: one session's durable turn lifecycle as an explicit transition table.

Theory of operation
-------------------
:class:`TurnMachine` decides *what* the runtime does next for one session; it never does it.
The host feeds it events (:class:`Event`) with :meth:`TurnMachine.handle` and gets back the
effects (:class:`Effect`) to perform.  The machine performs no I/O, reads no clock and calls
no store: :class:`~lashspec.kernel.driver.TurnDriver` runs its store effects against a
:class:`~lashspec.kernel.store.Store` and turns each result or typed store error into the
event that answers it.  Every rule lives in :data:`TRANSITIONS`, keyed by (state, event
type); ``docs/turn-machine.md`` is generated from that table (``python
docs/render_turn_machine.py``), so the documentation cannot drift from the code.

A *lease cycle* runs from ``Start`` in ``Idle`` back to ``Idle`` (or to ``Failed``):

1. acquire the session execution lease (``AcquireLease``); a busy lease whose holder is
   provably dead is taken over once (``ReclaimLease``), any other busy lease ends the cycle;
2. decide whether leading session commands go before next-turn input (they do when the
   earliest pending command was enqueued strictly before the earliest pending next-turn
   input, or when there is no such input; :func:`session_commands_go_first`) and, if so,
   drain them one batch at a time, each applied by the host and settled by its own fenced
   commit that keeps the lease (``CommitSessionCommand``);
3. claim next-turn inputs at the ``Idle`` boundary; if there are none, claim turn work at
   the ``Idle`` boundary; if there is none either, release the lease: nothing to do;
4. run the turn (``RunTurn``).  At every checkpoint the host reports, the machine writes a
   progress checkpoint that keeps the lease (``WriteCheckpoint``; a failure other than
   lease loss only means that boundary is not persisted) and then claims the work admitted
   at an ``ActiveTurnCheckpoint`` boundary: ``EarliestSafeBoundary`` turn work such as a
   process wake, and active-turn inputs addressed to this turn (``ClaimCheckpointWork``);
5. commit the turn (``CommitTurn``): one atomic, fenced commit that completes every claim
   the turn holds, defers this turn's unclaimed active-turn inputs to the next turn, records
   the checkpoint and releases the lease.

At most one store operation is outstanding at any time (:attr:`TurnMachine.awaiting`); an
event that answers a store operation must answer *that* operation, or it is rejected.
``ReleaseLease`` and ``AbandonClaims`` need no answer: a failed release leaves the lease to
expire, and claims of a dead generation are superseded anyway (ADR 0029).  Before a turn
commit reaches the store, the driver checks that it settles every claim the turn holds
(:meth:`~lashspec.kernel.types.RuntimeCommit.validate_claim_settlement`, as lash's turn
boundary does); a refusal answers the commit as ``CommitFailed``.

Stopping early
~~~~~~~~~~~~~~
* ``Interrupt`` during a turn ends it at once with an *interrupted* ``CommitTurn``: claims
  the turn already holds are completed, and its active-turn inputs that no checkpoint
  accepted are deferred to the next turn by the commit.  If a store operation of the turn
  is outstanding the machine waits in ``Interrupting``; work that a checkpoint claim grants
  meanwhile is handed straight back (``AbandonClaims``), so an interrupted turn takes no new
  work and the commit defers those inputs too.
* ``Interrupt`` before a turn has started waits in ``Cancelling`` for the outstanding
  operation; if it succeeds, the lease is still ours, so the machine hands back what the
  cycle claimed and releases the lease.  (lash has no such event: its cancel token is only
  observed inside a running turn.)  If it fails, the error rules below apply.

Store errors
~~~~~~~~~~~~
The driver sorts every store error into one of two classes, as lash's runtime does
(``runtime_error_from_store_commit`` in ``runtime/mod.rs``; the rules below follow
``runtime/turn_loop.rs``):

* ``LeaseLost``: the store rejected the fence (``SessionExecutionLeaseExpired``: released,
  expired or taken over), a renewal failed, or the host saw the loss.  The cycle is
  abandoned: a running turn is stopped (``StopTurn``), nothing is committed, and the claims
  the turn holds are handed back at once (``AbandonClaims``, lease-less, by claim id) so a
  peer can take the rows without waiting for a new generation.  No other store effect is
  emitted: the lease is already gone.  A claimed session command is not handed back (lash's
  command drain never hands one back); it is superseded once another generation is minted.
* ``StoreFailed`` / ``CommitFailed``: any other store error, including a refused claim
  settlement (``UnsettledQueuedWorkClaim``, ``UnsettledTurnInputClaim``) and a conflicting
  turn commit; lash reports all of them as ``StoreCommitFailed``.  The cycle stops in
  ``Failed`` and the machine *forgets* its lease and claims without touching the store: the
  lease runs out at its TTL (a peer's acquisition answers busy until then) and the claims are
  superseded by generation once the lease turns over (ADR 0029).  Keeping the lease is
  deliberate in lash: after a failed commit the runtime cannot know what the store applied,
  so it neither releases nor hands back.  Two paths differ, as in lash:

  - a failed progress checkpoint (``WriteCheckpoint``) only means that boundary is not
    persisted; the turn goes on (``progress_boundary`` logs and continues);
  - a failure while draining session commands (claiming one, or its commit) releases the
    lease (``ReleaseLease``) but still hands nothing back (lash's drain loop releases on any
    error).

  ``Reset`` returns from ``Failed`` to ``Idle``.  The same owner incarnation starting again
  before the TTL re-enters the *same* generation (the store extends its own live lease), so
  it cannot claim its own stranded claims (no self-steal); they come back once the lease
  turns over.
* A busy lease (``LeaseBusy``) is not an error: the cycle ends with outcome ``busy`` and
  nothing to undo.  A failed acquisition (``StoreFailed`` while acquiring) ends in ``Failed``
  with nothing held.

The phase-order rule
~~~~~~~~~~~~~~~~~~~~
Each lease cycle, read as a list of Runtime Scenario phases, satisfies the seed's phase-order
rule (scenarios.md §4.5): lease acquisition comes before every effect that uses the lease,
and a dead-holder reclaim happens at most once and only as the acquisition; a releasing
effect (``CommitTurn``, ``ReleaseLease``) is the last lease-using effect of its cycle; a
commit completes only claims granted earlier in the same cycle, and the turn commit settles
all of them.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from .errors import MachineLimitsError, StoreError, TurnMachineError
from .types import (
    CheckpointKind,
    ClaimBoundary,
    JsonValue,
    LeaseOwnerIdentity,
    LeaseTimings,
    PendingTurnInput,
    QueuedWorkBatch,
    QueuedWorkClaim,
    QueuedWorkCompletion,
    RuntimeCommit,
    RuntimeCommitResult,
    RuntimeTurnCommitStamp,
    SessionCheckpoint,
    SessionExecutionLease,
    SessionExecutionLeaseCompletion,
    SessionExecutionLeaseFence,
    TurnInputClaim,
    TurnInputCompletion,
    turn_commit_hash,
)

# ---------------------------------------------------------------------------
# States and cycle outcomes
# ---------------------------------------------------------------------------


class TurnState(enum.Enum):
    IDLE = "Idle"
    ACQUIRING_LEASE = "AcquiringLease"
    RECLAIMING_LEASE = "ReclaimingLease"
    INSPECTING_QUEUE = "InspectingQueue"
    CLAIMING_COMMANDS = "ClaimingCommands"
    COMMITTING_COMMAND = "CommittingCommand"
    CLAIMING_INPUTS = "ClaimingInputs"
    CLAIMING_TURN_WORK = "ClaimingTurnWork"
    ACTIVE_TURN = "ActiveTurn"
    WRITING_CHECKPOINT = "WritingCheckpoint"
    CLAIMING_CHECKPOINT_WORK = "ClaimingCheckpointWork"
    RENEWING_LEASE = "RenewingLease"
    INTERRUPTING = "Interrupting"
    COMMITTING = "Committing"
    CANCELLING = "Cancelling"
    FAILED = "Failed"
    CLOSED = "Closed"


STATE_DOCS: Mapping[TurnState, str] = {
    TurnState.IDLE: "No lease, no turn, nothing outstanding.",
    TurnState.ACQUIRING_LEASE: "Waiting for the session execution lease (`AcquireLease`).",
    TurnState.RECLAIMING_LEASE: "Taking the lease over from a provably dead holder "
    "(`ReclaimLease`).",
    TurnState.INSPECTING_QUEUE: "Lease held; reading which comes first, pending session "
    "commands or next-turn input (`InspectPendingWork`).",
    TurnState.CLAIMING_COMMANDS: "Claiming the leading session command at the Idle boundary.",
    TurnState.COMMITTING_COMMAND: "Settling one claimed session command in its own fenced "
    "commit that keeps the lease.",
    TurnState.CLAIMING_INPUTS: "Claiming next-turn inputs at the Idle boundary.",
    TurnState.CLAIMING_TURN_WORK: "Claiming queued turn work at the Idle boundary.",
    TurnState.ACTIVE_TURN: "The host runs the turn; no store operation is outstanding.",
    TurnState.WRITING_CHECKPOINT: "Writing a progress checkpoint that keeps the lease.",
    TurnState.CLAIMING_CHECKPOINT_WORK: "Claiming work admitted at the ActiveTurnCheckpoint "
    "boundary: EarliestSafeBoundary turn work and active-turn inputs.",
    TurnState.RENEWING_LEASE: "Extending the lease during a long turn.",
    TurnState.INTERRUPTING: "Interrupted while a store operation of the turn was outstanding; "
    "the turn commits as interrupted once it answers.",
    TurnState.COMMITTING: "Waiting for the turn commit, which settles every claim of the "
    "turn, defers its unclaimed active-turn inputs and releases the lease.",
    TurnState.CANCELLING: "Interrupted before a turn started; once the outstanding operation "
    "answers, claims are handed back and the lease released.",
    TurnState.FAILED: "The store rejected an operation for a reason other than lease loss; "
    "the cycle stopped, handed nothing back and forgot its lease, which runs out at its TTL "
    "(a failed command drain releases it). `Reset` to go on.",
    TurnState.CLOSED: "Terminal: the machine accepts no more events.",
}


class CycleOutcome(enum.Enum):
    """How the last lease cycle ended (:attr:`TurnMachine.last_outcome`)."""

    COMMITTED = "committed"
    INTERRUPTED = "interrupted"
    NOTHING_TO_DO = "nothing_to_do"
    BUSY = "busy"
    CANCELLED = "cancelled"
    LEASE_LOST = "lease_lost"
    FAILED = "failed"


# ---------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    """Something the host or the store reports to the machine."""

    #: True for events that answer an outstanding store effect
    is_reply: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class Start(Event):
    """The host asks for the next turn; `turn_id` names the turn if one runs."""

    turn_id: str


@dataclass(frozen=True, slots=True)
class LeaseAcquired(Event):
    """The store granted the session execution lease."""

    is_reply: ClassVar[bool] = True
    lease: SessionExecutionLease


@dataclass(frozen=True, slots=True)
class LeaseBusy(Event):
    """Another owner holds a live lease; the driver says whether it is provably dead."""

    is_reply: ClassVar[bool] = True
    holder: SessionExecutionLease
    holder_provably_dead: bool = False


@dataclass(frozen=True, slots=True)
class PendingWorkInspected(Event):
    """Enqueue times of the earliest pending session command and next-turn input."""

    is_reply: ClassVar[bool] = True
    earliest_command_enqueued_at_ms: int | None
    earliest_next_turn_input_enqueued_at_ms: int | None


@dataclass(frozen=True, slots=True)
class CommandClaimed(Event):
    """Result of claiming the leading session command (None: no command leads)."""

    is_reply: ClassVar[bool] = True
    claim: QueuedWorkClaim | None


@dataclass(frozen=True, slots=True)
class InputsClaimed(Event):
    """Result of claiming next-turn inputs (None: there were none)."""

    is_reply: ClassVar[bool] = True
    claim: TurnInputClaim | None


@dataclass(frozen=True, slots=True)
class TurnWorkClaimed(Event):
    """Result of claiming turn work at the Idle boundary (None: there was none)."""

    is_reply: ClassVar[bool] = True
    claim: QueuedWorkClaim | None


@dataclass(frozen=True, slots=True)
class CheckpointReached(Event):
    """The running turn reached a checkpoint; `turn_index` and `state` are what it records."""

    turn_index: int
    kind: CheckpointKind = CheckpointKind.AFTER_WORK
    state: Mapping[str, JsonValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CheckpointWorkClaimed(Event):
    """Result of the checkpoint claim: active-turn inputs and turn work, either may be None."""

    is_reply: ClassVar[bool] = True
    inputs: TurnInputClaim | None
    work: QueuedWorkClaim | None


@dataclass(frozen=True, slots=True)
class TurnFinished(Event):
    """The host finished the turn; `turn_index` and `state` are its final checkpoint."""

    turn_index: int
    state: Mapping[str, JsonValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CommitSucceeded(Event):
    """The outstanding commit was applied."""

    is_reply: ClassVar[bool] = True
    result: RuntimeCommitResult


@dataclass(frozen=True, slots=True)
class CommitFailed(Event):
    """The outstanding commit was rejected for a reason other than lease loss."""

    is_reply: ClassVar[bool] = True
    error: StoreError


@dataclass(frozen=True, slots=True)
class RenewDue(Event):
    """The host's timer says the lease should be renewed."""


@dataclass(frozen=True, slots=True)
class LeaseRenewed(Event):
    """The store extended the lease (same generation)."""

    is_reply: ClassVar[bool] = True
    lease: SessionExecutionLease


@dataclass(frozen=True, slots=True)
class LeaseLost(Event):
    """The store rejected the fence (released, expired or taken over), or the host saw it."""

    is_reply: ClassVar[bool] = True
    error: StoreError | None = None


@dataclass(frozen=True, slots=True)
class StoreFailed(Event):
    """A store operation other than a commit failed for a reason other than lease loss."""

    is_reply: ClassVar[bool] = True
    error: StoreError


@dataclass(frozen=True, slots=True)
class Interrupt(Event):
    """The host asks to stop: the running turn commits as interrupted, a cycle that has not
    started a turn winds down."""


@dataclass(frozen=True, slots=True)
class Reset(Event):
    """The host acknowledged a failure."""


@dataclass(frozen=True, slots=True)
class Close(Event):
    """The host is done with this machine."""


EVENT_TYPES: tuple[type[Event], ...] = (
    Start,
    LeaseAcquired,
    LeaseBusy,
    PendingWorkInspected,
    CommandClaimed,
    InputsClaimed,
    TurnWorkClaimed,
    CheckpointReached,
    CheckpointWorkClaimed,
    TurnFinished,
    CommitSucceeded,
    CommitFailed,
    RenewDue,
    LeaseRenewed,
    LeaseLost,
    StoreFailed,
    Interrupt,
    Reset,
    Close,
)

# ---------------------------------------------------------------------------
# Effects
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Effect:
    """Something the machine asks its host or driver to do."""

    #: the events that may answer this effect; empty when no answer is expected
    replies: ClassVar[tuple[type[Event], ...]] = ()


@dataclass(frozen=True, slots=True)
class StoreEffect(Effect):
    """A store operation; only the driver performs these."""

    #: True when the operation presents the lease (fence or completion) to the store; the
    #: driver answers its lease-expired error with LeaseLost, which its replies then include
    uses_lease: ClassVar[bool] = False
    #: True when the operation ends the lease
    releases_lease: ClassVar[bool] = False
    #: True when the operation asks the store for a new or renewed-by-entry lease
    acquires_lease: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class HostEffect(Effect):
    """A notification for the host's agent loop; it touches no store."""


@dataclass(frozen=True, slots=True)
class AcquireLease(StoreEffect):
    """`try_claim_session_execution_lease(session_id, owner, ttl_ms)`."""

    replies: ClassVar[tuple[type[Event], ...]] = (LeaseAcquired, LeaseBusy, StoreFailed)
    acquires_lease: ClassVar[bool] = True
    session_id: str
    owner: LeaseOwnerIdentity
    ttl_ms: int


@dataclass(frozen=True, slots=True)
class ReclaimLease(StoreEffect):
    """`reclaim_session_execution_lease(session_id, claimant, observed_holder, ttl_ms)`."""

    replies: ClassVar[tuple[type[Event], ...]] = (LeaseAcquired, LeaseBusy, StoreFailed)
    acquires_lease: ClassVar[bool] = True
    session_id: str
    claimant: LeaseOwnerIdentity
    observed_holder: SessionExecutionLeaseFence
    ttl_ms: int


@dataclass(frozen=True, slots=True)
class InspectPendingWork(StoreEffect):
    """Read the pending session commands and next-turn inputs (lease-less listings)."""

    replies: ClassVar[tuple[type[Event], ...]] = (PendingWorkInspected, StoreFailed)
    session_id: str


@dataclass(frozen=True, slots=True)
class ClaimLeadingCommand(StoreEffect):
    """`claim_leading_ready_session_command(session_id, fence, owner)`."""

    replies: ClassVar[tuple[type[Event], ...]] = (CommandClaimed, LeaseLost, StoreFailed)
    uses_lease: ClassVar[bool] = True
    session_id: str
    fence: SessionExecutionLeaseFence
    owner: LeaseOwnerIdentity


@dataclass(frozen=True, slots=True)
class CommitSessionCommand(StoreEffect):
    """`commit_runtime_state(commit)`: settles one session command, keeps the lease."""

    replies: ClassVar[tuple[type[Event], ...]] = (CommitSucceeded, CommitFailed, LeaseLost)
    uses_lease: ClassVar[bool] = True
    commit: RuntimeCommit


@dataclass(frozen=True, slots=True)
class ClaimNextTurnInputs(StoreEffect):
    """`claim_next_turn_inputs(session_id, fence, owner, max_inputs)`."""

    replies: ClassVar[tuple[type[Event], ...]] = (InputsClaimed, LeaseLost, StoreFailed)
    uses_lease: ClassVar[bool] = True
    session_id: str
    fence: SessionExecutionLeaseFence
    owner: LeaseOwnerIdentity
    max_inputs: int


@dataclass(frozen=True, slots=True)
class ClaimQueuedWork(StoreEffect):
    """`claim_ready_queued_work(session_id, fence, owner, boundary, max_batches)`."""

    replies: ClassVar[tuple[type[Event], ...]] = (TurnWorkClaimed, LeaseLost, StoreFailed)
    uses_lease: ClassVar[bool] = True
    session_id: str
    fence: SessionExecutionLeaseFence
    owner: LeaseOwnerIdentity
    boundary: ClaimBoundary
    max_batches: int


@dataclass(frozen=True, slots=True)
class WriteCheckpoint(StoreEffect):
    """`commit_runtime_state(commit)`: a progress checkpoint with no claims; keeps the lease."""

    replies: ClassVar[tuple[type[Event], ...]] = (CommitSucceeded, CommitFailed, LeaseLost)
    uses_lease: ClassVar[bool] = True
    commit: RuntimeCommit


@dataclass(frozen=True, slots=True)
class ClaimCheckpointWork(StoreEffect):
    """`claim_checkpoint_work(session_id, fence, owner, turn_id, checkpoint, max_inputs,
    max_batches)` at the ActiveTurnCheckpoint boundary."""

    replies: ClassVar[tuple[type[Event], ...]] = (CheckpointWorkClaimed, LeaseLost, StoreFailed)
    uses_lease: ClassVar[bool] = True
    session_id: str
    fence: SessionExecutionLeaseFence
    owner: LeaseOwnerIdentity
    turn_id: str
    checkpoint: CheckpointKind
    max_inputs: int
    max_batches: int


@dataclass(frozen=True, slots=True)
class RenewLease(StoreEffect):
    """`renew_session_execution_lease(fence, ttl_ms)`."""

    replies: ClassVar[tuple[type[Event], ...]] = (LeaseRenewed, LeaseLost)
    uses_lease: ClassVar[bool] = True
    fence: SessionExecutionLeaseFence
    ttl_ms: int


@dataclass(frozen=True, slots=True)
class CommitTurn(StoreEffect):
    """`commit_runtime_state(commit)`: completes every claim of the turn, defers its
    unclaimed active-turn inputs, records the checkpoint and releases the lease."""

    replies: ClassVar[tuple[type[Event], ...]] = (CommitSucceeded, CommitFailed, LeaseLost)
    uses_lease: ClassVar[bool] = True
    releases_lease: ClassVar[bool] = True
    commit: RuntimeCommit
    interrupted: bool
    #: the claims the turn holds; the commit must settle every one of them
    originating_queue_claims: tuple[QueuedWorkCompletion, ...] = ()
    originating_turn_input_claims: tuple[TurnInputCompletion, ...] = ()


@dataclass(frozen=True, slots=True)
class ReleaseLease(StoreEffect):
    """`release_session_execution_lease(completion)`; best effort, no answer expected."""

    uses_lease: ClassVar[bool] = True
    releases_lease: ClassVar[bool] = True
    completion: SessionExecutionLeaseCompletion


@dataclass(frozen=True, slots=True)
class AbandonClaims(StoreEffect):
    """`abandon_*_claim` for each claim: hands rows back by claim id and token, no fence;
    fire-and-forget."""

    queue_claims: tuple[QueuedWorkClaim, ...]
    input_claims: tuple[TurnInputClaim, ...]


@dataclass(frozen=True, slots=True)
class ApplySessionCommand(HostEffect):
    """Apply a claimed session command (e.g. refresh the tool catalog) before it is settled."""

    batches: tuple[QueuedWorkBatch, ...]


@dataclass(frozen=True, slots=True)
class RunTurn(HostEffect):
    """Run turn `turn_id` with the claimed inputs and queued work."""

    turn_id: str
    inputs: tuple[PendingTurnInput, ...]
    batches: tuple[QueuedWorkBatch, ...]


@dataclass(frozen=True, slots=True)
class DeliverCheckpointWork(HostEffect):
    """Inputs and queued work admitted at the checkpoint; they join the running turn."""

    turn_id: str
    inputs: tuple[PendingTurnInput, ...]
    batches: tuple[QueuedWorkBatch, ...]


@dataclass(frozen=True, slots=True)
class StopTurn(HostEffect):
    """Stop the running turn without committing it (lease lost or store failure)."""

    turn_id: str
    reason: str


EFFECT_TYPES: tuple[type[Effect], ...] = (
    AcquireLease,
    ReclaimLease,
    InspectPendingWork,
    ClaimLeadingCommand,
    CommitSessionCommand,
    ClaimNextTurnInputs,
    ClaimQueuedWork,
    WriteCheckpoint,
    ClaimCheckpointWork,
    RenewLease,
    CommitTurn,
    ReleaseLease,
    AbandonClaims,
    ApplySessionCommand,
    RunTurn,
    DeliverCheckpointWork,
    StopTurn,
)

# ---------------------------------------------------------------------------
# Pure decision rule
# ---------------------------------------------------------------------------


def session_commands_go_first(
    earliest_command_enqueued_at_ms: int | None, earliest_input_enqueued_at_ms: int | None
) -> bool:
    """Leading session commands are drained before next-turn input when the earliest pending
    command was enqueued strictly earlier, or when there is no pending next-turn input."""
    if earliest_command_enqueued_at_ms is None:
        return False
    if earliest_input_enqueued_at_ms is None:
        return True
    return earliest_command_enqueued_at_ms < earliest_input_enqueued_at_ms


# ---------------------------------------------------------------------------
# The machine
# ---------------------------------------------------------------------------

DEFAULT_MAX_INPUTS = 64
DEFAULT_MAX_BATCHES = 64


@dataclass(frozen=True, slots=True)
class MachineSnapshot:
    """Everything a :class:`TurnMachine` knows, as one comparable value."""

    state: TurnState
    awaiting: type[StoreEffect] | None
    lease: SessionExecutionLease | None
    turn_id: str | None
    committed_checkpoint: SessionCheckpoint
    turn_checkpoint: SessionCheckpoint | None
    writing_checkpoint: SessionCheckpoint | None
    checkpoint_kind: CheckpointKind | None
    command_claim: QueuedWorkClaim | None
    queue_claims: tuple[QueuedWorkClaim, ...]
    input_claims: tuple[TurnInputClaim, ...]
    interrupted: bool
    last_outcome: CycleOutcome | None
    failure: StoreError | None


class TurnMachine:
    """One session's turn lifecycle; feed it events, perform the effects it returns."""

    def __init__(
        self,
        session_id: str,
        owner: LeaseOwnerIdentity,
        *,
        timings: LeaseTimings | None = None,
        checkpoint: SessionCheckpoint | None = None,
        max_inputs: int = DEFAULT_MAX_INPUTS,
        max_batches: int = DEFAULT_MAX_BATCHES,
    ) -> None:
        if not session_id:
            raise ValueError("a turn machine needs a non-empty session id")
        if max_inputs < 1:
            raise MachineLimitsError(
                "MaxInputsTooSmall", f"max inputs must be at least 1, got {max_inputs}"
            )
        if max_batches < 1:
            raise MachineLimitsError(
                "MaxBatchesTooSmall", f"max batches must be at least 1, got {max_batches}"
            )
        self.session_id = session_id
        self.owner = owner
        #: the lease TTL the machine asks for; LeaseTimings validated it
        self.timings = timings or LeaseTimings()
        self.max_inputs = max_inputs
        self.max_batches = max_batches
        self.state = TurnState.IDLE
        #: the store effect whose answer the machine waits for
        self.awaiting: type[StoreEffect] | None = None
        self.lease: SessionExecutionLease | None = None
        self.turn_id: str | None = None
        #: the last checkpoint known to be committed
        self.committed_checkpoint = checkpoint or SessionCheckpoint(0)
        #: the latest checkpoint the running turn reached
        self.turn_checkpoint: SessionCheckpoint | None = None
        self.writing_checkpoint: SessionCheckpoint | None = None
        self.checkpoint_kind: CheckpointKind | None = None
        self.command_claim: QueuedWorkClaim | None = None
        #: claims the current turn holds; its commit completes them
        self.queue_claims: tuple[QueuedWorkClaim, ...] = ()
        self.input_claims: tuple[TurnInputClaim, ...] = ()
        self.interrupted = False
        self.last_outcome: CycleOutcome | None = None
        self.failure: StoreError | None = None

    # -- public API ------------------------------------------------------------------------

    def handle(self, event: Event) -> list[Effect]:
        """Apply one event; return the effects to perform, in order.

        Raises :class:`TurnMachineError`, leaving the machine unchanged, when the event is not
        allowed in the current state, does not answer the outstanding store effect, or
        carries data that contradicts what the machine knows.
        """
        event_name = type(event).__name__
        rules = TRANSITIONS.get((self.state, type(event)))
        if rules is None:
            allowed = ", ".join(t.__name__ for t in self.allowed_events()) or "nothing"
            raise TurnMachineError(
                self.state.value, event_name, f"not allowed here; this state accepts {allowed}"
            )
        if (
            event.is_reply
            and self.awaiting is not None
            and type(event) not in self.awaiting.replies
        ):
            raise TurnMachineError(
                self.state.value,
                event_name,
                f"the outstanding store effect is {self.awaiting.__name__}, which is answered "
                f"by {', '.join(e.__name__ for e in self.awaiting.replies)}",
            )
        problem = _payload_problem(self, event)
        if problem is not None:
            raise TurnMachineError(self.state.value, event_name, problem)
        for rule in rules:
            if rule.guard.holds(self, event):
                effects = rule.action(self, event)
                _check_effects(rule, effects)
                issued = _awaited(effects)
                if event.is_reply:
                    self.awaiting = issued  # the outstanding operation was answered
                elif issued is not None:
                    if self.awaiting is not None:
                        raise AssertionError(
                            f"{rule.state.value} x {event_name} issued {issued.__name__} while "
                            f"{self.awaiting.__name__} is outstanding"
                        )
                    self.awaiting = issued
                self.state = rule.target
                if rule.outcome is not None:
                    self.last_outcome = rule.outcome
                return effects
        raise AssertionError(  # the guards of every key are exhaustive
            f"no guard of {self.state.value} x {event_name} matched"
        )

    def allowed_events(self) -> tuple[type[Event], ...]:
        """The event types the current state has rules for."""
        return tuple(e for e in EVENT_TYPES if (self.state, e) in TRANSITIONS)

    def accepts(self, event_type: type[Event]) -> bool:
        """Whether :meth:`handle` would take an event of this type now (payload aside)."""
        if (self.state, event_type) not in TRANSITIONS:
            return False
        if event_type.is_reply and self.awaiting is not None:
            return event_type in self.awaiting.replies
        return True

    def snapshot(self) -> MachineSnapshot:
        return MachineSnapshot(
            state=self.state,
            awaiting=self.awaiting,
            lease=self.lease,
            turn_id=self.turn_id,
            committed_checkpoint=self.committed_checkpoint,
            turn_checkpoint=self.turn_checkpoint,
            writing_checkpoint=self.writing_checkpoint,
            checkpoint_kind=self.checkpoint_kind,
            command_claim=self.command_claim,
            queue_claims=self.queue_claims,
            input_claims=self.input_claims,
            interrupted=self.interrupted,
            last_outcome=self.last_outcome,
            failure=self.failure,
        )

    # -- effect builders -------------------------------------------------------------------

    def _lease(self) -> SessionExecutionLease:
        if self.lease is None:
            raise AssertionError(f"state {self.state.value} needs a lease and holds none")
        return self.lease

    def _fence(self) -> SessionExecutionLeaseFence:
        return self._lease().fence()

    def _turn(self) -> str:
        if self.turn_id is None:
            raise AssertionError(f"state {self.state.value} needs a turn id and has none")
        return self.turn_id

    def _checkpoint_kind(self) -> CheckpointKind:
        if self.checkpoint_kind is None:
            raise AssertionError(f"state {self.state.value} needs a checkpoint kind and has none")
        return self.checkpoint_kind

    def _commit_turn(self) -> CommitTurn:
        lease = self._lease()
        commit = RuntimeCommit(
            session_id=self.session_id,
            checkpoint=self.turn_checkpoint or self.committed_checkpoint,
            session_execution_lease=lease.fence(),
            release_session_execution_lease=lease.completion(),
            completed_queue_claims=tuple(c.completion() for c in self.queue_claims),
            completed_turn_input_claims=tuple(c.completion() for c in self.input_claims),
            # always the turn's own id: active-turn input no checkpoint accepted goes to
            # the next turn in the same transaction (store.md §5.4)
            interrupted_turn_input_turn_id=self._turn(),
        )
        stamp = RuntimeTurnCommitStamp(self.session_id, self._turn(), turn_commit_hash(commit))
        return CommitTurn(
            replace(commit, turn_commit=stamp),
            self.interrupted,
            commit.completed_queue_claims,
            commit.completed_turn_input_claims,
        )

    def _wind_down(self) -> list[Effect]:
        """End the cycle normally while the lease is still ours: hand every claim back and
        release the lease."""
        effects: list[Effect] = []
        command = (self.command_claim,) if self.command_claim else ()
        queue = (*command, *self.queue_claims)
        if queue or self.input_claims:
            effects.append(AbandonClaims(queue, self.input_claims))
        effects.append(ReleaseLease(self._lease().completion()))
        self._end_cycle()
        return effects

    def _hand_back_after_lease_loss(self) -> list[Effect]:
        """The lease is gone: hand the turn's claims back at once, lease-less, and end the
        cycle.  A session command claim is not handed back (lash's drain never does); it is
        superseded by generation."""
        effects: list[Effect] = []
        if self.queue_claims or self.input_claims:
            effects.append(AbandonClaims(self.queue_claims, self.input_claims))
        self._end_cycle()
        return effects

    def _release_and_forget(self) -> list[Effect]:
        """A failed command drain: release the lease, hand nothing back."""
        effects: list[Effect] = [ReleaseLease(self._lease().completion())]
        self._end_cycle()
        return effects

    def _end_cycle(self) -> None:
        self.lease = None
        self.turn_id = None
        self.turn_checkpoint = self.writing_checkpoint = None
        self.checkpoint_kind = None
        self.command_claim = None
        self.queue_claims, self.input_claims = (), ()
        self.interrupted = False


# ---------------------------------------------------------------------------
# Payload checks (run before any rule, so a rejected event changes nothing)
# ---------------------------------------------------------------------------


def _payload_problem(m: TurnMachine, event: Event) -> str | None:
    if isinstance(event, Start) and not event.turn_id:
        return "the turn id is empty"
    if isinstance(event, LeaseAcquired | LeaseRenewed):
        lease = event.lease
        if lease.session_id != m.session_id:
            return f"the lease is for session {lease.session_id!r}, not {m.session_id!r}"
        if not lease.owner.same_incarnation(m.owner):
            return f"the lease belongs to {lease.owner.owner_id!r}, not to this owner"
        held = m.lease
        if isinstance(event, LeaseRenewed) and held and lease.fencing_token != held.fencing_token:
            return (
                f"renewal changed the lease generation from {held.fencing_token} "
                f"to {lease.fencing_token}"
            )
    if isinstance(event, CommandClaimed | InputsClaimed | TurnWorkClaimed):
        return _claim_problem(m, event.claim)
    if isinstance(event, CheckpointWorkClaimed):
        return _claim_problem(m, event.inputs) or _claim_problem(m, event.work)
    if isinstance(event, CheckpointReached | TurnFinished):
        floor = (m.turn_checkpoint or m.committed_checkpoint).turn_index
        if event.turn_index < floor:
            return f"turn index {event.turn_index} is below the last checkpoint's {floor}"
    return None


def _claim_problem(m: TurnMachine, claim: QueuedWorkClaim | TurnInputClaim | None) -> str | None:
    if claim is None:
        return None
    if claim.session_id != m.session_id:
        return f"claim {claim.claim_id!r} is for session {claim.session_id!r}"
    if m.lease is not None and claim.session_lease_generation != m.lease.fencing_token:
        return (
            f"claim {claim.claim_id!r} was made under lease generation "
            f"{claim.session_lease_generation}, the machine holds {m.lease.fencing_token}"
        )
    return None


# ---------------------------------------------------------------------------
# Actions: what each rule does to the machine and which effects it returns
# ---------------------------------------------------------------------------

Action = Callable[[TurnMachine, Any], list[Effect]]


def _start(m: TurnMachine, e: Start) -> list[Effect]:
    m.turn_id = e.turn_id
    m.failure = None
    return [AcquireLease(m.session_id, m.owner, m.timings.ttl_ms)]


def _reclaim(m: TurnMachine, e: LeaseBusy) -> list[Effect]:
    return [ReclaimLease(m.session_id, m.owner, e.holder.fence(), m.timings.ttl_ms)]


def _busy(m: TurnMachine, e: LeaseBusy) -> list[Effect]:
    m._end_cycle()
    return []


def _lease_acquired(m: TurnMachine, e: LeaseAcquired) -> list[Effect]:
    m.lease = e.lease
    return [InspectPendingWork(m.session_id)]


def _claim_leading_command(m: TurnMachine, e: Event) -> list[Effect]:
    return [ClaimLeadingCommand(m.session_id, m._fence(), m.owner)]


def _claim_next_turn_inputs(m: TurnMachine, e: Event) -> list[Effect]:
    return [ClaimNextTurnInputs(m.session_id, m._fence(), m.owner, m.max_inputs)]


def _command_claimed(m: TurnMachine, e: CommandClaimed) -> list[Effect]:
    assert e.claim is not None
    m.command_claim = e.claim
    commit = RuntimeCommit(
        session_id=m.session_id,
        checkpoint=m.committed_checkpoint,
        session_execution_lease=m._fence(),
        completed_queue_claims=(e.claim.completion(),),
    )
    return [ApplySessionCommand(e.claim.batches), CommitSessionCommand(commit)]


def _command_committed(m: TurnMachine, e: CommitSucceeded) -> list[Effect]:
    m.command_claim = None
    return _claim_leading_command(m, e)


def _inputs_claimed(m: TurnMachine, e: InputsClaimed) -> list[Effect]:
    assert e.claim is not None
    m.input_claims = (e.claim,)
    return [RunTurn(m._turn(), e.claim.inputs, ())]


def _claim_idle_turn_work(m: TurnMachine, e: Event) -> list[Effect]:
    return [ClaimQueuedWork(m.session_id, m._fence(), m.owner, ClaimBoundary.IDLE, m.max_batches)]


def _turn_work_claimed(m: TurnMachine, e: TurnWorkClaimed) -> list[Effect]:
    assert e.claim is not None
    m.queue_claims = (e.claim,)
    return [RunTurn(m._turn(), (), e.claim.batches)]


def _nothing_to_do(m: TurnMachine, e: Event) -> list[Effect]:
    return m._wind_down()


def _write_checkpoint(m: TurnMachine, e: CheckpointReached) -> list[Effect]:
    checkpoint = SessionCheckpoint(e.turn_index, dict(e.state))
    m.turn_checkpoint = m.writing_checkpoint = checkpoint
    m.checkpoint_kind = e.kind
    commit = RuntimeCommit(
        session_id=m.session_id, checkpoint=checkpoint, session_execution_lease=m._fence()
    )
    return [WriteCheckpoint(commit)]


def _checkpoint_settled(m: TurnMachine, committed: bool) -> None:
    if committed and m.writing_checkpoint is not None:
        m.committed_checkpoint = m.writing_checkpoint
    m.writing_checkpoint = None


def _claim_checkpoint_work(m: TurnMachine, e: CommitSucceeded | CommitFailed) -> list[Effect]:
    _checkpoint_settled(m, isinstance(e, CommitSucceeded))
    return [
        ClaimCheckpointWork(
            m.session_id,
            m._fence(),
            m.owner,
            m._turn(),
            m._checkpoint_kind(),
            m.max_inputs,
            m.max_batches,
        )
    ]


def _join_checkpoint_work(m: TurnMachine, e: CheckpointWorkClaimed) -> list[Effect]:
    m.checkpoint_kind = None
    if e.inputs is not None:
        m.input_claims += (e.inputs,)
    if e.work is not None:
        m.queue_claims += (e.work,)
    inputs = e.inputs.inputs if e.inputs else ()
    batches = e.work.batches if e.work else ()
    return [DeliverCheckpointWork(m._turn(), inputs, batches)]


def _no_checkpoint_work(m: TurnMachine, e: CheckpointWorkClaimed) -> list[Effect]:
    m.checkpoint_kind = None
    return []


def _finish_turn(m: TurnMachine, e: TurnFinished) -> list[Effect]:
    m.turn_checkpoint = SessionCheckpoint(e.turn_index, dict(e.state))
    return [m._commit_turn()]


def _interrupt_turn(m: TurnMachine, e: Interrupt) -> list[Effect]:
    m.interrupted = True
    return [m._commit_turn()]


def _interrupt_pending(m: TurnMachine, e: Interrupt) -> list[Effect]:
    m.interrupted = True
    return []


def _ignore(m: TurnMachine, e: Event) -> list[Effect]:
    return []


def _renew(m: TurnMachine, e: RenewDue) -> list[Effect]:
    return [RenewLease(m._fence(), m.timings.ttl_ms)]


def _renewed(m: TurnMachine, e: LeaseRenewed) -> list[Effect]:
    m.lease = e.lease
    return []


def _interrupted_after_checkpoint(
    m: TurnMachine, e: CommitSucceeded | CommitFailed
) -> list[Effect]:
    _checkpoint_settled(m, isinstance(e, CommitSucceeded))
    return [m._commit_turn()]


def _interrupted_after_checkpoint_claim(m: TurnMachine, e: CheckpointWorkClaimed) -> list[Effect]:
    # An interrupted turn takes no new work: hand it back so the commit defers the inputs
    # (they are PendingActive again) and the queued work stays queued.
    effects: list[Effect] = []
    queue = (e.work,) if e.work else ()
    inputs = (e.inputs,) if e.inputs else ()
    if queue or inputs:
        effects.append(AbandonClaims(queue, inputs))
    m.checkpoint_kind = None
    effects.append(m._commit_turn())
    return effects


def _interrupted_after_renewal(m: TurnMachine, e: LeaseRenewed) -> list[Effect]:
    m.lease = e.lease
    return [m._commit_turn()]


def _turn_committed(m: TurnMachine, e: CommitSucceeded) -> list[Effect]:
    if m.turn_checkpoint is not None:
        m.committed_checkpoint = m.turn_checkpoint
    m._end_cycle()
    return []


def _lease_lost(m: TurnMachine, e: LeaseLost) -> list[Effect]:
    return m._hand_back_after_lease_loss()


def _lease_lost_in_turn(m: TurnMachine, e: LeaseLost) -> list[Effect]:
    stop = StopTurn(m._turn(), "session execution lease lost")
    return [stop, *m._hand_back_after_lease_loss()]


def _failed(m: TurnMachine, e: CommitFailed | StoreFailed) -> list[Effect]:
    # lash's StoreCommitFailed: keep the lease (it runs out at its TTL), hand nothing back
    m.failure = e.error
    m._end_cycle()
    return []


def _failed_in_turn(m: TurnMachine, e: CommitFailed | StoreFailed) -> list[Effect]:
    stop = StopTurn(m._turn(), f"store failure: {e.error}")
    return [stop, *_failed(m, e)]


def _failed_draining_commands(m: TurnMachine, e: CommitFailed | StoreFailed) -> list[Effect]:
    m.failure = e.error
    return m._release_and_forget()


def _cancel_once_answered(m: TurnMachine, e: Interrupt) -> list[Effect]:
    return []  # the Cancelling state itself remembers the interrupt


def _cancelled_with_claim(
    m: TurnMachine, e: CommandClaimed | InputsClaimed | TurnWorkClaimed
) -> list[Effect]:
    if isinstance(e, InputsClaimed):
        m.input_claims += (e.claim,) if e.claim else ()
    else:
        m.queue_claims += (e.claim,) if e.claim else ()
    return m._wind_down()


def _cancelled_after_acquisition(m: TurnMachine, e: LeaseAcquired) -> list[Effect]:
    m.lease = e.lease
    return m._wind_down()


def _cancelled_after_command_commit(m: TurnMachine, e: CommitSucceeded) -> list[Effect]:
    m.command_claim = None
    return m._wind_down()


def _reset(m: TurnMachine, e: Reset) -> list[Effect]:
    m.failure = None
    return []


# ---------------------------------------------------------------------------
# Guards
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Guard:
    """A named condition on (machine, event) that selects one rule among several.

    The last rule of every (state, event) pair has a *fallback* guard, which always holds, so
    the guards of a pair are exhaustive by construction.
    """

    name: str
    holds: Callable[[TurnMachine, Any], bool]
    fallback: bool = False


def _fallback(name: str) -> Guard:
    return Guard(name, lambda m, e: True, fallback=True)


ALWAYS = _fallback("")
OTHERWISE = _fallback("otherwise")
HOLDER_DEAD = Guard("holder provably dead", lambda m, e: e.holder_provably_dead)
COMMANDS_FIRST = Guard(
    "commands precede next-turn input",
    lambda m, e: session_commands_go_first(
        e.earliest_command_enqueued_at_ms, e.earliest_next_turn_input_enqueued_at_ms
    ),
)
CLAIMED = Guard("claimed", lambda m, e: e.claim is not None)
NOTHING_CLAIMED = _fallback("nothing claimed")
WORK_CLAIMED = Guard(
    "inputs or work claimed", lambda m, e: e.inputs is not None or e.work is not None
)
INTERRUPTED = Guard("turn interrupted", lambda m, e: m.interrupted)
DRAINING_COMMANDS = Guard(
    "a command claim was outstanding", lambda m, e: m.awaiting is ClaimLeadingCommand
)


# ---------------------------------------------------------------------------
# The transition table
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EffectSlot:
    """One effect a rule emits; `when` names the condition of an effect that may be absent."""

    effect: type[Effect]
    when: str | None = None


def _slots(*items: type[Effect] | tuple[type[Effect], str]) -> tuple[EffectSlot, ...]:
    return tuple(EffectSlot(*i) if isinstance(i, tuple) else EffectSlot(i) for i in items)


@dataclass(frozen=True)
class Transition:
    state: TurnState
    event: type[Event]
    guard: Guard
    target: TurnState
    effects: tuple[EffectSlot, ...]
    action: Action
    note: str
    outcome: CycleOutcome | None = None


S = TurnState
IF_CLAIMS = "claims are held"
IF_TURN_CLAIMS = "the turn holds claims"
IF_NEW_WORK = "the claim granted work"

_WIND_DOWN = _slots((AbandonClaims, IF_CLAIMS), ReleaseLease)
_STOP_AND_HAND_BACK = _slots(StopTurn, (AbandonClaims, IF_TURN_CLAIMS))


def _rule(
    state: TurnState,
    event: type[Event],
    target: TurnState,
    action: Action,
    effects: tuple[EffectSlot, ...] | list[type[Effect] | tuple[type[Effect], str]],
    note: str,
    guard: Guard = ALWAYS,
    outcome: CycleOutcome | None = None,
) -> Transition:
    slots = effects if isinstance(effects, tuple) else _slots(*effects)
    return Transition(state, event, guard, target, slots, action, note, outcome)


Out = CycleOutcome

# fmt: off
_RULES: tuple[Transition, ...] = (
    # -- Idle ------------------------------------------------------------------------------------
    _rule(S.IDLE, Start, S.ACQUIRING_LEASE, _start,
          [AcquireLease], "Ask for the lease."),
    _rule(S.IDLE, Close, S.CLOSED, _ignore,
          [], "Shut down."),
    # -- AcquiringLease --------------------------------------------------------------------------
    _rule(S.ACQUIRING_LEASE, LeaseAcquired, S.INSPECTING_QUEUE, _lease_acquired,
          [InspectPendingWork], "Look at what is pending."),
    _rule(S.ACQUIRING_LEASE, LeaseBusy, S.RECLAIMING_LEASE, _reclaim,
          [ReclaimLease], "Take the lease over, compare-and-swap on the observed holder.",
          guard=HOLDER_DEAD),
    _rule(S.ACQUIRING_LEASE, LeaseBusy, S.IDLE, _busy,
          [], "Another owner runs this session.",
          guard=OTHERWISE, outcome=Out.BUSY),
    _rule(S.ACQUIRING_LEASE, StoreFailed, S.FAILED, _failed,
          [], "No lease was granted; nothing to hand back.",
          outcome=Out.FAILED),
    _rule(S.ACQUIRING_LEASE, Interrupt, S.CANCELLING, _cancel_once_answered,
          [], "Wait for the acquisition to answer."),
    # -- ReclaimingLease -------------------------------------------------------------------------
    _rule(S.RECLAIMING_LEASE, LeaseAcquired, S.INSPECTING_QUEUE, _lease_acquired,
          [InspectPendingWork], "Took over a dead holder's lease (new generation)."),
    _rule(S.RECLAIMING_LEASE, LeaseBusy, S.IDLE, _busy,
          [], "The observation was stale or the holder is alive; reclaim at most once.",
          outcome=Out.BUSY),
    _rule(S.RECLAIMING_LEASE, StoreFailed, S.FAILED, _failed,
          [], "No lease was granted; nothing to hand back.",
          outcome=Out.FAILED),
    _rule(S.RECLAIMING_LEASE, Interrupt, S.CANCELLING, _cancel_once_answered,
          [], "Wait for the reclaim to answer."),
    # -- InspectingQueue -------------------------------------------------------------------------
    _rule(S.INSPECTING_QUEUE, PendingWorkInspected, S.CLAIMING_COMMANDS, _claim_leading_command,
          [ClaimLeadingCommand], "Drain leading session commands first.",
          guard=COMMANDS_FIRST),
    _rule(S.INSPECTING_QUEUE, PendingWorkInspected, S.CLAIMING_INPUTS, _claim_next_turn_inputs,
          [ClaimNextTurnInputs], "Next-turn input goes first.",
          guard=OTHERWISE),
    _rule(S.INSPECTING_QUEUE, StoreFailed, S.FAILED, _failed,
          [], "Keep the lease to run out at its TTL (lash returns without releasing).",
          outcome=Out.FAILED),
    _rule(S.INSPECTING_QUEUE, Interrupt, S.CANCELLING, _cancel_once_answered,
          [], "Wait for the listing to answer."),
    # -- ClaimingCommands ------------------------------------------------------------------------
    _rule(S.CLAIMING_COMMANDS, CommandClaimed, S.COMMITTING_COMMAND, _command_claimed,
          [ApplySessionCommand, CommitSessionCommand],
          "Apply the command, then settle it in its own commit that keeps the lease.",
          guard=CLAIMED),
    _rule(S.CLAIMING_COMMANDS, CommandClaimed, S.CLAIMING_INPUTS, _claim_next_turn_inputs,
          [ClaimNextTurnInputs], "No command leads any more.",
          guard=NOTHING_CLAIMED),
    _rule(S.CLAIMING_COMMANDS, LeaseLost, S.IDLE, _lease_lost,
          [], "Abandon the cycle; nothing is held.",
          outcome=Out.LEASE_LOST),
    _rule(S.CLAIMING_COMMANDS, StoreFailed, S.FAILED, _failed_draining_commands,
          [ReleaseLease], "A failed command drain releases the lease.",
          outcome=Out.FAILED),
    _rule(S.CLAIMING_COMMANDS, Interrupt, S.CANCELLING, _cancel_once_answered,
          [], "Wait for the claim to answer."),
    # -- CommittingCommand -----------------------------------------------------------------------
    _rule(S.COMMITTING_COMMAND, CommitSucceeded, S.CLAIMING_COMMANDS, _command_committed,
          [ClaimLeadingCommand], "The command is settled; look for the next one."),
    _rule(S.COMMITTING_COMMAND, CommitFailed, S.FAILED, _failed_draining_commands,
          [ReleaseLease], "Release; the command claim is not handed back, the next "
          "generation supersedes it.",
          outcome=Out.FAILED),
    _rule(S.COMMITTING_COMMAND, LeaseLost, S.IDLE, _lease_lost,
          [], "Abandon the cycle; the command claim is superseded by the next generation.",
          outcome=Out.LEASE_LOST),
    _rule(S.COMMITTING_COMMAND, Interrupt, S.CANCELLING, _cancel_once_answered,
          [], "Wait for the commit to answer."),
    # -- ClaimingInputs --------------------------------------------------------------------------
    _rule(S.CLAIMING_INPUTS, InputsClaimed, S.ACTIVE_TURN, _inputs_claimed,
          [RunTurn], "Run a turn with the inputs.",
          guard=CLAIMED),
    _rule(S.CLAIMING_INPUTS, InputsClaimed, S.CLAIMING_TURN_WORK, _claim_idle_turn_work,
          [ClaimQueuedWork], "No input: look for turn work at the Idle boundary.",
          guard=NOTHING_CLAIMED),
    _rule(S.CLAIMING_INPUTS, LeaseLost, S.IDLE, _lease_lost,
          [], "Abandon the cycle; nothing is held.",
          outcome=Out.LEASE_LOST),
    _rule(S.CLAIMING_INPUTS, StoreFailed, S.FAILED, _failed,
          [], "Keep the lease to run out at its TTL.",
          outcome=Out.FAILED),
    _rule(S.CLAIMING_INPUTS, Interrupt, S.CANCELLING, _cancel_once_answered,
          [], "Wait for the claim to answer."),
    # -- ClaimingTurnWork ------------------------------------------------------------------------
    _rule(S.CLAIMING_TURN_WORK, TurnWorkClaimed, S.ACTIVE_TURN, _turn_work_claimed,
          [RunTurn], "Run a turn with the queued work.",
          guard=CLAIMED),
    _rule(S.CLAIMING_TURN_WORK, TurnWorkClaimed, S.IDLE, _nothing_to_do,
          [ReleaseLease], "Nothing to do: release the lease.",
          guard=NOTHING_CLAIMED, outcome=Out.NOTHING_TO_DO),
    _rule(S.CLAIMING_TURN_WORK, LeaseLost, S.IDLE, _lease_lost,
          [], "Abandon the cycle; nothing is held.",
          outcome=Out.LEASE_LOST),
    _rule(S.CLAIMING_TURN_WORK, StoreFailed, S.FAILED, _failed,
          [], "Keep the lease to run out at its TTL.",
          outcome=Out.FAILED),
    _rule(S.CLAIMING_TURN_WORK, Interrupt, S.CANCELLING, _cancel_once_answered,
          [], "Wait for the claim to answer."),
    # -- ActiveTurn ------------------------------------------------------------------------------
    _rule(S.ACTIVE_TURN, CheckpointReached, S.WRITING_CHECKPOINT, _write_checkpoint,
          [WriteCheckpoint], "Persist the progress checkpoint first."),
    _rule(S.ACTIVE_TURN, TurnFinished, S.COMMITTING, _finish_turn,
          [CommitTurn], "Settle every claim, defer unclaimed active-turn input, release."),
    _rule(S.ACTIVE_TURN, Interrupt, S.COMMITTING, _interrupt_turn,
          [CommitTurn], "Commit the turn as interrupted from its last checkpoint."),
    _rule(S.ACTIVE_TURN, RenewDue, S.RENEWING_LEASE, _renew,
          [RenewLease], "Extend."),
    _rule(S.ACTIVE_TURN, LeaseLost, S.IDLE, _lease_lost_in_turn,
          _STOP_AND_HAND_BACK, "Stop the turn; nothing is committed; hand its claims back now.",
          outcome=Out.LEASE_LOST),
    # -- WritingCheckpoint -----------------------------------------------------------------------
    _rule(S.WRITING_CHECKPOINT, CommitSucceeded, S.CLAIMING_CHECKPOINT_WORK, _claim_checkpoint_work,
          [ClaimCheckpointWork], "Claim what the ActiveTurnCheckpoint boundary admits."),
    _rule(S.WRITING_CHECKPOINT, CommitFailed, S.CLAIMING_CHECKPOINT_WORK, _claim_checkpoint_work,
          [ClaimCheckpointWork], "The boundary is not persisted; the turn goes on."),
    _rule(S.WRITING_CHECKPOINT, LeaseLost, S.IDLE, _lease_lost_in_turn,
          _STOP_AND_HAND_BACK, "Stop the turn; nothing is committed; hand its claims back now.",
          outcome=Out.LEASE_LOST),
    _rule(S.WRITING_CHECKPOINT, Interrupt, S.INTERRUPTING, _interrupt_pending,
          [], "Wait for the checkpoint to answer."),
    # -- ClaimingCheckpointWork ------------------------------------------------------------------
    _rule(S.CLAIMING_CHECKPOINT_WORK, CheckpointWorkClaimed, S.ACTIVE_TURN, _join_checkpoint_work,
          [DeliverCheckpointWork], "The claims join the turn; they settle at its commit.",
          guard=WORK_CLAIMED),
    _rule(S.CLAIMING_CHECKPOINT_WORK, CheckpointWorkClaimed, S.ACTIVE_TURN, _no_checkpoint_work,
          [], "Nothing admitted; the turn goes on.",
          guard=NOTHING_CLAIMED),
    _rule(S.CLAIMING_CHECKPOINT_WORK, LeaseLost, S.IDLE, _lease_lost_in_turn,
          _STOP_AND_HAND_BACK, "Stop the turn; nothing is committed; hand its claims back now.",
          outcome=Out.LEASE_LOST),
    _rule(S.CLAIMING_CHECKPOINT_WORK, StoreFailed, S.FAILED, _failed_in_turn,
          [StopTurn], "Stop the turn; keep the lease to run out at its TTL, hand nothing back.",
          outcome=Out.FAILED),
    _rule(S.CLAIMING_CHECKPOINT_WORK, Interrupt, S.INTERRUPTING, _interrupt_pending,
          [], "Wait for the claim to answer."),
    # -- RenewingLease ---------------------------------------------------------------------------
    _rule(S.RENEWING_LEASE, LeaseRenewed, S.ACTIVE_TURN, _renewed,
          [], "Same generation, later expiry."),
    _rule(S.RENEWING_LEASE, LeaseLost, S.IDLE, _lease_lost_in_turn,
          _STOP_AND_HAND_BACK, "An expired lease cannot be renewed: stop the turn, hand its "
          "claims back now.",
          outcome=Out.LEASE_LOST),
    _rule(S.RENEWING_LEASE, Interrupt, S.INTERRUPTING, _interrupt_pending,
          [], "Wait for the renewal to answer."),
    # -- Interrupting ----------------------------------------------------------------------------
    _rule(S.INTERRUPTING, CommitSucceeded, S.COMMITTING, _interrupted_after_checkpoint,
          [CommitTurn], "Checkpoint written; commit the interrupted turn."),
    _rule(S.INTERRUPTING, CommitFailed, S.COMMITTING, _interrupted_after_checkpoint,
          [CommitTurn], "Checkpoint not written; commit the interrupted turn anyway."),
    _rule(S.INTERRUPTING, CheckpointWorkClaimed, S.COMMITTING, _interrupted_after_checkpoint_claim,
          [(AbandonClaims, IF_NEW_WORK), CommitTurn],
          "Hand the new work back (its inputs are then deferred) and commit."),
    _rule(S.INTERRUPTING, LeaseRenewed, S.COMMITTING, _interrupted_after_renewal,
          [CommitTurn], "Commit the interrupted turn."),
    _rule(S.INTERRUPTING, LeaseLost, S.IDLE, _lease_lost_in_turn,
          _STOP_AND_HAND_BACK, "Nothing is committed; hand the turn's claims back now.",
          outcome=Out.LEASE_LOST),
    _rule(S.INTERRUPTING, StoreFailed, S.FAILED, _failed_in_turn,
          [StopTurn], "Stop the turn; keep the lease to run out at its TTL, hand nothing back.",
          outcome=Out.FAILED),
    _rule(S.INTERRUPTING, Interrupt, S.INTERRUPTING, _ignore,
          [], "Already stopping."),
    # -- Committing ------------------------------------------------------------------------------
    _rule(S.COMMITTING, CommitSucceeded, S.IDLE, _turn_committed,
          [], "The interrupted turn is durable; the lease was released with it.",
          guard=INTERRUPTED, outcome=Out.INTERRUPTED),
    _rule(S.COMMITTING, CommitSucceeded, S.IDLE, _turn_committed,
          [], "The turn is durable; the lease was released with it.",
          guard=OTHERWISE, outcome=Out.COMMITTED),
    _rule(S.COMMITTING, CommitFailed, S.FAILED, _failed,
          [], "Keep the lease to run out at its TTL and hand nothing back; the claims are "
          "superseded by the next generation.",
          outcome=Out.FAILED),
    _rule(S.COMMITTING, LeaseLost, S.IDLE, _lease_lost,
          [(AbandonClaims, IF_TURN_CLAIMS)],
          "The fence was rejected: nothing is completed; hand the claims back now.",
          outcome=Out.LEASE_LOST),
    _rule(S.COMMITTING, Interrupt, S.COMMITTING, _ignore,
          [], "The fenced commit decides."),
    # -- Cancelling ------------------------------------------------------------------------------
    _rule(S.CANCELLING, LeaseAcquired, S.IDLE, _cancelled_after_acquisition,
          [ReleaseLease], "Nothing was claimed yet: release.",
          outcome=Out.CANCELLED),
    _rule(S.CANCELLING, LeaseBusy, S.IDLE, _busy,
          [], "No lease; nothing to undo.",
          outcome=Out.CANCELLED),
    _rule(S.CANCELLING, PendingWorkInspected, S.IDLE, _nothing_to_do,
          [ReleaseLease], "Release.",
          outcome=Out.CANCELLED),
    _rule(S.CANCELLING, CommandClaimed, S.IDLE, _cancelled_with_claim,
          _WIND_DOWN, "Hand the command back and release.",
          outcome=Out.CANCELLED),
    _rule(S.CANCELLING, CommitSucceeded, S.IDLE, _cancelled_after_command_commit,
          [ReleaseLease], "The command is settled; release.",
          outcome=Out.CANCELLED),
    _rule(S.CANCELLING, CommitFailed, S.FAILED, _failed_draining_commands,
          [ReleaseLease], "A failed command drain releases the lease; nothing is handed back.",
          outcome=Out.FAILED),
    _rule(S.CANCELLING, InputsClaimed, S.IDLE, _cancelled_with_claim,
          _WIND_DOWN, "Hand the inputs back and release.",
          outcome=Out.CANCELLED),
    _rule(S.CANCELLING, TurnWorkClaimed, S.IDLE, _cancelled_with_claim,
          _WIND_DOWN, "Hand the work back and release.",
          outcome=Out.CANCELLED),
    _rule(S.CANCELLING, LeaseLost, S.IDLE, _lease_lost,
          [], "Abandon the cycle; no turn claims exist yet.",
          outcome=Out.LEASE_LOST),
    _rule(S.CANCELLING, StoreFailed, S.FAILED, _failed_draining_commands,
          [ReleaseLease], "A failed command drain releases the lease.",
          guard=DRAINING_COMMANDS, outcome=Out.FAILED),
    _rule(S.CANCELLING, StoreFailed, S.FAILED, _failed,
          [], "As outside Cancelling: nothing granted, or keep the lease to run out at its TTL.",
          guard=OTHERWISE, outcome=Out.FAILED),
    _rule(S.CANCELLING, Interrupt, S.CANCELLING, _ignore,
          [], "Already stopping."),
    # -- Failed ----------------------------------------------------------------------------------
    _rule(S.FAILED, Reset, S.IDLE, _reset,
          [], "The host saw the failure."),
    _rule(S.FAILED, Close, S.CLOSED, _ignore,
          [], "Shut down."),
)
# fmt: on


def _build_table(
    rules: tuple[Transition, ...],
) -> dict[tuple[TurnState, type[Event]], tuple[Transition, ...]]:
    table: dict[tuple[TurnState, type[Event]], tuple[Transition, ...]] = {}
    for rule in rules:
        key = (rule.state, rule.event)
        previous = table.get(key, ())
        if previous and previous[-1].guard.fallback:
            raise AssertionError(f"{key}: a rule after an unconditional one is unreachable")
        table[key] = (*previous, rule)
    for key, group in table.items():
        if not group[-1].guard.fallback:
            raise AssertionError(f"{key}: the last rule must be unconditional")
    return table


#: The rules of the machine: (state, event type) -> candidate transitions, first guard wins.
TRANSITIONS: Mapping[tuple[TurnState, type[Event]], tuple[Transition, ...]] = _build_table(_RULES)


def _check_effects(rule: Transition, effects: list[Effect]) -> None:
    """The effects an action returned must be the ones its rule documents, in order; an
    effect with a condition may be absent, every other one must be there."""
    position = 0
    conforms = True
    for slot in rule.effects:
        if position < len(effects) and type(effects[position]) is slot.effect:
            position += 1
        elif slot.when is None:
            conforms = False
            break
    if not conforms or position != len(effects):
        raise AssertionError(
            f"{rule.state.value} x {rule.event.__name__} emitted "
            f"{[type(e).__name__ for e in effects]}, documented "
            f"{[(s.effect.__name__, s.when) for s in rule.effects]}"
        )


def _awaited(effects: list[Effect]) -> type[StoreEffect] | None:
    awaited = [type(e) for e in effects if isinstance(e, StoreEffect) and e.replies]
    if len(awaited) > 1:
        raise AssertionError(f"more than one store operation outstanding: {awaited}")
    return awaited[0] if awaited else None
