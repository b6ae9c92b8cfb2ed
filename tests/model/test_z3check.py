"""z3 checks of the model: encoding == interpreter, induction, BMC, mutants, docs table."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lashspec.model.dsl import (
    FALSE,
    TRUE,
    Action,
    ActionIs,
    BoolSort,
    Case,
    EnumSort,
    FlatState,
    IntSort,
    Invariant,
    MapSort,
    Model,
    ModelError,
    Monitor,
    Next,
    Outcome,
    Param,
    Var,
    Variable,
    compile_model,
    count,
    first_where,
    interpret_invariants,
    interpret_step,
    ite,
    let,
    map_of,
)
from lashspec.model.explore import ExplorationResult, explore
from lashspec.model.kernel_model import (
    DEFAULT_BOUNDS,
    LEMMA_REASONS,
    Bounds,
    build_lemmas,
    build_model,
)
from lashspec.model.mutants import (
    DELAYED_BOUNDS,
    MUTANTS,
    OUTBOX_BOUNDS,
    REPLAY_BOUNDS,
    SESSION_BOUNDS,
    build_mutant,
)
from lashspec.model.z3check import (
    UNBOUNDED_PARAMETERS,
    WELL_FORMED,
    KernelProofs,
    LiftError,
    StepOracle,
    bmc,
    bmc_kernel,
    format_bmc,
    format_induction,
    invariant_table_markdown,
    kernel_builder,
    lift_bounds,
    main,
    prove_inductive,
    prove_kernel_all,
    reachable_within,
)

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "model.md"

SMALL = Bounds(
    owners=2, batches=1, inputs=1, max_generation=2, max_claims_per_row=1, max_head_revision=1
)
"""About 50,000 reachable states: explored completely in about a second."""

# The smallest bounds at which each seeded bug shows (commits need a head revision to spend,
# a stale-observation takeover a third generation, a self-steal a second claim of a row).
TINY = Bounds(
    owners=2,
    max_incarnation=0,
    batches=1,
    inputs=1,
    max_generation=2,
    max_claims_per_row=1,
    max_head_revision=0,
)
MUTANT_BOUNDS: dict[str, Bounds] = {
    "commit_keeps_lease": Bounds(**{**TINY.as_dict(), "max_head_revision": 1}),
    "commit_skips_claim_check": Bounds(**{**TINY.as_dict(), "max_head_revision": 1}),
    "reclaim_ignores_observed_holder": Bounds(**{**TINY.as_dict(), "max_generation": 3}),
    "claim_allows_self_steal": Bounds(
        **{**TINY.as_dict(), "owners": 1, "max_generation": 1, "max_claims_per_row": 2}
    ),
    "by_ids_claims_unlisted_rows": Bounds(
        **{
            **TINY.as_dict(),
            "owners": 1,
            "batches": 4,
            "max_generation": 1,
            "ttl_steps": 1,
            "head_cas": 0,
            "turns": 0,
        }
    ),
    "turn_stamp_reapplies": Bounds(
        **{**TINY.as_dict(), "max_head_revision": 2, "ttl_steps": 1, "exact_claims": 0}
    ),
    "commit_cas_ignores_expected": Bounds(
        **{**TINY.as_dict(), "max_head_revision": 1, "ttl_steps": 1, "exact_claims": 0}
    ),
    "session1_acquire_expires_session0": SESSION_BOUNDS,
    "replayed_input_keeps_rewrite": REPLAY_BOUNDS,
    "claim_ignores_available_at": DELAYED_BOUNDS,
    "outbox_enqueued_on_failed_commit": OUTBOX_BOUNDS,
}


def mutant_row(mutant: str, shortest: dict[str, int], not_inductive: list[str]) -> str:
    """The row of docs/model.md's mutant table for ``mutant``."""
    bounds = MUTANT_BOUNDS.get(mutant, TINY).as_dict()
    changed = [f"{k}={v}" for k, v in bounds.items() if v != TINY.as_dict()[k]]
    caught = ", ".join(f"`{name}` ({length})" for name, length in sorted(shortest.items()))
    failed = ", ".join(f"`{name}`" for name in sorted(not_inductive))
    return f"| `{mutant}` | {', '.join(changed) or '—'} | {caught} | {failed} |"


