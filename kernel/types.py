"""Value types of the kernel: identities, leases, queued work, turn inputs, commits.

All types are immutable (frozen dataclasses).  Field names follow lash-core so that a
reader of either code base can map one to the other; wire strings (``.value`` of the
enums) are lash-core's snake_case names.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import LeaseTimingsError, UnsettledQueuedWorkClaim, UnsettledTurnInputClaim

# ---------------------------------------------------------------------------
# Owner identity and liveness
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpaqueLiveness:
    """No proof of death is possible; such holders are recovered only by TTL expiry."""

    kind: Literal["opaque"] = "opaque"


@dataclass(frozen=True, slots=True)
class LocalProcessLiveness:
    """A process on one host and boot; dead iff its pid is gone or its start time changed."""

    host_id: str
    boot_id: str
    pid: int
    process_start: str
    kind: Literal["local_process"] = "local_process"


Liveness = OpaqueLiveness | LocalProcessLiveness
OPAQUE = OpaqueLiveness()


@dataclass(frozen=True, slots=True)
class LeaseOwnerIdentity:
    """A logical owner (``owner_id``) in one process lifetime (``incarnation_id``)."""

    owner_id: str
    incarnation_id: str
    liveness: Liveness = OPAQUE

    @classmethod
    def opaque(cls, owner_id: str, incarnation_id: str | None = None) -> LeaseOwnerIdentity:
        return cls(owner_id, incarnation_id or f"{owner_id}:incarnation", OPAQUE)

    def same_incarnation(self, other: LeaseOwnerIdentity) -> bool:
        """Owner id and incarnation equal; liveness is deliberately not compared."""
        return self.owner_id == other.owner_id and self.incarnation_id == other.incarnation_id


# ---------------------------------------------------------------------------
# Session execution lease
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LeaseTimings:
    """TTL and renew interval of a lease lane; ``ttl >= 3 * renew`` survives two missed renewals."""

    ttl_ms: int = 30_000
    renew_interval_ms: int = 10_000

    def __post_init__(self) -> None:
        if self.ttl_ms < 1:
            raise LeaseTimingsError("TtlTooSmall", f"lease ttl must be >= 1 ms, got {self.ttl_ms}")
        if self.renew_interval_ms < 1:
            raise LeaseTimingsError(
                "RenewIntervalTooSmall",
                f"lease renew interval must be >= 1 ms, got {self.renew_interval_ms}",
            )
        if self.ttl_ms < 3 * self.renew_interval_ms:
            raise LeaseTimingsError(
                "TtlRenewRatioTooSmall",
                f"lease ttl {self.ttl_ms} ms must be at least 3 x renew interval "
                f"{self.renew_interval_ms} ms",
            )

    @classmethod
    def from_ttl(cls, ttl_ms: int) -> LeaseTimings:
        return cls(ttl_ms, ttl_ms // 3)


@dataclass(frozen=True, slots=True)
class SessionExecutionLeaseFence:
    """Proof of holding the lease, presented to every fenced write (claims, commits, renew)."""

    session_id: str
    owner: LeaseOwnerIdentity
    lease_token: str
    fencing_token: int


@dataclass(frozen=True, slots=True)
class SessionExecutionLeaseCompletion:
    """The same four fields as a fence, presented to release the lease."""

    session_id: str
    owner: LeaseOwnerIdentity
    lease_token: str
    fencing_token: int


@dataclass(frozen=True, slots=True)
class SessionExecutionLease:
    session_id: str
    owner: LeaseOwnerIdentity
    lease_token: str
    fencing_token: int
    claimed_at_ms: int
    expires_at_ms: int

    def fence(self) -> SessionExecutionLeaseFence:
        return SessionExecutionLeaseFence(
            self.session_id, self.owner, self.lease_token, self.fencing_token
        )

    def completion(self) -> SessionExecutionLeaseCompletion:
        return SessionExecutionLeaseCompletion(
            self.session_id, self.owner, self.lease_token, self.fencing_token
        )


@dataclass(frozen=True, slots=True)
class LeaseRow:
    """The stored lease row of a session; owner and token are None after release."""

    session_id: str
    owner: LeaseOwnerIdentity | None
    lease_token: str | None
    fencing_token: int
    claimed_at_ms: int
    expires_at_ms: int

    def is_live(self, now_ms: int) -> bool:
        return self.lease_token is not None and self.expires_at_ms > now_ms


@dataclass(frozen=True, slots=True)
class ClaimColumns:
    """Hidden claim bookkeeping of a queued batch or turn-input row."""

    claim_id: str | None = None
    claim_owner: LeaseOwnerIdentity | None = None
    claim_token: str | None = None
    claim_fencing_token: int = 0
    claim_session_lease_generation: int = 0

    @property
    def is_claimed(self) -> bool:
        return self.claim_token is not None


@dataclass(frozen=True, slots=True)
class Acquired:
    lease: SessionExecutionLease


@dataclass(frozen=True, slots=True)
class Busy:
    holder: SessionExecutionLease


LeaseClaimOutcome = Acquired | Busy


# ---------------------------------------------------------------------------
# Queued work
# ---------------------------------------------------------------------------


class QueuedWorkClass(enum.StrEnum):
    SESSION_COMMAND = "session_command"
    TURN_WORK = "turn_work"


class DeliveryPolicy(enum.StrEnum):
    EARLIEST_SAFE_BOUNDARY = "earliest_safe_boundary"
    AFTER_CURRENT_TURN_COMMIT = "after_current_turn_commit"


class SlotPolicy(enum.StrEnum):
    JOIN = "join"
    EXCLUSIVE = "exclusive"


class ClaimBoundary(enum.StrEnum):
    """Where queued work is claimed: between turns, or at an active turn's checkpoint."""

    IDLE = "idle"
    ACTIVE_TURN_CHECKPOINT = "active_turn_checkpoint"


