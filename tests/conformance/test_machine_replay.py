"""Machine traces (docs/machine-traces.md): our turn machines + store replay them on both
backends, broken machines fail them with a clear first divergence, and the adapter protocol
carries them.

Until the model generates machine traces, the traces here are scripted: each step names the
action, the outcome and the variables a reader can check by hand against the machine's
transition table (docs/turn-machine.md); the full states are then recorded from our kernel,
so the same trace can be replayed against other targets.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from lashspec.conformance.itf import (
    SUITE_INDEX_FILE,
    Trace,
    TraceStep,
    read_trace,
    suite_trace_files,
    write_trace,
)
from lashspec.conformance.kernel_adapter import (
    BadActionParams,
    StoreFactory,
    UnknownAction,
    memory_store_factory,
)
from lashspec.conformance.machine_adapter import (
    ActionNotEnabled,
    KernelSystems,
    MachineAdapter,
    UnsupportedSystem,
)
from lashspec.conformance.machine_suite import (
    PROMOTED_WALKS,
    MachineSuite,
    PromotedWalk,
    generate_machine_suite,
    promoted_walk,
    write_machine_suite,
)
from lashspec.conformance.replay import (
    kernel_target,
    replay_all,
    replay_trace,
    sqlite_store_factory,
)
from lashspec.kernel.machine import (
    AbandonClaims,
    CheckpointWorkClaimed,
    CommitFailed,
    Effect,
    Event,
    LeaseLost,
    ReleaseLease,
    TurnMachine,
)
from lashspec.model.dsl import compile_model
from lashspec.model.machine_model import DRIVER_CONFIGS, build_machine_model
from lashspec.model.profiles import MACHINE_PROFILES

BOUNDS = {
    "owners": 2,
    "batches": 2,
    "inputs": 2,
    "max_incarnation": 1,
    "max_generation": 3,
    "max_claims_per_row": 2,
    "max_head_revision": 3,
    "max_turns": 3,
}
BACKENDS = ("memory", "sqlite")


# ---------------------------------------------------------------------------
# Scripted traces with hand-checked expectations
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    action: str
    picks: Mapping[str, Any]
    outcome: Mapping[str, Any]
    #: hand-checked variables after the step: plain names, or (name, key) for one map entry
    expect: Mapping[str | tuple[str, int], Any] = field(default_factory=dict)


def host(action: str, o: int, tag: str, effects: list[str], **expect: Any) -> Step:
    picks: dict[str, Any] = {"o": o}
    for pick in ("checkpoint", "at"):
        if pick in expect:
            picks[pick] = expect.pop(pick)
    return Step(action, picks, {"tag": tag, "effects": effects}, _per_owner(o, expect))


def step(o: int, tag: str, effects: list[str], fail: bool = False, **expect: Any) -> Step:
    action = "store_fail" if fail else "store_step"
    return Step(action, {"o": o}, {"tag": tag, "effects": effects}, _per_owner(o, expect))


def env(action: str, tag: str = "Ok", **picks_and_expect: Any) -> Step:
    picks = {k: v for k, v in picks_and_expect.items() if k in ("o", "b", "i")}
    expect = {k: v for k, v in picks_and_expect.items() if k not in picks}
    return Step(action, picks, {"tag": tag}, _per_owner(picks.get("o", 0), expect))


MACHINE_VARIABLES = ("phase", "awaiting", "turn", "interrupted", "qclaims", "iclaims", "outcome")


def _per_owner(o: int, expect: Mapping[str, Any]) -> dict[str | tuple[str, int], Any]:
    """``phase="Idle"`` checks ``machine_phase[o]``; ``fence=1`` checks ``owner_fence[o]``;
    ``input_state_0="completed"`` checks ``input_state[0]``; other names are plain."""
    checks: dict[str | tuple[str, int], Any] = {}
    for name, value in expect.items():
        if name in MACHINE_VARIABLES:
            checks[(f"machine_{name}", o)] = value
        elif name in ("fence", "alive", "inc"):
            checks[(f"owner_{name}", o)] = value
        elif name[-1].isdigit() and name[-2] == "_":
            checks[(name[:-2], int(name[-1]))] = value
        else:
            checks[name] = value
    return checks


def acquire_and_claim_inputs(o: int, gen: int, claim: str) -> list[Step]:
    """host_start through InputsClaimed: the cycle that runs a turn on next-turn input."""
    return [
        host("host_start", o, "Start", ["AcquireLease"], phase="AcquiringLease"),
        step(o, "LeaseAcquired", ["InspectPendingWork"], fence=gen, lease_gen=gen, lease_live=True),
        step(o, "PendingWorkInspected", ["ClaimNextTurnInputs"], phase="ClaimingInputs"),
        step(o, "InputsClaimed", ["RunTurn"], phase="ActiveTurn", awaiting="", iclaims=[claim]),
    ]


# fmt: off
SCRIPTS: dict[str, list[Step]] = {
    # A full turn: next-turn input at the Idle boundary, a checkpoint that admits an
    # active-turn input and a process wake, and the commit that settles all of it and
    # releases the lease.
    "full_turn": [
        env("enqueue_input", "Enqueued", i=0, input_state_0="deferred_next_turn"),
        env("enqueue_input", "Enqueued", i=1, input_state_1="pending_active"),
        env("enqueue_batch", "Enqueued", b=1, batch_status_1="queued"),
        *acquire_and_claim_inputs(0, 1, "tic:i0:1"),
        host(
            "host_checkpoint",
            0,
            "CheckpointReached",
            ["WriteCheckpoint"],
            checkpoint="after_work",
            phase="WritingCheckpoint",
            awaiting="WriteCheckpoint",
        ),
        step(0, "CommitSucceeded", ["ClaimCheckpointWork"], head_revision=1),
        step(
            0,
            "CheckpointWorkClaimed",
            ["DeliverCheckpointWork"],
            phase="ActiveTurn",
            qclaims=["qwc:b1:1"],
            iclaims=["tic:i0:1", "tic:i1:1"],
        ),
        host("host_finish", 0, "TurnFinished", ["CommitTurn"], awaiting="CommitTurn"),
        step(
            0,
            "CommitSucceeded",
            [],
            phase="Idle",
            outcome="committed",
            turn=-1,
            qclaims=[],
            iclaims=[],
            fence=0,
            lease_holder=-1,
            lease_live=False,
            head_revision=2,
            input_state_0="completed",
            input_state_1="completed",
            batch_status_1="deleted",
        ),
    ],
    # Owner 0's lease expires mid-turn; owner 1 takes the session over under generation 2
    # and re-claims the input; owner 0's commit is fenced out (lease lost) and owner 1's
    # commit settles the input.
    "takeover_after_expire": [
        env("enqueue_input", "Enqueued", i=0),
        *acquire_and_claim_inputs(0, 1, "tic:i0:1"),
        env("expire", lease_live=False),
        host("host_start", 1, "Start", ["AcquireLease"], turn=1, session_turns=2),
        step(1, "LeaseAcquired", ["InspectPendingWork"], fence=2, lease_gen=2, lease_holder=1),
        step(1, "PendingWorkInspected", ["ClaimNextTurnInputs"]),
        step(1, "InputsClaimed", ["RunTurn"], iclaims=["tic:i0:2"], input_claim_0="tic:i0:2"),
        host("host_finish", 0, "TurnFinished", ["CommitTurn"]),
        step(
            0,
            "LeaseLost",
            ["AbandonClaims"],
            phase="Idle",
            outcome="lease_lost",
            iclaims=[],
            fence=0,
            input_claim_0="tic:i0:2",
            head_revision=0,
        ),
        host("host_finish", 1, "TurnFinished", ["CommitTurn"]),
        step(1, "CommitSucceeded", [], outcome="committed", input_state_0="completed"),
    ],
    # Interrupted while the checkpoint write is outstanding: the machine waits, then commits
    # the turn as interrupted, which defers the active-turn input no checkpoint accepted.
    "interrupt_during_checkpoint_write": [
        env("enqueue_input", "Enqueued", i=0),
        env("enqueue_input", "Enqueued", i=1),
        *acquire_and_claim_inputs(0, 1, "tic:i0:1"),
        host(
            "host_checkpoint", 0, "CheckpointReached", ["WriteCheckpoint"], checkpoint="after_work"
        ),
        host(
            "host_interrupt",
            0,
            "Interrupt",
            [],
            phase="Interrupting",
            interrupted=True,
            awaiting="WriteCheckpoint",
        ),
        step(0, "CommitSucceeded", ["CommitTurn"], phase="Committing", head_revision=1),
        step(
            0,
            "CommitSucceeded",
            [],
            phase="Idle",
            outcome="interrupted",
            interrupted=False,
            lease_holder=-1,
            input_state_0="completed",
            input_state_1="deferred_next_turn",
            input_rewritten_1=True,
            head_revision=2,
        ),
    ],
    # A turn commit that fails in the backend: nothing is applied, the machine stops in
    # Failed (keeping the lease row to run out, handing nothing back) until the host resets.
    "turn_commit_fails": [
        env("enqueue_batch", "Enqueued", b=1),
        host("host_start", 0, "Start", ["AcquireLease"]),
        step(0, "LeaseAcquired", ["InspectPendingWork"]),
        step(0, "PendingWorkInspected", ["ClaimNextTurnInputs"]),
        step(0, "InputsClaimed", ["ClaimQueuedWork"], phase="ClaimingTurnWork"),
        step(0, "TurnWorkClaimed", ["RunTurn"], qclaims=["qwc:b1:1"], batch_claim_1="qwc:b1:1"),
        host("host_finish", 0, "TurnFinished", ["CommitTurn"]),
        step(
            0,
            "CommitFailed",
            [],
            fail=True,
            phase="Failed",
            outcome="failed",
            qclaims=[],
            fence=0,
            lease_holder=0,
            lease_live=True,
            batch_status_1="queued",
            batch_claim_1="qwc:b1:1",
            head_revision=0,
        ),
        host("host_reset", 0, "Reset", [], phase="Idle", outcome="failed"),
    ],
    # The renewal timer: nothing is due while the machine waits for the store or before a
    # third of the TTL has passed since the grant; at that instant, and late in the TTL, the
    # driver renews; the renewal answers and the turn goes on.
    "renewal_timer": [
        env("enqueue_input", "Enqueued", i=0),
        host("host_start", 0, "Start", ["AcquireLease"]),
        step(0, "LeaseAcquired", ["InspectPendingWork"], fence=1),
        host("host_timer", 0, "NotDue", [], at="due", phase="InspectingQueue"),
        step(0, "PendingWorkInspected", ["ClaimNextTurnInputs"]),
        step(0, "InputsClaimed", ["RunTurn"], phase="ActiveTurn"),
        host("host_timer", 0, "NotDue", [], at="early", phase="ActiveTurn", awaiting=""),
        host("host_timer", 0, "RenewDue", ["RenewLease"], at="due", phase="RenewingLease"),
        step(0, "LeaseRenewed", [], phase="ActiveTurn", awaiting="", fence=1),
        host("host_timer", 0, "RenewDue", ["RenewLease"], at="late", awaiting="RenewLease"),
        step(0, "LeaseRenewed", [], phase="ActiveTurn", lease_live=True),
    ],
    # Lease lost during a turn (a renewal after expiry): the turn stops and its claims are
    # handed back at once.
    "renewal_after_expiry": [
        env("enqueue_input", "Enqueued", i=0),
        *acquire_and_claim_inputs(0, 1, "tic:i0:1"),
        env("expire"),
        host("host_renew_due", 0, "RenewDue", ["RenewLease"], phase="RenewingLease"),
        step(
            0,
            "LeaseLost",
            ["StopTurn", "AbandonClaims"],
            phase="Idle",
            outcome="lease_lost",
            iclaims=[],
            input_claim_0="",
            input_state_0="deferred_next_turn",
        ),
    ],
    # A crashed holder: its machine is gone; after the restart the new incarnation finds the
    # old one's live lease held by a provably dead process and reclaims it.
    "crash_and_reclaim": [
        env("enqueue_input", "Enqueued", i=0),
        *acquire_and_claim_inputs(0, 1, "tic:i0:1"),
        env("crash", o=0, alive=False, phase="Idle", fence=0, iclaims=[], lease_live=True),
        env("restart", o=0, alive=True, inc=1),
        host("host_start", 0, "Start", ["AcquireLease"], turn=1),
        step(0, "LeaseBusy", ["ReclaimLease"], phase="ReclaimingLease"),
        step(0, "LeaseAcquired", ["InspectPendingWork"], fence=2, lease_gen=2, lease_holder_inc=1),
        step(0, "PendingWorkInspected", ["ClaimNextTurnInputs"]),
        step(0, "InputsClaimed", ["RunTurn"], iclaims=["tic:i0:2"]),
    ],
}
# fmt: on


def record(name: str, target: MachineAdapter | KernelSystems) -> Trace:
    """Run script ``name``, checking every hand-written expectation; return the trace with
    the full states observed (``#meta.lashspec.system`` = machine)."""
    if isinstance(target, KernelSystems):
        target.reset_system(BOUNDS, "machine")
    else:
        target.reset(BOUNDS)
    steps = [TraceStep("init", {}, {"tag": "Ok"}, target.observe())]
    for index, scripted in enumerate(SCRIPTS[name], start=1):
        outcome = target.apply(scripted.action, scripted.picks)
        where = f"{name} step {index} {scripted.action}({dict(scripted.picks)})"
        assert outcome == scripted.outcome, where
        state = target.observe()
        for key, expected in scripted.expect.items():
            actual = state[key] if isinstance(key, str) else state[key[0]][key[1]]
            assert actual == expected, f"{where}: {key} is {actual!r}, expected {expected!r}"
        steps.append(TraceStep(scripted.action, dict(scripted.picks), outcome, state))
    meta = {"system": "machine", "bounds": dict(BOUNDS), "kind": "scripted"}
    return Trace(f"machine-scripted-{name}", tuple(steps), meta)


def factory_for(backend: str, directory: Path) -> StoreFactory:
    if backend == "memory":
        return memory_store_factory
    factory: StoreFactory = sqlite_store_factory(directory)
    return factory


@pytest.fixture(scope="module")
def scripted_traces() -> list[Trace]:
    adapter = MachineAdapter()
    try:
        return [record(name, adapter) for name in SCRIPTS]
    finally:
        adapter.close()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_scripted_machine_runs_match_the_hand_checked_expectations(
    name: str, backend: str, tmp_path: Path
) -> None:
    adapter = MachineAdapter(factory_for(backend, tmp_path))
    try:
        trace = record(name, adapter)
    finally:
        adapter.close()
    assert len(trace.steps) == len(SCRIPTS[name]) + 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_machine_traces_replay_through_the_kernel_target_on_each_backend(
    backend: str, scripted_traces: list[Trace], tmp_path: Path
) -> None:
    report = replay_all(scripted_traces, kernel_target(backend, tmp_path))
    assert report.ok, report.report()
    assert report.actions == sum(len(t.steps) - 1 for t in scripted_traces)


def test_the_kernel_target_switches_between_store_and_machine_traces(
    scripted_traces: list[Trace],
) -> None:
    target = kernel_target("memory")
    store_trace = Trace(
        "store-init",
        (TraceStep("init", {}, {"tag": "Ok"}, {"lease_gen": 0, "owner_qclaim": {0: "", 1: ""}}),),
        {"bounds": {"owners": 2, "batches": 2, "inputs": 2}},
    )
    try:
        first = replay_trace(scripted_traces[0], target)
        second = replay_trace(store_trace, target)
        third = replay_trace(scripted_traces[1], target)
    finally:
        target.close()
    assert (first.ok, second.ok, third.ok) == (True, True, True)


def test_machine_traces_survive_the_itf_round_trip(
    scripted_traces: list[Trace], tmp_path: Path
) -> None:
    for trace in scripted_traces:
        path = tmp_path / f"{trace.trace_id}.itf.json"
        write_trace(trace, path)
        again = read_trace(path)
        assert again.meta["system"] == "machine"
        assert again.steps == trace.steps


def test_cli_replays_machine_traces_on_sqlite(scripted_traces: list[Trace], tmp_path: Path) -> None:
    from lashspec.conformance.cli import main

    for trace in scripted_traces:
        write_trace(trace, tmp_path / f"{trace.trace_id}.itf.json")
    assert main(["-q", "replay", str(tmp_path), "--backend", "sqlite"]) == 0


# ---------------------------------------------------------------------------
# Refusals
# ---------------------------------------------------------------------------


@pytest.fixture
def adapter() -> Iterator[MachineAdapter]:
    target = MachineAdapter()
    target.reset(BOUNDS)
    yield target
    target.close()


@pytest.mark.parametrize(
    ("setup", "action", "picks", "because"),
    [
        ([], "host_finish", {"o": 0}, "in Idle does not accept TurnFinished"),
        ([], "store_step", {"o": 1}, "no store operation outstanding"),
        ([], "store_fail", {"o": 0}, "no store operation outstanding"),
        ([("host_start", {"o": 0})], "host_start", {"o": 0}, "does not accept Start"),
        ([("host_start", {"o": 0})], "host_reset", {"o": 0}, "does not accept Reset"),
        ([("crash", {"o": 0})], "host_start", {"o": 0}, "owner 0 is crashed"),
        ([("crash", {"o": 0})], "crash", {"o": 0}, "owner 0 is crashed"),
        ([], "restart", {"o": 1}, "owner 1 is alive"),
        ([], "host_timer", {"o": 0, "at": "due"}, "holds no lease: no renewal timer runs"),
    ],
)
def test_actions_that_are_not_enabled_are_refused_and_change_nothing(
    adapter: MachineAdapter,
    setup: list[tuple[str, dict[str, Any]]],
    action: str,
    picks: dict[str, Any],
    because: str,
) -> None:
    for earlier, earlier_picks in setup:
        adapter.apply(earlier, earlier_picks)
    before = adapter.observe()
    with pytest.raises(ActionNotEnabled, match=because):
        adapter.apply(action, picks)
    assert adapter.observe() == before


def test_unknown_actions_and_bad_picks_are_refused(adapter: MachineAdapter) -> None:
    with pytest.raises(UnknownAction, match="acquire"):
        adapter.apply("acquire", {"o": 0})  # a store-trace action: only machines call the store
    with pytest.raises(BadActionParams, match="out of range"):
        adapter.apply("host_start", {"o": 2})
    adapter.apply("enqueue_input", {"i": 0})
    adapter.apply("host_start", {"o": 0})
    for _ in range(3):
        adapter.apply("store_step", {"o": 0})
    assert adapter.observe()["machine_phase"][0] == "ActiveTurn"
    with pytest.raises(BadActionParams, match="checkpoint must be"):
        adapter.apply("host_checkpoint", {"o": 0, "checkpoint": "sometime"})
    with pytest.raises(BadActionParams, match="at must be"):
        adapter.apply("host_timer", {"o": 0, "at": "now"})


def test_a_refused_step_is_a_divergence_in_field_error(scripted_traces: list[Trace]) -> None:
    trace = scripted_traces[0]
    broken = list(trace.steps)
    broken[4] = replace(broken[4], action="host_finish")  # instead of host_start: still Idle
    result = replay_trace(replace(trace, steps=tuple(broken)), MachineAdapter())
    assert result.divergence is not None
    assert (result.divergence.step, result.divergence.field) == (4, "error")
    assert "in Idle does not accept TurnFinished" in str(result.divergence.actual)


def test_a_system_the_target_does_not_serve_is_a_divergence_at_reset(
    scripted_traces: list[Trace],
) -> None:
    target = KernelSystems()
    with pytest.raises(UnsupportedSystem):
        target.reset_system(BOUNDS, "teleporter")
    trace = replace(scripted_traces[0], meta={**scripted_traces[0].meta, "system": "teleporter"})
    result = replay_trace(trace, target)
    target.close()
    assert result.divergence is not None
    assert (result.divergence.step, result.divergence.action) == (0, "reset")
    assert "teleporter" in str(result.divergence.actual)


def test_store_fail_applies_nothing_to_the_store(adapter: MachineAdapter) -> None:
    adapter.apply("enqueue_input", {"i": 0})
    adapter.apply("host_start", {"o": 0})
    before = adapter.observe()
    assert adapter.apply("store_fail", {"o": 0}) == {"tag": "StoreFailed", "effects": []}
    after = adapter.observe()
    store_variables = [n for n in before if not n.startswith(("machine_", "owner_"))]
    assert {n: after[n] for n in store_variables} == {n: before[n] for n in store_variables}
    assert after["machine_phase"][0] == "Failed"


# ---------------------------------------------------------------------------
# Broken machines: replay catches each with a clear first divergence
# ---------------------------------------------------------------------------


class FailedCommitReleasesTheLease(TurnMachine):
    """Releases the lease after a failed commit (lash keeps it to run out at its TTL)."""

    def handle(self, event: Event) -> list[Effect]:
        lease = self.lease
        effects = super().handle(event)
        if isinstance(event, CommitFailed) and lease is not None:
            effects.append(ReleaseLease(lease.completion()))
        return effects


class LeaseLossKeepsTheClaims(TurnMachine):
    """Does not hand the turn's claims back when the lease is lost."""

    def handle(self, event: Event) -> list[Effect]:
        effects = super().handle(event)
        if isinstance(event, LeaseLost):
            effects = [e for e in effects if not isinstance(e, AbandonClaims)]
        return effects


class TurnCommitDropsCheckpointClaims(TurnMachine):
    """Forgets the claims a checkpoint admits, so the turn commit (consistently built by the
    machine, originating claims and hash included) never settles them."""

    def handle(self, event: Event) -> list[Effect]:
        held = self.queue_claims, self.input_claims
        effects = super().handle(event)
        if isinstance(event, CheckpointWorkClaimed):
            self.queue_claims, self.input_claims = held
        return effects


@dataclass(frozen=True)
class BrokenMachine:
    machine: type[TurnMachine]
    script: str
    #: where the first divergence must be: step index, action, field
    step: int
    action: str
    field: str


BROKEN_MACHINES = (
    BrokenMachine(FailedCommitReleasesTheLease, "turn_commit_fails", 8, "store_fail", "outcome"),
    BrokenMachine(LeaseLossKeepsTheClaims, "renewal_after_expiry", 8, "store_step", "outcome"),
    BrokenMachine(
        TurnCommitDropsCheckpointClaims, "full_turn", 10, "store_step", "machine_iclaims"
    ),
)


@pytest.mark.parametrize("broken", BROKEN_MACHINES, ids=lambda b: b.machine.__name__)
def test_replay_catches_a_broken_machine_at_its_first_divergence(
    broken: BrokenMachine, scripted_traces: list[Trace]
) -> None:
    good = next(t for t in scripted_traces if t.trace_id.endswith(broken.script))
    results = replay_all(scripted_traces, MachineAdapter(machine_class=broken.machine))
    failed = {r.trace_id: r.divergence for r in results.results if r.divergence is not None}
    assert good.trace_id in failed
    divergence = failed[good.trace_id]
    assert divergence is not None
    assert (divergence.step, divergence.action, divergence.field) == (
        broken.step,
        broken.action,
        broken.field,
    )
    assert divergence.expected != divergence.actual
    described = divergence.describe()
    assert f"step {broken.step} {broken.action}" in described and "expected:" in described


# ---------------------------------------------------------------------------
# The adapter protocol
# ---------------------------------------------------------------------------


def reference_adapter(backend: str) -> str:
    python = shlex.quote(sys.executable)
    return f"{python} -m lashspec.conformance.reference_adapter --backend {backend}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_machine_traces_round_trip_through_the_reference_adapter(
    backend: str, scripted_traces: list[Trace]
) -> None:
    from lashspec.conformance.protocol import AdapterClient

    report = replay_all(scripted_traces, AdapterClient(reference_adapter(backend)))
    assert report.ok, report.report()
    assert report.actions == sum(len(t.steps) - 1 for t in scripted_traces)


