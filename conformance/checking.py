"""The jobs behind the command line: check, explore, export, replay.

Each job takes plain arguments, reports progress through a callback (the CLI prints it on
stderr with elapsed time) and returns a result object with ``ok``, ``summary_rows()`` for the
CLI's table and, for ``check``, ``to_json()`` for ``--report``. Nothing here prints.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..model.check import CheckResult, check_explicit, check_phase_order
from ..model.dsl import Model
from ..model.explore import ExplorationResult, MemoryCapExceededError, explore
from ..model.explore import Progress as ExploreReport
from ..model.fastexplore import EXHAUSTIVE_PROFILES
from ..model.kernel_model import DEFAULT_BOUNDS, Bounds, BoundsError, build_model
from ..model.machine_model import MachineBounds, build_machine_model
from ..model.mutants import MUTANTS
from ..model.profiles import MACHINE_PROFILES, PROFILES, MachineProfile, Profile
from .broken_kernels import broken_memory_store_factory
from .generate import Suite, generate_suite, shortest_counterexample, write_suite
from .itf import Trace, TraceFormatError, collector_paused, read_trace, read_trace_document
from .kernel_adapter import KernelAdapter
from .machine_suite import (
    MachineSuite,
    generate_machine_suite,
    write_machine_suite,
)
from .replay import (
    LOAD_PROGRESS_SECONDS,
    ReplayReport,
    ReplayTarget,
    TraceFiles,
    TraceLoadError,
    can_replay_in_workers,
    kernel_target,
    kernel_targets,
    replay_all,
    replay_in_workers,
)

Progress = Callable[[str], None]
ExploreProgress = Callable[[ExploreReport], None]
DOT_MAX_NODES = 500  # a picture, not a data export: GraphML is for large graphs
EXPORT_MAX_STATES = 200_000  # keeping every transition costs memory


def _quiet(_: str) -> None:
    return None


def _reaped_children_cpu() -> float:
    """CPU seconds of this process's children that have ended and been waited for."""
    times = os.times()
    return times.children_user + times.children_system


def _seconds_since(started: float) -> float:
    """CPU seconds of this process since ``started`` (``time.process_time``): what a stage
    costs, whatever else the machine runs."""
    return time.process_time() - started


class JobError(Exception):
    """A job cannot run as asked (bad bounds, unreadable traces); the CLI exits 2."""


def profiles_for(bounds: Mapping[str, int], profile: str | None = None) -> tuple[Profile, ...]:
    """The check profiles, the one named ``profile``, or one custom profile when bounds are
    given on the command line (``core`` and ``full`` are not check profiles: see
    ``_exhaustive_stage``)."""
    if profile is not None:
        if bounds:
            raise JobError("--profile and the bound options both choose what to explore: give one")
        chosen = tuple(p for p in PROFILES if p.name == profile)
        if not chosen:
            known = ", ".join([p.name for p in PROFILES] + list(EXHAUSTIVE_PROFILES))
            raise JobError(f"no profile {profile!r} (profiles: {known})")
        return chosen
    if not bounds:
        return PROFILES
    try:
        custom = Bounds(**dict(bounds))
    except BoundsError as error:
        raise JobError(str(error)) from None
    return (Profile("custom", custom, "bounds given on the command line"),)


# ---------------------------------------------------------------------------
# check
# ---------------------------------------------------------------------------


@dataclass
class CheckStage:
    name: str
    ok: bool
    detail: str
    data: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class CheckReport:
    stages: list[CheckStage] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(stage.ok for stage in self.stages)

    def summary_rows(self) -> list[tuple[str, str, str]]:
        return [(s.name, "ok" if s.ok else "FAIL", s.detail) for s in self.stages]

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "stages": [
                {
                    "name": s.name,
                    "ok": s.ok,
                    "detail": s.detail,
                    "seconds": round(s.seconds, 3),
                    **s.data,
                }
                for s in self.stages
            ],
        }


def _memory_cap_error(error: MemoryCapExceededError) -> JobError:
    """The cap as the CLI reports it: one line naming the cap and the states reached."""
    return JobError(str(error).splitlines()[0])


def _check_explicit(
    model: Model, progress: ExploreProgress | None, max_memory_bytes: int | None
) -> tuple[CheckResult, ExplorationResult]:
    """``model.check.check_explicit`` with time-based progress (about every 2 s) and a cap on
    resident memory (``MemoryCapExceededError`` becomes a ``JobError``)."""
    try:
        return check_explicit(
            model, progress=progress, progress_every=None, max_memory_bytes=max_memory_bytes
        )
    except MemoryCapExceededError as error:
        raise _memory_cap_error(error) from None


def _explore_stage(
    prof: Profile, progress: Progress, max_memory_bytes: int | None = None
) -> tuple[CheckStage, CheckResult, ExplorationResult]:
    started, cpu = time.perf_counter(), time.process_time()
    progress(f"explore {prof.name}: {prof.purpose}")
    summary, result = _check_explicit(
        build_model(prof.bounds),
        lambda p: progress(f"explore {prof.name}: {p.describe()}"),
        max_memory_bytes,
    )
    failed = [s.name for s in summary.invariants if not s.holds]
    detail = (
        f"{summary.states:,} states, {summary.edges:,} edges, depth {summary.max_depth}, "
        f"{len(summary.invariants) - len(failed)}/{len(summary.invariants)} invariants hold"
    )
    if failed:
        detail += "; violated: " + ", ".join(failed)
    stage = CheckStage(
        f"explore:{prof.name}",
        not failed and summary.complete,
        detail,
        {"result": summary.to_dict(), "cpu_seconds": round(_seconds_since(cpu), 3)},
        time.perf_counter() - started,
    )
    return stage, summary, result


