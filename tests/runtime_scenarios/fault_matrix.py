"""The durable fault matrix: each fault class of lash's runtime, with its evidence.

Rows whose evidence is kernel behaviour point at executable tests in this repository;
rows about layers outside the kernel (provider retries, process triggers, Postgres) keep
their metadata with a rationale, exactly as the matrix does in lash.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class DurableFaultKind(enum.IntEnum):
    CRASH_REOPEN = 1
    DUPLICATE_INPUTS = 2
    PROVIDER_FAILURE_RETRY = 3
    CANCELLATION = 4
    LEASE_LOSS = 5
    TRIGGER_DELIVERY_RECOVERY = 6
    BACKEND_PERMUTATION = 7


@dataclass(frozen=True)
class RuntimeScenarioEvidence:
    test_name: str


@dataclass(frozen=True)
class CargoTestEvidence:
    """A lash-core test, and the pytest test of this repository that executes the same case."""

    package: str
    filter: str
    executed_by: str | None  # "path::test" here, or None when outside the kernel's scope
    test_target: str | None = None
    required_env: str | None = None
    out_of_scope: str | None = None


@dataclass(frozen=True)
class BlockedEvidence:
    rationale: str


FaultEvidence = RuntimeScenarioEvidence | CargoTestEvidence | BlockedEvidence


@dataclass(frozen=True)
class DurableFaultRow:
    id: str
    kind: DurableFaultKind
    contract: str
    evidence: FaultEvidence


ROWS_FILE = "tests/runtime_scenarios/test_fault_matrix_rows.py"
OUTSIDE_KERNEL = "the layer it exercises (providers, processes, triggers) is outside the kernel"

DURABLE_FAULT_MATRIX: tuple[DurableFaultRow, ...] = (
    DurableFaultRow(
        "crash-reopen-runtime-rebuild",
        DurableFaultKind.CRASH_REOPEN,
        "A cold runtime rebuild and worker recovery preserve the durable graph and process state.",
        CargoTestEvidence(
            "lash-runtime",
            "runtime_rebuild_and_worker_recovery_with_durable_stores",
            "tests/test_sqlite_specific.py::test_reopen_sees_everything_committed",
        ),
    ),
    DurableFaultRow(
        "duplicate-turn-input-source-key",
        DurableFaultKind.DUPLICATE_INPUTS,
        "A duplicate source-key input returns the original input and payload.",
        RuntimeScenarioEvidence("runtime_scenario_observation_replay_keeps_original_turn_input"),
    ),
    DurableFaultRow(
        "provider-retry-exhaustion",
        DurableFaultKind.PROVIDER_FAILURE_RETRY,
        "Retryable provider failures retry deterministically and fail the turn only after "
        "exhaustion.",
        CargoTestEvidence(
            "lash-core",
            "retryable_llm_failures_exhaust_and_fail_turn",
            None,
            out_of_scope=OUTSIDE_KERNEL,
        ),
    ),
    DurableFaultRow(
        "protocol-provider-failure",
        DurableFaultKind.PROVIDER_FAILURE_RETRY,
        "A protocol-level provider failure stops without creating a checkpoint.",
        CargoTestEvidence(
            "lash-protocol-standard",
            "standard_protocol_scenario_provider_error_stops_without_checkpoint",
            None,
            test_target="protocol_scenarios",
            out_of_scope=OUTSIDE_KERNEL,
        ),
    ),
    DurableFaultRow(
        "checkpoint-redrive-cancel",
        DurableFaultKind.CANCELLATION,
        "Active-turn and next-turn cancellation prevent a later redrive after checkpoint deferral.",
        RuntimeScenarioEvidence(
            "runtime_scenario_defers_checkpoint_turn_input_and_respects_cancel"
        ),
    ),
    DurableFaultRow(
        "lease-release-fence",
        DurableFaultKind.LEASE_LOSS,
        "A released lease cannot commit with a stale fence.",
        RuntimeScenarioEvidence("runtime_scenario_rejects_commit_after_session_lease_release"),
    ),
    DurableFaultRow(
        "dead-lease-reclaim",
        DurableFaultKind.LEASE_LOSS,
        "A dead local holder can be reclaimed; a stale observed-holder reclaim cannot clear the "
        "newer fence.",
        RuntimeScenarioEvidence(
            "runtime_scenario_reclaims_dead_session_lease_and_rejects_stale_observation"
        ),
    ),
    DurableFaultRow(
        "queued-work-claim-generation-supersession",
        DurableFaultKind.LEASE_LOSS,
        "A queue claim superseded by a new lease generation is rejected at commit.",
        CargoTestEvidence(
            "lash-core",
            "queued_work_claims_supersede_across_session_lease_generations",
            f"{ROWS_FILE}::test_queued_work_claims_supersede_across_session_lease_generations",
        ),
    ),
    DurableFaultRow(
        "deferred-next-turn-generation-reclaim",
        DurableFaultKind.LEASE_LOSS,
        "A failed turn's DeferredNextTurn claim is reclaimed under a new generation and its "
        "stale completion is rejected.",
        CargoTestEvidence(
            "lash-core",
            "turn_input_claims_supersede_across_session_lease_generations",
            f"{ROWS_FILE}::test_turn_input_claims_supersede_across_session_lease_generations",
        ),
    ),
    DurableFaultRow(
        "same-generation-claim-bounded-scan",
        DurableFaultKind.LEASE_LOSS,
        "More than 32 same-generation claims cannot hide a later unclaimed queue, command or "
        "input row.",
        CargoTestEvidence(
            "lash-core",
            "same_generation_claim_scans_reach_rows_beyond_the_scan_surplus",
            f"{ROWS_FILE}::test_same_generation_claim_scans_reach_rows_beyond_the_scan_surplus",
        ),
    ),
    DurableFaultRow(
        "trigger-delivery-reserve-start-crash-window",
        DurableFaultKind.TRIGGER_DELIVERY_RECOVERY,
        "A reserved trigger delivery with no process row is reconciled into exactly one "
        "process start.",
        CargoTestEvidence(
            "lash-core",
            "sweep_reconciles_reserved_trigger_delivery_without_process",
            None,
            out_of_scope=OUTSIDE_KERNEL,
        ),
    ),
    DurableFaultRow(
        "trigger-delivery-prune-orphan-retention",
        DurableFaultKind.TRIGGER_DELIVERY_RECOVERY,
        "Retention prunes delivery rows together with terminal process rows, so nothing is "
        "resurrected.",
        CargoTestEvidence(
            "lash-core",
            "sweep_does_not_reconcile_trigger_delivery_pruned_with_terminal_process",
            None,
            out_of_scope=OUTSIDE_KERNEL,
        ),
    ),
    DurableFaultRow(
        "sqlite-backend-conformance",
        DurableFaultKind.BACKEND_PERMUTATION,
        "SQLite runs the full backend conformance contract.",
        CargoTestEvidence(
            "lash-sqlite-store",
            "conformance",
            "tests/test_persistence_conformance.py",
            test_target="conformance",
        ),
    ),
    DurableFaultRow(
        "postgres-backend-conformance",
        DurableFaultKind.BACKEND_PERMUTATION,
        "The same contract runs on Postgres when it is configured.",
        BlockedEvidence(
            "fast confidence cannot require an external Postgres service; the PostgreSQL "
            "backend is not built yet"
        ),
    ),
)
