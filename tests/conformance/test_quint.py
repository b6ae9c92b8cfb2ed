"""Quint interop: the model rendered as Quint, Quint's own MBT traces replayed unchanged.

The first tests need no Quint: they check the rendering's shape and read Quint-shaped trace
documents built here from the model (``#bigint`` integers, ``None`` picks, sum-type outcomes,
model variables). The last ones run Quint itself; they skip when it is not installed
(``tools/quint/install``) unless ``LASHSPEC_REQUIRE_QUINT`` is set, as ``.ci/run`` does.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from lashspec.conformance.broken_kernels import BROKEN_KERNELS, broken_memory_store_factory
from lashspec.conformance.cli import main as cli_main
from lashspec.conformance.itf import MACHINE_PICK_NAMES, PICK_NAMES, TraceFormatError, read_trace
from lashspec.conformance.kernel_adapter import KernelAdapter
from lashspec.conformance.quint_traces import BoundsSyntaxError, parse_bounds
from lashspec.conformance.replay import kernel_target, replay_all
from lashspec.model.dsl import CompiledModel, Model, OutcomeValue, compile_model
from lashspec.model.kernel_model import Bounds, build_model
from lashspec.model.machine_model import MachineBounds, build_machine_model
from lashspec.model.mutants import build_mutant, mutant
from lashspec.model.quint import (
    HEADER_BOUNDS,
    OUTCOME_VARIABLE,
    find_quint,
    format_bounds,
    header_fields,
    module_name,
    render_quint,
)

#: The small profile the Quint tests render at (one owner per lane keeps Quint's runs short).
SMALL = Bounds(
    owners=2,
    max_incarnation=1,
    batches=1,
    inputs=1,
    max_generation=2,
    max_claims_per_row=1,
    max_head_revision=1,
)
SAMPLES = 200
MAX_STEPS = 12
SEED = "0x5eed"


@pytest.fixture(scope="module")
def small_model() -> Model:
    return build_model(SMALL)


@pytest.fixture(scope="module")
def small_compiled(small_model: Model) -> CompiledModel:
    return compile_model(small_model)


@pytest.fixture(scope="module")
def small_spec(small_model: Model) -> str:
    return render_quint(small_model)


# --------------------------------------------------------------------------------------------
# The rendering


def test_the_module_carries_the_vocabulary_and_the_bounds(
    small_model: Model, small_spec: str
) -> None:
    assert header_fields(small_spec)[HEADER_BOUNDS] == format_bounds(SMALL.as_dict())
    assert parse_bounds(header_fields(small_spec)[HEADER_BOUNDS]) == SMALL.as_dict()
    assert f"module {module_name(small_model)} {{" in small_spec
    for variable in small_model.variables:
        assert f"\n  var {variable.name}: " in small_spec
    assert f"\n  var {OUTCOME_VARIABLE}: Outcome" in small_spec
    for action in small_model.actions:
        assert f"\n  action {action.name} = {{" in small_spec
        for name, _ in action.params:
            assert name in PICK_NAMES
            assert f"nondet {name} = " in small_spec
    for invariant in small_model.invariants:
        assert f"\n  val {invariant.name} = " in small_spec
    assert render_quint(build_model(SMALL)) == small_spec  # generated, so reproducible


def test_the_limit_pick_renders_on_the_claim_actions() -> None:
    limited = replace(SMALL, batches=4, inputs=3, exact_claims=1, claim_limits=1)
    spec = render_quint(build_model(limited))
    assert parse_bounds(header_fields(spec)[HEADER_BOUNDS]) == limited.as_dict()
    for action in (
        "claim_work",
        "claim_next_inputs",
        "claim_active_inputs",
        "claim_checkpoint_work",
    ):
        body = spec.split(f"\n  action {action} = {{", 1)[1].split("\n  action ", 1)[0]
        assert "nondet limit = " in body, action
    assert "nondet limit = " not in render_quint(build_model(SMALL))


def test_a_seeded_bug_changes_the_rendered_action() -> None:
    healthy = render_quint(build_model(SMALL))
    broken = render_quint(build_mutant("release_ignores_fence", SMALL))
    assert broken != healthy
    assert "release_ignores_fence" in broken.splitlines()[0]


def test_the_machine_model_renders_with_its_own_actions() -> None:
    model = build_machine_model(MachineBounds(owners=1, batches=1, inputs=1, max_turns=1))
    text = render_quint(model)
    for action in model.actions:
        assert f"\n  action {action.name} = {{" in text
    assert "machine_phase" in text


def test_bounds_text_is_checked() -> None:
    assert parse_bounds("owners=1, batches=2") == {"owners": 1, "batches": 2}
    with pytest.raises(BoundsSyntaxError, match="name=integer"):
        parse_bounds("owners=one")
    with pytest.raises(BoundsSyntaxError, match="no bounds"):
        parse_bounds(" , ")


# --------------------------------------------------------------------------------------------
# Reading Quint-shaped documents (built here the way Quint writes them)


def _quint_value(value: Any) -> Any:
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return {"#bigint": str(value)}
    if isinstance(value, dict):
        return {"#map": [[_quint_value(k), _quint_value(v)] for k, v in value.items()]}
    if isinstance(value, frozenset):
        return {"#set": [_quint_value(v) for v in sorted(value)]}
    if isinstance(value, tuple | list):
        return [_quint_value(v) for v in value]
    raise TypeError(value)


def _quint_document(compiled: CompiledModel, steps: int, seed: int, source: str) -> dict[str, Any]:
    """A random run of the model written as ``quint run --mbt --out-itf`` writes one."""
    model = compiled.model
    rng = random.Random(seed)
    flat = model.encode(model.init)
    states = []
    action: str = "init"
    params: dict[str, Any] = {}
    outcome: OutcomeValue = ("Ok", ())
    for index in range(steps + 1):
        state = {name: _quint_value(value) for name, value in model.decode(flat).items()}
        tag, fields = outcome
        payload: dict[str, Any] = (
            {k: _quint_value(v) for k, v in fields} if fields else {"#tup": []}
        )
        picks = {
            name: {"tag": "Some", "value": _quint_value(params[name])}
            if name in params
            else {"tag": "None", "value": {"#tup": []}}
            for name in (*PICK_NAMES, *MACHINE_PICK_NAMES)
        }
        states.append(
            {
                "#meta": {"index": index},
                "mbt::actionTaken": action,
                "mbt::nondetPicks": picks,
                OUTCOME_VARIABLE: {"tag": tag, "value": payload},
                **state,
            }
        )
        binding, outcome, flat = rng.choice(compiled.successors(flat))
        action, params = compiled.bindings[binding].action, dict(compiled.bindings[binding].params)
    return {
        "#meta": {"format": "ITF", "source": source, "status": "ok"},
        "vars": [
            *(v.name for v in model.variables),
            OUTCOME_VARIABLE,
            "mbt::actionTaken",
            "mbt::nondetPicks",
        ],
        "states": states,
    }


def _write(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_a_quint_shaped_trace_replays_with_bounds_from_the_spec_header(
    tmp_path: Path, small_compiled: CompiledModel, small_spec: str
) -> None:
    (tmp_path / "spec.qnt").write_text(small_spec, encoding="utf-8")
    files = [
        _write(tmp_path / f"t{n}.itf.json", _quint_document(small_compiled, 30, n, "spec.qnt"))
        for n in range(5)
    ]
    traces = [read_trace(path) for path in files]
    assert traces[0].meta["bounds"] == SMALL.as_dict()
    assert all(not name.startswith("hist_") for name in traces[0].steps[0].state)
    report = replay_all(traces, kernel_target("memory"))
    assert report.ok, report.report()
    assert report.actions == 5 * 30
    assert "outcomes not checked" not in report.report()


def test_a_quint_shaped_machine_trace_replays_on_the_machine_kernel(tmp_path: Path) -> None:
    bounds = MachineBounds(owners=1, max_incarnation=0, batches=1, inputs=1, max_turns=1)
    compiled = compile_model(build_machine_model(bounds))
    path = _write(tmp_path / "m.itf.json", _quint_document(compiled, 25, 4, "gone.qnt"))
    trace = read_trace(path, quint_bounds=bounds.as_dict())
    assert trace.meta["system"] == "machine"
    assert "machine_phase" in trace.steps[0].state
    report = replay_all([trace], kernel_target("memory"))
    assert report.ok, report.report()
    assert report.actions == 25


def test_a_states_only_trace_is_replayed_and_says_outcomes_were_not_checked(
    tmp_path: Path, small_compiled: CompiledModel
) -> None:
    document = _quint_document(small_compiled, 20, 3, "gone.qnt")
    document["vars"].remove(OUTCOME_VARIABLE)
    for state in document["states"]:
        del state[OUTCOME_VARIABLE]
    path = _write(tmp_path / "states-only.itf.json", document)
    trace = read_trace(path, quint_bounds=SMALL.as_dict())
    report = replay_all([trace], kernel_target("memory"))
    assert report.ok, report.report()
    assert report.report().endswith("; outcomes not checked in 1 states-only traces")


def test_a_quint_trace_without_bounds_is_refused_in_one_line(
    tmp_path: Path, small_compiled: CompiledModel
) -> None:
    path = _write(tmp_path / "t.itf.json", _quint_document(small_compiled, 2, 1, "gone.qnt"))
    with pytest.raises(TraceFormatError, match="pass --bounds") as error:
        read_trace(path)
    assert "\n" not in str(error.value)


def test_variables_outside_the_vocabulary_are_named(
    tmp_path: Path, small_compiled: CompiledModel
) -> None:
    document = _quint_document(small_compiled, 2, 1, "gone.qnt")
    document["vars"] = [v for v in document["vars"] if v != "lease_gen"] + ["lease_generation"]
    path = _write(tmp_path / "t.itf.json", document)
    with pytest.raises(TraceFormatError) as error:
        read_trace(path, quint_bounds=SMALL.as_dict())
    message = str(error.value)
    assert "variables do not match the store vocabulary" in message
    assert "missing ['lease_gen']" in message and "unknown ['lease_generation']" in message
    assert "\n" not in message


def test_a_value_outside_its_sort_is_refused(tmp_path: Path, small_compiled: CompiledModel) -> None:
    document = _quint_document(small_compiled, 2, 1, "gone.qnt")
    document["states"][1]["lease_gen"] = {"#bigint": "99"}
    path = _write(tmp_path / "t.itf.json", document)
    with pytest.raises(TraceFormatError, match=r"state 1: lease_gen = 99 is outside"):
        read_trace(path, quint_bounds=SMALL.as_dict())


def test_replay_cli_takes_bounds_for_quint_traces(
    tmp_path: Path, small_compiled: CompiledModel, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(tmp_path / "t.itf.json", _quint_document(small_compiled, 10, 2, "gone.qnt"))
    bounds = ",".join(f"{k}={v}" for k, v in SMALL.as_dict().items())
    assert cli_main(["-q", "replay", str(tmp_path / "t.itf.json"), "--bounds", bounds]) == 0
    assert "1 passed, 0 failed" in capsys.readouterr().out
    assert cli_main(["-q", "replay", str(tmp_path / "t.itf.json"), "--bounds", "owners"]) == 2
    assert "--bounds: bounds must read name=integer" in capsys.readouterr().err


def test_render_cli_writes_the_module(tmp_path: Path) -> None:
    out = tmp_path / "store.qnt"
    arguments = ["-q", "render", "--format", "quint", "-o", str(out), "--owners", "1"]
    assert cli_main(arguments) == 0
    assert header_fields(out.read_text())[HEADER_BOUNDS].startswith("owners=1, ")


# --------------------------------------------------------------------------------------------
# Quint itself


def _quint() -> Path:
    quint = find_quint()
    if quint is None:
        if os.environ.get("LASHSPEC_REQUIRE_QUINT"):
            pytest.fail("LASHSPEC_REQUIRE_QUINT is set but Quint is missing: tools/quint/install")
        pytest.skip("Quint is not installed (tools/quint/install installs the pinned version)")
    return quint


def _quint_run(folder: Path, spec: str, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(_quint()), "run", "--backend=typescript", f"--seed={SEED}", *options, spec],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="module")
def quint_traces(
    tmp_path_factory: pytest.TempPathFactory, small_model: Model, small_spec: str
) -> Iterator[list[Path]]:
    """``quint run --mbt`` on the rendered small model: SAMPLES traces beside the spec."""
    _quint()
    folder = tmp_path_factory.mktemp("quint")
    spec = f"{module_name(small_model)}.qnt"
    (folder / spec).write_text(small_spec, encoding="utf-8")
    run = _quint_run(
        folder,
        spec,
        "--mbt",
        "--out-itf=trace_{seq}.itf.json",
        f"--n-traces={SAMPLES}",
        f"--max-samples={SAMPLES}",
        f"--max-steps={MAX_STEPS}",
        "--invariant=all_invariants",
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "[ok] No violation found" in run.stdout
    yield sorted(folder.glob("trace_*.itf.json"))


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_quint_mbt_traces_replay_unchanged(quint_traces: list[Path], backend: str) -> None:
    assert len(quint_traces) == SAMPLES
    traces = [read_trace(path) for path in quint_traces]
    actions = {step.action for trace in traces for step in trace.steps[1:]}
    assert {"acquire", "claim_command", "commit", "cancel_suffix"} <= actions
    report = replay_all(traces, kernel_target(backend))
    assert report.ok, report.report()
    assert report.actions == SAMPLES * MAX_STEPS


def test_a_broken_kernel_fails_on_quint_traces(quint_traces: list[Path]) -> None:
    traces = [read_trace(path) for path in quint_traces]
    variant = BROKEN_KERNELS[0].name
    report = replay_all(traces, KernelAdapter(broken_memory_store_factory(variant)))
    assert not report.ok
    assert any(not result.ok for result in report.results)


@pytest.mark.parametrize("name", ["release_ignores_fence", "commit_keeps_lease"])
def test_quint_finds_a_seeded_model_bug(tmp_path: Path, name: str) -> None:
    model = build_mutant(name, SMALL)
    spec = f"{module_name(model)}.qnt"
    (tmp_path / spec).write_text(render_quint(model), encoding="utf-8")
    expected = mutant(name).expected_invariant
    run = _quint_run(
        tmp_path, spec, "--max-samples=500", "--max-steps=20", f"--invariant={expected}"
    )
    assert "[violation]" in run.stdout, run.stdout[-3000:] + run.stderr[-3000:]
    assert run.returncode != 0
