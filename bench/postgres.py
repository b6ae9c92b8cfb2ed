"""Claim+commit cycles per second on PostgreSQL, against SQLite and against raw psycopg.

    python bench/postgres.py [--cycles 400] [--dsn DSN]

One cycle is what a runtime does per turn of queued work: enqueue one batch, acquire the
session lease, claim the batch, commit the checkpoint completing the claim and releasing
the lease (four store operations; the queue never holds more than one batch, so no cycle
pays for a long scan).  The server is ``--dsn``, else ``LASHSPEC_PG_DSN``, else a throwaway cluster
(``fsync`` off, unix socket).  "raw psycopg" replays, on a second schema in the same start
state, exactly the statements and parameters the PostgresStore run sent (transactions,
write lock and all), so the ratio is the cost of our Python layer (engine, codec, rows)
over the same database work.  All numbers come from this one run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from lashspec.kernel.clock import FakeProcessTable, ManualClock
from lashspec.kernel.sqlite import SqliteStore
from lashspec.kernel.store import Store
from store_cycle import RecordingConnection, cycle


def time_cycles(store: Store, cycles: int) -> float:
    started = time.perf_counter()
    for index in range(cycles):
        cycle(store, index)
    return cycles / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=400)
    parser.add_argument("--dsn", default=os.environ.get("LASHSPEC_PG_DSN"))
    args = parser.parse_args()
    try:
        import psycopg
        from lashspec.conformance.pgcluster import ThrowawayCluster
        from lashspec.kernel.postgres import PostgresStore
    except ImportError:
        print("needs psycopg: pip install 'lashspec[postgres]'", file=sys.stderr)
        return 2

    cluster = None if args.dsn else ThrowawayCluster().start()
    dsn = args.dsn or cluster.dsn()  # type: ignore[union-attr]
    cycles = args.cycles
    try:
        with tempfile.TemporaryDirectory() as folder:
            sqlite = SqliteStore(Path(folder) / "bench.sqlite", ManualClock(), FakeProcessTable())
            sqlite_rate = time_cycles(sqlite, cycles)
            sqlite.close()

        store = PostgresStore(dsn, ManualClock(), FakeProcessTable(), schema="lashspec_bench")
        store.erase_all_rows()
        recorder = RecordingConnection(store._postgres._connection)
        store._postgres._connection = recorder  # type: ignore[assignment]
        postgres_rate = time_cycles(store, cycles)
        statements = recorder.log
        store.close()

        # raw psycopg: the same statements on a second schema in the same start state
        raw_store = PostgresStore(dsn, ManualClock(), FakeProcessTable(), schema="lashspec_raw")
        raw_store.erase_all_rows()
        raw_store.close()
        swapped = [
            (query.replace('"lashspec_bench"', '"lashspec_raw"'), arguments)
            for query, arguments in statements
        ]
        swapped = [
            (query.replace("lashspec_bench.", "lashspec_raw."), arguments)
            for query, arguments in swapped
        ]
        # the write-lock key names the schema; take the raw schema's own
        with psycopg.connect(dsn, autocommit=True) as connection:
            oids: dict[str, int] = dict(
                connection.execute(
                    "SELECT nspname, oid::bigint FROM pg_namespace "
                    "WHERE nspname IN ('lashspec_bench', 'lashspec_raw')"
                ).fetchall()
            )
            swapped = [
                (query.replace(str(oids["lashspec_bench"]), str(oids["lashspec_raw"])), arguments)
                for query, arguments in swapped
            ]
            connection.execute("SET lock_timeout = 30000")
            started = time.perf_counter()
            for query, arguments in swapped:
                connection.execute(query, *arguments)
            raw_rate = cycles / (time.perf_counter() - started)
            left = connection.execute("SELECT count(*) FROM lashspec_raw.queued_batches").fetchone()
            assert left == (0,), f"the raw replay did not do the same work: {left} batches left"
            for schema in ("lashspec_bench", "lashspec_raw"):
                connection.execute(f"DROP SCHEMA {schema} CASCADE")
    finally:
        if cluster is not None:
            cluster.stop()

    per_cycle = len(statements) / cycles
    print(f"{cycles} cycles (enqueue, lease, claim, commit+release) per backend, one run")
    print(f"{'backend':22} {'cycles/s':>10} {'ms/cycle':>9}")
    for name, rate in (
        ("sqlite (file, WAL)", sqlite_rate),
        ("postgres (store)", postgres_rate),
        ("postgres (raw psycopg)", raw_rate),
    ):
        print(f"{name:22} {rate:>10.1f} {1000 / rate:>9.2f}")
    print(f"statements per cycle: {per_cycle:.1f} (round trips to the server)")
    print(f"postgres store / sqlite store: {postgres_rate / sqlite_rate:.2f}x")
    print(f"postgres store / raw psycopg:  {postgres_rate / raw_rate:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
