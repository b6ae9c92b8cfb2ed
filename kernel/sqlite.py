"""SQLite backend: the embedded default.  A real file, WAL journal, one transaction per operation.

Every write operation runs in ``BEGIN IMMEDIATE`` so that concurrent writers (threads or
processes, each with its own :class:`SqliteStore` on the same file) are serialised by
SQLite's write lock; reads run in a deferred transaction and see one consistent snapshot.
Rows keep their searchable columns (session, sequence, source key, state, claim columns) as
real columns and the rest of the record as JSON produced by :mod:`lashspec.kernel.codec`.

Waiting for the write lock: SQLite's own busy handler sleeps in growing steps (up to 100 ms),
so a newcomer keeps missing the short gaps between busy writers and can starve for the whole
timeout.  We poll ``BEGIN IMMEDIATE`` ourselves with short jittered sleeps instead, so every
waiter gets a fair chance at each gap; ``busy_timeout_ms`` bounds the total wait, after which
the call raises :class:`StoreBusy` (``retryable``), naming the file and the wait.

Failures are reported by cause: a lock timeout, a read-only file, another application's
database, a file that is not SQLite, a corrupt page, a full disk each raise a
:class:`StoreFileError` whose message says what to do.  Only our own ``meta`` table carrying
another schema version raises :class:`SchemaVersionMismatch`, the one case where recreating
the store is the remedy (there are no migrations: a store holds coordination state, not
history).
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
import urllib.parse
from contextlib import suppress
from dataclasses import replace
from types import TracebackType
from typing import Any

from . import codec
from .clock import Clock, LivenessOracle, ProcfsLiveness, SystemClock
from .engine import BatchRecord, HeadRecord, InputRecord, StoreEngine, TurnRecord
from .errors import (
    BackendFailure,
    InvalidRequest,
    SchemaVersionMismatch,
    StoreBusy,
    StoreFileError,
)
from .types import (
    ClaimColumns,
    LeaseOwnerIdentity,
    LeaseRow,
    PendingTurnInput,
    QueuedWorkBatch,
    RuntimeCommitResult,
    SessionCheckpoint,
    TurnInputState,
)

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE session_leases (
    session_id TEXT PRIMARY KEY,
    owner TEXT,
    lease_token TEXT,
    fencing_token INTEGER NOT NULL,
    claimed_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL
);
CREATE TABLE queued_batches (
    batch_id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    enqueue_seq INTEGER NOT NULL UNIQUE,
    source_key TEXT,
    body TEXT NOT NULL,
    claim_id TEXT,
    claim_owner TEXT,
    claim_token TEXT,
    claim_fencing_token INTEGER NOT NULL DEFAULT 0,
    claim_session_lease_generation INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX queued_batches_by_session ON queued_batches (session_id, enqueue_seq);
CREATE UNIQUE INDEX queued_batches_by_source_key ON queued_batches (session_id, source_key)
    WHERE source_key IS NOT NULL;
CREATE TABLE turn_inputs (
    input_id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    enqueue_seq INTEGER NOT NULL UNIQUE,
    source_key TEXT,
    state TEXT NOT NULL,
    body TEXT NOT NULL,
    claim_id TEXT,
    claim_owner TEXT,
    claim_token TEXT,
    claim_fencing_token INTEGER NOT NULL DEFAULT 0,
    claim_session_lease_generation INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX turn_inputs_by_session ON turn_inputs (session_id, enqueue_seq);
CREATE UNIQUE INDEX turn_inputs_by_source_key ON turn_inputs (session_id, source_key)
    WHERE source_key IS NOT NULL;
CREATE INDEX turn_inputs_by_state ON turn_inputs (state);
CREATE TABLE session_head (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    session_id TEXT NOT NULL,
    head_revision INTEGER NOT NULL,
    checkpoint TEXT NOT NULL,
    checkpoint_ref TEXT NOT NULL
);
CREATE TABLE turn_commits (
    session_id TEXT NOT NULL,
    turn_id TEXT NOT NULL,
    turn_commit_hash TEXT NOT NULL,
    result TEXT NOT NULL,
    PRIMARY KEY (session_id, turn_id)
);
"""

_BATCH_COLUMNS = (
    "body, claim_id, claim_owner, claim_token, claim_fencing_token, claim_session_lease_generation"
)
_INPUT_COLUMNS = (
    "body, state, claim_id, claim_owner, claim_token, claim_fencing_token, "
    "claim_session_lease_generation"
)


