"""Apply the abstract actions of docs/trace-format.md to a real kernel store.

The adapter plays the runtime workers of the abstract system: it owns each owner's process
(a :class:`FakeProcessTable` entry), its incarnation and its process-local memory (the fence
it holds, the claims it holds), the store's :class:`ManualClock`, and the mapping between
abstract slots and the kernel's ids.  :meth:`KernelAdapter.apply` returns the outcome record
of §4 and :meth:`KernelAdapter.observe` projects the store (plus owner memory) onto the state
variables of §2, so a trace can be checked step by step.  Nothing here decides semantics:
every decision is the kernel's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar, cast

from ..kernel.clock import FakeProcessTable, ManualClock
from ..kernel.errors import (
    HeadRevisionConflict,
    InvalidRequest,
    PendingTurnInputSourceKeyConflict,
    QueuedWorkClaimSuperseded,
    RuntimeTurnCommitConflict,
    SessionBindingMismatch,
    SessionExecutionLeaseExpired,
    TurnInputClaimSuperseded,
)
from ..kernel.memory import InMemoryStore
from ..kernel.store import Store
from ..kernel.types import (
    Acquired,
    ActiveTurn,
    AgentFrameTask,
    AlreadyCancelled,
    AlreadyClaimed,
    AlreadyCompleted,
    AnchorNotFound,
    Cancelled,
    CancelOutcome,
    CheckpointKind,
    ClaimBoundary,
    DeliveryPolicy,
    InputIdTarget,
    LeaseOwnerIdentity,
    LocalProcessLiveness,
    MergeKey,
    NextTurn,
    NotFound,
    PendingTurnInputDraft,
    ProcessWake,
    ProcessWakeDelivery,
    QueuedWorkBatchDraft,
    QueuedWorkClaim,
    QueuedWorkCompletion,
    QueuedWorkPayload,
    RefreshToolCatalog,
    RuntimeCommit,
    RuntimeCommitResult,
    RuntimeTurnCommitStamp,
    SessionCheckpoint,
    SessionCommand,
    SessionExecutionLease,
    SessionExecutionLeaseCompletion,
    SessionExecutionLeaseFence,
    SlotPolicy,
    TurnInput,
    TurnInputCheckpointBoundary,
    TurnInputClaim,
    TurnInputCompletion,
    TurnInputIngress,
    turn_commit_hash,
)
from ..model.kernel_model import BATCH_CATALOGUE
from .checkpoints import CheckpointLedger, CheckpointRefs, turn_checkpoint
from .store_reads import check_store_reads
from .store_transactions import TransactionKindCheck, has_transaction_counts

SESSION = "session-0"
SESSION1 = "session-1"
TURN = "turn-0"
TTL_MS = 60_000
HOST, BOOT = "model-host", "model-boot"


class UnknownAction(ValueError):
    """A trace names an action that is not in the vocabulary."""


class BadActionParams(ValueError):
    """An action's parameters are missing, of the wrong type or out of the bounds."""


# -- the slot catalogues (docs/trace-format.md §1) ----------------------------------------


#: The catalogue's merge keys (lash compares merge keys by equality).
_MERGE_KEYS = {"never": MergeKey("never"), "payload_default": MergeKey("payload_default")}


def batch_draft(slot: int) -> QueuedWorkBatchDraft:
    """Slot ``b{slot}``'s draft: the model's catalogue row (class, delivery, slot policy,
    merge key) with the payloads of trace-format.md §1."""
    if not 0 <= slot < len(BATCH_CATALOGUE):
        last = len(BATCH_CATALOGUE) - 1
        raise BadActionParams(f"batch slot b{slot} is not in the catalogue (b0..b{last})")
    row = BATCH_CATALOGUE[slot]
    payloads: tuple[QueuedWorkPayload, ...]
    if row["payload"] == "RefreshToolCatalog":
        payloads = (SessionCommand(RefreshToolCatalog(f"b{slot}")),)
    else:
        delivery = ProcessWakeDelivery(
            f"wake:b{slot}", SESSION, f"process:b{slot}", 1, f"b{slot}", f"wake:b{slot}:1"
        )
        payloads = (ProcessWake(delivery),)
        if slot == 1:
            # two payloads of one work class: the wake and an agent-frame task
            payloads += (AgentFrameTask(f"frame:b{slot}", f"task:b{slot}"),)
    return QueuedWorkBatchDraft(
        SESSION,
        payloads,
        DeliveryPolicy(row["delivery"]),
        SlotPolicy(row["slot_policy"]),
        _MERGE_KEYS[row["merge_key"]],
        source_key=f"batch:b{slot}",
    )


def session1_batch_draft() -> QueuedWorkBatchDraft:
    """Session-1's one batch (trace-format.md §1): a wake under source key ``batch:b0``,
    session-0 slot b0's key, since source keys are deduplicated per session."""
    delivery = ProcessWakeDelivery("wake:s1b0", SESSION1, "process:s1b0", 1, "s1b0", "wake:s1b0:1")
    return QueuedWorkBatchDraft(SESSION1, (ProcessWake(delivery),), source_key="batch:b0")


def session1_input_draft() -> PendingTurnInputDraft:
    """Session-1's one input (trace-format.md §1, ``second_session = 2``): a next-turn input
    under source key ``input:i0``, session-0 slot i0's key, since keys are per session."""
    return PendingTurnInputDraft(
        SESSION1, NextTurn(), TurnInput.text("s1i0"), source_key="input:i0"
    )


def input_ingress(slot: int) -> TurnInputIngress:
    if slot == 0:
        return NextTurn()
    if slot == 1:
        return ActiveTurn(TURN, TurnInputCheckpointBoundary.AFTER_WORK)
    if slot == 2:
        return ActiveTurn(TURN, TurnInputCheckpointBoundary.BEFORE_COMPLETION)
    raise BadActionParams(f"input slot i{slot} is not in the catalogue (i0..i2)")


def input_draft(slot: int, changed: bool = False) -> PendingTurnInputDraft:
    text = f"i{slot}:changed" if changed else f"i{slot}"
    return PendingTurnInputDraft(
        SESSION, input_ingress(slot), TurnInput.text(text), source_key=f"input:i{slot}"
    )


# -- owners -------------------------------------------------------------------------------


@dataclass
class OwnerMemory:
    incarnation: int = 0
    alive: bool = True
    fence: SessionExecutionLease | None = None
    queue_claim: QueuedWorkClaim | None = None
    queue_rows: frozenset[int] = frozenset()
    input_claim: TurnInputClaim | None = None
    input_rows: frozenset[int] = frozenset()
    s1_fence: SessionExecutionLease | None = None  # session-1's lease (second_session)
    s1_claim: QueuedWorkClaim | None = None

    def forget_claims(self) -> None:
        self.queue_claim, self.queue_rows = None, frozenset()
        self.input_claim, self.input_rows = None, frozenset()


def identity(owner: int, incarnation: int) -> LeaseOwnerIdentity:
    return LeaseOwnerIdentity(
        f"owner-{owner}",
        f"owner-{owner}:inc-{incarnation}",
        LocalProcessLiveness(HOST, BOOT, 1000 + owner, f"start-{incarnation}"),
    )


ERROR_TAGS: tuple[type[Exception], ...] = (
    SessionBindingMismatch,
    HeadRevisionConflict,
    RuntimeTurnCommitConflict,
    SessionExecutionLeaseExpired,
    QueuedWorkClaimSuperseded,
    TurnInputClaimSuperseded,
    PendingTurnInputSourceKeyConflict,
    InvalidRequest,
)