def _exhaustive_stage(
    name: str,
    progress: Progress,
    max_memory_bytes: int | None = None,
    jobs: int | None = None,
) -> CheckStage:
    """The exhaustive profile ``name`` (``core``: ``CORE_BOUNDS``, ``full``:
    ``DEFAULT_BOUNDS``): the C engine (``fast_check``) under owner symmetry, on ``jobs``
    threads (default: the CPUs this process may use).

    Measured: see EXHAUSTIVE_PROFILE_HELP in cli.py; without a C compiler the pure-Python
    fallback cannot finish it (the progress lines and the detail say which engine ran).
    """
    from ..model.fastexplore import (
        FULL_OPTIMISATION,
        exhaustive_profile,
        fast_check,
        owner_symmetry,
    )

    started, cpu = time.perf_counter(), time.process_time()
    prof = exhaustive_profile(name)
    progress(f"explore {prof.name}: {prof.purpose}")
    model = build_model(prof.bounds)
    try:
        summary = fast_check(
            model,
            symmetry=owner_symmetry(model),
            max_memory_bytes=max_memory_bytes,
            progress=lambda p: progress(f"explore {prof.name}: {p.describe()}"),
            jobs=jobs,
            optimisation=FULL_OPTIMISATION,
        )
    except MemoryCapExceededError as error:
        raise _memory_cap_error(error) from None
    failed = [s.name for s in summary.invariants if not s.holds]
    detail = (
        f"{summary.states:,} states ({summary.extra['orbit_states']:,} orbits), "
        f"{summary.edges:,} edges, depth {summary.max_depth}, "
        f"{len(summary.invariants) - len(failed)}/{len(summary.invariants)} invariants hold, "
        f"engine {summary.extra['engine']}"
    )
    if summary.extra["engine"] == "c":
        threads = summary.extra["jobs"]
        detail += f" on {threads} thread{'s' if threads > 1 else ''}"
    if "fallback_reason" in summary.extra:
        detail += f" (C engine unavailable: {summary.extra['fallback_reason']})"
    if failed:
        detail += "; violated: " + ", ".join(failed)
    return CheckStage(
        f"explore:{prof.name}",
        not failed and summary.complete,
        detail,
        {"result": summary.to_dict(), "cpu_seconds": round(_seconds_since(cpu), 3)},
        time.perf_counter() - started,
    )


@dataclass(frozen=True)
class CheckOptions:
    """What ``lashspec check`` was asked for, as every stage runner sees it."""

    bmc_depth: int | None = None
    skip_z3: bool = False


StageRunner = Callable[[CheckOptions, Progress], list[CheckStage]]


def _phase_order_stage(progress: Progress) -> CheckStage:
    started, cpu = time.perf_counter(), time.process_time()
    progress("explore the phase-order automaton")
    summary = check_phase_order()
    return CheckStage(
        "explore:phase-order",
        summary.complete,
        f"{summary.states} states, {summary.edges} edges",
        {"result": summary.to_dict(), "cpu_seconds": round(_seconds_since(cpu), 3)},
        time.perf_counter() - started,
    )


def _mutant_stage(progress: Progress) -> CheckStage:
    """The explorer must catch every seeded model bug: a checker that cannot fail is no check.

    Mutants are explored at the default bounds (a stale observation needs a third generation,
    a self-steal a second claim of one row), or at their own bounds when they name some (a bug
    of an extension the default bounds switch off), until the first violating state, which
    breadth first search reaches after a few thousand states.
    """
    started, cpu = time.perf_counter(), time.process_time()
    caught: dict[str, Any] = {}
    for mutant in MUTANTS:
        progress(f"seeded bug {mutant.name}")
        shortest = shortest_counterexample(mutant.name, mutant.bounds or DEFAULT_BOUNDS)
        if shortest is not None:
            caught[mutant.name] = {
                "invariant": shortest.invariant,
                "expected": mutant.expected_invariant,
                "steps": len(shortest.path),
            }
    missed = [m.name for m in MUTANTS if m.name not in caught]
    detail = f"{len(caught)}/{len(MUTANTS)} seeded model bugs caught by the explorer"
    if missed:
        detail += "; missed: " + ", ".join(missed)
    data = {"caught": caught, "cpu_seconds": round(_seconds_since(cpu), 3)}
    return CheckStage("seeded-bugs", not missed, detail, data, time.perf_counter() - started)


CHECK_BMC_DEPTH = 8
"""Default depth of the check's store BMC (``z3:bmc``; ``--bmc-depth`` overrides it).

Depth 8 is past the longest shortest counterexample of the ten seeded store bugs (5 steps,
docs/model.md §5: BMC from the initial state finds every one of them by depth 5) with three
steps to spare, and every invariant is proved inductive at the same bounds by
``z3:induction``, so deeper unrolling adds only the well-formedness and encoding cross-check
of longer runs. Each depth costs more than the last: measured with time.process_time on the
shared 2-core machine at ``DEFAULT_BOUNDS``, depths 0-8 take 114 s of CPU time, depths 0-10
(``z3check.DEFAULT_BMC_DEPTH``, still the default of ``python -m lashspec.model.z3check``)
204 s (docs/model.md §4)."""


def _z3_stages(bmc_depth: int | None, progress: Progress) -> list[CheckStage]:
    """Inductiveness (at the default bounds and with the counter bounds symbolic) and BMC."""
    from ..model import z3check

    stages: list[CheckStage] = []
    for label, symbolic in (("z3:induction", False), ("z3:induction-unbounded", True)):
        cpu = time.process_time()
        progress(f"{label}: proving every invariant inductive")
        report = (
            z3check.prove_kernel_unbounded(DEFAULT_BOUNDS)
            if symbolic
            else z3check.prove_kernel(DEFAULT_BOUNDS)
        )
        proved = sum(p.proved for p in report.proofs)
        detail = f"{proved}/{len(report.proofs)} invariants and lemmas inductive"
        if report.symbolic_bounds:
            detail += f" for every {', '.join(report.symbolic_bounds)}"
        if not report.inductive:
            detail += "; not proved: " + ", ".join(report.failed())
            progress(z3check.format_induction(report))
        stages.append(
            CheckStage(
                label,
                report.inductive,
                detail,
                {"report": report.to_dict(), "cpu_seconds": round(_seconds_since(cpu), 3)},
                report.seconds,
            )
        )
    depth = bmc_depth if bmc_depth is not None else CHECK_BMC_DEPTH
    cpu = time.process_time()
    progress(f"z3:bmc: unrolling to depth {depth}")
    result = z3check.bmc_kernel(
        DEFAULT_BOUNDS,
        depth,
        progress=lambda p: progress(
            f"z3:bmc: depth {p.depth} in {p.depth_seconds:.1f}s, {p.violations} violations"
        ),
    )
    detail = f"no violation within {result.checked_depth} steps of the initial state"
    if not result.ok:
        detail = "violated: " + ", ".join(sorted(result.violations))
        progress(z3check.format_bmc(result))
    stages.append(
        CheckStage(
            "z3:bmc",
            result.ok and result.complete,
            detail,
            {"report": result.to_dict(), "cpu_seconds": round(_seconds_since(cpu), 3)},
            result.seconds,
        )
    )
    return stages


