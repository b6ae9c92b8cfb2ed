"""Generate the conformance trace suite from the model's explored state graph.

Theory of operation
-------------------
Each check profile (:mod:`lashspec.model.profiles`) is explored breadth first. A **goal** is
an action instance (action with its parameters) together with an outcome tag: the suite must
take every goal the profile reaches at least once, so every typed error every action can
return is exercised. Goals are covered greedily:

1. a scan over the explored states records, for each goal, the shallowest state where it is
   enabled (BFS order makes that the first one seen);
2. a trace starts at the initial state and repeatedly takes the nearest uncovered goal found
   by a small breadth-first search (``local_depth`` steps) from where it stands, marking every
   goal it passes on the way;
3. when nothing uncovered is near, or the trace reached ``max_trace_length``, the trace ends
   and the next one starts with the shortest path to the shallowest uncovered goal.

That is the classic nearest-neighbour heuristic for the edge-cover (Chinese postman) problem;
:class:`CoverStats` reports how many steps it spent per goal.

Three kinds of targeted traces follow:

* **boundary** traces, one per invariant: the shortest path to the sampled state where the
  invariant is most nearly violated, measured as the number of single-variable changes to
  that state (or to a successor's history flag) that would break it;
* **witness** traces, one per seeded model mutant: the mutant's shortest counterexample,
  replayed in the correct model, so the step where the bug would bite is pinned;
* **scenario** traces: the seed's nine Runtime Scenarios in the trace vocabulary;
* **promoted** traces: short reproductions of kernel bugs that mutation testing found the
  other traces miss (:mod:`lashspec.conformance.promoted_traces`).

Everything is deterministic: exploration, scans and searches run in binding order, and the
files are canonical JSON, so the same model and bounds give byte-identical files.
"""

from __future__ import annotations

import functools
import operator
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..model.dsl import CompiledModel, FlatState
from ..model.explore import ExplorationResult, Violation, explore
from ..model.kernel_model import (
    DEFAULT_BOUNDS,
    SESSION1_ACTIONS,
    Bounds,
    build_model,
    compiled_model,
)
from ..model.mutants import MUTANTS
from ..model.profiles import PROFILES, SCENARIO_BOUNDS, UNREACHABLE_BY_DESIGN, Profile
from .forked import forked_map
from .itf import SUITE_INDEX_FILE, Trace, dumps_canonical, file_sha256, trace_to_json
from .modeltrace import ActionNotEnabled, ModelRunner, trace_of
from .promoted_traces import PROMOTED_TRACES
from .seed_traces import SEED_SCENARIO_TRACES

Progress = Callable[[str], None]
ActionStep = tuple[str, dict[str, Any]]
Goal = tuple[int, str, tuple[Any, ...]]  # (binding index, refined outcome tag, lane context)

INDEX_FILE = SUITE_INDEX_FILE


def _quiet(_: str) -> None:
    return None


# ---------------------------------------------------------------------------
# Edge cover
# ---------------------------------------------------------------------------


@dataclass
class CoverStats:
    """What the edge cover of one profile reached and what it cost."""

    profile: str
    states: int
    edges: int
    goals: int  # reachable (action instance, outcome tag, lane row statuses) goals
    action_outcomes: int  # reachable (action, outcome tag) pairs
    traces: int
    steps: int

    @property
    def steps_per_goal(self) -> float:
        return self.steps / self.goals if self.goals else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "states": self.states,
            "edges": self.edges,
            "goals": self.goals,
            "action_outcomes": self.action_outcomes,
            "traces": self.traces,
            "steps": self.steps,
            "steps_per_goal": round(self.steps_per_goal, 3),
        }


def declared_action_outcomes(compiled: CompiledModel) -> set[tuple[str, str]]:
    """Every (action, outcome tag) pair some case of the model can produce."""
    return {(a.name, c.outcome.tag) for a in compiled.model.actions for c in a.cases}


