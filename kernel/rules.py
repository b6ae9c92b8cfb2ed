"""The kernel's decision rules, as small pure functions and tables.

Theory of operation
-------------------
The store keeps three kinds of rows per session: one *lease row*, *queued-work batches*
(background ingress) and *pending turn inputs* (user input).  Batches and inputs carry the
same hidden claim columns.  Everything a backend decides is one of the rules below; the
engine (``engine.py``) only fetches rows, calls these rules, and writes the result, so both
backends decide identically by construction.

Liveness has two views (ADR 0029):

* **fenced callers** hold a validated lease of generation ``G``.  A row is *claimable* by
  them iff it is unclaimed or pinned to a generation other than ``G``.  Rows held by ``G``
  itself are invisible to ``G``: a generation can never re-claim (self-steal) its own rows,
  and rows of any other generation are superseded because ``G`` is the live one.
* **lease-less callers** (listings, cancel) see a claim as *live* iff the session's lease row
  is live and its fencing token equals the claim's pinned generation.

Queued-work selection takes the claimable, available rows in ``enqueue_seq`` order and looks
only at the head: a session command at the head is claimed alone by the command lane and
blocks the turn-work lane; turn work at an active-turn checkpoint must be
``earliest_safe_boundary``; an exclusive head is claimed alone and a join head extends over
the following join turn work with equal delivery policy and merge key.

Pending turn inputs move only along :data:`TURN_INPUT_TRANSITIONS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .types import (
    ClaimBoundary,
    ClaimColumns,
    DeliveryPolicy,
    LeaseRow,
    MergeKey,
    QueuedWorkClass,
    SlotPolicy,
    TurnInputState,
)

# ---------------------------------------------------------------------------
# Claim liveness
# ---------------------------------------------------------------------------


def claimable_by_generation(claim: ClaimColumns, generation: int) -> bool:
    """Fenced view: unclaimed, or pinned to a generation other than the caller's."""
    return claim.claim_token is None or claim.claim_session_lease_generation != generation


def claim_is_live(claim: ClaimColumns, lease: LeaseRow | None, now_ms: int) -> bool:
    """Lease-less view: the claim's generation is the session's live lease generation."""
    return (
        claim.claim_token is not None
        and lease is not None
        and lease.is_live(now_ms)
        and lease.fencing_token == claim.claim_session_lease_generation
    )


# ---------------------------------------------------------------------------
# Queued-work selection
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Candidate:
    """What the selection rules need to know about one claimable batch."""

    work_class: QueuedWorkClass
    delivery_policy: DeliveryPolicy
    slot_policy: SlotPolicy
    merge_key: MergeKey


def select_leading_session_command(candidates: Sequence[Candidate]) -> int:
    """1 if the head candidate is a session command, else 0 (commands go one at a time)."""
    if candidates and candidates[0].work_class is QueuedWorkClass.SESSION_COMMAND:
        return 1
    return 0


#: how many ready claimable rows beyond ``max_batches`` a claim scan classifies (lash's
#: ``claim_scan_limit``); a malformed row inside that window fails the scan
CLAIM_SCAN_SURPLUS = 32


def claim_scan_limit(max_batches: int) -> int:
    """How many ready claimable rows a queued-work claim scan reads and classifies."""
    return max_batches + CLAIM_SCAN_SURPLUS


