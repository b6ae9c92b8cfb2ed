"""The mutation-testing harness: the mutator, killing known-bad mutants, triage freshness.

The whole campaign is not run here (``python -m lashspec.conformance.mutation`` does that);
known-bad mutants are replayed against a few of the seed's scenario traces only.
"""

from __future__ import annotations

import ast
import sys
import time
from pathlib import Path

import pytest
from lashspec.conformance.itf import Trace, write_trace
from lashspec.conformance.modeltrace import ModelRunner, trace_of
from lashspec.conformance.mutation import (
    OPERATORS,
    CampaignRun,
    KernelSnapshot,
    ModuleMutator,
    Mutant,
    MutantTimeout,
    all_mutants,
    build_store_class,
    judge,
    render_markdown,
    run_campaign,
    text_report,
    time_limit,
    triage_of,
)
from lashspec.conformance.mutation_triage import ANY, TRIAGE
from lashspec.conformance.seed_traces import SEED_SCENARIO_TRACES
from lashspec.model.profiles import SCENARIO_BOUNDS

SAMPLE = '''
def decide(a: int, b: int | None, flags: list[int]) -> int | None:
    """Docstrings are not mutated."""
    assert a >= 0
    if a == 1 and not flags:
        raise ValueError(f"bad {a + 1}")
    flags.append(a + 1)
    if b is None or a in flags:
        return None
    return b if a < 2 else a + 1


def check(x: int) -> bool:
    x += 1
    return True
'''


@pytest.fixture(scope="module")
def sample() -> ModuleMutator:
    return ModuleMutator("sample", SAMPLE, "<sample>")


def test_every_operator_makes_a_mutant_of_the_sample(sample: ModuleMutator) -> None:
    assert {m.operator for m in sample.mutants} == set(OPERATORS)


def test_sample_mutants_compile_and_are_distinct(sample: ModuleMutator) -> None:
    original = sample.mutated_source()
    sources = []
    for mutant in sample.mutants:
        sample.code(mutant.index)  # compiles
        source = sample.mutated_source(mutant.index)
        ast.parse(source)
        assert source != original, mutant
        sources.append(source)
    assert len(set(sources)) == len(sources)
    assert sample.mutated_source() == original  # every mutation was undone


def test_asserts_docstrings_and_fstrings_are_left_alone(sample: ModuleMutator) -> None:
    assert not [m for m in sample.mutants if m.line in (3, 4)]
    assert not [m for m in sample.mutants if "bad" in m.original and m.operator != "raise"]
    raises = [m for m in sample.mutants if m.operator == "raise"]
    assert [(m.original_line, m.mutated_line) for m in raises] == [
        ('raise ValueError(f"bad {a + 1}")', "pass")
    ]


def test_sample_mutants_are_the_documented_ones(sample: ModuleMutator) -> None:
    made = {(m.function, m.operator, m.original, m.mutated) for m in sample.mutants}
    expected = {
        ("decide", "compare", "a == 1", "a != 1"),
        ("decide", "boolop", "a == 1 and (not flags)", "a == 1 or not flags"),
        ("decide", "not", "not flags", "flags"),
        ("decide", "if_not", "a == 1 and (not flags)", "not (a == 1 and (not flags))"),
        ("decide", "call", "flags.append(a + 1)", "pass"),
        ("decide", "add_one", "a + 1", "a + 0"),
        ("decide", "constant", "a + 1", "a + 2"),
        ("decide", "compare", "b is None", "b is not None"),
        ("decide", "compare", "a in flags", "a not in flags"),
        ("decide", "compare", "a < 2", "a <= 2"),
        ("decide", "constant", "a < 2", "a < 3"),
        ("decide", "constant", "a < 2", "a < 1"),
        ("decide", "if_not", "a < 2", "not a < 2"),
        ("decide", "return", "return b if a < 2 else a + 1", "return None"),
        ("check", "add_one", "x += 1", "x += 0"),
        ("check", "return", "return True", "return False"),
    }
    assert expected <= made
    # `x + 1` -> `x + 0` belongs to add_one only, never again to the constant operator
    assert ("decide", "constant", "a + 1", "a + 0") not in made
    # `return None` is never replaced by itself
    assert not [m for m in sample.mutants if m.original == "return None"]


def test_identical_snippets_in_one_function_are_numbered(sample: ModuleMutator) -> None:
    numbered = [
        m.occurrence
        for m in sample.mutants
        if (m.function, m.operator, m.original) == ("decide", "add_one", "a + 1")
    ]
    assert numbered == [1, 2]


def test_time_limit_interrupts_a_hanging_mutant() -> None:
    started = time.perf_counter()
    with pytest.raises(MutantTimeout), time_limit(0.2):
        while True:
            pass
    assert time.perf_counter() - started < 5


# -- known-bad kernel mutants against a few seed scenarios ------------------------------------