@dataclass(frozen=True, slots=True)
class MergeKey:
    """``never`` | ``payload_default`` | ``group`` (with a name); compared by equality."""

    kind: Literal["never", "payload_default", "group"] = "never"
    group: str | None = None

    @classmethod
    def named(cls, group: str) -> MergeKey:
        return cls("group", group)


MERGE_NEVER = MergeKey()


@dataclass(frozen=True, slots=True)
class ProcessWakeDelivery:
    wake_id: str
    target_session_id: str
    process_id: str
    sequence: int
    input: str
    dedupe_key: str
    event_type: str = "process.wake"
    created_at_ms: int = 0


@dataclass(frozen=True, slots=True)
class ProcessWake:
    wake: ProcessWakeDelivery
    type: Literal["process_wake"] = "process_wake"

    @property
    def work_class(self) -> QueuedWorkClass:
        return QueuedWorkClass.TURN_WORK


@dataclass(frozen=True, slots=True)
class AgentFrameTask:
    frame_id: str
    task: str
    type: Literal["agent_frame_task"] = "agent_frame_task"

    @property
    def work_class(self) -> QueuedWorkClass:
        return QueuedWorkClass.TURN_WORK


@dataclass(frozen=True, slots=True)
class RefreshToolCatalog:
    reason: str
    kind: Literal["refresh_tool_catalog"] = "refresh_tool_catalog"


@dataclass(frozen=True, slots=True)
class ResetSession:
    reason: str
    kind: Literal["reset_session"] = "reset_session"


SessionCommandKind = RefreshToolCatalog | ResetSession


@dataclass(frozen=True, slots=True)
class SessionCommand:
    command: SessionCommandKind
    type: Literal["session_command"] = "session_command"

    @property
    def work_class(self) -> QueuedWorkClass:
        return QueuedWorkClass.SESSION_COMMAND


QueuedWorkPayload = ProcessWake | AgentFrameTask | SessionCommand


def batch_work_class(payloads: tuple[QueuedWorkPayload, ...]) -> QueuedWorkClass | None:
    """The common class of all payloads; ``None`` for an empty or mixed batch."""
    classes = {p.work_class for p in payloads}
    return classes.pop() if len(classes) == 1 else None


@dataclass(frozen=True, slots=True)
class QueuedWorkBatchDraft:
    session_id: str
    payloads: tuple[QueuedWorkPayload, ...]
    delivery_policy: DeliveryPolicy = DeliveryPolicy.EARLIEST_SAFE_BOUNDARY
    slot_policy: SlotPolicy = SlotPolicy.EXCLUSIVE
    merge_key: MergeKey = MERGE_NEVER
    available_at_ms: int = 0
    source_key: str | None = None


