"""SQLite backend: the embedded default.  A real file, WAL journal, one transaction per operation.

Every write operation runs in ``BEGIN IMMEDIATE`` so that concurrent writers (threads or
processes, each with its own :class:`SqliteStore` on the same file) are serialised by
SQLite's write lock; reads run in a deferred transaction and see one consistent snapshot.
Rows keep their searchable columns (session, sequence, source key, state, claim columns) as
real columns and the rest of the record as JSON produced by :mod:`lashspec.kernel.codec`.

The file carries its schema version in ``meta``; opening a file with another version, or a
file that is not a lashspec store, raises :class:`SchemaVersionMismatch` telling the user to
delete and recreate it (there are no migrations: a store holds coordination state, not
history).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from . import codec
from .clock import Clock, LivenessOracle, ProcfsLiveness, SystemClock
from .engine import BatchRecord, HeadRecord, InputRecord, StoreEngine, TurnRecord
from .errors import BackendFailure, SchemaVersionMismatch
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
    if text is None:
        return None
    owner = codec.loads(text)
    if not isinstance(owner, LeaseOwnerIdentity):
        raise BackendFailure(f"stored owner is not an identity: {text[:80]!r}")
    return owner


def _claim(row: sqlite3.Row | tuple[Any, ...], offset: int) -> ClaimColumns:
    return ClaimColumns(
        claim_id=row[offset],
        claim_owner=_decode_owner(row[offset + 1]),
        claim_token=row[offset + 2],
        claim_fencing_token=row[offset + 3],
        claim_session_lease_generation=row[offset + 4],
    )


def _claim_values(claim: ClaimColumns) -> tuple[Any, ...]:
    owner = codec.dumps(claim.claim_owner) if claim.claim_owner is not None else None
    return (
        claim.claim_id,
        owner,
        claim.claim_token,
        claim.claim_fencing_token,
        claim.claim_session_lease_generation,
    )


def _batch_record(row: tuple[Any, ...]) -> BatchRecord:
    batch = codec.loads(row[0])
    if not isinstance(batch, QueuedWorkBatch):
        raise BackendFailure("a queued_batches row does not hold a batch")
    return BatchRecord(batch, _claim(row, 1))


def _input_record(row: tuple[Any, ...]) -> InputRecord:
    stored = codec.loads(row[0])
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
        owner = codec.dumps(row.owner) if row.owner is not None else None
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
                codec.dumps(b),
                *_claim_values(record.claim),
            ),
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

    def delete_input(self, input_id: str) -> None:
        self._c.execute("DELETE FROM turn_inputs WHERE input_id = ?", (input_id,))

    def next_seq(self) -> int:
        row = self._one("SELECT value FROM meta WHERE key = 'enqueue_seq'", ())
        seq = (int(row[0]) if row is not None else 0) + 1
        self._c.execute("INSERT OR REPLACE INTO meta VALUES ('enqueue_seq', ?)", (str(seq),))
        return seq

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
        return HeadRecord(row[0], row[1], checkpoint, row[3])

    def put_head(self, record: HeadRecord) -> None:
        self._c.execute(
            "INSERT OR REPLACE INTO session_head VALUES (1, ?, ?, ?, ?)",
            (
                record.session_id,
                record.head_revision,
                codec.dumps(record.checkpoint),
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


class _SqliteBackend:
    def __init__(self, path: str, busy_timeout_ms: int) -> None:
        self.path = path
        try:
            connection = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=busy_timeout_ms / 1000
            )
        except sqlite3.Error as error:
            raise BackendFailure(f"cannot open store file {path!r}: {error}") from None
        self._connection = connection
        try:
            self._connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            self._lock = threading.RLock()
            self.write_transactions = 0
            self.read_transactions = 0
            self._initialise()
            # Only a verified lashspec store is switched to WAL (a refused file stays as it was).
            self._connection.execute("PRAGMA journal_mode = WAL")
            self._connection.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.DatabaseError as error:
            self._connection.close()
            raise SchemaVersionMismatch(path, None, SCHEMA_VERSION) from error
        except SchemaVersionMismatch:
            self._connection.close()
            raise

    def _initialise(self) -> None:
        c = self._connection
        c.execute("BEGIN IMMEDIATE")
        try:
            tables = {
                row[0] for row in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            if not tables:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        c.execute(statement)
                c.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            else:
                version: int | None = None
                if "meta" in tables:
                    row = c.execute(
                        "SELECT value FROM meta WHERE key = 'schema_version'"
                    ).fetchone()
                    if row is not None:
                        try:
                            version = int(row[0])
                        except ValueError:
                            version = None
                if version != SCHEMA_VERSION:
                    raise SchemaVersionMismatch(self.path, version, SCHEMA_VERSION)
            c.execute("COMMIT")
        except BaseException:
            if c.in_transaction:
                c.execute("ROLLBACK")
            raise

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[_SqliteTables]:
        with self._lock:
            c = self._connection
            try:
                c.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            except sqlite3.Error as error:
                raise BackendFailure(
                    f"cannot begin a transaction on {self.path}: {error}"
                ) from None
            if write:
                self.write_transactions += 1
            else:
                self.read_transactions += 1
            try:
                yield _SqliteTables(c)
            except sqlite3.Error as error:
                c.execute("ROLLBACK")
                raise BackendFailure(f"sqlite error on {self.path}: {error}") from None
            except BaseException:
                c.execute("ROLLBACK")
                raise
            else:
                try:
                    c.execute("COMMIT")
                except sqlite3.Error as error:
                    if c.in_transaction:
                        c.execute("ROLLBACK")
                    raise BackendFailure(f"cannot commit on {self.path}: {error}") from None

    def pragma(self, name: str) -> str:
        with self._lock:
            row = self._connection.execute(f"PRAGMA {name}").fetchone()
            return str(row[0])

    def close(self) -> None:
        with self._lock:
            self._connection.close()


class SqliteStore(StoreEngine):
    """The store in a SQLite file; several handles (threads or processes) may share one file."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        clock: Clock | None = None,
        liveness: LivenessOracle | None = None,
        busy_timeout_ms: int = 30_000,
    ) -> None:
        self.path = os.fspath(path)
        self._sqlite = _SqliteBackend(self.path, busy_timeout_ms)
        super().__init__(self._sqlite, clock or SystemClock(), liveness or ProcfsLiveness())

    @property
    def transaction_counts(self) -> tuple[int, int]:
        """(read transactions, write transactions) opened by this handle so far."""
        return self._sqlite.read_transactions, self._sqlite.write_transactions

    def journal_mode(self) -> str:
        return self._sqlite.pragma("journal_mode")