@pytest.fixture(scope="module")
def scenario_traces() -> list[Trace]:
    runner = ModelRunner(SCENARIO_BOUNDS)
    chosen = ("command_before_turn", "lease_release_fault", "turn_input_completion")
    return [
        trace_of(runner, [(a, dict(p)) for a, p in SEED_SCENARIO_TRACES[name][1]], name)
        for name in chosen
    ]


@pytest.fixture(scope="module")
def kernel() -> dict[str, ModuleMutator]:
    return KernelSnapshot.from_files().mutators()


def _find(
    mutators: dict[str, ModuleMutator], function: str, operator: str, original: str
) -> Mutant:
    found = [
        m
        for m in mutators["engine"].mutants
        if (m.function, m.operator, m.original) == (function, operator, original)
    ]
    assert found, (function, operator, original)
    return found[-1]


def test_the_unmutated_kernel_passes_the_scenarios(
    kernel: dict[str, ModuleMutator], scenario_traces: list[Trace]
) -> None:
    verdict = judge(kernel, None, scenario_traces, 30)
    assert verdict.status == "survived", verdict


def test_a_commit_that_keeps_the_lease_is_killed(
    kernel: dict[str, ModuleMutator], scenario_traces: list[Trace]
) -> None:
    # the last occurrence is the release after a fresh commit (the first replays a stamp)
    mutant = _find(
        kernel,
        "StoreEngine.commit_runtime_state.op",
        "call",
        "self._release(tx, commit.release_session_execution_lease)",
    )
    verdict = judge(kernel, mutant.ref, scenario_traces, 30)
    assert verdict.status == "diverged", verdict
    assert "lease_holder" in verdict.detail or "lease_live" in verdict.detail


def test_a_flipped_fencing_comparison_is_killed(
    kernel: dict[str, ModuleMutator], scenario_traces: list[Trace]
) -> None:
    mutant = _find(
        kernel, "StoreEngine._validate_fence", "compare", "row.fencing_token != fence.fencing_token"
    )
    assert mutant.mutated == "row.fencing_token == fence.fencing_token"
    verdict = judge(kernel, mutant.ref, scenario_traces, 30)
    assert verdict.killed, verdict


def test_mutants_never_leak_into_the_imported_kernel(kernel: dict[str, ModuleMutator]) -> None:
    from lashspec.kernel import engine, memory, rules

    before = {name: sys.modules[name] for name in ("lashspec.kernel.engine",)}
    mutant = _find(
        kernel, "StoreEngine._validate_fence", "compare", "row.fencing_token != fence.fencing_token"
    )
    codes = {name: m.code() for name, m in kernel.items()}
    codes["engine"] = kernel["engine"].code(mutant.index)
    store_class = build_store_class(codes)
    assert store_class is not memory.InMemoryStore
    assert store_class.__mro__[1] is not engine.StoreEngine
    assert sys.modules["lashspec.kernel.engine"] is before["lashspec.kernel.engine"]
    import lashspec.kernel as package

    assert (package.engine, package.rules, package.memory) == (engine, rules, memory)


# -- triage ------------------------------------------------------------------------------------


def test_every_triage_entry_matches_a_mutant_made_today() -> None:
    mutants = all_mutants()
    stale = [
        key
        for key in TRIAGE
        if not any(
            key.matches(m.file, m.function, m.operator, m.original, m.mutated, m.occurrence)
            for m in mutants
        )
    ]
    assert not stale, (
        "triage entries matching no mutant (update mutation_triage.py):\n"
        + "\n".join(map(repr, stale))
    )


def test_whole_function_entries_are_for_functions_only() -> None:
    for key in TRIAGE:
        if key.operator == ANY:
            assert key.original == key.mutated == ANY and key.occurrence == 0, key


# -- a small campaign through the worker processes --------------------------------------------


def test_a_small_campaign_runs_through_workers(
    tmp_path: Path, scenario_traces: list[Trace]
) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    for trace in scenario_traces:
        write_trace(trace, suite / f"{trace.trace_id}.itf.json")
    # the first if_not mutant of rules negates the command gate, which the scenarios see
    run = run_campaign(
        ("rules",),
        ("if_not",),
        jobs=2,
        timeout_s=20,
        suite_dir=suite,
        limit=4,
        progress=lambda _: None,
    )
    assert run.total == 4
    assert {r.verdict.status for r in run.results} <= {"diverged", "error", "timeout", "survived"}
    assert run.killed >= 1
    again = CampaignRun.from_json(run.to_json())
    assert again.results == run.results
    report = text_report(run)
    assert f"mutants {run.total}, killed {run.killed}" in report
    page = render_markdown(run)
    assert "## What the score means" in page
    for survivor in run.survivors:
        assert survivor.mutant.where in page
        assert triage_of(survivor.mutant) is not None or "Untriaged" in page
