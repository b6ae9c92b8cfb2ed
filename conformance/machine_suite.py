"""Generate machine traces (docs/machine-traces.md) from the composed model's state graph.

Theory of operation
-------------------
Each machine check profile (:data:`lashspec.model.profiles.MACHINE_PROFILES`) is explored
breadth first with
:func:`~lashspec.model.machine_model.build_machine_model`. A **goal** is an action instance
(action with its picks) together with its outcome tag and, for host events and store steps,
the effects the machine returned: the suite takes every goal the profile reaches at least once,
so every rule of the machine that the bounds can reach runs, with every effect list it emits.
A goal of the renewal timer (``host_timer``) also names the phase its owner's machine is in,
since the driver's decision depends on it: the timer's early, due and late instants are
covered in every phase the timer fires in, the turn's (where it renews) included.
The cover is the nearest-neighbour heuristic of :func:`lashspec.conformance.generate.edge_cover`
(whose goals know no effects): a trace repeatedly takes the nearest uncovered goal found by a
small breadth-first search from where it stands, and when none is near (or the trace is long
enough) the next trace starts with the shortest path to the shallowest uncovered goal.

Besides the cover, each profile has a few **promoted walks** (:data:`PROMOTED_WALKS`):
scripted action sequences, run on the profile's model step by step, for situations the
cover reaches but not in the state that tells a wrong implementation apart (the cover takes
each goal once, in the first state it finds): which pending row goes first when a session
command and next-turn input are both waiting, a timer after the clock passed a TTL, a
checkpoint in a later turn, written or failed; wrong replies fed by the host at each
outstanding effect; a queue holding only turn work. Their outcomes and states come from the model
like the cover's; a walk the model does not allow is an error. They are written as
``<profile>-promoted-<name>.itf.json`` (``kind`` ``promoted``).

Traces are built from the exact model transitions the cover walked, projected with
:func:`~lashspec.model.machine_model.machine_trace_state` and
:func:`~lashspec.model.machine_model.machine_trace_outcome`, and written as
``<profile>-cover-<nnn>.itf.json`` (profile names start with ``machine-``) with
``#meta.lashspec.system = "machine"``;
:func:`write_machine_suite` adds them to the ``index.json`` the store suite wrote. Everything
is deterministic, so the same model gives byte-identical files.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..model.dsl import CompiledModel, FlatState, compile_model
from ..model.explore import ExplorationResult, explore
from ..model.machine_model import build_machine_model, machine_trace_outcome, machine_trace_state
from ..model.profiles import MACHINE_PROFILES, MachineProfile
from .itf import SUITE_INDEX_FILE, Trace, TraceStep, dumps_canonical, file_sha256, trace_to_json
from .modeltrace import enabled_move

Progress = Callable[[str], None]
#: (binding index, outcome tag, effects returned, the owner's phase for the renewal timer)
Goal = tuple[int, str, tuple[str, ...], str]
#: One model transition: (binding index, outcome, post-state)
Move = tuple[int, Any, FlatState]

TRACE_PREFIX = "machine-"
INIT_OUTCOME: dict[str, Any] = {"tag": "Ok"}


#: Actions whose goals also name the phase of the owner they act on.
PHASED_ACTIONS = frozenset({"host_timer"})


class _Goals:
    """Computes the goal of a move from the state it leaves."""

    def __init__(self, compiled: CompiledModel) -> None:
        phase_at = compiled.model.slot_offsets()["machine_phase"]
        #: binding -> slot of its owner's phase, for the phased actions
        self._phase_slot = {
            index: phase_at + int(binding.params["o"])
            for index, binding in enumerate(compiled.bindings)
            if binding.action in PHASED_ACTIONS
        }

    def of(self, binding: int, outcome: Any, source: FlatState) -> Goal:
        tag, fields = outcome
        effects = tuple(dict(fields).get("effects", ()))
        slot = self._phase_slot.get(binding)
        return (binding, tag, effects, "" if slot is None else str(source[slot]))


def first_enabled(result: ExplorationResult) -> dict[Goal, int]:
    """Goal -> the shallowest explored state where it is enabled (BFS order)."""
    goals = _Goals(result.compiled)
    states = result.states
    first: dict[Goal, int] = {}
    if result.edges is not None:  # kept by the exploration: no second pass over successors
        labels = result.labels
        for source, _, label in result.edges:  # edges are recorded in BFS order of source
            binding, outcome = labels[label]
            first.setdefault(goals.of(binding, outcome, states[source]), source)
        return first
    successors = result.compiled.successors
    for sid, state in enumerate(states):
        for binding, outcome, _ in successors(state):
            first.setdefault(goals.of(binding, outcome, state), sid)
    return first


def _nearest_uncovered(
    compiled: CompiledModel, goals: _Goals, start: FlatState, uncovered: set[Goal], depth: int
) -> list[Move] | None:
    """The shortest walk from ``start`` whose last move takes an uncovered goal (or None)."""
    frontier: deque[tuple[FlatState, list[Move]]] = deque([(start, [])])
    seen = {start}
    while frontier:
        state, path = frontier.popleft()
        moves = compiled.successors(state)
        for binding, outcome, target in moves:
            if goals.of(binding, outcome, state) in uncovered:
                return [*path, (binding, outcome, target)]
        if len(path) + 1 >= depth:
            continue
        for binding, outcome, target in moves:
            if target not in seen:
                seen.add(target)
                frontier.append((target, [*path, (binding, outcome, target)]))
    return None


def _path_to(result: ExplorationResult, state: int) -> list[Move]:
    moves: list[Move] = []
    current = state
    while result.parents[current] >= 0:
        label = result.incoming[current]
        assert label is not None
        moves.append((label[0], label[1], result.states[current]))
        current = result.parents[current]
    moves.reverse()
    return moves


def machine_cover(
    result: ExplorationResult, *, max_trace_length: int = 60, local_depth: int = 4
) -> tuple[list[list[Move]], set[Goal]]:
    """Walks that together take every goal reachable in ``result``; and those goals."""
    compiled = result.compiled
    goals = _Goals(compiled)
    first = first_enabled(result)
    depth = [0] * len(result.states)
    for sid in range(1, len(result.states)):
        depth[sid] = depth[result.parents[sid]] + 1
    order = sorted(first, key=lambda goal: (depth[first[goal]], goal))
    uncovered = set(first)
    walks: list[list[Move]] = []
    current: list[Move] = []
    state = result.states[0]
    cursor = 0
    while uncovered:
        walk = None
        if current and len(current) < max_trace_length:
            walk = _nearest_uncovered(compiled, goals, state, uncovered, local_depth)
        if walk is None:
            if current:
                walks.append(current)
            while order[cursor] not in uncovered:
                cursor += 1
            goal = order[cursor]
            source = first[goal]
            state = result.states[source]
            finish = next(
                (b, o, t) for b, o, t in compiled.successors(state) if goals.of(b, o, state) == goal
            )
            walk = [*_path_to(result, source), finish]
            current = []
        for binding, outcome, target in walk:
            current.append((binding, outcome, target))
            uncovered.discard(goals.of(binding, outcome, state))
            state = target
    if current:
        walks.append(current)
    return walks, set(first)


def trace_of_walk(
    compiled: CompiledModel, walk: Sequence[Move], trace_id: str, meta: dict[str, Any]
) -> Trace:
    """The machine trace of a walk from the initial state, with the model's projections."""
    model = compiled.model
    initial = machine_trace_state(model, model.initial_state())
    steps = [TraceStep("init", {}, INIT_OUTCOME, initial)]
    for binding, outcome, target in walk:
        instance = compiled.bindings[binding]
        steps.append(
            TraceStep(
                instance.action,
                dict(instance.params),
                machine_trace_outcome(model, instance.action, outcome),
                machine_trace_state(model, target),
            )
        )
    return Trace(trace_id, tuple(steps), meta)


