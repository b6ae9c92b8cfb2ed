"""The turn machine in isolation: its table, rejections, effect contents and generated docs.

``EXPECTED`` below restates every rule of ``lashspec.kernel.machine.TRANSITIONS`` by hand, as
(path to a state, event, guard) -> (next state, effect names, cycle outcome); the tests check
that the machine's table has exactly these rules and that the machine behaves as they say.
"""

from __future__ import annotations

import importlib.util
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lashspec.kernel.errors import (
    BackendFailure,
    MachineLimitsError,
    SessionExecutionLeaseExpired,
    TurnMachineError,
)
from lashspec.kernel.machine import (
    EFFECT_TYPES,
    EVENT_TYPES,
    STATE_DOCS,
    TRANSITIONS,
    AbandonClaims,
    AcquireLease,
    ApplySessionCommand,
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
    DeliverCheckpointWork,
    Effect,
    Event,
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
    Reset,
    RunTurn,
    Start,
    StopTurn,
    StoreEffect,
    StoreFailed,
    TurnFinished,
    TurnMachine,
    TurnState,
    TurnWorkClaimed,
    WriteCheckpoint,
    session_commands_go_first,
)
from lashspec.kernel.types import (
    MERGE_NEVER,
    ActiveTurn,
    ActiveTurnMode,
    CheckpointKind,
    ClaimBoundary,
    DeliveryPolicy,
    LeaseOwnerIdentity,
    LeaseTimings,
    NextTurn,
    NextTurnMode,
    PendingTurnInput,
    ProcessWake,
    ProcessWakeDelivery,
    QueuedWorkBatch,
    QueuedWorkClaim,
    QueuedWorkItem,
    RefreshToolCatalog,
    RuntimeCommitResult,
    SessionCheckpoint,
    SessionCommand,
    SessionExecutionLease,
    SlotPolicy,
    TurnInput,
    TurnInputClaim,
    TurnInputState,
)

from ..runtime_scenarios.dsl import (
    CheckpointPhase,
    CommitPhase,
    LeadingCommandClaimPhase,
    NextTurnInputClaimPhase,
    Phase,
    ReclaimDeadHolderPhase,
    TurnWorkClaimPhase,
    first_phase_order_violation,
)

SESSION = "session-under-test"
OWNER = LeaseOwnerIdentity.opaque("machine-owner")
OTHER = LeaseOwnerIdentity.opaque("other-owner")
ROOT = Path(__file__).resolve().parents[2]

# ---------------------------------------------------------------------------
# Builders of plausible event payloads
# ---------------------------------------------------------------------------


def lease(generation: int, owner: LeaseOwnerIdentity = OWNER) -> SessionExecutionLease:
    return SessionExecutionLease(
        SESSION, owner, f"lease-token-{generation}", generation, 1_000, 61_000
    )


def batch(number: int, command: bool = False) -> QueuedWorkBatch:
    payload: SessionCommand | ProcessWake = (
        SessionCommand(RefreshToolCatalog("test"))
        if command
        else ProcessWake(ProcessWakeDelivery(f"w{number}", SESSION, "p", number, "wake", "d"))
    )
    return QueuedWorkBatch(
        f"qwb-{number}",
        SESSION,
        number,
        None,
        DeliveryPolicy.EARLIEST_SAFE_BOUNDARY,
        SlotPolicy.EXCLUSIVE,
        MERGE_NEVER,
        0,
        0,
        (QueuedWorkItem(f"qwb-{number}:item:0", payload),),
    )


def queue_claim(number: int, generation: int = 1, command: bool = False) -> QueuedWorkClaim:
    return QueuedWorkClaim(
        SESSION,
        f"qwc-{number}",
        OWNER,
        f"claim-token-q{number}",
        1,
        generation,
        (batch(number, command),),
    )


def input_claim(number: int, generation: int = 1, active_turn: str | None = None) -> TurnInputClaim:
    ingress = ActiveTurn(active_turn) if active_turn else NextTurn()
    state = TurnInputState.ACCEPTED if active_turn else TurnInputState.DEFERRED_NEXT_TURN
    row = PendingTurnInput(
        f"ti-{number}", SESSION, number, None, ingress, state, 0, TurnInput.text(f"input {number}")
    )
    mode = ActiveTurnMode(active_turn, CheckpointKind.AFTER_WORK) if active_turn else NextTurnMode()
    return TurnInputClaim(
        SESSION, f"tic-{number}", OWNER, f"claim-token-i{number}", 1, generation, mode, (row,)
    )


RESULT = RuntimeCommitResult(1, "ckpt:test", ())
ERROR = BackendFailure("disk on fire")
LOST = SessionExecutionLeaseExpired(SESSION, "taken over")
HOLDER = lease(7, OTHER)
L1, L2 = lease(1), lease(2)
CMD = queue_claim(1, command=True)
WORK = queue_claim(2)
WAKE_AT_CHECKPOINT = queue_claim(3)
INPUTS = input_claim(4)
ACTIVE_INPUTS = input_claim(5, active_turn="t1")

# ---------------------------------------------------------------------------
# Paths from Idle to every state
# ---------------------------------------------------------------------------

_P: dict[str, list[Event]] = {"idle": []}
_P["acquiring"] = [Start("t1")]
_P["reclaiming"] = [*_P["acquiring"], LeaseBusy(HOLDER, True)]
_P["inspecting"] = [*_P["acquiring"], LeaseAcquired(L1)]
_P["claiming_commands"] = [*_P["inspecting"], PendingWorkInspected(1, 2)]
_P["committing_command"] = [*_P["claiming_commands"], CommandClaimed(CMD)]
_P["claiming_inputs"] = [*_P["inspecting"], PendingWorkInspected(None, None)]
_P["claiming_turn_work"] = [*_P["claiming_inputs"], InputsClaimed(None)]
_P["active_turn"] = [*_P["claiming_inputs"], InputsClaimed(INPUTS)]
_P["writing_checkpoint"] = [*_P["active_turn"], CheckpointReached(1)]
_P["claiming_checkpoint_work"] = [*_P["writing_checkpoint"], CommitSucceeded(RESULT)]
_P["renewing"] = [*_P["active_turn"], RenewDue()]
_P["interrupting_checkpoint"] = [*_P["writing_checkpoint"], Interrupt()]
_P["interrupting_claim"] = [*_P["claiming_checkpoint_work"], Interrupt()]
_P["interrupting_renewal"] = [*_P["renewing"], Interrupt()]
_P["committing"] = [*_P["active_turn"], TurnFinished(2)]
_P["committing_interrupted"] = [*_P["active_turn"], Interrupt()]
_P["cancelling_acquire"] = [*_P["acquiring"], Interrupt()]
_P["cancelling_inspect"] = [*_P["inspecting"], Interrupt()]
_P["cancelling_command_claim"] = [*_P["claiming_commands"], Interrupt()]
_P["cancelling_command_commit"] = [*_P["committing_command"], Interrupt()]
_P["cancelling_inputs"] = [*_P["claiming_inputs"], Interrupt()]
_P["cancelling_turn_work"] = [*_P["claiming_turn_work"], Interrupt()]
_P["failed"] = [*_P["acquiring"], StoreFailed(ERROR)]
_P["closed"] = [Close()]
# a turn holding an input claim and a checkpoint wake, and the paths where it is committing
_P["active_turn_with_wake"] = [
    *_P["claiming_checkpoint_work"],
    CheckpointWorkClaimed(None, WAKE_AT_CHECKPOINT),
]
_P["committing_with_wake"] = [*_P["active_turn_with_wake"], TurnFinished(2)]
PATHS = _P