def test_the_reference_adapter_refuses_a_system_it_does_not_serve(
    scripted_traces: list[Trace],
) -> None:
    from lashspec.conformance.protocol import AdapterClient

    teleporter = replace(scripted_traces[0], meta={**scripted_traces[0].meta, "system": "x"})
    report = replay_all(
        [teleporter, scripted_traces[1]], AdapterClient(reference_adapter("memory"))
    )
    first, second = report.results
    assert first.divergence is not None and first.divergence.action == "reset"
    assert "unsupported_system" in str(first.divergence.actual)
    assert second.ok  # a refusal ends one trace, not the session


VERSION_1_ADAPTER = """\
import json, sys

for line in sys.stdin:
    request = json.loads(line)
    if "system" in request:  # version 1 knows no systems: the replayer must not send one
        print(json.dumps({"ok": False, "error": "bad_request", "message": "system"}), flush=True)
    elif request["op"] == "quit":
        print(json.dumps({"ok": True}), flush=True)
        break
    else:
        print(json.dumps({"ok": True, "protocol": 1, "name": "v1"}), flush=True)
"""


def test_a_version_1_adapter_is_refused_machine_traces_without_being_asked(
    scripted_traces: list[Trace], tmp_path: Path
) -> None:
    from lashspec.conformance.protocol import AdapterClient

    script = tmp_path / "v1_adapter.py"
    script.write_text(VERSION_1_ADAPTER)
    client = AdapterClient(f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}")
    try:
        assert client.protocol == 1
        client.reset(BOUNDS)  # store traces still reset, without a system field
        result = replay_trace(scripted_traces[0], client)
    finally:
        client.close()
    assert result.divergence is not None
    assert (result.divergence.step, result.divergence.action) == (0, "reset")
    assert "protocol 1, which has no machine traces" in str(result.divergence.actual)