@dataclass(frozen=True, slots=True)
class QueuedWorkItem:
    item_id: str
    payload: QueuedWorkPayload


@dataclass(frozen=True, slots=True)
class QueuedWorkBatch:
    batch_id: str
    session_id: str
    enqueue_seq: int
    source_key: str | None
    delivery_policy: DeliveryPolicy
    slot_policy: SlotPolicy
    merge_key: MergeKey
    available_at_ms: int
    enqueued_at_ms: int
    items: tuple[QueuedWorkItem, ...]

    @property
    def work_class(self) -> QueuedWorkClass | None:
        return batch_work_class(tuple(i.payload for i in self.items))


@dataclass(frozen=True, slots=True)
class QueuedWorkCompletion:
    session_id: str
    claim_id: str
    lease_token: str
    batch_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class QueuedWorkClaim:
    session_id: str
    claim_id: str
    owner: LeaseOwnerIdentity
    lease_token: str
    fencing_token: int
    session_lease_generation: int
    batches: tuple[QueuedWorkBatch, ...]

    def completion(self) -> QueuedWorkCompletion:
        return QueuedWorkCompletion(
            self.session_id,
            self.claim_id,
            self.lease_token,
            tuple(b.batch_id for b in self.batches),
        )


# ---------------------------------------------------------------------------
# Pending turn inputs
# ---------------------------------------------------------------------------


class CheckpointKind(enum.StrEnum):
    AFTER_WORK = "after_work"
    BEFORE_COMPLETION = "before_completion"


class TurnInputCheckpointBoundary(enum.StrEnum):
    """``after_work`` admits every checkpoint kind; ``before_completion`` only that kind."""

    AFTER_WORK = "after_work"
    BEFORE_COMPLETION = "before_completion"

    def admits(self, checkpoint: CheckpointKind) -> bool:
        if self is TurnInputCheckpointBoundary.AFTER_WORK:
            return True
        return checkpoint is CheckpointKind.BEFORE_COMPLETION


class TurnInputState(enum.StrEnum):
    PENDING_ACTIVE = "pending_active"
    DEFERRED_NEXT_TURN = "deferred_next_turn"
    ACCEPTED = "accepted"
    CANCELLED = "cancelled"
    COMPLETED = "completed"

    @property
    def is_pending(self) -> bool:
        return self in (TurnInputState.PENDING_ACTIVE, TurnInputState.DEFERRED_NEXT_TURN)

    @property
    def is_terminal(self) -> bool:
        return self in (TurnInputState.CANCELLED, TurnInputState.COMPLETED)


@dataclass(frozen=True, slots=True)
class NextTurn:
    scope: Literal["next_turn"] = "next_turn"

    def admits_checkpoint(self, checkpoint: CheckpointKind) -> bool:
        return False


@dataclass(frozen=True, slots=True)
class ActiveTurn:
    turn_id: str
    min_boundary: TurnInputCheckpointBoundary = TurnInputCheckpointBoundary.AFTER_WORK
    scope: Literal["active_turn"] = "active_turn"

    def admits_checkpoint(self, checkpoint: CheckpointKind) -> bool:
        return self.min_boundary.admits(checkpoint)


TurnInputIngress = NextTurn | ActiveTurn


@dataclass(frozen=True, slots=True)
class TextItem:
    text: str
    type: Literal["text"] = "text"


@dataclass(frozen=True, slots=True)
class AttachmentItem:
    media_type: str
    data: bytes
    type: Literal["attachment"] = "attachment"


TurnInputItem = TextItem | AttachmentItem


@dataclass(frozen=True, slots=True)
class TurnInput:
    items: tuple[TurnInputItem, ...]

    @classmethod
    def text(cls, text: str) -> TurnInput:
        return cls((TextItem(text),))

    def first_text(self) -> str | None:
        """The text of the first item if that item is text (the scenario DSL's notion)."""
        if self.items and isinstance(self.items[0], TextItem):
            return self.items[0].text
        return None


@dataclass(frozen=True, slots=True)
class PendingTurnInputDraft:
    session_id: str
    ingress: TurnInputIngress
    input: TurnInput
    source_key: str | None = None
    input_id: str | None = None