QUEUE_LANE = frozenset(
    {
        "enqueue_batch",
        "enqueue_batch_later",
        "replay_batch",
        "claim_command",
        "claim_work",
        "claim_work_by_ids",
        "abandon_work",
        "cancel_batch",
    }
)
INPUT_LANE = frozenset(
    {
        "enqueue_input",
        "replay_input",
        "conflict_input",
        "claim_next_inputs",
        "claim_active_inputs",
        "abandon_inputs",
        "cancel_input",
        "cancel_suffix",
        "cancel_inputs",
        "vacuum",
    }
)
LEASE_LANE = frozenset(
    {"acquire", "reclaim", "renew", "release", "expire", "advance", "renew_stale", "release_stale"}
)
BOTH_LANES = frozenset(
    {"commit", "commit_stale", "commit_cas", "commit_outbox", "claim_checkpoint_work"}
)
SESSION1_LANE = frozenset(SESSION1_ACTIONS)


class GoalContext:
    """Which part of the pre-state distinguishes goals of an action instance.

    An action instance and an outcome tag alone are too coarse: ``claim_work`` at a checkpoint
    returns ``NoClaim`` both on an empty queue and on a queue whose head must wait for the
    turn's commit, and only the second tells the boundaries apart. So a goal also names the
    row statuses of the lane the action works on (batch statuses for queue actions, input
    states for input actions, both for commits and checkpoint-work claims, the listed rows for
    exact-by-ids claims); lease actions need no context.

    Two outcomes are refined further, because they separate implementations the plain tag
    cannot (README "Conformance strength"):

    * a ``Claimed`` result naming two or more rows (``Claimed+run``): a join run, or several
      inputs claimed together, against a claim that only ever takes its head row;
    * a commit failing with ``TurnInputClaimSuperseded`` while the owner holds a queue claim
      (``TurnInputClaimSuperseded+queue_held``): the queue check passed, so a store that
      applies the queue completion before validating the input claim leaves a trace here;
    * a checkpoint-work claim taking inputs and turn work together (``CheckpointClaimed+both``);
    * a claim with limit one (bound ``claim_limits``) taking fewer rows than the same claim
      with limit all would (``Claimed+limited``, ``CheckpointClaimed+limited``): the limit
      binds, against a store that takes more rows than asked;
    * a stamped commit of a turn already committed answering its recorded result
      (``Committed+replay``), against a first commit of the turn.
    """

    def __init__(self, compiled: CompiledModel) -> None:
        layout = compiled.model.layout()
        # with delayed work, whether each row is available yet is part of the queue lane
        self._batches = tuple(
            i for i, s in enumerate(layout) if s.variable in ("batch_status", "batch_wait")
        )
        self._inputs = tuple(i for i, s in enumerate(layout) if s.variable == "input_state")
        qclaim = {s.keys[0]: i for i, s in enumerate(layout) if s.variable == "owner_qclaim"}
        batch_at = {s.keys[0]: i for i, s in enumerate(layout) if s.variable == "batch_status"}
        turn_at = {s.keys[0]: i for i, s in enumerate(layout) if s.variable == "turn_result"}
        # With a TTL of several clock steps, the lease time left tells lease goals apart
        # (a renewal that extends expiry against one that finds a full TTL left).
        clock = tuple(
            i
            for i, s in enumerate(layout)
            if (s.variable == "lease_ttl_left" and len(s.sort.values()) > 2)
            or s.variable == "batch_wait"
        )
        # With a second session, every goal also names the other session's rows and lease
        # (trace-format.md §1): session-0 work beside a queued, claimed or deleted session-1
        # batch and a live or lapsed session-1 lease, and session-1 work beside session-0's,
        # are what a store mixing up session ids gets wrong.
        other_session = tuple(
            i
            for i, s in enumerate(layout)
            if s.variable in ("s1_batch_status", "s1_lease_ttl_left", "s1_input_state")
        )
        session0 = (
            tuple(
                i for i, s in enumerate(layout) if s.variable in ("lease_live", "batch_claim_gen")
            )
            + self._batches
            if other_session
            else ()
        )
        self._turn: list[int] = []  # turn_result position of a stamped commit, -1 otherwise
        self._lane: list[tuple[int, ...]] = []
        self._held: list[int] = []  # owner_qclaim position of a commit's owner, -1 otherwise
        # a claim instance with limit one (bound claim_limits) -> its twin with limit all
        self._successors = compiled.successors
        twins = {(b.action, tuple(sorted(b.params.items()))): b.index for b in compiled.bindings}
        self._uncapped = [
            twins[(b.action, tuple(sorted({**b.params, "limit": "all"}.items())))]
            if b.params.get("limit") == "one"
            else -1
            for b in compiled.bindings
        ]
        self._twin_outcomes: tuple[FlatState | None, dict[int, Any]] = (None, {})
        for binding in compiled.bindings:
            self._held.append(-1)
            if binding.action in SESSION1_LANE:
                self._turn.append(-1)
                if binding.action == "s1_enqueue_input":
                    # session-1's enqueue under a session-0 input's source key: every state of
                    # session-0's inputs (the rest of session-0 has no bearing on it)
                    self._lane.append(self._inputs)
                    continue
                # a session-1 cancel naming a session-0 input: every state of that input
                inputs = self._inputs if binding.action == "s1_cancel_input" else ()
                self._lane.append(other_session + session0 + inputs)
                continue
            turn = binding.params.get("turn")
            stamped = binding.action == "commit_turn" and turn is not None
            self._turn.append(turn_at[turn] if stamped and turn is not None else -1)
            if binding.action == "claim_work_by_ids":
                # the listed rows are the by-ids claim's lane
                first, last = int(binding.params["b"]), int(binding.params["last"])
                self._lane.append(
                    tuple(p for slot, p in batch_at.items() if first <= int(slot) <= last)
                )
            elif binding.action in QUEUE_LANE:
                self._lane.append(self._batches)
            elif binding.action in INPUT_LANE:
                self._lane.append(self._inputs)
            elif binding.action in BOTH_LANES:
                self._lane.append(self._batches + self._inputs)
                owner = binding.params.get("o")
                if owner in qclaim:
                    self._held[-1] = qclaim[owner]
            elif binding.action in LEASE_LANE:
                self._lane.append(clock)
            else:
                self._lane.append(())
            self._lane[-1] += other_session
        # goals are computed for every edge of every explored state: read each lane with one
        # C-level call instead of a generator over its positions
        self._lane_readers = [_positions_reader(lane) for lane in self._lane]

    def goal(self, state: FlatState, binding: int, outcome: Any) -> Goal:
        """The goal of taking ``binding`` from ``state`` with ``outcome`` (tag, fields)."""
        return (
            binding,
            self.refined_tag(state, binding, outcome),
            self._lane_readers[binding](state),
        )

    def refined_tag(self, state: FlatState, binding: int, outcome: Any) -> str:
        tag = str(outcome[0])
        if self._uncapped[binding] >= 0 and self._limit_binds(state, binding, outcome):
            return f"{tag}+limited"
        if tag == "Claimed":
            if len(dict(outcome[1]).get("rows", ())) >= 2:
                return "Claimed+run"
        elif tag == "CheckpointClaimed":
            fields = dict(outcome[1])
            if fields.get("input_rows") and fields.get("queue_rows"):
                return "CheckpointClaimed+both"
        elif tag == "TurnInputClaimSuperseded":
            held = self._held[binding]
            if held >= 0 and state[held] != 0:
                return "TurnInputClaimSuperseded+queue_held"
        elif tag == "Committed":
            turn = self._turn[binding]
            if turn >= 0 and state[turn] != 0:
                return "Committed+replay"
        return tag

    def _limit_binds(self, state: FlatState, binding: int, outcome: Any) -> bool:
        """A limit-one claim took fewer rows than its twin with limit all would take here."""
        if outcome[0] not in ("Claimed", "CheckpointClaimed"):
            return False
        cached_state, outcomes = self._twin_outcomes
        if cached_state is not state:
            outcomes = {b: o for b, o, _ in self._successors(state)}
            self._twin_outcomes = (state, outcomes)
        uncapped: Any = outcomes.get(self._uncapped[binding])
        return bool(uncapped != outcome)