def _suite_stage(
    explored: Mapping[str, ExplorationResult],
    profiles: Sequence[Profile],
    out_dir: Path,
    progress: Progress,
    jobs: int = 1,
) -> tuple[CheckStage, list[Trace]]:
    """Generate the suite (the profiles' parts in ``jobs`` worker processes, whose CPU time
    the stage's counts too), write it and read it back."""
    started, cpu = time.perf_counter(), time.process_time()
    workers_cpu = _reaped_children_cpu()
    suite = generate_suite(profiles, explored=explored, progress=progress, jobs=jobs)
    write_suite(suite, out_dir)
    with collector_paused():
        traces = [read_trace(path) for path in sorted(out_dir.glob("*.itf.json"))]
    unexplained = suite.unexplained_unreached
    covered = len(suite.covered_action_outcomes)
    declared = len(suite.declared_action_outcomes)
    goals = sum(c.goals for c in suite.cover)
    cover_steps = sum(c.steps for c in suite.cover)
    detail = (
        f"{len(suite.traces)} traces ({', '.join(f'{k} {v}' for k, v in suite.kinds().items())}), "
        f"{suite.steps} steps; {covered}/{declared} action x outcome pairs, "
        f"{goals} instance goals in {cover_steps} steps, "
        f"{len(suite.targeted_invariants())}/{len(suite.invariants)} invariants targeted "
        f"({len(suite.boundaries)} boundary traces, {suite.kinds().get('witness', 0)} witnesses)"
    )
    # The check profiles must reach every declared outcome; custom bounds may be too small to.
    must_cover = tuple(profiles) == PROFILES
    if unexplained:
        detail += "; unreached: " + ", ".join(f"{a}/{o}" for a, o in unexplained)
        if not must_cover:
            detail += " (bounds too small to reach them)"
    data = {"suite": suite.index(), "out_dir": str(out_dir), "cpu_seconds": 0.0}
    ok = not (unexplained and must_cover)
    data["cpu_seconds"] = round(_seconds_since(cpu) + _reaped_children_cpu() - workers_cpu, 3)
    stage = CheckStage("suite", ok, detail, data, time.perf_counter() - started)
    return stage, traces


def _replay_stage(
    traces: Sequence[Trace],
    backend: str,
    progress: Progress,
    *,
    label: str = "",
    dsn: str | None = None,
    jobs: int = 1,
) -> CheckStage:
    """Replay ``traces`` on ``backend``; in memory and SQLite in ``jobs`` worker processes
    (replay_in_workers), whose CPU time the stage's counts too."""
    started, cpu = time.perf_counter(), time.process_time()
    workers_cpu = _reaped_children_cpu()
    kind = f"{label.rstrip('-')} " if label else ""
    in_workers = jobs > 1 and backend in ("memory", "sqlite") and len(traces) > 1
    processes = f" in {min(jobs, len(traces))} processes" if in_workers else ""
    progress(f"replay {len(traces)} {kind}traces on {backend}{processes}")
    if in_workers:
        with kernel_targets(backend) as make_target:
            report = replay_in_workers(traces, make_target, jobs, progress)
    else:
        report = replay_all(traces, kernel_target(backend, dsn=dsn), progress=progress)
    seconds = time.perf_counter() - started
    cpu_seconds = _seconds_since(cpu) + _reaped_children_cpu() - workers_cpu
    failures = [r for r in report.results if not r.ok]
    detail = f"{len(traces) - len(failures)}/{len(traces)} traces, {report.actions} actions"
    data: dict[str, Any] = {"actions": report.actions, "cpu_seconds": round(cpu_seconds, 3)}
    if failures:
        first = failures[0]
        assert first.divergence is not None
        detail += f"; first divergence in {first.trace_id}"
        data["first_divergence"] = {"trace": first.trace_id, "report": first.divergence.describe()}
        progress(f"divergence in {first.trace_id}:\n{first.divergence.describe()}")
    return CheckStage(f"replay:{label}{backend}", not failures, detail, data, seconds)


# ---------------------------------------------------------------------------
# check: the turn machine composed with the store (docs/model.md §7)
# ---------------------------------------------------------------------------


def machine_profiles_for(bounds: Mapping[str, int]) -> tuple[MachineProfile, ...]:
    """The machine check profiles, or with custom store bounds one machine profile at those
    bounds with one turn (the store bounds a machine has: ``MachineBounds``)."""
    if not bounds:
        return MACHINE_PROFILES
    known = {f.name for f in fields(MachineBounds)}
    try:
        custom = MachineBounds(**{k: v for k, v in bounds.items() if k in known}, max_turns=1)
    except (ValueError, BoundsError) as error:
        raise JobError(f"machine: {error}") from None
    return (MachineProfile("machine-custom", custom, "store bounds given on the command line"),)


