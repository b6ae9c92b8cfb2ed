"""Replay throughput on each backend and the edge cover's efficiency.

    python bench/replay.py [--dir FOLDER]

Generates the conformance suite once, then replays it on the in-memory and SQLite kernels
and prints actions per second (target: 50,000/s in memory), by wall clock and by the
process's CPU time (the second is less disturbed by other jobs on a shared machine), where
the wall-clock time goes (applying the actions against observing the state after each), and,
per profile, the cover's steps per goal; the last line is the in-memory rate's ratio to the
target. All numbers come from this one run. SQLite replay writes a database file per trace
under ``--dir`` (default: the temporary folder), and the report says whether that folder is
on disk or on tmpfs: a new file costs an fsync on a disk.
"""

from __future__ import annotations

import argparse
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
    from lashspec.conformance.generate import generate_suite
    from lashspec.conformance.replay import kernel_target, replay_all

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path(tempfile.gettempdir()),
        help="where SQLite replay writes its database files (default: %(default)s)",
    )
    args = parser.parse_args()

    started = time.perf_counter()
    suite = generate_suite()
    print(
        f"suite: {len(suite.traces)} traces, {suite.steps} steps, "
        f"generated in {time.perf_counter() - started:.1f}s"
    )
    print()
    print(f"{'profile':8} {'states':>8} {'goals':>7} {'steps':>7} {'steps/goal':>10}")
    for cover in suite.cover:
        print(
            f"{cover.profile:8} {cover.states:>8,} {cover.goals:>7,} {cover.steps:>7,} "
            f"{cover.steps_per_goal:>10.2f}"
        )
    print()
    print(
        f"{'backend':8} {'actions':>8} {'seconds':>8} {'actions/s':>10} "
        f"{'CPU s':>7} {'actions/CPU s':>13} {'apply s':>8} {'observe s':>9}"
    )
    memory_rate = 0.0
    scratch = tempfile.TemporaryDirectory(dir=args.dir, prefix="lashspec-bench-replay-")
    kind = filesystem(Path(scratch.name))
    where = "tmpfs (memory)" if kind in ("tmpfs", "ramfs") else f"disk ({kind})"
    for backend in ("memory", "sqlite"):
        started, cpu_started = time.perf_counter(), time.process_time()
        directory = Path(scratch.name) if backend == "sqlite" else None
        target = TimedTarget(kernel_target(backend, directory))
        report = replay_all(suite.traces, target)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        if not report.ok:
            print(report.report())
            return 1
        rate = report.actions / elapsed
        if backend == "memory":
            memory_rate = rate
        print(
            f"{backend:8} {report.actions:>8,} {elapsed:>8.2f} {rate:>10,.0f} "
            f"{cpu:>7.2f} {report.actions / cpu:>13,.0f} "
            f"{target.apply_seconds:>8.2f} {target.observe_seconds:>9.2f}"
        )
    scratch.cleanup()
    print(f"SQLite files: a new database per trace in {args.dir}, on {where}")
    print(
        f"memory replay/target ({TARGET_MEMORY_ACTIONS_PER_SECOND:,} actions/s): "
        f"{memory_rate / TARGET_MEMORY_ACTIONS_PER_SECOND:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