@dataclass(frozen=True, slots=True)
class PendingTurnInput:
    input_id: str
    session_id: str
    enqueue_seq: int
    source_key: str | None
    ingress: TurnInputIngress
    state: TurnInputState
    enqueued_at_ms: int
    input: TurnInput


@dataclass(frozen=True, slots=True)
class NextTurnMode:
    kind: Literal["next_turn"] = "next_turn"


@dataclass(frozen=True, slots=True)
class ActiveTurnMode:
    turn_id: str
    checkpoint: CheckpointKind
    kind: Literal["active_turn"] = "active_turn"


TurnInputClaimMode = NextTurnMode | ActiveTurnMode


@dataclass(frozen=True, slots=True)
class TurnInputCompletion:
    session_id: str
    claim_id: str
    lease_token: str
    input_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TurnInputClaim:
    session_id: str
    claim_id: str
    owner: LeaseOwnerIdentity
    lease_token: str
    fencing_token: int
    session_lease_generation: int
    mode: TurnInputClaimMode
    inputs: tuple[PendingTurnInput, ...]

    def completion(self) -> TurnInputCompletion:
        return TurnInputCompletion(
            self.session_id,
            self.claim_id,
            self.lease_token,
            tuple(i.input_id for i in self.inputs),
        )


@dataclass(frozen=True, slots=True)
class ClaimDiagnostics:
    """Why a row could not be cancelled: who holds it and under which generation."""

    state: TurnInputState
    claim_id: str | None
    claim_owner: LeaseOwnerIdentity | None
    claim_session_lease_generation: int | None
    claim_fencing_token: int


@dataclass(frozen=True, slots=True)
class InputIdTarget:
    input_id: str
    kind: Literal["input_id"] = "input_id"


@dataclass(frozen=True, slots=True)
class SourceKeyTarget:
    source_key: str
    kind: Literal["source_key"] = "source_key"


CancelTarget = InputIdTarget | SourceKeyTarget


@dataclass(frozen=True, slots=True)
class Cancelled:
    input: PendingTurnInput
    outcome: Literal["cancelled"] = "cancelled"


@dataclass(frozen=True, slots=True)
class AlreadyClaimed:
    input: PendingTurnInput
    claim: ClaimDiagnostics | None
    outcome: Literal["already_claimed"] = "already_claimed"


@dataclass(frozen=True, slots=True)
class AlreadyCompleted:
    input: PendingTurnInput
    outcome: Literal["already_completed"] = "already_completed"


@dataclass(frozen=True, slots=True)
class AlreadyCancelled:
    input: PendingTurnInput
    outcome: Literal["already_cancelled"] = "already_cancelled"


@dataclass(frozen=True, slots=True)
class NotFound:
    outcome: Literal["not_found"] = "not_found"


CancelOutcome = Cancelled | AlreadyClaimed | AlreadyCompleted | AlreadyCancelled | NotFound


@dataclass(frozen=True, slots=True)
class CancelResult:
    target: CancelTarget
    outcome: CancelOutcome


@dataclass(frozen=True, slots=True)
class SuffixOutcomes:
    anchor: CancelTarget
    outcomes: tuple[CancelOutcome, ...]


@dataclass(frozen=True, slots=True)
class AnchorNotFound:
    anchor: CancelTarget


SuffixCancelOutcome = SuffixOutcomes | AnchorNotFound


@dataclass(frozen=True, slots=True)
class VacuumReport:
    removed_pending_turn_input_tombstone_count: int
    removed_node_count: int = 0


# ---------------------------------------------------------------------------
# Checkpoint and commit
# ---------------------------------------------------------------------------

JsonValue = Any  # a value json.dumps accepts; kept loose on purpose