#: the path used to reach each state when any path will do
CANONICAL = {
    TurnState.IDLE: "idle",
    TurnState.ACQUIRING_LEASE: "acquiring",
    TurnState.RECLAIMING_LEASE: "reclaiming",
    TurnState.INSPECTING_QUEUE: "inspecting",
    TurnState.CLAIMING_COMMANDS: "claiming_commands",
    TurnState.COMMITTING_COMMAND: "committing_command",
    TurnState.CLAIMING_INPUTS: "claiming_inputs",
    TurnState.CLAIMING_TURN_WORK: "claiming_turn_work",
    TurnState.ACTIVE_TURN: "active_turn",
    TurnState.WRITING_CHECKPOINT: "writing_checkpoint",
    TurnState.CLAIMING_CHECKPOINT_WORK: "claiming_checkpoint_work",
    TurnState.RENEWING_LEASE: "renewing",
    TurnState.INTERRUPTING: "interrupting_checkpoint",
    TurnState.COMMITTING: "committing",
    TurnState.CANCELLING: "cancelling_acquire",
    TurnState.FAILED: "failed",
    TurnState.CLOSED: "closed",
}


def machine_at(path: str) -> TurnMachine:
    machine = TurnMachine(SESSION, OWNER)
    for event in PATHS[path]:
        machine.handle(event)
    return machine


# ---------------------------------------------------------------------------
# The expected table, restated by hand
# ---------------------------------------------------------------------------

T = TurnState
O = CycleOutcome  # noqa: E741  # short alias keeps the table readable


@dataclass(frozen=True)
class Row:
    path: str
    event: Event
    guard: str
    target: TurnState
    effects: tuple[str, ...]
    outcome: CycleOutcome | None = None


def row(
    path: str,
    event: Event,
    target: TurnState,
    effects: str = "",
    guard: str = "",
    outcome: CycleOutcome | None = None,
) -> Row:
    return Row(path, event, guard, target, tuple(effects.split()), outcome)


HAND_BACK_AND_RELEASE = "AbandonClaims ReleaseLease"
STOP_AND_HAND_BACK = "StopTurn AbandonClaims"
CLAIMED, NOTHING, OTHERWISE = "claimed", "nothing claimed", "otherwise"
COMMANDS_FIRST = "commands precede next-turn input"