CANCEL_TAGS: dict[type, str] = {
    Cancelled: "Cancelled",
    AlreadyClaimed: "AlreadyClaimed",
    AlreadyCompleted: "AlreadyCompleted",
    AlreadyCancelled: "AlreadyCancelled",
    NotFound: "NotFound",
}

StoreFactory = Callable[[ManualClock, FakeProcessTable], Store]


def memory_store_factory(clock: ManualClock, processes: FakeProcessTable) -> Store:
    return InMemoryStore(clock=clock, liveness=processes)


@dataclass
class _World:
    store: Store
    clock: ManualClock
    processes: FakeProcessTable
    owners: list[OwnerMemory]
    batch_ids: dict[int, str] = field(default_factory=dict)
    input_ids: dict[int, str] = field(default_factory=dict)
    leases_by_generation: dict[int, SessionExecutionLease] = field(default_factory=dict)
    claim_names: dict[str, str] = field(default_factory=dict)  # kernel claim id -> abstract
    # A deleted batch or vacuumed input keeps its last claim fencing token and ingress
    # rewrite in the abstract state (the model never forgets a slot), so remember them.
    last_batch_fencing: dict[int, int] = field(default_factory=dict)
    last_input_fencing: dict[int, int] = field(default_factory=dict)
    last_input_rewritten: dict[int, bool] = field(default_factory=dict)
    turns: dict[int, tuple[int, int]] = field(default_factory=dict)  # turn -> (result, content)
    # A slot's new row after its source-key replay (source_replay) starts its claim fencing
    # token at 0, where the abstract slot counts on: the abstract token is base + the row's.
    batch_fencing_base: dict[int, int] = field(default_factory=dict)
    input_fencing_base: dict[int, int] = field(default_factory=dict)
    batch_available_at: dict[int, int] = field(default_factory=dict)  # delayed_work
    s1_batch_id: str | None = None  # session-1's batch (second_session)
    s1_last_fencing: int = 0
    s1_input_id: str | None = None  # session-1's input (second_session = 2)
    # what commit_turn committed at each head revision, and the checkpoint refs seen
    checkpoints: CheckpointLedger = field(default_factory=CheckpointLedger)


#: The slot a claim reports for a row of the other session (a store mixing up session ids):
#: no trace expects it, so the claim diverges at that step.
FOREIGN_ROW = -1


def _slot_of(ids: Mapping[int, str], kernel_id: str, what: str) -> int:
    for slot, known in ids.items():
        if known == kernel_id:
            return slot
    raise RuntimeError(f"{what} {kernel_id} was not enqueued by this adapter")


def _batch_slot(world: _World, batch_id: str) -> int:
    if batch_id is not None and batch_id == world.s1_batch_id:
        return FOREIGN_ROW
    return _slot_of(world.batch_ids, batch_id, "batch")


def name_queue_claim(world: _World, claim: QueuedWorkClaim) -> tuple[str, list[int]]:
    """Register a kernel queue claim under its abstract id; return the id and sorted slots."""
    rows = [_batch_slot(world, b.batch_id) for b in claim.batches]
    name = f"qwc:b{rows[0]}:{claim.fencing_token + world.batch_fencing_base.get(rows[0], 0)}"
    world.claim_names[claim.claim_id] = name
    return name, sorted(rows)


def name_input_claim(world: _World, claim: TurnInputClaim) -> tuple[str, list[int]]:
    """Register a kernel input claim under its abstract id; return the id and sorted slots."""
    rows = [_slot_of(world.input_ids, i.input_id, "input") for i in claim.inputs]
    name = f"tic:i{rows[0]}:{claim.fencing_token + world.input_fencing_base.get(rows[0], 0)}"
    world.claim_names[claim.claim_id] = name
    return name, sorted(rows)


#: The request values of the forged and malformed requests (docs/trace-format.md §3).
LEASE_FORGERIES = (
    "token_before",
    "token_after",
    "gen_below",
    "gen_above",
    "session_before",
    "session_after",
    "owner_before",
    "owner_after",
    "incarnation_before",
    "incarnation_after",
)
CLAIM_FORGERIES = ("token_before", "token_after", "session_before", "session_after")
COMPLETION_FORGERIES = (
    *CLAIM_FORGERIES,
    "listed_twice",
    "listed_partly",
    "completed_twice",
)
BAD_REQUESTS = (
    "work_limit_zero",
    "next_limit_zero",
    "active_limit_zero",
    "checkpoint_limits_zero",
    "work_limit_negative",
    "next_limit_negative",
    "active_limit_negative",
    "checkpoint_limit_negative",
    "ttl_negative",
    "blank_session",
    "unknown_boundary",
    "unknown_checkpoint",
    "active_turn_before",
    "active_turn_after",
    "checkpoint_inputs_one",
    "checkpoint_batches_one",
    "by_ids_listed_twice",
    "draft_no_payloads",
    "draft_mixed_payloads",
    "draft_available_negative",
    "outbox_no_payloads",
    "outbox_session_before",
    "outbox_session_after",
    "stamp_session_before",
    "stamp_session_after",
)
UNMATCHED_COMMITS = (
    *(f"release_{forgery}" for forgery in LEASE_FORGERIES),
    "defer_turn_before",
    "defer_turn_after",
)
#: A turn id sorting just before ``turn-0`` (a proper prefix) and one sorting after it.
FORGED_TURN_IDS = {"before": "turn-", "after": "turn-1"}
#: A session id sorting just before ``session-0`` (a proper prefix) and one sorting after it.
FORGED_SESSION_IDS = {"session_before": "session-", "session_after": "session-0-forged"}


def _request(picks: Mapping[str, Any], allowed: tuple[str, ...]) -> str:
    request = picks.get("request")
    if request not in allowed:
        raise BadActionParams(f"request must be one of {'|'.join(allowed)}, got {request!r}")
    return str(request)


#: The limit a claim passes when no cap is to bind (the model's ``all``): any limit above the
#: slot count (at most four rows a lane) is faithful. 32 is the scan surplus of a queued-work
#: claim (lash's ``claim_scan_limit``: limit + 32 rows are read), so a scan window computed
#: from the limit any other way than by that sum (limit % 32, limit ^ 32: no row at all) is
#: seen by every claim that takes a row; the driver's default (64) would hide the ``^``.
UNCAPPED = 32


def _limit(limit: int | None) -> int:
    """A limit the request names (0, -1 or 1), else :data:`UNCAPPED` (caps never bind)."""
    return UNCAPPED if limit is None else limit


def _claim_limit(picks: Mapping[str, Any]) -> int:
    """A claim action's ``limit`` pick (bound claim_limits): ``one`` -> 1; ``all``, or no
    pick, -> :data:`UNCAPPED`, which no selectable prefix reaches."""
    limit = picks.get("limit", "all")
    if limit not in ("all", "one"):
        raise BadActionParams(f"limit must be all|one, got {limit!r}")
    return 1 if limit == "one" else UNCAPPED


def _forge_token(token: str, request: str) -> str:
    """A token sorting just before the real one (a proper prefix) or just after it."""
    return token[:-1] if request == "token_before" else token + ":forged"


FencePart = TypeVar("FencePart", SessionExecutionLeaseFence, SessionExecutionLeaseCompletion)


