"""Replay in worker processes (``replay_in_workers``, ``lashspec replay --jobs``) reports
exactly what replay in one process reports: every trace's result in trace order, the same
divergences, an adapter failure that stops only its worker, and a worker that raises or dies
as an error, never as a silently shorter report."""

from __future__ import annotations

import os
import shlex
import sys
import threading
import time
from pathlib import Path

import pytest
from lashspec.conformance import cli
from lashspec.conformance.broken_kernels import broken_memory_store_factory
from lashspec.conformance.cli import EXIT_OK, EXIT_USAGE, ProgressPrinter, main
from lashspec.conformance.itf import Trace, write_trace
from lashspec.conformance.kernel_adapter import KernelAdapter
from lashspec.conformance.modeltrace import ModelRunner, trace_of
from lashspec.conformance.protocol import AdapterClient, AdapterError
from lashspec.conformance.replay import (
    ReplayReport,
    ReplayTarget,
    ReplayWorkerError,
    TraceResult,
    kernel_targets,
    replay_all,
    replay_in_workers,
)
from lashspec.conformance.seed_traces import SEED_SCENARIO_TRACES
from lashspec.model.profiles import SCENARIO_BOUNDS

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="workers are forked; elsewhere replay runs in one process"
)
PYTHON = shlex.quote(sys.executable)
HANG_GUARD = 120  # seconds; only against a hang, never a speed assertion


@pytest.fixture(scope="module")
def traces() -> list[Trace]:
    runner = ModelRunner(SCENARIO_BOUNDS)
    return [
        trace_of(runner, [(a, dict(p)) for a, p in steps], f"scenario-{name}")
        for name, (_, steps) in sorted(SEED_SCENARIO_TRACES.items())
    ]


def summary(report: ReplayReport) -> list[tuple[str, int, str | None]]:
    return [
        (r.trace_id, r.steps, r.divergence.describe() if r.divergence else None)
        for r in report.results
    ]


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
@pytest.mark.parametrize("jobs", [2, 3])
def test_workers_report_what_one_process_reports(
    traces: list[Trace], backend: str, jobs: int, tmp_path: Path
) -> None:
    with kernel_targets(backend, tmp_path) as make_target:
        alone = replay_all(traces, make_target(99))
        spread = replay_in_workers(traces, make_target, jobs)
    assert alone.ok and spread.ok
    assert summary(spread) == summary(alone)
    assert [r.trace_id for r in spread.results] == [t.trace_id for t in traces]
    assert spread.workers == jobs and spread.actions == alone.actions > 0
    if backend == "sqlite":  # every worker wrote its own files, in its own folder
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            ["worker-99", *(f"worker-{k}" for k in range(jobs))]
        )


def test_divergences_come_back_from_the_workers_unchanged(traces: list[Trace]) -> None:
    def broken(worker: int) -> ReplayTarget:
        return KernelAdapter(broken_memory_store_factory("commit_keeps_lease"))

    alone = replay_all(traces, broken(0))
    spread = replay_in_workers(traces, broken, 2)
    assert sum(not r.ok for r in alone.results) == 5
    assert not spread.ok
    assert summary(spread) == summary(alone)
    assert spread.report() == alone.report()


def test_one_job_or_one_trace_replays_in_this_process(traces: list[Trace]) -> None:
    made: list[int] = []

    def target(worker: int) -> ReplayTarget:
        made.append(os.getpid())
        with kernel_targets("memory") as make_target:
            return make_target(worker)

    assert replay_in_workers(traces, target, 1).ok
    assert replay_in_workers(traces[:1], target, 4).ok
    assert made == [os.getpid(), os.getpid()]
    with pytest.raises(ValueError, match="jobs must be at least 1, not 0"):
        replay_in_workers(traces, target, 0)


def test_a_worker_that_raises_is_an_error_with_its_traceback(traces: list[Trace]) -> None:
    def failing(worker: int) -> ReplayTarget:
        if worker == 1:
            raise RuntimeError("no target for worker 1")
        with kernel_targets("memory") as make_target:
            return make_target(worker)

    with pytest.raises(ReplayWorkerError, match=r"(?s)replay worker 1 failed:.*no target for"):
        replay_in_workers(traces, failing, 2)