def _machine_explore_stage(
    prof: MachineProfile, progress: Progress, build: Callable[[MachineBounds], Any] | None = None
) -> tuple[CheckStage, ExplorationResult]:
    """Every invariant of the composed model on every state of one machine profile, no
    deadlock; the edges are kept for the rule coverage and the machine suite."""
    started, cpu = time.perf_counter(), time.process_time()
    progress(f"explore {prof.name}: {prof.purpose}")
    model = (build or build_machine_model)(prof.bounds)
    result = explore(
        model,
        keep_edges=True,
        progress=lambda p: progress(
            f"explore {prof.name}: {p.processed:,} processed, {p.discovered:,} discovered, "
            f"depth {p.depth}"
        ),
        progress_interval=10.0,
    )
    invariants = [inv.name for inv in result.model.invariants]
    failed = sorted(result.violations)
    detail = (
        f"{result.state_count:,} states, {result.edge_count:,} edges, depth {result.max_depth}, "
        f"{len(invariants) - len(failed)}/{len(invariants)} invariants hold, "
        f"{len(result.deadlocks)} deadlocks"
    )
    if failed:
        first = result.violations[failed[0]]
        detail += f"; violated: {', '.join(failed)} ({failed[0]} after {len(first.path)} steps)"
    data = {
        "states": result.state_count,
        "edges": result.edge_count,
        "depth": result.max_depth,
        "bounds": prof.bounds.as_dict(),
        "violated": failed,
        "deadlocks": len(result.deadlocks),
        "cpu_seconds": round(_seconds_since(cpu), 3),
    }
    ok = not failed and not result.deadlocks and result.complete
    stage = CheckStage(f"explore:{prof.name}", ok, detail, data, time.perf_counter() - started)
    return stage, result


def _machine_rules_stage(
    explored: Mapping[str, ExplorationResult], must_cover: bool, progress: Progress
) -> CheckStage:
    """The machine profiles together take every row of the rule table (but the documented
    unreachable ones) and reach every cycle outcome; no explored step is outside the table."""
    from ..model.machine_check import UNREACHED_RULES, rule_coverage
    from ..model.machine_model import RULES

    started, cpu = time.perf_counter(), time.process_time()
    progress("machine: rule coverage of the explored profiles")
    coverage = rule_coverage(list(explored.values()))
    rows = {(r.phase, r.event, r.target) for r in RULES}
    detail = (
        f"{len(coverage.taken & rows)}/{len(rows)} rule rows taken "
        f"({len(UNREACHED_RULES)} documented unreachable), "
        f"{len(coverage.outcomes_missed)} cycle outcomes missed"
    )
    if coverage.missed:
        detail += "; rows not taken: " + ", ".join("/".join(r) for r in sorted(coverage.missed))
    if coverage.outcomes_missed:
        detail += "; outcomes missed: " + ", ".join(sorted(coverage.outcomes_missed))
    if coverage.foreign:
        detail += "; steps outside the table: " + ", ".join(
            "/".join(r) for r in sorted(coverage.foreign)
        )
    ok = not coverage.foreign and (coverage.ok or not must_cover)
    if not coverage.ok and not must_cover:
        detail += " (custom bounds: not required)"
    data = {
        "rows": len(rows),
        "taken": len(coverage.taken & rows),
        "missed": sorted("/".join(r) for r in coverage.missed),
        "outcomes_missed": sorted(coverage.outcomes_missed),
        "cpu_seconds": round(_seconds_since(cpu), 3),
    }
    return CheckStage("machine:rules", ok, detail, data, time.perf_counter() - started)


def _machine_mutant_stage(
    progress: Progress, mutants: Sequence[Any] | None = None, *, use_z3: bool = True
) -> CheckStage:
    """Each seeded machine bug is caught by the explorer with its expected invariant, and z3
    BMC over the last steps of that shortest counterexample finds it too (a real run of the
    mutant; not with ``use_z3`` False); the correct model runs the same steps cleanly."""
    from ..model.machine_check import (
        bmc_suffix,
        clean_model_holds,
        explore_mutant,
        replay_witness,
    )
    from ..model.machine_mutants import MACHINE_MUTANTS

    started, cpu = time.perf_counter(), time.process_time()
    caught: dict[str, Any] = {}
    missed: list[str] = []
    chosen = MACHINE_MUTANTS if mutants is None else mutants
    for mutant in chosen:
        progress(f"machine seeded bug {mutant.name}")
        catch = explore_mutant(mutant)
        if not catch.caught:
            missed.append(mutant.name)
            continue
        caught[mutant.name] = {
            "invariant": mutant.expected_invariant,
            "steps": len(catch.path),
            "states_explored": catch.explored.state_count,
            "clean_model_holds": clean_model_holds(catch),
        }
        if use_z3:
            sub, result = bmc_suffix(catch)
            witness = result.violations.get(mutant.expected_invariant)
            caught[mutant.name]["bmc_suffix"] = witness.length if witness is not None else None
            replays = replay_witness(catch.model, sub, result, mutant.expected_invariant)
            caught[mutant.name]["bmc_replays"] = replays
            if not replays:
                missed.append(f"{mutant.name} (z3)")
        if not caught[mutant.name]["clean_model_holds"]:
            missed.append(f"{mutant.name} (the correct model fails too)")
    detail = (
        f"{len(chosen) - len(missed)}/{len(chosen)} seeded machine bugs caught by the explorer"
        + (" and by z3 BMC over the last steps" if use_z3 else " (z3 skipped)")
    )
    if missed:
        detail += "; missed: " + ", ".join(missed)
    data = {"caught": caught, "cpu_seconds": round(_seconds_since(cpu), 3)}
    return CheckStage(
        "machine:seeded-bugs", not missed, detail, data, time.perf_counter() - started
    )