# ---------------------------------------------------------------------------
# The generated machine suite
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def machine_suite() -> MachineSuite:
    return generate_machine_suite()


def test_the_machine_suite_covers_every_profile_and_both_host_and_store_steps(
    machine_suite: MachineSuite,
) -> None:
    assert [c.profile for c in machine_suite.cover] == [p.name for p in MACHINE_PROFILES]
    assert all(c.goals > 0 and c.traces > 0 for c in machine_suite.cover)
    actions = {action for action, _, _ in machine_suite.covered}
    assert {"host_start", "host_checkpoint", "host_finish", "host_interrupt"} <= actions
    assert {"host_renew_due", "host_reset", "store_step", "store_fail", "crash"} <= actions
    assert {("host_timer", "NotDue", ()), ("host_timer", "RenewDue", ("RenewLease",))} <= {
        goal for goal in machine_suite.covered if goal[0] == "host_timer"
    }
    tags = {tag for _, tag, _ in machine_suite.covered}
    assert {
        "LeaseBusy",
        "CommitFailed",
        "LeaseLost",
        "StoreFailed",
        "CheckpointWorkClaimed",
    } <= tags
    assert all(t.meta["system"] == "machine" for t in machine_suite.traces)
    assert all(t.trace_id.startswith("machine-") for t in machine_suite.traces)
    kinds = {t.trace_id: t.meta["kind"] for t in machine_suite.traces}
    assert all(("-cover-" in name) == (kind == "cover") for name, kind in kinds.items())
    promoted = [name for name, kind in kinds.items() if kind == "promoted"]
    assert len(promoted) == len(PROMOTED_WALKS)


