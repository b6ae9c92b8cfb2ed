"""The SQLite store under real faults: each is created for real and must be reported by its
cause, with advice that does not destroy data.

Only a genuine schema-version mismatch may suggest recreating the store; a read-only file, a
lock held too long, another application's database, a text file, a corrupt page and a full
disk each raise a typed :class:`StoreFileError` naming the path, the cause and the remedy.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest
from lashspec.kernel.clock import FakeProcessTable, ManualClock, ProcessState, ProcfsLiveness
from lashspec.kernel.errors import (
    BackendFailure,
    SchemaVersionMismatch,
    StoreBusy,
    StoreFileError,
)
from lashspec.kernel.sqlite import SqliteStore
from lashspec.kernel.types import ProcessWake, ProcessWakeDelivery, QueuedWorkBatchDraft

S = "root"


def wake(text: str, size: int = 1) -> QueuedWorkBatchDraft:
    delivery = ProcessWakeDelivery(f"wake:{text}", S, f"process:{text}", 1, text * size, text)
    return QueuedWorkBatchDraft(S, (ProcessWake(delivery),))


def open_store(path: Path, busy_timeout_ms: int = 30_000, read_only: bool = False) -> SqliteStore:
    return SqliteStore(
        path,
        clock=ManualClock(),
        liveness=FakeProcessTable(),
        busy_timeout_ms=busy_timeout_ms,
        read_only=read_only,
    )


def populated_store_file(path: Path, batches: int = 3) -> None:
    """A real store file with a few batches, closed so the WAL is folded into the file."""
    store = open_store(path)
    for index in range(batches):
        store.enqueue_queued_work(wake(f"kept-{index}", size=50))
    store.close()
    wal = Path(f"{path}-wal")
    assert not wal.exists() or wal.stat().st_size == 0, "the WAL was not checkpointed on close"


def assert_no_recreate_advice(error: StoreFileError) -> None:
    message = str(error).lower()
    assert "delete" not in message and "recreate" not in message, message


# ---------------------------------------------------------------------------
# Opening a file that is not (or not usable as) a store
# ---------------------------------------------------------------------------


def test_read_only_file_serves_reads_and_refuses_writes_with_permission_advice(
    tmp_path: Path,
) -> None:
    """A read-only copy opened with ``read_only=True`` (SQLite ``mode=ro``).  chmod alone does
    not stop root, which CI runs as; ``mode=ro`` makes SQLite itself refuse every write, so
    the read-only path is really exercised under any user."""
    original = tmp_path / "s.sqlite"
    populated_store_file(original)
    copy = tmp_path / "read-only-copy.sqlite"
    shutil.copy(original, copy)
    copy.chmod(0o444)
    before = copy.read_bytes()

    store = open_store(copy, read_only=True)
    assert [b.batch_id for b in store.list_queued_work(S)] == [
        b.batch_id for b in open_store(original).list_queued_work(S)
    ]
    with pytest.raises(StoreFileError) as raised:
        store.enqueue_queued_work(wake("refused"))
    store.close()

    error = raised.value
    assert error.cause == "read-only" and error.path == str(copy) and not error.retryable
    assert str(copy) in str(error) and "permissions" in str(error)
    assert_no_recreate_advice(error)
    assert copy.read_bytes() == before, "a read-only open changed the file"


def test_read_only_open_of_an_empty_file_says_so(tmp_path: Path) -> None:
    path = tmp_path / "empty.sqlite"
    path.write_bytes(b"")
    with pytest.raises(StoreFileError) as raised:
        open_store(path, read_only=True)
    assert raised.value.cause == "read-only" and "opened read-only" in str(raised.value)
    assert path.read_bytes() == b""


def test_open_while_another_connection_holds_the_write_lock_is_a_retryable_busy(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.sqlite"
    populated_store_file(path)
    with closing(sqlite3.connect(path, isolation_level=None)) as holder:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreBusy) as raised:
            open_store(path, busy_timeout_ms=150)
        holder.execute("ROLLBACK")
    error = raised.value
    assert error.retryable and error.cause == "busy" and error.waited_ms >= 150
    assert str(path) in str(error) and "ms" in str(error) and "retry" in str(error)
    assert_no_recreate_advice(error)
    store = open_store(path, busy_timeout_ms=150)
    assert len(store.list_queued_work(S)) == 3
    store.close()


def test_another_applications_database_is_not_a_lashspec_store(tmp_path: Path) -> None:
    path = tmp_path / "foreign.sqlite"
    with closing(sqlite3.connect(path)) as connection, connection:
        connection.execute("CREATE TABLE notes (body TEXT)")
        connection.execute("INSERT INTO notes VALUES ('keep me')")
    before = path.read_bytes()
    with pytest.raises(StoreFileError) as raised:
        open_store(path)
    error = raised.value
    assert not isinstance(error, SchemaVersionMismatch)
    assert error.cause == "not-a-lashspec-store" and "notes" in str(error)
    assert "right file" in str(error) and str(path) in str(error)
    assert_no_recreate_advice(error)
    assert path.read_bytes() == before


def test_a_foreign_meta_table_without_our_version_is_not_a_lashspec_store(
    tmp_path: Path,
) -> None:
    """A table merely named ``meta`` is not ours: without a schema_version row it is foreign."""
    path = tmp_path / "foreign-meta.sqlite"
    with closing(sqlite3.connect(path)) as connection, connection:
        connection.execute("CREATE TABLE meta (key TEXT, value TEXT)")
    with pytest.raises(StoreFileError) as raised:
        open_store(path)
    assert raised.value.cause == "not-a-lashspec-store"
    assert_no_recreate_advice(raised.value)


def test_a_text_file_is_not_a_sqlite_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("shopping list\n- eggs\n" * 100)
    before = path.read_bytes()
    with pytest.raises(StoreFileError) as raised:
        open_store(path)
    error = raised.value
    assert error.cause == "not-a-database" and "not a SQLite database" in str(error)
    assert "right file" in str(error)
    assert_no_recreate_advice(error)
    assert path.read_bytes() == before


def _corrupt_page(path: Path, page_number: int, offset_in_page: int) -> None:
    data = bytearray(path.read_bytes())
    page_size = int.from_bytes(data[16:18], "big")
    start = (page_number - 1) * page_size + offset_in_page
    data[start : start + 12] = b"\xff" * 12  # the page's b-tree header
    path.write_bytes(bytes(data))


def test_a_corrupt_schema_page_is_reported_as_corruption_with_recovery_advice(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.sqlite"
    populated_store_file(path)
    _corrupt_page(path, page_number=1, offset_in_page=100)  # the b-tree after the file header
    with pytest.raises(StoreFileError) as raised:
        open_store(path)
    error = raised.value
    assert error.cause == "corrupt" and str(path) in str(error)
    assert "backup" in str(error) and ".recover" in str(error)
    assert_no_recreate_advice(error)


def test_a_corrupt_table_page_is_reported_as_corruption_when_read(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    populated_store_file(path)
    with closing(sqlite3.connect(path)) as connection:
        (root_page,) = connection.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'queued_batches'"
        ).fetchone()
    _corrupt_page(path, page_number=root_page, offset_in_page=0)
    store = open_store(path)  # the schema page is intact, so the damage shows on first read
    with pytest.raises(StoreFileError) as raised:
        store.list_queued_work(S)
    store.close()
    assert raised.value.cause == "corrupt" and ".recover" in str(raised.value)
    assert_no_recreate_advice(raised.value)


def test_only_a_genuine_version_mismatch_suggests_recreating(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    populated_store_file(path)
    with closing(sqlite3.connect(path)) as connection, connection:
        connection.execute("UPDATE meta SET value = '7' WHERE key = 'schema_version'")
    with pytest.raises(SchemaVersionMismatch) as raised:
        open_store(path)
    assert raised.value.actual == 7 and "recreate" in str(raised.value)


# ---------------------------------------------------------------------------
# Faults during operations
# ---------------------------------------------------------------------------


def test_a_full_disk_is_a_typed_failure_commits_nothing_and_the_store_recovers(
    tmp_path: Path,
) -> None:
    """``limit_file_pages`` caps the file (SQLite ``max_page_count``), which fails a growing
    write with SQLITE_FULL exactly as a full disk does."""
    path = tmp_path / "s.sqlite"
    store = open_store(path)
    store.enqueue_queued_work(wake("before"))
    before = store.list_queued_work(S)
    pages = store.page_count()
    assert store.limit_file_pages(pages) == pages

    succeeded = []
    with pytest.raises(BackendFailure) as raised:
        for index in range(50):  # large payloads: the file must grow within a few writes
            succeeded.append(store.enqueue_queued_work(wake(f"big-{index}", size=4_000)))
    error = raised.value
    assert isinstance(error, StoreFileError) and error.cause == "disk-full"
    assert "full" in str(error) and "free disk space" in str(error) and str(path) in str(error)
    assert "nothing of this operation was committed" in str(error)
    assert not error.retryable

    # exactly the writes that returned are in the file, in order, and nothing of the failed one
    assert store.list_queued_work(S) == before + succeeded
    reopened = open_store(path)
    assert reopened.list_queued_work(S) == before + succeeded
    reopened.close()

    store.limit_file_pages(1_000_000)
    after = store.enqueue_queued_work(wake("after the disk was freed", size=4_000))
    assert store.list_queued_work(S)[-1] == after
    store.close()


def test_a_write_lock_held_past_the_timeout_raises_store_busy_and_then_works(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.sqlite"
    store = open_store(path, busy_timeout_ms=150)
    store.enqueue_queued_work(wake("first"))
    with closing(sqlite3.connect(path, isolation_level=None)) as holder:
        holder.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        with pytest.raises(StoreBusy) as raised:
            store.enqueue_queued_work(wake("blocked"))
        waited = time.monotonic() - started
        holder.execute("ROLLBACK")
    error = raised.value
    assert error.retryable and error.waited_ms >= 150 and waited >= 0.15
    assert str(path) in str(error) and f"{error.waited_ms} ms" in str(error)
    assert [b.items[0].payload for b in store.list_queued_work(S)] == [wake("first").payloads[0]]
    store.enqueue_queued_work(wake("after release"))
    assert len(store.list_queued_work(S)) == 2
    store.close()


# ---------------------------------------------------------------------------
# Process liveness: an unreaped SIGKILLed holder
# ---------------------------------------------------------------------------


def _process_start(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().rpartition(") ")[2].split()[19]


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().rpartition(") ")[2].split()[0]


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs Linux /proc")
def test_a_killed_but_unreaped_process_is_definitely_dead() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        start = _process_start(child.pid)
        assert ProcfsLiveness().process_state(child.pid, start) is ProcessState.ALIVE
        os.kill(child.pid, signal.SIGKILL)  # not waited for: the child stays a zombie
        give_up = time.monotonic() + 10
        while _state(child.pid) != "Z":
            assert time.monotonic() < give_up, "the killed child never became a zombie"
            time.sleep(0.01)
        assert ProcfsLiveness().process_state(child.pid, start) is ProcessState.DEAD
    finally:
        child.kill()
        child.wait(timeout=10)


def test_a_read_blocked_past_the_timeout_is_also_a_retryable_store_busy(tmp_path: Path) -> None:
    """An exclusive lock blocks even readers; a read waits in SQLite's own busy handler (only
    the write lock is polled by the store), and its timeout must be the same typed StoreBusy.
    A read-only open reads the schema without asking for the write lock, so it takes that
    path."""
    path = tmp_path / "s.sqlite"
    populated_store_file(path)
    with closing(sqlite3.connect(path, isolation_level=None)) as holder:
        holder.execute("PRAGMA locking_mode = EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StoreBusy) as raised:
            open_store(path, busy_timeout_ms=150, read_only=True)
        holder.execute("ROLLBACK")
    assert raised.value.retryable and str(path) in str(raised.value)
    assert_no_recreate_advice(raised.value)
    store = open_store(path, busy_timeout_ms=150, read_only=True)
    assert len(store.list_queued_work(S)) == 3
    store.close()
