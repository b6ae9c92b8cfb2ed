"""Replay ITF traces against an implementation and report the first divergence.

An implementation is anything with the :class:`ReplayTarget` shape: our kernel through
:class:`~lashspec.conformance.kernel_adapter.KernelAdapter` (memory or SQLite), or a port in
another language through :class:`~lashspec.conformance.protocol.AdapterClient`.  Each step
applies the trace's action with its picks and compares the outcome record and then every
state variable with the trace; the first difference stops the replay.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
import traceback
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ..kernel.clock import FakeProcessTable, ManualClock
from ..kernel.sqlite import SqliteStore
from ..kernel.store import Store
from .forked import can_fork, exit_code, forked_workers
from .itf import Trace, collector_paused, normalise_outcome, normalise_state
from .kernel_adapter import BadActionParams, KernelAdapter, UnknownAction, memory_store_factory
from .machine_adapter import KernelSystems, UnsupportedSystem, trace_system
from .protocol import AdapterError, AdapterRefused

#: How often loading trace files reports how far it got, in seconds.
LOAD_PROGRESS_SECONDS = 2.0


class ReplayTarget(Protocol):
    def reset(self, bounds: Mapping[str, int]) -> None: ...
    def apply(self, action: str, picks: Mapping[str, Any]) -> dict[str, Any]: ...
    def observe(self) -> dict[str, Any]: ...
    def close(self) -> None: ...


@runtime_checkable
class SystemSelectingTarget(Protocol):
    """A target serving more than one system (docs/machine-traces.md): replay resets it with
    the trace's ``#meta.lashspec.system``; other targets get a plain ``reset``."""

    def reset_system(self, bounds: Mapping[str, int], system: str) -> None: ...


@dataclass(frozen=True)
class Divergence:
    step: int
    action: str
    picks: Mapping[str, Any]
    field: str  # "outcome", a state variable name, "error", or ADAPTER_FAILED
    expected: Any
    actual: Any

    def where(self) -> str:
        """``step 5 commit(defer=False, o=0, release=True)``."""
        picks = ", ".join(f"{k}={v!r}" for k, v in sorted(self.picks.items()))
        return f"step {self.step} {self.action}({picks})"

    def describe(self) -> str:
        if self.field == ADAPTER_FAILED:
            return f"{self.where()}: adapter failed: {self.actual}"
        return (
            f"{self.where()}: {self.field} differs\n"
            f"  expected: {_show(self.expected)}\n"
            f"  actual:   {_show(self.actual)}"
        )


def _show(value: Any) -> str:
    if isinstance(value, frozenset):
        return "{" + ", ".join(repr(v) for v in sorted(value)) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_show(v)}" for k, v in sorted(value.items())) + "}"
    return repr(value)


#: The :attr:`Divergence.field` of a trace ended by a protocol failure of the adapter.
ADAPTER_FAILED = "adapter"


@dataclass
class TraceResult:
    trace_id: str
    steps: int
    divergence: Divergence | None = None
    source: str | None = None  # the trace's file, when it was read from one
    outcomes_checked: bool = True  # False for states-only traces (Quint specs without outcome)

    @property
    def ok(self) -> bool:
        return self.divergence is None

    @property
    def adapter_failed(self) -> bool:
        """The adapter broke the protocol during this trace: no later trace can run."""
        return self.divergence is not None and self.divergence.field == ADAPTER_FAILED