#: The last step of each promoted walk: the outcome it was written to pin.
PROMOTED_ENDINGS: dict[str, dict[str, Any]] = {
    "input-before-command": {"tag": "PendingWorkInspected", "effects": ["ClaimNextTurnInputs"]},
    "command-before-input": {"tag": "PendingWorkInspected", "effects": ["ClaimLeadingCommand"]},
    "active-input-not-next-turn": {
        "tag": "PendingWorkInspected",
        "effects": ["ClaimLeadingCommand"],
    },
    "timer-after-a-ttl": {"tag": "RenewDue", "effects": ["RenewLease"]},
    "checkpoint-in-second-turn": {"tag": "DriverOpened", "committed_checkpoint": 0},
    "turn-work-is-no-command": {
        "tag": "PendingWorkInspected",
        "effects": ["ClaimNextTurnInputs"],
    },
    "misfed-replies": {"tag": "CommitSucceeded", "effects": []},
    "failed-checkpoint-in-second-turn": {"tag": "CommitSucceeded", "effects": []},
    "restart-after-second-turn": {"tag": "Ok"},
    "lease-expires-during-command-claim": {"tag": "LeaseLost", "effects": []},
    "lease-expires-during-command-commit": {"tag": "LeaseLost", "effects": []},
    "lease-expires-during-idle-work-claim": {"tag": "LeaseLost", "effects": []},
    "lease-expires-during-checkpoint-claim": {
        "tag": "LeaseLost",
        "effects": ["StopTurn", "AbandonClaims"],
    },
    "interrupted-command-claim-fails": {"tag": "StoreFailed", "effects": ["ReleaseLease"]},
    "interrupted-input-claim-fails": {"tag": "StoreFailed", "effects": []},
}