@pytest.fixture(scope="module")
def small_model() -> Model:
    return build_model(SMALL)


@pytest.fixture(scope="module")
def small_exploration(small_model: Model) -> ExplorationResult:
    return explore(small_model)


@pytest.fixture(scope="module")
def kernel_proofs() -> KernelProofs:
    return prove_kernel_all(DEFAULT_BOUNDS)


# -- a toy model exercising every encoded node kind ---------------------------------------------

SLOTS = IntSort(0, 2)
COLOR = EnumSort("Color", ("red", "green", "blue"))
SHADE = EnumSort("Shade", ("blue", "red"))  # shares members with Color, in another order


def toy_model() -> Model:
    x = Var("x")
    flags = Var("flags")
    color = Var("color")
    shade = Var("shade")
    grid = Var("grid")
    k = Param("k")
    b = Param("b")
    c = Param("c")
    return Model(
        name="toy",
        variables=(
            Variable("x", IntSort(0, 3)),
            Variable("flags", MapSort(SLOTS, BoolSort())),
            Variable("color", COLOR),
            Variable("shade", SHADE),
            Variable("grid", MapSort(BoolSort(), MapSort(SLOTS, IntSort(0, 2)))),
            Variable("saw_flip_two", BoolSort(), ghost=True),
        ),
        init={
            "x": 0,
            "flags": {0: False, 1: False, 2: False},
            "color": "red",
            "shade": "blue",
            "grid": {False: {0: 0, 1: 0, 2: 0}, True: {0: 0, 1: 0, 2: 0}},
            "saw_flip_two": False,
        },
        actions=(
            Action(
                "inc",
                {},
                x < 3,
                [Case(TRUE, {"x": x + 1, "color": ite(x.eq(2), "blue", color)}, Outcome("Ok"))],
            ),
            Action(
                "flip",
                {"k": SLOTS},
                TRUE,
                [
                    Case(flags[k], {"flags": flags.set(k, FALSE)}, Outcome("Off")),
                    Case(
                        TRUE,
                        {"flags": map_of("j", SLOTS, lambda j: ite(j.eq(k), TRUE, flags[j]))},
                        Outcome("On"),
                    ),
                ],
            ),
            Action(
                "paint",
                {"c": COLOR},
                TRUE,
                [
                    Case(
                        color.eq(shade),
                        {"shade": ite(c.eq("red"), "red", "blue")},
                        Outcome("Shaded"),
                    ),
                    Case(TRUE, {"color": c}, Outcome("Painted")),
                ],
            ),
            Action(
                "shift",
                {"b": BoolSort(), "k": SLOTS},
                grid[b][k] < 2,
                [Case(TRUE, {"grid": grid.set(b, grid[b].set(k, grid[b][k] + 1))}, Outcome("Ok"))],
            ),
            Action(
                "dynamic",
                {},
                x >= 1,
                [Case(TRUE, {"flags": flags.set(x - 1, TRUE), "x": x - 1}, Outcome("Ok"))],
            ),
            Action(
                "fill",
                {},
                TRUE,
                [
                    Case(
                        let("h", first_where(SLOTS, lambda j: ~flags[j], -1), lambda h: h >= 0),
                        {
                            "flags": let(
                                "h",
                                first_where(SLOTS, lambda j: ~flags[j], -1),
                                lambda h: flags.set(h, TRUE),
                            )
                        },
                        Outcome("Filled"),
                    ),
                    Case(TRUE, {"x": count("j", SLOTS, lambda j: flags[j])}, Outcome("Full")),
                ],
            ),
        ),
        invariants=(
            Invariant("x_small", "x stays at most 3", "toy", x <= 3),
            Invariant("grid_small", "grid cells stay at most 2", "toy", grid[True][0] <= 2),
        ),
        monitors=(
            Monitor(
                "saw_flip_two",
                Var("saw_flip_two") | (ActionIs("flip") & k.eq(2) & Next("flags")[2]),
            ),
        ),
    )


