"""PostgreSQL backend: the store in one schema of a PostgreSQL database, over psycopg 3.

Install with ``pip install 'lashspec[postgres]'``.  Like :mod:`lashspec.kernel.sqlite`, this
module only moves rows: every decision is :class:`~lashspec.kernel.engine.StoreEngine`'s, so
the three backends decide identically by construction.

Isolation and locking
---------------------
Each write operation is one ``READ COMMITTED`` transaction whose first statement takes a
transaction-scoped advisory lock owned by this store's schema (``pg_advisory_xact_lock``);
PostgreSQL releases it at commit or rollback, and only after the commit is visible.  Write
operations on one store therefore run one at a time, exactly as SQLite's ``BEGIN
IMMEDIATE`` makes them, and each statement after the lock reads the latest committed rows,
so the engine's read-validate-write sequence (fence check, claim stamps, head CAS) can
neither lose an update nor act on a stale read.  We chose this over per-session locks
because the store's head (one session per store), its enqueue counter and vacuum's scan
are shared by every session, and over ``SERIALIZABLE`` because that needs retries that
surface as spurious conflicts under contention.  Read-only operations run in ``REPEATABLE
READ READ ONLY`` (one consistent snapshot, no lock), so they never wait for a writer.
``lock_timeout_ms`` bounds the wait for the lock (:class:`StoreServerBusy`, retryable).

Failures
--------
Every psycopg error is reported by cause as a :class:`StoreServerError` whose message says
what to do: an unreachable server, a refused login, a missing database or privilege, a
schema holding someone else's tables, a full disk, a lost connection (the server rolled the
transaction back: nothing was committed) or a connection lost *during* ``COMMIT`` (the
outcome is unknown: reload before retrying).  Only our own ``meta`` table carrying another
schema version raises :class:`SchemaVersionMismatch`, the one case where dropping the schema
is the remedy.  After a lost connection the next call reconnects.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import replace
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from . import codec
from .clock import Clock, LivenessOracle, ProcfsLiveness, SystemClock
from .engine import BatchRecord, HeadRecord, InputRecord, StoreEngine, TurnRecord
from .errors import (
    BackendFailure,
    InvalidRequest,
    SchemaVersionMismatch,
    StoreServerBusy,
    StoreServerError,
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
DEFAULT_SCHEMA = "lashspec"

_TABLES = (
    "meta",
    "session_leases",
    "queued_batches",
    "turn_inputs",
    "session_head",
    "turn_commits",
)

# {s} is the quoted schema name.
_SCHEMA_DDL = """
CREATE TABLE {s}.meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE {s}.session_leases (
    session_id TEXT PRIMARY KEY,
    owner TEXT,
    lease_token TEXT,
    fencing_token BIGINT NOT NULL,
    claimed_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
CREATE TABLE {s}.queued_batches (
    batch_id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    enqueue_seq BIGINT NOT NULL UNIQUE,
    source_key TEXT,
    body TEXT NOT NULL,
    claim_id TEXT,
    claim_owner TEXT,
    claim_token TEXT,
    claim_fencing_token BIGINT NOT NULL DEFAULT 0,
    claim_session_lease_generation BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX queued_batches_by_session ON {s}.queued_batches (session_id, enqueue_seq);
CREATE UNIQUE INDEX queued_batches_by_source_key ON {s}.queued_batches (session_id, source_key)
    WHERE source_key IS NOT NULL;
CREATE TABLE {s}.turn_inputs (
    input_id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    enqueue_seq BIGINT NOT NULL UNIQUE,
    source_key TEXT,
    state TEXT NOT NULL,
    body TEXT NOT NULL,
    claim_id TEXT,
    claim_owner TEXT,
    claim_token TEXT,
    claim_fencing_token BIGINT NOT NULL DEFAULT 0,
    claim_session_lease_generation BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX turn_inputs_by_session ON {s}.turn_inputs (session_id, enqueue_seq);
CREATE UNIQUE INDEX turn_inputs_by_source_key ON {s}.turn_inputs (session_id, source_key)
    WHERE source_key IS NOT NULL;
CREATE INDEX turn_inputs_by_state ON {s}.turn_inputs (state);
CREATE TABLE {s}.session_head (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    session_id TEXT NOT NULL,
    head_revision BIGINT NOT NULL,
    checkpoint TEXT NOT NULL,
    checkpoint_ref TEXT NOT NULL
);
CREATE TABLE {s}.turn_commits (
    session_id TEXT NOT NULL,
    turn_id TEXT NOT NULL,
    turn_commit_hash TEXT NOT NULL,
    result TEXT NOT NULL,
    PRIMARY KEY (session_id, turn_id)
);
INSERT INTO {s}.meta VALUES ('schema_version', '{version}'), ('enqueue_seq', '0');
"""

_BATCH_COLUMNS = (
    "body, claim_id, claim_owner, claim_token, claim_fencing_token, claim_session_lease_generation"
)
_INPUT_COLUMNS = (
    "body, state, claim_id, claim_owner, claim_token, claim_fencing_token, "
    "claim_session_lease_generation"
)
_CLAIM_UPDATES = (
    "claim_id = EXCLUDED.claim_id, claim_owner = EXCLUDED.claim_owner, "
    "claim_token = EXCLUDED.claim_token, claim_fencing_token = EXCLUDED.claim_fencing_token, "
    "claim_session_lease_generation = EXCLUDED.claim_session_lease_generation"
)

# Advisory-lock key space: the high 32 bits say "lashspec", the low 32 bits are the schema's
# OID, unique within a database, so two stores in one database never share a write lock.
_LOCK_NAMESPACE = 0x6C617368
# Held while creating or checking a schema, so two first opens cannot both create it.
_SCHEMA_SETUP_LOCK = (_LOCK_NAMESPACE << 32) | 0x7FFFFFFF


def _decode_owner(text: str | None) -> LeaseOwnerIdentity | None:
    return codec.loads_owner(text) if text is not None else None


def _claim(row: tuple[Any, ...], offset: int) -> ClaimColumns:
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


class _Statements:
    """Every statement of the row interface, with the schema name quoted in once."""

    def __init__(self, schema: str) -> None:
        s = schema
        self.lease = (
            "SELECT owner, lease_token, fencing_token, claimed_at_ms, expires_at_ms "
            f"FROM {s}.session_leases WHERE session_id = %s"
        )
        self.put_lease = (
            f"INSERT INTO {s}.session_leases VALUES (%s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (session_id) DO UPDATE SET owner = EXCLUDED.owner, "
            "lease_token = EXCLUDED.lease_token, fencing_token = EXCLUDED.fencing_token, "
            "claimed_at_ms = EXCLUDED.claimed_at_ms, expires_at_ms = EXCLUDED.expires_at_ms"
        )
        self.batches = (
            f"SELECT {_BATCH_COLUMNS} FROM {s}.queued_batches WHERE session_id = %s "
            "ORDER BY enqueue_seq"
        )
        self.batch = f"SELECT {_BATCH_COLUMNS} FROM {s}.queued_batches WHERE batch_id = %s"
        self.batch_by_source_key = (
            f"SELECT {_BATCH_COLUMNS} FROM {s}.queued_batches "
            "WHERE session_id = %s AND source_key = %s"
        )
        self.put_batch = (
            f"INSERT INTO {s}.queued_batches VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (batch_id) DO UPDATE SET session_id = EXCLUDED.session_id, "
            "enqueue_seq = EXCLUDED.enqueue_seq, source_key = EXCLUDED.source_key, "
            f"body = EXCLUDED.body, {_CLAIM_UPDATES}"
        )
        # An existing row's claim columns only (the body and the keys stay as they are).
        self.put_batch_claim = (
            f"UPDATE {s}.queued_batches SET claim_id = %s, claim_owner = %s, claim_token = %s, "
            "claim_fencing_token = %s, claim_session_lease_generation = %s WHERE batch_id = %s"
        )
        self.delete_batch = f"DELETE FROM {s}.queued_batches WHERE batch_id = %s"
        self.inputs = (
            f"SELECT {_INPUT_COLUMNS} FROM {s}.turn_inputs WHERE session_id = %s "
            "ORDER BY enqueue_seq"
        )
        self.input = f"SELECT {_INPUT_COLUMNS} FROM {s}.turn_inputs WHERE input_id = %s"
        self.input_by_source_key = (
            f"SELECT {_INPUT_COLUMNS} FROM {s}.turn_inputs "
            "WHERE session_id = %s AND source_key = %s"
        )
        self.terminal_inputs = (
            f"SELECT {_INPUT_COLUMNS} FROM {s}.turn_inputs WHERE state IN (%s, %s) "
            "ORDER BY enqueue_seq"
        )
        self.put_input = (
            f"INSERT INTO {s}.turn_inputs VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (input_id) DO UPDATE SET session_id = EXCLUDED.session_id, "
            "enqueue_seq = EXCLUDED.enqueue_seq, source_key = EXCLUDED.source_key, "
            f"state = EXCLUDED.state, body = EXCLUDED.body, {_CLAIM_UPDATES}"
        )
        # An existing row's mutable columns (its id, session, sequence and key never change).
        self.update_input = (
            f"UPDATE {s}.turn_inputs SET state = %s, body = %s, claim_id = %s, "
            "claim_owner = %s, claim_token = %s, claim_fencing_token = %s, "
            "claim_session_lease_generation = %s WHERE input_id = %s"
        )
        self.delete_input = f"DELETE FROM {s}.turn_inputs WHERE input_id = %s"
        self.next_seq = (
            f"UPDATE {s}.meta SET value = (value::bigint + 1)::text "
            "WHERE key = 'enqueue_seq' RETURNING value"
        )
        self.head = (
            f"SELECT session_id, head_revision, checkpoint, checkpoint_ref FROM {s}.session_head"
        )
        self.head_position = f"SELECT session_id, head_revision FROM {s}.session_head"
        self.put_head = (
            f"INSERT INTO {s}.session_head VALUES (1, %s, %s, %s, %s) "
            "ON CONFLICT (singleton) DO UPDATE SET session_id = EXCLUDED.session_id, "
            "head_revision = EXCLUDED.head_revision, checkpoint = EXCLUDED.checkpoint, "
            "checkpoint_ref = EXCLUDED.checkpoint_ref"
        )
        self.turn = (
            f"SELECT turn_commit_hash, result FROM {s}.turn_commits "
            "WHERE session_id = %s AND turn_id = %s"
        )
        self.put_turn = (
            f"INSERT INTO {s}.turn_commits VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (session_id, turn_id) DO UPDATE SET "
            "turn_commit_hash = EXCLUDED.turn_commit_hash, result = EXCLUDED.result"
        )
        self.erase = " ".join(f"DELETE FROM {s}.{table};" for table in _TABLES[1:]) + (
            f" UPDATE {s}.meta SET value = '0' WHERE key = 'enqueue_seq';"
        )


Connection = psycopg.Connection[tuple[Any, ...]]


class _PostgresTables:
    def __init__(self, connection: Connection, statements: _Statements) -> None:
        self._c = connection
        self._q = statements

    def _one(self, statement: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        return self._c.execute(statement, params).fetchone()

    def _all(self, statement: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        return self._c.execute(statement, params).fetchall()

    def _write(self, statement: str, params: tuple[Any, ...]) -> None:
        self._c.execute(statement, params)

    # leases
    def lease(self, session_id: str) -> LeaseRow | None:
        row = self._one(self._q.lease, (session_id,))
        if row is None:
            return None
        return LeaseRow(session_id, _decode_owner(row[0]), row[1], row[2], row[3], row[4])

    def put_lease(self, row: LeaseRow) -> None:
        owner = codec.dumps_owner(row.owner) if row.owner is not None else None
        self._write(
            self._q.put_lease,
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
        return [_batch_record(r) for r in self._all(self._q.batches, (session_id,))]

    def batch(self, batch_id: str) -> BatchRecord | None:
        row = self._one(self._q.batch, (batch_id,))
        return _batch_record(row) if row is not None else None

    def batch_by_source_key(self, session_id: str, source_key: str) -> BatchRecord | None:
        row = self._one(self._q.batch_by_source_key, (session_id, source_key))
        return _batch_record(row) if row is not None else None

    def put_batch(self, record: BatchRecord) -> None:
        b = record.batch
        self._write(
            self._q.put_batch,
            (
                b.batch_id,
                b.session_id,
                b.enqueue_seq,
                b.source_key,
                codec.dumps(b),
                *_claim_values(record.claim),
            ),
        )

    def put_batch_claim(self, record: BatchRecord) -> None:
        self._write(self._q.put_batch_claim, (*_claim_values(record.claim), record.batch.batch_id))

    def delete_batch(self, batch_id: str) -> None:
        self._write(self._q.delete_batch, (batch_id,))

    # turn inputs
    def inputs(self, session_id: str) -> list[InputRecord]:
        return [_input_record(r) for r in self._all(self._q.inputs, (session_id,))]

    def input(self, input_id: str) -> InputRecord | None:
        row = self._one(self._q.input, (input_id,))
        return _input_record(row) if row is not None else None

    def input_by_source_key(self, session_id: str, source_key: str) -> InputRecord | None:
        row = self._one(self._q.input_by_source_key, (session_id, source_key))
        return _input_record(row) if row is not None else None

    def terminal_inputs(self) -> list[InputRecord]:
        rows = self._all(
            self._q.terminal_inputs,
            (TurnInputState.CANCELLED.value, TurnInputState.COMPLETED.value),
        )
        return [_input_record(r) for r in rows]

    def put_input(self, record: InputRecord) -> None:
        r = record.row
        self._write(
            self._q.put_input,
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
        r = record.row
        self._write(
            self._q.update_input,
            (r.state.value, codec.dumps(r), *_claim_values(record.claim), r.input_id),
        )

    def delete_input(self, input_id: str) -> None:
        self._write(self._q.delete_input, (input_id,))

    def next_seq(self) -> int:
        row = self._one(self._q.next_seq, ())
        if row is None:
            raise BackendFailure("the store's meta table has no enqueue_seq counter")
        return int(row[0])

    # head and turn records
    def head(self) -> HeadRecord | None:
        row = self._one(self._q.head, ())
        if row is None:
            return None
        checkpoint = codec.loads(row[2])
        if not isinstance(checkpoint, SessionCheckpoint):
            raise BackendFailure("the session head does not hold a checkpoint")
        return HeadRecord(row[0], row[1], checkpoint, row[3], row[2])

    def head_position(self) -> tuple[str, int] | None:
        row = self._one(self._q.head_position, ())
        return (row[0], row[1]) if row is not None else None

    def put_head(self, record: HeadRecord) -> None:
        self._write(
            self._q.put_head,
            (
                record.session_id,
                record.head_revision,
                record.checkpoint_json or codec.dumps(record.checkpoint),
                record.checkpoint_ref,
            ),
        )

    def turn(self, session_id: str, turn_id: str) -> TurnRecord | None:
        row = self._one(self._q.turn, (session_id, turn_id))
        if row is None:
            return None
        result = codec.loads(row[1])
        if not isinstance(result, RuntimeCommitResult):
            raise BackendFailure("a turn_commits row does not hold a commit result")
        return TurnRecord(session_id, turn_id, row[0], result)

    def put_turn(self, record: TurnRecord) -> None:
        self._write(
            self._q.put_turn,
            (
                record.session_id,
                record.turn_id,
                record.turn_commit_hash,
                codec.dumps(record.result),
            ),
        )


def describe_server(dsn: str, schema: str) -> str:
    """``user@host:port/dbname schema 'x'`` for messages: never the password."""
    try:
        parts = conninfo_to_dict(dsn)
    except psycopg.Error:
        return f"(unparsable connection string) schema {schema!r}"
    host = str(parts.get("host") or "localhost")
    port = str(parts.get("port") or "5432")
    user = str(parts.get("user") or "")
    dbname = str(parts.get("dbname") or user or "")
    who = f"{user}@" if user else ""
    return f"{who}{host}:{port}/{dbname} schema {schema!r}"


def _connection_lost(error: psycopg.Error, connection: Connection | None) -> bool:
    """Whether an established connection died (None: we were still connecting)."""
    if connection is None:
        return False
    if connection.broken or connection.closed:
        return True
    if isinstance(error, pg_errors.AdminShutdown | pg_errors.CrashShutdown):
        return True
    return isinstance(error, psycopg.OperationalError) and error.sqlstate is None


# libpq reports a refused login without a SQLSTATE; these texts are the server's own.
_LOGIN_FAILURES = (
    ("password authentication failed", "28P01"),
    ("no pg_hba.conf entry", "28000"),
    ('role "', "28000"),  # role "x" does not exist
    ('database "', "3D000"),  # database "x" does not exist
)


def _login_failure_state(message: str) -> str | None:
    """The SQLSTATE of a login failure libpq reported as text; the earliest match wins."""
    found = [(message.find(text), state) for text, state in _LOGIN_FAILURES if text in message]
    return min(found)[1] if found else None


def server_error(
    server: str,
    error: psycopg.Error,
    doing: str,
    *,
    connection: Connection | None = None,
    lock_timeout_ms: int = 0,
    during_commit: bool = False,
) -> BackendFailure:
    """The typed error for a psycopg failure while ``doing`` something: cause and remedy."""
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    state = error.sqlstate or _login_failure_state(str(error))
    if isinstance(error, pg_errors.LockNotAvailable):
        return StoreServerBusy(server, lock_timeout_ms)
    if during_commit and _connection_lost(error, connection):
        return StoreServerError(
            server,
            "commit-outcome-unknown",
            f"the connection was lost while committing ({first_line}); the commit may or may "
            "not have been applied",
            "reload (load_session, inspect_session) before retrying; a turn commit carrying a "
            "turn_commit stamp is idempotent and may be retried unchanged",
            retryable=True,
        )
    if _connection_lost(error, connection) and state not in ("28P01", "28000", "3D000"):
        return StoreServerError(
            server,
            "connection-lost",
            f"the connection to the server was lost while {doing} ({first_line}); the server "
            "rolled the transaction back, nothing of this operation was committed",
            "check that the server is up and reachable, then retry; the store reconnects "
            "on the next call",
            retryable=True,
        )
    if state in ("28P01", "28000"):
        return StoreServerError(
            server,
            "authentication",
            f"the server refused the login ({first_line})",
            "check the user and password in the connection string (or ~/.pgpass) and the "
            "server's pg_hba.conf",
        )
    if state == "3D000":
        return StoreServerError(
            server,
            "no-database",
            f"the database does not exist ({first_line})",
            "create it (createdb) or fix dbname in the connection string",
        )
    if state == "42501":
        return StoreServerError(
            server,
            "permission",
            f"the role lacks a privilege while {doing} ({first_line})",
            "grant the role CREATE on the database (first open creates the schema) or "
            "USAGE on the schema and SELECT, INSERT, UPDATE, DELETE on its tables",
        )
    if state == "25006":
        return StoreServerError(
            server,
            "read-only",
            f"the server accepts only read-only transactions ({first_line}) while {doing}",
            "connect to the primary, not a standby, and check default_transaction_read_only",
        )
    if state == "53100":
        return StoreServerError(
            server,
            "disk-full",
            f"the server's disk is full ({first_line}) while {doing}; nothing of this "
            "operation was committed",
            "free disk space on the database server and retry",
            retryable=True,
        )
    if state == "53300":
        return StoreServerError(
            server,
            "too-many-connections",
            f"the server has no free connection slot ({first_line})",
            "close idle connections or raise max_connections, then retry",
            retryable=True,
        )
    if state in ("40001", "40P01"):
        return StoreServerError(
            server,
            "contention",
            f"the server aborted the transaction under contention ({first_line}) while "
            f"{doing}; nothing of this operation was committed",
            "retry the call",
            retryable=True,
        )
    if state in ("42P01", "3F000"):
        return StoreServerError(
            server,
            "schema-missing",
            f"the store's tables disappeared while {doing} ({first_line})",
            "something dropped the schema while the store was open; reopen the store to "
            "recreate it",
        )
    if isinstance(error, psycopg.OperationalError):
        return StoreServerError(
            server,
            "cannot-connect",
            f"cannot reach the server ({first_line})",
            "check that the server is running and that host, port and socket directory in "
            "the connection string are right, then retry",
            retryable=True,
        )
    return BackendFailure(
        f"postgres error on {server} while {doing}: {type(error).__name__}: {first_line}"
    )


class _PostgresBackend:
    def __init__(
        self,
        dsn: str,
        schema: str,
        lock_timeout_ms: int,
        connect_timeout_s: int,
        connection: Connection | None,
    ) -> None:
        if lock_timeout_ms < 0:
            raise InvalidRequest(f"lock_timeout_ms must be >= 0, got {lock_timeout_ms}")
        if not schema or not schema.strip():
            raise InvalidRequest(f"schema must be a non-empty name, got {schema!r}")
        self.dsn = dsn
        self.schema = schema
        self.server = describe_server(dsn, schema)
        self._lock_timeout_ms = int(lock_timeout_ms)
        self._connect_timeout_s = int(connect_timeout_s)
        self._owns_connection = connection is None
        self._lock = threading.RLock()
        self.write_transactions = 0
        self.read_transactions = 0
        self._connection = connection if connection is not None else self._connect()
        try:
            quoted = sql.Identifier(schema).as_string(self._connection)
            self._statements = _Statements(quoted)
            self._write_lock_key = self._initialise(quoted)
            self._begin_write = (
                "BEGIN ISOLATION LEVEL READ COMMITTED; "
                f"SELECT pg_advisory_xact_lock({int(self._write_lock_key)})"
            )
        except BaseException:
            self._close_owned()
            raise

    def _connect(self) -> Connection:
        try:
            connection: Connection = psycopg.connect(
                self.dsn,
                autocommit=True,
                connect_timeout=self._connect_timeout_s,
                application_name="lashspec",
            )
        except psycopg.Error as error:
            raise server_error(self.server, error, "connecting") from None
        try:
            # One round trip per write: the lock wait is bounded here, once per connection.
            connection.execute(f"SET lock_timeout = {self._lock_timeout_ms}")
        except psycopg.Error as error:
            connection.close()
            raise server_error(self.server, error, "configuring the connection") from None
        return connection

    def _close_owned(self) -> None:
        if self._owns_connection:
            self._connection.close()

    def _rollback(self) -> None:
        """Roll back whatever is open; a failing rollback (a dead connection) must not
        hide the error that caused it."""
        with suppress(psycopg.Error):
            if (
                not self._connection.closed
                and self._connection.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
            ):
                self._connection.execute("ROLLBACK")

    def _initialise(self, quoted: str) -> int:
        """Create the schema on first open, or check that it is ours at our version; the
        advisory write-lock key of the schema."""
        c = self._connection
        try:
            c.execute("BEGIN ISOLATION LEVEL READ COMMITTED")
            c.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_SETUP_LOCK,))
            row = c.execute(
                "SELECT oid::bigint FROM pg_namespace WHERE nspname = %s", (self.schema,)
            ).fetchone()
            if row is None:
                c.execute(f"CREATE SCHEMA {quoted}")
            tables = {
                str(r[0])
                for r in c.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = %s", (self.schema,)
                ).fetchall()
            }
            if not tables:
                c.execute(_SCHEMA_DDL.format(s=quoted, version=SCHEMA_VERSION))
            else:
                version_row = None
                if "meta" in tables:
                    version_row = c.execute(
                        f"SELECT value FROM {quoted}.meta WHERE key = 'schema_version'"
                    ).fetchone()
                if version_row is None:
                    raise StoreServerError(
                        self.server,
                        "not-a-lashspec-schema",
                        "the schema holds tables but no lashspec schema version "
                        f"(tables: {', '.join(sorted(tables)[:5])})",
                        "it belongs to something else and was left untouched; open the store "
                        "with another schema name",
                    )
                try:
                    version: int | None = int(version_row[0])
                except (TypeError, ValueError):
                    version = None
                if version != SCHEMA_VERSION:
                    raise SchemaVersionMismatch(
                        self.server,
                        version,
                        SCHEMA_VERSION,
                        store="postgres store",
                        advice=(
                            f"drop the schema (DROP SCHEMA {quoted} CASCADE) and reopen to "
                            "recreate it; the store holds coordination state, not history"
                        ),
                    )
            oid_row = c.execute(
                "SELECT oid::bigint FROM pg_namespace WHERE nspname = %s", (self.schema,)
            ).fetchone()
            c.execute("COMMIT")
        except psycopg.Error as error:
            self._rollback()
            raise server_error(
                self.server,
                error,
                "opening the store",
                connection=c,
                lock_timeout_ms=self._lock_timeout_ms,
            ) from None
        except BaseException:
            self._rollback()
            raise
        assert oid_row is not None
        return (_LOCK_NAMESPACE << 32) | int(oid_row[0])

    def _usable_connection(self) -> Connection:
        """The connection, reconnecting first if the previous one was lost."""
        if self._connection.closed or self._connection.broken:
            if not self._owns_connection:
                raise StoreServerError(
                    self.server,
                    "connection-lost",
                    "the borrowed connection was lost",
                    "open a new connection and a new store on it",
                    retryable=True,
                )
            self._connection = self._connect()
        return self._connection

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[_PostgresTables]:
        with self._lock:
            c = self._usable_connection()
            doing = "opening a write transaction" if write else "opening a read transaction"
            started = time.monotonic()
            try:
                if write:
                    # One round trip: the key is our own integer, safe to inline.
                    c.execute(self._begin_write)
                else:
                    c.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            except psycopg.Error as error:
                self._rollback()
                if isinstance(error, pg_errors.LockNotAvailable):
                    raise StoreServerBusy(
                        self.server, round((time.monotonic() - started) * 1000)
                    ) from None
                raise server_error(self.server, error, doing, connection=c) from None
            if write:
                self.write_transactions += 1
            else:
                self.read_transactions += 1
            try:
                yield _PostgresTables(c, self._statements)
            except psycopg.Error as error:
                self._rollback()
                raise server_error(
                    self.server,
                    error,
                    "running a store operation",
                    connection=c,
                    lock_timeout_ms=self._lock_timeout_ms,
                ) from None
            except BaseException:
                self._rollback()
                raise
            else:
                try:
                    c.execute("COMMIT")
                except psycopg.Error as error:
                    self._rollback()
                    raise server_error(
                        self.server, error, "committing", connection=c, during_commit=True
                    ) from None

    def erase_all_rows(self) -> None:
        with self._lock:
            c = self._usable_connection()
            try:
                c.execute("BEGIN")
                c.execute("SELECT pg_advisory_xact_lock(%s)", (self._write_lock_key,))
                c.execute(self._statements.erase)
                c.execute("COMMIT")
            except psycopg.Error as error:
                self._rollback()
                raise server_error(self.server, error, "erasing rows", connection=c) from None

    def backend_pid(self) -> int:
        with self._lock:
            return int(self._usable_connection().info.backend_pid)

    def close(self) -> None:
        with self._lock:
            self._close_owned()


class PostgresStore(StoreEngine):
    """The store in one schema of a PostgreSQL database; several handles (threads or
    processes, each with its own connection) may share one schema.

    ``dsn`` is a libpq connection string or URL.  ``schema`` names the store: the first open
    creates it (needs CREATE on the database); two schemas are two independent stores.
    ``lock_timeout_ms`` bounds how long one write waits for another connection's write
    before raising :class:`StoreServerBusy`.  ``connection`` lends an open autocommit psycopg
    connection instead (the store never closes it; replays use this to skip a connect per
    trace).
    """

    def __init__(
        self,
        dsn: str = "",
        clock: Clock | None = None,
        liveness: LivenessOracle | None = None,
        *,
        schema: str = DEFAULT_SCHEMA,
        lock_timeout_ms: int = 30_000,
        connect_timeout_s: int = 10,
        connection: Connection | None = None,
    ) -> None:
        self.schema = schema
        self._postgres = _PostgresBackend(
            dsn, schema, lock_timeout_ms, connect_timeout_s, connection
        )
        super().__init__(self._postgres, clock or SystemClock(), liveness or ProcfsLiveness())

    @property
    def server(self) -> str:
        """Where the store lives, for messages: ``user@host:port/db schema 'x'``."""
        return self._postgres.server

    @property
    def transaction_counts(self) -> tuple[int, int]:
        """(read transactions, write transactions) opened by this handle so far."""
        return self._postgres.read_transactions, self._postgres.write_transactions

    @property
    def write_lock_key(self) -> int:
        """The advisory lock every write transaction of this store takes first."""
        return self._postgres._write_lock_key

    def backend_pid(self) -> int:
        """The server process serving this handle's connection (for diagnostics)."""
        return self._postgres.backend_pid()

    def erase_all_rows(self) -> None:
        """Delete every row of the store and restart its enqueue counter, keeping the
        schema: for tests and replays that reuse one schema, never for a live store."""
        self._postgres.erase_all_rows()


def schema_name_for(label: str) -> str:
    """A short, valid schema name derived from any label (tests, replays)."""
    return "lashspec_" + hashlib.sha256(label.encode()).hexdigest()[:16]
