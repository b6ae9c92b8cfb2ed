"""The seed's nine Runtime Scenarios, run against every store backend.

Test names are the seed's (``runtime_scenario_*``) with pytest's ``test_`` prefix; the
coverage index below is built from the test functions themselves, so renaming or deleting a
scenario breaks the metadata tests.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

from lashspec.kernel.types import ClaimBoundary, QueuedWorkClass, TurnInputCheckpointBoundary
from lashspec.kernel.types import TurnInputState as State

from tests.conftest import StoreHarness

from .dsl import (
    ActiveTurnIngress,
    CheckpointPhase,
    CommitPhase,
    ConflictNextTurnReplayIngress,
    Fault,
    IngressPhase,
    LeadingCommandClaimPhase,
    LeasePhase,
    NextTurnForSessionIngress,
    NextTurnIngress,
    NextTurnInputClaimPhase,
    PendingInputExpectation,
    ProcessWakeIngress,
    RefreshToolCatalogIngress,
    ReplayNextTurnIngress,
    RuntimeScenario,
    TurnWorkClaimPhase,
)

IDLE = ClaimBoundary.IDLE


def run(harness: StoreHarness, scenario: RuntimeScenario) -> None:
    scenario.run(harness.store, harness.processes)


def test_runtime_scenario_drains_command_before_turn_work_and_commits_checkpoint(
    harness: StoreHarness,
) -> None:
    run(
        harness,
        RuntimeScenario(COVERAGE["command_before_turn"].display_name)
        .session_id("runtime-scenario-command-before-turn")
        .host_behavior("runtime-scenario-worker")
        .phase(
            IngressPhase()
            .enqueue(RefreshToolCatalogIngress("refresh before turn"))
            .enqueue(ProcessWakeIngress("wake after command"))
            .expect_enqueued_classes([QueuedWorkClass.SESSION_COMMAND, QueuedWorkClass.TURN_WORK])
        )
        .phase(
            LeadingCommandClaimPhase().expect_turn_work_blocked_before_command(True).expect_count(1)
        )
        .phase(CheckpointPhase().with_turn_index(7))
        .phase(TurnWorkClaimPhase.at(IDLE).expect_count(1))
        .phase(Fault.STALE_QUEUE_COMPLETION)
        .phase(CommitPhase().expect_checkpoint_turn_index(7)),
    )


def test_runtime_scenario_command_only_queue_drain_completes_without_turn_work(
    harness: StoreHarness,
) -> None:
    run(
        harness,
        RuntimeScenario(COVERAGE["command_only"].display_name)
        .session_id("runtime-scenario-command-only")
        .host_behavior("runtime-scenario-command-only-worker")
        .phase(
            IngressPhase()
            .enqueue(RefreshToolCatalogIngress("command-only refresh"))
            .expect_enqueued_classes([QueuedWorkClass.SESSION_COMMAND])
        )
        .phase(LeadingCommandClaimPhase().expect_count(1))
        .phase(TurnWorkClaimPhase.at(IDLE).expect_count(0))
        .phase(CommitPhase()),
    )


def test_runtime_scenario_queued_work_claim_keeps_pending_next_turn_input(
    harness: StoreHarness,
) -> None:
    run(
        harness,
        RuntimeScenario(COVERAGE["queue_keeps_input"].display_name)
        .session_id("runtime-scenario-queue-keeps-turn-input")
        .host_behavior("runtime-scenario-queue-turn-input-owner")
        .phase(
            IngressPhase()
            .enqueue(ProcessWakeIngress("wake selected before user input"))
            .enqueue_turn_input(NextTurnIngress("pending-user-input", "still pending user input"))
            .expect_enqueued_classes([QueuedWorkClass.TURN_WORK])
        )
        .phase(
            TurnWorkClaimPhase.at(IDLE)
            .expect_count(1)
            .expect_pending_turn_inputs_after_claim(
                [PendingInputExpectation("pending-user-input", State.DEFERRED_NEXT_TURN)]
            )
        ),
    )


def test_runtime_scenario_claims_process_wake_at_active_checkpoint_boundary(
    harness: StoreHarness,
) -> None:
    run(
        harness,
        RuntimeScenario(COVERAGE["active_checkpoint_wake"].display_name)
        .session_id("runtime-scenario-active-checkpoint-wake")
        .host_behavior("runtime-scenario-active-checkpoint-owner")
        .phase(
            IngressPhase()
            .enqueue(ProcessWakeIngress("wake at checkpoint"))
            .expect_enqueued_classes([QueuedWorkClass.TURN_WORK])
        )
        .phase(TurnWorkClaimPhase.at(ClaimBoundary.ACTIVE_TURN_CHECKPOINT).expect_count(1)),
    )


def test_runtime_scenario_claims_queued_turn_input_and_completes_it(
    harness: StoreHarness,
) -> None:
    run(
        harness,
        RuntimeScenario(COVERAGE["turn_input_completion"].display_name)
        .session_id("runtime-scenario-queued-turn-input")
        .host_behavior("runtime-scenario-turn-input-owner")
        .phase(
            IngressPhase()
            .enqueue_turn_input(NextTurnIngress("first", "first queued input"))
            .enqueue_turn_input(NextTurnIngress("second", "second queued input"))
            .enqueue_turn_input(
                NextTurnForSessionIngress("runtime-scenario-other-session", "other session input")
            )
        )
        .phase(
            NextTurnInputClaimPhase()
            .expect_inputs(["first", "second"], ["first queued input", "second queued input"])
            .expect_pending_hidden_after_claim()
        )
        .phase(CommitPhase().expect_pending_turn_inputs_empty()),
    )


def test_runtime_scenario_observation_replay_keeps_original_turn_input(
    harness: StoreHarness,
) -> None:
    key = "runtime-scenario:observation"
    run(
        harness,
        RuntimeScenario(COVERAGE["observation_replay"].display_name)
        .session_id("runtime-scenario-observation-replay")
        .host_behavior("runtime-scenario-observation-replay-owner")
        .phase(
            IngressPhase()
            .enqueue_turn_input(NextTurnIngress("observed-live-input", "observed live input", key))
            .enqueue_turn_input(
                ReplayNextTurnIngress(
                    "observed-live-input-replay",
                    "observed live input",
                    key,
                    expected_alias="observed-live-input",
                    expected_text="observed live input",
                )
            )
            .enqueue_turn_input(
                ConflictNextTurnReplayIngress(
                    "changed payload must conflict", key, expected_alias="observed-live-input"
                )
            )
        )
        .phase(
            NextTurnInputClaimPhase()
            .expect_inputs(["observed-live-input"], ["observed live input"])
            .expect_pending_hidden_after_claim()
        )
        .phase(CommitPhase().expect_pending_turn_inputs_empty()),
    )


def test_runtime_scenario_defers_checkpoint_turn_input_and_respects_cancel(
    harness: StoreHarness,
) -> None:
    turn_id = "runtime-scenario-redrive-turn"
    after_work = TurnInputCheckpointBoundary.AFTER_WORK
    run(
        harness,
        RuntimeScenario(COVERAGE["checkpoint_redrive_cancel"].display_name)
        .session_id("runtime-scenario-checkpoint-redrive-cancel")
        .host_behavior("runtime-scenario-redrive-input-owner")
        .phase(
            IngressPhase()
            .enqueue_turn_input(
                ActiveTurnIngress("active-keep", turn_id, after_work, "active input to redrive")
            )
            .enqueue_turn_input(
                ActiveTurnIngress(
                    "active-cancel", turn_id, after_work, "active input cancelled before redrive"
                )
            )
            .enqueue_turn_input(
                NextTurnIngress("next-cancel", "next input cancelled before redrive")
            )
            .cancel_turn_input_before_commit("active-cancel")
            .cancel_turn_input_before_commit("next-cancel")
        )
        .phase(
            CheckpointPhase()
            .defer_interrupted_turn_inputs(turn_id)
            .cancel_turn_input_after_deferral("active-keep")
            .expect_pending_after_deferral(
                [PendingInputExpectation("active-keep", State.DEFERRED_NEXT_TURN)]
            )
            .expect_no_next_turn_input_claim_after_cancellations()
        )
        .phase(CommitPhase().expect_pending_turn_inputs_empty()),
    )


def test_runtime_scenario_rejects_commit_after_session_lease_release(
    harness: StoreHarness,
) -> None:
    run(
        harness,
        RuntimeScenario(COVERAGE["lease_release_fault"].display_name)
        .session_id("runtime-scenario-lease-failure")
        .host_behavior("runtime-scenario-lease-owner")
        .phase(Fault.COMMIT_AFTER_SESSION_LEASE_RELEASE),
    )


def test_runtime_scenario_reclaims_dead_session_lease_and_rejects_stale_observation(
    harness: StoreHarness,
) -> None:
    run(
        harness,
        RuntimeScenario(COVERAGE["dead_lease_reclaim"].display_name)
        .session_id("runtime-scenario-dead-lease-reclaim")
        .host_behavior("runtime-scenario-reclaim-owner")
        .phase(LeasePhase.reclaim_dead_holder()),
    )


# ---------------------------------------------------------------------------
# Coverage index
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RuntimeScenarioCoverage:
    declared_test: Callable[[StoreHarness], None]
    display_name: str
    owned_invariant: str

    @property
    def test_name(self) -> str:
        """The seed's name: the test function's name without pytest's ``test_`` prefix."""
        return self.declared_test.__name__.removeprefix("test_")