@dataclass(frozen=True)
class PromotedWalk:
    """A scripted walk on one machine profile's model: actions with their picks.
    ``widen`` names bounds the walk needs beyond the profile's (its trace carries them); the
    walk then runs on a model at the widened bounds, which is never explored."""

    name: str
    profile: str
    purpose: str
    actions: tuple[tuple[str, Mapping[str, Any]], ...]
    widen: Mapping[str, int] = field(default_factory=dict)


def _start_and_claim_inputs(o: int = 0) -> tuple[tuple[str, Mapping[str, Any]], ...]:
    """host_start through the inputs claim: lease, inspection, claim (the turn runs)."""
    return (("host_start", {"o": o}), *(("store_step", {"o": o}),) * 3)


#: Slots of the catalogue (docs/trace-format.md §1) the walks use.
COMMAND_BATCH, NEXT_TURN_INPUT, ACTIVE_TURN_INPUT = 0, 0, 1
TURN_WORK_BATCH = 1  # a process wake and an agent-frame task (docs/trace-format.md §1)

#: ``host_misfeed``'s picks: a reply type not answering the outstanding effect, then the
#: awaited reply carrying a lease or claim of another session id or lease generation.
_EVERY_MISFEED = (
    "unawaited",
    "session_before",
    "session_after",
    "generation_below",
    "generation_above",
)