def test_every_profile_builds_a_driver_with_every_configuration(
    machine_suite: MachineSuite,
) -> None:
    built: dict[str, set[str]] = {}
    for trace in machine_suite.traces:
        for step in trace.steps:
            if step.action == "build_driver":
                built.setdefault(str(trace.meta["profile"]), set()).add(step.picks["config"])
    assert built == {p.name: set(DRIVER_CONFIGS) for p in MACHINE_PROFILES}


def test_promoted_walks_end_in_the_outcome_they_pin(machine_suite: MachineSuite) -> None:
    assert set(PROMOTED_ENDINGS) == {w.name for w in PROMOTED_WALKS}
    by_name = {t.trace_id.split("-promoted-")[-1]: t for t in machine_suite.traces}
    for name, outcome in PROMOTED_ENDINGS.items():
        assert by_name[name].steps[-1].outcome == outcome, name
    timer = by_name["timer-after-a-ttl"].steps
    assert timer[-2].outcome == {"tag": "NotDue", "effects": []}  # early: not yet
    second = by_name["checkpoint-in-second-turn"].steps
    assert second[-1].state["machine_committed_checkpoint"] == {0: 1}
    assert second[-4].outcome == {"tag": "CommitSucceeded", "effects": ["ClaimCheckpointWork"]}
    own_session = {"tag": "DriverOpened", "committed_checkpoint": 1}
    assert [s.outcome for s in second[-3:]] == [
        own_session,
        *[PROMOTED_ENDINGS["checkpoint-in-second-turn"]] * 2,
    ]
    misfed = by_name["misfed-replies"].steps
    refused = [s for s in misfed if s.action == "host_misfeed"]
    assert len(refused) == 29 and all(s.outcome["tag"] == "ReplyRefused" for s in refused)
    failed = by_name["failed-checkpoint-in-second-turn"].steps
    assert failed[-4].outcome["tag"] == "CommitFailed"
    assert failed[-4].state["machine_committed_checkpoint"] == {0: 0}  # not written
    assert failed[-1].state["machine_committed_checkpoint"] == {0: 1}  # the turn's commit
    restarted = by_name["restart-after-second-turn"]
    assert restarted.meta["bounds"]["max_incarnation"] == 1  # widened for the restart
    assert restarted.steps[-2].state["machine_committed_checkpoint"] == {0: 0}  # no machine
    assert restarted.steps[-1].state["machine_committed_checkpoint"] == {0: 1}  # the store's