def _machine_z3_stages(
    progress: Progress,
    build: Callable[[MachineBounds], Any] | None = None,
    depth: int | None = None,
) -> list[CheckStage]:
    """Induction of every machine invariant with the lemmas (owner pinned), and BMC from the
    initial state of the same pinned model to ``depth`` (default ``MACHINE_BMC_DEPTH``)."""
    from ..model import z3check
    from ..model.machine_check import INDUCTION_BOUNDS, MACHINE_BMC_DEPTH, pin_owner
    from ..model.machine_model import build_machine_lemmas

    depth = MACHINE_BMC_DEPTH if depth is None else depth

    bounds = INDUCTION_BOUNDS
    model = pin_owner((build or build_machine_model)(bounds))
    lemmas = build_machine_lemmas(bounds)
    started, cpu = time.perf_counter(), time.process_time()
    progress("machine:z3-induction: proving every machine invariant inductive")
    report = z3check.prove_inductive(model, lemmas)
    proved = sum(p.proved for p in report.proofs)
    detail = (
        f"{proved}/{len(report.proofs)} invariants and lemmas inductive at one owner, "
        f"{bounds.batches} batch, {bounds.inputs} input, {bounds.max_turns} turn (owner pinned)"
    )
    if not report.inductive:
        detail += "; not proved: " + ", ".join(report.failed())
        progress(z3check.format_induction(report))
    stages = [
        CheckStage(
            "machine:z3-induction",
            report.inductive,
            detail,
            {"report": report.to_dict(), "cpu_seconds": round(_seconds_since(cpu), 3)},
            time.perf_counter() - started,
        )
    ]
    started, cpu = time.perf_counter(), time.process_time()
    progress(f"machine:z3-bmc: unrolling to depth {depth}")
    result = z3check.bmc(
        model,
        depth,
        lemmas,
        progress=lambda p: progress(
            f"machine:z3-bmc: depth {p.depth} in {p.depth_seconds:.1f}s, {p.violations} violations"
        ),
    )
    detail = f"no violation within {result.checked_depth} steps of the initial state"
    if not result.ok:
        detail = "violated: " + ", ".join(sorted(result.violations))
        progress(z3check.format_bmc(result))
    stages.append(
        CheckStage(
            "machine:z3-bmc",
            result.ok and result.complete,
            detail,
            {"report": result.to_dict(), "cpu_seconds": round(_seconds_since(cpu), 3)},
            time.perf_counter() - started,
        )
    )
    return stages


def _machine_suite_stage(
    profiles: Sequence[MachineProfile],
    explored: Mapping[str, ExplorationResult],
    out_dir: Path,
    progress: Progress,
) -> tuple[CheckStage, MachineSuite]:
    started, cpu = time.perf_counter(), time.process_time()
    suite = generate_machine_suite(profiles, progress=progress, explored=explored)
    files = write_machine_suite(suite, out_dir)
    goals = sum(c.goals for c in suite.cover)
    detail = (
        f"{len(suite.traces)} machine traces, {suite.steps} steps; {goals} goals "
        f"(action, outcome, effects) over {len(suite.cover)} profiles"
    )
    data = {
        "traces": len(files),
        "steps": suite.steps,
        "cover": [c.to_dict() for c in suite.cover],
        "cpu_seconds": round(_seconds_since(cpu), 3),
    }
    return (
        CheckStage("machine:suite", True, detail, data, time.perf_counter() - started),
        suite,
    )


def _phase_order_runner(options: CheckOptions, progress: Progress) -> list[CheckStage]:
    return [_phase_order_stage(progress)]


def _store_mutant_runner(options: CheckOptions, progress: Progress) -> list[CheckStage]:
    return [_mutant_stage(progress)]


def _store_z3_runner(options: CheckOptions, progress: Progress) -> list[CheckStage]:
    return [] if options.skip_z3 else _z3_stages(options.bmc_depth, progress)


def _machine_mutant_runner(options: CheckOptions, progress: Progress) -> list[CheckStage]:
    return [_machine_mutant_stage(progress, use_z3=not options.skip_z3)]


def _machine_z3_runner(options: CheckOptions, progress: Progress) -> list[CheckStage]:
    return [] if options.skip_z3 else _machine_z3_stages(progress)


# The stages that need nothing from the explorations, in the order the report lists them
# (between the explorations and the suite). With more than one job they run in worker
# processes while this process explores, generates the suite and replays it. A new check is
# one more runner here: a module-level function, so a spawned worker can find it by name.
MODEL_STAGES: tuple[StageRunner, ...] = (
    _store_z3_runner,
    _phase_order_runner,
    _store_mutant_runner,
    _machine_mutant_runner,
    _machine_z3_runner,
)
MODEL_STAGE_ORDER = (1, 2, 0, 3, 4)
"""The report's order of ``MODEL_STAGES`` (workers take them in tuple order: longest first)."""


def default_jobs() -> int:
    """The CPUs this process may run on (its affinity mask where the platform has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _stage_label(runner: StageRunner) -> str:
    """The name a runner's stage takes in the report when it produced none (it failed)."""
    return runner.__name__.strip("_").removesuffix("_runner")


def _model_stage_worker(
    indices: Sequence[int], options: CheckOptions, messages: Any
) -> None:  # pragma: no cover - runs in a spawned process (its results are tested)
    """A worker process: runs its share of ``MODEL_STAGES`` and sends progress lines and
    stages back through ``messages``; a stage runner that raises becomes a failed stage."""
    for index in indices:
        runner = MODEL_STAGES[index]
        try:
            stages = runner(options, lambda line: messages.put(("progress", None, line)))
        except BaseException as error:  # reported as a failed stage, never lost
            import traceback

            messages.put(("progress", None, traceback.format_exc().rstrip()))
            stages = [
                CheckStage(
                    _stage_label(runner),
                    False,
                    f"the stage raised {type(error).__name__}: {error}",
                )
            ]
        messages.put(("stages", index, stages))
    messages.put(("done", None, None))


