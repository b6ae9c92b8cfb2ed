"""Checks of the composed machine model (``machine_model``) shared by ``lashspec check`` and the
tests: rule and outcome coverage of explored graphs, the seeded bugs found by the explorer and
by z3 BMC, and induction with the owner parameter pinned.

Everything here is model side: it imports neither the kernel nor the conformance package.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .dsl import (
    Const,
    Expr,
    Model,
    Monitor,
    Param,
    interpret_invariants,
    interpret_step,
    transform,
)
from .explore import ExplorationResult, Step, explore
from .machine_model import (
    CYCLE_OUTCOMES,
    HOST_AND_STORE_ACTIONS,
    NOT_DUE,
    RULES,
    MachineBounds,
    build_machine_lemmas,
    build_machine_model,
)
from .machine_mutants import MachineMutant
from .z3check import BmcResult, InductionReport, bmc, prove_inductive

#: Rules no machine check profile reaches, and why.
UNREACHED_RULES: dict[tuple[str, str, str], str] = {
    ("ReclaimingLease", "LeaseBusy", "Idle"): (
        "a reclaim answered Busy needs the row to change generation between the Busy answer "
        "and the reclaim, i.e. a restarted owner acquiring after expiry: max_incarnation 1 "
        "and three turns, too large to explore; test_stale_reclaim_ends_the_cycle_busy steps it"
    ),
}

#: The bounds of the machine induction proof (docs/model.md §7: about 6 s, owner pinned).
INDUCTION_BOUNDS = MachineBounds(
    owners=1,
    max_incarnation=0,
    batches=1,
    inputs=1,
    max_generation=1,
    max_claims_per_row=1,
    max_head_revision=1,
    max_turns=1,
)

#: BMC depth from the initial state of the pinned model at ``INDUCTION_BOUNDS`` in the check:
#: about 14 s of CPU time (depths 1-6: 1.3, 1.3, 1.4, 2.2, 3.3, 4.3 s), each depth dearer
#: than the last; it covers the shortest counterexamples of the seeded bugs at these bounds
#: up to five steps (commands_not_drained_first 4, lease_loss_keeps_claiming 5).
MACHINE_BMC_DEPTH = 6

#: BMC depth of the seeded-bug check: z3 unrolls this model at about 10-20 s a step, so BMC
#: runs over the last steps of the explorer's shortest counterexample.
BMC_SUFFIX = 2


def pin_owner(model: Model) -> Model:
    """The one-owner model with the owner parameter replaced by the constant 0: the same
    transitions, far cheaper for z3 (map reads at a constant key are plain slots)."""
    if model.bounds["owners"] != 1:
        raise ValueError("pin_owner needs a one-owner model")

    def pin(e: Expr) -> Expr | None:
        return Const(0) if isinstance(e, Param) and e.name == "o" else None

    actions = []
    for action in model.actions:
        if any(name == "o" for name, _ in action.params):
            action = action.map_exprs(lambda e: transform(e, pin)).replace(
                params=tuple((n, s) for n, s in action.params if n != "o")
            )
        actions.append(action)
    monitors = tuple(Monitor(m.variable, transform(m.update, pin)) for m in model.monitors)
    return model.replace(actions=tuple(actions), monitors=monitors)


def taken_rules(result: ExplorationResult) -> set[tuple[str, str, str]]:
    """(phase, event, target) of every host-event or store-step edge explored (needs an
    exploration with ``keep_edges``)."""
    if result.edges is None:
        raise ValueError("taken_rules needs an exploration with keep_edges=True")
    model = result.model
    phase_at = model.slot_offsets()["machine_phase"]
    taken: set[tuple[str, str, str]] = set()
    for src, dst, label in result.edges:
        binding_index, outcome = result.labels[label]
        binding = result.compiled.bindings[binding_index]
        if binding.action not in HOST_AND_STORE_ACTIONS or outcome[0] == NOT_DUE:
            continue  # a timer that found nothing due fed the machine nothing
        owner = int(binding.params["o"])
        before = result.states[src][phase_at + owner]
        after = result.states[dst][phase_at + owner]
        taken.add((str(before), outcome[0], str(after)))
    return taken


def reached_outcomes(result: ExplorationResult) -> set[str]:
    """Every cycle outcome (``machine_outcome``, "" included) some explored state holds."""
    offset = result.model.slot_offsets()["machine_outcome"]
    owners = result.model.bounds["owners"]
    return {str(state[offset + o]) for state in result.states for o in range(owners)}


@dataclass(frozen=True)
class RuleCoverage:
    """What the explorations together took of the rule table and the cycle outcomes."""

    taken: frozenset[tuple[str, str, str]]
    missed: frozenset[tuple[str, str, str]]  # rows not taken beyond UNREACHED_RULES
    foreign: frozenset[tuple[str, str, str]]  # explored machine steps that are no row
    outcomes_missed: frozenset[str]

    @property
    def ok(self) -> bool:
        return not (self.missed or self.foreign or self.outcomes_missed)


def rule_coverage(results: Sequence[ExplorationResult]) -> RuleCoverage:
    taken: set[tuple[str, str, str]] = set()
    outcomes: set[str] = set()
    for result in results:
        taken |= taken_rules(result)
        outcomes |= reached_outcomes(result)
    rules = {(r.phase, r.event, r.target) for r in RULES}
    return RuleCoverage(
        frozenset(taken),
        frozenset(rules - taken - set(UNREACHED_RULES)),
        frozenset(taken - rules),
        frozenset(set(CYCLE_OUTCOMES) - outcomes),
    )


@dataclass
class MutantCatch:
    """The explorer's shortest counterexample for one seeded machine bug (or none)."""

    mutant: MachineMutant
    explored: ExplorationResult
    model: Model

    @property
    def caught(self) -> bool:
        return self.mutant.expected_invariant in self.explored.violations

    @property
    def path(self) -> tuple[Step, ...]:
        return self.explored.violations[self.mutant.expected_invariant].path


