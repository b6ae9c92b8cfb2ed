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

import os
import resource
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


class MemoryCapExceededError(ExplorationError):
    """The explorer's resident memory passed ``max_memory_bytes``: the search stopped there."""

    def __init__(self, rss_bytes: int, cap_bytes: int, processed: int, discovered: int) -> None:
        self.rss_bytes = rss_bytes
        self.cap_bytes = cap_bytes
        self.processed = processed
        self.discovered = discovered
        super().__init__(
            f"exploration stopped at the memory cap: resident memory {format_bytes(rss_bytes)} "
            f"> {format_bytes(cap_bytes)} after {processed:,} states processed "
            f"({discovered:,} discovered); raise the cap or lower the bounds"
        )


def format_bytes(count: int) -> str:
    """``1536`` -> ``1.5 KiB``: a short human reading of a byte count."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def parse_bytes(text: str) -> int:
    """``2G``, ``512M``, ``64k``, ``1000`` (binary multiples) -> a byte count."""
    cleaned = text.strip().upper().removesuffix("B").removesuffix("I")
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}.get(cleaned[-1:], 1)
    digits = cleaned[:-1] if scale != 1 else cleaned
    try:
        value = float(digits)
    except ValueError:
        raise ExplorationError(f"not a byte count: {text!r} (try 2G, 512M)") from None
    if value <= 0:
        raise ExplorationError(f"a byte count must be positive: {text!r}")
    return int(value * scale)


_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_memory_bytes() -> int:
    """Current resident set size of this process (peak RSS where /proc is missing)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE_SIZE
    except OSError:
        # ru_maxrss is KiB on Linux, bytes on macOS; the peak is an upper bound of the current
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if os.uname().sysname == "Darwin" else peak * 1024


class ResourceWatch:
    """Throttled progress reports and a memory cap, shared by every exploration loop.

    Loops call ``due(processed)`` cheaply on every state; only every ``stride`` states does it
    read the clock and, if a report or a memory check is due, RSS. Reports come at most every
    ``interval`` seconds (or every ``every`` processed states when that is given).
    """

    def __init__(
        self,
        progress: ProgressCallback | None,
        *,
        every: int | None,
        interval: float,
        max_memory_bytes: int | None,
        start: float,
        stride: int = 4096,
    ) -> None:
        if every is not None and every < 1:
            raise ExplorationError("progress_every must be at least 1")
        if interval <= 0:
            raise ExplorationError("progress_interval must be positive")
        if max_memory_bytes is not None and max_memory_bytes < 1:
            raise ExplorationError("max_memory_bytes must be positive")
        self.progress = progress
        self.every = every
        self.interval = interval
        self.cap = max_memory_bytes
        self.start = start
        self.stride = stride if every is None else min(stride, every)
        self.next_check = self.stride
        self.next_count = every if every is not None else -1
        self.last_report = start
        self.active = progress is not None or max_memory_bytes is not None

    def due(self, processed: int) -> bool:
        return self.active and processed >= self.next_check

    def check(self, processed: int, discovered: int, edges: int, depth: int) -> None:
        """Report progress if due and raise ``MemoryCapExceededError`` past the cap."""
        self.next_check = processed + self.stride
        now = time.perf_counter()
        rss = resident_memory_bytes() if self.cap is not None or self.progress else 0
        if self.cap is not None and rss > self.cap:
            raise MemoryCapExceededError(rss, self.cap, processed, discovered)
        if self.progress is None:
            return
        if self.every is not None:
            if processed < self.next_count:
                return
            while self.next_count <= processed:
                self.next_count += self.every
        elif now - self.last_report < self.interval:
            return
        self.last_report = now
        self.progress(Progress(processed, discovered, edges, depth, now - self.start, rss))

    def final(
        self, processed: int, discovered: int, edges: int, depth: int, elapsed: float
    ) -> None:
        if self.progress is not None:
            self.progress(
                Progress(processed, discovered, edges, depth, elapsed, resident_memory_bytes())
            )


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
    """Reported to the progress callback about every 2 s (or every ``progress_every`` states)."""

    processed: int
    discovered: int
    edges: int
    depth: int
    elapsed: float
    memory_bytes: int = 0
    """Resident set size of the exploring process when the report was made."""

    @property
    def frontier(self) -> int:
        """States discovered but not yet expanded (the BFS queue)."""
        return self.discovered - self.processed

    @property
    def states_per_second(self) -> float:
        return self.discovered / self.elapsed if self.elapsed > 0 else 0.0

    def describe(self) -> str:
        return (
            f"{self.discovered:,} states ({self.states_per_second:,.0f}/s), "
            f"{self.edges:,} edges, frontier {self.frontier:,}, depth {self.depth}, "
            f"memory {format_bytes(self.memory_bytes)}, {self.elapsed:.0f}s"
        )


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
    progress_every: int | None = None,
    progress_interval: float = 2.0,
    max_memory_bytes: int | None = None,
    checked: bool = False,
) -> ExplorationResult:
    """Explore every state reachable from the initial state, breadth first.

    ``max_states``/``max_depth`` cut the search (``complete`` is then False when something was
    left unexplored); ``stop_on_violation`` stops at the first violating state and ``stop_at``
    at the first state violating one of the named invariants; ``checked``
    compiles with per-transition sort checks (slower, for tests). ``progress`` is called about
    every ``progress_interval`` seconds (every ``progress_every`` processed states when given)
    and once at the end; past ``max_memory_bytes`` of resident memory the search raises
    ``MemoryCapExceededError``.
    """
    if max_states is not None and max_states < 1:
        raise ExplorationError("max_states must be at least 1")
    if max_depth is not None and max_depth < 0:
        raise ExplorationError("max_depth must be >= 0")
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
    watch = ResourceWatch(
        progress,
        every=progress_every,
        interval=progress_interval,
        max_memory_bytes=max_memory_bytes,
        start=start,
    )

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
        if watch.due(cursor):
            watch.check(cursor, len(states), edge_count, depth)

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
    watch.final(cursor, len(states), edge_count, depth, elapsed)
    return result