def forge_lease_part(part: FencePart, request: str) -> FencePart:
    """A lease fence, completion or observation differing from ``part`` as ``request`` says."""
    if request.startswith("token_"):
        return replace(part, lease_token=_forge_token(part.lease_token, request))
    if request.startswith("gen_"):
        step = -1 if request == "gen_below" else 1
        return replace(part, fencing_token=part.fencing_token + step)
    if request.startswith(("owner_", "incarnation_")):
        return replace(part, owner=_forge_identity(part.owner, request))
    return replace(part, session_id=FORGED_SESSION_IDS[request])


def _forge_identity(owner: LeaseOwnerIdentity, request: str) -> LeaseOwnerIdentity:
    """``owner`` with its owner id or its incarnation id sorting just before (a proper prefix)
    or just after the real one, the other id and the liveness kept: an identity sharing the
    holder's incarnation id under another owner id, or its owner id under another
    incarnation id."""

    def forge(real: str) -> str:
        return real[:-1] if request.endswith("_before") else real + ":forged"

    if request.startswith("owner_"):
        return replace(owner, owner_id=forge(owner.owner_id))
    return replace(owner, incarnation_id=forge(owner.incarnation_id))


Claim = TypeVar("Claim", QueuedWorkClaim, TurnInputClaim)


def forge_claim(claim: Claim, request: str) -> Claim:
    """A claim differing from ``claim`` in its token or its session id."""
    if request.startswith("token_"):
        return replace(claim, lease_token=_forge_token(claim.lease_token, request))
    return replace(claim, session_id=FORGED_SESSION_IDS[request])


Completion = TypeVar("Completion", QueuedWorkCompletion, TurnInputCompletion)


def forge_completions(
    completion: Completion, ids_field: str, request: str
) -> tuple[Completion, ...]:
    """The completions a forged commit presents in place of ``completion``."""
    ids: tuple[str, ...] = getattr(completion, ids_field)
    if request in ("listed_twice", "listed_partly"):
        listed: dict[str, Any] = {
            ids_field: (*ids, ids[0]) if request == "listed_twice" else ids[:-1]
        }
        return (replace(completion, **listed),)
    if request == "completed_twice":
        return (completion, replace(completion, lease_token=completion.lease_token + ":forged"))
    if request.startswith("token_"):
        return (replace(completion, lease_token=_forge_token(completion.lease_token, request)),)
    return (replace(completion, session_id=FORGED_SESSION_IDS[request]),)


def bad_draft(request: str) -> QueuedWorkBatchDraft:
    """Slot b1's draft made malformed: no payloads, mixed payload classes, or a negative
    available_at."""
    draft = batch_draft(1)
    if request == "draft_no_payloads":
        return replace(draft, payloads=())
    if request == "draft_mixed_payloads":
        return replace(draft, payloads=(*draft.payloads, *batch_draft(0).payloads))
    return replace(draft, available_at_ms=-1)


