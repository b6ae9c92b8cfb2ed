"""Several OS processes contend for one session's lease and work on one SQLite file.

Four worker processes (this file run as a script with ``--worker``) share a store file
with the real :class:`~lashspec.kernel.clock.SystemClock` and a short lease TTL.  Each
worker loops for a bounded number of lease rounds: it enqueues new work (replaying each
source key once), tries to acquire the session lease, claims up to two batches and two
next-turn inputs, and then does one of: commit the claims (releasing the lease, or keeping
it for a second claim-and-commit cycle), renew then commit, abandon and release, "crash"
(walk away holding everything, restarting as a new incarnation, so the lease lapses by
TTL), or stall past the TTL and then try to commit (which must be rejected).  Every
acquisition (generation, claimed_at, expires_at, renewals, release time), every claim and
every commit is written to a JSON report.  The test process then drains what is left and
checks, from the reports and the final store:

* fencing tokens are unique and gap-free, and each generation starts only after its
  predecessor expired or began releasing (one live holder at a time);
* commits are ordered by generation (no older generation commits after a newer one) and
  each happened while its lease was live; head revisions are exactly 1..N;
* no batch or input was claimed twice under one generation;
* every enqueued batch and input was completed exactly once (nothing lost, nothing twice);
* every stalled commit was rejected with SessionExecutionLeaseExpired;
* the final store is consistent: empty queue, all inputs completed with cleared claim
  columns, head revision and state equal to the last commit, no live lease.
"""

from __future__ import annotations

import itertools
import json
import random
import subprocess
import sys
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

from lashspec.kernel.errors import SessionExecutionLeaseExpired, StoreBusy, StoreError
from lashspec.kernel.sqlite import SqliteStore
from lashspec.kernel.types import (
    Acquired,
    ClaimBoundary,
    DeliveryPolicy,
    LeaseOwnerIdentity,
    MergeKey,
    NextTurn,
    PendingTurnInputDraft,
    ProcessWake,
    ProcessWakeDelivery,
    QueuedWorkBatchDraft,
    QueuedWorkClaim,
    RuntimeCommit,
    SessionCheckpoint,
    SessionExecutionLease,
    SlotPolicy,
    TurnInput,
    TurnInputClaim,
    TurnInputState,
)

SESSION = "contended"
WORKERS = 4
ROUNDS = 40  # lease rounds per worker
TTL_MS = 200
WORKER_DEADLINE_S = 20.0
INITIAL_BATCHES = 60
INITIAL_INPUTS = 30
CLAIM_MAX = 2
MAX_ENQUEUES = 30  # per worker, so claim scans stay short


def now_ms() -> int:
    """The same reading SystemClock gives the store."""
    return time.time_ns() // 1_000_000


def batch_draft(text: str, source_key: str | None, join: bool = False) -> QueuedWorkBatchDraft:
    wake = ProcessWakeDelivery(
        wake_id=f"wake:{text}",
        target_session_id=SESSION,
        process_id="multiprocess",
        sequence=0,
        input=text,
        dedupe_key=text,
    )
    return QueuedWorkBatchDraft(
        SESSION,
        (ProcessWake(wake),),
        delivery_policy=DeliveryPolicy.EARLIEST_SAFE_BOUNDARY,
        slot_policy=SlotPolicy.JOIN if join else SlotPolicy.EXCLUSIVE,
        merge_key=MergeKey.named("mp") if join else MergeKey(),
        source_key=source_key,
    )


def input_draft(text: str, source_key: str | None) -> PendingTurnInputDraft:
    return PendingTurnInputDraft(SESSION, NextTurn(), TurnInput.text(text), source_key)


# ---------------------------------------------------------------------------
# The worker (runs in its own process)
# ---------------------------------------------------------------------------


