"""Replay throughput on each backend and the edge cover's efficiency.

    python bench/replay.py

Generates the conformance suite once, then replays it on the in-memory and SQLite kernels
and prints actions per second (target: 50,000/s in memory), by wall clock and by the
process's CPU time (the second is less disturbed by other jobs on a shared machine), and,
per profile, the cover's steps per goal; the last line is the in-memory rate's ratio to the
target. All numbers come from this one run.
"""

from __future__ import annotations

import sys
import time

TARGET_MEMORY_ACTIONS_PER_SECOND = 50_000


def main() -> int:
    from lashspec.conformance.generate import generate_suite
    from lashspec.conformance.replay import kernel_target, replay_all

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
        f"{'CPU s':>7} {'actions/CPU s':>13}"
    )
    memory_rate = 0.0
    for backend in ("memory", "sqlite"):
        started, cpu_started = time.perf_counter(), time.process_time()
        report = replay_all(suite.traces, kernel_target(backend))
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
            f"{cpu:>7.2f} {report.actions / cpu:>13,.0f}"
        )
    print(
        f"memory replay/target ({TARGET_MEMORY_ACTIONS_PER_SECOND:,} actions/s): "
        f"{memory_rate / TARGET_MEMORY_ACTIONS_PER_SECOND:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
