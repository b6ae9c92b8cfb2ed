"""Breadth-first explicit-state exploration of a compiled model.

States are the compiled model's flat tuples (canonical and hashable); every reachable state gets
an integer id in BFS order, so the first time an invariant fails the BFS parent chain of that
state is a *shortest* counterexample. The core loop keeps only what it needs: the state list,
a state -> id dict, one parent pointer and one incoming label per state and, optionally, the
edge list. ``ExplorationResult.graph()`` turns the result into a ``networkx.MultiDiGraph``
(nodes = state ids with the flat state as attribute, decoded lazily with ``decode``; edges
labelled with action, params and outcome).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from .dsl import (
    CompiledModel,
    FlatState,
    Model,
    OutcomeValue,
    Scalar,
    compile_model,
    outcome_as_dict,
)


class ExplorationError(Exception):
    """Exploration was asked for something impossible (bad limits, unknown state id)."""


@dataclass(frozen=True)
class Step:
    """One transition of a path: the action instance taken, its outcome and the state reached."""

    action: str
    params: Mapping[str, Scalar]
    outcome: OutcomeValue
    state: int

    def describe(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        out = outcome_as_dict(self.outcome)
        tag = out.pop("tag")
        fields = ", ".join(f"{k}={v!r}" for k, v in out.items())
        return f"{self.action}({params}) -> {tag}{'{' + fields + '}' if fields else ''}"


@dataclass(frozen=True)
class Violation:
    """The first (shortest) state found violating an invariant, with the path that reaches it."""

    invariant: str
    statement: str
    reference: str
    state: int
    path: tuple[Step, ...]

    def describe(self) -> str:
        lines = [f"{self.invariant} violated after {len(self.path)} steps ({self.reference}):"]
        lines.append(f"  {self.statement}")
        lines.extend(f"  {n + 1:2d}. {step.describe()}" for n, step in enumerate(self.path))
        return "\n".join(lines)


@dataclass(frozen=True)
class Progress:
    """Reported to the progress callback every ``progress_every`` processed states."""

    processed: int
    discovered: int
    edges: int
    depth: int
    elapsed: float


ProgressCallback = Callable[[Progress], None]


@dataclass
class ExplorationResult:
    compiled: CompiledModel
    states: list[FlatState]
    parents: list[int]
    incoming: list[tuple[int, OutcomeValue] | None]
    edge_count: int
    max_depth: int
    deadlocks: list[int]
    violations: dict[str, Violation]
    complete: bool
    elapsed: float
    edges: list[tuple[int, int, int]] | None = None
    labels: list[tuple[int, OutcomeValue]] = field(default_factory=list)

    @property
    def model(self) -> Model:
        return self.compiled.model

    @property
    def state_count(self) -> int:
        return len(self.states)

    @property
    def states_per_second(self) -> float:
        return len(self.states) / self.elapsed if self.elapsed > 0 else float("inf")

    def decode(self, state: int) -> dict[str, Any]:
        """The decoded variables of state ``state`` (maps as dicts)."""
        self._check_id(state)
        return self.model.decode(self.states[state])

    def depth_of(self, state: int) -> int:
        return len(self.path_to(state))

    def path_to(self, state: int) -> tuple[Step, ...]:
        """The BFS (shortest) path from the initial state to ``state``."""
        self._check_id(state)
        steps: list[Step] = []
        current = state
        while self.parents[current] >= 0:
            label = self.incoming[current]
            assert label is not None
            binding = self.compiled.bindings[label[0]]
            steps.append(Step(binding.action, binding.params, label[1], current))
            current = self.parents[current]
        steps.reverse()
        return tuple(steps)

    def invariant_status(self) -> dict[str, bool]:
        """Invariant name -> holds in every explored state."""
        return {inv.name: inv.name not in self.violations for inv in self.model.invariants}

    def graph(self) -> Any:
        """The explored state graph as a ``networkx.MultiDiGraph``.

        Node ``n`` carries ``state`` (the flat tuple), ``initial``, ``deadlock`` and
        ``violates`` (names of invariants first violated there); edge data carries ``action``,
        ``params`` and ``outcome`` (a dict with ``tag`` and the outcome fields). Requires the
        exploration to have kept edges.
        """
        if self.edges is None:
            raise ExplorationError("explore(..., keep_edges=True) is needed to build the graph")
        graph = nx.MultiDiGraph(name=self.model.name, bounds=dict(self.model.bounds))
        first_violations: dict[int, list[str]] = {}
        for violation in self.violations.values():
            first_violations.setdefault(violation.state, []).append(violation.invariant)
        deadlocks = set(self.deadlocks)
        for n, state in enumerate(self.states):
            graph.add_node(
                n,
                state=state,
                initial=n == 0,
                deadlock=n in deadlocks,
                violates=tuple(first_violations.get(n, ())),
            )
        labels = [
            (
                self.compiled.bindings[b].action,
                dict(self.compiled.bindings[b].params),
                outcome_as_dict(out),
            )
            for b, out in self.labels
        ]
        for src, dst, label in self.edges:
            action, params, outcome = labels[label]
            graph.add_edge(src, dst, action=action, params=params, outcome=outcome)
        return graph

    def _check_id(self, state: int) -> None:
        if not 0 <= state < len(self.states):
            raise ExplorationError(f"no state {state}: {len(self.states)} states were explored")


def explore(
    model: Model | CompiledModel,
    *,
    max_states: int | None = None,
    max_depth: int | None = None,
    keep_edges: bool = False,
    stop_on_violation: bool = False,
    stop_at: Collection[str] | None = None,
    progress: ProgressCallback | None = None,
    progress_every: int = 100_000,
    checked: bool = False,
) -> ExplorationResult:
    """Explore every state reachable from the initial state, breadth first.

    ``max_states``/``max_depth`` cut the search (``complete`` is then False when something was
    left unexplored); ``stop_on_violation`` stops at the first violating state and ``stop_at``
    at the first state violating one of the named invariants; ``checked``
    compiles with per-transition sort checks (slower, for tests).
    """
    if max_states is not None and max_states < 1:
        raise ExplorationError("max_states must be at least 1")
    if max_depth is not None and max_depth < 0:
        raise ExplorationError("max_depth must be >= 0")
    if progress_every < 1:
        raise ExplorationError("progress_every must be at least 1")
    compiled = model if isinstance(model, CompiledModel) else compile_model(model, checked=checked)
    invariants = compiled.model.invariants
    known = {inv.name for inv in invariants}
    stop_names = set(stop_at or ())
    if stop_names - known:
        raise ExplorationError(f"unknown invariants in stop_at: {sorted(stop_names - known)}")
    stop_indices = {k for k, inv in enumerate(invariants) if inv.name in stop_names}
    successors = compiled.successors
    violations_of = compiled.violations
    start = time.perf_counter()

    initial = compiled.model.initial_state()
    index: dict[FlatState, int] = {initial: 0}
    states: list[FlatState] = [initial]
    parents: list[int] = [-1]
    incoming: list[tuple[int, OutcomeValue] | None] = [None]
    edges: list[tuple[int, int, int]] | None = [] if keep_edges else None
    label_ids: dict[tuple[int, OutcomeValue], int] = {}
    labels: list[tuple[int, OutcomeValue]] = []
    first_bad: dict[int, int] = {}
    deadlocks: list[int] = []
    edge_count = 0
    depth = 0
    level_end = 1
    complete = True
    cursor = 0
    next_report = progress_every
    state_limit = max_states if max_states is not None else -1

    index_get = index.get
    add_state = states.append
    add_parent = parents.append
    add_incoming = incoming.append
    while cursor < len(states):
        if cursor == level_end:
            depth += 1
            level_end = len(states)
        state = states[cursor]
        bad = violations_of(state)
        if bad:
            for k in bad:
                if k not in first_bad:
                    first_bad[k] = cursor
            if stop_on_violation or not stop_indices.isdisjoint(bad):
                complete = False
                break
        out = successors(state)
        if max_depth is not None and depth >= max_depth:
            if any(target is not state for _, _, target in out):
                complete = False
            cursor += 1
            continue
        if not out:
            deadlocks.append(cursor)
        edge_count += len(out)
        if edges is None:
            for binding, outcome, target in out:
                if target is state or target in index:
                    continue
                if len(states) == state_limit:
                    complete = False
                    continue
                index[target] = len(states)
                add_state(target)
                add_parent(cursor)
                add_incoming((binding, outcome))
        else:
            for binding, outcome, target in out:
                found = cursor if target is state else index_get(target)
                if found is None:
                    if len(states) == state_limit:
                        complete = False
                        continue
                    found = len(states)
                    index[target] = found
                    add_state(target)
                    add_parent(cursor)
                    add_incoming((binding, outcome))
                key = (binding, outcome)
                label = label_ids.get(key)
                if label is None:
                    label = len(labels)
                    label_ids[key] = label
                    labels.append(key)
                edges.append((cursor, found, label))
        cursor += 1
        if progress is not None and cursor >= next_report:
            next_report += progress_every
            progress(Progress(cursor, len(states), edge_count, depth, time.perf_counter() - start))

    elapsed = time.perf_counter() - start
    result = ExplorationResult(
        compiled=compiled,
        states=states,
        parents=parents,
        incoming=incoming,
        edge_count=edge_count,
        max_depth=depth,
        deadlocks=deadlocks,
        violations={},
        complete=complete,
        elapsed=elapsed,
        edges=edges,
        labels=labels,
    )
    for k, state_id in sorted(first_bad.items(), key=lambda item: item[1]):
        inv = invariants[k]
        result.violations[inv.name] = Violation(
            inv.name, inv.statement, inv.reference, state_id, result.path_to(state_id)
        )
    if progress is not None:
        progress(Progress(cursor, len(states), edge_count, depth, elapsed))
    return result
