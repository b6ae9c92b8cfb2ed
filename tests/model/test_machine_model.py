"""The turn machine composed with the store model: table fidelity, exploration of a small
configuration, seeded bugs caught by the explorer and by z3 BMC, induction, trace projection.

The exhaustive exploration of the machine check profiles and their rule coverage run in
`lashspec check` (tests/conformance/test_cli.py checks that its machine stages exist and fail
on a broken model)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from lashspec.kernel.machine import _RULES as KERNEL_RULES
from lashspec.model.dsl import interpret_invariants, interpret_step
from lashspec.model.explore import ExplorationResult, explore
from lashspec.model.machine_check import (
    BMC_SUFFIX,
    INDUCTION_BOUNDS,
    UNREACHED_RULES,
    bmc_suffix,
    clean_model_holds,
    explore_mutant,
    pin_owner,
    prove_machine,
    replay_witness,
    rule_coverage,
    taken_rules,
)
from lashspec.model.machine_model import (
    EFFECTS,
    PHASES,
    RULES,
    MachineBounds,
    awaitable_effects,
    build_machine_lemmas,
    build_machine_model,
    machine_trace_outcome,
    machine_trace_state,
)
from lashspec.model.machine_mutants import MACHINE_MUTANTS
from lashspec.model.profiles import MACHINE_PROFILES
from lashspec.model.z3check import prove_inductive

#: Kernel rules the composed model leaves out, and why.
NOT_MODELLED = {
    ("ActiveTurn", "LeaseLost"): "a host-reported lease loss; the trace contract has no action",
    ("Idle", "Close"): "Close is not in the trace contract",
    ("Failed", "Close"): "Close is not in the trace contract",
}


def _rule_key(
    phase: str, event: str, target: str, effects: tuple[str, ...], outcome: str
) -> tuple[str, str, str, tuple[str, ...], str]:
    return (phase, event, target, effects, outcome)


def test_rule_table_is_the_kernel_machines_table() -> None:
    kernel = {
        _rule_key(
            r.state.value,
            r.event.__name__,
            r.target.value,
            tuple(s.effect.__name__ + ("?" if s.when else "") for s in r.effects),
            r.outcome.value if r.outcome else "",
        )
        for r in KERNEL_RULES
        if (r.state.value, r.event.__name__) not in NOT_MODELLED
    }
    model = {_rule_key(r.phase, r.event, r.target, r.effects, r.outcome) for r in RULES}
    assert model == kernel


def test_rows_of_a_pair_end_with_an_unguarded_row_and_effects_are_known() -> None:
    last: dict[tuple[str, str], str] = {}
    for rule in RULES:
        assert rule.phase in PHASES and rule.target in PHASES
        assert all(e.rstrip("?") in EFFECTS for e in rule.effects)
        assert sum(1 for e in rule.effects if EFFECTS[e.rstrip("?")].awaited) <= 1
        last[(rule.phase, rule.event)] = rule.guard
    assert all(guard == "" for guard in last.values())


def test_awaitable_effects_follow_the_rules() -> None:
    awaitable = awaitable_effects(RULES)
    assert awaitable["Idle"] == frozenset({""})
    assert awaitable["Committing"] == frozenset({"CommitTurn"})
    assert "WriteCheckpoint" in awaitable["Interrupting"]
    assert "ClaimLeadingCommand" in awaitable["Cancelling"]
    assert awaitable["Closed"] == frozenset()


# -- exploration ---------------------------------------------------------------------------------
# The machine check profiles (MACHINE_PROFILES, about a hundred thousand states each) are
# explored completely by `lashspec check` (stages explore:machine-<profile>, with every
# invariant and deadlocks, and machine:rules, the rule and outcome coverage of the profiles
# together). Here one small configuration checks the same properties cheaply.

SMALL_PROFILE = MachineBounds(
    owners=1,
    max_incarnation=1,
    batches=1,
    inputs=1,
    max_generation=2,
    max_claims_per_row=1,
    max_head_revision=3,
    max_turns=1,
)


@pytest.fixture(scope="module")
def explored_small() -> ExplorationResult:
    return explore(build_machine_model(SMALL_PROFILE), keep_edges=True)


def test_small_profile_explores_with_every_invariant_holding(
    explored_small: ExplorationResult,
) -> None:
    assert explored_small.complete
    assert explored_small.violations == {}
    # the environment can always act (cancel answers NotCancelled), so no state is dead; a
    # bound cut only ever disables store_step, and store_fail stays enabled for the machine
    assert explored_small.deadlocks == []
    assert explored_small.state_count > 1000


def test_explored_machine_steps_are_rows_of_the_table(explored_small: ExplorationResult) -> None:
    coverage = rule_coverage([explored_small])
    rules = {(r.phase, r.event, r.target) for r in RULES}
    assert coverage.foreign == frozenset()
    assert coverage.taken <= rules
    # one owner cannot be answered Busy: those rows and the busy outcome need two owners
    # (the machine-lease profile of the check takes them)
    assert ("AcquiringLease", "LeaseBusy", "Idle") in coverage.missed
    assert coverage.outcomes_missed == {"busy"}
    assert not coverage.ok
    assert set(UNREACHED_RULES) <= rules - coverage.taken


def test_rule_coverage_needs_kept_edges() -> None:
    with pytest.raises(ValueError, match="keep_edges"):
        taken_rules(explore(build_machine_model(INDUCTION_BOUNDS)))


def test_the_check_explores_every_machine_profile() -> None:
    assert [p.name for p in MACHINE_PROFILES] == ["machine-lease", "machine-turn", "machine-turns"]
    assert {p.bounds.owners for p in MACHINE_PROFILES} == {1, 2}


def test_stale_reclaim_ends_the_cycle_busy() -> None:
    bounds = MachineBounds(
        owners=2,
        max_incarnation=1,
        batches=1,
        inputs=1,
        max_generation=2,
        max_claims_per_row=1,
        max_head_revision=0,
        max_turns=3,
    )
    model = build_machine_model(bounds)
    state = model.decode(model.initial_state())
    script: list[tuple[str, dict[str, int], str]] = [
        ("host_start", {"o": 0}, "Start"),
        ("host_start", {"o": 1}, "Start"),
        ("store_step", {"o": 0}, "LeaseAcquired"),
        ("crash", {"o": 0}, "Ok"),
        ("store_step", {"o": 1}, "LeaseBusy"),  # holder provably dead: reclaim generation 1
        ("expire", {}, "Ok"),
        ("restart", {"o": 0}, "Ok"),
        ("host_start", {"o": 0}, "Start"),
        ("store_step", {"o": 0}, "LeaseAcquired"),  # generation 2, a live holder
        ("store_step", {"o": 1}, "LeaseBusy"),  # the observation is stale
    ]
    for action, params, tag in script:
        taken = interpret_step(model, state, model.action(action), params)
        assert taken is not None and taken.outcome[0] == tag
        state = taken.state
        assert interpret_invariants(model, state) == []
    assert state["machine_phase"][1] == "Idle"
    assert state["machine_outcome"][1] == "busy"
    assert state["machine_awaiting"][1] == ""


def test_the_renewal_timer_renews_only_in_the_turn_once_due() -> None:
    model = build_machine_model(replace(SMALL_PROFILE, owners=1))
    state = model.decode(model.initial_state())
    timer = model.action("host_timer")
    assert interpret_step(model, state, timer, {"o": 0, "at": "due"}) is None  # no lease
    script: list[tuple[str, dict[str, object], str]] = [
        ("enqueue_input", {"i": 0}, "Enqueued"),
        ("host_start", {"o": 0}, "Start"),
        ("store_step", {"o": 0}, "LeaseAcquired"),
        ("host_timer", {"o": 0, "at": "late"}, "NotDue"),  # waiting for the store
        ("store_step", {"o": 0}, "PendingWorkInspected"),
        ("store_step", {"o": 0}, "InputsClaimed"),
        ("host_timer", {"o": 0, "at": "early"}, "NotDue"),
        ("host_timer", {"o": 0, "at": "due"}, "RenewDue"),
        ("store_step", {"o": 0}, "LeaseRenewed"),
        ("host_timer", {"o": 0, "at": "late"}, "RenewDue"),
    ]
    for action, params, tag in script:
        before = state
        taken = interpret_step(model, state, model.action(action), params)
        assert taken is not None and taken.outcome[0] == tag, action
        state = taken.state
        if tag == "NotDue":
            assert state == before
            assert machine_trace_outcome(model, action, taken.outcome) == {
                "tag": "NotDue",
                "effects": [],
            }
    assert state["machine_phase"][0] == "RenewingLease"
    assert state["machine_awaiting"][0] == "RenewLease"


def test_a_checkpoint_work_claim_with_nothing_to_claim_answers_nothing_after_expiry() -> None:
    """The store probes for checkpoint work before it checks the fence (as the store model,
    the kernel and lash's SQLite store do): an expired lease with nothing pending is not a
    lease loss, while the same claim with work pending is."""
    model = build_machine_model(replace(SMALL_PROFILE, inputs=2))  # i1: an active-turn input

    def run(script: list[tuple[str, dict[str, object], str]]) -> dict[str, object]:
        state = model.decode(model.initial_state())
        for action, params, tag in script:
            taken = interpret_step(model, state, model.action(action), params)
            assert taken is not None and taken.outcome[0] == tag, (action, taken)
            state = taken.state
        return state

    to_the_claim: list[tuple[str, dict[str, object], str]] = [
        ("enqueue_input", {"i": 0}, "Enqueued"),
        ("host_start", {"o": 0}, "Start"),
        ("store_step", {"o": 0}, "LeaseAcquired"),
        ("store_step", {"o": 0}, "PendingWorkInspected"),
        ("store_step", {"o": 0}, "InputsClaimed"),
        ("host_checkpoint", {"o": 0, "checkpoint": "after_work"}, "CheckpointReached"),
        ("store_step", {"o": 0}, "CommitSucceeded"),
    ]
    state = run([*to_the_claim, ("expire", {}, "Ok")])
    assert state["machine_awaiting"][0] == "ClaimCheckpointWork"
    quiet = run(
        [*to_the_claim, ("expire", {}, "Ok"), ("store_step", {"o": 0}, "CheckpointWorkClaimed")]
    )
    assert quiet["machine_phase"][0] == "ActiveTurn"
    pending = [*to_the_claim, ("enqueue_input", {"i": 1}, "Enqueued"), ("expire", {}, "Ok")]
    lost = run([*pending, ("store_step", {"o": 0}, "LeaseLost")])
    assert lost["machine_phase"][0] != "ActiveTurn"


# -- seeded bugs -----------------------------------------------------------------------------------


#: Seeded bugs whose explorations are large; `lashspec check`'s machine:seeded-bugs stage runs
#: them (and tests/conformance/test_cli.py runs that stage over every mutant).
IN_THE_CHECK_ONLY = {
    "reclaim_retried": "two owners, a restart and three turns: 122,140 states to the violation",
}


@pytest.mark.parametrize(
    "mutant", [m.name for m in MACHINE_MUTANTS if m.name not in IN_THE_CHECK_ONLY]
)
def test_every_machine_mutant_is_caught_by_the_explorer_and_bmc(mutant: str) -> None:
    found = next(m for m in MACHINE_MUTANTS if m.name == mutant)
    catch = explore_mutant(found)
    assert catch.caught
    assert found.expected_invariant in catch.explored.violations
    # the correct model at the same bounds runs the same steps without the violation
    assert clean_model_holds(catch)
    # z3 BMC finds the violation too, over the last BMC_SUFFIX steps of the explorer's
    # shortest path (from the reachable state before them): a suffix as long as the
    # explorer's, since the prefix is a shortest path too
    start, result = bmc_suffix(catch)
    witness = result.violations[found.expected_invariant]
    assert witness.length == min(len(catch.path), BMC_SUFFIX)
    # and it is a real run of the full mutant from that state
    assert replay_witness(catch.model, start, result, found.expected_invariant)


# -- projection for machine traces -----------------------------------------------------------------

SMALL = MachineBounds(
    owners=1,
    max_incarnation=0,
    batches=2,
    inputs=2,
    max_generation=2,
    max_claims_per_row=1,
    max_head_revision=3,
    max_turns=1,
)


def test_trace_projection_renders_the_contract() -> None:
    model = build_machine_model(SMALL)
    state = model.decode(model.initial_state())
    steps = [
        ("enqueue_input", {"i": 0}),
        ("enqueue_batch", {"b": 1}),
        ("enqueue_batch", {"b": 0}),
        ("host_start", {"o": 0}),
        ("store_step", {"o": 0}),
        ("store_step", {"o": 0}),
        ("store_step", {"o": 0}),
    ]
    enqueue_b1_fails = False
    outcomes = []
    for action, params in steps:
        taken = interpret_step(model, state, model.action(action), params)
        if taken is None:
            enqueue_b1_fails = True
            continue
        outcomes.append(machine_trace_outcome(model, action, taken.outcome))
        state = taken.state
    assert enqueue_b1_fails  # slots are enqueued in order: b1 waits for b0
    rendered = machine_trace_state(model, model.encode(state))
    assert outcomes[-3:] == [
        {"tag": "LeaseAcquired", "effects": ["InspectPendingWork"]},
        {"tag": "PendingWorkInspected", "effects": ["ClaimNextTurnInputs"]},
        {"tag": "InputsClaimed", "effects": ["RunTurn"]},
    ]
    assert outcomes[0] == {"tag": "Enqueued"}
    assert rendered["machine_phase"] == {0: "ActiveTurn"}
    assert rendered["machine_awaiting"] == {0: ""}
    assert rendered["machine_turn"] == {0: 0}
    assert rendered["machine_iclaims"] == {0: ["tic:i0:1"]}
    assert rendered["machine_qclaims"] == {0: []}
    assert rendered["input_claim"][0] == "tic:i0:1"
    assert rendered["session_turns"] == 1
    assert rendered["owner_fence"] == {0: 1}
    assert not any(name.startswith(("hist_", "owner_qclaim", "owner_iclaim")) for name in rendered)


# -- z3 induction ---------------------------------------------------------------------------------

TINY = MachineBounds(
    owners=1,
    max_incarnation=0,
    batches=1,
    inputs=1,
    max_generation=1,
    max_claims_per_row=1,
    max_head_revision=1,
    max_turns=1,
)


def test_invariants_are_inductive_with_the_lemmas_at_tiny_bounds() -> None:
    assert TINY == INDUCTION_BOUNDS
    report = prove_machine(TINY)
    assert report.failed() == []
    assert report.inductive


def test_pinning_the_owner_keeps_the_transitions() -> None:
    model = build_machine_model(TINY)
    pinned = pin_owner(model)
    assert all("o" not in dict(a.params) for a in pinned.actions)
    assert explore(pinned).state_count == explore(model).state_count
    with pytest.raises(ValueError, match="one-owner"):
        pin_owner(build_machine_model(replace(TINY, owners=2)))


def test_without_the_machine_lemmas_induction_fails() -> None:
    model = pin_owner(build_machine_model(TINY))
    store_lemmas = build_machine_lemmas(TINY)[:2]
    report = prove_inductive(model, store_lemmas)
    assert "unhandled_reply" in report.failed()
    assert "unsettled_claims" in report.failed()