class Worker:
    def __init__(self, path: str, index: int, rounds: int, ttl_ms: int, seed: int) -> None:
        self.store = SqliteStore(path)  # real SystemClock and /proc liveness
        self.index = index
        self.rounds = rounds
        self.ttl_ms = ttl_ms
        self.rng = random.Random(seed)
        self.incarnation = 0
        self.enqueued = 0
        self.report: dict[str, Any] = {
            "worker": index,
            "leases": [],
            "claims": [],
            "commits": [],
            "stale_commits": [],
            "enqueued_batches": [],
            "enqueued_inputs": [],
            "violations": [],
            "errors": [],
            "busy": 0,
            "lost": 0,
            "crashes": 0,
        }

    @property
    def identity(self) -> LeaseOwnerIdentity:
        name = f"worker-{self.index}"
        return LeaseOwnerIdentity.opaque(name, f"{name}:inc-{self.incarnation}")

    def enqueue_some(self) -> None:
        """New work, often while others hold the lease; each source key is replayed once."""
        if self.enqueued >= MAX_ENQUEUES or self.rng.random() < 0.6:
            return
        self.enqueued += 1
        tag = f"w{self.index}-{self.enqueued}"
        if self.rng.random() < 0.8:
            draft = batch_draft(tag, f"batch:{tag}", join=self.rng.random() < 0.5)
            batch = self.store.enqueue_queued_work(draft)
            if self.store.enqueue_queued_work(draft).batch_id != batch.batch_id:
                self.report["violations"].append(f"batch source key {tag} not idempotent")
            self.report["enqueued_batches"].append(batch.batch_id)
        if self.rng.random() < 0.5:
            in_draft = input_draft(tag, f"input:{tag}")
            row = self.store.enqueue_pending_turn_input(in_draft)
            if self.store.enqueue_pending_turn_input(in_draft).input_id != row.input_id:
                self.report["violations"].append(f"input source key {tag} not idempotent")
            self.report["enqueued_inputs"].append(row.input_id)

    def claim(
        self, lease: SessionExecutionLease
    ) -> tuple[QueuedWorkClaim | None, TurnInputClaim | None]:
        fence, who = lease.fence(), self.identity
        queue = self.store.claim_ready_queued_work(
            SESSION, fence, who, ClaimBoundary.IDLE, CLAIM_MAX
        )
        inputs = self.store.claim_next_turn_inputs(SESSION, fence, who, CLAIM_MAX)
        for kind, claim, ids in (
            ("queue", queue, [b.batch_id for b in queue.batches] if queue else []),
            ("input", inputs, [i.input_id for i in inputs.inputs] if inputs else []),
        ):
            if claim is None:
                continue
            if claim.session_lease_generation != lease.fencing_token:
                self.report["violations"].append(f"{kind} claim pinned to another generation")
            self.report["claims"].append(
                {
                    "kind": kind,
                    "claim_id": claim.claim_id,
                    "ids": ids,
                    "generation": claim.session_lease_generation,
                    "fencing": claim.fencing_token,
                }
            )
        return queue, inputs

    def commit(
        self,
        lease: SessionExecutionLease,
        entry: dict[str, Any],
        queue: list[QueuedWorkClaim | None],
        inputs: list[TurnInputClaim | None],
        release: bool,
    ) -> None:
        queue_claims = [c for c in queue if c is not None]
        input_claims = [c for c in inputs if c is not None]
        commit = RuntimeCommit(
            SESSION,
            SessionCheckpoint(
                len(self.report["commits"]),
                {"worker": self.index, "generation": lease.fencing_token},
            ),
            session_execution_lease=lease.fence(),
            release_session_execution_lease=lease.completion() if release else None,
            completed_queue_claims=tuple(c.completion() for c in queue_claims),
            completed_turn_input_claims=tuple(c.completion() for c in input_claims),
        )
        before = now_ms()
        result = self.store.commit_runtime_state(commit)
        if release:
            entry["release_t0"] = before
        self.report["commits"].append(
            {
                "generation": lease.fencing_token,
                "head_revision": result.head_revision,
                "batches": [b.batch_id for c in queue_claims for b in c.batches],
                "inputs": [i.input_id for c in input_claims for i in c.inputs],
                "t_before": before,
                "state": dict(commit.checkpoint.state),
            }
        )

    def lease_round(self, lease: SessionExecutionLease, entry: dict[str, Any]) -> None:
        queue, inputs = self.claim(lease)
        action = self.rng.random()
        if action < 0.06:  # crash: walk away holding the lease and the claims
            self.report["crashes"] += 1
            self.incarnation += 1
            return
        if action < 0.12:  # stall past the TTL, then try to commit anyway
            time.sleep(self.ttl_ms * 1.5 / 1000)
            try:
                self.commit(lease, entry, [queue], [inputs], release=True)
            except StoreError as error:
                self.report["stale_commits"].append(type(error).__name__)
            else:
                self.report["violations"].append(
                    f"a commit of generation {lease.fencing_token} applied after its TTL"
                )
            return
        if action < 0.22:  # hand everything back
            if queue is not None:
                self.store.abandon_queued_work_claim(queue)
            if inputs is not None:
                self.store.abandon_turn_input_claim(inputs)
            entry["release_t0"] = now_ms()
            self.store.release_session_execution_lease(lease.completion())
            return
        if action < 0.32:
            renewed = self.store.renew_session_execution_lease(lease.fence(), self.ttl_ms)
            if (renewed.lease_token, renewed.fencing_token) != (
                lease.lease_token,
                lease.fencing_token,
            ):
                self.report["violations"].append("renew changed the generation")
            entry["renewed_expires"].append(renewed.expires_at_ms)
        shape = self.rng.random()
        if shape < 0.25:  # commit, keep the lease, and run a second claim-and-commit cycle
            self.commit(lease, entry, [queue], [inputs], release=False)
            queue, inputs = self.claim(lease)
            self.commit(lease, entry, [queue], [inputs], release=True)
        elif shape < 0.5:  # claim again while holding the first claims, settle all at once
            more_queue, more_inputs = self.claim(lease)
            self.commit(lease, entry, [queue, more_queue], [inputs, more_inputs], release=True)
        else:
            self.commit(lease, entry, [queue], [inputs], release=True)

    def run(self, deadline_s: float) -> None:
        stop_at = time.monotonic() + deadline_s
        acquired = 0
        while acquired < self.rounds and time.monotonic() < stop_at:
            self.enqueue_some()
            outcome = self.store.try_claim_session_execution_lease(
                SESSION, self.identity, self.ttl_ms
            )
            if not isinstance(outcome, Acquired):
                self.report["busy"] += 1
                time.sleep(self.rng.uniform(0.001, 0.006))
                continue
            acquired += 1
            lease = outcome.lease
            entry: dict[str, Any] = {
                "worker": self.index,
                "generation": lease.fencing_token,
                "lease_token": lease.lease_token,
                "claimed_at": lease.claimed_at_ms,
                "expires_at": lease.expires_at_ms,
                "renewed_expires": [],
                "release_t0": None,
            }
            self.report["leases"].append(entry)
            try:
                self.lease_round(lease, entry)
            except SessionExecutionLeaseExpired:
                # descheduled past the TTL between two calls: the store fenced us out
                self.report["lost"] += 1

    def write(self, out: str) -> None:
        Path(out).write_text(json.dumps(self.report))


