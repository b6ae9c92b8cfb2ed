"""Several OS processes, each with its own connection, contend for one session on PostgreSQL;
connections and processes die in the middle of a commit.

* ``test_processes_contend_for_one_postgres_session``: four forked workers loop for about two
  seconds over one session with the real clock and a short TTL: enqueue (replaying each
  source key), acquire the lease, claim up to two batches, then commit and release, commit
  keeping the lease for a second cycle, hand everything back, or walk away (a "crash": the
  lease lapses by TTL).  From their reports and the final store: fencing tokens gap-free,
  each generation acquired only after its predecessor ended (one live holder at a time), no
  batch claimed twice under one generation, every batch completed exactly once, head
  revisions 1..N.
* ``test_a_connection_terminated_mid_commit_commits_nothing``: a commit is held inside its
  transaction (after writing the new head, waiting for a row lock another connection holds)
  and its server process is ended with ``pg_terminate_backend``: nothing of the commit is
  visible, the caller gets the typed ``connection-lost`` error, and the same handle
  reconnects and commits the same claims exactly once.
* ``test_a_worker_killed_mid_commit_commits_nothing``: the same, but the worker process is
  SIGKILLed; a successor reclaims the dead holder's lease at once (local-process liveness),
  finds the batch still stamped with the dead claim, claims it under the new generation and
  completes it.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import random
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lashspec.kernel.clock import ManualClock, current_process_start
from lashspec.kernel.types import (
    Acquired,
    ClaimBoundary,
    DeliveryPolicy,
    LeaseOwnerIdentity,
    LocalProcessLiveness,
    MergeKey,
    ProcessWake,
    ProcessWakeDelivery,
    QueuedWorkBatchDraft,
    QueuedWorkClaim,
    RuntimeCommit,
    SessionCheckpoint,
    SessionExecutionLease,
    SlotPolicy,
)

from tests.conftest import SchemaPool

psycopg = pytest.importorskip("psycopg")
from lashspec.kernel.errors import (  # noqa: E402
    SessionExecutionLeaseExpired,
    StoreServerBusy,
    StoreServerError,
)
from lashspec.kernel.postgres import PostgresStore  # noqa: E402
from psycopg import sql  # noqa: E402

SESSION = "contended"
WORKERS = 4
RUN_SECONDS = 2.0
TTL_MS = 250
SEED_BATCHES = 40
MAX_ENQUEUES = 15  # per worker
FORK = multiprocessing.get_context("fork")


def now_ms() -> int:
    """The same reading SystemClock gives the store."""
    return time.time_ns() // 1_000_000


def wake(text: str, source_key: str | None = None, join: bool = False) -> QueuedWorkBatchDraft:
    delivery = ProcessWakeDelivery(
        wake_id=f"wake:{text}",
        target_session_id=SESSION,
        process_id="postgres-contention",
        sequence=0,
        input=text,
        dedupe_key=text,
    )
    return QueuedWorkBatchDraft(
        SESSION,
        (ProcessWake(delivery),),
        delivery_policy=DeliveryPolicy.EARLIEST_SAFE_BOUNDARY,
        slot_policy=SlotPolicy.JOIN if join else SlotPolicy.EXCLUSIVE,
        merge_key=MergeKey.named("pg") if join else MergeKey(),
        source_key=source_key,
    )


def commit_of(
    lease: SessionExecutionLease, claims: list[QueuedWorkClaim], release: bool, note: Any
) -> RuntimeCommit:
    return RuntimeCommit(
        SESSION,
        SessionCheckpoint(0, {"note": note}),
        session_execution_lease=lease.fence(),
        release_session_execution_lease=lease.completion() if release else None,
        completed_queue_claims=tuple(c.completion() for c in claims),
    )


@pytest.fixture
def schema(postgres_schemas: SchemaPool) -> Iterator[tuple[str, str]]:
    name = postgres_schemas.take()
    yield postgres_schemas.dsn, name
    postgres_schemas.give_back(name)


# ---------------------------------------------------------------------------
# Four processes, one session
# ---------------------------------------------------------------------------


def _claim(
    store: PostgresStore,
    report: dict[str, Any],
    lease: SessionExecutionLease,
    who: LeaseOwnerIdentity,
) -> list[QueuedWorkClaim]:
    got = store.claim_ready_queued_work(SESSION, lease.fence(), who, ClaimBoundary.IDLE, 2)
    if got is None:
        return []
    ids = [b.batch_id for b in got.batches]
    report["claims"].append({"generation": got.session_lease_generation, "ids": ids})
    if got.session_lease_generation != lease.fencing_token:
        report["violations"].append("a claim pinned to another generation")
    return [got]


def _commit(
    store: PostgresStore,
    report: dict[str, Any],
    lease: SessionExecutionLease,
    entry: dict[str, Any],
    claims: list[QueuedWorkClaim],
    release: bool,
) -> None:
    before = now_ms()
    if release:
        entry["release_t0"] = before  # the lease may end from here on
    result = store.commit_runtime_state(commit_of(lease, claims, release, lease.fencing_token))
    report["commits"].append(
        {
            "generation": lease.fencing_token,
            "head": result.head_revision,
            "batches": [b.batch_id for c in claims for b in c.batches],
        }
    )


def _contend(dsn: str, schema: str, index: int, out: str) -> None:
    """One worker process: its own connection, the real clock, a report file at the end."""
    store = PostgresStore(dsn, schema=schema, lock_timeout_ms=10_000)
    rng = random.Random(7_000 + index)
    report: dict[str, Any] = {"leases": [], "claims": [], "commits": [], "enqueued": []}
    report.update(busy=0, lost=0, crashes=0, violations=[], errors=[])
    incarnation = 0
    stop_at = time.monotonic() + RUN_SECONDS
    try:
        while time.monotonic() < stop_at:
            if len(report["enqueued"]) < MAX_ENQUEUES and rng.random() < 0.3:
                tag = f"w{index}-{len(report['enqueued'])}"
                draft = wake(tag, f"source:{tag}", join=rng.random() < 0.5)
                batch = store.enqueue_queued_work(draft)
                if store.enqueue_queued_work(draft).batch_id != batch.batch_id:
                    report["violations"].append(f"source key {tag} replayed as a new batch")
                report["enqueued"].append(batch.batch_id)
            who = LeaseOwnerIdentity.opaque(f"worker-{index}", f"w{index}:inc-{incarnation}")
            outcome = store.try_claim_session_execution_lease(SESSION, who, TTL_MS)
            if not isinstance(outcome, Acquired):
                report["busy"] += 1
                time.sleep(rng.uniform(0.001, 0.005))
                continue
            lease = outcome.lease
            entry: dict[str, Any] = {
                "generation": lease.fencing_token,
                "token": lease.lease_token,
                "claimed_at": lease.claimed_at_ms,
                "expires_at": lease.expires_at_ms,
                "release_t0": None,
            }
            report["leases"].append(entry)

            try:
                claims = _claim(store, report, lease, who)
                action = rng.random()
                if action < 0.08:  # crash: walk away holding the lease and the claims
                    report["crashes"] += 1
                    incarnation += 1
                elif action < 0.2:  # hand everything back
                    for c in claims:
                        store.abandon_queued_work_claim(c)
                    entry["release_t0"] = now_ms()
                    store.release_session_execution_lease(lease.completion())
                elif action < 0.4:  # commit, keep the lease, second cycle
                    _commit(store, report, lease, entry, claims, release=False)
                    again = _claim(store, report, lease, who)
                    _commit(store, report, lease, entry, again, release=True)
                else:
                    _commit(store, report, lease, entry, claims, release=True)
            except SessionExecutionLeaseExpired:
                report["lost"] += 1  # descheduled past the TTL: fenced out, as it must be
    except Exception as error:  # reported, not raised: the parent asserts on the report
        report["errors"].append(f"{type(error).__name__}: {error}")
    finally:
        store.close()
        Path(out).write_text(json.dumps(report))


def _drain(dsn: str, schema: str) -> dict[str, Any]:
    """Once the workers are gone: take the lease and complete everything left."""
    store = PostgresStore(dsn, schema=schema)
    who = LeaseOwnerIdentity.opaque("drain")
    report: dict[str, Any] = {"leases": [], "claims": [], "commits": []}
    try:
        give_up = time.monotonic() + 10
        while not isinstance(
            outcome := store.try_claim_session_execution_lease(SESSION, who, 60_000), Acquired
        ):
            assert time.monotonic() < give_up, "the lease never became free after the workers"
            time.sleep(0.02)
        lease = outcome.lease
        report["leases"].append(
            {
                "generation": lease.fencing_token,
                "token": lease.lease_token,
                "claimed_at": lease.claimed_at_ms,
                "expires_at": lease.expires_at_ms,
                "release_t0": None,
            }
        )
        while (
            got := store.claim_ready_queued_work(
                SESSION, lease.fence(), who, ClaimBoundary.IDLE, 64
            )
        ) is not None:
            ids = [b.batch_id for b in got.batches]
            report["claims"].append({"generation": got.session_lease_generation, "ids": ids})
            result = store.commit_runtime_state(commit_of(lease, [got], False, "drain"))
            report["commits"].append(
                {"generation": lease.fencing_token, "head": result.head_revision, "batches": ids}
            )
        store.release_session_execution_lease(lease.completion())
    finally:
        store.close()
    return report


def test_processes_contend_for_one_postgres_session(
    schema: tuple[str, str], tmp_path: Path
) -> None:
    dsn, name = schema
    seeder = PostgresStore(dsn, schema=name)
    seeded = {
        seeder.enqueue_queued_work(wake(f"seed-{i}", join=i % 3 != 0)).batch_id
        for i in range(SEED_BATCHES)
    }
    seeder.close()
    outs = [tmp_path / f"worker-{i}.json" for i in range(WORKERS)]
    workers = [
        FORK.Process(target=_contend, args=(dsn, name, i, str(out))) for i, out in enumerate(outs)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=RUN_SECONDS + 60)
        assert worker.exitcode == 0, f"worker exited with {worker.exitcode}"
    reports = [json.loads(out.read_text()) for out in outs]
    final = _drain(dsn, name)
    for report in reports:
        assert report["errors"] == [] and report["violations"] == [], report

    leases = sorted(
        [lease for r in reports for lease in r["leases"]] + final["leases"],
        key=lambda lease: lease["generation"],
    )
    commits = sorted(
        [c for r in reports for c in r["commits"]] + final["commits"], key=lambda c: c["head"]
    )
    claims = [c for r in reports for c in r["claims"]] + final["claims"]

    # the workload really contended
    assert sum(1 for r in reports if r["leases"]) >= 3, "too few processes ever held the lease"
    assert sum(r["busy"] for r in reports) > 0, "nobody ever found the lease busy"

    # one live holder at a time
    assert [lease["generation"] for lease in leases] == list(range(1, len(leases) + 1))
    assert len({lease["token"] for lease in leases}) == len(leases)
    for previous, successor in itertools.pairwise(leases):
        release = previous["release_t0"]
        ended_by = previous["expires_at"] if release is None else release
        assert successor["claimed_at"] >= min(ended_by, previous["expires_at"]), (
            f"generation {successor['generation']} acquired at {successor['claimed_at']} while "
            f"generation {previous['generation']} was live (expires {previous['expires_at']}, "
            f"release started {release})"
        )

    # commits are fenced and applied once each
    assert [c["head"] for c in commits] == list(range(1, len(commits) + 1))
    generations = [c["generation"] for c in commits]
    assert generations == sorted(generations), "an older generation committed after a newer"

    # no batch claimed twice under one generation; every batch completed exactly once
    pinned = Counter((c["generation"], batch) for c in claims for batch in c["ids"])
    assert [key for key, count in pinned.items() if count > 1] == []
    completed = Counter(b for c in commits for b in c["batches"])
    everything = seeded | {b for r in reports for b in r["enqueued"]}
    assert set(completed) == everything, "a batch was lost"
    assert max(completed.values()) == 1, "a batch was completed twice"
    check = PostgresStore(dsn, schema=name)
    try:
        assert check.list_queued_work(SESSION) == []
        assert check.session_fencing_token(SESSION) == len(leases)
        read = check.load_session()
        assert read is not None and read.head_revision == len(commits)
    finally:
        check.close()


# ---------------------------------------------------------------------------
# Killed in the middle of a commit
# ---------------------------------------------------------------------------


class RowBlocker:
    """Another connection holding a row lock on one queued batch, so a commit that completes
    it stops inside its transaction, after writing the new head, at that batch's delete."""

    def __init__(self, dsn: str, schema: str, batch_id: str) -> None:
        self.connection = psycopg.connect(dsn, autocommit=True)
        self.connection.execute("BEGIN")
        table = sql.Identifier(schema, "queued_batches")
        self.connection.execute(
            sql.SQL("SELECT 1 FROM {} WHERE batch_id = %s FOR UPDATE").format(table),
            (batch_id,),
        )

    def wait_until_blocking(self, backend_pid: int) -> None:
        give_up = time.monotonic() + 20
        while time.monotonic() < give_up:
            row = self.connection.execute(
                "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (backend_pid,)
            ).fetchone()
            if row is not None and row[0] == "Lock":
                return
            time.sleep(0.01)
        raise AssertionError(f"server process {backend_pid} never waited for the row lock")

    def terminate(self, backend_pid: int) -> None:
        self.connection.execute("SELECT pg_terminate_backend(%s)", (backend_pid,))

    def release(self) -> None:
        self.connection.execute("ROLLBACK")
        self.connection.close()