def _positions_reader(positions: tuple[int, ...]) -> Callable[[FlatState], tuple[Any, ...]]:
    """A function returning the tuple of a state's values at ``positions``."""
    if not positions:
        return lambda state: ()
    if len(positions) == 1:
        (only,) = positions
        return lambda state: (state[only],)
    reader: Callable[[FlatState], tuple[Any, ...]] = operator.itemgetter(*positions)
    return reader


def plain_tag(refined: str) -> str:
    """The outcome tag of a goal's refined tag (``Claimed+run`` -> ``Claimed``)."""
    return refined.partition("+")[0]


def first_enabled(result: ExplorationResult, context: GoalContext) -> dict[Goal, int]:
    """Goal -> the shallowest explored state where it is enabled."""
    successors = result.compiled.successors
    first: dict[Goal, int] = {}
    for sid, state in enumerate(result.states):
        for binding, outcome, _ in successors(state):
            goal = context.goal(state, binding, outcome)
            if goal not in first:
                first[goal] = sid
    return first


def _path_steps(result: ExplorationResult, state: int) -> list[tuple[int, Any, int]]:
    """(binding, outcome, pre-state id) of each step of the BFS path to ``state``."""
    steps: list[tuple[int, Any, int]] = []
    current = state
    while result.parents[current] >= 0:
        label = result.incoming[current]
        assert label is not None
        steps.append((label[0], label[1], result.parents[current]))
        current = result.parents[current]
    steps.reverse()
    return steps