def worker_main(argv: list[str]) -> int:
    path, index, rounds, ttl, seed, out = argv
    worker = Worker(path, int(index), int(rounds), int(ttl), int(seed))
    try:
        worker.run(WORKER_DEADLINE_S)
    except Exception:
        worker.report["errors"].append(traceback.format_exc())
    worker.write(out)
    worker.store.close()
    return 0


# ---------------------------------------------------------------------------
# The test (runs in the pytest process)
# ---------------------------------------------------------------------------


def seed_store(path: Path) -> tuple[list[str], list[str]]:
    store = SqliteStore(path)
    try:
        batches = [
            store.enqueue_queued_work(batch_draft(f"seed-{i}", None, join=i % 3 != 0)).batch_id
            for i in range(INITIAL_BATCHES)
        ]
        inputs = [
            store.enqueue_pending_turn_input(input_draft(f"seed-{i}", None)).input_id
            for i in range(INITIAL_INPUTS)
        ]
    finally:
        store.close()
    return batches, inputs


def drain(path: Path) -> dict[str, Any]:
    """Acquire the lease once every worker is gone and complete whatever is left."""
    store = SqliteStore(path)
    report: dict[str, Any] = {"leases": [], "commits": [], "claims": []}
    who = LeaseOwnerIdentity.opaque("drain")
    try:
        give_up = time.monotonic() + 10
        while True:
            outcome = store.try_claim_session_execution_lease(SESSION, who, 60_000)
            if isinstance(outcome, Acquired):
                break
            assert time.monotonic() < give_up, "the lease never became free after the workers"
            time.sleep(0.02)
        lease = outcome.lease
        entry = {
            "worker": "drain",
            "generation": lease.fencing_token,
            "lease_token": lease.lease_token,
            "claimed_at": lease.claimed_at_ms,
            "expires_at": lease.expires_at_ms,
            "renewed_expires": [],
            "release_t0": None,
        }
        report["leases"].append(entry)
        while True:
            queue = store.claim_ready_queued_work(
                SESSION, lease.fence(), who, ClaimBoundary.IDLE, 64
            )
            inputs = store.claim_next_turn_inputs(SESSION, lease.fence(), who, 64)
            if queue is None and inputs is None:
                break
            for kind, claim, ids in (
                ("queue", queue, [b.batch_id for b in queue.batches] if queue else []),
                ("input", inputs, [i.input_id for i in inputs.inputs] if inputs else []),
            ):
                if claim is not None:
                    report["claims"].append(
                        {
                            "kind": kind,
                            "claim_id": claim.claim_id,
                            "ids": ids,
                            "generation": claim.session_lease_generation,
                            "fencing": claim.fencing_token,
                        }
                    )
            state = {"worker": "drain", "generation": lease.fencing_token}
            before = now_ms()
            result = store.commit_runtime_state(
                RuntimeCommit(
                    SESSION,
                    SessionCheckpoint(0, state),
                    session_execution_lease=lease.fence(),
                    completed_queue_claims=(queue.completion(),) if queue else (),
                    completed_turn_input_claims=(inputs.completion(),) if inputs else (),
                )
            )
            report["commits"].append(
                {
                    "generation": lease.fencing_token,
                    "head_revision": result.head_revision,
                    "batches": [b.batch_id for b in queue.batches] if queue else [],
                    "inputs": [i.input_id for i in inputs.inputs] if inputs else [],
                    "t_before": before,
                    "state": state,
                }
            )
        entry["release_t0"] = now_ms()
        store.release_session_execution_lease(lease.completion())
    finally:
        store.close()
    return report


