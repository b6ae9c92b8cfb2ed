"""Work in forked processes (``forked.forked_map``) returns what a loop in one process
returns, in order, and suite generation in workers writes the very same suite."""

from __future__ import annotations

import os
import sys

import pytest
from lashspec.conformance.forked import WorkerError, forked_map
from lashspec.conformance.generate import generate_suite
from lashspec.conformance.itf import dumps_canonical, trace_to_json
from lashspec.model.profiles import PROFILES

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="workers are forked")


def square(index: int, report: object) -> tuple[int, int]:
    assert callable(report)
    report(f"piece {index}")
    return index * index, os.getpid()


def test_results_come_back_in_order_with_their_progress() -> None:
    lines: list[str] = []
    results = forked_map(square, 7, 3, lines.append)
    assert [value for value, _ in results] == [i * i for i in range(7)]
    assert all(pid != os.getpid() for _, pid in results)  # computed in the workers
    assert sorted(lines) == sorted(f"piece {i}" for i in range(7))


def test_one_job_computes_here() -> None:
    results = forked_map(square, 3, 1, lambda line: None)
    assert results == [(0, os.getpid()), (1, os.getpid()), (4, os.getpid())]
    assert forked_map(square, 1, 4, lambda line: None) == [(0, os.getpid())]
    with pytest.raises(ValueError, match="jobs must be at least 1, not 0"):
        forked_map(square, 3, 0, lambda line: None)


def test_a_piece_that_raises_is_a_worker_error() -> None:
    def failing(index: int, report: object) -> int:
        if index == 4:
            raise KeyError("piece four")
        return index

    with pytest.raises(WorkerError, match=r"(?s)failed:.*KeyError: 'piece four'"):
        forked_map(failing, 6, 2, lambda line: None)


def test_a_worker_that_dies_is_a_worker_error() -> None:
    def dying(index: int, report: object) -> int:
        if index == 2:
            os._exit(5)
        return index

    with pytest.raises(WorkerError, match=r"ended before its work was done \(exit code 5\)"):
        forked_map(dying, 6, 2, lambda line: None)


def test_suite_generation_in_workers_writes_the_same_suite() -> None:
    small = tuple(p for p in PROFILES if p.name in ("join-run", "active-inputs", "limit-run"))
    assert len(small) == 3

    def suite(jobs: int) -> list[str]:
        generated = generate_suite(
            small, witnesses=False, scenarios=False, promoted=False, jobs=jobs
        )
        return [dumps_canonical(trace_to_json(t)) for t in generated.traces] + [
            repr(generated.cover),
            repr(generated.boundaries),
        ]

    alone = suite(1)
    assert len(alone) > 5
    assert suite(2) == alone
    assert suite(3) == alone
