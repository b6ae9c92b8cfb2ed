"""The seed's phase-order property: the DSL's validator agrees with an independent oracle."""

from __future__ import annotations

import enum

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lashspec.kernel.types import ClaimBoundary

from .dsl import (
    CheckpointPhase,
    CommitPhase,
    Fault,
    IngressPhase,
    LeadingCommandClaimPhase,
    LeasePhase,
    NextTurnInputClaimPhase,
    Phase,
    RuntimeScenario,
    ScenarioFailure,
    TurnWorkClaimPhase,
)


class Symbol(enum.Enum):
    INGRESS = "Ingress"
    CHECKPOINT = "Checkpoint"
    LEADING_COMMAND_CLAIM = "LeadingCommandClaim"
    TURN_WORK_CLAIM = "TurnWorkClaim"
    NEXT_TURN_INPUT_CLAIM = "NextTurnInputClaim"
    MISALIGNED_NEXT_TURN_INPUT_CLAIM = "MisalignedNextTurnInputClaim"
    DEAD_LEASE_RECLAIM = "DeadLeaseReclaim"
    STALE_QUEUE_COMPLETION_FAULT = "StaleQueueCompletionFault"
    RELEASED_LEASE_COMMIT_FAULT = "ReleasedLeaseCommitFault"
    COMMIT = "Commit"


def build_phase(symbol: Symbol) -> Phase:
    match symbol:
        case Symbol.INGRESS:
            return IngressPhase()
        case Symbol.CHECKPOINT:
            return CheckpointPhase()
        case Symbol.LEADING_COMMAND_CLAIM:
            return LeadingCommandClaimPhase()
        case Symbol.TURN_WORK_CLAIM:
            return TurnWorkClaimPhase.at(ClaimBoundary.IDLE)
        case Symbol.NEXT_TURN_INPUT_CLAIM:
            return NextTurnInputClaimPhase()
        case Symbol.MISALIGNED_NEXT_TURN_INPUT_CLAIM:
            return NextTurnInputClaimPhase().expect_inputs(["one"], [])
        case Symbol.DEAD_LEASE_RECLAIM:
            return LeasePhase.reclaim_dead_holder()
        case Symbol.STALE_QUEUE_COMPLETION_FAULT:
            return Fault.STALE_QUEUE_COMPLETION
        case Symbol.RELEASED_LEASE_COMMIT_FAULT:
            return Fault.COMMIT_AFTER_SESSION_LEASE_RELEASE
        case Symbol.COMMIT:
            return CommitPhase()


# The oracle restates rules (a)-(d) over symbols, without the DSL's phase classes.
RELEASES = {Symbol.COMMIT, Symbol.RELEASED_LEASE_COMMIT_FAULT}
USES_LEASE = {
    Symbol.CHECKPOINT,
    Symbol.LEADING_COMMAND_CLAIM,
    Symbol.TURN_WORK_CLAIM,
    Symbol.NEXT_TURN_INPUT_CLAIM,
    Symbol.MISALIGNED_NEXT_TURN_INPUT_CLAIM,
    Symbol.STALE_QUEUE_COMPLETION_FAULT,
    Symbol.COMMIT,
}


def phase_order_oracle(symbols: list[Symbol]) -> bool:
    # (a) a releasing phase only as the last one
    if any(s in RELEASES for s in symbols[:-1]):
        return False
    # (b) a reclaim is preceded only by ingress phases
    for index, symbol in enumerate(symbols):
        if symbol is Symbol.DEAD_LEASE_RECLAIM and any(
            s is not Symbol.INGRESS for s in symbols[:index]
        ):
            return False
    # (c) a stale completion needs an earlier turn-work claim
    for index, symbol in enumerate(symbols):
        if symbol is Symbol.STALE_QUEUE_COMPLETION_FAULT and (
            Symbol.TURN_WORK_CLAIM not in symbols[:index]
        ):
            return False
    # (d) misaligned input claims are never valid
    return Symbol.MISALIGNED_NEXT_TURN_INPUT_CLAIM not in symbols


def scenario_of(symbols: list[Symbol]) -> RuntimeScenario:
    scenario = RuntimeScenario("runtime state-machine property")
    for symbol in symbols:
        scenario.phase(build_phase(symbol))
    return scenario


@given(st.lists(st.sampled_from(list(Symbol)), min_size=1, max_size=8))
def test_runtime_state_machine_property_phase_order_matches_scenario_dsl(
    symbols: list[Symbol],
) -> None:
    assert scenario_of(symbols).phase_order_is_valid_for_test() == phase_order_oracle(symbols)


S = Symbol
VALID = [
    [S.INGRESS, S.DEAD_LEASE_RECLAIM, S.COMMIT],
    [S.TURN_WORK_CLAIM, S.STALE_QUEUE_COMPLETION_FAULT],
    [S.RELEASED_LEASE_COMMIT_FAULT],
    [S.COMMIT],
]
INVALID = [
    [S.COMMIT, S.INGRESS],
    [S.CHECKPOINT, S.DEAD_LEASE_RECLAIM],
    [S.DEAD_LEASE_RECLAIM, S.DEAD_LEASE_RECLAIM],
    [S.STALE_QUEUE_COMPLETION_FAULT],
    [S.LEADING_COMMAND_CLAIM, S.STALE_QUEUE_COMPLETION_FAULT],
    [S.RELEASED_LEASE_COMMIT_FAULT, S.DEAD_LEASE_RECLAIM],
    [S.COMMIT, S.COMMIT],
]


@pytest.mark.parametrize("symbols", VALID, ids=lambda s: "-".join(x.value for x in s))
def test_documented_valid_orders(symbols: list[Symbol]) -> None:
    assert scenario_of(symbols).phase_order_is_valid_for_test()
    assert phase_order_oracle(symbols)


@pytest.mark.parametrize("symbols", INVALID, ids=lambda s: "-".join(x.value for x in s))
def test_documented_invalid_orders_are_rejected_by_run(symbols: list[Symbol]) -> None:
    scenario = scenario_of(symbols)
    assert not scenario.phase_order_is_valid_for_test()
    assert not phase_order_oracle(symbols)
    with pytest.raises(ScenarioFailure, match="invalid phase order"):
        scenario.run(store=None)  # type: ignore[arg-type]  # rejected before any store call


def test_empty_phase_list_is_valid_but_cannot_run() -> None:
    scenario = RuntimeScenario("empty")
    assert scenario.phase_order_is_valid_for_test()
    with pytest.raises(ScenarioFailure, match="no phases"):
        scenario.run(store=None)  # type: ignore[arg-type]