EXPECTED: list[Row] = [
    row("idle", Start("t1"), T.ACQUIRING_LEASE, "AcquireLease"),
    row("idle", Close(), T.CLOSED),
    row("acquiring", LeaseAcquired(L1), T.INSPECTING_QUEUE, "InspectPendingWork"),
    row(
        "acquiring",
        LeaseBusy(HOLDER, True),
        T.RECLAIMING_LEASE,
        "ReclaimLease",
        "holder provably dead",
    ),
    row("acquiring", LeaseBusy(HOLDER, False), T.IDLE, "", OTHERWISE, O.BUSY),
    row("acquiring", StoreFailed(ERROR), T.FAILED, outcome=O.FAILED),
    row("acquiring", Interrupt(), T.CANCELLING),
    row("reclaiming", LeaseAcquired(L1), T.INSPECTING_QUEUE, "InspectPendingWork"),
    row("reclaiming", LeaseBusy(HOLDER, True), T.IDLE, outcome=O.BUSY),
    row("reclaiming", StoreFailed(ERROR), T.FAILED, outcome=O.FAILED),
    row("reclaiming", Interrupt(), T.CANCELLING),
    row(
        "inspecting",
        PendingWorkInspected(1, 2),
        T.CLAIMING_COMMANDS,
        "ClaimLeadingCommand",
        COMMANDS_FIRST,
    ),
    row(
        "inspecting",
        PendingWorkInspected(5, None),
        T.CLAIMING_COMMANDS,
        "ClaimLeadingCommand",
        COMMANDS_FIRST,
    ),
    row(
        "inspecting",
        PendingWorkInspected(2, 2),
        T.CLAIMING_INPUTS,
        "ClaimNextTurnInputs",
        OTHERWISE,
    ),
    row(
        "inspecting",
        PendingWorkInspected(None, None),
        T.CLAIMING_INPUTS,
        "ClaimNextTurnInputs",
        OTHERWISE,
    ),
    row("inspecting", StoreFailed(ERROR), T.FAILED, outcome=O.FAILED),
    row("inspecting", Interrupt(), T.CANCELLING),
    row(
        "claiming_commands",
        CommandClaimed(CMD),
        T.COMMITTING_COMMAND,
        "ApplySessionCommand CommitSessionCommand",
        CLAIMED,
    ),
    row(
        "claiming_commands",
        CommandClaimed(None),
        T.CLAIMING_INPUTS,
        "ClaimNextTurnInputs",
        NOTHING,
    ),
    row("claiming_commands", LeaseLost(LOST), T.IDLE, outcome=O.LEASE_LOST),
    row("claiming_commands", StoreFailed(ERROR), T.FAILED, "ReleaseLease", outcome=O.FAILED),
    row("claiming_commands", Interrupt(), T.CANCELLING),
    row("committing_command", CommitSucceeded(RESULT), T.CLAIMING_COMMANDS, "ClaimLeadingCommand"),
    row(
        "committing_command",
        CommitFailed(ERROR),
        T.FAILED,
        "ReleaseLease",
        outcome=O.FAILED,
    ),
    row("committing_command", LeaseLost(LOST), T.IDLE, outcome=O.LEASE_LOST),
    row("committing_command", Interrupt(), T.CANCELLING),
    row("claiming_inputs", InputsClaimed(INPUTS), T.ACTIVE_TURN, "RunTurn", CLAIMED),
    row("claiming_inputs", InputsClaimed(None), T.CLAIMING_TURN_WORK, "ClaimQueuedWork", NOTHING),
    row("claiming_inputs", LeaseLost(LOST), T.IDLE, outcome=O.LEASE_LOST),
    row("claiming_inputs", StoreFailed(ERROR), T.FAILED, outcome=O.FAILED),
    row("claiming_inputs", Interrupt(), T.CANCELLING),
    row("claiming_turn_work", TurnWorkClaimed(WORK), T.ACTIVE_TURN, "RunTurn", CLAIMED),
    row(
        "claiming_turn_work",
        TurnWorkClaimed(None),
        T.IDLE,
        "ReleaseLease",
        NOTHING,
        O.NOTHING_TO_DO,
    ),
    row("claiming_turn_work", LeaseLost(LOST), T.IDLE, outcome=O.LEASE_LOST),
    row("claiming_turn_work", StoreFailed(ERROR), T.FAILED, outcome=O.FAILED),
    row("claiming_turn_work", Interrupt(), T.CANCELLING),
    row("active_turn", CheckpointReached(1), T.WRITING_CHECKPOINT, "WriteCheckpoint"),
    row("active_turn", TurnFinished(2), T.COMMITTING, "CommitTurn"),
    row("active_turn", Interrupt(), T.COMMITTING, "CommitTurn"),
    row("active_turn", RenewDue(), T.RENEWING_LEASE, "RenewLease"),
    row("active_turn", LeaseLost(None), T.IDLE, STOP_AND_HAND_BACK, outcome=O.LEASE_LOST),
    row(
        "writing_checkpoint",
        CommitSucceeded(RESULT),
        T.CLAIMING_CHECKPOINT_WORK,
        "ClaimCheckpointWork",
    ),
    row(
        "writing_checkpoint",
        CommitFailed(ERROR),
        T.CLAIMING_CHECKPOINT_WORK,
        "ClaimCheckpointWork",
    ),
    row("writing_checkpoint", LeaseLost(LOST), T.IDLE, STOP_AND_HAND_BACK, outcome=O.LEASE_LOST),
    row("writing_checkpoint", Interrupt(), T.INTERRUPTING),
    row(
        "claiming_checkpoint_work",
        CheckpointWorkClaimed(ACTIVE_INPUTS, WAKE_AT_CHECKPOINT),
        T.ACTIVE_TURN,
        "DeliverCheckpointWork",
        "inputs or work claimed",
    ),
    row(
        "claiming_checkpoint_work",
        CheckpointWorkClaimed(None, WAKE_AT_CHECKPOINT),
        T.ACTIVE_TURN,
        "DeliverCheckpointWork",
        "inputs or work claimed",
    ),
    row(
        "claiming_checkpoint_work",
        CheckpointWorkClaimed(None, None),
        T.ACTIVE_TURN,
        "",
        NOTHING,
    ),
    row(
        "claiming_checkpoint_work",
        LeaseLost(LOST),
        T.IDLE,
        STOP_AND_HAND_BACK,
        outcome=O.LEASE_LOST,
    ),
    row("claiming_checkpoint_work", StoreFailed(ERROR), T.FAILED, "StopTurn", outcome=O.FAILED),
    row("claiming_checkpoint_work", Interrupt(), T.INTERRUPTING),
    row("renewing", LeaseRenewed(L1), T.ACTIVE_TURN),
    row("renewing", LeaseLost(LOST), T.IDLE, STOP_AND_HAND_BACK, outcome=O.LEASE_LOST),
    row("renewing", Interrupt(), T.INTERRUPTING),
    row("interrupting_checkpoint", CommitSucceeded(RESULT), T.COMMITTING, "CommitTurn"),
    row("interrupting_checkpoint", CommitFailed(ERROR), T.COMMITTING, "CommitTurn"),
    row(
        "interrupting_claim",
        CheckpointWorkClaimed(ACTIVE_INPUTS, WAKE_AT_CHECKPOINT),
        T.COMMITTING,
        "AbandonClaims CommitTurn",
    ),
    row("interrupting_claim", CheckpointWorkClaimed(None, None), T.COMMITTING, "CommitTurn"),
    row("interrupting_renewal", LeaseRenewed(L1), T.COMMITTING, "CommitTurn"),
    row(
        "interrupting_checkpoint",
        LeaseLost(LOST),
        T.IDLE,
        STOP_AND_HAND_BACK,
        outcome=O.LEASE_LOST,
    ),
    row("interrupting_claim", StoreFailed(ERROR), T.FAILED, "StopTurn", outcome=O.FAILED),
    row("interrupting_checkpoint", Interrupt(), T.INTERRUPTING),
    row(
        "committing_interrupted",
        CommitSucceeded(RESULT),
        T.IDLE,
        "",
        "turn interrupted",
        O.INTERRUPTED,
    ),
    row("committing", CommitSucceeded(RESULT), T.IDLE, "", OTHERWISE, O.COMMITTED),
    row("committing", CommitFailed(ERROR), T.FAILED, outcome=O.FAILED),
    row("committing_with_wake", LeaseLost(LOST), T.IDLE, "AbandonClaims", outcome=O.LEASE_LOST),
    row("committing", Interrupt(), T.COMMITTING),
    row("cancelling_acquire", LeaseAcquired(L1), T.IDLE, "ReleaseLease", outcome=O.CANCELLED),
    row("cancelling_acquire", LeaseBusy(HOLDER, True), T.IDLE, outcome=O.CANCELLED),
    row(
        "cancelling_inspect",
        PendingWorkInspected(1, None),
        T.IDLE,
        "ReleaseLease",
        outcome=O.CANCELLED,
    ),
    row(
        "cancelling_command_claim",
        CommandClaimed(CMD),
        T.IDLE,
        HAND_BACK_AND_RELEASE,
        outcome=O.CANCELLED,
    ),
    row(
        "cancelling_command_claim",
        CommandClaimed(None),
        T.IDLE,
        "ReleaseLease",
        outcome=O.CANCELLED,
    ),
    row(
        "cancelling_command_commit",
        CommitSucceeded(RESULT),
        T.IDLE,
        "ReleaseLease",
        outcome=O.CANCELLED,
    ),
    row(
        "cancelling_command_commit",
        CommitFailed(ERROR),
        T.FAILED,
        "ReleaseLease",
        outcome=O.FAILED,
    ),
    row(
        "cancelling_inputs",
        InputsClaimed(INPUTS),
        T.IDLE,
        HAND_BACK_AND_RELEASE,
        outcome=O.CANCELLED,
    ),
    row(
        "cancelling_turn_work",
        TurnWorkClaimed(WORK),
        T.IDLE,
        HAND_BACK_AND_RELEASE,
        outcome=O.CANCELLED,
    ),
    row("cancelling_command_claim", LeaseLost(LOST), T.IDLE, outcome=O.LEASE_LOST),
    row("cancelling_acquire", StoreFailed(ERROR), T.FAILED, "", OTHERWISE, O.FAILED),
    row("cancelling_inputs", StoreFailed(ERROR), T.FAILED, "", OTHERWISE, O.FAILED),
    row(
        "cancelling_command_claim",
        StoreFailed(ERROR),
        T.FAILED,
        "ReleaseLease",
        "a command claim was outstanding",
        O.FAILED,
    ),
    row("cancelling_acquire", Interrupt(), T.CANCELLING),
    row("failed", Reset(), T.IDLE),
    row("failed", Close(), T.CLOSED),
]