def random_states(model: Model, rng: random.Random, count: int) -> Iterator[FlatState]:
    layout = model.layout()
    for _ in range(count):
        yield tuple(rng.choice(slot.sort.values()) for slot in layout)


def assert_oracle_agrees(model: Model, oracle: StepOracle, state: FlatState) -> None:
    """Every action instance from ``state``: the encoding and the interpreter agree on whether
    it is enabled, which case it takes, the post-state, and on every evaluation error."""
    decoded = model.decode(state)
    for action in model.actions:
        for params in action.bindings():
            encoded = oracle.step(state, action.name, params)
            try:
                expected = interpret_step(model, decoded, action, params)
            except ModelError:
                leaves_sort = encoded.post is not None and any(
                    not slot.sort.contains(v)
                    for slot, v in zip(model.layout(), encoded.post, strict=True)
                )
                assert encoded.faults or leaves_sort, (state, action.name, params)
                continue
            assert not encoded.faults, (state, action.name, params)
            if expected is None:
                assert not encoded.enabled, (state, action.name, params)
                continue
            assert encoded.enabled, (state, action.name, params)
            assert encoded.post == model.encode(expected.state), (state, action.name, params)
            assert encoded.tag == expected.outcome[0], (state, action.name, params)


# -- the encoding against the interpreter -------------------------------------------------------


def test_toy_encoding_matches_interpreter_on_random_states() -> None:
    model = toy_model()
    oracle = StepOracle(model)
    rng = random.Random("z3-toy")
    for state in random_states(model, rng, 60):
        assert_oracle_agrees(model, oracle, state)


def test_kernel_encoding_matches_interpreter_on_reachable_states(
    small_model: Model, small_exploration: ExplorationResult
) -> None:
    oracle = StepOracle(small_model)
    rng = random.Random("z3-kernel-small")
    for state in rng.sample(small_exploration.states, 20):
        assert_oracle_agrees(small_model, oracle, state)


def test_kernel_encoding_matches_interpreter_at_default_bounds() -> None:
    model = build_model(DEFAULT_BOUNDS)
    oracle = StepOracle(model)
    prefix = explore(model, max_states=3000)
    rng = random.Random("z3-kernel-default")
    for state in rng.sample(prefix.states, 5):
        assert_oracle_agrees(model, oracle, state)


def test_kernel_encoding_matches_interpreter_on_unreachable_states() -> None:
    model = build_model(
        Bounds(owners=2, batches=2, inputs=2, max_generation=2, max_claims_per_row=1)
    )
    oracle = StepOracle(model)
    rng = random.Random("z3-kernel-random")
    for state in random_states(model, rng, 10):
        assert_oracle_agrees(model, oracle, state)


#: Claims with a limit pick (bound claim_limits) over a join run of two and both active-turn
#: inputs: the smallest shape where a limit of one binds on every claim action.
LIMIT_BOUNDS = Bounds(
    owners=1,
    max_incarnation=0,
    batches=4,
    inputs=3,
    max_generation=1,
    max_claims_per_row=1,
    max_head_revision=0,
    ttl_steps=1,
    head_cas=0,
    turns=0,
    multi_cancel=0,
    claim_limits=1,
)


def test_kernel_encoding_matches_interpreter_with_claim_limits() -> None:
    model = build_model(LIMIT_BOUNDS)
    oracle = StepOracle(model)
    prefix = explore(model, max_states=4000)
    rng = random.Random("z3-kernel-limits")
    for state in rng.sample(prefix.states, 6):
        assert_oracle_agrees(model, oracle, state)


def test_kernel_proof_holds_with_claim_limits() -> None:
    model, lemmas = kernel_builder()(LIMIT_BOUNDS.as_dict())
    assert prove_inductive(model, lemmas).inductive