def test_a_worker_that_dies_is_an_error_not_a_shorter_report(traces: list[Trace]) -> None:
    def dying(worker: int) -> ReplayTarget:
        if worker == 0:
            os._exit(3)
        with kernel_targets("memory") as make_target:
            return make_target(worker)

    with pytest.raises(
        ReplayWorkerError, match=r"worker 0 ended without its results \(exit code 3\)"
    ):
        replay_in_workers(traces, dying, 2)


def test_an_adapter_that_will_not_start_is_an_adapter_error(traces: list[Trace]) -> None:
    def missing(worker: int) -> ReplayTarget:
        return AdapterClient("/nonexistent/adapter-program", timeout=HANG_GUARD)

    with pytest.raises(AdapterError):
        replay_in_workers(traces, missing, 2)


# An adapter that breaks the protocol on its second reset: the worker that meets it stops,
# the other worker's traces all run.
DYING_ADAPTER = """\
import sys
from lashspec.conformance.protocol import serve
from lashspec.conformance.replay import kernel_target


class DiesOnSecondReset:
    def __init__(self, target):
        self._target, self._resets = target, 0

    def __getattr__(self, name):
        return getattr(self._target, name)

    def reset_system(self, bounds, system):
        self._resets += 1
        if self._resets == 2 and {worker_check}:
            sys.stdout.write("not json\\n")
            sys.stdout.flush()
            sys.exit(0)
        self._target.reset_system(bounds, system)


serve(DiesOnSecondReset(kernel_target("memory")), "dying", sys.stdin, sys.stdout)
"""


def test_a_failing_adapter_stops_only_its_workers_traces(
    traces: list[Trace], tmp_path: Path
) -> None:
    marker = tmp_path / "died"
    script = tmp_path / "dying_adapter.py"
    # only the first adapter to get there dies: the other serves all its traces
    check = f"not __import__('os').path.exists({str(marker)!r}) and open({str(marker)!r}, 'x')"
    script.write_text(DYING_ADAPTER.format(worker_check=check))
    command = f"{PYTHON} {shlex.quote(str(script))}"

    def adapter(worker: int) -> ReplayTarget:
        return AdapterClient(command, timeout=HANG_GUARD)

    report = replay_in_workers(traces, adapter, 2)
    failed = [r for r in report.results if not r.ok]
    assert len(failed) == 1 and failed[0].adapter_failed
    worker_share = {0: len(traces[0::2]), 1: len(traces[1::2])}
    passed = len(report.results) - 1
    # the dying worker ran two traces (one passed, one failed): the rest of its share did not
    assert (passed + 1 + report.not_run) == len(traces)
    assert report.not_run in (worker_share[0] - 2, worker_share[1] - 2)
    assert "so the remaining traces of its worker process did not run" in report.report()


def test_results_keep_trace_order_when_workers_finish_out_of_order(traces: list[Trace]) -> None:
    # worker 0 is slowed down, so worker 1's results arrive first
    def target(worker: int) -> ReplayTarget:
        if worker == 0:
            threading.Event().wait(0.5)
        with kernel_targets("memory") as make_target:
            return make_target(worker)

    report = replay_in_workers(traces, target, 2)
    assert [r.trace_id for r in report.results] == [t.trace_id for t in traces]
    assert all(isinstance(r, TraceResult) and r.ok for r in report.results)


# -- the command line ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def suite(traces: list[Trace], tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("suite")
    for trace in traces:
        write_trace(trace, folder / f"{trace.trace_id}.itf.json")
    return folder


