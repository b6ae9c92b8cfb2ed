"""The turn machine's driver: the one place where the machine's effects meet a store.

Theory of operation
-------------------
:class:`TurnDriver` owns a :class:`~lashspec.kernel.machine.TurnMachine` and a
:class:`~lashspec.kernel.store.Store`.  :meth:`TurnDriver.feed` hands an event to the machine
and performs the effects it returns, in order:

* a *store effect* becomes exactly one store call; its result, or the typed
  :class:`~lashspec.kernel.errors.StoreError` it raised, becomes the event that answers the
  effect (``SessionExecutionLeaseExpired`` -> ``LeaseLost``; any other error ->
  ``CommitFailed`` for commits, ``StoreFailed`` for the rest, ``LeaseLost`` for a renewal,
  which cannot be retried once the lease is gone), and that event is fed back at once;
* before a ``CommitTurn`` reaches the store, the driver checks that the commit settles every
  claim the turn holds (``RuntimeCommit.validate_claim_settlement``, lash's turn-boundary
  check); ``UnsettledQueuedWorkClaim`` / ``UnsettledTurnInputClaim`` answer it as
  ``CommitFailed`` and the store is not touched;
* ``ReleaseLease`` and ``AbandonClaims`` expect no answer: an error there is recorded in
  :attr:`TurnDriver.store_errors` and otherwise ignored (the lease expires, superseded
  claims are harmless);
* a *host effect* (``RunTurn``, ``DeliverCheckpointWork``, ``ApplySessionCommand``,
  ``StopTurn``) is passed to the optional ``on_host_effect`` callback as it comes and
  returned to the caller.

So one call runs until the machine waits for the host: a turn is running, or the cycle
ended.  The host then reports progress with :meth:`reach_checkpoint`,
:meth:`finish_turn` or :meth:`interrupt`, and calls :meth:`renew_if_due` while a long turn
runs.  The driver reads its clock only to decide when a renewal is due.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from .clock import Clock, LivenessOracle, SystemClock, is_definitely_dead_for_claimant
from .errors import SessionExecutionLeaseExpired, StoreError
from .machine import (
    DEFAULT_MAX_BATCHES,
    DEFAULT_MAX_INPUTS,
    AbandonClaims,
    AcquireLease,
    CheckpointReached,
    CheckpointWorkClaimed,
    ClaimCheckpointWork,
    ClaimLeadingCommand,
    ClaimNextTurnInputs,
    ClaimQueuedWork,
    Close,
    CommandClaimed,
    CommitFailed,
    CommitSessionCommand,
    CommitSucceeded,
    CommitTurn,
    CycleOutcome,
    Effect,
    Event,
    HostEffect,
    InputsClaimed,
    InspectPendingWork,
    Interrupt,
    LeaseAcquired,
    LeaseBusy,
    LeaseLost,
    LeaseRenewed,
    PendingWorkInspected,
    ReclaimLease,
    ReleaseLease,
    RenewDue,
    RenewLease,
    Reset,
    Start,
    StoreEffect,
    StoreFailed,
    TurnFinished,
    TurnMachine,
    TurnState,
    TurnWorkClaimed,
    WriteCheckpoint,
)
from .store import Store
from .types import (
    Acquired,
    CheckpointKind,
    JsonValue,
    LeaseClaimOutcome,
    LeaseOwnerIdentity,
    LeaseTimings,
    QueuedWorkClass,
    RuntimeCommitResult,
    SessionCheckpoint,
    SessionExecutionLease,
    TurnInputState,
)

HostEffectCallback = Callable[[HostEffect], None]


class TurnDriver:
    """Runs one session's :class:`TurnMachine` against a store."""

    def __init__(
        self,
        store: Store,
        session_id: str,
        owner: LeaseOwnerIdentity,
        *,
        clock: Clock | None = None,
        liveness: LivenessOracle | None = None,
        timings: LeaseTimings | None = None,
        checkpoint: SessionCheckpoint | None = None,
        max_inputs: int = DEFAULT_MAX_INPUTS,
        max_batches: int = DEFAULT_MAX_BATCHES,
        on_host_effect: HostEffectCallback | None = None,
    ) -> None:
        self.store = store
        self.clock: Clock = clock or SystemClock()
        #: decides whether a busy holder is provably dead; without one, nobody ever is
        self.liveness = liveness
        self.timings = timings or LeaseTimings()
        self.on_host_effect = on_host_effect
        if checkpoint is None:
            read = store.load_session()
            bound_here = read is not None and read.session_id == session_id
            checkpoint = read.checkpoint if read is not None and bound_here else None
        self.machine = TurnMachine(
            session_id,
            owner,
            timings=self.timings,
            checkpoint=checkpoint,
            max_inputs=max_inputs,
            max_batches=max_batches,
        )
        #: every event fed to the machine with the effects it answered
        self.log: list[tuple[Event, tuple[Effect, ...]]] = []
        self.commit_results: list[RuntimeCommitResult] = []
        #: every store error met, answered or ignored, in order
        self.store_errors: list[StoreError] = []

    # -- state -----------------------------------------------------------------------------

    @property
    def session_id(self) -> str:
        return self.machine.session_id

    @property
    def owner(self) -> LeaseOwnerIdentity:
        return self.machine.owner

    @property
    def state(self) -> TurnState:
        return self.machine.state

    @property
    def lease(self) -> SessionExecutionLease | None:
        return self.machine.lease

    @property
    def last_outcome(self) -> CycleOutcome | None:
        return self.machine.last_outcome

    # -- host API --------------------------------------------------------------------------

    def start(self, turn_id: str) -> list[HostEffect]:
        """Look for work and start turn `turn_id` if there is any."""
        return self.feed(Start(turn_id))

    def reach_checkpoint(
        self,
        turn_index: int,
        kind: CheckpointKind = CheckpointKind.AFTER_WORK,
        state: Mapping[str, JsonValue] | None = None,
    ) -> list[HostEffect]:
        return self.feed(CheckpointReached(turn_index, kind, dict(state or {})))

    def finish_turn(
        self, turn_index: int, state: Mapping[str, JsonValue] | None = None
    ) -> list[HostEffect]:
        return self.feed(TurnFinished(turn_index, dict(state or {})))

    def interrupt(self) -> list[HostEffect]:
        return self.feed(Interrupt())

    def renew_if_due(self) -> list[HostEffect]:
        """Renew the lease once a renew interval has passed since it was granted or renewed."""
        lease = self.machine.lease
        if lease is None or not self.machine.accepts(RenewDue):
            return []
        granted_at = lease.expires_at_ms - self.timings.ttl_ms
        if self.clock.now_ms() < granted_at + self.timings.renew_interval_ms:
            return []
        return self.feed(RenewDue())

    def reset(self) -> list[HostEffect]:
        return self.feed(Reset())

    def close(self) -> list[HostEffect]:
        return self.feed(Close())

    # -- the loop --------------------------------------------------------------------------

    def feed(self, event: Event) -> list[HostEffect]:
        """Give `event` to the machine and perform effects until it waits for the host."""
        host_effects: list[HostEffect] = []
        pending: Event | None = event
        while pending is not None:
            effects = self.machine.handle(pending)
            self.log.append((pending, tuple(effects)))
            pending = None
            for effect in effects:
                if isinstance(effect, HostEffect):
                    host_effects.append(effect)
                    if self.on_host_effect is not None:
                        self.on_host_effect(effect)
                elif isinstance(effect, StoreEffect):
                    reply = self.execute(effect)
                    if reply is not None:
                        pending = reply  # the machine keeps at most one operation outstanding
        return host_effects

    def execute(self, effect: StoreEffect) -> Event | None:
        """Perform one store effect; return the event that answers it (None if none is due)."""
        try:
            return self._call_store(effect)
        except StoreError as error:
            self.store_errors.append(error)
            if not effect.replies:
                return None
            # the effect class says whether the call presents the lease; if it does, the
            # lease being gone is lease loss, not a failure of the call
            if isinstance(error, SessionExecutionLeaseExpired) and effect.uses_lease:
                return LeaseLost(error)
            if CommitFailed in effect.replies:
                return CommitFailed(error)
            if StoreFailed in effect.replies:
                return StoreFailed(error)
            return LeaseLost(error)  # a renewal error is terminal lease loss

    def _call_store(self, effect: StoreEffect) -> Event | None:
        store = self.store
        match effect:
            case AcquireLease():
                outcome = store.try_claim_session_execution_lease(
                    effect.session_id, effect.owner, effect.ttl_ms
                )
                return self._lease_outcome(outcome)
            case ReclaimLease():
                outcome = store.reclaim_session_execution_lease(
                    effect.session_id, effect.claimant, effect.observed_holder, effect.ttl_ms
                )
                return self._lease_outcome(outcome)
            case InspectPendingWork():
                return self._inspect(effect.session_id)
            case ClaimLeadingCommand():
                return CommandClaimed(
                    store.claim_leading_ready_session_command(
                        effect.session_id, effect.fence, effect.owner
                    )
                )
            case ClaimNextTurnInputs():
                return InputsClaimed(
                    store.claim_next_turn_inputs(
                        effect.session_id, effect.fence, effect.owner, effect.max_inputs
                    )
                )
            case ClaimQueuedWork():
                return TurnWorkClaimed(
                    store.claim_ready_queued_work(
                        effect.session_id,
                        effect.fence,
                        effect.owner,
                        effect.boundary,
                        effect.max_batches,
                    )
                )
            case ClaimCheckpointWork():
                inputs, work = store.claim_checkpoint_work(
                    effect.session_id,
                    effect.fence,
                    effect.owner,
                    effect.turn_id,
                    effect.checkpoint,
                    effect.max_inputs,
                    effect.max_batches,
                )
                return CheckpointWorkClaimed(inputs, work)
            case CommitSessionCommand() | WriteCheckpoint() | CommitTurn():
                if isinstance(effect, CommitTurn):
                    # lash's turn boundary refuses an unsettled claim before the store sees it
                    effect.commit.validate_claim_settlement(
                        effect.originating_queue_claims, effect.originating_turn_input_claims
                    )
                result = store.commit_runtime_state(effect.commit)
                self.commit_results.append(result)
                return CommitSucceeded(result)
            case RenewLease():
                return LeaseRenewed(
                    store.renew_session_execution_lease(effect.fence, effect.ttl_ms)
                )
            case ReleaseLease():
                store.release_session_execution_lease(effect.completion)
                return None
            case AbandonClaims():
                for queue_claim in effect.queue_claims:
                    store.abandon_queued_work_claim(queue_claim)
                for input_claim in effect.input_claims:
                    store.abandon_turn_input_claim(input_claim)
                return None
        raise AssertionError(f"the driver has no store call for {type(effect).__name__}")

    def _lease_outcome(self, outcome: LeaseClaimOutcome) -> Event:
        if isinstance(outcome, Acquired):
            return LeaseAcquired(outcome.lease)
        dead = self.liveness is not None and is_definitely_dead_for_claimant(
            outcome.holder.owner, self.owner, self.liveness
        )
        return LeaseBusy(outcome.holder, dead)

    def _inspect(self, session_id: str) -> PendingWorkInspected:
        commands = [
            batch
            for batch in self.store.list_pending_queued_work(session_id)
            if batch.work_class is QueuedWorkClass.SESSION_COMMAND
        ]
        inputs = [
            row
            for row in self.store.list_pending_turn_inputs(session_id)
            if row.state is TurnInputState.DEFERRED_NEXT_TURN
        ]
        command = min(commands, key=lambda b: (b.enqueued_at_ms, b.enqueue_seq), default=None)
        row = min(inputs, key=lambda i: (i.enqueued_at_ms, i.enqueue_seq), default=None)
        return PendingWorkInspected(
            command.enqueued_at_ms if command is not None else None,
            row.enqueued_at_ms if row is not None else None,
        )