def wait_until_gone(dsn: str, backend_pid: int) -> None:
    """Wait until the server process has ended (and so rolled back whatever it held)."""
    with psycopg.connect(dsn, autocommit=True) as connection:
        give_up = time.monotonic() + 20
        while time.monotonic() < give_up:
            query = "SELECT 1 FROM pg_stat_activity WHERE pid = %s"
            if connection.execute(query, (backend_pid,)).fetchone() is None:
                return
            time.sleep(0.01)
    raise AssertionError(f"server process {backend_pid} never ended")


def _claimed_batch(store: PostgresStore, who: LeaseOwnerIdentity) -> tuple[Any, QueuedWorkClaim]:
    outcome = store.try_claim_session_execution_lease(SESSION, who, 60_000)
    assert isinstance(outcome, Acquired)
    claim = store.claim_ready_queued_work(
        SESSION, outcome.lease.fence(), who, ClaimBoundary.IDLE, 1
    )
    assert claim is not None and len(claim.batches) == 1
    return outcome.lease, claim


def test_a_connection_terminated_mid_commit_commits_nothing(schema: tuple[str, str]) -> None:
    dsn, name = schema
    clock = ManualClock(10_000)
    store = PostgresStore(dsn, clock=clock, schema=name)
    observer = PostgresStore(dsn, clock=clock, schema=name)
    try:
        store.enqueue_queued_work(wake("first"))
        second = store.enqueue_queued_work(wake("second"))
        lease, claim = _claimed_batch(store, LeaseOwnerIdentity.opaque("holder"))
        batch_id = claim.batches[0].batch_id
        before = observer.inspect_session(SESSION)
        blocker = RowBlocker(dsn, name, batch_id)
        pid = store.backend_pid()
        raised: list[BaseException] = []

        def commit() -> None:
            try:
                store.commit_runtime_state(commit_of(lease, [claim], True, "terminated"))
            except BaseException as error:
                raised.append(error)

        worker = threading.Thread(target=commit)
        worker.start()
        try:
            blocker.wait_until_blocking(pid)
            blocker.terminate(pid)
            worker.join(timeout=20)
        finally:
            blocker.release()
        assert not worker.is_alive(), "the commit never returned after its connection died"
        assert len(raised) == 1 and isinstance(raised[0], StoreServerError), raised
        assert raised[0].cause == "connection-lost" and raised[0].retryable
        assert "nothing of this operation was committed" in str(raised[0])
        # nothing partial: no head, the batch still stamped, the lease still held
        assert observer.load_session() is None
        assert observer.inspect_session(SESSION) == before
        # nothing lost: the same handle reconnects and commits the claim exactly once
        result = store.commit_runtime_state(commit_of(lease, [claim], True, "retried"))
        assert result.head_revision == 1
        assert [b.batch_id for b in observer.list_queued_work(SESSION)] == [second.batch_id]
        assert observer.load_session_execution_lease(SESSION) is None
    finally:
        store.close()
        observer.close()