def test_replay_jobs_on_the_command_line(
    suite: Path, traces: list[Trace], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", str(suite), "--jobs", "2"]) == EXIT_OK
    out, err = capsys.readouterr()
    assert f"replay {len(traces)} traces on memory in 2 processes" in err
    assert out.strip() == f"{len(traces)} passed, 0 failed ({len(traces)} traces, " + (
        f"{sum(len(t.steps) - 1 for t in traces)} actions)"
    )
    assert main(["replay", str(suite), "--jobs", "2", "--kernel-variant", "commit_keeps_lease"])
    out, _ = capsys.readouterr()
    assert out.count("FAIL scenario-") == 5  # as in one process: 5 of the 9 scenarios
    assert out.splitlines()[-1].startswith(f"{len(traces) - 5} passed, 5 failed")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--jobs", "0"], "--jobs must be at least 1, not 0"),
        (["--jobs", "2", "--backend", "postgres"], "PostgreSQL replays in one process"),
        (["--jobs", "two"], "expected a whole number, got 'two'"),
    ],
)
def test_bad_jobs_are_refused_in_one_line(
    suite: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) if argv[1] == "two" else _no_exit():
        status = main(["replay", str(suite), *argv])
        assert status == EXIT_USAGE
    assert message in capsys.readouterr().err


class _no_exit:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *_: object) -> None:
        return None


def test_a_printers_lock_is_held_across_a_fork_and_given_back() -> None:
    with ProgressPrinter(sink=lambda line: None, heartbeat=0) as printer:
        cli._take_printer_locks()
        try:
            assert printer._lock.locked()
        finally:
            cli._give_printer_locks_back()
        assert not printer._lock.locked()


def test_a_fork_waits_for_the_heartbeat_line_being_printed() -> None:
    # A child forked half-way through a line would inherit stderr's lock held by a thread it
    # does not have, and hang when it flushes stderr at exit.
    printing, finished = threading.Event(), []

    def slow_sink(line: str) -> None:
        printing.set()
        threading.Event().wait(0.3)
        finished.append(time.monotonic())

    with ProgressPrinter(sink=slow_sink, heartbeat=0.05):
        assert printing.wait(HANG_GUARD)
        pid = os.fork()
        if pid == 0:  # the child: nothing to do
            os._exit(0)
        forked = time.monotonic()
        os.waitpid(pid, 0)
    assert finished and finished[0] <= forked


def test_workers_read_their_own_files_and_report_as_one_process_does(
    suite: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", str(suite), "--jobs", "1"]) == EXIT_OK
    alone = capsys.readouterr().out
    assert main(["replay", str(suite), "--jobs", "2"]) == EXIT_OK
    out, err = capsys.readouterr()
    assert out == alone
    assert "loading 9 trace files in 2 processes" in err


@pytest.mark.parametrize("bad_files", [(3,), (6, 3), (2, 7)])
def test_the_first_unreadable_file_is_named_whichever_worker_reads_it(
    suite: Path, tmp_path: Path, bad_files: tuple[int, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "suite"
    copy.mkdir()
    files = sorted(suite.glob("*.itf.json"))
    for number, path in enumerate(files):
        text = path.read_text()
        (copy / path.name).write_text(text[:-40] if number in bad_files else text)
    messages = []
    for jobs in ("1", "2", "3"):
        assert main(["replay", str(copy), "--jobs", jobs]) == EXIT_USAGE
        out, err = capsys.readouterr()
        assert out == ""
        messages.append(err.strip().splitlines()[-1])
    first_bad = files[min(bad_files)].name
    assert messages[0].startswith("lashspec: error: malformed trace:") and first_bad in messages[0]
    assert messages[1] == messages[0] and messages[2] == messages[0]


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_a_check_replay_stage_in_workers_reports_what_one_process_does(
    traces: list[Trace], backend: str
) -> None:
    from lashspec.conformance.checking import _replay_stage

    lines: list[str] = []
    alone = _replay_stage(traces, backend, lines.append)
    spread = _replay_stage(traces, backend, lines.append, jobs=2)
    assert (spread.name, spread.ok, spread.detail) == (alone.name, alone.ok, alone.detail)
    assert spread.data["actions"] == alone.data["actions"] > 0
    # the workers' CPU time is the stage's too (this process only waits for them)
    assert spread.data["cpu_seconds"] >= 0.5 * alone.data["cpu_seconds"] > 0
    assert f"replay {len(traces)} traces on {backend} in 2 processes" in lines
