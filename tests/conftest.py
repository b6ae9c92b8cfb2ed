"""Shared fixtures: every store-level test runs against every backend.

The ``postgres`` parameters need a server: ``LASHSPEC_PG_DSN`` when set, otherwise a
throwaway cluster started once per test session when PostgreSQL's server binaries are
installed (``lashspec.conformance.pgcluster``); without either they are skipped with the reason.
Each postgres test gets a schema of its own, emptied for reuse by a later test.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from lashspec.kernel.clock import FakeProcessTable, ManualClock
from lashspec.kernel.memory import InMemoryStore
from lashspec.kernel.sqlite import SqliteStore
from lashspec.kernel.store import Store

BACKENDS = ("memory", "sqlite", "postgres")
PG_DSN_VARIABLE = "LASHSPEC_PG_DSN"


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """A connection string to a PostgreSQL server the tests may create schemas on."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("postgres: psycopg is not installed (pip install 'lashspec[postgres]')")
    given = os.environ.get(PG_DSN_VARIABLE)
    if given:
        yield given
        return
    from lashspec.conformance.pgcluster import ThrowawayCluster, find_server_binaries

    if find_server_binaries() is None:
        pytest.skip(
            f"postgres: no server (install the postgresql package or set {PG_DSN_VARIABLE})"
        )
    cluster = ThrowawayCluster().start()
    try:
        yield cluster.dsn()
    finally:
        cluster.stop()


def fresh_schema_name() -> str:
    return f"lashspec_t_{uuid.uuid4().hex[:16]}"


def drop_schema(dsn: str, schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
        )


class SchemaPool:
    """Store schemas reused across tests: emptied after a test instead of dropped, because
    creating a schema's tables costs about ten times as much as deleting its rows."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._free: list[str] = []
        self._created: list[str] = []

    def take(self) -> str:
        if self._free:
            return self._free.pop()
        schema = fresh_schema_name()
        self._created.append(schema)
        return schema

    def give_back(self, schema: str) -> None:
        from lashspec.kernel.errors import StoreError
        from lashspec.kernel.postgres import PostgresStore

        try:
            store = PostgresStore(self.dsn, schema=schema, lock_timeout_ms=5_000)
        except StoreError:
            drop_schema(self.dsn, schema)  # a test broke it on purpose: never reuse it
            return
        try:
            store.erase_all_rows()
        finally:
            store.close()
        self._free.append(schema)

    def drop_all(self) -> None:
        for schema in self._created:
            drop_schema(self.dsn, schema)


@pytest.fixture(scope="session")
def postgres_schemas(postgres_dsn: str) -> Iterator[SchemaPool]:
    pool = SchemaPool(postgres_dsn)
    yield pool
    pool.drop_all()


class StoreHarness:
    """A fresh store plus the clock and process table it was built with."""

    def __init__(
        self, backend: str, tmp_path: Path, postgres_schemas: SchemaPool | None = None
    ) -> None:
        self.backend = backend
        self.clock = ManualClock(10_000)
        self.processes = FakeProcessTable()
        self._tmp_path = tmp_path
        self._opened: list[Store] = []
        self.path = tmp_path / "store.sqlite"
        self._schemas = postgres_schemas
        self.postgres_dsn = postgres_schemas.dsn if postgres_schemas is not None else None
        self.schema = postgres_schemas.take() if postgres_schemas is not None else ""
        self.store = self.open()

    def open(self) -> Store:
        """A store handle; for sqlite (postgres) every call opens a new handle on the same
        file (schema)."""
        store: Store
        if self.backend == "memory":
            if self._opened:
                return self._opened[0]
            store = InMemoryStore(clock=self.clock, liveness=self.processes)
        elif self.backend == "postgres":
            from lashspec.kernel.postgres import PostgresStore

            assert self.postgres_dsn is not None, "the postgres harness needs a server"
            store = PostgresStore(
                self.postgres_dsn, clock=self.clock, liveness=self.processes, schema=self.schema
            )
        else:
            store = SqliteStore(self.path, clock=self.clock, liveness=self.processes)
        self._opened.append(store)
        return store

    def close(self) -> None:
        for store in self._opened:
            store.close()
        if self._schemas is not None:
            self._schemas.give_back(self.schema)


@pytest.fixture(params=BACKENDS)
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreHarness]:
    schemas: Any = (
        request.getfixturevalue("postgres_schemas") if request.param == "postgres" else None
    )
    h = StoreHarness(request.param, tmp_path, schemas)
    yield h
    h.close()


@pytest.fixture
def store(harness: StoreHarness) -> Store:
    return harness.store


StoreFactory = Callable[[], Store]