def _misfeed(*kinds: str, o: int = 0) -> tuple[tuple[str, Mapping[str, Any]], ...]:
    """o's host feeds each of ``kinds`` of wrong reply (each refused, nothing changes)."""
    return tuple(("host_misfeed", {"o": o, "reply": kind}) for kind in kinds or _EVERY_MISFEED)


PROMOTED_WALKS: tuple[PromotedWalk, ...] = (
    PromotedWalk(
        "input-before-command",
        "machine-turn",
        "next-turn input enqueued before a session command: the input goes first",
        (
            ("enqueue_input", {"i": NEXT_TURN_INPUT}),
            ("enqueue_batch", {"b": COMMAND_BATCH}),
            ("host_start", {"o": 0}),
            ("store_step", {"o": 0}),
            ("store_step", {"o": 0}),  # inspection: ClaimNextTurnInputs
        ),
    ),
    PromotedWalk(
        "command-before-input",
        "machine-turn",
        "a session command enqueued before next-turn input: the command goes first",
        (
            ("enqueue_batch", {"b": COMMAND_BATCH}),
            ("enqueue_input", {"i": NEXT_TURN_INPUT}),
            ("host_start", {"o": 0}),
            ("store_step", {"o": 0}),
            ("store_step", {"o": 0}),  # inspection: ClaimLeadingCommand
        ),
    ),
    PromotedWalk(
        "active-input-not-next-turn",
        "machine-turns",
        "after a turn, an active-turn input for it enqueued before a session command is not "
        "next-turn input: the command goes first",
        (
            ("enqueue_input", {"i": NEXT_TURN_INPUT}),
            *_start_and_claim_inputs(),
            ("host_finish", {"o": 0}),
            ("store_step", {"o": 0}),
            ("enqueue_input", {"i": ACTIVE_TURN_INPUT}),
            ("enqueue_batch", {"b": COMMAND_BATCH}),
            ("host_start", {"o": 0}),
            ("store_step", {"o": 0}),
            ("store_step", {"o": 0}),  # inspection: ClaimLeadingCommand
        ),
    ),
    PromotedWalk(
        "timer-after-a-ttl",
        "machine-lease",
        "the renewal timer of a lease granted after the clock passed a whole TTL: owner 1 "
        "takes over the session from owner 0, whose lease expired",
        (
            ("enqueue_input", {"i": NEXT_TURN_INPUT}),
            ("host_start", {"o": 0}),
            ("store_step", {"o": 0}),
            ("expire", {}),
            *_start_and_claim_inputs(1),
            ("host_timer", {"o": 1, "at": "early"}),
            ("host_timer", {"o": 1, "at": "due"}),
        ),
    ),
    PromotedWalk(
        "checkpoint-in-second-turn",
        "machine-turns",
        "a checkpoint of the session's second turn (turn index 1, above the first turn's); "
        "then drivers opened over the store for the session and for other session ids",
        (
            ("enqueue_input", {"i": NEXT_TURN_INPUT}),
            *_start_and_claim_inputs(),
            ("enqueue_input", {"i": ACTIVE_TURN_INPUT}),
            ("host_finish", {"o": 0}),
            ("store_step", {"o": 0}),  # the commit hands the active input to the next turn
            *_start_and_claim_inputs(),
            ("host_checkpoint", {"o": 0, "checkpoint": "after_work"}),
            ("store_step", {"o": 0}),
            # the store now holds turn index 1: a driver opened for another session id starts
            # from none
            *(("open_driver", {"session": s}) for s in ("own", "id_before", "id_after")),
        ),
    ),
    PromotedWalk(
        "failed-checkpoint-in-second-turn",
        "machine-turns",
        "the second turn's checkpoint write fails (the committed checkpoint stays the first "
        "turn's), then the turn finishes and its commit carries the second turn's checkpoint",
        (
            ("enqueue_input", {"i": NEXT_TURN_INPUT}),
            *_start_and_claim_inputs(),
            ("enqueue_input", {"i": ACTIVE_TURN_INPUT}),
            ("host_finish", {"o": 0}),
            ("store_step", {"o": 0}),
            *_start_and_claim_inputs(),
            ("host_checkpoint", {"o": 0, "checkpoint": "after_work"}),
            ("store_fail", {"o": 0}),  # CommitFailed: the turn goes on
            ("store_step", {"o": 0}),  # CheckpointWorkClaimed (nothing new)
            ("host_finish", {"o": 0}),
            ("store_step", {"o": 0}),  # CommitSucceeded
        ),
    ),
    PromotedWalk(
        "turn-work-is-no-command",
        "machine-turn",
        "only turn work is pending when the driver inspects the queue: it is no session "
        "command, so no command drain starts",
        (
            ("enqueue_batch", {"b": COMMAND_BATCH}),  # slots are taken in order
            ("enqueue_batch", {"b": TURN_WORK_BATCH}),
            ("cancel_batch", {"b": COMMAND_BATCH}),
            ("host_start", {"o": 0}),
            ("store_step", {"o": 0}),
            ("store_step", {"o": 0}),  # inspection: no command, no next-turn input
        ),
    ),
    PromotedWalk(
        "misfed-replies",
        "machine-turns",
        "the host feeds wrong replies at each outstanding effect of a turn (a reply type that "
        "does not answer it; a lease or claim of another session id or lease generation), and "
        "while an interrupt or a cancellation waits for the store: each is refused",
        (
            ("enqueue_input", {"i": NEXT_TURN_INPUT}),
            ("host_start", {"o": 0}),
            *_misfeed("unawaited", "session_before", "session_after"),
            ("host_interrupt", {"o": 0}),  # Cancelling, the acquisition outstanding
            *_misfeed("unawaited", "session_before", "session_after"),
            ("store_step", {"o": 0}),
            ("host_start", {"o": 0}),
            ("store_step", {"o": 0}),
            *_misfeed("unawaited"),  # the inspection
            ("store_step", {"o": 0}),
            *_misfeed(),  # the inputs claim
            ("store_step", {"o": 0}),
            ("host_renew_due", {"o": 0}),
            *_misfeed(),  # the renewal
            ("store_step", {"o": 0}),
            ("host_checkpoint", {"o": 0, "checkpoint": "after_work"}),
            *_misfeed("unawaited"),  # the checkpoint write
            ("store_step", {"o": 0}),
            *_misfeed(),  # the checkpoint work claim
            ("host_interrupt", {"o": 0}),  # Interrupting, the claim outstanding
            *_misfeed(),
            ("store_step", {"o": 0}),
            *_misfeed("unawaited"),  # the turn commit
            ("store_step", {"o": 0}),
        ),
    ),
    PromotedWalk(
        "lease-expires-during-command-claim",
        "machine-turn",
        "the lease expires while the leading session command's claim is outstanding: the "
        "store's lease-expired error is lease loss (LeaseLost), not a failed claim",
        (
            ("enqueue_batch", {"b": COMMAND_BATCH}),
            ("host_start", {"o": 0}),
            ("store_step", {"o": 0}),
            ("store_step", {"o": 0}),  # inspection: ClaimLeadingCommand
            ("expire", {}),
            ("store_step", {"o": 0}),
        ),
    ),
    PromotedWalk(
        "lease-expires-during-command-commit",
        "machine-turn",
        "the lease expires while a session command's commit is outstanding: lease loss, not "
        "a failed commit",
        (
            ("enqueue_batch", {"b": COMMAND_BATCH}),
            ("host_start", {"o": 0}),
            ("store_step", {"o": 0}),
            ("store_step", {"o": 0}),
            ("store_step", {"o": 0}),  # CommandClaimed: CommitSessionCommand
            ("expire", {}),
            ("store_step", {"o": 0}),
        ),
    ),
    PromotedWalk(
        "lease-expires-during-idle-work-claim",
        "machine-turn",
        "the lease expires while the claim of turn work at the Idle boundary is outstanding: "
        "lease loss, not a failed claim",
        (
            ("host_start", {"o": 0}),
            ("store_step", {"o": 0}),
            ("store_step", {"o": 0}),
            ("store_step", {"o": 0}),  # no input: ClaimQueuedWork
            ("expire", {}),
            ("store_step", {"o": 0}),
        ),
    ),
    PromotedWalk(
        "lease-expires-during-checkpoint-claim",
        "machine-turn",
        "the lease expires while a checkpoint's work claim is outstanding, an active-turn "
        "input waiting for it: the turn stops for lease loss, not for a failed claim",
        (
            ("enqueue_input", {"i": NEXT_TURN_INPUT}),
            *_start_and_claim_inputs(),
            ("enqueue_input", {"i": ACTIVE_TURN_INPUT}),
            ("host_checkpoint", {"o": 0, "checkpoint": "after_work"}),
            ("store_step", {"o": 0}),  # checkpoint written: ClaimCheckpointWork
            ("expire", {}),
            ("store_step", {"o": 0}),
        ),
    ),
    PromotedWalk(
        "interrupted-command-claim-fails",
        "machine-turn",
        "an interrupt while the leading command's claim is outstanding, then the claim fails: "
        "a failed command drain releases the lease, in Cancelling as outside it",
        (
            ("enqueue_batch", {"b": COMMAND_BATCH}),
            ("host_start", {"o": 0}),
            ("store_step", {"o": 0}),
            ("store_step", {"o": 0}),  # inspection: ClaimLeadingCommand
            ("host_interrupt", {"o": 0}),
            ("store_fail", {"o": 0}),
        ),
    ),
    PromotedWalk(
        "interrupted-input-claim-fails",
        "machine-turn",
        "an interrupt while the next-turn input claim is outstanding, then the claim fails: "
        "the lease is kept to run out at its TTL, nothing is released",
        (
            ("enqueue_input", {"i": NEXT_TURN_INPUT}),
            ("host_start", {"o": 0}),
            ("store_step", {"o": 0}),
            ("store_step", {"o": 0}),  # inspection: ClaimNextTurnInputs
            ("host_interrupt", {"o": 0}),
            ("store_fail", {"o": 0}),
        ),
    ),
    PromotedWalk(
        "restart-after-second-turn",
        "machine-turns",
        "an owner restarted after the second turn committed: its new machine starts from the "
        "checkpoint the store holds (the profile restarts nobody: one restart more)",
        (
            ("enqueue_input", {"i": NEXT_TURN_INPUT}),
            *_start_and_claim_inputs(),
            ("enqueue_input", {"i": ACTIVE_TURN_INPUT}),
            ("host_finish", {"o": 0}),
            ("store_step", {"o": 0}),
            *_start_and_claim_inputs(),
            ("host_finish", {"o": 0}),
            ("store_step", {"o": 0}),  # CommitSucceeded: the store holds turn 1's checkpoint
            ("crash", {"o": 0}),
            ("restart", {"o": 0}),
        ),
        widen={"max_incarnation": 1},
    ),
)