class _ModelStagesInWorkers:
    """``MODEL_STAGES`` running in ``workers`` spawned processes (spawned, not forked: the
    CLI's heartbeat thread may hold a lock at fork time). A drain thread forwards their
    progress lines as they arrive; :meth:`results` waits for every stage. A worker that dies
    without reporting (killed, out of memory) turns its missing stages into failures."""

    def __init__(self, options: CheckOptions, progress: Progress, workers: int) -> None:
        import multiprocessing
        import threading

        context = multiprocessing.get_context("spawn")
        self._messages = context.Queue()
        self._progress = progress
        self._results: dict[int, list[CheckStage]] = {}
        indices = range(len(MODEL_STAGES))
        shares = [share for w in range(workers) if (share := list(indices[w::workers]))]
        self._processes = [
            context.Process(
                target=_model_stage_worker,
                args=(share, options, self._messages),
                name=f"lashspec-check-{n}",
                daemon=True,
            )
            for n, share in enumerate(shares)
        ]
        self._worker_of = {index: n for n, share in enumerate(shares) for index in share}
        for process in self._processes:
            process.start()
        self._drain = threading.Thread(target=self._forward, daemon=True)
        self._drain.start()

    def _forward(self) -> None:
        import queue

        running = len(self._processes)
        while running:
            try:
                kind, index, payload = self._messages.get(timeout=1.0)
            except queue.Empty:
                if not any(p.is_alive() for p in self._processes):
                    break  # every worker is gone; whatever it did not send is missing
                continue
            if kind == "progress":
                self._progress(str(payload))
            elif kind == "stages":
                self._results[int(index)] = payload
            else:
                running -= 1

    def stop(self) -> None:
        """End the workers at once (idempotent): the check is over or failed without them."""
        for process in self._processes:
            if process.is_alive():
                process.terminate()
        for process in self._processes:
            process.join()

    def results(self) -> list[CheckStage]:
        self._drain.join()
        for process in self._processes:
            process.join()
        stages: list[CheckStage] = []
        for index in MODEL_STAGE_ORDER:
            if index in self._results:
                stages.extend(self._results[index])
                continue
            worker = self._processes[self._worker_of[index]]
            stages.append(
                CheckStage(
                    _stage_label(MODEL_STAGES[index]),
                    False,
                    f"its worker process exited with status {worker.exitcode} before "
                    "reporting (killed or out of memory?)",
                )
            )
        return stages


def run_check(
    *,
    bounds: Mapping[str, int] | None = None,
    bmc_depth: int | None = None,
    skip_z3: bool = False,
    backends: Sequence[str] = ("memory", "sqlite"),
    out_dir: Path | None = None,
    progress: Progress = _quiet,
    profile: str | None = None,
    max_memory_bytes: int | None = None,
    jobs: int = 1,
    dsn: str | None = None,
) -> CheckReport:
    """Every check: explorations, seeded bugs, z3, suite generation and replay.

    ``profile`` runs only that exploration (``full``: ``DEFAULT_BOUNDS`` with the C engine);
    explorations past ``max_memory_bytes`` of resident memory raise ``JobError``. With
    ``jobs`` > 1 the stages that need no exploration (``MODEL_STAGES``) run in ``jobs - 1``
    worker processes beside the explorations, suite and replays of this one; the report is
    the same, in the same order. ``dsn`` is the PostgreSQL server of the ``postgres``
    backend (else ``LASHSPEC_PG_DSN``, else a throwaway server).
    """
    if jobs < 1:
        raise JobError(f"jobs must be at least 1, not {jobs}")
    if profile is not None:
        if profile in EXHAUSTIVE_PROFILES:
            if bounds:
                raise JobError("--profile and the bound options both choose what to explore")
            return CheckReport([_exhaustive_stage(profile, progress, max_memory_bytes, jobs)])
        (chosen,) = profiles_for(bounds or {}, profile)
        return CheckReport([_explore_stage(chosen, progress, max_memory_bytes)[0]])
    profiles = profiles_for(bounds or {})
    machine_profiles = machine_profiles_for(bounds or {})
    options = CheckOptions(bmc_depth=bmc_depth, skip_z3=skip_z3)
    with contextlib.ExitStack() as cleanup:
        if "postgres" in backends:
            dsn = cleanup.enter_context(_postgres_server(dsn, progress))
        workers = None
        if jobs > 1:
            workers = _ModelStagesInWorkers(options, progress, jobs - 1)
            cleanup.callback(workers.stop)
        return _run_pipeline(
            profiles,
            machine_profiles,
            backends,
            out_dir,
            progress,
            max_memory_bytes,
            dsn,
            options,
            workers,
            jobs,
        )


@contextlib.contextmanager
def _postgres_server(dsn: str | None, progress: Progress) -> Iterator[str]:
    """The server the ``postgres`` replays use, found before any stage runs so a missing one
    costs no time: ``dsn``, else ``LASHSPEC_PG_DSN``, else one throwaway server for the whole
    check (stopped at the end)."""
    from .postgres_replay import PG_DSN_VARIABLE

    given = dsn or os.environ.get(PG_DSN_VARIABLE)
    try:
        import psycopg  # noqa: F401 - only to fail now, not after minutes of work
    except ImportError:
        raise JobError(
            "the postgres backend needs psycopg: pip install 'lashspec[postgres]'"
        ) from None
    if given:
        yield given
        return
    from .pgcluster import ClusterError, ThrowawayCluster, find_server_binaries

    if find_server_binaries() is None:
        raise JobError(
            f"no PostgreSQL server for --backend postgres: pass --dsn, set {PG_DSN_VARIABLE}, "
            "or install the postgresql package so a throwaway server can be started"
        )
    progress("postgres: starting a throwaway server for the replays")
    try:
        cluster = ThrowawayCluster().start()
    except ClusterError as error:
        raise JobError(f"cannot start a throwaway PostgreSQL server: {error}") from None
    try:
        yield cluster.dsn()
    finally:
        cluster.stop()