def explore_mutant(mutant: MachineMutant, bounds: MachineBounds | None = None) -> MutantCatch:
    """Explore the mutant (at its own bounds) up to the first state violating its expected
    invariant; breadth first, so the path is a shortest counterexample."""
    model = mutant.build(bounds or mutant.bounds)
    model = model.replace(name=f"{model.name}[{mutant.name}]")
    explored = explore(model, stop_at=[mutant.expected_invariant])
    return MutantCatch(mutant, explored, model)


def clean_model_holds(catch: MutantCatch) -> bool:
    """Whether the correct model at the mutant's bounds runs the counterexample's steps (up
    to the first one it does not take) with every invariant holding: the bug is the
    mutant's, not the bounds'."""
    clean = build_machine_model(catch.mutant.bounds)
    state = clean.decode(clean.initial_state())
    for step in catch.path:
        taken = interpret_step(clean, state, clean.action(step.action), step.params)
        if taken is None:
            return True  # the mutant enabled a step the correct machine does not take
        state = taken.state
        if interpret_invariants(clean, state):
            return False
    return True


def bmc_suffix(catch: MutantCatch, suffix: int = BMC_SUFFIX) -> tuple[Model, BmcResult]:
    """z3 BMC of the mutant from the reachable state ``suffix`` steps before the violation on
    the explorer's shortest path, with only the actions those steps use (the owner pinned when
    there is one owner). Returns the model BMC ran on (initial state = that start) and the
    result; a witness of length ``suffix`` means z3 finds the bug as soon as the explorer."""
    model, path = catch.model, catch.path
    depth = min(len(path), suffix)
    start = (
        model.initial_state()
        if depth == len(path)
        else catch.explored.states[path[-depth - 1].state]
    )
    used = {step.action for step in path[-depth:]}
    sub = model.replace(
        init=model.decode(start), actions=tuple(a for a in model.actions if a.name in used)
    )
    if model.bounds["owners"] == 1:
        sub = pin_owner(sub)
    result = bmc(
        sub,
        depth,
        invariants=[catch.mutant.expected_invariant],
        check_well_formed=False,
        stop_on_violation=True,
    )
    return sub, result


def replay_witness(model: Model, start: Model, result: BmcResult, invariant: str) -> bool:
    """Whether BMC's witness for ``invariant`` is a real run of ``model`` from ``start``'s
    initial state ending in a state that violates it (pinned owner parameters read as 0)."""
    witness = result.violations.get(invariant)
    if witness is None:
        return False
    state = start.decode(start.initial_state())
    for step in witness.steps:
        params = dict(step.params)
        if "o" in dict(model.action(step.action).params) and "o" not in params:
            params["o"] = 0
        taken = interpret_step(model, state, model.action(step.action), params)
        if taken is None:
            return False
        state = taken.state
    return invariant in interpret_invariants(model, state)


def prove_machine(bounds: MachineBounds = INDUCTION_BOUNDS) -> InductionReport:
    """Every machine invariant plus the lemmas inductive at one-owner ``bounds`` (owner
    pinned)."""
    return prove_inductive(pin_owner(build_machine_model(bounds)), build_machine_lemmas(bounds))


__all__ = [
    "BMC_SUFFIX",
    "INDUCTION_BOUNDS",
    "MACHINE_BMC_DEPTH",
    "UNREACHED_RULES",
    "MutantCatch",
    "RuleCoverage",
    "bmc_suffix",
    "clean_model_holds",
    "explore_mutant",
    "pin_owner",
    "prove_machine",
    "reached_outcomes",
    "replay_witness",
    "rule_coverage",
    "taken_rules",
]