def select_turn_work_claim_prefix(
    candidates: Sequence[Candidate], boundary: ClaimBoundary, max_batches: int
) -> int:
    """How many leading candidates a turn-work claim takes (0 means no claim)."""
    if max_batches <= 0 or not candidates:
        return 0
    head = candidates[0]
    if head.work_class is not QueuedWorkClass.TURN_WORK:
        return 0  # turn work never skips a leading ready session command
    if (
        boundary is ClaimBoundary.ACTIVE_TURN_CHECKPOINT
        and head.delivery_policy is not DeliveryPolicy.EARLIEST_SAFE_BOUNDARY
    ):
        return 0  # the head gates: nothing behind it is considered
    if head.slot_policy is SlotPolicy.EXCLUSIVE:
        return 1
    taken = 1
    for follower in candidates[1:]:
        if taken >= max_batches:
            break
        if (
            follower.work_class is not QueuedWorkClass.TURN_WORK
            or follower.slot_policy is not SlotPolicy.JOIN
            or follower.delivery_policy is not head.delivery_policy
            or follower.merge_key != head.merge_key
        ):
            break
        taken += 1
    return taken


def exact_selection_is_valid(candidates: Sequence[Candidate], boundary: ClaimBoundary) -> bool:
    """By-ids claims: every listed batch is turn work and the list is one claimable prefix."""
    if not candidates:
        return False
    if any(c.work_class is not QueuedWorkClass.TURN_WORK for c in candidates):
        return False
    return select_turn_work_claim_prefix(candidates, boundary, len(candidates)) == len(candidates)


# ---------------------------------------------------------------------------
# Pending turn inputs
# ---------------------------------------------------------------------------

S = TurnInputState

#: Every transition a pending turn input can take: (from, trigger) -> to.  ``None`` as the
#: source means "a new row".  Nothing else moves a row; vacuum deletes terminal rows.
TURN_INPUT_TRANSITIONS: dict[tuple[TurnInputState | None, str], TurnInputState] = {
    (None, "enqueue_active_turn"): S.PENDING_ACTIVE,
    (None, "enqueue_next_turn"): S.DEFERRED_NEXT_TURN,
    (S.PENDING_ACTIVE, "claim_active"): S.ACCEPTED,
    (S.DEFERRED_NEXT_TURN, "claim_next"): S.DEFERRED_NEXT_TURN,
    (S.ACCEPTED, "abandon_active"): S.PENDING_ACTIVE,
    (S.ACCEPTED, "abandon_next"): S.DEFERRED_NEXT_TURN,
    (S.DEFERRED_NEXT_TURN, "abandon_next"): S.DEFERRED_NEXT_TURN,
    (S.DEFERRED_NEXT_TURN, "abandon_active"): S.DEFERRED_NEXT_TURN,
    (S.ACCEPTED, "complete"): S.COMPLETED,
    (S.DEFERRED_NEXT_TURN, "complete"): S.COMPLETED,
    (S.PENDING_ACTIVE, "defer_interrupted"): S.DEFERRED_NEXT_TURN,
    (S.PENDING_ACTIVE, "cancel"): S.CANCELLED,
    (S.DEFERRED_NEXT_TURN, "cancel"): S.CANCELLED,
}


def next_input_state(state: TurnInputState | None, trigger: str) -> TurnInputState:
    """Look a transition up; an unlisted pair is a bug in the caller, never silently allowed."""
    try:
        return TURN_INPUT_TRANSITIONS[(state, trigger)]
    except KeyError:
        raise AssertionError(
            f"turn input transition {trigger!r} from {state} is not in the table"
        ) from None


class CancelDecision:
    """Outcome names of the per-row cancel decision."""

    CANCEL = "cancel"
    ALREADY_CANCELLED = "already_cancelled"
    ALREADY_COMPLETED = "already_completed"
    ALREADY_CLAIMED = "already_claimed"


def decide_cancel(state: TurnInputState, claim_live: bool) -> str:
    """What cancelling one row does, given its state and whether its claim is live."""
    if state is S.CANCELLED:
        return CancelDecision.ALREADY_CANCELLED
    if state is S.COMPLETED:
        return CancelDecision.ALREADY_COMPLETED
    if state is S.ACCEPTED:
        return CancelDecision.ALREADY_CLAIMED  # accepted rows are locked whatever the lease
    return CancelDecision.ALREADY_CLAIMED if claim_live else CancelDecision.CANCEL