def promoted_walk(compiled: CompiledModel, walk: PromotedWalk) -> list[Move]:
    """The model's moves for ``walk``'s actions from the initial state; ValueError if the
    model does not allow one of them."""
    state = compiled.model.initial_state()
    moves: list[Move] = []
    for number, (action, picks) in enumerate(walk.actions, start=1):
        move = enabled_move(compiled, state, action, picks)
        if move is None:
            raise ValueError(
                f"promoted walk {walk.name}: step {number} {action}{dict(picks)} is not enabled"
            )
        moves.append(move)
        state = move[2]
    return moves


@dataclass
class MachineCover:
    """What the cover of one profile reached and what it cost."""

    profile: str
    states: int
    edges: int
    goals: int
    traces: int
    steps: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "states": self.states,
            "edges": self.edges,
            "goals": self.goals,
            "traces": self.traces,
            "steps": self.steps,
        }


@dataclass
class MachineSuite:
    traces: list[Trace] = field(default_factory=list)
    cover: list[MachineCover] = field(default_factory=list)
    #: (action, outcome tag, effects) the traces take, over all profiles
    covered: set[tuple[str, str, tuple[str, ...]]] = field(default_factory=set)

    @property
    def steps(self) -> int:
        return sum(len(t.steps) - 1 for t in self.traces)