def test_a_promoted_walk_the_model_does_not_allow_is_an_error() -> None:
    profile = next(p for p in MACHINE_PROFILES if p.name == "machine-turn")
    compiled = compile_model(build_machine_model(profile.bounds))
    walk = PromotedWalk("finish-in-idle", "machine-turn", "", (("host_finish", {"o": 0}),))
    with pytest.raises(ValueError, match="step 1 host_finish"):
        promoted_walk(compiled, walk)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_whole_machine_suite_replays_green(
    backend: str, machine_suite: MachineSuite, tmp_path: Path
) -> None:
    report = replay_all(machine_suite.traces, kernel_target(backend, tmp_path))
    assert report.ok, report.report()
    assert report.actions == machine_suite.steps


@pytest.mark.parametrize("broken", BROKEN_MACHINES, ids=lambda b: b.machine.__name__)
def test_the_machine_suite_catches_every_broken_machine(
    broken: BrokenMachine, machine_suite: MachineSuite
) -> None:
    report = replay_all(machine_suite.traces, MachineAdapter(machine_class=broken.machine))
    failures = [r for r in report.results if r.divergence is not None]
    assert failures, f"{broken.machine.__name__} passed the generated machine suite"
    first = failures[0].divergence
    assert first is not None and first.step > 0 and first.expected != first.actual