COVERAGE: dict[str, RuntimeScenarioCoverage] = {
    "command_before_turn": RuntimeScenarioCoverage(
        test_runtime_scenario_drains_command_before_turn_work_and_commits_checkpoint,
        "command before turn work",
        "Session-command gate, checkpoint persistence, stale queue completion rejection, "
        "final queue drain.",
    ),
    "command_only": RuntimeScenarioCoverage(
        test_runtime_scenario_command_only_queue_drain_completes_without_turn_work,
        "command-only queue drain",
        "Command-only queued work claims no turn work and explicitly commits.",
    ),
    "queue_keeps_input": RuntimeScenarioCoverage(
        test_runtime_scenario_queued_work_claim_keeps_pending_next_turn_input,
        "queued work claim keeps pending next-turn input",
        "Queued turn work does not consume pending next-turn input.",
    ),
    "active_checkpoint_wake": RuntimeScenarioCoverage(
        test_runtime_scenario_claims_process_wake_at_active_checkpoint_boundary,
        "active checkpoint process wake claim",
        "Process-wake turn work is eligible at the active-checkpoint claim boundary.",
    ),
    "turn_input_completion": RuntimeScenarioCoverage(
        test_runtime_scenario_claims_queued_turn_input_and_completes_it,
        "queued turn input completion",
        "Next-turn pending inputs are claimed, hidden while live, and completed by commit.",
    ),
    "observation_replay": RuntimeScenarioCoverage(
        test_runtime_scenario_observation_replay_keeps_original_turn_input,
        "observation replay preserves live turn input",
        "Source-key observation replay preserves the original live input payload and id.",
    ),
    "checkpoint_redrive_cancel": RuntimeScenarioCoverage(
        test_runtime_scenario_defers_checkpoint_turn_input_and_respects_cancel,
        "checkpoint redrive cancel",
        "Active-turn input deferral, cancellation after deferral, and no later idle claim.",
    ),
    "lease_release_fault": RuntimeScenarioCoverage(
        test_runtime_scenario_rejects_commit_after_session_lease_release,
        "session lease release fault",
        "Released session lease/fence rejects a follow-up runtime commit.",
    ),
    "dead_lease_reclaim": RuntimeScenarioCoverage(
        test_runtime_scenario_reclaims_dead_session_lease_and_rejects_stale_observation,
        "dead session lease reclaim",
        "Dead local holder lease reclaim advances the fence and stale observed-holder reclaim "
        "stays busy.",
    ),
}

