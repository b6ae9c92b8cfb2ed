"""In-memory backend: plain dictionaries behind one lock, with an undo snapshot per operation.

Every operation holds the store-wide lock for its whole duration (store.md §8.12: simply
serialise everything), and a failing operation restores the snapshot taken when it began,
so the in-memory store is as atomic as the SQLite one (unlike lash's, see store.md §8.1).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from operator import attrgetter
from types import TracebackType

from .clock import Clock, LivenessOracle, ProcfsLiveness, SystemClock
from .engine import BatchRecord, HeadRecord, InputRecord, StoreEngine, TurnRecord
from .types import LeaseRow


@dataclass(slots=True)
class _Data:
    leases: dict[str, LeaseRow] = field(default_factory=dict)
    batches: dict[str, BatchRecord] = field(default_factory=dict)
    inputs: dict[str, InputRecord] = field(default_factory=dict)
    turns: dict[tuple[str, str], TurnRecord] = field(default_factory=dict)
    head: HeadRecord | None = None
    seq: int = 0

    def snapshot(self) -> _Data:
        # Rows are immutable, so copying the dictionaries is a complete snapshot.
        return _Data(
            dict(self.leases),
            dict(self.batches),
            dict(self.inputs),
            dict(self.turns),
            self.head,
            self.seq,
        )


_BATCH_SEQ = attrgetter("batch.enqueue_seq")
_INPUT_SEQ = attrgetter("row.enqueue_seq")


class _MemoryTables:
    def __init__(self, data: _Data) -> None:
        self._d = data

    def lease(self, session_id: str) -> LeaseRow | None:
        return self._d.leases.get(session_id)

    def put_lease(self, row: LeaseRow) -> None:
        self._d.leases[row.session_id] = row

    def batches(self, session_id: str) -> list[BatchRecord]:
        rows = [r for r in self._d.batches.values() if r.batch.session_id == session_id]
        rows.sort(key=_BATCH_SEQ)
        return rows

    def batch(self, batch_id: str) -> BatchRecord | None:
        return self._d.batches.get(batch_id)

    def batch_by_source_key(self, session_id: str, source_key: str) -> BatchRecord | None:
        for r in self._d.batches.values():
            if r.batch.session_id == session_id and r.batch.source_key == source_key:
                return r
        return None

    def put_batch(self, record: BatchRecord) -> None:
        self._d.batches[record.batch.batch_id] = record

    def put_batch_claim(self, record: BatchRecord) -> None:
        self._d.batches[record.batch.batch_id] = record

    def delete_batch(self, batch_id: str) -> None:
        self._d.batches.pop(batch_id, None)

    def inputs(self, session_id: str) -> list[InputRecord]:
        rows = [r for r in self._d.inputs.values() if r.row.session_id == session_id]
        rows.sort(key=_INPUT_SEQ)
        return rows

    def input(self, input_id: str) -> InputRecord | None:
        return self._d.inputs.get(input_id)

    def input_by_source_key(self, session_id: str, source_key: str) -> InputRecord | None:
        for r in self._d.inputs.values():
            if r.row.session_id == session_id and r.row.source_key == source_key:
                return r
        return None

    def terminal_inputs(self) -> list[InputRecord]:
        rows = [r for r in self._d.inputs.values() if r.row.state.is_terminal]
        rows.sort(key=_INPUT_SEQ)
        return rows

    def put_input(self, record: InputRecord) -> None:
        self._d.inputs[record.row.input_id] = record

    def update_input(self, record: InputRecord) -> None:
        self._d.inputs[record.row.input_id] = record

    def delete_input(self, input_id: str) -> None:
        self._d.inputs.pop(input_id, None)

    def next_seq(self) -> int:
        self._d.seq += 1
        return self._d.seq

    def head(self) -> HeadRecord | None:
        return self._d.head

    def head_position(self) -> tuple[str, int] | None:
        head = self._d.head
        return (head.session_id, head.head_revision) if head is not None else None

    def put_head(self, record: HeadRecord) -> None:
        self._d.head = record

    def turn(self, session_id: str, turn_id: str) -> TurnRecord | None:
        return self._d.turns.get((session_id, turn_id))

    def put_turn(self, record: TurnRecord) -> None:
        self._d.turns[(record.session_id, record.turn_id)] = record


class _MemoryTransaction:
    """One transaction: the lock held throughout; a write restores its snapshot on error.

    A plain context-manager class rather than a generator: every store call opens one, and
    this is the cheaper protocol.
    """

    __slots__ = ("_backend", "_before", "_write")

    def __init__(self, backend: _MemoryBackend, write: bool) -> None:
        self._backend = backend
        self._write = write
        self._before: _Data | None = None

    def __enter__(self) -> _MemoryTables:
        backend = self._backend
        backend.lock.acquire()
        if self._write:
            backend.write_transactions += 1
            self._before = backend.data.snapshot()
        else:
            backend.read_transactions += 1
        return backend.tables

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if exc_type is not None and self._before is not None:
                self._backend.restore(self._before)
        finally:
            self._before = None
            self._backend.lock.release()


class _MemoryRead:
    """A read transaction: the lock held throughout, nothing to undo.  It keeps no state of
    its own, so the backend hands out one instance for every read (nested reads too)."""

    __slots__ = ("_backend",)

    def __init__(self, backend: _MemoryBackend) -> None:
        self._backend = backend

    def __enter__(self) -> _MemoryTables:
        backend = self._backend
        backend.lock.acquire()
        backend.read_transactions += 1
        return backend.tables

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._backend.lock.release()


class _MemoryBackend:
    def __init__(self) -> None:
        self.data = _Data()
        self.tables = _MemoryTables(self.data)  # the row interface over ``data``
        self.lock = threading.RLock()
        self.write_transactions = 0
        self.read_transactions = 0
        self._read = _MemoryRead(self)

    def restore(self, data: _Data) -> None:
        """Roll back to ``data`` (a snapshot)."""
        self.data = data
        self.tables = _MemoryTables(data)

    def transaction(self, write: bool = True) -> _MemoryTransaction | _MemoryRead:
        return _MemoryTransaction(self, write) if write else self._read

    def close(self) -> None:
        pass


class InMemoryStore(StoreEngine):
    """The store kept in process memory; state is lost when the object goes away."""

    def __init__(self, clock: Clock | None = None, liveness: LivenessOracle | None = None) -> None:
        self._memory = _MemoryBackend()
        super().__init__(self._memory, clock or SystemClock(), liveness or ProcfsLiveness())

    @property
    def transaction_counts(self) -> tuple[int, int]:
        """(read transactions, write transactions) opened so far."""
        return self._memory.read_transactions, self._memory.write_transactions