def _row_id(r: Row) -> str:
    return f"{r.path}-{type(r.event).__name__}-{'-'.join(r.effects) or 'none'}"


def _rule_ids_of_table() -> set[tuple[TurnState, type[Event], str]]:
    return {
        (rule.state, rule.event, rule.guard.name)
        for rules in TRANSITIONS.values()
        for rule in rules
    }


def test_expected_rows_restate_exactly_the_rules_of_the_table() -> None:
    restated = {(machine_at(r.path).state, type(r.event), r.guard) for r in EXPECTED}
    table = _rule_ids_of_table()
    assert restated - table == set(), "rows the machine does not have"
    assert table - restated == set(), "rules of the machine no row restates"


@pytest.mark.parametrize("expected", EXPECTED, ids=_row_id)
def test_every_rule_gives_the_documented_next_state_effects_and_outcome(expected: Row) -> None:
    machine = machine_at(expected.path)
    effects = machine.handle(expected.event)
    assert machine.state is expected.target
    assert tuple(type(e).__name__ for e in effects) == expected.effects
    if expected.outcome is not None:
        assert machine.last_outcome is expected.outcome


def _sample_event(event_type: type[Event]) -> Event:
    samples: dict[type[Event], Event] = {
        Start: Start("t9"),
        LeaseAcquired: LeaseAcquired(L1),
        LeaseBusy: LeaseBusy(HOLDER, False),
        PendingWorkInspected: PendingWorkInspected(None, None),
        CommandClaimed: CommandClaimed(None),
        InputsClaimed: InputsClaimed(None),
        TurnWorkClaimed: TurnWorkClaimed(None),
        CheckpointReached: CheckpointReached(3),
        CheckpointWorkClaimed: CheckpointWorkClaimed(None, None),
        TurnFinished: TurnFinished(3),
        CommitSucceeded: CommitSucceeded(RESULT),
        CommitFailed: CommitFailed(ERROR),
        RenewDue: RenewDue(),
        LeaseRenewed: LeaseRenewed(L1),
        LeaseLost: LeaseLost(LOST),
        StoreFailed: StoreFailed(ERROR),
        Interrupt: Interrupt(),
        Reset: Reset(),
        Close: Close(),
    }
    assert set(samples) == set(EVENT_TYPES)
    return samples[event_type]


UNLISTED = [
    (state, event_type)
    for state in TurnState
    for event_type in EVENT_TYPES
    if (state, event_type) not in TRANSITIONS
]


def test_the_unlisted_pairs_are_many_and_closed_accepts_nothing() -> None:
    closed = {e for s, e in UNLISTED if s is TurnState.CLOSED}
    assert closed == set(EVENT_TYPES)
    assert len(UNLISTED) + len(TRANSITIONS) == len(TurnState) * len(EVENT_TYPES)


@pytest.mark.parametrize(
    ("state", "event_type"), UNLISTED, ids=lambda v: getattr(v, "value", getattr(v, "__name__", v))
)
def test_every_pair_not_in_the_table_raises_and_changes_nothing(
    state: TurnState, event_type: type[Event]
) -> None:
    machine = machine_at(CANONICAL[state])
    assert machine.state is state
    before = machine.snapshot()
    with pytest.raises(TurnMachineError) as caught:
        machine.handle(_sample_event(event_type))
    message = str(caught.value)
    assert repr(state.value) in message and repr(event_type.__name__) in message
    assert caught.value.fields() == {"state": state.value, "event": event_type.__name__}
    assert machine.snapshot() == before
    assert not machine.accepts(event_type)


@pytest.mark.parametrize(
    ("path", "event", "awaited"),
    [
        ("cancelling_acquire", CommandClaimed(None), "AcquireLease"),
        ("interrupting_checkpoint", CheckpointWorkClaimed(None, None), "WriteCheckpoint"),
        ("interrupting_renewal", CommitSucceeded(RESULT), "RenewLease"),
        ("cancelling_inspect", LeaseLost(LOST), "InspectPendingWork"),
        ("cancelling_command_commit", InputsClaimed(None), "CommitSessionCommand"),
    ],
)
def test_a_reply_to_another_operation_is_rejected(path: str, event: Event, awaited: str) -> None:
    machine = machine_at(path)
    before = machine.snapshot()
    assert (machine.state, type(event)) in TRANSITIONS  # allowed in the state, not now
    with pytest.raises(TurnMachineError, match=f"outstanding store effect is {awaited}"):
        machine.handle(event)
    assert machine.snapshot() == before
    assert not machine.accepts(type(event))


@pytest.mark.parametrize(
    ("path", "event", "problem"),
    [
        ("idle", Start(""), "turn id is empty"),
        (
            "acquiring",
            LeaseAcquired(SessionExecutionLease("elsewhere", OWNER, "t", 1, 0, 9)),
            "for session 'elsewhere'",
        ),
        ("acquiring", LeaseAcquired(lease(1, OTHER)), "belongs to 'other-owner'"),
        ("renewing", LeaseRenewed(L2), "changed the lease generation from 1 to 2"),
        ("claiming_inputs", InputsClaimed(input_claim(4, generation=3)), "generation 3"),
        (
            "claiming_checkpoint_work",
            CheckpointWorkClaimed(None, queue_claim(9, generation=0)),
            "generation 0",
        ),
    ],
)
def test_events_that_contradict_the_machine_are_rejected(
    path: str, event: Event, problem: str
) -> None:
    machine = machine_at(path)
    before = machine.snapshot()
    with pytest.raises(TurnMachineError, match=problem):
        machine.handle(event)
    assert machine.snapshot() == before


def test_checkpoints_never_go_backwards() -> None:
    machine = machine_at("active_turn")
    machine.handle(CheckpointReached(4))
    machine.handle(CommitSucceeded(RESULT))
    machine.handle(CheckpointWorkClaimed(None, None))
    before = machine.snapshot()
    with pytest.raises(TurnMachineError, match="turn index 3 is below the last checkpoint's 4"):
        machine.handle(TurnFinished(3))
    assert machine.snapshot() == before
    assert type(machine.handle(TurnFinished(4))[0]) is CommitTurn


