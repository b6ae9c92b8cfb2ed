"""Checking API for the command line: run exploration and return a structured result.

``check_model`` explores the kernel model (or a seeded mutant) at given bounds, checks every
invariant on every state and returns a ``CheckResult``: counts, timings, one status per
invariant and, for each violated invariant, the shortest path that reaches a violating state.
``CheckResult.to_dict`` is JSON-ready; ``format_result`` renders a text report.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .dsl import Model, compile_model, outcome_as_dict
from .explore import ExplorationResult, ProgressCallback, Violation, explore
from .kernel_model import DEFAULT_BOUNDS, Bounds, build_model
from .mutants import build_mutant
from .phase_order import build_phase_order_model


@dataclass(frozen=True)
class InvariantStatus:
    name: str
    statement: str
    reference: str
    holds: bool
    violation: Violation | None = None


@dataclass
class CheckResult:
    model: str
    bounds: Mapping[str, int]
    states: int
    edges: int
    max_depth: int
    deadlocks: int
    complete: bool
    compile_seconds: float
    explore_seconds: float
    invariants: list[InvariantStatus]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def violations(self) -> list[Violation]:
        return [s.violation for s in self.invariants if s.violation is not None]

    @property
    def ok(self) -> bool:
        """Every invariant held and the exploration was exhaustive."""
        return self.complete and not self.violations

    @property
    def states_per_second(self) -> float:
        return self.states / self.explore_seconds if self.explore_seconds > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "bounds": dict(self.bounds),
            "states": self.states,
            "edges": self.edges,
            "max_depth": self.max_depth,
            "deadlocks": self.deadlocks,
            "complete": self.complete,
            "ok": self.ok,
            "compile_seconds": round(self.compile_seconds, 3),
            "explore_seconds": round(self.explore_seconds, 3),
            "states_per_second": round(self.states_per_second, 1),
            "invariants": [
                {
                    "name": s.name,
                    "statement": s.statement,
                    "reference": s.reference,
                    "holds": s.holds,
                    "counterexample": None
                    if s.violation is None
                    else [
                        {
                            "action": step.action,
                            "params": dict(step.params),
                            "outcome": _jsonable(outcome_as_dict(step.outcome)),
                        }
                        for step in s.violation.path
                    ],
                }
                for s in self.invariants
            ],
            **self.extra,
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, frozenset | set):
        return sorted(value)
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def check_explicit(
    model: Model,
    *,
    max_states: int | None = None,
    max_depth: int | None = None,
    progress: ProgressCallback | None = None,
    progress_every: int | None = 100_000,
    max_memory_bytes: int | None = None,
) -> tuple[CheckResult, ExplorationResult]:
    """Explore ``model`` exhaustively (within the limits) and summarise the result.

    ``progress_every=None`` reports by time (about every 2 s) instead of by state count;
    ``max_memory_bytes`` stops the search with ``MemoryCapExceededError``."""
    started = time.perf_counter()
    compiled = compile_model(model)
    compiled_at = time.perf_counter()
    result = explore(
        compiled,
        max_states=max_states,
        max_depth=max_depth,
        progress=progress,
        progress_every=progress_every,
        max_memory_bytes=max_memory_bytes,
    )
    statuses = [
        InvariantStatus(
            inv.name,
            inv.statement,
            inv.reference,
            inv.name not in result.violations,
            result.violations.get(inv.name),
        )
        for inv in model.invariants
    ]
    summary = CheckResult(
        model=model.name,
        bounds=dict(model.bounds),
        states=result.state_count,
        edges=result.edge_count,
        max_depth=result.max_depth,
        deadlocks=len(result.deadlocks),
        complete=result.complete,
        compile_seconds=compiled_at - started,
        explore_seconds=result.elapsed,
        invariants=statuses,
    )
    return summary, result


def check_model(
    bounds: Bounds = DEFAULT_BOUNDS,
    *,
    mutant: str | None = None,
    max_states: int | None = None,
    max_depth: int | None = None,
    progress: ProgressCallback | None = None,
    progress_every: int = 100_000,
) -> CheckResult:
    """Explore the kernel model (or the named seeded mutant) at ``bounds``."""
    model = build_model(bounds) if mutant is None else build_mutant(mutant, bounds)
    summary, _ = check_explicit(
        model,
        max_states=max_states,
        max_depth=max_depth,
        progress=progress,
        progress_every=progress_every,
    )
    return summary


def check_phase_order() -> CheckResult:
    """Explore the phase-order automaton (it has no invariants; counts only)."""
    summary, _ = check_explicit(build_phase_order_model())
    return summary


def format_result(result: CheckResult) -> str:
    """A human-readable report: counts, then one line per invariant, then counterexamples."""
    bounds = ", ".join(f"{k}={v}" for k, v in result.bounds.items())
    lines = [
        f"model {result.model} ({bounds})",
        f"  {result.states} states, {result.edges} edges, depth {result.max_depth}, "
        f"{result.deadlocks} deadlocks, {'complete' if result.complete else 'INCOMPLETE'}",
        f"  compiled in {result.compile_seconds:.2f}s, explored in {result.explore_seconds:.2f}s "
        f"({result.states_per_second:,.0f} states/s)",
    ]
    for status in result.invariants:
        mark = "ok  " if status.holds else "FAIL"
        lines.append(f"  [{mark}] {status.name} ({status.reference})")
    for violation in result.violations:
        lines.append("")
        lines.append(violation.describe())
    return "\n".join(lines)
