"""Outbox batches (bound ``outbox``): a commit that enqueues a batch in its own transaction.

store.md §5.3 step 12: the commit's ``enqueued_queue_batches`` are enqueued with §3.3
semantics (source-key idempotent) after its completions, and a failing commit rolls back
everything, outbox included (step 15). These tests step one hand-written trace through the
model at the ``outbox`` profile's bounds, replay it on both backends, show that a store
dropping the outbox diverges, and that the check catches an outbox written by a failed commit.
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
from lashspec.model.mutants import OUTBOX_BOUNDS
from lashspec.model.profiles import PROFILES, profile
from lashspec.model.z3check import prove_kernel

OUTBOX = profile("outbox").bounds

#: A command completed by a commit whose outbox enqueues the wake b1; the wake claimed at a
#: checkpoint and completed by a commit whose outbox enqueues the after-commit join batch b2,
#: which a checkpoint claim does not take and an idle claim does.
STEPS: list[tuple[str, dict[str, Any]]] = [
    ("acquire", {"o": 0}),
    ("enqueue_batch", {"b": 0}),
    ("claim_command", {"o": 0}),
    ("commit_outbox", {"o": 0, "b": 1}),
    ("claim_work", {"o": 0, "boundary": "active_turn_checkpoint"}),
    ("commit_outbox", {"o": 0, "b": 2}),
    ("claim_work", {"o": 0, "boundary": "active_turn_checkpoint"}),
    ("claim_work", {"o": 0, "boundary": "idle"}),
]


@pytest.fixture(scope="module")
def outbox() -> Trace:
    return trace_of(ModelRunner(OUTBOX), STEPS, "outbox")


def test_the_extension_is_off_by_default_and_on_in_its_profile() -> None:
    assert Bounds().outbox == 0
    for prof in PROFILES:
        assert prof.bounds.outbox == (prof.name == "outbox"), prof.name
    off = Bounds(**{**OUTBOX.as_dict(), "outbox": 0})
    with pytest.raises(ActionNotEnabled):
        trace_of(ModelRunner(off), STEPS, "no-outbox")


def test_the_outbox_is_enqueued_with_the_commit_under_its_policies(outbox: Trace) -> None:
    outcomes = [s.outcome for s in outbox.steps[1:]]
    states = [s.state for s in outbox.steps[1:]]
    assert outcomes[3] == {"tag": "Committed", "head_revision": 1}
    assert states[3]["batch_status"] == {0: "deleted", 1: "queued", 2: "absent"}
    assert outcomes[4]["claim"] == "qwc:b1:1", "the outbox wake is claimed like any other"
    assert outcomes[5] == {"tag": "Committed", "head_revision": 2}
    assert states[5]["batch_status"] == {0: "deleted", 1: "deleted", 2: "queued"}
    assert outcomes[6] == {"tag": "NoClaim"}, "after_current_turn_commit: not at a checkpoint"
    assert outcomes[7]["claim"] == "qwc:b2:1"


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_the_kernel_replays_the_trace(outbox: Trace, backend: str, tmp_path: Path) -> None:
    result = replay_trace(outbox, kernel_target(backend, tmp_path))
    assert result.ok, result


def test_a_store_dropping_the_outbox_diverges(outbox: Trace) -> None:
    adapter = KernelAdapter(broken_memory_store_factory("commit_drops_outbox"))
    report = replay_all([outbox], adapter)
    divergence = report.results[0].divergence
    assert divergence is not None
    assert (divergence.step, divergence.action, divergence.field) == (
        4,
        "commit_outbox",
        "batch_status",
    )


def test_the_check_catches_an_outbox_written_by_a_failed_commit() -> None:
    broken = check_model(OUTBOX_BOUNDS, mutant="outbox_enqueued_on_failed_commit")
    violated = {s.name: s.violation for s in broken.invariants if not s.holds}
    path = violated["outbox_atomic"]
    assert path is not None and path.path[-1].action == "commit_outbox"
    assert check_model(OUTBOX_BOUNDS).ok


def test_z3_proves_the_invariants_inductive_with_the_outbox() -> None:
    report = prove_kernel(OUTBOX)
    assert report.inductive, report.failed()
    assert report.proof("outbox_atomic").proved
