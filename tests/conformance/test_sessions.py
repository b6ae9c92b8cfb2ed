"""A second session (bound ``second_session``): isolation in the model, the traces and replay.

Session-1 has its own lease row and batch; the store's one head is bound to the session of
its first commit (store.md §5.3 step 1). These tests step one hand-written trace through the
model at the ``sessions`` profile's bounds (no exploration, so they stay quick), replay it on
both backends, and show that a kernel mixing up session ids diverges at the step where it
does, and that the model check catches a seeded isolation bug.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from lashspec.conformance.broken_kernels import broken_memory_store_factory
from lashspec.conformance.itf import Trace, trace_to_json
from lashspec.conformance.kernel_adapter import KernelAdapter
from lashspec.conformance.modeltrace import ActionNotEnabled, ModelRunner, trace_of
from lashspec.conformance.replay import kernel_target, replay_all, replay_trace
from lashspec.conformance.schema import validate_trace_document
from lashspec.model.check import check_model
from lashspec.model.kernel_model import Bounds, build_model
from lashspec.model.mutants import SESSION_BOUNDS
from lashspec.model.profiles import PROFILES, profile
from lashspec.model.z3check import prove_kernel

SESSIONS = profile("sessions").bounds

#: Both sessions leased by different owners, a batch in each, a cross-session cancel, each
#: batch claimed by its own session's owner, session-1's commit binding the head, and then
#: session-0's commit refused by the binding.
ISOLATION: list[tuple[str, dict[str, Any]]] = [
    ("acquire", {"o": 0}),
    ("s1_acquire", {"o": 1}),
    ("s1_acquire", {"o": 0}),
    ("enqueue_batch", {"b": 0}),
    ("s1_enqueue", {}),
    ("s1_cancel_batch", {"b": 0}),
    ("s1_claim", {"o": 1}),
    ("claim_command", {"o": 0}),
    ("s1_commit", {"o": 1, "release": True}),
    ("commit", {"o": 0, "release": False, "defer": False}),
]


@pytest.fixture(scope="module")
def isolation() -> Trace:
    return trace_of(ModelRunner(SESSIONS), ISOLATION, "sessions-isolation")


def test_the_extension_is_off_by_default_and_on_in_its_profile() -> None:
    assert Bounds().second_session == 0
    for prof in PROFILES:
        expected = {"sessions": 1, "session-inputs": 2}.get(prof.name, 0)
        assert prof.bounds.second_session == expected, prof.name
    plain = {v.name for v in build_model(Bounds()).variables}
    assert "s1_lease_gen" not in plain and "head_session" not in plain
    with pytest.raises(ActionNotEnabled):
        trace_of(ModelRunner(profile("lease").bounds), [("s1_enqueue", {})], "no-session-1")


def test_the_model_keeps_the_sessions_apart(isolation: Trace) -> None:
    outcomes = [step.outcome for step in isolation.steps[1:]]
    assert outcomes[1] == {"tag": "Acquired", "gen": 1}, "session-0's lease does not block"
    assert outcomes[2] == {"tag": "Busy", "holder": 1, "gen": 1}
    assert outcomes[5] == {"tag": "NotCancelled"}, "session-1 cannot cancel session-0's batch"
    assert outcomes[6]["claim"] == "qwc:s1b0:1" and set(outcomes[6]["rows"]) == {0}
    assert outcomes[7]["claim"] == "qwc:b0:1", "session-0's claim takes its own command"
    assert outcomes[8] == {"tag": "Committed", "head_revision": 1}
    assert outcomes[9] == {"tag": "SessionBindingMismatch"}
    last = isolation.steps[-1].state
    assert last["head_session"] == 1 and last["s1_batch_status"] == "deleted"
    assert last["batch_status"] == {0: "queued"} and last["batch_claim"] == {0: "qwc:b0:1"}
    assert last["lease_holder"] == 0 and last["lease_live"], "session-0's lease is untouched"


def test_the_trace_validates_against_the_schema(isolation: Trace) -> None:
    document = json.loads(json.dumps(trace_to_json(isolation)))
    validate_trace_document(document, "sessions-isolation")


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_the_kernel_replays_the_isolation_trace(
    isolation: Trace, backend: str, tmp_path: Path
) -> None:
    result = replay_trace(isolation, kernel_target(backend, tmp_path))
    assert result.ok, result


@pytest.mark.parametrize(
    ("variant", "step", "action"),
    [("lease_ignores_session", 2, "s1_acquire"), ("cancel_ignores_session", 6, "s1_cancel_batch")],
)
def test_a_kernel_mixing_up_sessions_diverges_where_it_does(
    isolation: Trace, variant: str, step: int, action: str
) -> None:
    report = replay_all([isolation], KernelAdapter(broken_memory_store_factory(variant)))
    assert not report.ok
    divergence = report.results[0].divergence
    assert divergence is not None
    assert (divergence.step, divergence.action) == (step, action)


def test_the_check_catches_a_session_crossing_bug() -> None:
    broken = check_model(SESSION_BOUNDS, mutant="session1_acquire_expires_session0")
    violated = {s.name: s.violation for s in broken.invariants if not s.holds}
    assert "session_isolation" in violated
    path = violated["session_isolation"]
    assert path is not None and [s.action for s in path.path] == ["acquire", "s1_acquire"]
    assert check_model(SESSION_BOUNDS).ok


def test_z3_proves_the_session_invariants_inductive() -> None:
    report = prove_kernel(SESSIONS)
    assert report.inductive, report.failed()
    assert report.proof("session_isolation").proved
    assert report.proof("second_session_consistent").proved