def _machine_name(profile: str) -> str:
    """Every machine trace file starts with ``machine-``, whatever its profile is called."""
    return profile if profile.startswith(TRACE_PREFIX) else TRACE_PREFIX + profile


def _quiet(_: str) -> None:
    return None


def promoted_trace(
    compiled: CompiledModel,
    profile: MachineProfile,
    walk: PromotedWalk,
    meta: Mapping[str, Any],
) -> Trace:
    """The trace of the promoted ``walk``, run on ``compiled`` (the model at ``profile``'s
    bounds) or, when the walk widens them, on the model at the widened bounds; ``meta`` is
    the profile's, which the trace's kind, purpose and bounds then replace."""
    trace_id = f"{_machine_name(profile.name)}-promoted-{walk.name}"
    promoted_meta = {**meta, "kind": "promoted", "purpose": walk.purpose}
    on = compiled
    if walk.widen:
        bounds = replace(profile.bounds, **walk.widen)
        on = compile_model(build_machine_model(bounds))
        promoted_meta["bounds"] = bounds.as_dict()
    return trace_of_walk(on, promoted_walk(on, walk), trace_id, promoted_meta)


def generate_machine_suite(
    profiles: Sequence[MachineProfile] = MACHINE_PROFILES,
    *,
    progress: Progress = _quiet,
    explored: Mapping[str, ExplorationResult] | None = None,
) -> MachineSuite:
    """The cover of every profile; ``explored`` holds explorations already made (with
    ``keep_edges``) by profile name, which are used instead of exploring again."""
    suite = MachineSuite()
    for profile in profiles:
        result = (explored or {}).get(profile.name)
        if result is None or result.edges is None:
            compiled = compile_model(build_machine_model(profile.bounds))
            progress(f"machine profile {profile.name}: exploring")
            result = explore(compiled, keep_edges=True)
        compiled = result.compiled
        if not result.complete:  # pragma: no cover - explore without limits always completes
            raise AssertionError(f"machine profile {profile.name} was not explored completely")
        walks, goals = machine_cover(result)
        meta = {
            "system": "machine",
            "bounds": profile.bounds.as_dict(),
            "kind": "cover",
            "profile": profile.name,
            "purpose": f"edge cover of the machine profile {profile.name}: {profile.purpose}",
        }
        for number, walk in enumerate(walks):
            trace_id = f"{_machine_name(profile.name)}-cover-{number:03d}"
            suite.traces.append(trace_of_walk(compiled, walk, trace_id, meta))
            for binding, (tag, fields), _ in walk:
                effects = tuple(dict(fields).get("effects", ()))
                suite.covered.add((compiled.bindings[binding].action, tag, effects))
        for promoted in PROMOTED_WALKS:
            if promoted.profile == profile.name:
                suite.traces.append(promoted_trace(compiled, profile, promoted, meta))
        steps = sum(len(w) for w in walks)
        suite.cover.append(
            MachineCover(
                profile.name, result.state_count, result.edge_count, len(goals), len(walks), steps
            )
        )
        progress(
            f"machine profile {profile.name}: {result.state_count} states, {len(goals)} goals "
            f"in {len(walks)} traces, {steps} steps"
        )
    return suite