class KernelAdapter:
    """Runs abstract actions against a fresh kernel store; see the module docstring."""

    def __init__(
        self, store_factory: StoreFactory = memory_store_factory, *, check_reads: bool = False
    ) -> None:
        self._factory = store_factory
        self._world: _World | None = None
        self._bounds: dict[str, int] = {}
        #: also compare the store's other read calls with each observation (store_reads.py)
        self.check_reads = check_reads
        #: checkpoint refs are content addresses: one table for every trace (checkpoints.py)
        self._checkpoint_refs = CheckpointRefs()

    # -- lifecycle ------------------------------------------------------------------------

    def reset(self, bounds: Mapping[str, int]) -> None:
        if self._world is not None:
            self._world.store.close()
        owners = int(bounds.get("owners", 2))
        self._bounds = {k: int(v) for k, v in bounds.items()}
        clock, processes = ManualClock(10_000), FakeProcessTable()
        for owner in range(owners):
            processes.spawn(1000 + owner, "start-0")
        store = self._factory(clock, processes)
        if self.check_reads and has_transaction_counts(store):
            # every call must open the transaction kind its work needs (store_transactions.py)
            store = cast(Store, TransactionKindCheck(store))
        self._world = _World(
            store,
            clock,
            processes,
            [OwnerMemory() for _ in range(owners)],
            checkpoints=CheckpointLedger(self._checkpoint_refs),
        )

    def close(self) -> None:
        if self._world is not None:
            self._world.store.close()
            self._world = None

    @property
    def world(self) -> _World:
        if self._world is None:
            raise RuntimeError("the adapter was not reset")
        return self._world

    # -- parameters -----------------------------------------------------------------------

    def _int(self, picks: Mapping[str, Any], name: str, limit: int | None = None) -> int:
        value = picks.get(name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadActionParams(f"parameter {name!r} must be an integer, got {value!r}")
        if value < 0 or (limit is not None and value >= limit):
            upper = "" if limit is None else f"..{limit - 1}"
            raise BadActionParams(f"parameter {name!r}={value} is out of range 0{upper}")
        return value

    def _owner(self, picks: Mapping[str, Any]) -> tuple[int, OwnerMemory]:
        o = self._int(picks, "o", len(self.world.owners))
        return o, self.world.owners[o]

    def _bool(self, picks: Mapping[str, Any], name: str) -> bool:
        value = picks.get(name)
        if not isinstance(value, bool):
            raise BadActionParams(f"parameter {name!r} must be a boolean, got {value!r}")
        return value

    # -- claims ----------------------------------------------------------------------------

    def _claimed_queue(self, memory: OwnerMemory, claim: QueuedWorkClaim | None) -> dict[str, Any]:
        if claim is None:
            return {"tag": "NoClaim"}
        name, rows = name_queue_claim(self.world, claim)
        memory.queue_claim, memory.queue_rows = claim, frozenset(rows)
        return {"tag": "Claimed", "claim": name, "rows": rows}

    def _claimed_inputs(self, memory: OwnerMemory, claim: TurnInputClaim | None) -> dict[str, Any]:
        if claim is None:
            return {"tag": "NoClaim"}
        name, rows = name_input_claim(self.world, claim)
        memory.input_claim, memory.input_rows = claim, frozenset(rows)
        return {"tag": "Claimed", "claim": name, "rows": rows}

    def _lease_outcome(self, o: int, memory: OwnerMemory, outcome: Any) -> dict[str, Any]:
        w = self.world
        if isinstance(outcome, Acquired):
            memory.fence = outcome.lease
            w.leases_by_generation[outcome.lease.fencing_token] = outcome.lease
            return {"tag": "Acquired", "gen": outcome.lease.fencing_token}
        holder = outcome.holder
        w.leases_by_generation.setdefault(holder.fencing_token, holder)
        return {"tag": "Busy", "holder": _owner_index(holder.owner), "gen": holder.fencing_token}

    # -- actions ---------------------------------------------------------------------------

    def apply(self, action: str, picks: Mapping[str, Any]) -> dict[str, Any]:
        """Run one abstract action; return its outcome record (docs/trace-format.md §4)."""
        handler = getattr(self, f"_do_{action}", None)
        if handler is None or action.startswith("_"):
            raise UnknownAction(f"unknown action {action!r}")
        try:
            result: dict[str, Any] = handler(picks)
        except ERROR_TAGS as error:
            return {"tag": type(error).__name__}
        return result

    def _identity(self, o: int, memory: OwnerMemory) -> LeaseOwnerIdentity:
        return identity(o, memory.incarnation)

    def _do_acquire(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        o, memory = self._owner(picks)
        outcome = self.world.store.try_claim_session_execution_lease(
            SESSION, self._identity(o, memory), TTL_MS
        )
        return self._lease_outcome(o, memory, outcome)

    def _do_reclaim(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        o, memory = self._owner(picks)
        observed = self._int(picks, "observed")
        lease = self.world.leases_by_generation.get(observed)
        if lease is None:
            raise BadActionParams(f"no lease of generation {observed} was ever observed")
        outcome = self.world.store.reclaim_session_execution_lease(
            SESSION, self._identity(o, memory), lease.fence(), TTL_MS
        )
        return self._lease_outcome(o, memory, outcome)

    def _fence(self, memory: OwnerMemory) -> SessionExecutionLease:
        if memory.fence is None:
            raise BadActionParams("the owner holds no fence (the action is not enabled)")
        return memory.fence

    def _do_renew(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        _, memory = self._owner(picks)
        memory.fence = self.world.store.renew_session_execution_lease(
            self._fence(memory).fence(), TTL_MS
        )
        return {"tag": "Ok"}

    def _do_release(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        _, memory = self._owner(picks)
        self.world.store.release_session_execution_lease(self._fence(memory).completion())
        memory.fence = None
        return {"tag": "Ok"}

    def _do_renew_stale(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        _, memory = self._owner(picks)
        fence = self._fence(memory).fence()
        self.world.store.renew_session_execution_lease(
            replace(fence, lease_token=fence.lease_token + ":stale"), TTL_MS
        )
        return {"tag": "Ok"}  # the store answered with a renewed lease: a divergence

    def _do_release_stale(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        _, memory = self._owner(picks)
        completion = self._fence(memory).completion()
        self.world.store.release_session_execution_lease(
            replace(completion, lease_token=completion.lease_token + ":stale")
        )
        return {"tag": "Ok"}

    # -- forged and malformed requests (bad_requests) ---------------------------------------

    def _do_forged_fence(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        o, memory = self._owner(picks)
        fence = forge_lease_part(self._fence(memory).fence(), _request(picks, LEASE_FORGERIES))
        claim = self.world.store.claim_leading_ready_session_command(
            SESSION, fence, self._identity(o, memory)
        )
        return self._claimed_queue(memory, claim)  # the store accepted the forgery: divergence

    def _do_forged_release(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        _, memory = self._owner(picks)
        completion = self._fence(memory).completion()
        self.world.store.release_session_execution_lease(
            forge_lease_part(completion, _request(picks, LEASE_FORGERIES))
        )
        return {"tag": "Ok"}

    def _do_forged_reclaim(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        o, memory = self._owner(picks)
        row = self.world.store.inspect_session(SESSION).lease_row
        if row is None or row.owner is None or row.lease_token is None:
            raise BadActionParams("the lease row has no holder to observe")
        observed = SessionExecutionLeaseFence(
            SESSION, row.owner, row.lease_token, row.fencing_token
        )
        outcome = self.world.store.reclaim_session_execution_lease(
            SESSION,
            self._identity(o, memory),
            forge_lease_part(observed, _request(picks, LEASE_FORGERIES)),
            TTL_MS,
        )
        return self._lease_outcome(o, memory, outcome)

    def _do_forged_abandon_work(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        _, memory = self._owner(picks)
        if memory.queue_claim is None:
            raise BadActionParams("the owner holds no queue claim")
        forged = forge_claim(memory.queue_claim, _request(picks, CLAIM_FORGERIES))
        self.world.store.abandon_queued_work_claim(forged)
        return {"tag": "Ok"}

    def _do_forged_abandon_inputs(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        _, memory = self._owner(picks)
        if memory.input_claim is None:
            raise BadActionParams("the owner holds no input claim")
        forged = forge_claim(memory.input_claim, _request(picks, CLAIM_FORGERIES))
        self.world.store.abandon_turn_input_claim(forged)
        return {"tag": "Ok"}

    def _do_forged_work_commit(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        _, memory = self._owner(picks)
        if memory.queue_claim is None:
            raise BadActionParams("the owner holds no queue claim")
        completions = forge_completions(
            memory.queue_claim.completion(), "batch_ids", _request(picks, COMPLETION_FORGERIES)
        )
        return self._forged_commit(
            memory,
            RuntimeCommit(
                SESSION,
                SessionCheckpoint(0),
                session_execution_lease=self._fence(memory).fence(),
                completed_queue_claims=completions,
            ),
        )

    def _do_forged_input_commit(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        _, memory = self._owner(picks)
        if memory.input_claim is None:
            raise BadActionParams("the owner holds no input claim")
        completions = forge_completions(
            memory.input_claim.completion(), "input_ids", _request(picks, COMPLETION_FORGERIES)
        )
        return self._forged_commit(
            memory,
            RuntimeCommit(
                SESSION,
                SessionCheckpoint(0),
                session_execution_lease=self._fence(memory).fence(),
                completed_turn_input_claims=completions,
            ),
        )

    def _do_commit_unmatched(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        _, memory = self._owner(picks)
        request = _request(picks, UNMATCHED_COMMITS)
        fence = self._fence(memory)
        commit = RuntimeCommit(SESSION, SessionCheckpoint(0), session_execution_lease=fence.fence())
        if request.startswith("release_"):
            forged = forge_lease_part(fence.completion(), request.removeprefix("release_"))
            commit = replace(commit, release_session_execution_lease=forged)
        else:
            turn = FORGED_TURN_IDS[request.removeprefix("defer_turn_")]
            commit = replace(commit, interrupted_turn_input_turn_id=turn)
        result = self.world.store.commit_runtime_state(commit)
        return {"tag": "Committed", "head_revision": result.head_revision}

    def _forged_commit(self, memory: OwnerMemory, commit: RuntimeCommit) -> dict[str, Any]:
        result = self.world.store.commit_runtime_state(commit)
        memory.forget_claims()  # the store applied the forgery: a divergence either way
        return {"tag": "Committed", "head_revision": result.head_revision}

    def _do_bad_request(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        o, memory = self._owner(picks)
        request = _request(picks, BAD_REQUESTS)
        store, me = self.world.store, self._identity(o, memory)
        if request in ("draft_no_payloads", "draft_mixed_payloads", "draft_available_negative"):
            store.enqueue_queued_work(bad_draft(request))
            return {"tag": "Enqueued"}
        fence = self._fence(memory)
        if request == "ttl_negative":
            memory.fence = store.renew_session_execution_lease(fence.fence(), -1)
            return {"tag": "Ok"}
        if request.startswith(("outbox_", "stamp_")):
            commit = RuntimeCommit(
                SESSION, SessionCheckpoint(0), session_execution_lease=fence.fence()
            )
            if request == "outbox_no_payloads":
                commit = replace(commit, enqueued_queue_batches=(bad_draft("draft_no_payloads"),))
            elif request.startswith("outbox_"):
                session = FORGED_SESSION_IDS[request.removeprefix("outbox_")]
                commit = replace(
                    commit, enqueued_queue_batches=(replace(batch_draft(1), session_id=session),)
                )
            else:
                session = FORGED_SESSION_IDS[request.removeprefix("stamp_")]
                stamp = RuntimeTurnCommitStamp(session, TURN, turn_commit_hash(commit))
                commit = replace(commit, turn_commit=stamp)
            result = store.commit_runtime_state(commit)
            return {"tag": "Committed", "head_revision": result.head_revision}
        limit = {"zero": 0, "negative": -1, "one": 1}.get(request.rpartition("_")[2])
        turn = TURN
        after_work: Any = CheckpointKind.AFTER_WORK
        idle: Any = ClaimBoundary.IDLE
        session = SESSION
        if request == "blank_session":
            session = " "
        elif request == "unknown_boundary":
            idle = "sideways"
        elif request == "unknown_checkpoint":
            after_work = "halfway"
        elif request.startswith("active_turn_"):
            turn = FORGED_TURN_IDS[request.removeprefix("active_turn_")]
        if request == "by_ids_listed_twice":
            twice = [self.world.batch_ids[2]] * 2
            work = store.claim_ready_queued_work_by_batch_ids(
                session, fence.fence(), me, ClaimBoundary.IDLE, twice
            )
            return self._claimed_queue(memory, work)
        if request.startswith("next_"):
            claim = store.claim_next_turn_inputs(session, fence.fence(), me, _limit(limit))
            return self._claimed_inputs(memory, claim)
        if request.startswith("active_") or request == "unknown_checkpoint":
            claim = store.claim_active_turn_inputs(
                session, fence.fence(), me, turn, after_work, _limit(limit)
            )
            return self._claimed_inputs(memory, claim)
        if request.startswith("checkpoint_"):
            lanes = {  # (max_inputs, max_batches)
                "checkpoint_inputs_one": (1, 0),
                "checkpoint_batches_one": (0, 1),
            }.get(request, (_limit(limit), _limit(limit)))
            both = store.claim_checkpoint_work(session, fence.fence(), me, TURN, after_work, *lanes)
            if both == (None, None):
                return {"tag": "NoClaim"}
            return {"tag": "CheckpointClaimed"}  # the store claimed: a divergence
        work = store.claim_ready_queued_work(session, fence.fence(), me, idle, _limit(limit))
        return self._claimed_queue(memory, work)

    def _do_expire(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        self.world.clock.advance(TTL_MS)
        return {"tag": "Ok"}

    def _do_advance(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        self.world.clock.advance(TTL_MS // self._ttl_steps())
        return {"tag": "Ok"}

    def _ttl_steps(self) -> int:
        return max(1, self._bounds.get("ttl_steps", 1))

    def _do_crash(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        o, memory = self._owner(picks)
        self.world.processes.kill(1000 + o)
        memory.alive, memory.fence = False, None
        memory.s1_fence, memory.s1_claim = None, None
        memory.forget_claims()
        return {"tag": "Ok"}

    def _do_restart(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        o, memory = self._owner(picks)
        memory.incarnation += 1
        memory.alive = True
        self.world.processes.spawn(1000 + o, f"start-{memory.incarnation}")
        return {"tag": "Ok"}

    def _do_enqueue_batch(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        b = self._int(picks, "b")
        batch = self.world.store.enqueue_queued_work(batch_draft(b))
        self.world.batch_ids[b] = batch.batch_id
        return {"tag": "Enqueued"}

    def _do_enqueue_batch_later(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        b = self._int(picks, "b")
        w = self.world
        step = TTL_MS // self._ttl_steps()
        draft = replace(batch_draft(b), available_at_ms=w.clock.now_ms() + step)
        batch = w.store.enqueue_queued_work(draft)
        w.batch_ids[b] = batch.batch_id
        w.batch_available_at[b] = batch.available_at_ms
        return {"tag": "Enqueued"}

    def _do_replay_batch(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        b = self._int(picks, "b")
        w = self.world
        batch = w.store.enqueue_queued_work(batch_draft(b))
        if batch.batch_id != w.batch_ids.get(b):
            # a new row for the slot (its deleted row no longer held the source key)
            w.batch_ids[b] = batch.batch_id
            w.batch_fencing_base[b] = w.last_batch_fencing.get(b, 0)
            w.batch_available_at[b] = batch.available_at_ms
            return {"tag": "Enqueued"}
        return {"tag": "Replayed", "state": "queued"}

    def _do_claim_command(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        o, memory = self._owner(picks)
        claim = self.world.store.claim_leading_ready_session_command(
            SESSION, self._fence(memory).fence(), self._identity(o, memory)
        )
        return self._claimed_queue(memory, claim)

    def _do_claim_work(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        o, memory = self._owner(picks)
        boundary = picks.get("boundary")
        if boundary not in ("idle", "active_turn_checkpoint"):
            raise BadActionParams(f"boundary must be idle|active_turn_checkpoint, got {boundary!r}")
        claim = self.world.store.claim_ready_queued_work(
            SESSION,
            self._fence(memory).fence(),
            self._identity(o, memory),
            ClaimBoundary(boundary),
            _claim_limit(picks),
        )
        return self._claimed_queue(memory, claim)

    def _boundary(self, picks: Mapping[str, Any]) -> ClaimBoundary:
        boundary = picks.get("boundary")
        if boundary not in ("idle", "active_turn_checkpoint"):
            raise BadActionParams(f"boundary must be idle|active_turn_checkpoint, got {boundary!r}")
        return ClaimBoundary(boundary)

    def _do_claim_work_by_ids(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        o, memory = self._owner(picks)
        first, last = self._int(picks, "b"), self._int(picks, "last")
        if first > last:
            raise BadActionParams(f"the listed slots b{first}..b{last} are empty")
        # A slot never enqueued has no id; an id no row carries stands for it.
        ids = [
            self.world.batch_ids.get(slot, f"batch-never-enqueued-b{slot}")
            for slot in range(first, last + 1)
        ]
        # The boundary as its wire string: the store accepts an enum member or its wire
        # string alike (the other claim actions pass members).
        wire: Any = self._boundary(picks).value
        claim = self.world.store.claim_ready_queued_work_by_batch_ids(
            SESSION, self._fence(memory).fence(), self._identity(o, memory), wire, ids
        )
        return self._claimed_queue(memory, claim)

    def _do_claim_checkpoint_work(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        o, memory = self._owner(picks)
        inputs, work = self.world.store.claim_checkpoint_work(
            SESSION,
            self._fence(memory).fence(),
            self._identity(o, memory),
            TURN,
            self._checkpoint(picks),
            _claim_limit(picks),  # max_inputs
            _claim_limit(picks),  # max_batches
        )
        if inputs is None and work is None:
            return {"tag": "NoClaim"}
        input_part = self._claimed_inputs(memory, inputs)
        queue_part = self._claimed_queue(memory, work)
        return {
            "tag": "CheckpointClaimed",
            "input_claim": input_part.get("claim", ""),
            "input_rows": input_part.get("rows", []),
            "queue_claim": queue_part.get("claim", ""),
            "queue_rows": queue_part.get("rows", []),
        }

    def _checkpoint(self, picks: Mapping[str, Any]) -> CheckpointKind:
        checkpoint = picks.get("checkpoint")
        if checkpoint not in ("after_work", "before_completion"):
            raise BadActionParams(
                f"checkpoint must be after_work|before_completion, got {checkpoint!r}"
            )
        return CheckpointKind(checkpoint)

    def _do_abandon_work(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        _, memory = self._owner(picks)
        if memory.queue_claim is None:
            raise BadActionParams("the owner holds no queue claim")
        self.world.store.abandon_queued_work_claim(memory.queue_claim)
        memory.queue_claim, memory.queue_rows = None, frozenset()
        return {"tag": "Ok"}

    def _do_cancel_batch(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        return self._cancel_batch(SESSION, self._slot_batch_id(picks))

    def _slot_batch_id(self, picks: Mapping[str, Any]) -> str:
        """The kernel id of the row enqueued in session-0 batch slot ``b``."""
        b = self._int(picks, "b")
        batch_id = self.world.batch_ids.get(b)
        if batch_id is None:
            raise BadActionParams(f"batch slot b{b} was never enqueued")
        return batch_id

    def _cancel_batch(self, session_id: str, batch_id: str) -> dict[str, Any]:
        cancelled = self.world.store.cancel_queued_work_batch(session_id, batch_id)
        return {"tag": "Cancelled" if cancelled is not None else "NotCancelled"}

    def _do_enqueue_input(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        i = self._int(picks, "i")
        row = self.world.store.enqueue_pending_turn_input(input_draft(i))
        self.world.input_ids[i] = row.input_id
        return {"tag": "Enqueued"}

    def _do_replay_input(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        i = self._int(picks, "i")
        w = self.world
        row = w.store.enqueue_pending_turn_input(input_draft(i))
        if row.input_id != w.input_ids.get(i):
            # a new row for the slot (its vacuumed row no longer held the source key)
            w.input_ids[i] = row.input_id
            w.input_fencing_base[i] = w.last_input_fencing.get(i, 0)
            return {"tag": "Enqueued"}
        return {"tag": "Replayed", "state": row.state.value}

    def _do_conflict_input(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        i = self._int(picks, "i")
        row = self.world.store.enqueue_pending_turn_input(input_draft(i, changed=True))
        return {
            "tag": "Replayed" if row.input_id == self.world.input_ids.get(i) else "Enqueued",
            "state": row.state.value,
        }

    def _do_claim_next_inputs(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        o, memory = self._owner(picks)
        claim = self.world.store.claim_next_turn_inputs(
            SESSION,
            self._fence(memory).fence(),
            self._identity(o, memory),
            _claim_limit(picks),
        )
        return self._claimed_inputs(memory, claim)

    def _do_claim_active_inputs(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        o, memory = self._owner(picks)
        checkpoint = picks.get("checkpoint")
        if checkpoint not in ("after_work", "before_completion"):
            raise BadActionParams(
                f"checkpoint must be after_work|before_completion, got {checkpoint!r}"
            )
        claim = self.world.store.claim_active_turn_inputs(
            SESSION,
            self._fence(memory).fence(),
            self._identity(o, memory),
            TURN,
            CheckpointKind(checkpoint),
            _claim_limit(picks),
        )
        return self._claimed_inputs(memory, claim)

    def _do_abandon_inputs(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        _, memory = self._owner(picks)
        if memory.input_claim is None:
            raise BadActionParams("the owner holds no input claim")
        self.world.store.abandon_turn_input_claim(memory.input_claim)
        memory.input_claim, memory.input_rows = None, frozenset()
        return {"tag": "Ok"}

    def _input_id(self, picks: Mapping[str, Any]) -> str:
        i = self._int(picks, "i")
        input_id = self.world.input_ids.get(i)
        if input_id is None:
            raise BadActionParams(f"input slot i{i} was never enqueued")
        return input_id

    def _do_cancel_input(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        outcome = self.world.store.cancel_pending_turn_input(SESSION, self._input_id(picks))
        if isinstance(outcome, AlreadyClaimed):
            # the diagnostics' pinned generation; 0 when there are none or it is absent
            diagnostics = outcome.claim
            generation = diagnostics.claim_session_lease_generation if diagnostics else None
            return {"tag": "AlreadyClaimed", "claim_gen": generation or 0}
        return {"tag": _cancel_tag(outcome)}

    def _do_cancel_suffix(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        outcome = self.world.store.cancel_pending_turn_input_suffix(
            SESSION, InputIdTarget(self._input_id(picks))
        )
        if isinstance(outcome, AnchorNotFound):
            return {"tag": "AnchorNotFound"}
        return {"tag": "SuffixOutcomes", "outcomes": [_cancel_tag(o) for o in outcome.outcomes]}

    def _do_cancel_inputs(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        first = self._input_id(picks)
        second = self._input_id({"i": picks.get("j")})
        results = self.world.store.cancel_pending_turn_inputs(
            SESSION, [InputIdTarget(first), InputIdTarget(second)]
        )
        return {"tag": "CancelOutcomes", "outcomes": [_cancel_tag(r.outcome) for r in results]}

    def _do_vacuum(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        report = self.world.store.vacuum()
        return {"tag": "Vacuumed", "removed": report.removed_pending_turn_input_tombstone_count}

    def _commit(
        self,
        memory: OwnerMemory,
        release: bool,
        defer: bool,
        stale: bool,
        expected: int | None = None,
        outbox: tuple[QueuedWorkBatchDraft, ...] = (),
    ) -> RuntimeCommitResult:
        fence = self._fence(memory)
        queue: tuple[QueuedWorkCompletion, ...] = ()
        if memory.queue_claim is not None:
            completion = memory.queue_claim.completion()
            if stale:
                completion = replace(completion, lease_token=completion.lease_token + ":stale")
            queue = (completion,)
        inputs = (memory.input_claim.completion(),) if memory.input_claim is not None else ()
        result = self.world.store.commit_runtime_state(
            RuntimeCommit(
                SESSION,
                SessionCheckpoint(0),
                expected_head_revision=expected,
                session_execution_lease=fence.fence(),
                release_session_execution_lease=fence.completion() if release else None,
                completed_queue_claims=queue,
                completed_turn_input_claims=inputs,
                interrupted_turn_input_turn_id=TURN if defer else None,
                enqueued_queue_batches=outbox,
            )
        )
        return result

    def _do_commit(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        _, memory = self._owner(picks)
        release, defer = self._bool(picks, "release"), self._bool(picks, "defer")
        revision = self._commit(memory, release, defer, stale=False).head_revision
        memory.forget_claims()
        if release:
            memory.fence = None
        return {"tag": "Committed", "head_revision": revision}

    def _do_commit_stale(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        _, memory = self._owner(picks)
        if memory.queue_claim is None:
            raise BadActionParams("commit_stale needs a held queue claim")
        revision = self._commit(memory, release=False, defer=False, stale=True).head_revision
        memory.forget_claims()
        return {"tag": "Committed", "head_revision": revision}

    def _do_commit_cas(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        _, memory = self._owner(picks)
        expected = self._int(picks, "expected")
        revision = self._commit(
            memory, release=False, defer=False, stale=False, expected=expected
        ).head_revision
        memory.forget_claims()
        return {"tag": "Committed", "head_revision": revision}

    def _do_commit_outbox(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        _, memory = self._owner(picks)
        b = self._int(picks, "b")
        result = self._commit(
            memory, release=False, defer=False, stale=False, outbox=(batch_draft(b),)
        )
        memory.forget_claims()
        for batch in result.enqueued_queue_batches:  # one, unless the store dropped it
            self.world.batch_ids.setdefault(b, batch.batch_id)
            self.world.batch_available_at.setdefault(b, batch.available_at_ms)
        return {"tag": "Committed", "head_revision": result.head_revision}

    def _do_commit_turn(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        o, memory = self._owner(picks)
        turn, content = self._int(picks, "turn"), self._int(picks, "content", 2)
        release = self._bool(picks, "release")
        fence = self._fence(memory)
        ledger = self.world.checkpoints
        checkpoint = turn_checkpoint(turn, content, o, ledger.next_delivery())
        unstamped = RuntimeCommit(
            SESSION,
            checkpoint,
            session_execution_lease=fence.fence(),
            release_session_execution_lease=fence.completion() if release else None,
        )
        stamp = RuntimeTurnCommitStamp(SESSION, f"turn-{turn}", turn_commit_hash(unstamped))
        result = self.world.store.commit_runtime_state(replace(unstamped, turn_commit=stamp))
        ledger.committed(result.head_revision, checkpoint, result.checkpoint_ref)
        self.world.turns.setdefault(turn, (result.head_revision, content))
        if release:
            memory.fence = None
        return {"tag": "Committed", "head_revision": result.head_revision}

    # -- session-1 (second_session) -------------------------------------------------------

    def _do_s1_acquire(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        o, memory = self._owner(picks)
        outcome = self.world.store.try_claim_session_execution_lease(
            SESSION1, self._identity(o, memory), TTL_MS
        )
        if isinstance(outcome, Acquired):
            memory.s1_fence = outcome.lease
            return {"tag": "Acquired", "gen": outcome.lease.fencing_token}
        holder = outcome.holder
        return {"tag": "Busy", "holder": _owner_index(holder.owner), "gen": holder.fencing_token}

    def _s1_fence(self, memory: OwnerMemory) -> SessionExecutionLease:
        if memory.s1_fence is None:
            raise BadActionParams("the owner holds no session-1 fence (the action is not enabled)")
        return memory.s1_fence

    def _do_s1_enqueue(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        batch = self.world.store.enqueue_queued_work(session1_batch_draft())
        self.world.s1_batch_id = batch.batch_id
        return {"tag": "Enqueued"}

    def _do_s1_claim(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        o, memory = self._owner(picks)
        w = self.world
        claim = w.store.claim_ready_queued_work(
            SESSION1,
            self._s1_fence(memory).fence(),
            self._identity(o, memory),
            ClaimBoundary.IDLE,
            1,
        )
        if claim is None:
            return {"tag": "NoClaim"}
        memory.s1_claim = claim
        head = claim.batches[0].batch_id
        if head == w.s1_batch_id:
            name, rows = f"qwc:s1b0:{claim.fencing_token}", [0]
        else:  # a row of session-0 (a store mixing up session ids)
            slot = _slot_of(w.batch_ids, head, "batch")
            name, rows = f"qwc:b{slot}:{claim.fencing_token}", [slot]
        w.claim_names[claim.claim_id] = name
        return {"tag": "Claimed", "claim": name, "rows": rows}

    def _do_s1_commit(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        _, memory = self._owner(picks)
        release = self._bool(picks, "release")
        fence = self._s1_fence(memory)
        claims = (memory.s1_claim.completion(),) if memory.s1_claim is not None else ()
        result = self.world.store.commit_runtime_state(
            RuntimeCommit(
                SESSION1,
                SessionCheckpoint(0),
                session_execution_lease=fence.fence(),
                release_session_execution_lease=fence.completion() if release else None,
                completed_queue_claims=claims,
            )
        )
        memory.s1_claim = None
        if release:
            memory.s1_fence = None
        return {"tag": "Committed", "head_revision": result.head_revision}

    def _do_s1_cancel_batch(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        return self._cancel_batch(SESSION1, self._slot_batch_id(picks))

    def _do_s1_cancel_input(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        outcome = self.world.store.cancel_pending_turn_input(SESSION1, self._input_id(picks))
        return {"tag": _cancel_tag(outcome)}

    def _do_cancel_s1_batch(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        batch_id = self.world.s1_batch_id
        if batch_id is None:
            raise BadActionParams("session-1's batch was never enqueued")
        return self._cancel_batch(SESSION, batch_id)

    def _do_reclaim_observing_s1(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        o, memory = self._owner(picks)
        row = self.world.store.inspect_session(SESSION1).lease_row
        if row is None or row.owner is None or row.lease_token is None:
            raise BadActionParams("session-1's lease row has no holder to observe")
        observed = SessionExecutionLeaseFence(
            SESSION1, row.owner, row.lease_token, row.fencing_token
        )
        outcome = self.world.store.reclaim_session_execution_lease(
            SESSION, self._identity(o, memory), observed, TTL_MS
        )
        return self._lease_outcome(o, memory, outcome)

    # -- session-1's input and by-ids claims across sessions (second_session = 2) -----------

    def _do_s1_enqueue_input(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        row = self.world.store.enqueue_pending_turn_input(session1_input_draft())
        if row.input_id in self.world.input_ids.values():
            # session-0's row under the same source key (a store mixing up session ids)
            return {"tag": "Replayed", "state": row.state.value}
        self.world.s1_input_id = row.input_id
        return {"tag": "Enqueued"}

    def _do_cancel_s1_input(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        input_id = self.world.s1_input_id
        if input_id is None:
            raise BadActionParams("session-1's input was never enqueued")
        outcome = self.world.store.cancel_pending_turn_input(SESSION, input_id)
        return {"tag": _cancel_tag(outcome)}

    def _do_s1_claim_by_ids(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        o, memory = self._owner(picks)
        claim = self.world.store.claim_ready_queued_work_by_batch_ids(
            SESSION1,
            self._s1_fence(memory).fence(),
            self._identity(o, memory),
            ClaimBoundary.IDLE,
            [self._slot_batch_id(picks)],
        )
        if claim is None:
            return {"tag": "NoClaim"}
        # session-0's row claimed by session-1 (a store mixing up session ids)
        memory.s1_claim = claim
        name, rows = name_queue_claim(self.world, claim)
        return {"tag": "Claimed", "claim": name, "rows": rows}

    def _do_claim_s1_batch_by_ids(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        o, memory = self._owner(picks)
        batch_id = self.world.s1_batch_id
        if batch_id is None:
            raise BadActionParams("session-1's batch was never enqueued")
        claim = self.world.store.claim_ready_queued_work_by_batch_ids(
            SESSION,
            self._fence(memory).fence(),
            self._identity(o, memory),
            ClaimBoundary.IDLE,
            [batch_id],
        )
        return self._claimed_queue(memory, claim)

    def _observe_session1_input(self, seen: Any) -> str:
        """``s1_input_state``: session-1's input row as session-1's inspection shows it."""
        input_id = self.world.s1_input_id
        if input_id is None:
            return "absent"
        found = next((r for r, _ in seen.turn_inputs if r.input_id == input_id), None)
        return found.state.value if found is not None else "vacuumed"

    def observe_session1(self) -> dict[str, Any]:
        """Session-1's variables of §2 (second_session): its lease row, batch and head, and
        what each owner holds of it."""
        w = self.world
        now = w.clock.now_ms()
        seen = w.store.inspect_session(SESSION1)
        if self.check_reads:
            check_store_reads(w.store, SESSION1, seen, now)
        # load_session names whose head it is: session-1 sees a revision only of its own head
        w.checkpoints.check_read(w.store.load_session(), SESSION1, seen.head_revision)
        row = seen.lease_row
        holder = row.owner if row is not None else None
        live = row is not None and row.is_live(now)
        state: dict[str, Any] = {
            "s1_lease_holder": _owner_index(holder) if holder is not None else -1,
            "s1_lease_holder_inc": _incarnation(holder) if holder is not None else -1,
            "s1_lease_gen": row.fencing_token if row is not None else 0,
            "s1_lease_ttl_left": self._ttl_left(row.expires_at_ms - now)
            if row is not None and live
            else 0,
        }
        # The store has one head, bound to the session of its first commit: each session's
        # view shows it only when it is that session's.
        head0 = w.store.inspect_session(SESSION).head_revision
        state["head_revision"] = max(head0, seen.head_revision)
        state["head_session"] = 0 if head0 else (1 if seen.head_revision else -1)
        present = next(((b, c) for b, c in seen.queued_work if b.batch_id == w.s1_batch_id), None)
        if w.s1_batch_id is None:
            state["s1_batch_status"] = "absent"
        else:
            state["s1_batch_status"] = "queued" if present is not None else "deleted"
        columns = present[1] if present is not None else None
        if columns is not None:
            w.s1_last_fencing = columns.claim_fencing_token
        state["s1_batch_claim_gen"] = (
            columns.claim_session_lease_generation if columns is not None else 0
        )
        state["s1_batch_fencing"] = w.s1_last_fencing
        state["owner_s1_fence"] = {
            o: _fencing_token(memory.s1_fence) for o, memory in enumerate(w.owners)
        }
        state["owner_s1_claim"] = {
            o: self._name(memory.s1_claim) for o, memory in enumerate(w.owners)
        }
        if self._bounds.get("second_session", 0) >= 2:
            state["s1_input_state"] = self._observe_session1_input(seen)
        return state

    # -- projection ------------------------------------------------------------------------

    def observe(self) -> dict[str, Any]:
        """The state variables of docs/trace-format.md §2 for the current store."""
        w = self.world
        state = self.observe_store()
        alive, incarnation, fence, qclaim, qrows, iclaim, irows = {}, {}, {}, {}, {}, {}, {}
        for o, memory in enumerate(w.owners):
            alive[o] = memory.alive
            incarnation[o] = memory.incarnation
            fence[o] = _fencing_token(memory.fence)
            qclaim[o] = self._name(memory.queue_claim)
            qrows[o] = frozenset(memory.queue_rows)
            iclaim[o] = self._name(memory.input_claim)
            irows[o] = frozenset(memory.input_rows)
        state.update(
            owner_alive=alive,
            owner_inc=incarnation,
            owner_fence=fence,
            owner_qclaim=qclaim,
            owner_qclaim_rows=qrows,
            owner_iclaim=iclaim,
            owner_iclaim_rows=irows,
        )
        if self._bounds.get("second_session", 0):
            state.update(self.observe_session1())
        return state

    def observe_store(self) -> dict[str, Any]:
        """The store's variables of §2: the lease row, the slots' rows and the head revision
        (everything but owner memory)."""
        w = self.world
        store = w.store
        now = w.clock.now_ms()
        seen = store.inspect_session(SESSION)
        if self.check_reads:
            check_store_reads(store, SESSION, seen, now)
        # the head read back is what was committed there (checkpoints.py)
        w.checkpoints.check_read(store.load_session(), SESSION, seen.head_revision)
        row = seen.lease_row
        holder = row.owner if row is not None else None
        state: dict[str, Any] = {
            "lease_holder": _owner_index(holder) if holder is not None else -1,
            "lease_holder_inc": _incarnation(holder) if holder is not None else -1,
            "lease_gen": row.fencing_token if row is not None else 0,
            "lease_live": row.is_live(now) if row is not None else False,
            "lease_ttl_left": self._ttl_left(row.expires_at_ms - now)
            if row is not None and row.is_live(now)
            else 0,
        }
        batches = {b.batch_id: (b, c) for b, c in seen.queued_work}
        slots = range(self._bounds.get("batches", 2))
        status, claim, claim_gen, fencing = {}, {}, {}, {}
        for b in slots:
            batch_id = w.batch_ids.get(b)
            present = batches.get(batch_id) if batch_id is not None else None
            status[b] = "absent" if batch_id is None else ("queued" if present else "deleted")
            columns = present[1] if present else None
            claim[b] = w.claim_names.get(columns.claim_id or "", "") if columns else ""
            claim_gen[b] = columns.claim_session_lease_generation if columns else 0
            if columns is not None:
                w.last_batch_fencing[b] = columns.claim_fencing_token + w.batch_fencing_base.get(
                    b, 0
                )
            fencing[b] = w.last_batch_fencing.get(b, 0)
        state.update(
            batch_status=status, batch_claim=claim, batch_claim_gen=claim_gen, batch_fencing=fencing
        )
        if self._bounds.get("delayed_work", 0):
            # clock steps until each slot's row is available (remembered for deleted rows)
            state["batch_wait"] = {
                b: max(0, self._ttl_left(w.batch_available_at.get(b, 0) - now)) for b in slots
            }

        inputs = {r.input_id: (r, c) for r, c in seen.turn_inputs}
        istate, rewritten, iclaim, igen, ifencing = {}, {}, {}, {}, {}
        for i in range(self._bounds.get("inputs", 2)):
            input_id = w.input_ids.get(i)
            found = inputs.get(input_id) if input_id is not None else None
            if input_id is None:
                istate[i] = "absent"
            elif found is None:
                istate[i] = "vacuumed"
            else:
                istate[i] = found[0].state.value
            if found is not None:
                w.last_input_rewritten[i] = isinstance(found[0].ingress, NextTurn) and isinstance(
                    input_ingress(i), ActiveTurn
                )
                w.last_input_fencing[i] = found[1].claim_fencing_token + w.input_fencing_base.get(
                    i, 0
                )
            rewritten[i] = w.last_input_rewritten.get(i, False)
            columns = found[1] if found else None
            iclaim[i] = w.claim_names.get(columns.claim_id or "", "") if columns else ""
            igen[i] = columns.claim_session_lease_generation if columns else 0
            ifencing[i] = w.last_input_fencing.get(i, 0)
        state.update(
            input_state=istate,
            input_rewritten=rewritten,
            input_claim=iclaim,
            input_claim_gen=igen,
            input_fencing=ifencing,
        )
        state["head_revision"] = seen.head_revision
        # The store API has no read of turn records: they are projected from the results of
        # the stamped commits this adapter made (the first success of each turn).
        turns = range(max(self._bounds.get("turns", 0), 1))
        state["turn_result"] = {t: w.turns.get(t, (0, 0))[0] for t in turns}
        state["turn_content"] = {t: w.turns.get(t, (0, 0))[1] for t in turns}
        return state

    def _ttl_left(self, remaining_ms: int) -> int:
        """Remaining lease lifetime in clock steps of TTL / ttl_steps, rounded up."""
        step = TTL_MS // self._ttl_steps()
        return -(-remaining_ms // step)

    def _name(self, claim: QueuedWorkClaim | TurnInputClaim | None) -> str:
        return self.world.claim_names.get(claim.claim_id, "") if claim is not None else ""


def _owner_index(owner: LeaseOwnerIdentity) -> int:
    return int(owner.owner_id.removeprefix("owner-"))


def _incarnation(owner: LeaseOwnerIdentity) -> int:
    return int(owner.incarnation_id.rpartition(":inc-")[2])


def _cancel_tag(outcome: CancelOutcome) -> str:
    return CANCEL_TAGS[type(outcome)]


def _fencing_token(lease: SessionExecutionLease | None) -> int:
    return lease.fencing_token if lease is not None else 0
