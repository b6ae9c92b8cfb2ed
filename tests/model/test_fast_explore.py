"""The exploration engine: progress and memory cap, packed states, the C path, symmetry."""

from __future__ import annotations

import pytest
from lashspec.model.explore import (
    ExplorationError,
    MemoryCapExceededError,
    Progress,
    explore,
    parse_bytes,
)
from lashspec.model.kernel_model import Bounds, build_model

TINY = Bounds(
    owners=1,
    max_incarnation=0,
    batches=1,
    inputs=1,
    max_generation=1,
    max_claims_per_row=1,
    max_head_revision=0,
)


def test_progress_reports_states_rate_frontier_and_memory() -> None:
    reports: list[Progress] = []
    result = explore(build_model(TINY), progress=reports.append, progress_every=50)
    assert len(reports) >= 2
    last = reports[-1]
    assert last.discovered == result.state_count
    assert last.frontier == 0
    assert last.memory_bytes > 1 << 20
    assert all(r.frontier >= 0 for r in reports)
    assert [r.processed for r in reports] == sorted(r.processed for r in reports)
    assert "states" in last.describe() and "memory" in last.describe()


def test_time_based_progress_is_throttled() -> None:
    reports: list[Progress] = []
    explore(build_model(TINY), progress=reports.append, progress_interval=3600.0)
    assert len(reports) == 1  # only the final report: nothing was due within the hour


def test_memory_cap_stops_with_a_typed_error() -> None:
    with pytest.raises(MemoryCapExceededError, match="memory cap") as caught:
        explore(build_model(TINY), max_memory_bytes=1 << 20, progress_every=1)
    assert caught.value.rss_bytes > caught.value.cap_bytes == 1 << 20
    assert caught.value.processed >= 1


@pytest.mark.parametrize(
    ("text", "expected"), [("2G", 2 << 30), ("512M", 512 << 20), ("64KiB", 64 << 10), ("10", 10)]
)
def test_parse_bytes(text: str, expected: int) -> None:
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("text", ["", "x", "-1G", "0"])
def test_parse_bytes_rejects_nonsense(text: str) -> None:
    with pytest.raises(ExplorationError):
        parse_bytes(text)