def run_workers(path: Path, tmp_path: Path) -> list[dict[str, Any]]:
    processes = []
    for index in range(WORKERS):
        out = tmp_path / f"worker-{index}.json"
        command = [
            sys.executable,
            __file__,
            "--worker",
            str(path),
            str(index),
            str(ROUNDS),
            str(TTL_MS),
            str(1_000 + index),
            str(out),
        ]
        processes.append(
            (out, subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        )
    reports = []
    for out, process in processes:
        try:
            _, stderr = process.communicate(timeout=WORKER_DEADLINE_S + 30)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
            raise AssertionError(f"worker did not finish: {stderr.decode()[-2000:]}") from None
        assert process.returncode == 0, stderr.decode()[-2000:]
        reports.append(json.loads(out.read_text()))
    return reports


def test_processes_contend_for_one_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "contended.sqlite"
    seeded_batches, seeded_inputs = seed_store(path)
    reports = run_workers(path, tmp_path)
    final = drain(path)

    for report in reports:
        assert report["errors"] == [], f"worker {report['worker']}: {report['errors']}"
        assert report["violations"] == [], f"worker {report['worker']}: {report['violations']}"

    leases = sorted(
        [lease for r in reports for lease in r["leases"]] + final["leases"],
        key=lambda lease: lease["generation"],
    )
    commits = sorted(
        [c for r in reports for c in r["commits"]] + final["commits"],
        key=lambda c: c["head_revision"],
    )
    claims = [c for r in reports for c in r["claims"]] + final["claims"]

    # -- the workload really contended ------------------------------------------------
    assert len({lease["worker"] for lease in leases}) >= 3, "too few processes ever held it"
    assert sum(r["busy"] for r in reports) > 0, "nobody ever found the lease busy"
    assert sum(r["crashes"] for r in reports) > 0 and sum(len(r["stale_commits"]) for r in reports)

    # -- one live holder at a time ------------------------------------------------------
    generations = [lease["generation"] for lease in leases]
    assert generations == list(range(1, len(leases) + 1)), "fencing tokens not unique/gap-free"
    assert len({lease["lease_token"] for lease in leases}) == len(leases)
    for previous, successor in itertools.pairwise(leases):
        expires = max([previous["expires_at"], *previous["renewed_expires"]])
        release = previous["release_t0"]
        ended_by = expires if release is None else min(expires, release)
        assert successor["claimed_at"] >= ended_by, (
            f"generation {successor['generation']} acquired at {successor['claimed_at']} while "
            f"generation {previous['generation']} was live until {expires} "
            f"(release started {release})"
        )
        assert successor["claimed_at"] >= previous["claimed_at"]

    # -- commits are fenced -------------------------------------------------------------
    assert [c["head_revision"] for c in commits] == list(range(1, len(commits) + 1))
    commit_generations = [c["generation"] for c in commits]
    assert commit_generations == sorted(commit_generations), "an older generation committed late"
    expiry = {
        lease["generation"]: max([lease["expires_at"], *lease["renewed_expires"]])
        for lease in leases
    }
    for c in commits:
        assert c["t_before"] < expiry[c["generation"]], f"commit outside its lease: {c}"
    stale = [kind for r in reports for kind in r["stale_commits"]]
    assert set(stale) == {"SessionExecutionLeaseExpired"}, stale

    # -- claims: never twice under one generation -------------------------------------
    for kind in ("queue", "input"):
        pinned = Counter(
            (c["generation"], row) for c in claims if c["kind"] == kind for row in c["ids"]
        )
        doubled = [key for key, count in pinned.items() if count > 1]
        assert doubled == [], f"{kind} rows claimed twice under one generation: {doubled}"

    # -- every row completed exactly once ---------------------------------------------
    all_batches = set(seeded_batches) | {b for r in reports for b in r["enqueued_batches"]}
    all_inputs = set(seeded_inputs) | {i for r in reports for i in r["enqueued_inputs"]}
    completed_batches = Counter(b for c in commits for b in c["batches"])
    completed_inputs = Counter(i for c in commits for i in c["inputs"])
    assert set(completed_batches) == all_batches, "a batch was lost"
    assert set(completed_inputs) == all_inputs, "an input was lost"
    assert max(completed_batches.values()) == 1, "a batch was completed twice"
    assert max(completed_inputs.values()) == 1, "an input was completed twice"

    # -- the final store is consistent ------------------------------------------------
    store = SqliteStore(path)
    try:
        assert store.list_queued_work(SESSION) == []
        assert store.list_pending_turn_inputs(SESSION) == []
        rows = store.inspect_turn_inputs(SESSION)
        assert {row.input_id for row, _ in rows} == all_inputs
        assert all(row.state is TurnInputState.COMPLETED for row, _ in rows)
        assert all(claim.claim_token is None for _, claim in rows)
        read = store.load_session()
        assert read is not None and read.head_revision == len(commits)
        assert dict(read.checkpoint.state) == commits[-1]["state"]
        assert store.load_session_execution_lease(SESSION) is None
        assert store.session_fencing_token(SESSION) == len(leases)
    finally:
        store.close()


# ---------------------------------------------------------------------------
# Write-lock fairness: a newcomer among busy writers gets in, and nobody sees a raw error
# ---------------------------------------------------------------------------

HAMMER_WORKERS = 4
HAMMER_MIN_WRITES = (
    40  # each busy writer writes at least this many, then until the newcomer is done
)
NEWCOMER_WRITES = 20
HAMMER_BUSY_TIMEOUT_MS = 2_000
HAMMER_DEADLINE_S = 30.0


def _wait_for(condition: Any, give_up: float, what: str) -> None:
    while not condition():
        if time.monotonic() > give_up:
            raise TimeoutError(f"gave up waiting for {what}")
        time.sleep(0.005)


def hammer_main(argv: list[str]) -> int:
    """One writer process.  A busy writer enqueues back to back from the go file on, until it
    has written its minimum and the newcomer is done; the newcomer waits until the busy
    writers are well under way, writes its batches, then drops the done file.  StoreBusy is
    retryable, so it is counted and retried; any other error ends the worker and is reported
    with its type."""
    path, role, name, go_file, done_file, out = argv
    report: dict[str, Any] = {"worker": name, "written": 0, "busy": 0, "errors": []}
    store = SqliteStore(path, busy_timeout_ms=HAMMER_BUSY_TIMEOUT_MS)
    give_up = time.monotonic() + HAMMER_DEADLINE_S
    try:
        _wait_for(Path(go_file).exists, give_up, "the go file")
        if role == "newcomer":
            _wait_for(
                lambda: len(store.list_queued_work(SESSION)) >= HAMMER_WORKERS * 5,
                give_up,
                "the busy writers to get going",
            )

        def more() -> bool:
            if role == "newcomer":
                return bool(report["written"] < NEWCOMER_WRITES)
            return report["written"] < HAMMER_MIN_WRITES or not Path(done_file).exists()

        while more():
            if time.monotonic() > give_up:
                raise TimeoutError(f"{name} wrote only {report['written']} batches in time")
            try:
                store.enqueue_queued_work(batch_draft(f"{name}-{report['written']}", None))
            except StoreBusy:
                report["busy"] += 1
                continue
            report["written"] += 1
    except Exception as error:
        report["errors"].append(f"{type(error).__module__}.{type(error).__name__}: {error}")
    finally:
        if role == "newcomer":
            Path(done_file).touch()  # also on failure, so the busy writers stop
        store.close()
    Path(out).write_text(json.dumps(report))
    return 0


def test_a_newcomer_among_busy_writers_gets_in_and_nobody_sees_a_raw_error(
    tmp_path: Path,
) -> None:
    """Four processes write back to back on one file and keep writing until a fifth, started
    while they are at it, has done all its writes.  Lock waits are polled with jitter, so the
    newcomer is not starved; every worker must finish, and none may ever see an untyped
    sqlite3 error (a lock timeout would be the typed, retryable StoreBusy)."""
    path = tmp_path / "hammered.sqlite"
    SqliteStore(path).close()
    go_file, done_file = tmp_path / "go", tmp_path / "newcomer-done"
    workers = []
    for role, name in [("busy", f"busy-{i}") for i in range(HAMMER_WORKERS)] + [
        ("newcomer", "newcomer")
    ]:
        out = tmp_path / f"{name}.json"
        command = [sys.executable, __file__, "--hammer", str(path), role, name]
        command += [str(go_file), str(done_file), str(out)]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        workers.append((out, process))
    go_file.touch()

    reports = []
    for out, process in workers:
        try:
            _, stderr = process.communicate(timeout=HAMMER_DEADLINE_S + 30)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
            raise AssertionError(f"writer did not finish: {stderr.decode()[-2000:]}") from None
        assert process.returncode == 0, stderr.decode()[-2000:]
        reports.append(json.loads(out.read_text()))

    for report in reports:
        assert report["errors"] == [], f"{report['worker']}: {report['errors']}"
    written = {report["worker"]: report["written"] for report in reports}
    assert written.pop("newcomer") == NEWCOMER_WRITES, "the newcomer never got all its writes in"
    assert all(count >= HAMMER_MIN_WRITES for count in written.values()), written

    store = SqliteStore(path)
    try:
        batches = store.list_queued_work(SESSION)
    finally:
        store.close()
    assert len(batches) == sum(report["written"] for report in reports)
    assert len({b.enqueue_seq for b in batches}) == len(batches)


if __name__ == "__main__" and sys.argv[1:2] == ["--worker"]:
    sys.exit(worker_main(sys.argv[2:]))
if __name__ == "__main__" and sys.argv[1:2] == ["--hammer"]:
    sys.exit(hammer_main(sys.argv[2:]))