@dataclass
class ReplayReport:
    results: list[TraceResult] = field(default_factory=list)
    not_run: int = 0  # traces left unreplayed because the adapter failed
    workers: int = 1  # processes that replayed the traces (replay_in_workers)

    @property
    def ok(self) -> bool:
        return self.not_run == 0 and all(r.ok for r in self.results)

    @property
    def actions(self) -> int:
        return sum(r.steps for r in self.results)

    def report(self) -> str:
        lines = []
        for result in self.results:
            if result.divergence is not None:
                lines.append(f"FAIL {result.trace_id}\n{result.divergence.describe()}")
        passed = sum(r.ok for r in self.results)
        summary = f"{passed} passed, {len(self.results) - passed} failed"
        if self.not_run:
            summary += f", {self.not_run} not run"
        summary += f" ({len(self.results) + self.not_run} traces, {self.actions} actions)"
        unchecked = sum(not r.outcomes_checked for r in self.results)
        if unchecked:
            summary += f"; outcomes not checked in {unchecked} states-only traces"
        stopped = next((r for r in self.results if r.adapter_failed), None)
        if stopped is not None and stopped.divergence is not None:
            source = f" ({stopped.source})" if stopped.source else ""
            summary += (
                f"; the adapter failed in trace {stopped.trace_id}{source} at "
                f"{stopped.divergence.where()}, so the remaining traces "
                + ("of its worker process " if self.workers > 1 else "")
                + "did not run"
            )
        lines.append(summary)
        return "\n".join(lines)


def _diff_states(
    expected: Mapping[str, Any], actual: Mapping[str, Any]
) -> tuple[str, Any, Any] | None:
    for name in sorted(expected):
        if name not in actual:
            return name, expected[name], "<missing>"
        if expected[name] != actual[name]:
            return name, expected[name], actual[name]
    return None


def _state_difference(
    expected: Mapping[str, Any], actual: Mapping[str, Any]
) -> tuple[str, Any, Any] | None:
    # Equal as given is the common case; only a difference needs the shapes normalised
    # (a list of rows and a set of the same rows are the same value).
    if expected == actual:
        return None
    return _diff_states(normalise_state(expected), normalise_state(actual))


def replay_trace(trace: Trace, target: ReplayTarget) -> TraceResult:
    bounds = dict(trace.meta.get("bounds", {}))
    system = trace_system(trace.meta)
    try:
        # isinstance(target, SystemSelectingTarget), without the protocol machinery's cost
        # per trace: a runtime-checkable protocol checks the attribute is there, not None.
        reset_system = getattr(target, "reset_system", None)
        if reset_system is not None:
            reset_system(bounds, system)
        else:
            target.reset(bounds)
    except (UnsupportedSystem, AdapterRefused) as error:
        refused = Divergence(
            0, "reset", {"system": system}, "error", f"a {system} target", str(error)
        )
        return TraceResult(trace.trace_id, 0, refused)
    steps = trace.steps
    initial = _state_difference(steps[0].state, target.observe())
    if initial is not None:
        name, expected, actual = initial
        return TraceResult(trace.trace_id, 0, Divergence(0, "init", {}, name, expected, actual))
    for index, step in enumerate(steps[1:], start=1):
        try:
            outcome = target.apply(step.action, step.picks)
        except (UnknownAction, BadActionParams, AdapterRefused) as error:
            return TraceResult(
                trace.trace_id,
                index,
                Divergence(index, step.action, step.picks, "error", step.outcome, str(error)),
            )
        # A states-only trace (a Quint spec without an outcome variable) has no outcome.
        if (
            step.outcome
            and outcome != step.outcome
            and normalise_outcome(outcome) != normalise_outcome(step.outcome)
        ):
            expected_outcome = normalise_outcome(step.outcome)
            return TraceResult(
                trace.trace_id,
                index,
                Divergence(index, step.action, step.picks, "outcome", expected_outcome, outcome),
            )
        diff = _state_difference(step.state, target.observe())
        if diff is not None:
            name, expected, actual = diff
            return TraceResult(
                trace.trace_id,
                index,
                Divergence(index, step.action, step.picks, name, expected, actual),
            )
    return TraceResult(
        trace.trace_id, len(steps) - 1, outcomes_checked=trace.meta.get("outcomes_checked", True)
    )


def sqlite_store_factory(directory: Path) -> Any:
    counter = iter(range(1_000_000_000))

    def factory(clock: ManualClock, processes: FakeProcessTable) -> Store:
        return SqliteStore(
            directory / f"replay-{next(counter)}.sqlite", clock=clock, liveness=processes
        )

    return factory