def _nearest_uncovered(
    compiled: CompiledModel,
    context: GoalContext,
    start: FlatState,
    uncovered: set[Goal],
    depth: int,
) -> list[tuple[Goal, int, FlatState]] | None:
    """The shortest walk from ``start`` whose last step is an uncovered goal (or None)."""
    successors = compiled.successors
    frontier: deque[tuple[FlatState, list[tuple[Goal, int, FlatState]]]] = deque([(start, [])])
    seen = {start}
    while frontier:
        state, path = frontier.popleft()
        moves = successors(state)
        for binding, outcome, target in moves:
            goal = context.goal(state, binding, outcome)
            if goal in uncovered:
                return [*path, (goal, binding, target)]
        if len(path) + 1 >= depth:
            continue
        for binding, outcome, target in moves:
            if target not in seen:
                seen.add(target)
                goal = context.goal(state, binding, outcome)
                frontier.append((target, [*path, (goal, binding, target)]))
    return None


def edge_cover(
    result: ExplorationResult,
    *,
    max_trace_length: int = 40,
    local_depth: int = 3,
    focus: frozenset[str] = frozenset(),
) -> tuple[list[list[ActionStep]], set[Goal]]:
    """Action sequences that together take every goal reachable in ``result`` (only the goals
    whose action or refined outcome tag is in ``focus``, when it is not empty)."""
    compiled = result.compiled
    bindings = compiled.bindings
    context = GoalContext(compiled)
    first = first_enabled(result, context)
    if focus:
        first = {
            g: sid for g, sid in first.items() if g[1] in focus or bindings[g[0]].action in focus
        }
    depth = [0] * len(result.states)
    for sid in range(1, len(result.states)):
        depth[sid] = depth[result.parents[sid]] + 1
    order = sorted(first, key=lambda goal: (depth[first[goal]], goal))
    uncovered = set(first)
    traces: list[list[ActionStep]] = []
    current: list[ActionStep] = []
    state = result.states[0]
    cursor = 0

    def take(binding: int) -> None:
        b = bindings[binding]
        current.append((b.action, dict(b.params)))

    while uncovered:
        walk = None
        if current and len(current) < max_trace_length:
            walk = _nearest_uncovered(compiled, context, state, uncovered, local_depth)
        if walk is not None:
            for goal, binding, target in walk:
                take(binding)
                uncovered.discard(goal)
                state = target
            continue
        if current:
            traces.append(current)
            current = []
        while order[cursor] not in uncovered:
            cursor += 1
        goal = order[cursor]
        source = first[goal]
        for binding, outcome, pre in _path_steps(result, source):
            take(binding)
            uncovered.discard(context.goal(result.states[pre], binding, outcome))
        state = result.states[source]
        for binding, outcome, target in compiled.successors(state):
            if context.goal(state, binding, outcome) == goal:
                take(binding)
                uncovered.discard(goal)
                state = target
                break
        else:  # pragma: no cover - first_enabled saw this goal enabled here
            raise AssertionError(f"goal {goal} is not enabled in its recorded state")
    if current:
        traces.append(current)
    return traces, set(first)


