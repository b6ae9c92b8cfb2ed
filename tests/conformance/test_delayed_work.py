"""Delayed work (bound ``delayed_work``): a batch whose ``available_at`` is ahead of the clock.

A row is ready only once ``available_at <= now`` (store.md §3.4; lash's claims filter on it
before choosing the queue head). These tests step one hand-written trace through the model at
the ``delayed`` profile's bounds, replay it on both backends, show that a store enqueueing
every batch as available at once diverges, and that the check catches a claim that ignores
the clock.
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
from lashspec.model.mutants import DELAYED_BOUNDS
from lashspec.model.profiles import PROFILES, profile
from lashspec.model.z3check import prove_kernel

DELAYED = profile("delayed").bounds

#: A session command enqueued for one clock step later, turn work behind it: the command is
#: not claimable and does not gate the turn work; once the clock moves it is.
STEPS: list[tuple[str, dict[str, Any]]] = [
    ("acquire", {"o": 0}),
    ("enqueue_batch_later", {"b": 0}),
    ("enqueue_batch", {"b": 1}),
    ("claim_command", {"o": 0}),
    ("claim_work", {"o": 0, "boundary": "idle"}),
    ("advance", {}),
    ("claim_command", {"o": 0}),
]


@pytest.fixture(scope="module")
def delayed() -> Trace:
    return trace_of(ModelRunner(DELAYED), STEPS, "delayed-work")


def test_the_extension_is_off_by_default_and_on_in_its_profile() -> None:
    assert Bounds().delayed_work == 0
    for prof in PROFILES:
        assert prof.bounds.delayed_work == (prof.name == "delayed"), prof.name
    off = Bounds(**{**DELAYED.as_dict(), "delayed_work": 0})
    with pytest.raises(ActionNotEnabled):
        trace_of(ModelRunner(off), STEPS, "no-delayed-work")


def test_work_waits_for_the_clock(delayed: Trace) -> None:
    outcomes = [s.outcome for s in delayed.steps[1:]]
    states = [s.state for s in delayed.steps[1:]]
    assert states[1]["batch_wait"] == {0: 1, 1: 0}
    assert outcomes[3] == {"tag": "NoClaim"}, "the command is not available yet"
    assert outcomes[4]["claim"] == "qwc:b1:1", "a waiting command does not gate turn work"
    assert states[5]["batch_wait"] == {0: 0, 1: 0} and states[5]["lease_live"]
    assert outcomes[6]["claim"] == "qwc:b0:1"


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_the_kernel_replays_the_trace(delayed: Trace, backend: str, tmp_path: Path) -> None:
    result = replay_trace(delayed, kernel_target(backend, tmp_path))
    assert result.ok, result


def test_a_store_ignoring_available_at_diverges(delayed: Trace) -> None:
    adapter = KernelAdapter(broken_memory_store_factory("enqueue_ignores_available_at"))
    report = replay_all([delayed], adapter)
    divergence = report.results[0].divergence
    assert divergence is not None
    assert (divergence.step, divergence.action) == (2, "enqueue_batch_later")
    assert divergence.field == "batch_wait"


def test_the_check_catches_a_claim_that_ignores_the_clock() -> None:
    broken = check_model(DELAYED_BOUNDS, mutant="claim_ignores_available_at")
    violated = {s.name: s.violation for s in broken.invariants if not s.holds}
    path = violated["waiting_work_unclaimed"]
    assert path is not None and path.path[1].action == "enqueue_batch_later"
    assert check_model(DELAYED_BOUNDS).ok


def test_z3_proves_the_invariants_inductive_with_delayed_work() -> None:
    report = prove_kernel(DELAYED)
    assert report.inductive, report.failed()
    assert report.proof("waiting_work_unclaimed").proved