def kernel_target(
    backend: str, directory: Path | None = None, dsn: str | None = None
) -> KernelAdapter:
    """Our kernel on ``backend``, serving store traces and machine traces alike; ``dsn``
    names the PostgreSQL server for ``postgres`` (see :mod:`.postgres_replay`)."""
    if backend == "memory":
        return KernelSystems(memory_store_factory)
    if backend == "sqlite":
        if directory is not None:
            return KernelSystems(sqlite_store_factory(directory))
        # A database file per trace in a scratch folder that goes with the target.
        folder = Path(tempfile.mkdtemp(prefix="lashspec-replay-"))
        target = KernelSystems(sqlite_store_factory(folder))
        weakref.finalize(target, shutil.rmtree, folder, ignore_errors=True)
        return target
    if backend == "postgres":
        from .postgres_replay import PostgresReplayStores, release_with

        stores = PostgresReplayStores(dsn)
        target = KernelSystems(stores)
        release_with(target, stores)
        return target
    raise ValueError(f"unknown backend {backend!r}; expected memory, sqlite or postgres")


def replay_all(
    traces: Sequence[Trace],
    target: ReplayTarget,
    progress: Callable[[str], None] | None = None,
    every: int = 200,
) -> ReplayReport:
    """Replay every trace against ``target`` (closed at the end), reporting progress."""
    report = ReplayReport()
    try:
        for number, trace in enumerate(traces, start=1):
            if progress is not None and number % every == 0:
                failed = sum(not r.ok for r in report.results)
                progress(f"replayed {number}/{len(traces)} traces, {failed} failed")
            result = replay_trace_until_failure(trace, target)
            report.results.append(result)
            if result.adapter_failed:
                # The implementation stopped answering: later traces cannot run either.
                report.not_run = len(traces) - number
                break
    finally:
        with contextlib.suppress(AdapterError):
            target.close()
    return report


class _StepTracker:
    """A target wrapper for one trace that remembers which step is being replayed.

    A new tracker starts at step 0 (``init``: reset and the first observe); apply number k is
    step k. Anything else (e.g. a system-selecting reset) passes through to the target.
    """

    def __init__(self, target: ReplayTarget) -> None:
        self._target = target
        self.step = 0
        self.action = "init"
        self.picks: Mapping[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)

    def reset(self, bounds: Mapping[str, int]) -> None:
        self._target.reset(bounds)

    def apply(self, action: str, picks: Mapping[str, Any]) -> dict[str, Any]:
        self.step, self.action, self.picks = self.step + 1, action, picks
        return self._target.apply(action, picks)

    def observe(self) -> dict[str, Any]:
        return self._target.observe()

    def close(self) -> None:
        self._target.close()


def replay_trace_until_failure(trace: Trace, target: ReplayTarget) -> TraceResult:
    """:func:`replay_trace`, with a protocol failure of the adapter reported as the trace's
    result (field :data:`ADAPTER_FAILED`, at the step where it happened) instead of raised."""
    tracker = _StepTracker(target)
    try:
        result = replay_trace(trace, tracker)
    except AdapterError as error:
        failure = Divergence(
            tracker.step,
            tracker.action,
            tracker.picks,
            ADAPTER_FAILED,
            "a protocol reply",
            str(error),
        )
        result = TraceResult(trace.trace_id, tracker.step, failure)
    result.source = trace.source
    return result


# ---------------------------------------------------------------------------
# Replay in worker processes
# ---------------------------------------------------------------------------

TargetMaker = Callable[[int], ReplayTarget]
"""Makes worker ``k``'s own target (called in that worker): two workers never share a store,
a database file or an adapter process."""


@dataclass(frozen=True)
class TraceFiles:
    """Trace files that the workers read themselves, each its own share, so that reading
    (most of the time of a replay in memory) is spread over the workers too.  ``load`` reads
    one file; whatever it raises is the file's error."""

    paths: Sequence[Path]
    load: Callable[[Path], Trace]

    def __len__(self) -> int:
        return len(self.paths)