def _decode_owner(text: str | None) -> LeaseOwnerIdentity | None:
    return codec.loads_owner(text) if text is not None else None


def _claim(row: sqlite3.Row | tuple[Any, ...], offset: int) -> ClaimColumns:
    return ClaimColumns(
        claim_id=row[offset],
        claim_owner=_decode_owner(row[offset + 1]),
        claim_token=row[offset + 2],
        claim_fencing_token=row[offset + 3],
        claim_session_lease_generation=row[offset + 4],
    )


def _claim_values(claim: ClaimColumns) -> tuple[Any, ...]:
    owner = codec.dumps_owner(claim.claim_owner) if claim.claim_owner is not None else None
    return (
        claim.claim_id,
        owner,
        claim.claim_token,
        claim.claim_fencing_token,
        claim.claim_session_lease_generation,
    )


def _batch_record(row: tuple[Any, ...]) -> BatchRecord:
    batch = codec.loads_record(row[0])
    if not isinstance(batch, QueuedWorkBatch):
        raise BackendFailure("a queued_batches row does not hold a batch")
    return BatchRecord(batch, _claim(row, 1))


def _input_record(row: tuple[Any, ...]) -> InputRecord:
    stored = codec.loads_record(row[0])
    if not isinstance(stored, PendingTurnInput):
        raise BackendFailure("a turn_inputs row does not hold a pending turn input")
    try:
        state = TurnInputState(row[1])
    except ValueError:
        raise BackendFailure(f"unknown turn input state {row[1]!r}") from None
    return InputRecord(replace(stored, state=state), _claim(row, 2))


