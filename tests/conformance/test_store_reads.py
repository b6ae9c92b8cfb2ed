"""The adapter's read cross-check (conformance/store_reads.py): clean on our stores, and it
reports a store whose other read calls disagree with its inspection."""

from __future__ import annotations

from pathlib import Path

import pytest
from lashspec.conformance.itf import Trace
from lashspec.conformance.kernel_adapter import memory_store_factory
from lashspec.conformance.machine_adapter import KernelSystems
from lashspec.conformance.modeltrace import ModelRunner, trace_of
from lashspec.conformance.replay import replay_trace, sqlite_store_factory
from lashspec.conformance.seed_traces import SEED_SCENARIO_TRACES
from lashspec.conformance.store_reads import StoreReadsDisagree
from lashspec.kernel.clock import FakeProcessTable, ManualClock
from lashspec.kernel.memory import InMemoryStore
from lashspec.kernel.store import Store
from lashspec.kernel.types import PendingTurnInput
from lashspec.model.profiles import SCENARIO_BOUNDS


@pytest.fixture(scope="module")
def traces() -> list[Trace]:
    runner = ModelRunner(SCENARIO_BOUNDS)
    return [
        trace_of(runner, [(a, dict(p)) for a, p in steps], name)
        for name, (_, steps) in SEED_SCENARIO_TRACES.items()
    ]


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_the_seed_traces_replay_with_the_read_check(
    backend: str, tmp_path: Path, traces: list[Trace]
) -> None:
    factory = memory_store_factory if backend == "memory" else sqlite_store_factory(tmp_path)
    target = KernelSystems(factory, check_reads=True)
    try:
        for trace in traces:
            result = replay_trace(trace, target)
            assert result.divergence is None, (trace.trace_id, result.divergence.describe())
    finally:
        target.close()


class _ForeignSessionLeak(InMemoryStore):
    """Finds an input by id whatever session the caller names."""

    def get_pending_turn_input(self, session_id: str, input_id: str) -> PendingTurnInput | None:
        return super().get_pending_turn_input("session-0", input_id)


def _leaky(clock: ManualClock, processes: FakeProcessTable) -> Store:
    return _ForeignSessionLeak(clock=clock, liveness=processes)


def test_a_read_call_that_disagrees_fails_the_replay(traces: list[Trace]) -> None:
    target = KernelSystems(_leaky, check_reads=True)
    try:
        failures = []
        for trace in traces:
            try:
                replay_trace(trace, target)
            except StoreReadsDisagree as error:
                failures.append(str(error))
        assert failures and "get_pending_turn_input" in failures[0]
        target.check_reads = False  # the same store passes without the check
        for trace in traces:
            assert replay_trace(trace, target).divergence is None
    finally:
        target.close()