# ---------------------------------------------------------------------------
# What the effects carry
# ---------------------------------------------------------------------------


def test_a_full_cycle_builds_the_store_calls_with_the_lease_and_claims() -> None:
    machine = TurnMachine(
        SESSION, OWNER, timings=LeaseTimings.from_ttl(9_000), max_inputs=7, max_batches=5
    )
    (acquire,) = machine.handle(Start("t1"))
    assert acquire == AcquireLease(SESSION, OWNER, 9_000)
    machine.handle(LeaseAcquired(L1))
    (claim_command,) = machine.handle(PendingWorkInspected(1, None))
    assert claim_command == ClaimLeadingCommand(SESSION, L1.fence(), OWNER)

    apply, settle = machine.handle(CommandClaimed(CMD))
    assert apply == ApplySessionCommand(CMD.batches)
    assert isinstance(settle, CommitSessionCommand)
    assert settle.commit.completed_queue_claims == (CMD.completion(),)
    assert settle.commit.session_execution_lease == L1.fence()
    assert settle.commit.release_session_execution_lease is None
    assert settle.commit.checkpoint == SessionCheckpoint(0)

    machine.handle(CommitSucceeded(RESULT))
    (claim_inputs,) = machine.handle(CommandClaimed(None))
    assert claim_inputs == ClaimNextTurnInputs(SESSION, L1.fence(), OWNER, 7)
    (claim_work,) = machine.handle(InputsClaimed(None))
    assert claim_work == ClaimQueuedWork(SESSION, L1.fence(), OWNER, ClaimBoundary.IDLE, 5)
    (run,) = machine.handle(TurnWorkClaimed(WORK))
    assert run == RunTurn("t1", (), WORK.batches)

    (write,) = machine.handle(CheckpointReached(3, CheckpointKind.BEFORE_COMPLETION, {"k": 1}))
    assert isinstance(write, WriteCheckpoint)
    assert write.commit.checkpoint == SessionCheckpoint(3, {"k": 1})
    assert write.commit.completed_queue_claims == () == write.commit.completed_turn_input_claims
    assert write.commit.release_session_execution_lease is None
    (claim_checkpoint,) = machine.handle(CommitSucceeded(RESULT))
    assert claim_checkpoint == ClaimCheckpointWork(
        SESSION, L1.fence(), OWNER, "t1", CheckpointKind.BEFORE_COMPLETION, 7, 5
    )
    assert machine.committed_checkpoint == SessionCheckpoint(3, {"k": 1})
    (deliver,) = machine.handle(CheckpointWorkClaimed(ACTIVE_INPUTS, WAKE_AT_CHECKPOINT))
    assert deliver == DeliverCheckpointWork("t1", ACTIVE_INPUTS.inputs, WAKE_AT_CHECKPOINT.batches)

    (commit_turn,) = machine.handle(TurnFinished(4, {"done": True}))
    assert isinstance(commit_turn, CommitTurn) and not commit_turn.interrupted
    commit = commit_turn.commit
    assert commit.session_execution_lease == L1.fence()
    assert commit.release_session_execution_lease == L1.completion()
    assert commit.completed_queue_claims == (WORK.completion(), WAKE_AT_CHECKPOINT.completion())
    assert commit.completed_turn_input_claims == (ACTIVE_INPUTS.completion(),)
    assert commit.interrupted_turn_input_turn_id == "t1"
    assert commit.checkpoint == SessionCheckpoint(4, {"done": True})
    assert commit.turn_commit is not None and commit.turn_commit.turn_id == "t1"

    assert machine.handle(CommitSucceeded(RESULT)) == []
    assert machine.state is TurnState.IDLE and machine.last_outcome is CycleOutcome.COMMITTED
    assert machine.lease is None and machine.queue_claims == () == machine.input_claims
    assert machine.committed_checkpoint == SessionCheckpoint(4, {"done": True})


def test_an_interrupt_commits_from_the_last_checkpoint_and_defers_this_turns_inputs() -> None:
    machine = machine_at("active_turn")
    machine.handle(CheckpointReached(2, state={"step": 2}))
    machine.handle(CommitFailed(ERROR))  # boundary not persisted; the turn goes on
    machine.handle(CheckpointWorkClaimed(None, None))
    assert machine.committed_checkpoint == SessionCheckpoint(0)
    (commit_turn,) = machine.handle(Interrupt())
    assert isinstance(commit_turn, CommitTurn) and commit_turn.interrupted
    assert commit_turn.commit.checkpoint == SessionCheckpoint(2, {"step": 2})
    assert commit_turn.commit.completed_turn_input_claims == (INPUTS.completion(),)
    assert commit_turn.commit.interrupted_turn_input_turn_id == "t1"


def test_work_claimed_while_interrupting_is_handed_back_not_completed() -> None:
    machine = machine_at("interrupting_claim")
    hand_back, commit_turn = machine.handle(
        CheckpointWorkClaimed(ACTIVE_INPUTS, WAKE_AT_CHECKPOINT)
    )
    assert hand_back == AbandonClaims((WAKE_AT_CHECKPOINT,), (ACTIVE_INPUTS,))
    assert isinstance(commit_turn, CommitTurn) and commit_turn.interrupted
    assert commit_turn.commit.completed_turn_input_claims == (INPUTS.completion(),)
    assert commit_turn.commit.completed_queue_claims == ()


def test_a_lease_loss_hands_the_turns_claims_back_at_once_and_nothing_else() -> None:
    machine = machine_at("active_turn_with_wake")
    stop, hand_back = machine.handle(LeaseLost(LOST))
    assert stop == StopTurn("t1", "session execution lease lost")
    # lease-less, by claim id, right away: no release, no later hand-back
    assert hand_back == AbandonClaims((WAKE_AT_CHECKPOINT,), (INPUTS,))
    assert machine.state is TurnState.IDLE and machine.lease is None
    assert machine.queue_claims == () == machine.input_claims
    assert machine.last_outcome is CycleOutcome.LEASE_LOST
    # the next cycle starts clean: nothing is handed back after the acquisition
    assert [type(e) for e in machine.handle(Start("t2"))] == [AcquireLease]
    assert machine.handle(LeaseAcquired(L2)) == [InspectPendingWork(SESSION)]


def test_a_lease_loss_at_the_turn_commit_hands_back_every_claim_of_the_turn() -> None:
    machine = machine_at("committing_with_wake")
    assert machine.handle(LeaseLost(LOST)) == [AbandonClaims((WAKE_AT_CHECKPOINT,), (INPUTS,))]
    assert machine.state is TurnState.IDLE and machine.lease is None