def test_one_query_covers_every_binding_of_an_action() -> None:
    """Parameters are symbolic: the action's own z3 constants, one per parameter."""
    model = toy_model()
    oracle = StepOracle(model)
    shift = oracle.encodings["shift"]
    assert sorted(shift.param_terms) == ["b", "k"]
    assert shift.params_in_sort is not True


# -- well-formedness faults ----------------------------------------------------------------------


def counter_model(action: Action) -> Model:
    return Model(
        name=f"faulty-{action.name}",
        variables=(
            Variable("x", IntSort(0, 3)),
            Variable("m", MapSort(IntSort(0, 1), BoolSort())),
        ),
        init={"x": 0, "m": {0: False, 1: False}},
        actions=(
            Action("inc", {}, Var("x") < 3, [Case(TRUE, {"x": Var("x") + 1}, Outcome("Ok"))]),
            action,
        ),
        invariants=(Invariant("x_in_range", "x stays in range", "toy", Var("x") <= 3),),
    )


FAULTY_ACTIONS = {
    # reads m[x] outside m's keys once x reaches 2
    "peek": (Action("peek", {}, Var("m")[Var("x")], [Case(TRUE, {}, Outcome("Ok"))]), 2),
    # no case matches once x is not 0
    "pick": (Action("pick", {}, TRUE, [Case(Var("x").eq(0), {}, Outcome("Zero"))]), 1),
    # x + 2 leaves 0..3 from x = 2: the state after the step is out of its sort
    "jump": (Action("jump", {}, TRUE, [Case(TRUE, {"x": Var("x") + 2}, Outcome("Ok"))]), 2),
}


@pytest.mark.parametrize("name", sorted(FAULTY_ACTIONS))
def test_faults_are_found_by_induction_and_bmc(name: str) -> None:
    action, depth = FAULTY_ACTIONS[name]
    model = counter_model(action)
    report = prove_inductive(model)
    verdicts = {w.action: w.ok for w in report.well_formed}
    assert verdicts == {"inc": True, name: False}
    assert not report.inductive
    result = bmc(model, 4)
    assert WELL_FORMED in result.violations
    witness = result.violations[WELL_FORMED]
    assert witness.length == depth
    # the interpreter fails on the reported state
    with pytest.raises(ModelError):
        interpret_step(model, model.decode(witness.final_state), action, {})


def test_lazy_operands_are_never_encoded_where_the_interpreter_skips_them() -> None:
    """The toy monitor reads Param("k") behind ActionIs("flip"); fill reads flags[h] only
    when h >= 0: neither is a fault."""
    report = prove_inductive(toy_model())
    assert all(w.ok for w in report.well_formed)


# -- induction -----------------------------------------------------------------------------------


def test_kernel_invariants_need_exactly_the_two_lemmas(kernel_proofs: KernelProofs) -> None:
    without = kernel_proofs.without_lemmas
    assert sorted(without.failed()) == sorted(
        ["live_lease_known_to_holder", "deferral_rewrites_only_active_inputs"]
    )
    assert all(p.holds_initially for p in without.proofs)
    assert all(w.ok for w in without.well_formed)
    with_lemmas = kernel_proofs.with_lemmas
    assert with_lemmas.inductive
    assert [p.name for p in with_lemmas.proofs if p.lemma] == list(LEMMA_REASONS)


def test_counterexamples_to_induction_are_real_steps(kernel_proofs: KernelProofs) -> None:
    """A CTI's pre-state satisfies every invariant, the interpreter takes the same step to
    the same post-state, and the post-state violates the invariant."""
    model = build_model(DEFAULT_BOUNDS)
    for name in kernel_proofs.without_lemmas.failed():
        (cti,) = kernel_proofs.without_lemmas.proof(name).counterexamples
        assert interpret_invariants(model, model.decode(cti.pre_state)) == []
        step = interpret_step(
            model, model.decode(cti.pre_state), model.action(cti.action), cti.params
        )
        assert step is not None and cti.post_state is not None
        assert model.encode(step.state) == cti.post_state
        assert name in interpret_invariants(model, step.state)
        assert name in cti.violated_after