# ---------------------------------------------------------------------------
# Invariant boundaries
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Boundary:
    invariant: str
    state: int
    fragility: int  # single-variable changes that would break the invariant there


def invariant_boundaries(result: ExplorationResult, sample: int = 400) -> dict[str, Boundary]:
    """Per invariant, the sampled state (BFS order) with the most breaking one-slot changes.

    A state invariant is broken by a change when the changed state violates it; a history
    invariant (a ghost ``hist_*`` flag) when some action from the changed state raises its
    flag. Ghost slots themselves are never changed.
    """
    compiled = result.compiled
    model = compiled.model
    layout = model.layout()
    ghosts = {v.name for v in model.variables if v.ghost}
    changeable = [
        (position, slot.sort.values())
        for position, slot in enumerate(layout)
        if slot.variable not in ghosts
    ]
    flag_position = {slot.variable: p for p, slot in enumerate(layout) if slot.variable in ghosts}
    flag_invariant: dict[int, int] = {}
    for k, inv in enumerate(model.invariants):
        for name, position in flag_position.items():
            if name.removeprefix("hist_") == inv.name:
                flag_invariant[position] = k
    best: dict[int, tuple[int, int]] = {}
    for sid in range(min(sample, len(result.states))):
        state = result.states[sid]
        counts: dict[int, int] = {}
        for position, values in changeable:
            for value in values:
                if value == state[position]:
                    continue
                changed = (*state[:position], value, *state[position + 1 :])
                broken = set(compiled.violations(changed))
                for _, _, target in compiled.successors(changed):
                    for flag, k in flag_invariant.items():
                        if target[flag] and not changed[flag]:
                            broken.add(k)
                for k in broken:
                    counts[k] = counts.get(k, 0) + 1
        for k, score in counts.items():
            # Equal fragility: the deeper state (BFS order) makes the longer, richer trace.
            if k not in best or score >= best[k][1]:
                best[k] = (sid, score)
    return {
        model.invariants[k].name: Boundary(model.invariants[k].name, sid, score)
        for k, (sid, score) in sorted(best.items())
    }


# ---------------------------------------------------------------------------
# Mutant witnesses
# ---------------------------------------------------------------------------


@functools.cache
def shortest_counterexample(
    mutant_name: str, bounds: Bounds, max_states: int = 2_000_000
) -> Violation | None:
    """The seeded model bug's shortest violation at ``bounds`` (cached: check and the suite
    both need it). Breadth-first search stops at the first violating state."""
    mutant = next(m for m in MUTANTS if m.name == mutant_name)
    result = explore(mutant.build(bounds), max_states=max_states, stop_on_violation=True)
    if not result.violations:
        return None
    return min(result.violations.values(), key=lambda v: (len(v.path), v.invariant))