@dataclass(frozen=True, slots=True)
class SessionCheckpoint:
    """What a commit persists about the turn: its index plus opaque runtime state."""

    turn_index: int
    state: Mapping[str, JsonValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RuntimeTurnCommitStamp:
    session_id: str
    turn_id: str
    turn_commit_hash: str


@dataclass(frozen=True, slots=True)
class RuntimeCommit:
    session_id: str
    checkpoint: SessionCheckpoint
    expected_head_revision: int | None = None
    session_execution_lease: SessionExecutionLeaseFence | None = None
    release_session_execution_lease: SessionExecutionLeaseCompletion | None = None
    turn_commit: RuntimeTurnCommitStamp | None = None
    completed_queue_claims: tuple[QueuedWorkCompletion, ...] = ()
    completed_turn_input_claims: tuple[TurnInputCompletion, ...] = ()
    enqueued_queue_batches: tuple[QueuedWorkBatchDraft, ...] = ()
    interrupted_turn_input_turn_id: str | None = None

    def validate_claim_settlement(
        self,
        originating_queue_claims: Sequence[QueuedWorkCompletion],
        originating_turn_input_claims: Sequence[TurnInputCompletion],
    ) -> None:
        """Refuse a turn commit that leaves a claim the turn holds unsettled.

        Every originating claim must appear among the commit's completions (same session and
        claim id); lash checks this at the turn boundary before the commit reaches the store.
        Raises :class:`UnsettledQueuedWorkClaim` or :class:`UnsettledTurnInputClaim` for the
        first claim missing.
        """
        queue_completed = {(c.session_id, c.claim_id) for c in self.completed_queue_claims}
        for queue_claim in originating_queue_claims:
            if (queue_claim.session_id, queue_claim.claim_id) not in queue_completed:
                raise UnsettledQueuedWorkClaim(queue_claim.session_id, queue_claim.claim_id)
        inputs_completed = {(c.session_id, c.claim_id) for c in self.completed_turn_input_claims}
        for input_claim in originating_turn_input_claims:
            if (input_claim.session_id, input_claim.claim_id) not in inputs_completed:
                raise UnsettledTurnInputClaim(input_claim.session_id, input_claim.claim_id)


@dataclass(frozen=True, slots=True)
class RuntimeCommitResult:
    head_revision: int
    checkpoint_ref: str
    enqueued_queue_batches: tuple[QueuedWorkBatch, ...]


@dataclass(frozen=True, slots=True)
class SessionRead:
    session_id: str
    head_revision: int
    checkpoint: SessionCheckpoint
    checkpoint_ref: str


#: keys lash drops anywhere in a commit before hashing it: graph node ids and timestamps change
#: when the same turn is replayed, so they are not part of the commit's identity
_VOLATILE_HASH_KEYS = frozenset({"node_id", "parent_node_id", "leaf_node_id", "timestamp"})


def _plain(value: Any) -> JsonValue:
    """A value as plain JSON data: dataclasses become objects (every field), enums strings."""
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _scrub_volatile(value: JsonValue) -> JsonValue:
    """Drop the keys lash scrubs: volatile keys everywhere, and ``id`` on a message or a
    message part (recognised by their keys, as lash does)."""
    if isinstance(value, dict):
        is_message = "role" in value and "parts" in value
        is_part = {"kind", "content", "prune_state"} <= value.keys()
        return {
            k: _scrub_volatile(v)
            for k, v in value.items()
            if k not in _VOLATILE_HASH_KEYS and not (k == "id" and (is_message or is_part))
        }
    if isinstance(value, list):
        return [_scrub_volatile(v) for v in value]
    return value


def _hash_content(commit: RuntimeCommit) -> JsonValue:
    """The whole commit except what may differ between two deliveries of the same turn
    commit: the CAS revision, the lease fence, the lease release and the stamp itself."""
    content = _plain(commit)
    for excluded in (
        "expected_head_revision",
        "session_execution_lease",
        "release_session_execution_lease",
        "turn_commit",
    ):
        del content[excluded]
    return _scrub_volatile(content)


def turn_commit_hash(commit: RuntimeCommit) -> str:
    """Stable SHA-256 of a commit's identity (lash's ``RuntimeCommit::turn_commit_hash``)."""
    canonical = json.dumps(_hash_content(commit), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class SessionInspection:
    """Everything the store holds for one session, read in one transaction (diagnostics)."""

    lease_row: LeaseRow | None
    queued_work: tuple[tuple[QueuedWorkBatch, ClaimColumns], ...]
    turn_inputs: tuple[tuple[PendingTurnInput, ClaimColumns], ...]
    head_revision: int  # 0 when no commit was applied for the session