def _local_identity(name: str) -> LeaseOwnerIdentity:
    boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    liveness = LocalProcessLiveness(
        socket.gethostname(), boot_id, os.getpid(), current_process_start()
    )
    return LeaseOwnerIdentity(name, f"{name}:{os.getpid()}", liveness)


def _commit_then_hang(dsn: str, schema: str, out: str, go: Any) -> None:
    """The doomed worker: claim one batch, report it, commit when told (and be killed)."""
    store = PostgresStore(dsn, schema=schema)
    lease, claim = _claimed_batch(store, _local_identity("doomed"))
    Path(out).write_text(
        json.dumps(
            {
                "pid": store.backend_pid(),
                "batch": claim.batches[0].batch_id,
                "claim": claim.claim_id,
                "lease": [lease.lease_token, lease.fencing_token],
                "owner": [lease.owner.owner_id, lease.owner.incarnation_id],
            }
        )
    )
    go.wait(30)
    store.commit_runtime_state(commit_of(lease, [claim], True, "doomed"))
    os._exit(3)  # never reached: the test kills us inside the commit


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc liveness")
def test_a_worker_killed_mid_commit_commits_nothing(
    schema: tuple[str, str], tmp_path: Path
) -> None:
    dsn, name = schema
    store = PostgresStore(dsn, schema=name)  # real clock and /proc liveness
    try:
        batch = store.enqueue_queued_work(wake("only"))
        report = tmp_path / "doomed.json"
        go = FORK.Event()
        doomed = FORK.Process(target=_commit_then_hang, args=(dsn, name, str(report), go))
        doomed.start()
        give_up = time.monotonic() + 20
        while not report.exists() or not report.read_text():
            assert time.monotonic() < give_up and doomed.is_alive(), "the worker never claimed"
            time.sleep(0.01)
        seen = json.loads(report.read_text())
        blocker = RowBlocker(dsn, name, batch.batch_id)
        try:
            go.set()
            blocker.wait_until_blocking(seen["pid"])
            assert doomed.pid is not None
            os.kill(doomed.pid, signal.SIGKILL)
            doomed.join(timeout=20)
        finally:
            blocker.release()  # the server now finishes the statement, finds no client, rolls back
        assert doomed.exitcode == -signal.SIGKILL
        wait_until_gone(dsn, seen["pid"])

        # nothing partial: no head, the batch still stamped with the dead claim
        assert store.load_session() is None
        (row, columns), *_ = store.inspect_queued_work(SESSION)
        assert (row.batch_id, columns.claim_id) == (batch.batch_id, seen["claim"])
        lease_row = store.inspect_lease_row(SESSION)
        assert lease_row is not None and lease_row.lease_token == seen["lease"][0]

        # nothing lost: the dead holder's lease is reclaimed at once and the batch completed
        successor = _local_identity("successor")
        dead_fence = store.load_session_execution_lease(SESSION)
        assert dead_fence is not None, "the dead holder's lease is still live by TTL"
        outcome = store.reclaim_session_execution_lease(
            SESSION, successor, dead_fence.fence(), 60_000
        )
        assert isinstance(outcome, Acquired), outcome
        assert outcome.lease.fencing_token == seen["lease"][1] + 1
        claim = store.claim_ready_queued_work(
            SESSION, outcome.lease.fence(), successor, ClaimBoundary.IDLE, 5
        )
        assert claim is not None and [b.batch_id for b in claim.batches] == [batch.batch_id]
        result = store.commit_runtime_state(commit_of(outcome.lease, [claim], True, "successor"))
        assert result.head_revision == 1
        assert store.list_queued_work(SESSION) == []
    finally:
        store.close()


def test_a_held_write_lock_makes_writers_wait_then_busy(schema: tuple[str, str]) -> None:
    """The write lock serialises writers; past lock_timeout_ms a writer gets the typed,
    retryable busy error and writes nothing, while readers never wait."""
    dsn, name = schema
    store = PostgresStore(dsn, schema=name, lock_timeout_ms=300)
    holder = psycopg.connect(dsn, autocommit=True)
    try:
        holder.execute("BEGIN")
        holder.execute("SELECT pg_advisory_xact_lock(%s)", (store.write_lock_key,))
        started = time.monotonic()
        with pytest.raises(StoreServerBusy) as raised:
            store.enqueue_queued_work(wake("blocked"))
        waited = time.monotonic() - started
        assert raised.value.retryable and raised.value.cause == "busy"
        assert waited >= 0.25, f"gave up after {waited:.3f}s, before lock_timeout_ms"
        assert store.list_queued_work(SESSION) == []  # a reader does not wait
        holder.execute("ROLLBACK")
        assert store.enqueue_queued_work(wake("unblocked")).enqueue_seq == 1
    finally:
        holder.close()
        store.close()
