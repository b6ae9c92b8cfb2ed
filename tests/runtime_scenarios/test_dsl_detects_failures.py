"""The DSL's assertions can fail: wrong expectations are reported with phase and values."""

from __future__ import annotations

import pytest
from lashspec.kernel.types import ClaimBoundary, QueuedWorkClass

from tests.conftest import StoreHarness

from .dsl import (
    CommitPhase,
    IngressPhase,
    LeadingCommandClaimPhase,
    NextTurnIngress,
    NextTurnInputClaimPhase,
    ProcessWakeIngress,
    RefreshToolCatalogIngress,
    RuntimeScenario,
    ScenarioFailure,
    TurnWorkClaimPhase,
)


def test_wrong_claim_count_is_reported(harness: StoreHarness) -> None:
    scenario = (
        RuntimeScenario("wrong count")
        .phase(
            IngressPhase()
            .enqueue(RefreshToolCatalogIngress("r"))
            .expect_enqueued_classes([QueuedWorkClass.SESSION_COMMAND])
        )
        .phase(TurnWorkClaimPhase.at(ClaimBoundary.IDLE).expect_count(1))
    )
    with pytest.raises(ScenarioFailure, match=r"phase 1 \(TurnWorkClaimPhase\).*expected 1, got 0"):
        scenario.run(harness.store, harness.processes)


def test_missing_class_expectation_is_reported(harness: StoreHarness) -> None:
    scenario = RuntimeScenario("classes").phase(IngressPhase().enqueue(ProcessWakeIngress("w")))
    with pytest.raises(ScenarioFailure, match="enqueued work classes"):
        scenario.run(harness.store, harness.processes)


def test_unclaimed_leftover_fails_the_final_drain(harness: StoreHarness) -> None:
    scenario = (
        RuntimeScenario("leftover")
        .phase(
            IngressPhase()
            .enqueue(ProcessWakeIngress("never claimed"))
            .expect_enqueued_classes([QueuedWorkClass.TURN_WORK])
        )
        .phase(LeadingCommandClaimPhase().expect_count(0))
        .phase(CommitPhase())
    )
    with pytest.raises(ScenarioFailure, match="queued work after commit"):
        scenario.run(harness.store, harness.processes)


def test_wrong_claimed_texts_are_reported(harness: StoreHarness) -> None:
    scenario = (
        RuntimeScenario("texts")
        .phase(IngressPhase().enqueue_turn_input(NextTurnIngress("a", "actual text")))
        .phase(NextTurnInputClaimPhase().expect_inputs(["a"], ["other text"]))
    )
    with pytest.raises(ScenarioFailure, match="claimed input texts"):
        scenario.run(harness.store, harness.processes)
