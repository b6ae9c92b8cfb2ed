"""Conformance replay on the PostgreSQL store: ``lashspec replay --backend postgres --dsn``.

The seed's scenario traces (store traces from the model) replay on PostgreSQL exactly as on
the in-memory store; every trace starts from an empty store although the replay reuses one
connection and one schema, and the replay leaves no schema behind on a server it does not own.
"""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from lashspec.conformance.cli import EXIT_OK, main
from lashspec.conformance.itf import Trace
from lashspec.conformance.modeltrace import ModelRunner, trace_of
from lashspec.conformance.replay import kernel_target, replay_all
from lashspec.conformance.seed_traces import SEED_SCENARIO_TRACES
from lashspec.model.profiles import SCENARIO_BOUNDS

from tests.conformance.test_hostile_inputs import write_traces

psycopg = pytest.importorskip("psycopg")


@pytest.fixture(scope="module")
def seed_traces() -> list[Trace]:
    runner = ModelRunner(SCENARIO_BOUNDS)
    return [
        trace_of(runner, [(a, dict(p)) for a, p in steps], f"scenario-{name}")
        for name, (_, steps) in sorted(SEED_SCENARIO_TRACES.items())
    ]


def _replay_schemas(dsn: str) -> set[str]:
    with psycopg.connect(dsn, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'lashspec_replay_%'"
        ).fetchall()
    return {str(row[0]) for row in rows}


def test_the_cli_replays_the_seed_scenarios_on_postgres(
    postgres_dsn: str, seed_traces: list[Trace], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_traces(seed_traces, tmp_path / "suite", index=True)
    before = _replay_schemas(postgres_dsn)
    status = main(
        ["-q", "replay", str(tmp_path / "suite"), "--backend", "postgres", "--dsn", postgres_dsn]
    )
    out, err = capsys.readouterr()
    assert status == EXIT_OK, out + err
    assert f"{len(seed_traces)} passed, 0 failed" in out
    gc.collect()  # the replay target is gone: its schema must be too
    assert _replay_schemas(postgres_dsn) == before


def test_every_trace_starts_from_an_empty_store(
    postgres_dsn: str, seed_traces: list[Trace]
) -> None:
    """Each trace twice in a row on one target: leftovers of the first run (a lease, a head,
    the enqueue counter) would make the second diverge."""
    doubled = [trace for trace in seed_traces for _ in range(2)]
    report = replay_all(doubled, kernel_target("postgres", dsn=postgres_dsn))
    failures = [r for r in report.results if not r.ok]
    assert len(report.results) == len(doubled) and failures == []
    memory = replay_all(seed_traces, kernel_target("memory"))
    assert [r.steps for r in memory.results] == [r.steps for r in report.results[::2]]


def test_scripted_machine_traces_replay_on_postgres(postgres_dsn: str) -> None:
    """The turn machine and its driver over the PostgreSQL store: the hand-checked machine
    scripts, recorded in memory, replay step for step."""
    from lashspec.conformance.machine_adapter import MachineAdapter

    from tests.conformance.test_machine_replay import SCRIPTS, record

    recorder = MachineAdapter()
    try:
        traces = [record(name, recorder) for name in sorted(SCRIPTS)]
    finally:
        recorder.close()
    report = replay_all(traces, kernel_target("postgres", dsn=postgres_dsn))
    assert report.ok, report.report()
    assert report.actions == sum(len(t.steps) - 1 for t in traces)
