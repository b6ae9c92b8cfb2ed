"""Claim+commit cycles through SqliteStore against raw sqlite3 running the same statements.

    python bench/sqlite.py [--cycles 2000] [--rounds 3] [--dir DIR]

One cycle is what a runtime does per turn of queued work (as in ``bench/postgres.py``):
enqueue one batch, acquire the session lease, claim the batch, commit the checkpoint
completing the claim and releasing the lease: four store operations, each one durable
``BEGIN IMMEDIATE`` transaction.  One untimed run through a wrapped connection records every
statement and its parameters (the clock is manual, so every run sends the same ones); "raw
sqlite3" then replays exactly that list on a fresh store file with the same schema and
pragmas (WAL, ``synchronous = NORMAL``, as lash's SQLite store sets them) through a plain
``sqlite3`` connection, so the ratio is the cost of our Python layer (engine, codec, rows,
error mapping) over the same database work: the same transactions, statements and syncs.
The raw side is given every value ready-made (JSON bodies, tokens, the commit's checkpoint
hash), which an application on plain ``sqlite3`` would also have to compute, and the store
side includes building each call's request objects (about 8 % of its instructions).  Each
round uses new files in ``--dir`` (default: the system temporary directory); the output says
whether that is on disk or on tmpfs, since a commit's WAL writes cost more on a real disk.
Both sides are timed in every round, by wall clock and by this process's CPU time (less
disturbed by other jobs on a shared machine), and the best round of each is printed; the
last line is the wall-clock ratio.  All numbers come from this one run.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from lashspec.kernel.clock import FakeProcessTable, ManualClock
from lashspec.kernel.sqlite import SqliteStore
from store_cycle import RecordingConnection, Statement, cycle


def filesystem(path: Path) -> str:
    """The type of the filesystem holding ``path`` (from /proc/mounts), e.g. ext4 or tmpfs."""
    best, kind = "", "unknown"
    resolved = str(path.resolve())
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return kind
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = resolved == point or resolved.startswith(point.rstrip("/") + "/")
        if inside and len(point) > len(best):
            best, kind = point, fields[2]
    return kind


def record(folder: Path, cycles: int) -> list[Statement]:
    """The statements ``cycles`` cycles send through a new SqliteStore (untimed; the clock
    is manual, so every run sends exactly these)."""
    store = SqliteStore(folder / "recorded.sqlite", ManualClock(), FakeProcessTable())
    recorder = RecordingConnection(store._sqlite._connection)
    store._sqlite._connection = recorder  # type: ignore[assignment]
    try:
        for index in range(cycles):
            cycle(store, index)
    finally:
        store.close()
    return recorder.log


Timing = tuple[float, float]  # (wall-clock seconds, CPU seconds of this process)


def store_round(folder: Path, cycles: int) -> Timing:
    """Seconds for ``cycles`` cycles through a new SqliteStore."""
    store = SqliteStore(folder / "store.sqlite", ManualClock(), FakeProcessTable())
    try:
        started, cpu_started = time.perf_counter(), time.process_time()
        for index in range(cycles):
            cycle(store, index)
        return time.perf_counter() - started, time.process_time() - cpu_started
    finally:
        store.close()


def raw_round(folder: Path, statements: list[Statement]) -> Timing:
    """Seconds for ``statements`` on a new store file through a plain sqlite3 connection."""
    path = folder / "raw.sqlite"
    SqliteStore(path, ManualClock(), FakeProcessTable()).close()  # the same schema, WAL
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        connection.execute("PRAGMA busy_timeout = 30000")
        connection.execute("PRAGMA synchronous = NORMAL")
        execute = connection.execute
        started, cpu_started = time.perf_counter(), time.process_time()
        for sql, arguments in statements:
            execute(sql, *arguments).fetchall()
        elapsed = time.perf_counter() - started, time.process_time() - cpu_started
        left = connection.execute("SELECT count(*) FROM queued_batches").fetchone()
        assert left == (0,), f"the raw replay did not do the same work: {left} batches left"
    finally:
        connection.close()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()
    cycles, rounds = args.cycles, max(1, args.rounds)

    store_times: list[Timing] = []
    raw_times: list[Timing] = []
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="lashspec-bench-") as name:
        statements = record(Path(name), cycles)
        for number in range(rounds):
            folder = Path(name) / f"round-{number}"
            folder.mkdir()
            store_times.append(store_round(folder, cycles))
            raw_times.append(raw_round(folder, statements))
        kind = filesystem(Path(name))

    where = "tmpfs (memory)" if kind in ("tmpfs", "ramfs") else f"disk ({kind})"
    store_wall = min(wall for wall, _ in store_times)
    raw_wall = min(wall for wall, _ in raw_times)
    store_cpu = min(cpu for _, cpu in store_times)
    raw_cpu = min(cpu for _, cpu in raw_times)
    print(
        f"{cycles} cycles (enqueue, lease, claim, commit+release), best of {rounds} rounds, "
        f"database files in {args.dir}: {where}, WAL, synchronous=NORMAL, a new file per round"
    )
    transactions = sum(1 for sql, _ in statements if sql.startswith("BEGIN"))
    print(
        f"statements per cycle, on both sides: {len(statements) / cycles:.1f} "
        f"({transactions / cycles:.1f} write transactions)"
    )
    print(f"{'':18} {'cycles/s':>10} {'us/cycle':>9} {'CPU us/cycle':>13}")
    for label, wall, cpu in (
        ("sqlite store", store_wall, store_cpu),
        ("raw sqlite3", raw_wall, raw_cpu),
    ):
        print(
            f"{label:18} {cycles / wall:>10,.0f} {wall / cycles * 1e6:>9.1f} "
            f"{cpu / cycles * 1e6:>13.1f}"
        )
    print(f"by CPU time of this process: {store_cpu / raw_cpu:.2f}")
    print(f"sqlite store/raw sqlite3 cycle ratio: {store_wall / raw_wall:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
