"""Source-key replay after deletion or vacuum (bound ``source_replay``): a new row per replay.

A deleted batch or a vacuumed input no longer holds its source key (lash's stores look the
key up among existing rows only), so the slot's draft enqueues a new row. These tests step
one hand-written trace through the model at the ``source-replay`` profile's bounds, replay it
on both backends, show that a store whose source keys outlive their rows diverges, and that
the check catches a seeded bug of the new row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lashspec.conformance.broken_kernels import broken_memory_store_factory
from lashspec.conformance.itf import Trace
from lashspec.conformance.kernel_adapter import KernelAdapter
from lashspec.conformance.modeltrace import ActionNotEnabled, ModelRunner, trace_of
from lashspec.conformance.replay import kernel_target, replay_all, replay_trace
from lashspec.model.check import check_model
from lashspec.model.kernel_model import Bounds
from lashspec.model.mutants import REPLAY_BOUNDS
from lashspec.model.profiles import PROFILES, profile
from lashspec.model.z3check import prove_kernel

REPLAY = profile("source-replay").bounds

#: A command and a next-turn input completed by one commit, the second batch cancelled, the
#: input vacuumed; then both source keys replayed (new rows) and claimed again.
STEPS: list[tuple[str, dict[str, Any]]] = [
    ("acquire", {"o": 0}),
    ("enqueue_batch", {"b": 0}),
    ("enqueue_batch", {"b": 1}),
    ("enqueue_input", {"i": 0}),
    ("claim_command", {"o": 0}),
    ("claim_next_inputs", {"o": 0}),
    ("commit", {"o": 0, "release": False, "defer": False}),
    ("cancel_batch", {"b": 1}),
    ("vacuum", {}),
    ("replay_batch", {"b": 0}),
    ("replay_input", {"i": 0}),
    ("claim_command", {"o": 0}),
    ("claim_next_inputs", {"o": 0}),
    ("replay_batch", {"b": 1}),
    ("replay_batch", {"b": 0}),
]


@pytest.fixture(scope="module")
def replayed() -> Trace:
    return trace_of(ModelRunner(REPLAY), STEPS, "source-replay")


def test_the_extension_is_off_by_default_and_on_in_its_profile() -> None:
    assert Bounds().source_replay == 0
    for prof in PROFILES:
        assert prof.bounds.source_replay == (prof.name == "source-replay"), prof.name
    off = Bounds(**{**REPLAY.as_dict(), "source_replay": 0})
    with pytest.raises(ActionNotEnabled):
        trace_of(ModelRunner(off), STEPS, "no-source-replay")


def test_a_replayed_key_enqueues_a_new_row_whose_claims_do_not_repeat(replayed: Trace) -> None:
    outcomes = [(s.action, s.outcome) for s in replayed.steps[1:]]
    assert outcomes[4][1]["claim"] == "qwc:b0:1"
    assert outcomes[5][1]["claim"] == "tic:i0:1"
    assert outcomes[9] == ("replay_batch", {"tag": "Enqueued"})
    assert outcomes[10] == ("replay_input", {"tag": "Enqueued"})
    assert outcomes[11][1]["claim"] == "qwc:b0:2", "the new row's first claim"
    assert outcomes[12][1]["claim"] == "tic:i0:2"
    assert outcomes[13] == ("replay_batch", {"tag": "Enqueued"})
    assert outcomes[14] == ("replay_batch", {"tag": "Replayed", "state": "queued"})
    last = replayed.steps[-1].state
    assert last["batch_status"] == {0: "queued", 1: "queued"}
    assert last["batch_fencing"] == {0: 2, 1: 0}
    assert last["input_state"] == {0: "deferred_next_turn"} and last["input_fencing"] == {0: 2}


def test_a_slot_is_not_replayed_ahead_of_a_later_row() -> None:
    runner = ModelRunner(REPLAY)
    early = [*STEPS[:7], ("replay_batch", {"b": 0})]  # b1 is still queued
    with pytest.raises(ActionNotEnabled):
        trace_of(runner, early, "b0-behind-b1")


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_the_kernel_replays_the_trace(replayed: Trace, backend: str, tmp_path: Path) -> None:
    result = replay_trace(replayed, kernel_target(backend, tmp_path))
    assert result.ok, result


def test_a_store_whose_source_keys_outlive_their_rows_diverges(replayed: Trace) -> None:
    adapter = KernelAdapter(broken_memory_store_factory("source_key_outlives_row"))
    report = replay_all([replayed], adapter)
    divergence = report.results[0].divergence
    assert divergence is not None
    assert (divergence.step, divergence.action, divergence.field) == (10, "replay_batch", "outcome")


def test_the_check_catches_a_new_row_that_keeps_the_old_rewrite() -> None:
    broken = check_model(REPLAY_BOUNDS, mutant="replayed_input_keeps_rewrite")
    violated = {s.name: s.violation for s in broken.invariants if not s.holds}
    path = violated["deferral_rewrites_only_active_inputs"]
    assert path is not None and path.path[-1].action == "replay_input"
    assert check_model(REPLAY_BOUNDS).ok


def test_z3_proves_the_invariants_inductive_with_replay() -> None:
    report = prove_kernel(REPLAY)
    assert report.inductive, report.failed()
