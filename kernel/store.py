"""The store port: one transactional domain holding leases, queued work, turn inputs and commits.

Every method is atomic: it reads the injected clock once, validates everything, and then
either applies all of its writes or raises a :class:`~lashspec.kernel.errors.StoreError`
having written nothing.  Backends (``memory``, ``sqlite``) implement this protocol and pass
the same conformance suite (``tests/test_persistence_conformance.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from .types import (
    CancelOutcome,
    CancelResult,
    CancelTarget,
    CheckpointKind,
    ClaimBoundary,
    ClaimColumns,
    LeaseClaimOutcome,
    LeaseOwnerIdentity,
    LeaseRow,
    PendingTurnInput,
    PendingTurnInputDraft,
    QueuedWorkBatch,
    QueuedWorkBatchDraft,
    QueuedWorkClaim,
    RuntimeCommit,
    RuntimeCommitResult,
    SessionExecutionLease,
    SessionExecutionLeaseCompletion,
    SessionExecutionLeaseFence,
    SessionInspection,
    SessionRead,
    SuffixCancelOutcome,
    TurnInputClaim,
    VacuumReport,
)


class Store(Protocol):
    # -- session execution lease -------------------------------------------------------
    def try_claim_session_execution_lease(
        self, session_id: str, owner: LeaseOwnerIdentity, ttl_ms: int
    ) -> LeaseClaimOutcome: ...

    def reclaim_session_execution_lease(
        self,
        session_id: str,
        claimant: LeaseOwnerIdentity,
        observed_holder: SessionExecutionLeaseFence,
        ttl_ms: int,
    ) -> LeaseClaimOutcome: ...

    def renew_session_execution_lease(
        self, fence: SessionExecutionLeaseFence, ttl_ms: int
    ) -> SessionExecutionLease: ...

    def release_session_execution_lease(
        self, completion: SessionExecutionLeaseCompletion
    ) -> None: ...

    def load_session_execution_lease(self, session_id: str) -> SessionExecutionLease | None:
        """The live lease of the session, or None (read-only; for diagnostics and replay)."""
        ...

    def session_fencing_token(self, session_id: str) -> int:
        """The stored fencing token (0 if the session never had a lease)."""
        ...

    # -- queued work ---------------------------------------------------------------------
    def enqueue_queued_work(self, draft: QueuedWorkBatchDraft) -> QueuedWorkBatch: ...

    def claim_leading_ready_session_command(
        self, session_id: str, fence: SessionExecutionLeaseFence, owner: LeaseOwnerIdentity
    ) -> QueuedWorkClaim | None: ...

    def claim_ready_queued_work(
        self,
        session_id: str,
        fence: SessionExecutionLeaseFence,
        owner: LeaseOwnerIdentity,
        boundary: ClaimBoundary,
        max_batches: int,
    ) -> QueuedWorkClaim | None: ...

    def claim_ready_queued_work_by_batch_ids(
        self,
        session_id: str,
        fence: SessionExecutionLeaseFence,
        owner: LeaseOwnerIdentity,
        boundary: ClaimBoundary,
        batch_ids: Sequence[str],
    ) -> QueuedWorkClaim | None: ...

    def claim_checkpoint_work(
        self,
        session_id: str,
        fence: SessionExecutionLeaseFence,
        owner: LeaseOwnerIdentity,
        turn_id: str,
        checkpoint: CheckpointKind,
        max_inputs: int,
        max_batches: int,
    ) -> tuple[TurnInputClaim | None, QueuedWorkClaim | None]: ...

    def abandon_queued_work_claim(self, claim: QueuedWorkClaim) -> None: ...

    def cancel_queued_work_batch(
        self, session_id: str, batch_id: str
    ) -> QueuedWorkBatch | None: ...

    def list_queued_work(self, session_id: str) -> list[QueuedWorkBatch]: ...

    def list_pending_queued_work(self, session_id: str) -> list[QueuedWorkBatch]: ...

    # -- pending turn inputs -------------------------------------------------------------
    def enqueue_pending_turn_input(self, draft: PendingTurnInputDraft) -> PendingTurnInput: ...

    def list_pending_turn_inputs(self, session_id: str) -> list[PendingTurnInput]: ...

    def get_pending_turn_input(self, session_id: str, input_id: str) -> PendingTurnInput | None:
        """Any row of the session by id, in whatever state (read-only)."""
        ...

    def claim_next_turn_inputs(
        self,
        session_id: str,
        fence: SessionExecutionLeaseFence,
        owner: LeaseOwnerIdentity,
        max_inputs: int,
    ) -> TurnInputClaim | None: ...

    def claim_active_turn_inputs(
        self,
        session_id: str,
        fence: SessionExecutionLeaseFence,
        owner: LeaseOwnerIdentity,
        turn_id: str,
        checkpoint: CheckpointKind,
        max_inputs: int,
    ) -> TurnInputClaim | None: ...

    def abandon_turn_input_claim(self, claim: TurnInputClaim) -> None: ...

    def cancel_pending_turn_input(self, session_id: str, input_id: str) -> CancelOutcome:
        """The plural call with one input-id target; ``NotFound`` when nothing matched."""
        ...

    def cancel_pending_turn_inputs(
        self, session_id: str, targets: Sequence[CancelTarget]
    ) -> list[CancelResult]: ...

    def cancel_pending_turn_input_suffix(
        self, session_id: str, anchor: CancelTarget
    ) -> SuffixCancelOutcome: ...

    def vacuum(self) -> VacuumReport: ...

    # -- read-only inspection (diagnostics, conformance projection) ---------------------
    def inspect_lease_row(self, session_id: str) -> LeaseRow | None:
        """The raw lease row, live or not (None if the session never had one)."""
        ...

    def inspect_queued_work(self, session_id: str) -> list[tuple[QueuedWorkBatch, ClaimColumns]]:
        """Every batch of the session with its hidden claim columns, by enqueue_seq."""
        ...

    def inspect_turn_inputs(self, session_id: str) -> list[tuple[PendingTurnInput, ClaimColumns]]:
        """Every input row of the session (any state) with its claim columns, by enqueue_seq."""
        ...

    def inspect_session(self, session_id: str) -> SessionInspection:
        """The three inspections above and the head revision, in one read transaction."""
        ...

    # -- commit and read -----------------------------------------------------------------
    def commit_runtime_state(self, commit: RuntimeCommit) -> RuntimeCommitResult: ...

    def load_session(self) -> SessionRead | None: ...

    def close(self) -> None: ...