RUNTIME_SCENARIO_COVERAGE: tuple[RuntimeScenarioCoverage, ...] = tuple(COVERAGE.values())
RUNTIME_SCENARIO_TEST_NAMES: frozenset[str] = frozenset(
    c.test_name for c in RUNTIME_SCENARIO_COVERAGE
)


def test_runtime_scenario_coverage_metadata_is_unique_and_complete() -> None:
    assert len(RUNTIME_SCENARIO_COVERAGE) == 9
    names: set[str] = set()
    for coverage in RUNTIME_SCENARIO_COVERAGE:
        assert coverage.test_name.startswith("runtime_scenario_"), coverage.test_name
        assert coverage.display_name.strip(), f"{coverage.test_name} needs a display name"
        assert coverage.owned_invariant.strip(), f"{coverage.test_name} needs an invariant"
        assert coverage.test_name not in names, f"duplicate coverage for {coverage.test_name}"
        names.add(coverage.test_name)


def test_runtime_scenario_coverage_lists_exactly_the_collected_scenarios() -> None:
    """Every listed scenario is a live test of this module, and every scenario test is listed."""
    module = sys.modules[__name__]
    declared = {
        name.removeprefix("test_")
        for name in dir(module)
        if name.startswith("test_runtime_scenario_")
        and name.removeprefix("test_")
        != "runtime_scenario_coverage_metadata_is_unique_and_complete"
        and name.removeprefix("test_")
        != "runtime_scenario_coverage_lists_exactly_the_collected_scenarios"
    }
    assert declared == RUNTIME_SCENARIO_TEST_NAMES
    for coverage in RUNTIME_SCENARIO_COVERAGE:
        assert getattr(module, f"test_{coverage.test_name}") is coverage.declared_test