def _run_pipeline(
    profiles: Sequence[Profile],
    machine_profiles: Sequence[MachineProfile],
    backends: Sequence[str],
    out_dir: Path | None,
    progress: Progress,
    max_memory_bytes: int | None,
    dsn: str | None,
    options: CheckOptions,
    workers: _ModelStagesInWorkers | None,
    jobs: int = 1,
) -> CheckReport:
    """The explorations, suite and replays in this process, then the model stages (here, or
    collected from the workers) in their place in the report."""
    report = CheckReport()
    explored: dict[str, ExplorationResult] = {}
    for prof in profiles:
        stage, _, result = _explore_stage(prof, progress, max_memory_bytes)
        report.stages.append(stage)
        explored[prof.name] = result
    machine_explored: dict[str, ExplorationResult] = {}
    for machine_prof in machine_profiles:
        stage, result = _machine_explore_stage(machine_prof, progress)
        report.stages.append(stage)
        machine_explored[machine_prof.name] = result
    report.stages.append(
        _machine_rules_stage(machine_explored, machine_profiles == MACHINE_PROFILES, progress)
    )
    model_stages: list[CheckStage] = []
    if workers is None:
        for index in MODEL_STAGE_ORDER:
            model_stages.extend(MODEL_STAGES[index](options, progress))
    with tempfile.TemporaryDirectory(prefix="lashspec-suite-") as scratch:
        folder = out_dir if out_dir is not None else Path(scratch)
        stage, traces = _suite_stage(explored, profiles, folder, progress, jobs)
        report.stages.append(stage)
        for backend in backends:
            report.stages.append(_replay_stage(traces, backend, progress, dsn=dsn, jobs=jobs))
        stage, machine_suite = _machine_suite_stage(
            machine_profiles, machine_explored, folder, progress
        )
        machine_explored.clear()  # the state graphs with their edges: free the memory
        report.stages.append(stage)
        for backend in backends:
            report.stages.append(
                _replay_stage(
                    machine_suite.traces, backend, progress, label="machine-", dsn=dsn, jobs=jobs
                )
            )
    if workers is not None:
        model_stages = workers.results()
    at = next(i for i, stage in enumerate(report.stages) if stage.name == "machine:rules") + 1
    report.stages[at:at] = model_stages
    return report


# ---------------------------------------------------------------------------
# explore
# ---------------------------------------------------------------------------


@dataclass
class ExploreSummary:
    rows: list[tuple[str, str]]
    ok: bool

    def summary_rows(self) -> list[tuple[str, str]]:
        return self.rows


def run_explore(
    *,
    bounds: Mapping[str, int] | None = None,
    graphml: Path | None = None,
    dot: Path | None = None,
    svg: Path | None = None,
    lane: str | None = None,
    progress: Progress = _quiet,
    profile: str | None = None,
    max_memory_bytes: int | None = None,
    jobs: int | None = None,
) -> ExploreSummary:
    """Explore each profile (or the given bounds); export the graph or a picture when asked.

    The picture (``dot``/``svg``) folds parallel transitions into one edge and, with ``lane``,
    projects every state onto that lane's variables (``model.export.LANES``). ``jobs`` is the
    number of threads of an exhaustive profile's (core, full) C explorer (default: the CPUs
    this process may use); the other explorations run in this process's one thread.
    """
    from ..model.export import ExportError, fold_graph, render_dot, to_dot, write_graphml

    picture = dot is not None or svg is not None
    if profile in EXHAUSTIVE_PROFILES:
        if graphml or picture:
            raise JobError(
                f"--graphml/--dot/--svg cannot export the {profile} profile: give bounds"
            )
        if bounds:
            raise JobError("--profile and the bound options both choose what to explore")
        stage = _exhaustive_stage(profile, progress, max_memory_bytes, jobs)
        return ExploreSummary([(profile, stage.detail)], stage.ok)
    profiles = profiles_for(bounds or {}, profile)
    if (graphml or picture) and len(profiles) > 1:
        raise JobError("--graphml/--dot/--svg export one graph: give bounds (e.g. --owners 1)")
    rows: list[tuple[str, str]] = []
    ok = True
    for prof in profiles:
        stage, summary, result = _explore_stage(prof, progress, max_memory_bytes)
        ok = ok and stage.ok
        rows.append((prof.name, stage.detail))
        if not (graphml or picture):
            continue
        if summary.states > EXPORT_MAX_STATES:
            raise JobError(
                f"the graph has {summary.states:,} states; export needs <= "
                f"{EXPORT_MAX_STATES:,} (choose smaller bounds)"
            )
        progress("explore again, keeping every transition for the export")
        try:
            full = explore(result.compiled, keep_edges=True, max_memory_bytes=max_memory_bytes)
        except MemoryCapExceededError as error:
            raise _memory_cap_error(error) from None
        if graphml:
            write_graphml(full, graphml)
            rows.append(("graphml", str(graphml)))
        if picture:
            try:
                text = to_dot(full, lane=lane, max_nodes=DOT_MAX_NODES)
            except ExportError as error:
                raise JobError(str(error)) from None
            folded = fold_graph(full, lane=lane)
            rows.append(("picture", f"{len(folded.labels):,} nodes, {len(folded.edges):,} edges"))
            with tempfile.TemporaryDirectory(prefix="lashspec-dot-") as scratch:
                dot_path = dot if dot is not None else Path(scratch) / "graph.dot"
                dot_path.write_text(text)
                if dot is not None:
                    rows.append(("dot", str(dot)))
                if svg is not None:
                    progress(f"render {svg} with Graphviz dot")
                    try:
                        render_dot(dot_path, svg)
                    except ExportError as error:
                        raise JobError(str(error)) from None
                    rows.append(("svg", str(svg)))
    return ExploreSummary(rows, ok)


# ---------------------------------------------------------------------------
# export
# ---------------------------------------------------------------------------


@dataclass
class ExportSummary:
    suite: Suite
    files: list[Path]

    def summary_rows(self) -> list[tuple[str, str]]:
        rows = [
            ("traces", str(len(self.suite.traces))),
            ("steps", str(self.suite.steps)),
            (
                "action x outcome",
                f"{len(self.suite.covered_action_outcomes)}/"
                f"{len(self.suite.declared_action_outcomes)}",
            ),
        ]
        for cover in self.suite.cover:
            rows.append(
                (
                    f"cover {cover.profile}",
                    f"{cover.goals} goals, {cover.steps} steps "
                    f"({cover.steps_per_goal:.2f} steps/goal)",
                )
            )
        rows.append(("files", str(len(self.files))))
        return rows