class TraceLoadError(Exception):
    """A worker could not read a trace file; the message is what the loader raised, for the
    first such file in the given order (the one a reading in one process stops at)."""


class ReplayWorkerError(RuntimeError):
    """A replay worker process raised or died; the message holds what it reported."""


@contextlib.contextmanager
def kernel_targets(backend: str, directory: Path | None = None) -> Iterator[TargetMaker]:
    """Makers of our kernel on ``backend`` for :func:`replay_in_workers`: memory, or sqlite
    with worker k's database files in ``directory/worker-k`` (default: a scratch folder that
    goes when the block ends). PostgreSQL replays in one process (postgres_replay.py)."""
    if backend == "memory":
        yield lambda worker: kernel_target("memory")
        return
    if backend != "sqlite":
        raise ValueError(f"replay in workers runs on memory or sqlite, not {backend!r}")
    with contextlib.ExitStack() as stack:
        if directory is None:
            scratch = tempfile.TemporaryDirectory(prefix="lashspec-replay-")
            directory = Path(stack.enter_context(scratch))

        def sqlite_target(worker: int) -> ReplayTarget:
            folder = directory / f"worker-{worker}"
            folder.mkdir(parents=True, exist_ok=True)
            return kernel_target("sqlite", folder)

        yield sqlite_target


def can_replay_in_workers() -> bool:
    """Workers are forked, so that they start at once with the traces (or the loader)
    already there: a spawned worker would import the package and unpickle its traces, which
    takes longer than replaying them. Where the platform cannot fork, replay runs here."""
    return can_fork()


