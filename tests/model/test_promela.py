"""The Promela translation: SPIN explores exactly our state space (when SPIN is installed)."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from lashspec.model.dsl import Model
from lashspec.model.explore import explore
from lashspec.model.kernel_model import SMALLEST_BOUNDS, Bounds, build_model
from lashspec.model.mutants import build_mutant
from lashspec.model.promela import render_promela, slot_names

SMALL = Bounds(
    owners=2,
    max_incarnation=0,
    batches=1,
    inputs=1,
    max_generation=2,
    max_claims_per_row=1,
    max_head_revision=1,
)

needs_spin = pytest.mark.skipif(
    shutil.which("spin") is None or shutil.which("gcc") is None,
    reason="SPIN or gcc is not installed (apt-get install -y spin gcc)",
)


def run_spin(model: Model, workdir: Path, *, invariants: bool = False) -> str:
    (workdir / "model.pml").write_text(render_promela(model, invariants=invariants))
    subprocess.run(["spin", "-a", "model.pml"], cwd=workdir, check=True, capture_output=True)
    subprocess.run(
        ["gcc", "-O0", "-w", "-DNOREDUCE", "-DSAFETY", "-o", "pan", "pan.c"],
        cwd=workdir,
        check=True,
        capture_output=True,
    )
    done = subprocess.run(
        ["./pan", "-m10000000", "-c1", "-w20"], cwd=workdir, capture_output=True, text=True
    )
    return done.stdout


def stored_states(report: str) -> int:
    found = re.search(r"(\d+) states, stored", report)
    assert found is not None, report
    return int(found.group(1))


@needs_spin
def test_spin_stores_exactly_our_states_and_transitions(tmp_path: Path) -> None:
    model = build_model(SMALL)
    ours = explore(model)
    report = run_spin(model, tmp_path)
    assert "errors: 0" in report
    assert stored_states(report) == ours.state_count
    transitions = re.search(r"(\d+) transitions", report)
    assert transitions is not None
    assert int(transitions.group(1)) == ours.edge_count + 1  # SPIN counts reaching the start


@needs_spin
def test_spin_finds_a_seeded_bug_through_the_translated_invariants(tmp_path: Path) -> None:
    model = build_mutant("commit_keeps_lease", SMALL)
    assert explore(model, stop_on_violation=True).violations
    report = run_spin(model, tmp_path, invariants=True)
    assert "assertion violated" in report
    assert "errors: 1" in report


def test_promela_names_every_slot_and_keeps_the_initial_state() -> None:
    model = build_model(SMALL)
    text = render_promela(model)
    names = slot_names(model)
    assert len(set(names)) == len(model.layout())
    assert "short lease_holder = -1;" in text
    assert "bit owner_alive_1 = 1;" in text
    assert text.count(":: d_step {") == text.count("\n    /* ")  # one option per instance
    assert "assert(INVARIANTS)" not in text
    assert "assert(INVARIANTS)" in render_promela(model, invariants=True)


#: Every extension of trace format 3 switched on at once, at the smallest bounds.
FORMAT_3 = replace(SMALLEST_BOUNDS, second_session=1, source_replay=1, delayed_work=1, outbox=1)


@needs_spin
def test_spin_follows_the_format_3_extensions(tmp_path: Path) -> None:
    """The second session, source-key replay, delayed work and the outbox translate: SPIN
    stores the same states and transitions and finds no invariant violation."""
    model = build_model(FORMAT_3)
    ours = explore(model)
    report = run_spin(model, tmp_path, invariants=True)
    assert "errors: 0" in report
    assert stored_states(report) == ours.state_count
    transitions = re.search(r"(\d+) transitions", report)
    assert transitions is not None and int(transitions.group(1)) == ours.edge_count + 1


#: Limit picks over a join run of two (model/profiles.py's limit-run; with both active-turn
#: inputs as well the state space passes 900,000 states).
CLAIM_LIMITS = replace(SMALLEST_BOUNDS, batches=4, max_head_revision=0, claim_limits=1)


@needs_spin
def test_spin_follows_the_claim_limits(tmp_path: Path) -> None:
    """The limit pick translates: SPIN stores the same states and transitions."""
    model = build_model(CLAIM_LIMITS)
    ours = explore(model)
    report = run_spin(model, tmp_path, invariants=True)
    assert "errors: 0" in report
    assert stored_states(report) == ours.state_count
    transitions = re.search(r"(\d+) transitions", report)
    assert transitions is not None and int(transitions.group(1)) == ours.edge_count + 1
