"""Shared fixtures: every store-level test runs against every backend."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from lashspec.kernel.clock import FakeProcessTable, ManualClock
from lashspec.kernel.memory import InMemoryStore
from lashspec.kernel.sqlite import SqliteStore
from lashspec.kernel.store import Store

BACKENDS = ("memory", "sqlite")


class StoreHarness:
    """A fresh store plus the clock and process table it was built with."""

    def __init__(self, backend: str, tmp_path: Path) -> None:
        self.backend = backend
        self.clock = ManualClock(10_000)
        self.processes = FakeProcessTable()
        self._tmp_path = tmp_path
        self._opened: list[Store] = []
        self.path = tmp_path / "store.sqlite"
        self.store = self.open()

    def open(self) -> Store:
        """A store handle; for sqlite every call opens a new handle on the same file."""
        store: Store
        if self.backend == "memory":
            if self._opened:
                return self._opened[0]
            store = InMemoryStore(clock=self.clock, liveness=self.processes)
        else:
            store = SqliteStore(self.path, clock=self.clock, liveness=self.processes)
        self._opened.append(store)
        return store

    def close(self) -> None:
        for store in self._opened:
            store.close()


@pytest.fixture(params=BACKENDS)
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreHarness]:
    h = StoreHarness(request.param, tmp_path)
    yield h
    h.close()


@pytest.fixture
def store(harness: StoreHarness) -> Store:
    return harness.store


StoreFactory = Callable[[], Store]