def run_export(
    out_dir: Path,
    *,
    bounds: Mapping[str, int] | None = None,
    progress: Progress = _quiet,
    jobs: int | None = None,
) -> ExportSummary:
    """Write the suite to ``out_dir``; the profiles' parts in ``jobs`` worker processes
    (default: the CPUs this process may use)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise JobError(f"{out_dir} exists and is not a directory")
    jobs = default_jobs() if jobs is None else jobs
    if jobs < 1:
        raise JobError(f"--jobs must be at least 1, not {jobs}")
    suite = generate_suite(profiles_for(bounds or {}), progress=progress, jobs=jobs)
    progress(f"writing {len(suite.traces)} traces to {out_dir}")
    files = write_suite(suite, out_dir)
    if bounds:
        # The machine profiles have bounds of their own (max_turns); custom store bounds say
        # nothing about them, so only the default export carries the machine suite.
        progress("custom bounds: the machine suite is left out")
    else:
        files += write_machine_suite(generate_machine_suite(progress=progress), out_dir)
    progress(f"wrote {len(files)} files to {out_dir}")
    return ExportSummary(suite, files)


# ---------------------------------------------------------------------------
# replay
# ---------------------------------------------------------------------------


def load_traces(
    files: Sequence[Path],
    *,
    validate: bool = False,
    progress: Progress = _quiet,
    quint_bounds: Mapping[str, int] | None = None,
) -> list[Trace]:
    """Read trace files; with ``validate`` check each against the JSON Schema first.
    ``quint_bounds`` are the bounds of Quint's own traces (docs/trace-format.md).

    Reports how far it got every couple of seconds: a thousand files take several.
    """
    load = trace_file_loader(validate=validate, quint_bounds=quint_bounds)
    traces = []
    progress(f"loading {len(files)} trace files" + (" (validating each)" if validate else ""))
    last_report = time.perf_counter()
    with collector_paused():  # for the whole suite, not only each file: see its docstring
        for number, path in enumerate(files, start=1):
            if time.perf_counter() - last_report >= LOAD_PROGRESS_SECONDS:
                last_report = time.perf_counter()
                progress(f"loaded {number - 1}/{len(files)} trace files")
            traces.append(load(path))
    return traces


def trace_file_loader(
    *, validate: bool = False, quint_bounds: Mapping[str, int] | None = None
) -> Callable[[Path], Trace]:
    """Reads one trace file (``load_traces``'s options); a bad file is a :class:`JobError`
    naming it."""
    if validate:
        try:
            import jsonschema  # noqa: F401
        except ImportError:
            raise JobError(
                "--validate needs the jsonschema package: pip install 'jsonschema>=4.20'"
            ) from None
        from .machine_schema import validate_any_trace_document

    def load(path: Path) -> Trace:
        try:
            if validate:
                validate_any_trace_document(read_trace_document(path), str(path))
            return read_trace(path, quint_bounds)
        except TraceFormatError as error:
            raise JobError(f"malformed trace: {error}") from None
        except (OSError, ValueError) as error:
            raise JobError(f"malformed trace: {path}: {error}") from None

    return load


def run_replay(
    files: Sequence[Path],
    *,
    backend: str = "memory",
    dsn: str | None = None,
    adapter: str | None = None,
    timeout: float = 10.0,
    kernel_variant: str | None = None,
    validate: bool = False,
    progress: Progress = _quiet,
    quint_bounds: Mapping[str, int] | None = None,
    jobs: int | None = None,
) -> ReplayReport:
    """Load ``files`` and replay them; ``jobs`` worker processes, each with its own target
    (default: the CPUs for our kernel in memory or SQLite, one for an adapter, whose port may
    not run twice side by side, and for PostgreSQL)."""
    serial_only = backend == "postgres" and adapter is None and kernel_variant is None
    if jobs is None:
        jobs = 1 if serial_only or adapter is not None else default_jobs()
    if jobs < 1:
        raise JobError(f"--jobs must be at least 1, not {jobs}")
    if jobs > 1 and serial_only:
        raise JobError("--jobs: PostgreSQL replays in one process; leave --jobs out or give 1")
    traces: Sequence[Trace] | TraceFiles
    if jobs > 1 and len(files) > 1 and can_replay_in_workers():
        # each worker reads its own share of the files (replay_in_workers)
        if validate:
            progress("validating each trace file against the schema")
        traces = TraceFiles(files, trace_file_loader(validate=validate, quint_bounds=quint_bounds))
        workers = f" in {min(jobs, len(files))} processes"
    else:
        traces = load_traces(files, validate=validate, progress=progress, quint_bounds=quint_bounds)
        jobs, workers = 1, ""
    try:
        return _replay_with(
            traces, jobs, workers, backend, dsn, adapter, timeout, kernel_variant, progress
        )
    except TraceLoadError as error:
        raise JobError(str(error)) from None


def _replay_with(
    traces: Sequence[Trace] | TraceFiles,
    jobs: int,
    workers: str,
    backend: str,
    dsn: str | None,
    adapter: str | None,
    timeout: float,
    kernel_variant: str | None,
    progress: Progress,
) -> ReplayReport:
    if kernel_variant is not None:
        variant = kernel_variant
        progress(f"replay {len(traces)} traces on the broken kernel {variant}{workers}")
        return replay_in_workers(
            traces,
            lambda worker: KernelAdapter(broken_memory_store_factory(variant)),
            jobs,
            progress,
        )
    if adapter is not None:
        from .protocol import AdapterClient

        command = adapter
        progress(f"replay {len(traces)} traces through adapter: {command}{workers}")
        return replay_in_workers(
            traces, lambda worker: AdapterClient(command, timeout=timeout), jobs, progress
        )
    if backend == "postgres":
        from .postgres_replay import PostgresUnavailable

        try:
            target: ReplayTarget = kernel_target(backend, dsn=dsn)
        except PostgresUnavailable as error:
            raise JobError(str(error)) from None
        assert not isinstance(traces, TraceFiles)  # PostgreSQL replays in one process
        progress(f"replay {len(traces)} traces on {backend}")
        return replay_all(traces, target, progress=progress)
    progress(f"replay {len(traces)} traces on {backend}{workers}")
    with kernel_targets(backend) as make_target:
        return replay_in_workers(traces, make_target, jobs, progress)
