"""Metadata checks of the durable fault matrix, and that its executable evidence exists."""

from __future__ import annotations

import ast
from pathlib import Path

from .fault_matrix import (
    DURABLE_FAULT_MATRIX,
    BlockedEvidence,
    CargoTestEvidence,
    DurableFaultKind,
    RuntimeScenarioEvidence,
)
from .test_runtime_scenarios import RUNTIME_SCENARIO_TEST_NAMES

ROOT = Path(__file__).resolve().parents[2]


def _test_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}


def test_durable_fault_matrix_has_fourteen_rows() -> None:
    assert len(DURABLE_FAULT_MATRIX) == 14


def test_durable_fault_matrix_covers_required_fault_classes() -> None:
    assert {row.kind for row in DURABLE_FAULT_MATRIX} == set(DurableFaultKind)


def test_durable_fault_matrix_rows_have_executable_or_blocked_evidence() -> None:
    ids = [row.id for row in DURABLE_FAULT_MATRIX]
    assert len(ids) == len(set(ids)), "fault matrix ids must be unique"
    for row in DURABLE_FAULT_MATRIX:
        assert row.contract.strip(), f"{row.id} needs a contract"
        evidence = row.evidence
        if isinstance(evidence, RuntimeScenarioEvidence):
            assert evidence.test_name in RUNTIME_SCENARIO_TEST_NAMES, row.id
        elif isinstance(evidence, CargoTestEvidence):
            assert evidence.package.strip() and evidence.filter.strip(), row.id
            for optional in (evidence.test_target, evidence.required_env):
                assert optional is None or optional.strip(), row.id
            assert (evidence.executed_by is None) == (evidence.out_of_scope is not None), row.id
        else:
            assert isinstance(evidence, BlockedEvidence)
            assert len(evidence.rationale.split()) >= 5, row.id


def test_durable_fault_matrix_executes_all_in_scope_evidence() -> None:
    """Every in-scope row names a test of this repository that exists (the fast gate)."""
    for row in DURABLE_FAULT_MATRIX:
        evidence = row.evidence
        if not isinstance(evidence, CargoTestEvidence) or evidence.executed_by is None:
            continue
        path_text, _, test_name = evidence.executed_by.partition("::")
        path = ROOT / path_text
        assert path.is_file(), f"{row.id}: {path_text} does not exist"
        if test_name:
            assert test_name in _test_functions(path), f"{row.id}: {test_name} missing"
        else:
            assert any(name.startswith("test_") for name in _test_functions(path)), row.id