def replay_in_workers(
    traces: Sequence[Trace] | TraceFiles,
    make_target: TargetMaker,
    jobs: int,
    progress: Callable[[str], None] | None = None,
    every: int = 200,
) -> ReplayReport:
    """:func:`replay_all` spread over ``jobs`` forked processes, each replaying every
    ``jobs``-th trace against its own target; the report lists results in trace order.

    Given :class:`TraceFiles`, every worker first reads its share; if any file cannot be
    read, nothing is replayed and :class:`TraceLoadError` names the first such file.
    A port's adapter that fails stops only its own worker's traces (they count as not run).
    Checkpoint references are compared across the traces of each worker (checkpoints.py),
    not across workers. Call it from a process whose other threads, if any, hold no lock the
    workers need: the CLI's progress printer takes care of its own (cli.py).
    """
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, not {jobs}")
    jobs = min(jobs, len(traces))
    if jobs <= 1 or not can_replay_in_workers():
        return replay_all(_read_all(traces), make_target(0), progress, every)
    every_in_worker = max(1, every // jobs)  # so that the sum crosses each multiple of every

    def arguments(worker: int, parent: Connection) -> tuple[Any, ...]:
        shard = range(worker, len(traces), jobs)
        return (traces, shard, make_target, worker, parent, every_in_worker)

    with forked_workers(jobs, _replay_worker, arguments) as (workers, connections):
        if isinstance(traces, TraceFiles):
            _await_reading(traces, workers, connections, progress)
        for connection in connections:
            connection.send("replay")
        return _gather(len(traces), workers, connections, progress, every)


def _read_all(traces: Sequence[Trace] | TraceFiles) -> Sequence[Trace]:
    """The traces, read in this process when they are files."""
    if not isinstance(traces, TraceFiles):
        return traces
    with collector_paused():
        read = []
        for path in traces.paths:
            try:
                read.append(traces.load(path))
            except Exception as error:
                raise TraceLoadError(str(error)) from error
    return read


def _receive(worker: int, workers: Sequence[Any], connection: Connection) -> Any:
    """The worker's next message; an error if it raised or died."""
    try:
        message = connection.recv()
    except EOFError:
        code = exit_code(workers[worker])
        raise ReplayWorkerError(
            f"replay worker {worker} ended without its results (exit code {code})"
        ) from None
    if message[0] == "adapter":  # the port's adapter would not start: as in one process
        raise AdapterError(message[1])
    if message[0] == "error":
        raise ReplayWorkerError(f"replay worker {worker} failed:\n{message[1]}")
    return message


def _await_reading(
    files: TraceFiles,
    workers: Sequence[Any],
    connections: Sequence[Connection],
    progress: Callable[[str], None] | None,
) -> None:
    """Wait until every worker has read its files; the first unreadable file is an error."""
    if progress is not None:
        progress(f"loading {len(files)} trace files in {len(workers)} processes")
    read = [0] * len(workers)
    failures: list[tuple[int, str]] = []
    waiting = dict(enumerate(connections))
    last_report = time.perf_counter()
    while waiting:
        ready = wait(list(waiting.values()))
        for worker, connection in list(waiting.items()):
            if connection in ready:
                message = _receive(worker, workers, connection)
                if message[0] == "reading":
                    read[worker] = message[1]
                    continue
                del waiting[worker]
                if message[0] == "unreadable":
                    failures.append((message[1], message[2]))
        if progress is not None and time.perf_counter() - last_report >= LOAD_PROGRESS_SECONDS:
            last_report = time.perf_counter()
            progress(f"loaded {sum(read)}/{len(files)} trace files")
    if failures:
        raise TraceLoadError(min(failures)[1])


def _gather(
    count: int,
    workers: Sequence[Any],
    connections: Sequence[Connection],
    progress: Callable[[str], None] | None,
    every: int,
) -> ReplayReport:
    """Collect the workers' messages until each has sent its results."""
    done = [0] * len(workers)
    failed = [0] * len(workers)
    reported = 0
    indexed: list[tuple[int, TraceResult]] = []
    report = ReplayReport(workers=len(workers))
    waiting = dict(enumerate(connections))
    while waiting:
        ready = wait(list(waiting.values()))
        for worker, connection in list(waiting.items()):
            if connection not in ready:
                continue
            message = _receive(worker, workers, connection)
            if message[0] == "progress":
                done[worker], failed[worker] = message[1], message[2]
            else:  # "results"
                indexed.extend(message[1])
                report.not_run += message[2]
                del waiting[worker]
        total = sum(done)
        if progress is not None and total // every > reported // every:
            progress(f"replayed {total}/{count} traces, {sum(failed)} failed")
        reported = total
    indexed.sort(key=lambda pair: pair[0])
    report.results = [result for _, result in indexed]
    return report


#: How often a worker reading files says how far it got, in files.
READING_REPORT_EVERY = 50


def _replay_worker(
    traces: Sequence[Trace] | TraceFiles,
    indexes: range,
    make_target: TargetMaker,
    worker: int,
    parent: Connection,
    every: int,
) -> None:  # pragma: no cover - runs in a forked process (its results are tested)
    try:
        share: dict[int, Trace] = {}
        if isinstance(traces, TraceFiles):
            with collector_paused():
                for number, index in enumerate(indexes, start=1):
                    try:
                        share[index] = traces.load(traces.paths[index])
                    except Exception as error:
                        parent.send(("unreadable", index, str(error)))
                        return
                    if number % READING_REPORT_EVERY == 0:
                        parent.send(("reading", number))
            parent.send(("read", len(share)))
        else:
            share = {index: traces[index] for index in indexes}
        if parent.recv() != "replay":
            return
        replayed: list[tuple[int, TraceResult]] = []
        not_run = failed = 0
        target = make_target(worker)
        try:
            for number, index in enumerate(indexes, start=1):
                result = replay_trace_until_failure(share[index], target)
                replayed.append((index, result))
                failed += not result.ok
                if number % every == 0:
                    parent.send(("progress", number, failed))
                if result.adapter_failed:
                    not_run = len(indexes) - number
                    break
        finally:
            with contextlib.suppress(AdapterError):
                target.close()
        parent.send(("progress", len(replayed), failed))
        parent.send(("results", replayed, not_run))
    except AdapterError as error:  # only make_target raises it: replay reports the rest
        parent.send(("adapter", str(error)))
    except BaseException:  # everything reaches the parent, which raises ReplayWorkerError
        parent.send(("error", traceback.format_exc()))
    finally:
        parent.close()