def test_export_writes_machine_traces_listed_in_the_index(
    machine_suite: MachineSuite, tmp_path: Path
) -> None:
    written = write_machine_suite(machine_suite, tmp_path)
    assert len(written) == len(machine_suite.traces)
    assert all(p.name.startswith("machine-") for p in written)
    index = json.loads((tmp_path / SUITE_INDEX_FILE).read_text())
    listed = {e["file"]: e for e in index["traces"]}
    assert set(listed) == {p.name for p in written}
    assert all(e["system"] == "machine" and len(e["sha256"]) == 64 for e in listed.values())
    assert index["machine"]["total_steps"] == machine_suite.steps
    files = suite_trace_files(tmp_path, warn=pytest.fail)  # the index matches the files
    assert read_trace(files[0]).meta["system"] == "machine"
    from lashspec.conformance.cli import main

    assert main(["-q", "replay", str(tmp_path), "--backend", "memory"]) == 0
    assert write_machine_suite(machine_suite, tmp_path) == written  # rewriting is stable
    assert json.loads((tmp_path / SUITE_INDEX_FILE).read_text()) == index


def test_the_pytest_plugin_replays_machine_traces(machine_suite: MachineSuite) -> None:
    from lashspec.conformance.pytest_plugin import replay_or_fail

    failing_commit = next(
        t
        for t in machine_suite.traces
        if any(s.action == "store_fail" and s.outcome["tag"] == "CommitFailed" for s in t.steps)
    )
    target = kernel_target("memory")
    try:
        assert replay_or_fail(failing_commit, target).ok
    finally:
        target.close()
    broken = MachineAdapter(machine_class=FailedCommitReleasesTheLease)
    with pytest.raises(pytest.fail.Exception, match="diverges"):
        replay_or_fail(failing_commit, broken)
