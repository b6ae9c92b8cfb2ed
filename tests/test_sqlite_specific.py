"""What only the SQLite backend has: a real file, WAL, schema versions, reopening."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from lashspec.kernel.clock import FakeProcessTable, ManualClock
from lashspec.kernel.errors import (
    SchemaVersionMismatch,
    SessionExecutionLeaseExpired,
    StoreFileError,
)
from lashspec.kernel.sqlite import SCHEMA_VERSION, SqliteStore
from lashspec.kernel.types import (
    Acquired,
    Busy,
    ClaimBoundary,
    LeaseOwnerIdentity,
    NextTurn,
    PendingTurnInputDraft,
    ProcessWake,
    ProcessWakeDelivery,
    QueuedWorkBatchDraft,
    RuntimeCommit,
    SessionCheckpoint,
    TurnInput,
)

S = "root"


def wake(text: str, key: str | None = None) -> QueuedWorkBatchDraft:
    delivery = ProcessWakeDelivery(f"wake:{text}", S, f"process:{text}", 1, text, text)
    return QueuedWorkBatchDraft(S, (ProcessWake(delivery),), source_key=key)


def open_store(path: Path, clock: ManualClock | None = None) -> SqliteStore:
    return SqliteStore(path, clock=clock or ManualClock(), liveness=FakeProcessTable())


def test_store_uses_wal_journal(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.sqlite")
    assert store.journal_mode() == "wal"
    store.close()


def test_sqlite_busy_handler_is_on_for_reads_and_off_only_while_taking_the_write_lock(
    tmp_path: Path,
) -> None:
    """Write transactions poll for the write lock themselves and leave SQLite's handler off
    (nothing inside a WAL write transaction waits for a lock); a read turns it back on."""
    store = SqliteStore(tmp_path / "s.sqlite", ManualClock(), FakeProcessTable(), 1234)
    connection = store._sqlite._connection

    def busy_timeout() -> int:
        return int(connection.execute("PRAGMA busy_timeout").fetchone()[0])

    statements: list[str] = []
    connection.set_trace_callback(statements.append)
    store.enqueue_queued_work(wake("one"))
    store.enqueue_queued_work(wake("two"))
    connection.set_trace_callback(None)
    assert busy_timeout() == 0
    assert [s for s in statements if s.startswith("PRAGMA")] == ["PRAGMA busy_timeout = 0"]
    assert store.inspect_queued_work(S)
    assert busy_timeout() == 1234
    store.enqueue_queued_work(wake("three"))
    assert busy_timeout() == 0
    assert store.page_count() > 0  # a pragma reading the file waits like a read
    assert busy_timeout() == 1234
    store.close()


def test_reopen_sees_everything_committed(tmp_path: Path) -> None:
    clock = ManualClock()
    path = tmp_path / "s.sqlite"
    first = open_store(path, clock)
    owner = LeaseOwnerIdentity.opaque("a")
    outcome = first.try_claim_session_execution_lease(S, owner, 60_000)
    assert isinstance(outcome, Acquired)
    batch = first.enqueue_queued_work(wake("survives reopen", "reopen:queued"))
    row = first.enqueue_pending_turn_input(
        PendingTurnInputDraft(S, NextTurn(), TurnInput.text("i"))
    )
    first.commit_runtime_state(
        RuntimeCommit(
            S, SessionCheckpoint(77, {"tool": 77}), session_execution_lease=outcome.lease.fence()
        )
    )
    first.close()

    second = open_store(path, clock)
    read = second.load_session()
    assert read is not None and read.checkpoint.turn_index == 77
    assert read.checkpoint.state == {"tool": 77}
    assert second.list_queued_work(S) == [batch]
    assert second.enqueue_queued_work(wake("other payload", "reopen:queued")) == batch
    assert second.list_pending_turn_inputs(S) == [row]
    busy = second.try_claim_session_execution_lease(S, LeaseOwnerIdentity.opaque("b"), 60_000)
    assert isinstance(busy, Busy) and busy.holder == outcome.lease
    second.close()


def test_second_handle_sees_a_live_lease_and_can_release_it(tmp_path: Path) -> None:
    clock = ManualClock()
    path = tmp_path / "s.sqlite"
    one, two = open_store(path, clock), open_store(path, clock)
    outcome = one.try_claim_session_execution_lease(S, LeaseOwnerIdentity.opaque("a"), 60_000)
    assert isinstance(outcome, Acquired)
    assert isinstance(
        two.try_claim_session_execution_lease(S, LeaseOwnerIdentity.opaque("b"), 60_000), Busy
    )
    two.release_session_execution_lease(outcome.lease.completion())
    successor = two.try_claim_session_execution_lease(S, LeaseOwnerIdentity.opaque("b"), 60_000)
    assert isinstance(successor, Acquired)
    assert successor.lease.fencing_token == outcome.lease.fencing_token + 1
    one.close()
    two.close()


def test_wrong_schema_version_says_delete_and_recreate(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    open_store(path).close()
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    with pytest.raises(
        SchemaVersionMismatch, match=r"schema version 999.*delete the file"
    ) as error:
        open_store(path)
    assert error.value.expected == SCHEMA_VERSION and error.value.actual == 999


def test_foreign_sqlite_file_is_rejected_without_advice_to_delete_it(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE unrelated (x)")
    with pytest.raises(StoreFileError, match="no lashspec schema version") as error:
        open_store(path)
    assert error.value.cause == "not-a-lashspec-store" and "delete" not in str(error.value)


def test_garbage_file_is_rejected_as_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "garbage.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreFileError, match="not a SQLite database") as error:
        open_store(path)
    assert error.value.cause == "not-a-database" and "delete" not in str(error.value)


def test_failed_commit_leaves_the_file_unchanged(tmp_path: Path) -> None:
    clock = ManualClock()
    path = tmp_path / "s.sqlite"
    store = open_store(path, clock)
    owner = LeaseOwnerIdentity.opaque("a")
    outcome = store.try_claim_session_execution_lease(S, owner, 60_000)
    assert isinstance(outcome, Acquired)
    store.enqueue_queued_work(wake("w"))
    claim = store.claim_ready_queued_work(S, outcome.lease.fence(), owner, ClaimBoundary.IDLE, 10)
    assert claim is not None
    store.release_session_execution_lease(outcome.lease.completion())
    with pytest.raises(SessionExecutionLeaseExpired):
        store.commit_runtime_state(
            RuntimeCommit(
                S,
                SessionCheckpoint(1),
                session_execution_lease=outcome.lease.fence(),
                completed_queue_claims=(claim.completion(),),
            )
        )
    store.close()
    reopened = open_store(path, clock)
    assert reopened.load_session() is None
    assert len(reopened.list_queued_work(S)) == 1
    reopened.close()