class _SqliteTables:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._c = connection

    def _one(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self._c.execute(sql, params).fetchone()
        return row

    # leases
    def lease(self, session_id: str) -> LeaseRow | None:
        row = self._one(
            "SELECT owner, lease_token, fencing_token, claimed_at_ms, expires_at_ms "
            "FROM session_leases WHERE session_id = ?",
            (session_id,),
        )
        if row is None:
            return None
        return LeaseRow(session_id, _decode_owner(row[0]), row[1], row[2], row[3], row[4])

    def put_lease(self, row: LeaseRow) -> None:
        owner = codec.dumps_owner(row.owner) if row.owner is not None else None
        self._c.execute(
            "INSERT OR REPLACE INTO session_leases VALUES (?, ?, ?, ?, ?, ?)",
            (
                row.session_id,
                owner,
                row.lease_token,
                row.fencing_token,
                row.claimed_at_ms,
                row.expires_at_ms,
            ),
        )

    # queued work
    def batches(self, session_id: str) -> list[BatchRecord]:
        rows = self._c.execute(
            f"SELECT {_BATCH_COLUMNS} FROM queued_batches WHERE session_id = ? "
            "ORDER BY enqueue_seq",
            (session_id,),
        ).fetchall()
        return [_batch_record(r) for r in rows]

    def batch(self, batch_id: str) -> BatchRecord | None:
        row = self._one(
            f"SELECT {_BATCH_COLUMNS} FROM queued_batches WHERE batch_id = ?", (batch_id,)
        )
        return _batch_record(row) if row is not None else None

    def batch_by_source_key(self, session_id: str, source_key: str) -> BatchRecord | None:
        row = self._one(
            f"SELECT {_BATCH_COLUMNS} FROM queued_batches WHERE session_id = ? AND source_key = ?",
            (session_id, source_key),
        )
        return _batch_record(row) if row is not None else None

    def put_batch(self, record: BatchRecord) -> None:
        b = record.batch
        self._c.execute(
            "INSERT OR REPLACE INTO queued_batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                b.batch_id,
                b.session_id,
                b.enqueue_seq,
                b.source_key,
                codec.dumps_record(b),
                *_claim_values(record.claim),
            ),
        )

    def put_batch_claim(self, record: BatchRecord) -> None:
        # Only the claim columns change: the body and the indexed columns stay as they are.
        self._c.execute(
            "UPDATE queued_batches SET claim_id = ?, claim_owner = ?, claim_token = ?, "
            "claim_fencing_token = ?, claim_session_lease_generation = ? WHERE batch_id = ?",
            (*_claim_values(record.claim), record.batch.batch_id),
        )

    def delete_batch(self, batch_id: str) -> None:
        self._c.execute("DELETE FROM queued_batches WHERE batch_id = ?", (batch_id,))

    # turn inputs
    def inputs(self, session_id: str) -> list[InputRecord]:
        rows = self._c.execute(
            f"SELECT {_INPUT_COLUMNS} FROM turn_inputs WHERE session_id = ? ORDER BY enqueue_seq",
            (session_id,),
        ).fetchall()
        return [_input_record(r) for r in rows]

    def input(self, input_id: str) -> InputRecord | None:
        row = self._one(f"SELECT {_INPUT_COLUMNS} FROM turn_inputs WHERE input_id = ?", (input_id,))
        return _input_record(row) if row is not None else None

    def input_by_source_key(self, session_id: str, source_key: str) -> InputRecord | None:
        row = self._one(
            f"SELECT {_INPUT_COLUMNS} FROM turn_inputs WHERE session_id = ? AND source_key = ?",
            (session_id, source_key),
        )
        return _input_record(row) if row is not None else None

    def terminal_inputs(self) -> list[InputRecord]:
        rows = self._c.execute(
            f"SELECT {_INPUT_COLUMNS} FROM turn_inputs WHERE state IN (?, ?) ORDER BY enqueue_seq",
            (TurnInputState.CANCELLED.value, TurnInputState.COMPLETED.value),
        ).fetchall()
        return [_input_record(r) for r in rows]

    def put_input(self, record: InputRecord) -> None:
        r = record.row
        self._c.execute(
            "INSERT OR REPLACE INTO turn_inputs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                r.input_id,
                r.session_id,
                r.enqueue_seq,
                r.source_key,
                r.state.value,
                codec.dumps(r),
                *_claim_values(record.claim),
            ),
        )

    def update_input(self, record: InputRecord) -> None:
        # The id, session, sequence and source key never change after enqueue.
        r = record.row
        self._c.execute(
            "UPDATE turn_inputs SET state = ?, body = ?, claim_id = ?, claim_owner = ?, "
            "claim_token = ?, claim_fencing_token = ?, claim_session_lease_generation = ? "
            "WHERE input_id = ?",
            (r.state.value, codec.dumps(r), *_claim_values(record.claim), r.input_id),
        )

    def delete_input(self, input_id: str) -> None:
        self._c.execute("DELETE FROM turn_inputs WHERE input_id = ?", (input_id,))

    def next_seq(self) -> int:
        # One statement: the counter row is created at 1 or advanced, and read back.
        row = self._c.execute(
            "INSERT INTO meta VALUES ('enqueue_seq', '1') ON CONFLICT (key) DO UPDATE "
            "SET value = CAST(value AS INTEGER) + 1 RETURNING value"
        ).fetchall()
        return int(row[0][0])

    # head and turn records
    def head(self) -> HeadRecord | None:
        row = self._one(
            "SELECT session_id, head_revision, checkpoint, checkpoint_ref FROM session_head", ()
        )
        if row is None:
            return None
        checkpoint = codec.loads(row[2])
        if not isinstance(checkpoint, SessionCheckpoint):
            raise BackendFailure("the session head does not hold a checkpoint")
        return HeadRecord(row[0], row[1], checkpoint, row[3], row[2])

    def head_position(self) -> tuple[str, int] | None:
        row = self._one("SELECT session_id, head_revision FROM session_head", ())
        return (row[0], row[1]) if row is not None else None

    def put_head(self, record: HeadRecord) -> None:
        self._c.execute(
            "INSERT OR REPLACE INTO session_head VALUES (1, ?, ?, ?, ?)",
            (
                record.session_id,
                record.head_revision,
                record.checkpoint_json or codec.dumps(record.checkpoint),
                record.checkpoint_ref,
            ),
        )

    def turn(self, session_id: str, turn_id: str) -> TurnRecord | None:
        row = self._one(
            "SELECT turn_commit_hash, result FROM turn_commits "
            "WHERE session_id = ? AND turn_id = ?",
            (session_id, turn_id),
        )
        if row is None:
            return None
        result = codec.loads(row[1])
        if not isinstance(result, RuntimeCommitResult):
            raise BackendFailure("a turn_commits row does not hold a commit result")
        return TurnRecord(session_id, turn_id, row[0], result)

    def put_turn(self, record: TurnRecord) -> None:
        self._c.execute(
            "INSERT OR REPLACE INTO turn_commits VALUES (?, ?, ?, ?)",
            (
                record.session_id,
                record.turn_id,
                record.turn_commit_hash,
                codec.dumps(record.result),
            ),
        )