def test_a_lease_loss_while_draining_commands_hands_nothing_back() -> None:
    machine = machine_at("committing_command")
    assert machine.handle(LeaseLost(LOST)) == []  # the command claim is superseded, not abandoned
    assert machine.command_claim is None and machine.lease is None


def test_a_failed_turn_commit_keeps_the_lease_and_hands_nothing_back() -> None:
    machine = machine_at("committing_with_wake")
    assert machine.handle(CommitFailed(ERROR)) == []  # lash: StoreCommitFailed keeps the lease
    assert machine.state is TurnState.FAILED and machine.failure is ERROR
    assert machine.lease is None, "the machine forgets the lease; it runs out at its TTL"
    assert machine.queue_claims == () == machine.input_claims
    assert not machine.accepts(Start)
    assert machine.handle(Reset()) == [] and machine.failure is None
    assert machine.state is TurnState.IDLE


def test_a_failed_checkpoint_claim_stops_the_turn_and_hands_nothing_back() -> None:
    machine = machine_at("claiming_checkpoint_work")
    (stop,) = machine.handle(StoreFailed(ERROR))
    assert stop == StopTurn("t1", f"store failure: {ERROR}")
    assert machine.state is TurnState.FAILED and machine.lease is None


def test_a_failed_command_drain_releases_the_lease_but_hands_nothing_back() -> None:
    machine = machine_at("committing_command")
    assert machine.handle(CommitFailed(ERROR)) == [ReleaseLease(L1.completion())]
    assert machine.state is TurnState.FAILED and machine.command_claim is None


def test_the_turn_commit_names_the_claims_it_must_settle() -> None:
    machine = machine_at("active_turn_with_wake")
    (commit_turn,) = machine.handle(TurnFinished(2))
    assert isinstance(commit_turn, CommitTurn)
    assert commit_turn.originating_queue_claims == (WAKE_AT_CHECKPOINT.completion(),)
    assert commit_turn.originating_turn_input_claims == (INPUTS.completion(),)
    commit_turn.commit.validate_claim_settlement(
        commit_turn.originating_queue_claims, commit_turn.originating_turn_input_claims
    )


def test_a_dead_holder_is_reclaimed_with_the_observed_fence() -> None:
    machine = machine_at("acquiring")
    (reclaim,) = machine.handle(LeaseBusy(HOLDER, True))
    assert reclaim == ReclaimLease(SESSION, OWNER, HOLDER.fence(), machine.timings.ttl_ms)


@pytest.mark.parametrize(
    ("command_at", "input_at", "first"),
    [(None, None, False), (None, 5, False), (5, None, True), (4, 5, True), (5, 5, False)],
)
def test_session_commands_go_first_only_when_strictly_earlier_or_alone(
    command_at: int | None, input_at: int | None, first: bool
) -> None:
    assert session_commands_go_first(command_at, input_at) is first


def test_every_lease_using_store_effect_can_be_answered_by_lease_loss() -> None:
    """The driver answers a lease-expired error of a lease-using effect with LeaseLost; the
    machine must accept that reply wherever it waits for such an effect."""
    answered = [e for e in EFFECT_TYPES if issubclass(e, StoreEffect) and e.replies]
    assert answered
    for effect in answered:
        assert effect.uses_lease == (LeaseLost in effect.replies), effect.__name__


def test_machine_rejects_bad_configuration() -> None:
    with pytest.raises(ValueError, match="non-empty session id"):
        TurnMachine("", OWNER)
    with pytest.raises(MachineLimitsError) as batches:
        TurnMachine(SESSION, OWNER, max_batches=0)
    assert batches.value.variant == "MaxBatchesTooSmall"
    with pytest.raises(MachineLimitsError) as inputs:
        TurnMachine(SESSION, OWNER, max_inputs=0, max_batches=0)
    assert inputs.value.variant == "MaxInputsTooSmall"
    smallest = TurnMachine(SESSION, OWNER, max_inputs=1, max_batches=1)
    assert (smallest.max_inputs, smallest.max_batches) == (1, 1)
    assert smallest.timings == LeaseTimings()


# ---------------------------------------------------------------------------
# Generated documentation
# ---------------------------------------------------------------------------