def test_kernel_proof_holds_for_unbounded_counters(kernel_proofs: KernelProofs) -> None:
    assert kernel_proofs.all_unbounded.inductive
    assert kernel_proofs.all_unbounded.symbolic_bounds == UNBOUNDED_PARAMETERS
    assert kernel_proofs.unbounded == {}  # only made when the joint proof fails
    assert kernel_proofs.ok


@pytest.mark.parametrize("parameter", ["max_claims_per_row", "owners", "batches", "inputs"])
def test_shape_parameters_cannot_be_lifted(parameter: str) -> None:
    with pytest.raises(LiftError):
        lift_bounds(kernel_builder(), SMALL.as_dict(), [parameter])


def test_lifted_proofs_cover_larger_bounds() -> None:
    """``x <= 5`` holds in the counter model built with a cap of 3 (and of 5), but with the cap
    symbolic it is not inductive: the lifted proof speaks for every larger cap."""

    def build(values: Any) -> tuple[Model, tuple[Invariant, ...]]:
        cap = values["cap"]
        x = Var("x")
        model = Model(
            name="capped",
            variables=(Variable("x", IntSort(0, cap)),),
            init={"x": 0},
            actions=(Action("inc", {}, x < cap, [Case(TRUE, {"x": x + 1}, Outcome("Ok"))]),),
            invariants=(Invariant("x_at_most_five", "x <= 5", "toy", x <= 5),),
        )
        return model, ()

    fixed, _ = build({"cap": 3})
    assert prove_inductive(fixed).inductive
    lifted = lift_bounds(build, {"cap": 3}, ["cap"])
    report = prove_inductive(lifted.model, symbolic=lifted.symbolic)
    assert report.failed() == ["x_at_most_five"]
    (cti,) = report.proof("x_at_most_five").counterexamples
    assert cti.pre_state == (5,) and cti.post_state == (6,)


def test_lemmas_hold_on_every_reachable_state(
    small_model: Model, small_exploration: ExplorationResult
) -> None:
    lemma_checks = compile_model(small_model.replace(invariants=build_lemmas(SMALL)))
    assert small_exploration.complete
    assert not any(lemma_checks.violations(state) for state in small_exploration.states)
    # inputs=2 brings an active-turn input and interrupt deferral (the second lemma's subject)
    deferral = Bounds(
        owners=1, batches=1, inputs=2, max_generation=2, max_claims_per_row=1, max_head_revision=1
    )
    model = build_model(deferral)
    result = explore(model.replace(invariants=(*model.invariants, *build_lemmas(deferral))))
    assert result.complete and result.violations == {}


# -- bounded model checking ----------------------------------------------------------------------


def test_kernel_bmc_finds_nothing_and_replays(small_model: Model) -> None:
    depths: list[int] = []
    result = bmc(small_model, 4, build_lemmas(SMALL), progress=lambda p: depths.append(p.depth))
    assert result.ok and result.complete
    assert depths == list(range(5))
    assert len(result.depth_seconds) == 5


def test_bmc_stops_within_a_time_budget() -> None:
    result = bmc_kernel(SMALL, 50, time_budget=0.0)
    assert result.checked_depth == 0 and not result.complete


def test_bmc_reachability_agrees_with_breadth_first_depths(
    small_model: Model, small_exploration: ExplorationResult
) -> None:
    depth = 4
    rng = random.Random("z3-reachability")
    by_depth: dict[int, list[int]] = {}
    for state_id in range(len(small_exploration.states)):
        found = small_exploration.depth_of(state_id)
        if found > depth + 2:
            break
        by_depth.setdefault(found, []).append(state_id)
    within = [
        s for d in range(depth + 1) for s in rng.sample(by_depth[d], min(3, len(by_depth[d])))
    ]
    beyond = rng.sample(by_depth[depth + 1], 3) + rng.sample(by_depth[depth + 2], 3)
    reachable = set(small_exploration.states)
    unreachable = [s for s in random_states(small_model, rng, 200) if s not in reachable][:6]
    assert len(unreachable) == 6
    states = [small_exploration.states[s] for s in within + beyond] + unreachable
    verdicts = reachable_within(small_model, states, depth)
    expected = [small_exploration.depth_of(s) for s in within] + [None] * (len(beyond) + 6)
    assert verdicts == expected


