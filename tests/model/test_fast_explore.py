"""The exploration engine: progress and memory cap, packed states, the C path, symmetry."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import replace

import pytest
from lashspec.model import fastexplore
from lashspec.model.dsl import (
    TRUE,
    Action,
    Case,
    FlatState,
    IntSort,
    Invariant,
    Model,
    Outcome,
    SortError,
    Var,
    Variable,
    compile_model,
)
from lashspec.model.explore import (
    ExplorationError,
    ExplorationResult,
    MemoryCapExceededError,
    Progress,
    Violation,
    explore,
    parse_bytes,
)
from lashspec.model.fastexplore import (
    CORE_BOUNDS,
    EXHAUSTIVE_PROFILES,
    CompilerUnavailableError,
    PackedLayout,
    c_engine_available,
    exhaustive_profile,
    fast_check,
    fast_explore,
    full_profile,
    iter_states,
    owner_symmetry,
    render_c,
)
from lashspec.model.kernel_model import DEFAULT_BOUNDS, SMALLEST_BOUNDS, Bounds, build_model
from lashspec.model.mutants import MUTANTS, build_mutant
from lashspec.model.profiles import PROFILES, profile

TINY = Bounds(
    owners=1,
    max_incarnation=0,
    batches=1,
    inputs=1,
    max_generation=1,
    max_claims_per_row=1,
    max_head_revision=0,
)


def test_progress_reports_states_rate_frontier_and_memory() -> None:
    reports: list[Progress] = []
    result = explore(build_model(TINY), progress=reports.append, progress_every=50)
    assert len(reports) >= 2
    last = reports[-1]
    assert last.discovered == result.state_count
    assert last.frontier == 0
    assert last.memory_bytes > 1 << 20
    assert all(r.frontier >= 0 for r in reports)
    assert [r.processed for r in reports] == sorted(r.processed for r in reports)
    assert "states" in last.describe() and "memory" in last.describe()


def test_time_based_progress_is_throttled() -> None:
    reports: list[Progress] = []
    explore(build_model(TINY), progress=reports.append, progress_interval=3600.0)
    assert len(reports) == 1  # only the final report: nothing was due within the hour


def test_memory_cap_stops_with_a_typed_error() -> None:
    with pytest.raises(MemoryCapExceededError, match="memory cap") as caught:
        explore(build_model(TINY), max_memory_bytes=1 << 20, progress_every=1)
    assert caught.value.rss_bytes > caught.value.cap_bytes == 1 << 20
    assert caught.value.processed >= 1


@pytest.mark.parametrize(
    ("text", "expected"), [("2G", 2 << 30), ("512M", 512 << 20), ("64KiB", 64 << 10), ("10", 10)]
)
def test_parse_bytes(text: str, expected: int) -> None:
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("text", ["", "x", "-1G", "0"])
def test_parse_bytes_rejects_nonsense(text: str) -> None:
    with pytest.raises(ExplorationError):
        parse_bytes(text)


# --------------------------------------------------------------------------------------------
# The fast engine: packed states, C, symmetry (compared with the reference explorer)

# Small enough for ten seeded bugs (about 10,000 states each), wide enough that eight of them
# are caught and that the two owners are there to be permuted.
SEEDED_BUG_BOUNDS = Bounds(
    owners=2,
    max_incarnation=0,
    batches=1,
    inputs=1,
    max_generation=2,
    max_claims_per_row=1,
    max_head_revision=1,
)


# A bug that switches an extension on at any bounds: one generation and no commit keep its
# whole space (the engines explore it all) at 44,074 states instead of 3.4 million.
SEEDED_BUG_BOUNDS_OF = {
    "session1_acquire_expires_session0": replace(
        SEEDED_BUG_BOUNDS, max_generation=1, max_head_revision=0
    ),
}


@pytest.fixture(scope="module", autouse=True)
def _quick_c_builds() -> Iterator[None]:
    # results are compared, not timed: -O0 compiles three times faster
    previous = os.environ.get("LASHSPEC_C_OPT")
    os.environ["LASHSPEC_C_OPT"] = "-O0"
    yield
    if previous is None:
        del os.environ["LASHSPEC_C_OPT"]
    else:
        os.environ["LASHSPEC_C_OPT"] = previous


@pytest.fixture(scope="module")
def c_engine() -> None:
    reason = c_engine_available()
    if reason is None:
        try:
            fast_explore(build_model(TINY), engine="c")
        except CompilerUnavailableError as failure:
            reason = str(failure)
    if reason is not None:
        pytest.skip(f"C engine unavailable: {reason}")


_reference: dict[str, ExplorationResult] = {}


def reference(name: str) -> ExplorationResult:
    if name not in _reference:
        _reference[name] = explore(build_model(profile(name).bounds))
    return _reference[name]


def lengths(violations: Mapping[str, Violation]) -> dict[str, int]:
    return {name: len(v.path) for name, v in violations.items()}


def counts(result: fastexplore.FastExplorationResult) -> tuple[object, ...]:
    """What must not depend on the number of threads: every count, verdict and the length of
    each counterexample (which shortest one is found may differ)."""
    return (
        result.state_count,
        result.edge_count,
        result.full_state_count,
        result.full_edge_count,
        result.max_depth,
        result.deadlocks,
        result.complete,
        result.invariant_status(),
        lengths(result.violations),
    )


def test_packed_layout_round_trips_every_state() -> None:
    result = explore(build_model(TINY))
    layout = PackedLayout(result.model)
    packed = [layout.pack(state) for state in result.states]
    assert len(set(packed)) == result.state_count
    assert list(iter_states(layout, packed)) == result.states
    assert all(p < 1 << layout.bits for p in packed)
    assert layout.from_words(layout.to_words(packed[-1])) == packed[-1]


def test_packed_layout_rejects_values_outside_the_sort() -> None:
    model = build_model(TINY)
    state = list(model.initial_state())
    state[model.slot_offsets()["lease_gen"]] = 99
    with pytest.raises(SortError):
        PackedLayout(model).pack(state)


@pytest.mark.usefixtures("c_engine")
@pytest.mark.parametrize("name", [p.name for p in PROFILES])
def test_c_engine_counts_equal_the_reference_on_every_check_profile(name: str) -> None:
    ref = reference(name)
    fast = fast_explore(ref.model, engine="c")
    assert fast.engine == "c"
    assert (fast.state_count, fast.edge_count) == (ref.state_count, ref.edge_count)
    assert (fast.max_depth, fast.deadlocks) == (ref.max_depth, len(ref.deadlocks))
    assert fast.invariant_status() == ref.invariant_status()
    assert fast.complete and ref.complete
    assert (fast.full_state_count, fast.full_edge_count) == (ref.state_count, ref.edge_count)


def test_packed_python_engine_counts_equal_the_reference() -> None:
    ref = reference("lease")
    fast = fast_explore(ref.model, engine="python")
    assert fast.engine == "python"
    assert (fast.state_count, fast.edge_count) == (ref.state_count, ref.edge_count)
    assert (fast.max_depth, fast.deadlocks) == (ref.max_depth, len(ref.deadlocks))
    assert fast.invariant_status() == ref.invariant_status()


@pytest.mark.usefixtures("c_engine")
@pytest.mark.parametrize("name", [p.name for p in PROFILES])
def test_symmetry_keeps_verdicts_and_full_counts_on_every_check_profile(name: str) -> None:
    ref = reference(name)
    reduced = fast_explore(ref.model, engine="c", symmetry=owner_symmetry(ref.model))
    assert reduced.invariant_status() == ref.invariant_status()
    assert (reduced.full_state_count, reduced.full_edge_count) == (
        ref.state_count,
        ref.edge_count,
    )
    assert reduced.max_depth == ref.max_depth
    if ref.model.bounds["owners"] > 1:
        assert reduced.state_count < 0.6 * ref.state_count
    else:
        assert reduced.state_count == ref.state_count


@pytest.mark.usefixtures("c_engine")
@pytest.mark.parametrize("name", [p.name for p in PROFILES])
def test_parallel_c_engine_counts_equal_the_serial_one_on_every_check_profile(name: str) -> None:
    model = build_model(profile(name).bounds)
    for symmetry in (None, owner_symmetry(model)):
        serial = fast_explore(model, engine="c", symmetry=symmetry)
        for jobs in (2, 3):  # more threads than this machine's cores is fine too
            parallel = fast_explore(model, engine="c", symmetry=symmetry, jobs=jobs)
            assert parallel.jobs == jobs and serial.jobs == 1
            assert counts(parallel) == counts(serial)


@pytest.mark.usefixtures("c_engine")
def test_parallel_counterexamples_are_real_shortest_paths() -> None:
    model = build_mutant("release_ignores_fence", SEEDED_BUG_BOUNDS)
    ref = explore(model)
    parallel = fast_explore(model, engine="c", symmetry=owner_symmetry(model), jobs=2)
    assert ref.violations and lengths(parallel.violations) == lengths(ref.violations)
    compiled = compile_model(model)
    for violation in parallel.violations.values():
        state = model.initial_state()
        for step in violation.path:  # each step is a transition of the unreduced model
            state = next(
                t
                for b, outcome, t in compiled.successors(state)
                if (compiled.bindings[b].action, compiled.bindings[b].params, outcome)
                == (step.action, step.params, step.outcome)
            )
        broken = {model.invariants[k].name for k in compiled.violations(state)}
        assert violation.invariant in broken


@pytest.mark.usefixtures("c_engine")
def test_explorations_that_stop_early_stay_on_one_thread() -> None:
    model = build_mutant("release_ignores_fence", SEEDED_BUG_BOUNDS)
    serial = fast_explore(model, engine="c", stop_on_violation=True)
    parallel = fast_explore(model, engine="c", stop_on_violation=True, jobs=2)
    assert parallel.jobs == 1 and not parallel.complete
    assert counts(parallel) == counts(serial)
    limited = fast_explore(model, engine="c", max_states=500, jobs=2)
    assert (limited.jobs, limited.state_count, limited.complete) == (1, 500, False)


def _overflowing_counter() -> Model:
    x = Var("x")
    return Model(
        name="overflow",
        variables=(Variable("x", IntSort(0, 3)),),
        init={"x": 0},
        actions=(Action("inc", {}, TRUE, [Case(TRUE, {"x": x + 1}, Outcome("Ok"))]),),
        invariants=(Invariant("small", "x stays small", "test", x <= 3),),
    )


@pytest.mark.usefixtures("c_engine")
def test_parallel_engine_reports_the_state_that_leaves_its_sort() -> None:
    model = _overflowing_counter()
    with pytest.raises(SortError) as serial:
        fast_explore(model, engine="c")
    with pytest.raises(SortError) as parallel:
        fast_explore(model, engine="c", jobs=2)
    assert str(parallel.value) == str(serial.value)
    with pytest.raises(ExplorationError, match="jobs"):
        fast_explore(model, engine="c", jobs=0)


# Under symmetry, the seeded bugs whose counterexamples involve both owners (a takeover, a
# foreign release, a stale commit); the other bugs are compared without it, to keep CI short.
SYMMETRY_BUGS = ("renew_bumps_fencing_token", "release_ignores_fence", "commit_keeps_lease")


@pytest.mark.usefixtures("c_engine")
@pytest.mark.parametrize("bug", [m.name for m in MUTANTS])
def test_seeded_bugs_same_verdicts_and_counterexamples_on_both_engines(bug: str) -> None:
    model = build_mutant(bug, SEEDED_BUG_BOUNDS_OF.get(bug, SEEDED_BUG_BOUNDS))
    try:
        fast = fast_explore(model, engine="c")
    except SortError:
        # packed states cannot hold a value outside its sort: the C engine stops where the
        # checked reference explorer stops too (the unchecked one would carry on silently)
        with pytest.raises(SortError):
            explore(model, checked=True)
        return
    ref = explore(model)
    assert fast.state_count == ref.state_count
    assert fast.invariant_status() == ref.invariant_status()
    assert lengths(fast.violations) == lengths(ref.violations)
    # same BFS order without symmetry: the very same shortest counterexamples
    assert {n: v.path for n, v in fast.violations.items()} == {
        n: v.path for n, v in ref.violations.items()
    }
    # two threads: the same counts and verdicts, counterexamples just as short
    assert counts(fast_explore(model, engine="c", jobs=2)) == counts(fast)
    if bug in SYMMETRY_BUGS:
        reduced = fast_explore(model, engine="c", symmetry=owner_symmetry(model))
        assert ref.violations
        assert reduced.invariant_status() == ref.invariant_status()
        assert lengths(reduced.violations) == lengths(ref.violations)
        assert reduced.full_state_count == ref.state_count > reduced.state_count
        parallel = fast_explore(model, engine="c", symmetry=owner_symmetry(model), jobs=2)
        assert counts(parallel) == counts(reduced)


def test_packed_python_engine_with_symmetry_finds_the_same_bugs() -> None:
    model = build_mutant("release_ignores_fence", SEEDED_BUG_BOUNDS)
    ref = explore(model)
    reduced = fast_explore(model, engine="python", symmetry=owner_symmetry(model))
    assert ref.violations
    assert lengths(reduced.violations) == lengths(ref.violations)
    assert (reduced.full_state_count, reduced.full_edge_count) == (
        ref.state_count,
        ref.edge_count,
    )
    assert reduced.state_count < ref.state_count


def _swap_owners(model: Model, state: FlatState) -> FlatState:
    decoded = model.decode(state)
    for name, value in decoded.items():
        if name.startswith("owner_"):
            decoded[name] = {0: value[1], 1: value[0]}
    holder = decoded["lease_holder"]
    decoded["lease_holder"] = 1 - holder if holder in (0, 1) else holder
    return model.encode(decoded)


def test_owner_symmetry_commutes_with_every_transition() -> None:
    # the soundness condition of the reduction, on every state of the two-owner lease profile
    ref = reference("lease")
    compiled = compile_model(ref.model)
    for state in ref.states[::97]:
        swapped = _swap_owners(ref.model, state)
        images = {_swap_owners(ref.model, t) for _, _, t in compiled.successors(state)}
        assert images == {t for _, _, t in compiled.successors(swapped)}
        assert set(compiled.violations(state)) == set(compiled.violations(swapped))


@pytest.mark.usefixtures("c_engine")
def test_c_engine_reports_progress_and_stops_at_the_memory_cap() -> None:
    model = build_model(profile("lease").bounds)
    reports: list[Progress] = []
    fast_explore(model, engine="c", progress=reports.append, progress_interval=1e-9)
    assert len(reports) >= 2 and reports[-1].frontier == 0
    with pytest.raises(MemoryCapExceededError):
        fast_explore(model, engine="c", max_memory_bytes=1 << 20)


def test_auto_engine_falls_back_to_python_without_a_compiler(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_compiler(source: str, optimisation: str | None = None) -> None:
        raise CompilerUnavailableError("no compiler in this test")

    monkeypatch.setattr(fastexplore, "build_c", no_compiler)
    result = fast_explore(build_model(TINY))
    assert result.engine == "python"
    assert result.fallback_reason == "no compiler in this test"
    assert result.state_count == explore(build_model(TINY)).state_count
    with pytest.raises(CompilerUnavailableError):
        fast_explore(build_model(TINY), engine="c")


def test_generated_c_is_deterministic() -> None:
    model = build_model(TINY)
    assert render_c(model) == render_c(build_model(TINY))
    assert "static int successors" in render_c(model)


@pytest.mark.usefixtures("c_engine")
def test_fast_check_summarises_like_the_checking_api() -> None:
    model = build_model(TINY)
    summary = fast_check(model)
    assert summary.ok
    assert summary.states == explore(model).state_count
    assert summary.extra["engine"] == "c"
    assert full_profile().bounds == DEFAULT_BOUNDS


def test_the_exhaustive_profiles_are_the_defaults_and_the_core_store_at_its_defaults() -> None:
    assert [exhaustive_profile(name).name for name in EXHAUSTIVE_PROFILES] == ["core", "full"]
    assert exhaustive_profile("full").bounds == DEFAULT_BOUNDS
    core = exhaustive_profile("core").bounds
    assert core == CORE_BOUNDS
    differing = {k for k, v in core.as_dict().items() if DEFAULT_BOUNDS.as_dict()[k] != v}
    # only the five bounds trace format 2 added, each at its smallest
    assert differing == {"ttl_steps", "exact_claims", "head_cas", "turns", "multi_cancel"}
    assert all(getattr(core, k) == getattr(SMALLEST_BOUNDS, k) for k in differing)
    with pytest.raises(ValueError, match="no exhaustive profile 'huge'"):
        exhaustive_profile("huge")