# SQLite primary result codes (the low byte of an extended code) that we report by cause.
_SQLITE_PERM = 3
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_SQLITE_READONLY = 8
_SQLITE_IOERR = 10
_SQLITE_CORRUPT = 11
_SQLITE_FULL = 13
_SQLITE_CANTOPEN = 14
_SQLITE_NOTADB = 26

# Sleep between two attempts at the write lock: short enough that a waiter does not miss the
# gap between two busy writers, jittered so that waiters do not retry in lockstep.
_LOCK_POLL_MIN_S = 0.0005
_LOCK_POLL_MAX_S = 0.004


def _primary_code(error: sqlite3.Error) -> int | None:
    code = getattr(error, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def _is_busy(error: sqlite3.Error) -> bool:
    return _primary_code(error) in (_SQLITE_BUSY, _SQLITE_LOCKED)


def _file_error(
    path: str, error: sqlite3.Error, doing: str, busy_timeout_ms: int
) -> BackendFailure:
    """The typed error for a SQLite failure while ``doing`` something: cause and remedy."""
    code = _primary_code(error)
    if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
        # SQLite's own busy handler (kept for statements other than BEGIN IMMEDIATE) gave up
        return StoreBusy(path, busy_timeout_ms)
    if code == _SQLITE_NOTADB:
        return StoreFileError(
            path,
            "not-a-database",
            f"the file is not a SQLite database ({error}) while {doing}",
            "point the store at the right file; this one was left untouched",
        )
    if code == _SQLITE_CORRUPT:
        return StoreFileError(
            path,
            "corrupt",
            f"the database is corrupt ({error}) while {doing}",
            "keep a copy, then restore the file from a backup or salvage its rows with "
            f"`sqlite3 {path} .recover`",
        )
    if code in (_SQLITE_READONLY, _SQLITE_PERM):
        return StoreFileError(
            path,
            "read-only",
            f"the file cannot be written ({error}) while {doing}",
            "check the permissions of the file and its directory (SQLite also writes "
            "-wal and -shm files beside it) and that the filesystem is mounted read-write",
        )
    if code == _SQLITE_CANTOPEN:
        return StoreFileError(
            path,
            "cannot-open",
            f"the file cannot be opened ({error}) while {doing}",
            "check that the directory exists, that the file and its directory are readable "
            "and writable, and that the filesystem is mounted read-write",
        )
    if code == _SQLITE_FULL:
        return StoreFileError(
            path,
            "disk-full",
            f"the disk or the file's size limit is full ({error}) while {doing}; "
            "nothing of this operation was committed",
            "free disk space (or raise the limit) and retry",
        )
    if code == _SQLITE_IOERR:
        return StoreFileError(
            path,
            "io-error",
            f"the operating system reported an I/O error ({error}) while {doing}",
            "check the disk and the filesystem (dmesg), then retry",
        )
    name = getattr(error, "sqlite_errorname", type(error).__name__)
    return BackendFailure(f"sqlite error on {path!r} while {doing}: {name}: {error}")


class _SqliteTransaction:
    """One transaction under the handle's lock: commits on normal exit, rolls back on any
    exception (a SQLite error is re-raised as a typed store error).  A plain
    context-manager class rather than a generator: every store call opens one."""

    __slots__ = ("_backend", "_write")

    def __init__(self, backend: _SqliteBackend, write: bool) -> None:
        self._backend = backend
        self._write = write

    def __enter__(self) -> _SqliteTables:
        return self._backend.enter(self._write)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._backend.exit(exc)


class _SqliteBackend:
    def __init__(self, path: str, busy_timeout_ms: int, read_only: bool) -> None:
        if busy_timeout_ms < 0:
            raise InvalidRequest(f"busy_timeout_ms must be >= 0, got {busy_timeout_ms}")
        self.path = path
        self.read_only = read_only
        self._busy_timeout_ms = int(busy_timeout_ms)
        self._jitter = random.Random()
        self._lock = threading.RLock()
        self.write_transactions = 0
        self.read_transactions = 0
        try:
            if read_only:
                # mode=ro makes SQLite itself refuse writes, even for root (unlike chmod).
                target = "file:" + urllib.parse.quote(os.path.abspath(path)) + "?mode=ro"
            else:
                target = path
            connection = sqlite3.connect(
                target,
                uri=read_only,
                isolation_level=None,
                check_same_thread=False,
                timeout=busy_timeout_ms / 1000,
            )
        except sqlite3.Error as error:
            raise _file_error(path, error, "opening the store", busy_timeout_ms) from None
        self._connection = connection
        self._tables = _SqliteTables(connection)
        self._write_transaction = _SqliteTransaction(self, True)
        self._read_transaction = _SqliteTransaction(self, False)
        # Whether SQLite's busy handler is on (busy_timeout = the full wait) rather than off
        # (0, while our own poll waits for the write lock).  See ``_begin_write``.
        self._busy_handler_on = False
        # Whether the file is in WAL mode, where a write transaction never waits for a lock
        # once ``BEGIN IMMEDIATE`` holds the write lock (a rollback journal's COMMIT does).
        self._wal = False
        try:
            self._arm_busy_handler()
            self._initialise()
            if not read_only:
                # Only a verified lashspec store is switched to WAL (a refused file stays as
                # it was).  SQLite does not call its busy handler for this pragma: poll.
                self._arm_busy_handler()
                mode = self._poll_while_busy("PRAGMA journal_mode = WAL", "switching to WAL")
                self._wal = str(mode).lower() == "wal"
                self._connection.execute("PRAGMA synchronous = NORMAL")
        except BaseException as error:
            self._connection.close()
            if isinstance(error, sqlite3.Error):
                raise _file_error(path, error, "opening the store", busy_timeout_ms) from None
            raise

    def _arm_busy_handler(self) -> None:
        """Let SQLite's own busy handler wait (up to the busy timeout) for locks."""
        if not self._busy_handler_on:
            self._connection.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
            self._busy_handler_on = True

    def _disarm_busy_handler(self) -> None:
        if self._busy_handler_on:
            self._connection.execute("PRAGMA busy_timeout = 0")
            self._busy_handler_on = False

    def _poll_while_busy(self, statement: str, doing: str) -> Any:
        """Run ``statement``, retrying with jittered short sleeps while the file is locked,
        for at most the busy timeout, and return its first value; then raise
        :class:`StoreBusy`."""
        started = time.monotonic()
        deadline = started + self._busy_timeout_ms / 1000
        while True:
            try:
                row = self._connection.execute(statement).fetchone()
                return row[0] if row is not None else None
            except sqlite3.OperationalError as error:
                if not _is_busy(error):
                    raise
            now = time.monotonic()
            if now >= deadline:
                raise StoreBusy(self.path, round((now - started) * 1000))
            pause = self._jitter.uniform(_LOCK_POLL_MIN_S, _LOCK_POLL_MAX_S)
            time.sleep(min(pause, deadline - now))

    def _begin_write(self) -> None:
        # Our own poll replaces SQLite's busy handler for the write lock (see the module
        # docstring).  Every statement that may wait for a lock otherwise (a read's first
        # SELECT, a rollback journal's COMMIT, a pragma reading the file) runs with the
        # handler on.  In WAL mode nothing inside a write transaction waits once BEGIN
        # IMMEDIATE has the write lock (SQLite calls the handler only while a transaction
        # starts), so the handler stays off until a statement that needs it: write after
        # write costs no pragma.
        self._disarm_busy_handler()
        try:
            try:
                self._connection.execute("BEGIN IMMEDIATE")  # the uncontended case: no poll
            except sqlite3.OperationalError as error:
                if not _is_busy(error):
                    raise
                self._poll_while_busy("BEGIN IMMEDIATE", "waiting for the write lock")
        finally:
            if not self._wal:
                self._arm_busy_handler()

    def _rollback(self) -> None:
        """Roll back whatever is open; SQLite may already have rolled back by itself (a
        full disk does), and a failing rollback must not hide the error that caused it."""
        if self._connection.in_transaction:
            with suppress(sqlite3.Error):
                self._connection.execute("ROLLBACK")

    def _initialise(self) -> None:
        c = self._connection
        if self.read_only:
            self._arm_busy_handler()
            c.execute("BEGIN")
        else:
            self._begin_write()
        try:
            tables = {
                row[0] for row in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            if not tables:
                if self.read_only:
                    raise StoreFileError(
                        self.path,
                        "read-only",
                        "the file holds no store yet and was opened read-only",
                        "open it writable once to create the store, or point at the right file",
                    )
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        c.execute(statement)
                c.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            else:
                row = None
                if "meta" in tables:
                    row = c.execute(
                        "SELECT value FROM meta WHERE key = 'schema_version'"
                    ).fetchone()
                if row is None:
                    raise StoreFileError(
                        self.path,
                        "not-a-lashspec-store",
                        "this SQLite database has tables but no lashspec schema version "
                        f"(tables: {', '.join(sorted(tables)[:5])})",
                        "it belongs to something else and was left untouched; "
                        "point the store at the right file",
                    )
                try:
                    version: int | None = int(row[0])
                except (TypeError, ValueError):
                    version = None
                if version != SCHEMA_VERSION:
                    raise SchemaVersionMismatch(self.path, version, SCHEMA_VERSION)
            c.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def transaction(self, write: bool = True) -> _SqliteTransaction:
        # Both context managers hold no state of their own (it lives here, under the lock),
        # so one of each serves every call.
        return self._write_transaction if write else self._read_transaction

    def enter(self, write: bool) -> _SqliteTables:
        """Take the handle's lock and open a transaction (see :class:`_SqliteTransaction`)."""
        self._lock.acquire()
        try:
            c = self._connection
            try:
                if write:
                    self._begin_write()
                else:
                    self._arm_busy_handler()
                    c.execute("BEGIN")
            except sqlite3.Error as error:
                self._rollback()
                doing = "opening a write transaction" if write else "opening a read transaction"
                raise _file_error(self.path, error, doing, self._busy_timeout_ms) from None
            if write:
                self.write_transactions += 1
            else:
                self.read_transactions += 1
            tables = self._tables
            if tables._c is not c:  # the connection was swapped (the benchmark records it)
                tables = self._tables = _SqliteTables(c)
            return tables
        except BaseException:
            self._lock.release()
            raise

    def exit(self, error: BaseException | None) -> None:
        """Commit (no ``error``) or roll back, map a SQLite error, release the lock."""
        try:
            if error is not None:
                self._rollback()
                if isinstance(error, sqlite3.Error):
                    raise _file_error(
                        self.path, error, "running a store operation", self._busy_timeout_ms
                    ) from None
                return  # the context manager protocol re-raises ``error`` itself
            try:
                self._connection.execute("COMMIT")
            except sqlite3.Error as commit_error:
                self._rollback()
                raise _file_error(
                    self.path, commit_error, "committing", self._busy_timeout_ms
                ) from None
        finally:
            self._lock.release()

    def pragma(self, name: str) -> str:
        with self._lock:
            self._arm_busy_handler()
            row = self._connection.execute(f"PRAGMA {name}").fetchone()
            return str(row[0])

    def limit_pages(self, max_pages: int) -> int:
        with self._lock:
            self._arm_busy_handler()
            row = self._connection.execute(f"PRAGMA max_page_count = {int(max_pages)}").fetchone()
            return int(row[0])

    def close(self) -> None:
        with self._lock:
            self._connection.close()


class SqliteStore(StoreEngine):
    """The store in a SQLite file; several handles (threads or processes) may share one file.

    ``busy_timeout_ms`` bounds how long one call waits for another connection's write lock
    before raising :class:`StoreBusy`.  ``read_only=True`` opens the file with SQLite's
    ``mode=ro``: reads work, every write raises :class:`StoreFileError` (cause
    ``read-only``), and the file is never switched to WAL or otherwise changed.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        clock: Clock | None = None,
        liveness: LivenessOracle | None = None,
        busy_timeout_ms: int = 30_000,
        read_only: bool = False,
    ) -> None:
        self.path = os.fspath(path)
        self._sqlite = _SqliteBackend(self.path, busy_timeout_ms, read_only)
        super().__init__(self._sqlite, clock or SystemClock(), liveness or ProcfsLiveness())

    @property
    def transaction_counts(self) -> tuple[int, int]:
        """(read transactions, write transactions) opened by this handle so far."""
        return self._sqlite.read_transactions, self._sqlite.write_transactions

    def journal_mode(self) -> str:
        return self._sqlite.pragma("journal_mode")

    def limit_file_pages(self, max_pages: int) -> int:
        """Cap the file at ``max_pages`` pages on this handle (SQLite ``max_page_count``; it
        never drops below the current size) and return the cap in force.  A write that needs
        more raises :class:`StoreFileError` (cause ``disk-full``), exactly as a full disk
        does, so tests use this to exercise that path; raise the cap to lift it."""
        return self._sqlite.limit_pages(max_pages)

    def page_count(self) -> int:
        """The file's current size in pages."""
        return int(self._sqlite.pragma("page_count"))