def write_machine_suite(suite: MachineSuite, out_dir: Path) -> list[Path]:
    """Write the machine traces next to a store suite and list them in its ``index.json``
    (created if the directory has none): each file with its sha256, plus a ``machine``
    section with the cover. Run it after :func:`~lashspec.conformance.generate.write_suite`,
    which removes trace files its own suite does not list. Returns the trace files written
    (the index is updated in place)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    index_path = out_dir / SUITE_INDEX_FILE
    index: dict[str, Any] = (
        json.loads(index_path.read_text(encoding="utf-8"))
        if index_path.exists()
        else {"format_version": "lashspec-suite/1", "traces": []}
    )
    entries = [e for e in index["traces"] if not str(e.get("file", "")).startswith(TRACE_PREFIX)]
    written: list[Path] = []
    for trace in suite.traces:
        path = out_dir / f"{trace.trace_id}.itf.json"
        data = dumps_canonical(trace_to_json(trace)).encode("utf-8")
        path.write_bytes(data)
        written.append(path)
        entries.append(
            {
                "file": path.name,
                "kind": trace.meta.get("kind"),
                "profile": trace.meta.get("profile"),
                "steps": len(trace.steps) - 1,
                "purpose": trace.meta.get("purpose"),
                "system": "machine",
                "sha256": file_sha256(data),
            }
        )
    index["traces"] = entries
    index["machine"] = {
        "cover": [c.to_dict() for c in suite.cover],
        "goals_covered": len(suite.covered),
        "total_steps": suite.steps,
    }
    index_path.write_text(dumps_canonical(index), encoding="utf-8")
    return written