def _renderer() -> ModuleType:
    """docs/render_turn_machine.py: documentation tooling, outside the kernel package."""
    path = ROOT / "docs" / "render_turn_machine.py"
    spec = importlib.util.spec_from_file_location("lashspec_docs_render_turn_machine", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RENDERER = _renderer()
render_markdown, render_dot, main = RENDERER.render_markdown, RENDERER.render_dot, RENDERER.main


def test_docs_turn_machine_md_is_generated_from_the_table() -> None:
    docs = ROOT / "docs" / "turn-machine.md"
    assert docs.read_text() == render_markdown(), (
        "docs/turn-machine.md is stale: regenerate it with "
        "`python docs/render_turn_machine.py > docs/turn-machine.md`"
    )


def test_the_generated_docs_list_every_state_event_and_rule() -> None:
    markdown, dot = render_markdown(), render_dot()
    for state in TurnState:
        assert f"| `{state.value}` |" in markdown
        assert f'"{state.value}"' in dot
    for event_type in EVENT_TYPES:
        assert f"| `{event_type.__name__}` |" in markdown
    rule_lines = [
        line for line in markdown.splitlines() if line.startswith("| `") and "` | `" in line
    ]
    edges = [line for line in dot.splitlines() if " -> " in line]
    rules = sum(len(group) for group in TRANSITIONS.values())
    assert len(edges) == rules
    assert len([line for line in rule_lines if line.count("|") == 8]) == rules


def test_main_prints_markdown_or_dot(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert capsys.readouterr().out == render_markdown()
    assert main(["--dot"]) == 0
    assert capsys.readouterr().out == render_dot()
    assert main(["--html"]) == 2


# ---------------------------------------------------------------------------
# Random event sequences
# ---------------------------------------------------------------------------

LEASE_HELD = {
    T.INSPECTING_QUEUE,
    T.CLAIMING_COMMANDS,
    T.COMMITTING_COMMAND,
    T.CLAIMING_INPUTS,
    T.CLAIMING_TURN_WORK,
    T.ACTIVE_TURN,
    T.WRITING_CHECKPOINT,
    T.CLAIMING_CHECKPOINT_WORK,
    T.RENEWING_LEASE,
    T.INTERRUPTING,
    T.COMMITTING,
}
NO_LEASE = {T.IDLE, T.ACQUIRING_LEASE, T.RECLAIMING_LEASE, T.FAILED, T.CLOSED}
AT_REST = {T.IDLE, T.FAILED, T.CLOSED}
TURN_RUNNING = {
    T.ACTIVE_TURN,
    T.WRITING_CHECKPOINT,
    T.CLAIMING_CHECKPOINT_WORK,
    T.RENEWING_LEASE,
    T.INTERRUPTING,
    T.COMMITTING,
}
WAITING_FOR_HOST = {T.IDLE, T.ACTIVE_TURN, T.FAILED, T.CLOSED}


DETOURS = {StoreFailed, CommitFailed, LeaseLost, LeaseBusy, Interrupt, RenewDue, Close}


class Chooser(Protocol):
    def pick(self, options: Sequence[Any]) -> Any: ...


class HypothesisChooser:
    def __init__(self, data: st.DataObject) -> None:
        self._data = data

    def pick(self, options: Sequence[Any]) -> Any:
        return self._data.draw(st.sampled_from(options))


class RandomChooser:
    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)

    def pick(self, options: Sequence[Any]) -> Any:
        return self._random.choice(list(options))


def _phase_of(effect: Effect) -> Phase | None:
    """The Runtime Scenario phase a store effect plays in its lease cycle."""
    match effect:
        case ReclaimLease():
            return ReclaimDeadHolderPhase()
        case ClaimLeadingCommand():
            return LeadingCommandClaimPhase()
        case CommitSessionCommand() | WriteCheckpoint():
            return CheckpointPhase()
        case ClaimNextTurnInputs():
            return NextTurnInputClaimPhase()
        case ClaimQueuedWork():
            return TurnWorkClaimPhase.at(effect.boundary)
        case ClaimCheckpointWork():
            return TurnWorkClaimPhase.at(ClaimBoundary.ACTIVE_TURN_CHECKPOINT)
        case CommitTurn():
            return CommitPhase()
    return None


def _fence_of(effect: StoreEffect) -> object:
    for name in ("fence", "completion"):
        if hasattr(effect, name):
            return getattr(effect, name)
    commit = getattr(effect, "commit", None)
    return commit.session_execution_lease if commit is not None else None


@dataclass
class Cycle:
    """What one lease cycle did, as far as the machine's effects and events show."""

    phases: list[Phase] = field(default_factory=list)
    lease: SessionExecutionLease | None = None
    released: bool = False
    committing_turn: bool = False
    command_claims: dict[str, QueuedWorkClaim | TurnInputClaim] = field(default_factory=dict)
    turn_claims: dict[str, QueuedWorkClaim | TurnInputClaim] = field(default_factory=dict)
    handed_back: set[str] = field(default_factory=set)
    #: claims the outstanding commit completes; settled once it succeeds
    completing: set[str] = field(default_factory=set)
    settled: set[str] = field(default_factory=set)


class World:
    """Feeds one machine plausible events and checks every answer against the rules."""

    def __init__(self, chooser: Chooser) -> None:
        self.pick = chooser.pick
        self.machine = TurnMachine(SESSION, OWNER)
        self.generation = 0
        self.number = 100
        self.cycle: Cycle | None = None
        self.lease_lost = False  # told the lease was lost, not yet acquired again
        self.visited: set[TurnState] = {T.IDLE}
        self.fired: set[tuple[TurnState, type[Event]]] = set()
        self.outcomes: set[CycleOutcome] = set()

    # -- events ----------------------------------------------------------------------------

    def _next(self) -> int:
        self.number += 1
        return self.number

    def _generation(self) -> int:
        m = self.machine
        return m.lease.fencing_token if m.lease is not None else max(self.generation, 1)

    def make(self, event_type: type[Event]) -> Event:
        m = self.machine
        floor = (m.turn_checkpoint or m.committed_checkpoint).turn_index
        gen = self._generation()
        maybe = self.pick
        if event_type is Start:
            turn_id = f"turn-{self._next()}"
            return Start(maybe([turn_id, turn_id, turn_id, ""]))
        if event_type is LeaseAcquired:
            self.generation += 1
            ours = lease(self.generation)
            return LeaseAcquired(maybe([ours, ours, ours, lease(self.generation, OTHER)]))
        if event_type is LeaseBusy:
            return LeaseBusy(HOLDER, maybe([True, False]))
        if event_type is PendingWorkInspected:
            return PendingWorkInspected(maybe([None, 1, 2]), maybe([None, 1, 2]))
        if event_type is CommandClaimed:
            return CommandClaimed(maybe([None, queue_claim(self._next(), gen, command=True)]))
        if event_type is InputsClaimed:
            stale = maybe([False, False, False, True])  # a claim of another generation
            claim = input_claim(self._next(), gen + 9 if stale else gen)
            return InputsClaimed(maybe([None, claim, claim]))
        if event_type is TurnWorkClaimed:
            return TurnWorkClaimed(maybe([None, queue_claim(self._next(), gen)]))
        if event_type is CheckpointReached:
            kind = maybe(list(CheckpointKind))
            return CheckpointReached(floor + maybe([-1, 0, 1, 2]), kind, {"n": self._next()})
        if event_type is CheckpointWorkClaimed:
            inputs = maybe([None, input_claim(self._next(), gen, active_turn=m.turn_id or "t")])
            return CheckpointWorkClaimed(inputs, maybe([None, queue_claim(self._next(), gen)]))
        if event_type is TurnFinished:
            return TurnFinished(floor + maybe([-1, 0, 1]), {"n": self._next()})
        if event_type is LeaseRenewed:
            return LeaseRenewed(m.lease or lease(gen))
        simple: dict[type[Event], Event] = {
            CommitSucceeded: CommitSucceeded(RESULT),
            CommitFailed: CommitFailed(ERROR),
            StoreFailed: StoreFailed(ERROR),
            LeaseLost: LeaseLost(LOST),
            RenewDue: RenewDue(),
            Interrupt: Interrupt(),
            Reset: Reset(),
            Close: Close(),
        }
        return simple[event_type]

    def step(self) -> None:
        m = self.machine
        accepted = [e for e in EVENT_TYPES if m.accepts(e)]
        if Close in accepted and self.pick(range(10)):  # closing ends the walk; keep it rare
            accepted.remove(Close)
        # events that move a cycle forward are likelier, so walks reach deep states
        accepted += [e for e in accepted if e not in DETOURS] * 3
        pool = accepted if accepted and self.pick([True, True, True, False]) else EVENT_TYPES
        event = self.make(self.pick(pool))
        before = m.snapshot()
        try:
            effects = m.handle(event)
        except TurnMachineError as error:
            assert m.snapshot() == before, "a rejected event changed the machine"
            assert before.state.value in str(error) and type(event).__name__ in str(error)
            return
        self.fired.add((before.state, type(event)))
        self.observe(before.state, event, effects)
        self.check_state()

    # -- rules -----------------------------------------------------------------------------

    def observe(self, state: TurnState, event: Event, effects: list[Effect]) -> None:
        cycle = self.cycle
        if isinstance(event, LeaseAcquired):
            assert cycle is not None and cycle.lease is None
            cycle.lease = event.lease
            self.lease_lost = False
        if isinstance(event, LeaseRenewed) and cycle is not None:
            cycle.lease = event.lease
        if cycle is not None:
            self._record_grants(cycle, event)
            if isinstance(event, CommitSucceeded):
                cycle.settled |= cycle.completing
                cycle.released = cycle.released or cycle.committing_turn
            if event.is_reply:
                cycle.completing = set()
        for effect in effects:
            self._check_effect(effect)
        store_effects = [type(e) for e in effects if isinstance(e, StoreEffect)]
        if isinstance(event, LeaseLost):
            assert set(store_effects) <= {AbandonClaims}, "only a hand-back after lease loss"
        if isinstance(event, StoreFailed | CommitFailed) and self.machine.state is T.FAILED:
            # lash's StoreCommitFailed: nothing is handed back; only a command drain releases
            assert set(store_effects) <= {ReleaseLease}, "a failure hands nothing back"
            if ReleaseLease in store_effects:
                assert state in {T.CLAIMING_COMMANDS, T.COMMITTING_COMMAND, T.CANCELLING}
        if self.machine.state in AT_REST and self.cycle is not None:
            self._end_cycle(event)
        self.visited.add(self.machine.state)

    def _record_grants(self, cycle: Cycle, event: Event) -> None:
        if isinstance(event, CommandClaimed) and event.claim is not None:
            cycle.command_claims[event.claim.claim_id] = event.claim
        claims: tuple[QueuedWorkClaim | TurnInputClaim | None, ...] = ()
        if isinstance(event, InputsClaimed | TurnWorkClaimed):
            claims = (event.claim,)
        if isinstance(event, CheckpointWorkClaimed):
            claims = (event.inputs, event.work)
        for claim in claims:
            if claim is not None:
                cycle.turn_claims[claim.claim_id] = claim

    def _check_effect(self, effect: Effect) -> None:
        if not isinstance(effect, StoreEffect):
            return
        if self.lease_lost:
            assert isinstance(effect, AcquireLease | ReclaimLease), (
                f"{type(effect).__name__} emitted after the lease was lost"
            )
        if isinstance(effect, AcquireLease):
            assert self.cycle is None, "a new acquisition inside an open cycle"
            self.cycle = Cycle()
            return
        cycle = self.cycle
        assert cycle is not None, f"{type(effect).__name__} outside a lease cycle"
        phase = _phase_of(effect)
        if phase is not None:
            cycle.phases.append(phase)
        if isinstance(effect, AbandonClaims):
            claims: tuple[QueuedWorkClaim | TurnInputClaim, ...] = (
                *effect.queue_claims,
                *effect.input_claims,
            )
            for claim in claims:
                own = claim.claim_id in cycle.turn_claims or claim.claim_id in cycle.command_claims
                assert own, "handed back a claim of another cycle"
                assert claim.claim_id not in cycle.settled, "handed back a settled claim"
                cycle.handed_back.add(claim.claim_id)
        if effect.uses_lease:
            assert cycle.lease is not None, f"{type(effect).__name__} before the lease"
            assert not cycle.released, f"{type(effect).__name__} after the lease was released"
            assert _fence_of(effect) in (cycle.lease.fence(), cycle.lease.completion())
        if isinstance(effect, ReleaseLease):
            cycle.released = True
        if isinstance(effect, CommitSessionCommand):
            (completion,) = effect.commit.completed_queue_claims
            assert completion.claim_id in cycle.command_claims
            assert effect.commit.completed_turn_input_claims == ()
            cycle.completing = {completion.claim_id}
        if isinstance(effect, WriteCheckpoint):
            assert effect.commit.completed_queue_claims == ()
            assert effect.commit.completed_turn_input_claims == ()
        if isinstance(effect, CommitTurn):
            completed = {c.claim_id for c in effect.commit.completed_queue_claims} | {
                c.claim_id for c in effect.commit.completed_turn_input_claims
            }
            held = set(cycle.turn_claims) - cycle.handed_back
            assert completed == held, "the turn commit must settle exactly the claims it holds"
            assert effect.commit.interrupted_turn_input_turn_id == self.machine.turn_id
            cycle.committing_turn = True
            cycle.completing = completed

    def _end_cycle(self, event: Event) -> None:
        cycle = self.cycle
        assert cycle is not None
        violation = first_phase_order_violation(cycle.phases)
        assert violation is None, f"phase order {[type(p).__name__ for p in cycle.phases]}"
        if isinstance(event, LeaseLost):
            self.lease_lost = True
            kept = set(cycle.turn_claims) - cycle.handed_back - cycle.settled
            assert kept == set(), "lease loss hands every turn claim back at once"
        if self.machine.last_outcome is not None:
            self.outcomes.add(self.machine.last_outcome)
        self.cycle = None

    def check_state(self) -> None:
        m = self.machine
        assert m.state in STATE_DOCS
        if m.state in LEASE_HELD:
            assert m.lease is not None
        if m.state in NO_LEASE:
            assert m.lease is None
        assert (m.awaiting is None) == (m.state in WAITING_FOR_HOST)
        if m.state in AT_REST:
            assert m.turn_id is None and m.command_claim is None
            assert m.queue_claims == () == m.input_claims
        else:
            assert m.turn_id
        if m.state in TURN_RUNNING:
            assert m.queue_claims or m.input_claims, "a turn starts from a claim"
        assert m.allowed_events() or m.state is T.CLOSED


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_random_event_sequences_keep_every_rule(data: st.DataObject) -> None:
    world = World(HypothesisChooser(data))
    for _ in range(data.draw(st.integers(1, 80))):
        world.step()


def test_random_exploration_reaches_every_state_rule_and_outcome() -> None:
    """The generator behind the property test is not vacuous: it fires every rule."""
    visited: set[TurnState] = set()
    fired: set[tuple[TurnState, type[Event]]] = set()
    outcomes: set[CycleOutcome] = set()
    for seed in range(600):
        world = World(RandomChooser(seed))
        for _ in range(100):
            world.step()
        visited |= world.visited
        fired |= world.fired
        outcomes |= world.outcomes
    assert visited == set(TurnState)
    assert fired == set(TRANSITIONS)
    assert outcomes == set(CycleOutcome)
