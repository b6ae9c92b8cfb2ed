"""The modelling language: sorts, AST, interpreter, compiler (compiled == interpreted)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from lashspec.model.dsl import (
    FALSE,
    TRUE,
    Action,
    ActionIs,
    And,
    BoolSort,
    Case,
    Const,
    EnumSort,
    Eq,
    IllFormedModelError,
    IntSort,
    Invariant,
    MapSort,
    Model,
    Monitor,
    Next,
    NoCaseMatchedError,
    Outcome,
    Param,
    SortError,
    UnboundNameError,
    Var,
    Variable,
    children,
    compile_model,
    count,
    evaluate,
    first_where,
    forall,
    interpret_invariants,
    interpret_step,
    interpret_successors,
    ite,
    let,
    list_of,
    map_of,
    rebuild,
    replace_all,
    set_of,
)
from lashspec.model.kernel_model import Bounds, build_model
from lashspec.model.phase_order import build_phase_order_model

SLOTS = IntSort(0, 2)


def toy_model() -> Model:
    """A counter, a flag map and a sticky monitor, enough to exercise every node kind."""
    x = Var("x")
    flags = Var("flags")
    k = Param("k")
    return Model(
        name="toy",
        variables=(
            Variable("x", IntSort(0, 3)),
            Variable("flags", MapSort(SLOTS, BoolSort())),
            Variable("mode", EnumSort("Mode", ("idle", "busy"))),
            Variable("saw_flip_two", BoolSort(), ghost=True),
        ),
        init={
            "x": 0,
            "flags": {0: False, 1: False, 2: False},
            "mode": "idle",
            "saw_flip_two": False,
        },
        actions=(
            Action(
                "inc",
                {},
                x < 3,
                [Case(TRUE, {"x": x + 1, "mode": "busy"}, Outcome("Ok", {"x": x + 1}))],
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
                        Outcome("On", {"set": set_of("j", SLOTS, lambda j: flags[j] | j.eq(k))}),
                    ),
                ],
            ),
            Action(
                "dynamic",
                {},
                x >= 1,
                [
                    Case(
                        TRUE,
                        {"flags": flags.set(x - 1, TRUE), "x": x - 1},
                        Outcome(
                            "D",
                            {
                                "n": count("j", SLOTS, lambda j: flags[j]),
                                "l": list_of("j", SLOTS, lambda j: flags[j], lambda j: j * 2),
                                "first": first_where(SLOTS, lambda j: ~flags[j], -1),
                                "sum": let("y", x + x, lambda y: y * 3),
                            },
                        ),
                    )
                ],
            ),
        ),
        invariants=(
            Invariant("x_small", "x stays at most 3", "toy", x <= 3),
            Invariant(
                "not_all_flags", "never all flags", "toy", ~forall("j", SLOTS, lambda j: flags[j])
            ),
        ),
        monitors=(
            Monitor(
                "saw_flip_two",
                Var("saw_flip_two") | (ActionIs("flip") & k.eq(2) & Next("flags")[2]),
            ),
        ),
    )


# -- sorts and nodes ---------------------------------------------------------------------------


def test_sorts_enumerate_and_check_membership() -> None:
    assert IntSort(-1, 1).values() == (-1, 0, 1)
    assert IntSort(0, 2).index_of(2) == 2
    assert BoolSort().values() == (False, True)
    assert not IntSort(0, 2).contains(True)
    assert not IntSort(0, 2).contains(3)
    assert EnumSort("E", ("a", "b")).index_of("b") == 1
    assert MapSort(SLOTS, BoolSort()).contains({0: True, 1: False, 2: False})
    assert not MapSort(SLOTS, BoolSort()).contains({0: True, 1: False})


@pytest.mark.parametrize(
    "build",
    [
        lambda: IntSort(2, 1),
        lambda: EnumSort("E", ()),
        lambda: EnumSort("E", ("a", "a")),
        lambda: MapSort(MapSort(SLOTS, BoolSort()), BoolSort()),
        lambda: IntSort(0, 2).index_of(7),
    ],
)
def test_bad_sorts_raise_sort_error(build: Any) -> None:
    with pytest.raises(SortError):
        build()


def test_constants_keep_bool_and_int_apart() -> None:
    assert Const(1) != Const(True)
    assert Const(0) != Const(False)
    assert Const(1) == Const(1)
    assert len({Const(1), Const(True), Const(1)}) == 2


def test_expressions_have_no_python_truth_value() -> None:
    with pytest.raises(TypeError):
        bool(Var("x") < 3)


def test_children_and_rebuild_round_trip() -> None:
    expr = forall("j", SLOTS, lambda j: ite(Var("flags")[j], j + 1, 0).eq(Param("k")))
    stack = [expr]
    while stack:
        node = stack.pop()
        assert rebuild(node, children(node)) == node
        stack.extend(children(node))


def test_replace_all_rewrites_every_occurrence() -> None:
    expr = And((Eq(Var("x"), Const(1)), Eq(Var("x"), Const(1)), Var("b")))
    assert replace_all(expr, Eq(Var("x"), Const(1)), TRUE) == And((TRUE, TRUE, Var("b")))


# -- model validation --------------------------------------------------------------------------


def test_model_rejects_inconsistent_data() -> None:
    model = toy_model()
    with pytest.raises(IllFormedModelError):
        model.replace(init={k: v for k, v in model.init.items() if k != "x"})
    with pytest.raises(SortError):
        model.replace(init={**model.init, "x": 9})
    bad_action = Action("bad", {}, TRUE, [Case(TRUE, {"nope": 1}, Outcome("Ok"))])
    with pytest.raises(IllFormedModelError):
        model.replace(actions=(*model.actions, bad_action))
    with pytest.raises(IllFormedModelError):
        model.replace(actions=(*model.actions, model.actions[0]))
    with pytest.raises(IllFormedModelError):
        Action("empty", {}, TRUE, [])


def test_encode_decode_round_trip() -> None:
    model = toy_model()
    flat = model.initial_state()
    assert flat == (0, False, False, False, "idle", False)
    assert model.decode(flat) == dict(model.init)
    assert model.encode(model.decode(flat)) == flat


# -- interpreter semantics ---------------------------------------------------------------------


def test_first_matching_case_wins_and_unmentioned_variables_stay() -> None:
    model = toy_model()
    state = {**model.init, "flags": {0: True, 1: False, 2: False}}
    step = interpret_step(model, state, model.action("flip"), {"k": 0})
    assert step is not None
    assert step.outcome == ("Off", ())
    assert step.state["flags"] == {0: False, 1: False, 2: False}
    assert step.state["x"] == 0 and step.state["mode"] == "idle"
    on = interpret_step(model, state, model.action("flip"), {"k": 1})
    assert on is not None
    assert on.outcome == ("On", (("set", frozenset({0, 1})),))


def test_disabled_action_has_no_step_and_guards_use_the_pre_state() -> None:
    model = toy_model()
    assert interpret_step(model, model.init, model.action("dynamic"), {}) is None
    state = {**model.init, "x": 2}
    step = interpret_step(model, state, model.action("dynamic"), {})
    assert step is not None
    # the key x - 1 and the outcome both read the pre-state x = 2
    assert step.state["flags"] == {0: False, 1: True, 2: False}
    assert dict(step.outcome[1]) == {"n": 0, "l": (), "first": 0, "sum": 12}


def test_monitor_sees_pre_state_post_state_and_action() -> None:
    model = toy_model()
    step = interpret_step(model, model.init, model.action("flip"), {"k": 2})
    assert step is not None and step.state["saw_flip_two"] is True
    other = interpret_step(model, model.init, model.action("flip"), {"k": 1})
    assert other is not None and other.state["saw_flip_two"] is False


def test_no_matching_case_is_an_error() -> None:
    model = toy_model()
    broken = Action("broken", {}, TRUE, [Case(FALSE, {}, Outcome("Never"))])
    with pytest.raises(NoCaseMatchedError):
        interpret_step(model, model.init, broken, {})
    compiled = compile_model(model.replace(actions=(broken,)))
    with pytest.raises(NoCaseMatchedError):
        compiled.successors(model.initial_state())


def test_leaving_a_sort_is_an_error_in_both_engines() -> None:
    model = toy_model()
    overflow = Action("overflow", {}, TRUE, [Case(TRUE, {"x": Var("x") + 9}, Outcome("Ok"))])
    bad = model.replace(actions=(overflow,))
    with pytest.raises(SortError):
        interpret_successors(bad, bad.init)
    with pytest.raises(SortError):
        compile_model(bad, checked=True).successors(bad.initial_state())


def test_out_of_domain_select_raises_only_when_evaluated() -> None:
    model = toy_model()
    lazy = Action(
        "lazy",
        {},
        TRUE,
        [
            Case(
                TRUE, {}, Outcome("Ok", {"v": ite(Var("x") > 0, Var("flags")[Var("x") + 5], FALSE)})
            )
        ],
    )
    bad = model.replace(actions=(lazy,))
    compiled = compile_model(bad)
    assert compiled.successors(bad.initial_state())[0][1] == ("Ok", (("v", False),))
    with pytest.raises(SortError):
        compiled.successors(bad.encode({**bad.init, "x": 1}))
    with pytest.raises(SortError):
        interpret_successors(bad, {**bad.init, "x": 1})


def test_unbound_names_are_reported() -> None:
    with pytest.raises(UnboundNameError):
        evaluate(Param("p"), {})
    with pytest.raises(UnboundNameError):
        evaluate(Var("missing"), {})
    with pytest.raises(UnboundNameError):
        evaluate(Next("x"), {"x": 1})


# -- compiled == interpreted -------------------------------------------------------------------


def random_value(sort: Any, rng: random.Random) -> Any:
    if isinstance(sort, MapSort):
        return {k: random_value(sort.value, rng) for k in sort.key.values()}
    return rng.choice(sort.values())


def random_states(model: Model, rng: random.Random, count: int) -> list[dict[str, Any]]:
    """Half random walks from the initial state (reachable), half uniform values (arbitrary)."""
    states: list[dict[str, Any]] = []
    compiled = compile_model(model)
    while len(states) < count // 2:
        flat = model.initial_state()
        for _ in range(rng.randint(0, 25)):
            successors = compiled.successors(flat)
            if not successors:
                break
            flat = rng.choice(successors)[2]
        states.append(model.decode(flat))
    sorts = model.sorts()
    while len(states) < count:
        states.append({v.name: random_value(sorts[v.name], rng) for v in model.variables})
    return states


def interpreted(model: Model, state: dict[str, Any]) -> Any:
    try:
        return [
            (t.action, dict(t.params), t.outcome, model.encode(t.state))
            for t in interpret_successors(model, state)
        ]
    except SortError:
        return "SortError"


def compiled_result(compiled: Any, model: Model, state: dict[str, Any]) -> Any:
    try:
        return [
            (
                compiled.bindings[b].action,
                dict(compiled.bindings[b].params),
                outcome,
                target,
            )
            for b, outcome, target in compiled.successors(model.encode(state))
        ]
    except SortError:
        return "SortError"


@pytest.mark.parametrize(
    ("name", "build", "samples"),
    [
        ("toy", toy_model, 200),
        ("phase_order", build_phase_order_model, 100),
        (
            "kernel",
            lambda: build_model(
                Bounds(owners=2, max_incarnation=1, batches=3, inputs=3, max_generation=2)
            ),
            150,
        ),
    ],
)
def test_compiled_model_agrees_with_interpreter(name: str, build: Any, samples: int) -> None:
    model = build()
    rng = random.Random(f"compiled-vs-interpreted:{name}")
    compiled = compile_model(model, checked=True)
    invariant_names = [inv.name for inv in model.invariants]
    for state in random_states(model, rng, samples):
        assert compiled_result(compiled, model, state) == interpreted(model, state), state
        flat_bad = [invariant_names[k] for k in compiled.violations(model.encode(state))]
        assert flat_bad == interpret_invariants(model, state), state


def test_unchanged_transitions_reuse_the_state_object() -> None:
    model = build_model(Bounds(owners=1, batches=1, inputs=1))
    compiled = compile_model(model)
    enqueued = next(
        t
        for b, _, t in compiled.successors(model.initial_state())
        if compiled.bindings[b].action == "enqueue_batch"
    )
    replays = [
        t
        for b, _, t in compiled.successors(enqueued)
        if compiled.bindings[b].action == "replay_batch"
    ]
    assert len(replays) == 1 and replays[0] is enqueued