def mutant_witness(runner: ModelRunner, mutant_name: str) -> list[ActionStep] | None:
    """The mutant's shortest counterexample at ``runner``'s bounds, cut where the correct
    model refuses a step."""
    violation = shortest_counterexample(mutant_name, runner.bounds)
    if violation is None:
        return None
    steps: list[ActionStep] = []
    flat = runner.initial()
    for step in violation.path:
        try:
            _, flat = runner.step(flat, step.action, step.params)
        except ActionNotEnabled:
            break
        steps.append((step.action, dict(step.params)))
    return steps or None


# ---------------------------------------------------------------------------
# The suite
# ---------------------------------------------------------------------------


@dataclass
class Suite:
    traces: list[Trace] = field(default_factory=list)
    cover: list[CoverStats] = field(default_factory=list)
    declared_action_outcomes: list[tuple[str, str]] = field(default_factory=list)
    covered_action_outcomes: list[tuple[str, str]] = field(default_factory=list)
    boundaries: dict[str, dict[str, Any]] = field(default_factory=dict)
    invariants: list[str] = field(default_factory=list)  # every invariant of the model

    @property
    def unreached_action_outcomes(self) -> list[tuple[str, str]]:
        covered = set(self.covered_action_outcomes)
        return [pair for pair in self.declared_action_outcomes if pair not in covered]

    @property
    def unexplained_unreached(self) -> list[tuple[str, str]]:
        return [p for p in self.unreached_action_outcomes if p not in UNREACHABLE_BY_DESIGN]

    def targeted_invariants(self) -> list[str]:
        """Invariants with a boundary trace or a mutant witness aimed at them."""
        witnessed = {
            m.expected_invariant
            for m in MUTANTS
            if any(t.meta.get("mutant") == m.name for t in self.traces)
        }
        return sorted(set(self.boundaries) | witnessed)

    @property
    def steps(self) -> int:
        return sum(len(t.steps) - 1 for t in self.traces)

    def kinds(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for trace in self.traces:
            kind = str(trace.meta.get("kind", "?"))
            counts[kind] = counts.get(kind, 0) + 1
        return counts

    def index(self, file_digests: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The suite's index.json: files, coverage and cost (no timings: it must be stable).

        ``file_digests`` (trace id -> sha256 of its file, as :func:`write_suite` computes them)
        adds each file's ``sha256``, which replay checks; without it they are left out, as
        serialising every trace again just to hash it costs seconds.
        """
        targeted = self.targeted_invariants()
        digests = file_digests or {}
        return {
            "format_version": "lashspec-suite/1",
            "traces": [
                {
                    "file": f"{t.trace_id}.itf.json",
                    "kind": t.meta.get("kind"),
                    "profile": t.meta.get("profile"),
                    "steps": len(t.steps) - 1,
                    "purpose": t.meta.get("purpose"),
                    **({"sha256": digests[t.trace_id]} if t.trace_id in digests else {}),
                }
                for t in self.traces
            ],
            "cover": [c.to_dict() for c in self.cover],
            "action_outcomes": {
                "declared": len(self.declared_action_outcomes),
                "covered": len(self.covered_action_outcomes),
                "unreached": [
                    {"action": a, "outcome": o, "why": UNREACHABLE_BY_DESIGN.get((a, o), "?")}
                    for a, o in self.unreached_action_outcomes
                ],
            },
            "invariant_boundaries": self.boundaries,
            "invariants": {
                "total": len(self.invariants),
                "targeted": targeted,
                "untargeted": [i for i in self.invariants if i not in targeted],
            },
            "total_steps": self.steps,
        }


def _covered_pairs(traces: Iterable[Trace]) -> set[tuple[str, str]]:
    return {(s.action, str(s.outcome["tag"])) for t in traces for s in t.steps[1:]}


@dataclass(frozen=True)
class _ProfilePart:
    """What one check profile adds to the suite (``generate_suite`` merges the parts)."""

    declared: frozenset[tuple[str, str]]
    invariants: frozenset[str]
    traces: tuple[Trace, ...]
    cover: CoverStats
    boundaries: tuple[tuple[str, int, int, Trace], ...]  # (invariant, fragility, actions, trace)


def _profile_part(
    prof: Profile,
    reuse: ExplorationResult | None,
    max_trace_length: int,
    boundary_sample: int,
    progress: Progress,
) -> _ProfilePart:
    """The edge cover's traces and the invariant-boundary candidates of one profile."""
    if reuse is not None and reuse.complete:
        result = reuse
    else:
        progress(f"suite: exploring profile {prof.name}")
        result = explore(compiled_model(prof.bounds))
    compiled = result.compiled
    runner = ModelRunner(prof.bounds)
    covers, goals = edge_cover(result, max_trace_length=max_trace_length, focus=prof.focus)
    traces = tuple(
        trace_of(
            runner,
            steps,
            f"cover-{prof.name}-{n:03d}",
            {"kind": "cover", "profile": prof.name, "purpose": "edge cover"},
        )
        for n, steps in enumerate(covers)
    )
    stats = CoverStats(
        prof.name,
        result.state_count,
        result.edge_count,
        len(goals),
        len({(compiled.bindings[b].action, plain_tag(tag)) for b, tag, _ in goals}),
        len(traces),
        sum(len(s) for s in covers),
    )
    progress(
        f"suite: {prof.name}: {stats.goals} goals in {stats.traces} traces, "
        f"{stats.steps} steps ({stats.steps_per_goal:.2f} steps/goal)"
    )
    boundaries = []
    for name, boundary in invariant_boundaries(result, boundary_sample).items():
        steps = [(a, dict(p)) for a, p in _path_actions(result, boundary.state)]
        trace = trace_of(
            runner,
            steps,
            f"boundary-{name}",
            {
                "kind": "boundary",
                "profile": prof.name,
                "purpose": f"state where {name} is most nearly violated "
                f"({boundary.fragility} single-variable changes break it)",
            },
        )
        boundaries.append((name, boundary.fragility, len(steps), trace))
    return _ProfilePart(
        frozenset(declared_action_outcomes(compiled)),
        frozenset(inv.name for inv in compiled.model.invariants),
        traces,
        stats,
        tuple(boundaries),
    )


def generate_suite(
    profiles: Sequence[Profile] = PROFILES,
    *,
    max_trace_length: int = 40,
    boundary_sample: int = 400,
    witnesses: bool = True,
    scenarios: bool = True,
    promoted: bool = True,
    explored: Mapping[str, ExplorationResult] | None = None,
    progress: Progress = _quiet,
    jobs: int = 1,
) -> Suite:
    """The whole conformance suite (see the module docstring).

    ``explored`` may hold complete explorations of some profiles (by name) to reuse. The
    profiles' parts are computed in ``jobs`` forked processes (``forked.py``) and merged in
    profile order: the suite is the same for any ``jobs``.
    """
    suite = Suite()
    declared: set[tuple[str, str]] = set()
    invariants = {inv.name for inv in build_model(SCENARIO_BOUNDS).invariants}
    best_boundary: dict[str, tuple[int, int, Trace]] = {}

    def part(index: int, report: Progress) -> _ProfilePart:
        prof = profiles[index]
        reuse = (explored or {}).get(prof.name)
        return _profile_part(prof, reuse, max_trace_length, boundary_sample, report)

    for part_of_profile in forked_map(part, len(profiles), jobs, progress):
        declared |= part_of_profile.declared
        invariants |= part_of_profile.invariants
        suite.traces.extend(part_of_profile.traces)
        suite.cover.append(part_of_profile.cover)
        for name, fragility, actions, trace in part_of_profile.boundaries:
            # the most fragile state, then the shortest trace, then the earlier profile
            known = best_boundary.get(name)
            if known is None or (fragility, -actions) > (known[0], known[1]):
                best_boundary[name] = (fragility, -actions, trace)
    if witnesses:
        progress("suite: witness traces of the seeded model bugs, at the default bounds")
        # At the default bounds: some bugs need more than the profiles allow (a third
        # generation, a second claim of one row), and the search stops at the first
        # violation, a few thousand states in.
        _add_witnesses(suite, ModelRunner(DEFAULT_BOUNDS), "default")
    for name in sorted(best_boundary):
        fragility, _, trace = best_boundary[name]
        suite.traces.append(trace)
        suite.boundaries[name] = {
            "trace": trace.trace_id,
            "fragility": fragility,
            "steps": len(trace.steps) - 1,
        }
    if scenarios:
        progress("suite: traces of the seed's runtime scenarios")
        runner = ModelRunner(SCENARIO_BOUNDS)
        for name, (purpose, scenario) in SEED_SCENARIO_TRACES.items():
            suite.traces.append(
                trace_of(
                    runner,
                    [(a, dict(p)) for a, p in scenario],
                    f"scenario-{name}",
                    {"kind": "scenario", "profile": "scenario", "purpose": purpose},
                )
            )
    if promoted:
        progress("suite: promoted traces")
        for name, (purpose, bounds, promoted_steps) in PROMOTED_TRACES.items():
            suite.traces.append(
                trace_of(
                    ModelRunner(bounds),
                    [(a, dict(p)) for a, p in promoted_steps],
                    f"promoted-{name}",
                    {"kind": "promoted", "profile": "promoted", "purpose": purpose},
                )
            )
    suite.declared_action_outcomes = sorted(declared)
    suite.covered_action_outcomes = sorted(_covered_pairs(suite.traces) & declared)
    suite.invariants = sorted(invariants)  # a profile's extension may add some
    progress(
        f"suite: {len(suite.traces)} traces, {suite.steps} steps, "
        f"{len(suite.covered_action_outcomes)}/{len(declared)} action x outcome pairs covered"
    )
    return suite


def _add_witnesses(suite: Suite, runner: ModelRunner, profile_name: str) -> None:
    """Witness traces, at ``runner``'s bounds, of the mutants that have none yet."""
    for mutant in MUTANTS:
        if any(t.meta.get("mutant") == mutant.name for t in suite.traces):
            continue
        mutant_runner = runner if mutant.bounds is None else ModelRunner(mutant.bounds)
        witness = mutant_witness(mutant_runner, mutant.name)
        if witness is None:
            continue
        meta = {
            "kind": "witness",
            "profile": profile_name if mutant.bounds is None else "mutant",
            "mutant": mutant.name,
            "purpose": f"shortest counterexample of the mutant {mutant.name}",
        }
        suite.traces.append(trace_of(mutant_runner, witness, f"witness-{mutant.name}", meta))


def _path_actions(result: ExplorationResult, state: int) -> list[tuple[str, Mapping[str, Any]]]:
    return [(step.action, step.params) for step in result.path_to(state)]


def write_suite(suite: Suite, out_dir: Path) -> list[Path]:
    """Write one canonical ITF file per trace plus ``index.json``; stale files are removed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    wanted = {f"{t.trace_id}.itf.json" for t in suite.traces}
    for old in out_dir.glob("*.itf.json"):
        if old.name not in wanted:
            old.unlink()
    digests: dict[str, str] = {}
    for trace in suite.traces:
        path = out_dir / f"{trace.trace_id}.itf.json"
        data = dumps_canonical(trace_to_json(trace)).encode("utf-8")
        path.write_bytes(data)
        digests[trace.trace_id] = file_sha256(data)
        written.append(path)
    index = out_dir / INDEX_FILE
    index.write_text(dumps_canonical(suite.index(digests)), encoding="utf-8")
    written.append(index)
    return written
