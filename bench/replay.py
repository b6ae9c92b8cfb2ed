"""Replay throughput on each backend and the edge cover's efficiency.

    python bench/replay.py [--dir FOLDER]

Generates the conformance suite once, then replays it on the in-memory and SQLite kernels,
in one process and in ``--jobs`` worker processes (``replay_in_workers``, as ``lashspec
replay --jobs`` does), and prints actions per second (target: 50,000/s in memory), by wall
clock and, in one process, by the process's CPU time (less disturbed by other jobs on a
shared machine) and where the wall-clock time goes (applying the actions against observing
the state after each); then, per profile, the cover's steps per goal. The last lines are the
in-memory rates' ratios to the target. All numbers come from this one run. SQLite replay
writes a database file per trace under ``--dir`` (default: the temporary folder), and the
report says whether that folder is on disk or on tmpfs: a new file costs an fsync on a disk.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlite import filesystem

TARGET_MEMORY_ACTIONS_PER_SECOND = 50_000


class TimedTarget:
    """A replay target that adds up the wall-clock time of its apply and observe calls."""

    def __init__(self, target: Any) -> None:
        self._target = target
        self.apply_seconds = 0.0
        self.observe_seconds = 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)  # reset, reset_system, close

    def apply(self, action: str, picks: Mapping[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            return self._target.apply(action, picks)  # type: ignore[no-any-return]
        finally:
            self.apply_seconds += time.perf_counter() - started

    def observe(self) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            return self._target.observe()  # type: ignore[no-any-return]
        finally:
            self.observe_seconds += time.perf_counter() - started


def main() -> int:
    from lashspec.conformance.checking import default_jobs
    from lashspec.conformance.generate import generate_suite
    from lashspec.conformance.replay import (
        kernel_target,
        kernel_targets,
        replay_all,
        replay_in_workers,
    )

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path(tempfile.gettempdir()),
        help="where SQLite replay writes its database files (default: %(default)s)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=max(2, default_jobs()),
        help="worker processes for the second run on each backend (default: %(default)s)",
    )
    args = parser.parse_args()
    if args.jobs < 2:
        parser.error(
            f"--jobs must be at least 2 (the first run is the one-process one), not {args.jobs}"
        )

    started = time.perf_counter()
    suite = generate_suite(jobs=args.jobs)  # the same suite for any jobs
    print(
        f"suite: {len(suite.traces)} traces, {suite.steps} steps, "
        f"generated in {time.perf_counter() - started:.1f}s"
    )
    print()
    print(
        f"{'backend':8} {'processes':>9} {'actions':>8} {'seconds':>8} {'actions/s':>10} "
        f"{'CPU s':>7} {'actions/CPU s':>13} {'apply s':>8} {'observe s':>9}"
    )
    memory_rates: dict[int, float] = {}
    scratch = tempfile.TemporaryDirectory(dir=args.dir, prefix="lashspec-bench-replay-")
    kind = filesystem(Path(scratch.name))
    where = "tmpfs (memory)" if kind in ("tmpfs", "ramfs") else f"disk ({kind})"
    for backend in ("memory", "sqlite"):
        started, cpu_started = time.perf_counter(), time.process_time()
        directory = Path(scratch.name) / "one" if backend == "sqlite" else None
        if directory is not None:
            directory.mkdir()
        target = TimedTarget(kernel_target(backend, directory))
        report = replay_all(suite.traces, target)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        if not report.ok:
            print(report.report())
            return 1
        if backend == "memory":
            memory_rates[1] = report.actions / elapsed
        print(
            f"{backend:8} {1:>9} {report.actions:>8,} {elapsed:>8.2f} "
            f"{report.actions / elapsed:>10,.0f} {cpu:>7.2f} {report.actions / cpu:>13,.0f} "
            f"{target.apply_seconds:>8.2f} {target.observe_seconds:>9.2f}"
        )
        workers = Path(scratch.name) / "workers"
        workers.mkdir()
        with kernel_targets(backend, workers) as make_target:
            started = time.perf_counter()
            report = replay_in_workers(suite.traces, make_target, args.jobs)
            elapsed = time.perf_counter() - started
        if not report.ok:
            print(report.report())
            return 1
        if backend == "memory":
            memory_rates[args.jobs] = report.actions / elapsed
        print(
            f"{backend:8} {args.jobs:>9} {report.actions:>8,} {elapsed:>8.2f} "
            f"{report.actions / elapsed:>10,.0f}"
        )
        shutil.rmtree(workers)
    scratch.cleanup()
    print(f"SQLite files: a new database per trace in {args.dir}, on {where}")
    print()
    print(f"{'profile':8} {'states':>8} {'goals':>7} {'steps':>7} {'steps/goal':>10}")
    for cover in suite.cover:
        print(
            f"{cover.profile:8} {cover.states:>8,} {cover.goals:>7,} {cover.steps:>7,} "
            f"{cover.steps_per_goal:>10.2f}"
        )
    print()
    for processes, rate in memory_rates.items():
        label = "one process" if processes == 1 else f"{processes} processes"
        print(
            f"memory replay/target ({TARGET_MEMORY_ACTIONS_PER_SECOND:,} actions/s), {label}: "
            f"{rate / TARGET_MEMORY_ACTIONS_PER_SECOND:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