# -- seeded bugs: z3 and the explorer agree -------------------------------------------------------


@pytest.mark.parametrize("mutant", [m.name for m in MUTANTS])
def test_every_mutant_is_caught_by_z3_and_the_explorer_alike(mutant: str) -> None:
    bounds = MUTANT_BOUNDS.get(mutant, TINY)
    model = build_mutant(mutant, bounds)
    lemmas = build_lemmas(bounds)
    expected = next(m.expected_invariant for m in MUTANTS if m.name == mutant)
    explored = explore(model)
    assert explored.complete
    shortest = {name: len(v.path) for name, v in explored.violations.items()}
    assert expected in shortest

    # BMC: the same invariants, each with a counterexample of the same (shortest) length
    result = bmc(model, max(shortest.values()), check_well_formed=False)
    assert {name: v.length for name, v in result.violations.items()} == shortest
    for name, witness in result.violations.items():
        # the BMC path is a real run: the interpreter replays it to a violating state
        state = model.decode(model.initial_state())
        for step in witness.steps:
            taken = interpret_step(model, state, model.action(step.action), step.params)
            assert taken is not None and taken.outcome == step.outcome
            state = taken.state
        assert name in interpret_invariants(model, state)

    # induction fails for the expected invariant, and the last step of the explorer's shortest
    # violating path is a counterexample to induction from a reachable state: z3 finds it when
    # the pre-state is pinned to that state
    report = prove_inductive(model, lemmas)
    assert expected in report.failed()
    row = mutant_row(mutant, shortest, report.failed())
    assert row in DOCS.read_text(encoding="utf-8").splitlines()
    path = explored.violations[expected].path
    pre_state = model.initial_state() if len(path) == 1 else explored.states[path[-2].state]
    pinned = prove_inductive(
        model, lemmas, invariants=[expected], actions=[path[-1].action], pre_state=pre_state
    )
    (cti,) = pinned.proof(expected).counterexamples
    assert cti.pre_state == pre_state


# -- reports, table, command line ------------------------------------------------------------------


def test_reports_are_json_and_text(kernel_proofs: KernelProofs) -> None:
    json.dumps(kernel_proofs.to_dict())
    text = format_induction(kernel_proofs.without_lemmas)
    assert "NOT INDUCTIVE" in text
    assert "[CTI ] live_lease_known_to_holder" in text
    assert "counterexample to induction" in text
    model = build_mutant("release_ignores_fence", TINY)
    result = bmc(model, 4)
    json.dumps(result.to_dict())
    text = format_bmc(result)
    assert "release_foreign violated after 4 steps" in text
    assert "release(o=" in text


def test_docs_carry_the_generated_invariant_table(kernel_proofs: KernelProofs) -> None:
    table = invariant_table_markdown(kernel_proofs)
    docs = DOCS.read_text(encoding="utf-8")
    assert table in docs, "regenerate with: python -m lashspec.model.z3check --table"
    for invariant in build_model(SMALL).invariants:
        assert f"`{invariant.name}`" in table


def test_command_line_reports_and_exits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    small = [f"--{name.replace('_', '-')}={value}" for name, value in TINY.as_dict().items()]
    report = tmp_path / "report.json"
    assert main([*small, "--depth", "2", "--json", str(report), "-q"]) == 0
    data = json.loads(report.read_text())
    assert data["induction"]["inductive"] and data["unbounded"]["inductive"]
    assert data["bmc"]["ok"] and data["bmc"]["checked_depth"] == 2
    assert "bmc lash-kernel-store" in capsys.readouterr().out
    mutant = ["--mutant", "release_ignores_fence", "--no-induction", "--no-unbounded"]
    assert main([*small, *mutant, "--depth", "4", "-q"]) == 1
