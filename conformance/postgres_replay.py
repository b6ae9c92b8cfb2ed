"""Replaying traces on the PostgreSQL store: one connection and one schema for a whole replay.

A schema (or a database) per trace would cost a table creation per trace, so every trace
gets a :class:`~lashspec.kernel.postgres.PostgresStore` on the same borrowed connection and
schema, emptied first (:meth:`~lashspec.kernel.postgres.PostgresStore.erase_all_rows`).  The
server is the given connection string, else ``LASHSPEC_PG_DSN``, else a throwaway cluster
when PostgreSQL's server binaries are installed.  Everything is released when the replay
target is garbage collected or the interpreter exits.
"""

from __future__ import annotations

import contextlib
import os
import uuid
import weakref
from typing import Any

from ..kernel.clock import FakeProcessTable, ManualClock
from ..kernel.store import Store

PG_DSN_VARIABLE = "LASHSPEC_PG_DSN"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server to replay on, or no psycopg to reach one."""


class PostgresReplayStores:
    """A store factory for :class:`~lashspec.conformance.kernel_adapter.KernelAdapter`."""

    def __init__(self, dsn: str | None = None) -> None:
        try:
            import psycopg
        except ImportError:
            raise PostgresUnavailable(
                "the postgres backend needs psycopg: pip install 'lashspec[postgres]'"
            ) from None
        from ..kernel.postgres import describe_server, server_error
        from .pgcluster import ClusterError, ThrowawayCluster, find_server_binaries

        self._cluster: Any = None
        given = dsn or os.environ.get(PG_DSN_VARIABLE)
        if not given:
            if find_server_binaries() is None:
                raise PostgresUnavailable(
                    f"no PostgreSQL server: pass --dsn, set {PG_DSN_VARIABLE}, or install the "
                    "postgresql package so a throwaway server can be started"
                )
            try:
                self._cluster = ThrowawayCluster().start()
            except ClusterError as error:
                raise PostgresUnavailable(
                    f"cannot start a throwaway PostgreSQL server: {error}"
                ) from None
            given = self._cluster.dsn()
        self.dsn = given
        self.schema = f"lashspec_replay_{uuid.uuid4().hex[:12]}"
        try:
            self._connection = psycopg.connect(given, autocommit=True, application_name="lashspec")
        except psycopg.Error as error:
            if self._cluster is not None:
                self._cluster.stop()
            reason = server_error(describe_server(given, self.schema), error, "connecting")
            raise PostgresUnavailable(str(reason)) from None

    def __call__(self, clock: ManualClock, processes: FakeProcessTable) -> Store:
        from ..kernel.postgres import PostgresStore

        store = PostgresStore(
            clock=clock, liveness=processes, schema=self.schema, connection=self._connection
        )
        store.erase_all_rows()
        return store

    def release(self) -> None:
        """Drop the replay schema, close the connection and stop a throwaway server; best
        effort (it may run at exit, after the server went away)."""
        import psycopg
        from psycopg import sql

        with contextlib.suppress(psycopg.Error):
            if not self._connection.closed:
                if self._cluster is None:  # a server we do not own: leave nothing behind
                    name = sql.Identifier(self.schema)
                    self._connection.execute(
                        sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(name)
                    )
                self._connection.close()
        if self._cluster is not None:
            self._cluster.stop()


def release_with(owner: object, stores: PostgresReplayStores) -> None:
    """Release ``stores`` once ``owner`` (the replay target) is gone, or at exit."""
    weakref.finalize(owner, stores.release)
