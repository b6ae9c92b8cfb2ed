"""The runtime kernel's store as a declarative transition model.

Theory of operation
-------------------
The model abstracts one session of the store (``docs/trace-format.md`` fixes the abstract
system; ``store.md`` gives the semantics) into a finite transition system:

* **Owners** ``0..owners-1`` are runtime worker processes. Each has an incarnation number, an
  alive flag and *process-local memory*: the lease generation it believes it holds
  (``owner_fence``) and at most one queue claim and one input claim it holds (claim code plus the
  rows the claim named). A crash wipes that memory. Every owner-driven action requires the owner
  to be alive. The holder a claimant observed on ``Busy`` is not memory but the ``observed``
  parameter of ``reclaim``: any generation the row has minted is an observation some claimant
  could hold, so ``reclaim(o, observed)`` covers fresh and stale observations alike.
* **The lease row** is ``lease_holder``/``lease_holder_inc`` (the row's owner, kept after expiry,
  cleared by release), ``lease_gen`` (the fencing token, never decreasing) and ``lease_live``.
  Time is counted in clock steps of ``1/ttl_steps`` of the TTL: ``lease_ttl_left`` is the live
  lease's remaining lifetime (``ttl_steps`` = a full TTL from now, 0 = not live). An
  acquisition, a re-entry and a renew set it to ``ttl_steps``; ``advance`` moves the clock by
  one step (the lease lapses when nothing is left) and ``expire`` by a whole TTL (every live
  lease lapses). With ``ttl_steps = 1`` both are the same jump and ``lease_ttl_left`` mirrors
  ``lease_live``; ``ttl_steps = 2`` makes renew and re-entry extensions observable. A lease
  token is unique per generation, so "fence matches the row" is
  ``holder == o and holder_inc == inc[o] and lease_gen == fence[o]``.
* **Head CAS and turn stamps** (bounds ``head_cas`` and ``turns``, 0 disables them):
  ``commit_cas(o, expected)`` is ``commit`` with ``expected_head_revision``;
  ``commit_turn(o, turn, content, release)`` is a commit stamped with a turn id whose content
  (the checkpoint) is ``content``: a committed turn answers a re-commit of the same content
  with its recorded result (applying only the lease release) and refuses other content.
* **Multi-target cancel** (bound ``multi_cancel``, 0 disables it): ``cancel_inputs(i, j)``
  cancels the targets ``[i, j]`` in order in one transaction (``i == j`` is allowed).
* **Exact claims** (bound ``exact_claims``, 0 disables them): ``claim_work_by_ids`` claims the
  listed slots ``b..last`` (a contiguous range in slot order) exactly, or nothing, and may
  bypass earlier ready work; ``claim_checkpoint_work`` probes read-only (nothing selectable
  -> ``NoClaim`` even with an expired fence), then claims the active-turn inputs and the
  checkpoint turn work in one transaction.
* **A second session** (bound ``second_session``, 0 disables it and its variables and actions
  do not exist): ``session-1`` has its own lease row (``s1_lease_*``; no reclaim, renew or
  release), one batch slot (``s1_batch_*``) and the owners' memory of it (``owner_s1_fence``,
  ``owner_s1_claim``); ``s1_acquire``, ``s1_enqueue``, ``s1_claim``, ``s1_commit`` work on it
  (session-1's batch has session-0 slot b0's source key: keys are per session),
  ``s1_cancel_batch`` and ``s1_cancel_input`` aim session-1's cancels at session-0's rows, and
  ``cancel_s1_batch`` and ``reclaim_observing_s1`` aim session-0's cancel at session-1's batch
  and its reclaim at session-1's holder (``CROSS_SESSION_ACTIONS``). Processes and the clock
  are shared (``crash``, ``expire``, ``advance`` touch both sessions). The store has one head
  (``head_revision``), bound by its first applied commit to that commit's session
  (``head_session``); a commit of the other session answers ``SessionBindingMismatch`` first.
  The ``session_isolation`` invariant (a monitor over every transition) says no action on one
  session changes the other's state. With ``second_session = 2`` session-1 also has one
  input slot (``s1_input_state``) under session-0 slot i0's source key, enqueued by
  ``s1_enqueue_input``, and calls name the other session's rows by id in more places:
  ``cancel_s1_input`` (session-0 cancelling session-1's input), ``s1_claim_by_ids`` and
  ``claim_s1_batch_by_ids`` (a by-ids claim of either session listing the other's batch).
* **Liveness oracle**: all owners share host and boot (``LocalProcess`` identities), so the
  holder recorded on the row is *definitely dead* iff its owner is not alive or runs a newer
  incarnation (same pid, different process start).
* **Queued-work batch slots** and **input slots** come from fixed catalogues (below); slot
  order is enqueue order. A batch is ``absent``/``queued``/``deleted``; claim columns are the
  claim code, the pinned generation and the row's ``claim_fencing_token``.
* **Claim ids** are integer codes ``head * (max_claims_per_row + 1) + fencing`` (0 = none), i.e.
  the pair (head slot, new claim fencing token of the head row) that makes up the kernel's
  claim id ``qwc:{head seq}:{fencing}``. Claim ids are unique, so a claim token adds nothing
  except for the deliberately stale token of ``commit_stale``.
* **Claims** follow store.md §3.4-3.7 and §4.5: rows are claimable by generation G iff
  unclaimed or pinned to a generation other than G; the queue head gates (a ready session
  command blocks turn work; ``active_turn_checkpoint`` needs an ``earliest_safe_boundary``
  head); a join head extends over the contiguous run of matching join rows; the claim id is
  derived from the head. A claim's ``max_batches``/``max_inputs`` leave every selectable row
  to it, unless the bound ``claim_limits`` (0 disables it) gives ``claim_work``,
  ``claim_next_inputs``, ``claim_active_inputs`` and ``claim_checkpoint_work`` a ``limit``
  pick: ``all`` (no cap binds) or ``one`` (a limit of one, on both lanes of a checkpoint
  claim), which takes the first row of the selectable prefix in enqueue order, its head. A
  ``Claimed`` result replaces the owner's remembered claim of that lane (the runtime
  scenario context overwrites its claim the same way); the older claim is simply forgotten and
  recovered by generation fencing. ``NoClaim`` leaves memory unchanged.
* **Commit** validates everything first (fence, queue completion, input completion: the rows
  stamped with the claim must be exactly the rows it named), then applies completions,
  interrupt deferral, the optional lease release and ``head_revision + 1`` atomically.
* **Ghost state**: sticky ``hist_*`` flags maintained by monitors record any transition that
  breaks a transition property (e.g. a commit reporting a row completed that it did not settle,
  which is how "no batch is completed twice" is checked without counting completions).
  Invariants over the flags turn history properties into state invariants, so a violation has
  a shortest path.

Bounds make the system finite: an action instance whose first matching case would push a
bounded counter past its bound (a fourth generation, a third claim of a row, a fourth commit,
a second restart) is *disabled* by its guard instead. Every such cut is written in the guard as
``Implies(<case would apply>, <counter below bound>)``.

Source-key replay (bound ``source_replay``, 0 disables it): ``replay_batch``/``replay_input``
of a deleted batch or vacuumed input enqueue a new row for the slot (the store no longer knows
the key), only while no later slot has a row, so slot order stays enqueue order; the slot's
claim fencing token counts on across its rows, so claim codes never repeat.

Delayed work (bound ``delayed_work``, 0 disables it): ``enqueue_batch_later`` enqueues a slot's
draft with ``available_at`` one clock step ahead (``batch_wait`` = 1); the row is neither
claimable nor a queue head until ``advance`` or ``expire`` moves the clock, which they may do
while only such work waits. Invariant ``waiting_work_unclaimed``.

Outbox batches (bound ``outbox``, 0 disables it): ``commit_outbox(o, b)`` is a commit whose
outbox enqueues slot b's draft (its catalogue delivery and slot policies) in the same
transaction, source-key idempotent, and nothing when the commit fails (invariant
``outbox_atomic``).

Abstracted away: payloads and item ids, ``available_at`` further ahead than one clock step
(and on inputs, which have none), source-key replay of a slot while a later slot has a row
(its new row would sort after it), more than two sessions and, in session-1, input rows,
reclaim, renew, release and turn stamps (session-1 is a lease, one batch and commits on the
shared head), the completions and outbox of stamped turn commits (a stamped commit completes
no claims), outbox batches of more than one draft, beside a release or deferral, or naming a
slot the same commit completes, checkpoint contents, non-contiguous or duplicate id lists of
by-ids claims, and cancel calls with more than two targets (single and suffix cancels are
modelled).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from .dsl import (
    FALSE,
    TRUE,
    Action,
    ActionIs,
    BoolSort,
    Case,
    CompiledModel,
    Const,
    EnumSort,
    Expr,
    FlatState,
    IntSort,
    Invariant,
    MapSort,
    Model,
    Monitor,
    Next,
    Outcome,
    Param,
    Value,
    Var,
    Variable,
    all_of,
    any_of,
    compile_model,
    count,
    exists,
    first_where,
    forall,
    ite,
    let,
    list_of,
    map_lit,
    map_of,
    replace_all,
    set_of,
)

# --------------------------------------------------------------------------------------------
# Catalogues (docs/trace-format.md §1)

BATCH_CATALOGUE: tuple[dict[str, str], ...] = (
    {
        "payload": "RefreshToolCatalog",
        "work_class": "session_command",
        "delivery": "earliest_safe_boundary",
        "slot_policy": "exclusive",
        "merge_key": "never",
    },
    {
        "payload": "ProcessWake",
        "work_class": "turn_work",
        "delivery": "earliest_safe_boundary",
        "slot_policy": "exclusive",
        "merge_key": "never",
    },
    {
        "payload": "ProcessWake",
        "work_class": "turn_work",
        "delivery": "after_current_turn_commit",
        "slot_policy": "join",
        "merge_key": "never",
    },
    {
        "payload": "ProcessWake",
        "work_class": "turn_work",
        "delivery": "after_current_turn_commit",
        "slot_policy": "join",
        "merge_key": "never",
    },
    # b4..b8: join-run shapes b0..b3 cannot form (trace-format.md §1). The check profiles
    # stop at b3; promoted traces reach these, listing two neighbouring slots by ids or
    # cancelling or holding the slots between two of them so the pair is adjacent in the
    # ready queue.
    {  # b4: a join row of the other delivery policy than b2, b3 and b5
        "payload": "ProcessWake",
        "work_class": "turn_work",
        "delivery": "earliest_safe_boundary",
        "slot_policy": "join",
        "merge_key": "never",
    },
    {  # b5: as b2, a join head or follower behind b4
        "payload": "ProcessWake",
        "work_class": "turn_work",
        "delivery": "after_current_turn_commit",
        "slot_policy": "join",
        "merge_key": "never",
    },
    {  # b6: an exclusive row of a join head's delivery and merge key
        "payload": "ProcessWake",
        "work_class": "turn_work",
        "delivery": "after_current_turn_commit",
        "slot_policy": "exclusive",
        "merge_key": "never",
    },
    {  # b7: a join row of b5's delivery under another merge key
        "payload": "ProcessWake",
        "work_class": "turn_work",
        "delivery": "after_current_turn_commit",
        "slot_policy": "join",
        "merge_key": "payload_default",
    },
    {  # b8: a session command with a join follower's policies (still claimed alone)
        "payload": "RefreshToolCatalog",
        "work_class": "session_command",
        "delivery": "after_current_turn_commit",
        "slot_policy": "join",
        "merge_key": "never",
    },
)

INPUT_CATALOGUE: tuple[dict[str, str], ...] = (
    {"ingress": "next_turn", "turn_id": "", "min_boundary": "none"},
    {"ingress": "active_turn", "turn_id": "turn-0", "min_boundary": "after_work"},
    {"ingress": "active_turn", "turn_id": "turn-0", "min_boundary": "before_completion"},
)

BATCH_STATUS = EnumSort("BatchStatus", ("absent", "queued", "deleted"))
INPUT_STATE = EnumSort(
    "InputState",
    (
        "absent",
        "pending_active",
        "deferred_next_turn",
        "accepted",
        "cancelled",
        "completed",
        "vacuumed",
    ),
)
BOUNDARY = EnumSort("QueuedWorkClaimBoundary", ("idle", "active_turn_checkpoint"))
CHECKPOINT = EnumSort("CheckpointKind", ("after_work", "before_completion"))
WORK_CLASS = EnumSort("QueuedWorkClass", ("session_command", "turn_work"))
DELIVERY = EnumSort("DeliveryPolicy", ("earliest_safe_boundary", "after_current_turn_commit"))
SLOT_POLICY = EnumSort("SlotPolicy", ("exclusive", "join"))
#: A claim's row limit (bound ``claim_limits``): ``all`` passes a limit no selectable prefix
#: reaches, ``one`` a limit of one, so the claim takes only the first selectable row.
CLAIM_LIMIT = EnumSort("ClaimLimit", ("all", "one"))
MERGE_KEY = EnumSort("MergeKey", ("never", "payload_default"))
INGRESS = EnumSort("TurnInputIngress", ("next_turn", "active_turn"))
MIN_BOUNDARY = EnumSort("TurnInputCheckpointBoundary", ("none", "after_work", "before_completion"))

#: How a forged request (bound ``bad_requests``) differs from the fence, lease completion,
#: observation, claim or queue/input completion the store handed out: a token sorting before
#: (a proper prefix) or after (a suffix appended) the real one, a generation one below or above,
#: a session id sorting before or after the real one, an owner id or an incarnation id sorting
#: before or after the holder's own (the other half of the identity kept: lease forgeries
#: only); for commit completions also a list
#: naming a row twice, a list leaving a row out, and the real completion followed by a forged
#: copy (docs/trace-format.md §3).
FORGERY = EnumSort(
    "Forgery",
    (
        "token_before",
        "token_after",
        "gen_below",
        "gen_above",
        "session_before",
        "session_after",
        "listed_twice",
        "listed_partly",
        "completed_twice",
        "owner_before",
        "owner_after",
        "incarnation_before",
        "incarnation_after",
    ),
)
#: The forgeries of a lease fence, lease completion or observation.
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
#: The forgeries of a claim handed to abandon (it names no rows and carries no generation).
CLAIM_FORGERIES = ("token_before", "token_after", "session_before", "session_after")
#: The forgeries of a queue or input completion in a commit.
COMPLETION_FORGERIES = (
    "token_before",
    "token_after",
    "session_before",
    "session_after",
    "listed_twice",
    "listed_partly",
    "completed_twice",
)
#: Commits that apply but whose lease release or interrupted turn id matches nothing (bound
#: ``bad_requests``): the release completion forged as a lease forgery, or the interrupted turn
#: id one sorting before (``turn-``) or after (``turn-1``) the active inputs' ``turn-0``.
UNMATCHED_COMMIT = EnumSort(
    "UnmatchedCommit",
    (
        "release_token_before",
        "release_token_after",
        "release_gen_below",
        "release_gen_above",
        "release_session_before",
        "release_session_after",
        "defer_turn_before",
        "defer_turn_after",
    ),
)
#: Malformed calls (bound ``bad_requests``): zero and negative limits, a negative TTL, a blank
#: session id, unknown wire strings, malformed drafts and commits naming another session in
#: their stamp or outbox (docs/trace-format.md §3, ``bad_request``).
BAD_REQUEST = EnumSort(
    "BadRequest",
    (
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
    ),
)


class BoundsError(ValueError):
    """A bound is outside the range the abstract system supports."""


@dataclass(frozen=True)
class Bounds:
    """Every finiteness parameter of the kernel model."""

    owners: int = 2
    max_incarnation: int = 1
    batches: int = 2
    inputs: int = 2
    max_generation: int = 3
    max_claims_per_row: int = 2
    max_head_revision: int = 2
    ttl_steps: int = 2
    exact_claims: int = 1
    head_cas: int = 1
    turns: int = 1
    multi_cancel: int = 1
    second_session: int = 0
    source_replay: int = 0
    delayed_work: int = 0
    outbox: int = 0
    bad_requests: int = 0
    claim_limits: int = 0

    def __post_init__(self) -> None:
        limits = {
            "owners": (1, 4),
            "max_incarnation": (0, 4),
            "batches": (1, len(BATCH_CATALOGUE)),
            "inputs": (1, len(INPUT_CATALOGUE)),
            "max_generation": (1, 9),
            "max_claims_per_row": (1, 9),
            "max_head_revision": (0, 9),
            "ttl_steps": (1, 4),
            "exact_claims": (0, 1),
            "head_cas": (0, 1),
            "turns": (0, 2),
            "multi_cancel": (0, 1),
            "second_session": (0, 2),
            "source_replay": (0, 1),
            "delayed_work": (0, 1),
            "outbox": (0, 1),
            "bad_requests": (0, 1),
            "claim_limits": (0, 1),
        }
        for name, (lo, hi) in limits.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
                raise BoundsError(f"bound {name}={value!r} must be an integer in {lo}..{hi}")

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


DEFAULT_BOUNDS = Bounds()

SMALLEST_BOUNDS = Bounds(
    owners=1,
    max_incarnation=0,
    batches=1,
    inputs=1,
    max_generation=1,
    max_claims_per_row=1,
    max_head_revision=1,
    ttl_steps=1,
    exact_claims=0,
    head_cas=0,
    turns=0,
    multi_cancel=0,
)
"""One of everything and every extension off: the base that the check profiles, the seeded
bugs' own bounds and the promoted traces widen with ``dataclasses.replace``, so each names
only what it is about."""


# --------------------------------------------------------------------------------------------
# Variables

lease_holder = Var("lease_holder")
lease_holder_inc = Var("lease_holder_inc")
lease_gen = Var("lease_gen")
lease_live = Var("lease_live")
owner_alive = Var("owner_alive")
owner_inc = Var("owner_inc")
owner_fence = Var("owner_fence")
owner_qclaim = Var("owner_qclaim")
owner_qclaim_rows = Var("owner_qclaim_rows")
owner_iclaim = Var("owner_iclaim")
owner_iclaim_rows = Var("owner_iclaim_rows")
batch_status = Var("batch_status")
batch_claim = Var("batch_claim")
batch_claim_gen = Var("batch_claim_gen")
batch_fencing = Var("batch_fencing")
input_state = Var("input_state")
input_rewritten = Var("input_rewritten")
input_claim = Var("input_claim")
input_claim_gen = Var("input_claim_gen")
input_fencing = Var("input_fencing")
head_revision = Var("head_revision")
lease_ttl_left = Var("lease_ttl_left")
turn_result = Var("turn_result")
turn_content = Var("turn_content")

# Session-1 (bound ``second_session``): a second session with its own lease row, one batch
# slot and head revision; owners keep a separate fence and claim for it.
s1_lease_holder = Var("s1_lease_holder")
s1_lease_holder_inc = Var("s1_lease_holder_inc")
s1_lease_gen = Var("s1_lease_gen")
s1_lease_ttl_left = Var("s1_lease_ttl_left")
s1_batch_status = Var("s1_batch_status")
s1_batch_claim_gen = Var("s1_batch_claim_gen")
s1_batch_fencing = Var("s1_batch_fencing")
head_session = Var("head_session")
owner_s1_fence = Var("owner_s1_fence")
owner_s1_claim = Var("owner_s1_claim")
batch_wait = Var("batch_wait")  # bound delayed_work

#: Session-0's state: what no session-1 action may change (``session_isolation``). The head
#: (``head_revision``, ``head_session``) is the store's: one head, bound to the session of its
#: first commit (store.md §5.3 step 1), so a commit of either session moves it.
SESSION0_STATE: tuple[str, ...] = (
    "lease_holder",
    "lease_holder_inc",
    "lease_gen",
    "lease_live",
    "lease_ttl_left",
    "owner_fence",
    "owner_qclaim",
    "owner_qclaim_rows",
    "owner_iclaim",
    "owner_iclaim_rows",
    "batch_status",
    "batch_claim",
    "batch_claim_gen",
    "batch_fencing",
    "input_state",
    "input_rewritten",
    "input_claim",
    "input_claim_gen",
    "input_fencing",
    "turn_result",
    "turn_content",
)

#: Session-1's state: what no session-0 action may change.
SESSION1_STATE: tuple[str, ...] = (
    "s1_lease_holder",
    "s1_lease_holder_inc",
    "s1_lease_gen",
    "s1_lease_ttl_left",
    "s1_batch_status",
    "s1_batch_claim_gen",
    "s1_batch_fencing",
    "owner_s1_fence",
    "owner_s1_claim",
)

#: Actions on session-1 (the others work on session-0, or on both: see SHARED_ACTIONS).
SESSION1_ACTIONS: tuple[str, ...] = (
    "s1_acquire",
    "s1_enqueue",
    "s1_claim",
    "s1_commit",
    "s1_cancel_batch",
    "s1_cancel_input",
    "s1_enqueue_input",
    "s1_claim_by_ids",
)

#: Session-0 calls that name session-1's rows (bound ``second_session``): they work on
#: session-0 and must find nothing of session-1 there, so they are session-0 actions for
#: ``session_isolation``.
CROSS_SESSION_ACTIONS: tuple[str, ...] = (
    "cancel_s1_batch",
    "reclaim_observing_s1",
    "cancel_s1_input",
    "claim_s1_batch_by_ids",
)

#: Session-1's input slot (``second_session = 2``): a next-turn input whose source key is
#: session-0 slot i0's (``input:i0``), so each session's enqueue must not find the other's row.
SESSION1_INPUT_STATE = "s1_input_state"

#: The actions of bound ``bad_requests``: forged and malformed requests, each refused.
BAD_REQUEST_ACTIONS: tuple[str, ...] = (
    "forged_fence",
    "forged_release",
    "forged_reclaim",
    "forged_abandon_work",
    "forged_abandon_inputs",
    "forged_work_commit",
    "forged_input_commit",
    "bad_request",
    "commit_unmatched",
)

#: Actions of the whole store rather than of one session: processes and the clock.
SHARED_ACTIONS: tuple[str, ...] = ("crash", "restart", "expire", "advance")

#: Contents a stamped turn commit can carry (two, so a re-commit can differ).
CONTENTS = IntSort(0, 1)

OUTBOX_FLAG = ("hist_outbox_unapplied", "a batch was enqueued by a commit that did not apply")

HISTORY_FLAGS: tuple[tuple[str, str], ...] = (
    ("hist_generation_step", "a transition changed the fencing token other than by a takeover"),
    ("hist_live_takeover", "a live lease was taken over without a current observation"),
    ("hist_release_foreign", "a lease row was cleared by someone other than its fence holder"),
    ("hist_self_steal", "a generation re-claimed a row it already held"),
    ("hist_command_gate", "turn work was claimed past a ready, unheld session command"),
    ("hist_one_command", "a session command was claimed together with another row"),
    ("hist_boundary_gate", "a checkpoint claim took after_current_turn_commit work"),
    ("hist_live_batch_removed", "a live-claimed batch was deleted without completion"),
    ("hist_claimed_input_cancelled", "an accepted or live-claimed input was cancelled"),
    ("hist_input_transition", "an input made a transition outside store.md §4.2"),
    ("hist_head_step", "head_revision moved other than +1 by a commit"),
    ("hist_completion_mismatch", "a commit reported rows completed that it did not settle"),
    ("hist_unfenced_commit", "a commit applied without a validating fence"),
    ("hist_short_extension", "an acquisition, re-entry or renewal left less than a full TTL"),
    ("hist_unlisted_claim", "an exact-by-ids claim stamped a row it did not list, or not all"),
    ("hist_turn_reapplied", "a committed turn's record changed or its re-commit applied"),
    ("hist_head_cas", "a commit with an expected head revision applied over another revision"),
)


@dataclass(frozen=True)
class _Sorts:
    owner: IntSort
    owner_or_none: IntSort
    inc: IntSort
    inc_or_none: IntSort
    gen: IntSort
    batch: IntSort
    input: IntSort
    fencing: IntSort
    qcode: IntSort
    icode: IntSort
    head: IntSort
    ttl: IntSort
    turn: IntSort


def _sorts(bounds: Bounds) -> _Sorts:
    stride = bounds.max_claims_per_row + 1
    return _Sorts(
        owner=IntSort(0, bounds.owners - 1),
        owner_or_none=IntSort(-1, bounds.owners - 1),
        inc=IntSort(0, bounds.max_incarnation),
        inc_or_none=IntSort(-1, bounds.max_incarnation),
        gen=IntSort(0, bounds.max_generation),
        batch=IntSort(0, bounds.batches - 1),
        input=IntSort(0, bounds.inputs - 1),
        fencing=IntSort(0, bounds.max_claims_per_row),
        qcode=IntSort(0, bounds.batches * stride - 1),
        icode=IntSort(0, bounds.inputs * stride - 1),
        head=IntSort(0, bounds.max_head_revision),
        ttl=IntSort(0, bounds.ttl_steps),
        turn=IntSort(0, max(bounds.turns, 1) - 1),
    )


def _variables(s: _Sorts) -> tuple[Variable, ...]:
    b, i, o = s.batch, s.input, s.owner
    plain = [
        Variable("lease_holder", s.owner_or_none, "owner of the lease row, -1 when released"),
        Variable("lease_holder_inc", s.inc_or_none, "incarnation of the row's owner, -1 when none"),
        Variable("lease_gen", s.gen, "the row's fencing token (0 = never acquired)"),
        Variable("lease_live", BoolSort(), "token present and not expired"),
        Variable("owner_alive", MapSort(o, BoolSort()), "the owner's process is running"),
        Variable("owner_inc", MapSort(o, s.inc), "current incarnation number"),
        Variable("owner_fence", MapSort(o, s.gen), "generation the owner believes it holds"),
        Variable("owner_qclaim", MapSort(o, s.qcode), "queue claim code held, 0 = none"),
        Variable(
            "owner_qclaim_rows",
            MapSort(o, MapSort(b, BoolSort())),
            "batch slots named by the held queue claim",
        ),
        Variable("owner_iclaim", MapSort(o, s.icode), "input claim code held, 0 = none"),
        Variable(
            "owner_iclaim_rows",
            MapSort(o, MapSort(i, BoolSort())),
            "input slots named by the held input claim",
        ),
        Variable("batch_status", MapSort(b, BATCH_STATUS), "absent, queued or deleted"),
        Variable("batch_claim", MapSort(b, s.qcode), "claim code stamped on the row"),
        Variable("batch_claim_gen", MapSort(b, s.gen), "claim_session_lease_generation"),
        Variable("batch_fencing", MapSort(b, s.fencing), "claim_fencing_token (never reset)"),
        Variable("input_state", MapSort(i, INPUT_STATE), "pending turn input state"),
        Variable("input_rewritten", MapSort(i, BoolSort()), "ingress rewritten to next_turn"),
        Variable("input_claim", MapSort(i, s.icode), "claim code stamped on the row"),
        Variable("input_claim_gen", MapSort(i, s.gen), "claim_session_lease_generation"),
        Variable("input_fencing", MapSort(i, s.fencing), "claim_fencing_token (never reset)"),
        Variable("head_revision", s.head, "committed head revision"),
        Variable(
            "lease_ttl_left",
            s.ttl,
            "remaining lease lifetime in clock steps (ttl_steps = a full TTL), 0 when not live",
        ),
        Variable(
            "turn_result",
            MapSort(s.turn, s.head),
            "head revision a stamped commit of turn t returned, 0 = turn not committed",
        ),
        Variable("turn_content", MapSort(s.turn, CONTENTS), "content of turn t's commit"),
    ]
    flags = [Variable(name, BoolSort(), doc, ghost=True) for name, doc in HISTORY_FLAGS]
    return tuple(plain + flags)


def _session1_variables(s: _Sorts) -> tuple[Variable, ...]:
    """The variables of session-1 (bound ``second_session``)."""
    o = s.owner
    return (
        Variable("s1_lease_holder", s.owner_or_none, "owner of session-1's lease row, -1 = none"),
        Variable("s1_lease_holder_inc", s.inc_or_none, "incarnation of that owner, -1 = none"),
        Variable("s1_lease_gen", s.gen, "session-1's fencing token (0 = never acquired)"),
        Variable(
            "s1_lease_ttl_left",
            s.ttl,
            "session-1's remaining lease lifetime in clock steps, 0 when not live",
        ),
        Variable("s1_batch_status", BATCH_STATUS, "session-1's batch slot: absent/queued/deleted"),
        Variable("s1_batch_claim_gen", s.gen, "its claim_session_lease_generation, 0 = unclaimed"),
        Variable("s1_batch_fencing", s.fencing, "its claim_fencing_token (never reset)"),
        Variable(
            "head_session",
            IntSort(-1, 1),
            "the session the store's head is bound to (its first commit's), -1 = none",
        ),
        Variable("owner_s1_fence", MapSort(o, s.gen), "session-1 generation the owner holds"),
        Variable(
            "owner_s1_claim",
            MapSort(o, s.fencing),
            "claim fencing token of the session-1 claim the owner holds, 0 = none",
        ),
        Variable(
            "hist_session_crossing",
            BoolSort(),
            "an action on one session changed the other session's state",
            ghost=True,
        ),
    )


def _session1_input_variables() -> tuple[Variable, ...]:
    """Session-1's input slot (``second_session = 2``)."""
    return (
        Variable(
            SESSION1_INPUT_STATE,
            INPUT_STATE,
            "session-1's input slot (session-0 slot i0's source key): absent or "
            "deferred_next_turn (enqueued, never claimed)",
        ),
    )


def _delayed_variables(s: _Sorts) -> tuple[Variable, ...]:
    """The variable of delayed work (bound ``delayed_work``)."""
    return (
        Variable(
            "batch_wait",
            MapSort(s.batch, IntSort(0, 1)),
            "clock steps until the slot's row is available (available_at > now), 0 = available",
        ),
    )


def _session1_initial(bounds: Bounds) -> dict[str, Value]:
    owners = range(bounds.owners)
    return {
        "s1_lease_holder": -1,
        "s1_lease_holder_inc": -1,
        "s1_lease_gen": 0,
        "s1_lease_ttl_left": 0,
        "s1_batch_status": "absent",
        "s1_batch_claim_gen": 0,
        "s1_batch_fencing": 0,
        "head_session": -1,
        "owner_s1_fence": {o: 0 for o in owners},
        "owner_s1_claim": {o: 0 for o in owners},
        "hist_session_crossing": False,
    }


def _initial(bounds: Bounds, s: _Sorts) -> dict[str, Value]:
    owners = range(bounds.owners)
    batches = range(bounds.batches)
    inputs = range(bounds.inputs)
    init: dict[str, Value] = {
        "lease_holder": -1,
        "lease_holder_inc": -1,
        "lease_gen": 0,
        "lease_live": False,
        "owner_alive": {o: True for o in owners},
        "owner_inc": {o: 0 for o in owners},
        "owner_fence": {o: 0 for o in owners},
        "owner_qclaim": {o: 0 for o in owners},
        "owner_qclaim_rows": {o: {b: False for b in batches} for o in owners},
        "owner_iclaim": {o: 0 for o in owners},
        "owner_iclaim_rows": {o: {i: False for i in inputs} for o in owners},
        "batch_status": {b: "absent" for b in batches},
        "batch_claim": {b: 0 for b in batches},
        "batch_claim_gen": {b: 0 for b in batches},
        "batch_fencing": {b: 0 for b in batches},
        "input_state": {i: "absent" for i in inputs},
        "input_rewritten": {i: False for i in inputs},
        "input_claim": {i: 0 for i in inputs},
        "input_claim_gen": {i: 0 for i in inputs},
        "input_fencing": {i: 0 for i in inputs},
        "head_revision": 0,
        "lease_ttl_left": 0,
        "turn_result": {t: 0 for t in range(max(bounds.turns, 1))},
        "turn_content": {t: 0 for t in range(max(bounds.turns, 1))},
    }
    for name, _ in HISTORY_FLAGS:
        init[name] = False
    del s
    return init


# --------------------------------------------------------------------------------------------
# The model


class KernelBuilder:
    """Writes the model down: sorts, catalogue tables, shared predicates, actions, invariants.

    The predicate methods are public so that model transformations (``mutants.py``) can find
    the exact sub-expressions they rewrite.
    """

    def __init__(self, bounds: Bounds):
        self.bounds = bounds
        self.s = _sorts(bounds)
        self.stride = bounds.max_claims_per_row + 1
        nb, ni = bounds.batches, bounds.inputs
        batch_rows = BATCH_CATALOGUE[:nb]
        input_rows = INPUT_CATALOGUE[:ni]
        self.work_class = map_lit(self.s.batch, [r["work_class"] for r in batch_rows])
        self.delivery = map_lit(self.s.batch, [r["delivery"] for r in batch_rows])
        self.slot_policy = map_lit(self.s.batch, [r["slot_policy"] for r in batch_rows])
        self.merge_key = map_lit(self.s.batch, [r["merge_key"] for r in batch_rows])
        self.ingress = map_lit(self.s.input, [r["ingress"] for r in input_rows])
        self.min_boundary = map_lit(self.s.input, [r["min_boundary"] for r in input_rows])

    # -- shared predicates --------------------------------------------------------------------

    def switch(self, bound: str) -> Expr:
        """TRUE when the vocabulary extension switched by ``bound`` is on (bound >= 1): its
        actions are disabled otherwise, so a profile explores only what it is for."""
        return TRUE if getattr(self.bounds, bound) >= 1 else FALSE

    def limit_params(self) -> dict[str, EnumSort]:
        """The ``limit`` pick of the claim actions, present only under ``claim_limits`` so the
        profiles without the bound keep their action instances and traces."""
        return {"limit": CLAIM_LIMIT} if self.bounds.claim_limits else {}

    def within_limit(self, row: Expr, head: Expr) -> Expr:
        """A selectable ``row`` is taken under the claim's limit: every one under ``all``,
        only the head (the first in enqueue order) under ``one``."""
        if not self.bounds.claim_limits:
            return TRUE
        return any_of(Param("limit").eq("all"), row.eq(head))

    @staticmethod
    def valid_fence(o: Expr) -> Expr:
        """store.md §2.2 validate_fence for owner ``o``'s remembered fence."""
        return all_of(
            owner_fence[o].ne(0),
            lease_live,
            lease_holder.eq(o),
            lease_holder_inc.eq(owner_inc[o]),
            lease_gen.eq(owner_fence[o]),
        )

    @staticmethod
    def row_names_fence(o: Expr) -> Expr:
        """The lease row names owner ``o``'s remembered fence (holder, incarnation and
        generation), live or not: what a release's compare-and-set matches."""
        return all_of(
            lease_holder.eq(o),
            lease_holder_inc.eq(owner_inc[o]),
            lease_gen.eq(owner_fence[o]),
        )

    @staticmethod
    def holder_dead() -> Expr:
        """is_definitely_dead_for_claimant for the holder recorded on the row (§1.1)."""
        return all_of(
            lease_holder >= 0,
            any_of(~owner_alive[lease_holder], owner_inc[lease_holder].ne(lease_holder_inc)),
        )

    @staticmethod
    def alive(o: Expr) -> Expr:
        return owner_alive[o]

    def batch_claimable(self, b: Expr, g: Expr) -> Expr:
        """§3.4: ready (available_at <= now) & claimable for generation ``g``; without the
        bound delayed_work every row is available at once."""
        return all_of(
            batch_status[b].eq("queued"),
            any_of(batch_claim[b].eq(0), batch_claim_gen[b].ne(g)),
            *self.available(b),
        )

    def available(self, b: Expr) -> list[Expr]:
        """``[available_at <= now]`` for slot ``b`` with delayed work, ``[]`` without."""
        return [batch_wait[b].eq(0)] if self.bounds.delayed_work else []

    @staticmethod
    def batch_live_claimed(b: Expr) -> Expr:
        """§3.4 lease-less view: the row's claim is pinned to the live generation."""
        return all_of(batch_claim[b].ne(0), lease_live, lease_gen.eq(batch_claim_gen[b]))

    @staticmethod
    def input_live_claimed(i: Expr) -> Expr:
        return all_of(input_claim[i].ne(0), lease_live, lease_gen.eq(input_claim_gen[i]))

    @staticmethod
    def input_exists(i: Expr) -> Expr:
        return all_of(input_state[i].ne("absent"), input_state[i].ne("vacuumed"))

    def queue_head(self, g: Expr) -> Expr:
        return first_where(self.s.batch, lambda b: self.batch_claimable(b, g), -1)

    def joinable_to(self, h: Expr, c: Expr) -> Expr:
        """§3.5: slot ``c`` may follow head ``h`` in one join run."""
        return all_of(
            self.work_class[c].eq("turn_work"),
            self.slot_policy[c].eq("join"),
            self.delivery[c].eq(self.delivery[h]),
            self.merge_key[c].eq(self.merge_key[h]),
        )

    def head_gate(self, h: Expr, idle: Expr) -> Expr:
        """§3.5: head ``h`` starts a turn-work claim (at an idle boundary iff ``idle``)."""
        return all_of(
            h >= 0,
            self.work_class[h].eq("turn_work"),
            any_of(idle, self.delivery[h].eq("earliest_safe_boundary")),
        )

    def turn_work_selected(self, b: Expr, h: Expr, g: Expr, boundary: Expr) -> Expr:
        """§3.5 select_turn_work_claim_prefix: is slot ``b`` in the claim headed by ``h``."""
        return self.turn_work_selected_at(b, h, g, boundary.eq("idle"))

    def turn_work_selected_at(self, b: Expr, h: Expr, g: Expr, idle: Expr) -> Expr:
        """As :meth:`turn_work_selected`, the boundary given as ``idle`` (a boolean)."""

        def joinable(c: Expr) -> Expr:
            return self.joinable_to(h, c)

        gate = self.head_gate(h, idle)
        run = all_of(
            self.slot_policy[h].eq("join"),
            h < b,
            joinable(b),
            forall(
                "qc",
                self.s.batch,
                lambda c: all_of(h < c, c < b, self.batch_claimable(c, g)).implies(joinable(c)),
            ),
        )
        return all_of(gate, self.batch_claimable(b, g), any_of(b.eq(h), run))

    def claim_code(self, h: Expr, fencing: Expr) -> Expr:
        return h * self.stride + fencing[h] + 1

    def input_admits(self, i: Expr, checkpoint: Expr) -> Expr:
        return all_of(
            self.ingress[i].eq("active_turn"),
            any_of(self.min_boundary[i].eq("after_work"), checkpoint.eq("before_completion")),
        )

    # -- lease ---------------------------------------------------------------------------------

    def acquire(self) -> Action:
        o = Param("o")
        return Action(
            "acquire",
            {"o": self.s.owner},
            all_of(self.alive(o), any_of(lease_gen < self.bounds.max_generation, lease_live)),
            [
                Case(
                    all_of(lease_live, lease_holder.eq(o), lease_holder_inc.eq(owner_inc[o])),
                    {"owner_fence": owner_fence.set(o, lease_gen), **self.full_ttl()},
                    Outcome("Acquired", {"gen": lease_gen}),
                ),
                Case(lease_live, {}, Outcome("Busy", {"holder": lease_holder, "gen": lease_gen})),
                Case(
                    TRUE,
                    {**self._fresh_acquisition(o), **self.full_ttl()},
                    Outcome("Acquired", {"gen": lease_gen + 1}),
                ),
            ],
            doc="try_claim_session_execution_lease: re-entry, Busy, or a fresh generation",
        )

    def full_ttl(self) -> dict[str, Expr]:
        """The lease's expiry moves to a full TTL from now (acquisition, re-entry, renew)."""
        return {"lease_ttl_left": Const(self.bounds.ttl_steps)}

    def _fresh_acquisition(self, o: Expr) -> dict[str, Expr]:
        return {
            "lease_holder": o,
            "lease_holder_inc": owner_inc[o],
            "lease_gen": lease_gen + 1,
            "lease_live": TRUE,
            "owner_fence": owner_fence.set(o, lease_gen + 1),
        }

    def reclaim(self) -> Action:
        o = Param("o")
        observed = Param("observed")
        takeover = all_of(observed.eq(lease_gen), self.holder_dead())
        return Action(
            "reclaim",
            {"o": self.s.owner, "observed": IntSort(1, self.bounds.max_generation)},
            all_of(
                self.alive(o),
                observed <= lease_gen,
                any_of(lease_gen < self.bounds.max_generation, all_of(lease_live, ~takeover)),
            ),
            [
                Case(
                    ~lease_live,
                    {**self._fresh_acquisition(o), **self.full_ttl()},
                    Outcome("Acquired", {"gen": lease_gen + 1}),
                ),
                Case(
                    takeover,
                    {**self._fresh_acquisition(o), **self.full_ttl()},
                    Outcome("Acquired", {"gen": lease_gen + 1}),
                ),
                Case(TRUE, {}, Outcome("Busy", {"holder": lease_holder, "gen": lease_gen})),
            ],
            doc="reclaim_session_execution_lease: CAS on the observed holder plus deadness",
        )

    def renew(self) -> Action:
        o = Param("o")
        return Action(
            "renew",
            {"o": self.s.owner},
            all_of(self.alive(o), owner_fence[o].ne(0)),
            [
                Case(self.valid_fence(o), self.full_ttl(), Outcome("Ok")),
                Case(TRUE, {}, Outcome("SessionExecutionLeaseExpired")),
            ],
            doc="renew_session_execution_lease: keeps the generation, a full TTL from now; "
            "expired leases stay dead",
        )

    def release(self) -> Action:
        o = Param("o")
        matches = self.row_names_fence(o)
        return Action(
            "release",
            {"o": self.s.owner},
            all_of(self.alive(o), owner_fence[o].ne(0)),
            [
                Case(
                    matches,
                    {
                        "lease_holder": -1,
                        "lease_holder_inc": -1,
                        "lease_live": FALSE,
                        "lease_ttl_left": Const(0),
                        "owner_fence": owner_fence.set(o, 0),
                    },
                    Outcome("Ok"),
                ),
                Case(TRUE, {"owner_fence": owner_fence.set(o, 0)}, Outcome("Ok")),
            ],
            doc="release_session_execution_lease: fenced CAS, silent no-op otherwise",
        )

    def expire(self) -> Action:
        guard: Expr = lease_live
        updates: dict[str, Expr] = {"lease_live": FALSE, "lease_ttl_left": Const(0)}
        if self.bounds.second_session:
            # the clock is the store's: session-1's lease lapses too
            guard = any_of(lease_live, s1_lease_ttl_left > 0)
            updates["s1_lease_ttl_left"] = Const(0)
        if self.bounds.delayed_work:
            # a whole TTL is at least one step: every delayed row becomes available
            guard = any_of(guard, self.some_waiting())
            updates["batch_wait"] = map_of("qb", self.s.batch, lambda _: Const(0))
        return Action(
            "expire",
            {},
            guard,
            [Case(TRUE, updates, Outcome("Ok"))],
            doc="advance the store clock by the TTL",
        )

    def advance(self) -> Action:
        guard: Expr = lease_live
        updates: dict[str, Expr] = {
            "lease_live": lease_ttl_left > 1,
            "lease_ttl_left": lease_ttl_left - 1,
        }
        if self.bounds.second_session:
            guard = any_of(lease_live, s1_lease_ttl_left > 0)
            updates["lease_ttl_left"] = ite(lease_live, lease_ttl_left - 1, 0)
            updates["s1_lease_ttl_left"] = ite(s1_lease_ttl_left > 0, s1_lease_ttl_left - 1, 0)
        if self.bounds.delayed_work:
            # the clock also moves while only delayed work waits for it
            guard = any_of(guard, self.some_waiting())
            updates["lease_ttl_left"] = ite(lease_live, lease_ttl_left - 1, 0)
            updates["batch_wait"] = map_of(
                "qb", self.s.batch, lambda b: ite(batch_wait[b] > 0, batch_wait[b] - 1, 0)
            )
        return Action(
            "advance",
            {},
            guard,
            [Case(TRUE, updates, Outcome("Ok"))],
            doc="advance the store clock by one step (TTL / ttl_steps); a lease with one step "
            "left lapses",
        )

    def some_waiting(self) -> Expr:
        return exists("qb", self.s.batch, lambda b: batch_wait[b] > 0)

    def crash(self) -> Action:
        o = Param("o")
        return Action(
            "crash",
            {"o": self.s.owner},
            self.alive(o),
            [
                Case(
                    TRUE,
                    {"owner_alive": owner_alive.set(o, FALSE), **self._forget(o)},
                    Outcome("Ok"),
                )
            ],
            doc="kill the owner's process; its memory is lost",
        )

    def _forget(self, o: Expr) -> dict[str, Expr]:
        return {
            "owner_fence": owner_fence.set(o, 0),
            "owner_qclaim": owner_qclaim.set(o, 0),
            "owner_qclaim_rows": owner_qclaim_rows.set(
                o, map_of("qb", self.s.batch, lambda _: FALSE)
            ),
            "owner_iclaim": owner_iclaim.set(o, 0),
            "owner_iclaim_rows": owner_iclaim_rows.set(
                o, map_of("qi", self.s.input, lambda _: FALSE)
            ),
            **(
                {
                    "owner_s1_fence": owner_s1_fence.set(o, 0),
                    "owner_s1_claim": owner_s1_claim.set(o, 0),
                }
                if self.bounds.second_session
                else {}
            ),
        }

    def restart(self) -> Action:
        o = Param("o")
        return Action(
            "restart",
            {"o": self.s.owner},
            all_of(~owner_alive[o], owner_inc[o] < self.bounds.max_incarnation),
            [
                Case(
                    TRUE,
                    {
                        "owner_alive": owner_alive.set(o, TRUE),
                        "owner_inc": owner_inc.set(o, owner_inc[o] + 1),
                    },
                    Outcome("Ok"),
                )
            ],
            doc="start a crashed owner again as its next incarnation",
        )

    # -- queued work ---------------------------------------------------------------------------

    def enqueue_batch(self) -> Action:
        b = Param("b")
        earlier_enqueued = forall(
            "qc", self.s.batch, lambda c: (c < b).implies(batch_status[c].ne("absent"))
        )
        return Action(
            "enqueue_batch",
            {"b": self.s.batch},
            all_of(batch_status[b].eq("absent"), earlier_enqueued),
            [Case(TRUE, {"batch_status": batch_status.set(b, "queued")}, Outcome("Enqueued"))],
            doc="enqueue_queued_work of the slot's draft",
        )

    def enqueue_batch_later(self) -> Action:
        b = Param("b")
        earlier_enqueued = forall(
            "qc", self.s.batch, lambda c: (c < b).implies(batch_status[c].ne("absent"))
        )
        return Action(
            "enqueue_batch_later",
            {"b": self.s.batch},
            all_of(batch_status[b].eq("absent"), earlier_enqueued),
            [
                Case(
                    TRUE,
                    {
                        "batch_status": batch_status.set(b, "queued"),
                        "batch_wait": batch_wait.set(b, 1),
                    },
                    Outcome("Enqueued"),
                )
            ],
            doc="enqueue_queued_work of the slot's draft with available_at one clock step "
            "(TTL / ttl_steps) from now: not claimable until the clock has moved",
        )

    def delayed_actions(self) -> list[Action]:
        return [self.enqueue_batch_later()] if self.bounds.delayed_work else []

    def replay_batch(self) -> Action:
        b = Param("b")
        guard: Expr = batch_status[b].eq("queued")
        cases = [Case(TRUE, {}, Outcome("Replayed", {"state": "queued"}))]
        if self.bounds.source_replay:
            # A deleted row no longer holds its source key: the same draft enqueues a new row
            # for the slot, last in the queue, so only while no later slot has a queued row
            # (slot order stays enqueue order). Its claim fencing token counts on from the
            # slot's last row (trace-format.md §1).
            guard = any_of(
                guard,
                all_of(
                    batch_status[b].eq("deleted"),
                    forall(
                        "qc",
                        self.s.batch,
                        lambda c: (b < c).implies(batch_status[c].ne("queued")),
                    ),
                ),
            )
            cases.insert(
                0,
                Case(
                    batch_status[b].eq("deleted"),
                    {
                        "batch_status": batch_status.set(b, "queued"),
                        **(
                            {"batch_wait": batch_wait.set(b, 0)} if self.bounds.delayed_work else {}
                        ),
                    },
                    Outcome("Enqueued"),
                ),
            )
        return Action(
            "replay_batch",
            {"b": self.s.batch},
            guard,
            cases,
            doc="the same draft again: source-key idempotent, returns the stored batch (with "
            "source_replay, a deleted slot's draft enqueues a new row)",
        )

    def _stamp_batches(self, o: Expr, selected: Any, code: Expr, g: Expr) -> dict[str, Expr]:
        return {
            "batch_claim": map_of(
                "qb", self.s.batch, lambda b: ite(selected(b), code, batch_claim[b])
            ),
            "batch_claim_gen": map_of(
                "qb", self.s.batch, lambda b: ite(selected(b), g, batch_claim_gen[b])
            ),
            "batch_fencing": map_of(
                "qb",
                self.s.batch,
                lambda b: ite(selected(b), batch_fencing[b] + 1, batch_fencing[b]),
            ),
            "owner_qclaim": owner_qclaim.set(o, code),
            "owner_qclaim_rows": owner_qclaim_rows.set(o, map_of("qb", self.s.batch, selected)),
        }

    def claim_command(self) -> Action:
        o = Param("o")
        g = owner_fence[o]
        k = self.bounds.max_claims_per_row

        def with_head(body: Any) -> Expr:
            return let("h", self.queue_head(g), body)

        def is_command_head(h: Expr) -> Expr:
            return all_of(h >= 0, self.work_class[h].eq("session_command"))

        return Action(
            "claim_command",
            {"o": self.s.owner},
            all_of(
                self.alive(o),
                owner_fence[o].ne(0),
                any_of(
                    forall("qb", self.s.batch, lambda b: batch_fencing[b] < k),
                    ~self.valid_fence(o),
                    with_head(lambda h: is_command_head(h).implies(batch_fencing[h] < k)),
                ),
            ),
            [
                Case(~self.valid_fence(o), {}, Outcome("SessionExecutionLeaseExpired")),
                Case(
                    with_head(is_command_head),
                    {
                        name: with_head(update)
                        for name, update in self._command_updates(o, g).items()
                    },
                    Outcome(
                        "Claimed",
                        {
                            "claim": with_head(lambda h: self.claim_code(h, batch_fencing)),
                            "rows": with_head(
                                lambda h: set_of("qb", self.s.batch, lambda b: b.eq(h))
                            ),
                        },
                    ),
                ),
                Case(TRUE, {}, Outcome("NoClaim")),
            ],
            doc="claim_leading_ready_session_command: exactly the head, if it is a command",
        )

    def _command_updates(self, o: Expr, g: Expr) -> dict[str, Any]:
        def updates_for(name: str) -> Any:
            def build(h: Expr) -> Expr:
                code = self.claim_code(h, batch_fencing)
                return self._stamp_batches(o, lambda b: b.eq(h), code, g)[name]

            return build

        return {
            name: updates_for(name)
            for name in (
                "batch_claim",
                "batch_claim_gen",
                "batch_fencing",
                "owner_qclaim",
                "owner_qclaim_rows",
            )
        }

    def claim_work(self) -> Action:
        o = Param("o")
        boundary = Param("boundary")
        g = owner_fence[o]
        k = self.bounds.max_claims_per_row

        def with_head(body: Any) -> Expr:
            return let("h", self.queue_head(g), body)

        def selected_under(h: Expr) -> Any:
            return lambda b: all_of(
                self.turn_work_selected(b, h, g, boundary), self.within_limit(b, h)
            )

        def any_selected(h: Expr) -> Expr:
            return exists("qb", self.s.batch, selected_under(h))

        def update_for(name: str) -> Expr:
            return with_head(
                lambda h: self._stamp_batches(
                    o, selected_under(h), self.claim_code(h, batch_fencing), g
                )[name]
            )

        names = (
            "batch_claim",
            "batch_claim_gen",
            "batch_fencing",
            "owner_qclaim",
            "owner_qclaim_rows",
        )
        updates = {name: update_for(name) for name in names}
        return Action(
            "claim_work",
            {"o": self.s.owner, "boundary": BOUNDARY, **self.limit_params()},
            all_of(
                self.alive(o),
                owner_fence[o].ne(0),
                any_of(
                    forall("qb", self.s.batch, lambda b: batch_fencing[b] < k),
                    ~self.valid_fence(o),
                    with_head(
                        lambda h: forall(
                            "qb",
                            self.s.batch,
                            lambda b: selected_under(h)(b).implies(batch_fencing[b] < k),
                        )
                    ),
                ),
            ),
            [
                Case(~self.valid_fence(o), {}, Outcome("SessionExecutionLeaseExpired")),
                Case(
                    with_head(any_selected),
                    updates,
                    Outcome(
                        "Claimed",
                        {
                            "claim": with_head(lambda h: self.claim_code(h, batch_fencing)),
                            "rows": with_head(
                                lambda h: set_of("qb", self.s.batch, selected_under(h))
                            ),
                        },
                    ),
                ),
                Case(TRUE, {}, Outcome("NoClaim")),
            ],
            doc="claim_ready_queued_work at a boundary: every selectable row, or only the head "
            "under limit one",
        )

    def claim_work_by_ids(self) -> Action:
        o = Param("o")
        first = Param("b")
        last = Param("last")
        boundary = Param("boundary")
        g = owner_fence[o]
        k = self.bounds.max_claims_per_row

        def listed(c: Expr) -> Expr:
            return all_of(first <= c, c <= last)

        def row_ok(c: Expr) -> Expr:
            return all_of(
                batch_status[c].eq("queued"),
                any_of(batch_claim[c].eq(0), batch_claim_gen[c].ne(g)),
                self.work_class[c].eq("turn_work"),
                *self.available(c),
            )

        valid = all_of(
            forall("qc", self.s.batch, lambda c: listed(c).implies(row_ok(c))),
            self.head_gate(first, boundary.eq("idle")),
            any_of(
                first.eq(last),
                all_of(
                    self.slot_policy[first].eq("join"),
                    forall(
                        "qc",
                        self.s.batch,
                        lambda c: all_of(first < c, c <= last).implies(self.joinable_to(first, c)),
                    ),
                ),
            ),
        )
        code = self.claim_code(first, batch_fencing)
        return Action(
            "claim_work_by_ids",
            {"o": self.s.owner, "b": self.s.batch, "last": self.s.batch, "boundary": BOUNDARY},
            all_of(
                self.switch("exact_claims"),
                self.alive(o),
                owner_fence[o].ne(0),
                first <= last,
                any_of(
                    ~self.valid_fence(o),
                    ~valid,
                    forall("qb", self.s.batch, lambda c: listed(c).implies(batch_fencing[c] < k)),
                ),
            ),
            [
                Case(~self.valid_fence(o), {}, Outcome("SessionExecutionLeaseExpired")),
                Case(
                    valid,
                    self._stamp_batches(o, listed, code, g),
                    Outcome(
                        "Claimed",
                        {"claim": code, "rows": set_of("qb", self.s.batch, listed)},
                    ),
                ),
                Case(TRUE, {}, Outcome("NoClaim")),
            ],
            doc="claim_ready_queued_work_by_batch_ids with the ids of slots b..last in order: "
            "exactly those rows or nothing (may bypass earlier ready work)",
        )

    def claim_checkpoint_work(self) -> Action:
        o = Param("o")
        checkpoint = Param("checkpoint")
        g = owner_fence[o]
        k = self.bounds.max_claims_per_row

        def input_selectable(i: Expr) -> Expr:
            return all_of(
                input_state[i].eq("pending_active"),
                ~input_rewritten[i],
                self.input_admits(i, checkpoint),
                any_of(input_claim[i].eq(0), input_claim_gen[i].ne(g)),
            )

        input_head = first_where(self.s.input, input_selectable, -1)

        def input_selected(i: Expr) -> Expr:
            return all_of(input_selectable(i), self.within_limit(i, input_head))

        def with_head(body: Any) -> Expr:
            return let("h", self.queue_head(g), body)

        def queue_selected_under(h: Expr) -> Any:
            return lambda b: all_of(
                self.turn_work_selected_at(b, h, g, FALSE), self.within_limit(b, h)
            )

        any_input = exists("qi", self.s.input, input_selectable)
        any_queue = with_head(lambda h: exists("qb", self.s.batch, queue_selected_under(h)))
        probe = any_of(any_input, any_queue)
        input_code = ite(any_input, self.claim_code(input_head, input_fencing), 0)
        queue_code = with_head(
            lambda h: ite(
                exists("qb", self.s.batch, queue_selected_under(h)),
                self.claim_code(h, batch_fencing),
                0,
            )
        )

        def queue_selected(b: Expr) -> Expr:
            return with_head(lambda h: queue_selected_under(h)(b))

        stamp_inputs = self._stamp_inputs(o, input_selected, input_code, g, True)
        stamp_batches = self._stamp_batches(o, queue_selected, queue_code, g)
        updates: dict[str, Expr] = {
            name: update
            for name, update in {**stamp_inputs, **stamp_batches}.items()
            if not name.startswith("owner_")
        }
        updates.update(
            {
                "owner_iclaim": owner_iclaim.set(o, ite(any_input, input_code, owner_iclaim[o])),
                "owner_iclaim_rows": owner_iclaim_rows.set(
                    o,
                    map_of(
                        "qi",
                        self.s.input,
                        lambda i: ite(any_input, input_selected(i), owner_iclaim_rows[o][i]),
                    ),
                ),
                "owner_qclaim": owner_qclaim.set(o, ite(any_queue, queue_code, owner_qclaim[o])),
                "owner_qclaim_rows": owner_qclaim_rows.set(
                    o,
                    map_of(
                        "qb",
                        self.s.batch,
                        lambda b: ite(any_queue, queue_selected(b), owner_qclaim_rows[o][b]),
                    ),
                ),
            }
        )
        return Action(
            "claim_checkpoint_work",
            {"o": self.s.owner, "checkpoint": CHECKPOINT, **self.limit_params()},
            all_of(
                self.switch("exact_claims"),
                self.alive(o),
                owner_fence[o].ne(0),
                any_of(
                    ~probe,
                    ~self.valid_fence(o),
                    all_of(
                        forall(
                            "qi",
                            self.s.input,
                            lambda i: input_selected(i).implies(input_fencing[i] < k),
                        ),
                        forall(
                            "qb",
                            self.s.batch,
                            lambda b: queue_selected(b).implies(batch_fencing[b] < k),
                        ),
                    ),
                ),
            ),
            [
                Case(~probe, {}, Outcome("NoClaim")),
                Case(~self.valid_fence(o), {}, Outcome("SessionExecutionLeaseExpired")),
                Case(
                    TRUE,
                    updates,
                    Outcome(
                        "CheckpointClaimed",
                        {
                            "input_claim": input_code,
                            "input_rows": set_of("qi", self.s.input, input_selected),
                            "queue_claim": queue_code,
                            "queue_rows": set_of("qb", self.s.batch, queue_selected),
                        },
                    ),
                ),
            ],
            doc="claim_checkpoint_work for turn-0: a read-only probe (nothing selectable -> "
            "NoClaim, even with an expired fence), then the active-turn inputs and the "
            "checkpoint turn work in one transaction",
        )

    def abandon_work(self) -> Action:
        o = Param("o")
        code = owner_qclaim[o]

        def stamped(b: Expr) -> Expr:
            return all_of(batch_status[b].eq("queued"), batch_claim[b].eq(code))

        return Action(
            "abandon_work",
            {"o": self.s.owner},
            all_of(self.alive(o), code.ne(0)),
            [
                Case(
                    TRUE,
                    {
                        "batch_claim": map_of(
                            "qb", self.s.batch, lambda b: ite(stamped(b), 0, batch_claim[b])
                        ),
                        "batch_claim_gen": map_of(
                            "qb", self.s.batch, lambda b: ite(stamped(b), 0, batch_claim_gen[b])
                        ),
                        "owner_qclaim": owner_qclaim.set(o, 0),
                        "owner_qclaim_rows": owner_qclaim_rows.set(
                            o, map_of("qb", self.s.batch, lambda _: FALSE)
                        ),
                    },
                    Outcome("Ok"),
                )
            ],
            doc="abandon_queued_work_claim: clears rows stamped with the exact claim",
        )

    def cancel_batch(self) -> Action:
        b = Param("b")
        return Action(
            "cancel_batch",
            {"b": self.s.batch},
            batch_status[b].ne("absent"),
            [
                Case(batch_status[b].eq("deleted"), {}, Outcome("NotCancelled")),
                Case(self.batch_live_claimed(b), {}, Outcome("NotCancelled")),
                Case(
                    TRUE,
                    {
                        "batch_status": batch_status.set(b, "deleted"),
                        "batch_claim": batch_claim.set(b, 0),
                        "batch_claim_gen": batch_claim_gen.set(b, 0),
                    },
                    Outcome("Cancelled"),
                ),
            ],
            doc="cancel_queued_work_batch: None when missing or live-claimed",
        )

    # -- pending turn input ----------------------------------------------------------------------

    def enqueue_input(self) -> Action:
        i = Param("i")
        earlier = forall("qj", self.s.input, lambda j: (j < i).implies(input_state[j].ne("absent")))
        return Action(
            "enqueue_input",
            {"i": self.s.input},
            all_of(input_state[i].eq("absent"), earlier),
            [
                Case(
                    TRUE,
                    {
                        "input_state": input_state.set(
                            i,
                            ite(
                                self.ingress[i].eq("next_turn"),
                                "deferred_next_turn",
                                "pending_active",
                            ),
                        )
                    },
                    Outcome("Enqueued"),
                )
            ],
            doc="enqueue_pending_turn_input of the slot's draft",
        )

    def replay_input(self) -> Action:
        i = Param("i")
        guard: Expr = self.input_exists(i)
        cases = [
            Case(input_rewritten[i], {}, Outcome("PendingTurnInputSourceKeyConflict")),
            Case(TRUE, {}, Outcome("Replayed", {"state": input_state[i]})),
        ]
        if self.bounds.source_replay:
            # A vacuumed row no longer holds its source key: the same draft enqueues a new row
            # (last, so only while no later slot has a row), fresh: not rewritten, unclaimed.
            guard = any_of(
                guard,
                all_of(
                    input_state[i].eq("vacuumed"),
                    forall(
                        "qj",
                        self.s.input,
                        lambda j: (i < j).implies(
                            any_of(input_state[j].eq("absent"), input_state[j].eq("vacuumed"))
                        ),
                    ),
                ),
            )
            cases.insert(
                0,
                Case(
                    input_state[i].eq("vacuumed"),
                    {
                        "input_state": input_state.set(
                            i,
                            ite(
                                self.ingress[i].eq("next_turn"),
                                "deferred_next_turn",
                                "pending_active",
                            ),
                        ),
                        "input_rewritten": input_rewritten.set(i, FALSE),
                    },
                    Outcome("Enqueued"),
                ),
            )
        return Action(
            "replay_input",
            {"i": self.s.input},
            guard,
            cases,
            doc="the same draft again: the stored row in its current state (or a conflict "
            "once deferral rewrote the ingress; with source_replay, a vacuumed slot's draft "
            "enqueues a new row)",
        )

    def conflict_input(self) -> Action:
        i = Param("i")
        return Action(
            "conflict_input",
            {"i": self.s.input},
            self.input_exists(i),
            [Case(TRUE, {}, Outcome("PendingTurnInputSourceKeyConflict"))],
            doc="same source key, changed text",
        )

    def _stamp_inputs(
        self, o: Expr, selected: Any, code: Expr, g: Expr, accept: bool
    ) -> dict[str, Expr]:
        updates = {
            "input_claim": map_of(
                "qi", self.s.input, lambda i: ite(selected(i), code, input_claim[i])
            ),
            "input_claim_gen": map_of(
                "qi", self.s.input, lambda i: ite(selected(i), g, input_claim_gen[i])
            ),
            "input_fencing": map_of(
                "qi",
                self.s.input,
                lambda i: ite(selected(i), input_fencing[i] + 1, input_fencing[i]),
            ),
            "owner_iclaim": owner_iclaim.set(o, code),
            "owner_iclaim_rows": owner_iclaim_rows.set(o, map_of("qi", self.s.input, selected)),
        }
        if accept:
            updates["input_state"] = map_of(
                "qi", self.s.input, lambda i: ite(selected(i), "accepted", input_state[i])
            )
        return updates

    def _input_claim_action(
        self, name: str, params: dict[str, Any], eligible: Any, accept: bool, doc: str
    ) -> Action:
        o = Param("o")
        g = owner_fence[o]
        k = self.bounds.max_claims_per_row

        def selectable(i: Expr) -> Expr:
            return all_of(eligible(i), any_of(input_claim[i].eq(0), input_claim_gen[i].ne(g)))

        head = first_where(self.s.input, selectable, -1)

        def selected(i: Expr) -> Expr:
            return all_of(selectable(i), self.within_limit(i, head))

        def with_head(body: Any) -> Expr:
            return let("h", head, body)

        stamp_names = [
            "input_claim",
            "input_claim_gen",
            "input_fencing",
            "owner_iclaim",
            "owner_iclaim_rows",
        ]
        if accept:
            stamp_names.append("input_state")

        def update_for(name: str) -> Expr:
            return with_head(
                lambda h: self._stamp_inputs(
                    o, selected, self.claim_code(h, input_fencing), g, accept
                )[name]
            )

        updates = {n: update_for(n) for n in stamp_names}
        return Action(
            name,
            {"o": self.s.owner, **params, **self.limit_params()},
            all_of(
                self.alive(o),
                owner_fence[o].ne(0),
                any_of(
                    forall("qi", self.s.input, lambda i: input_fencing[i] < k),
                    ~self.valid_fence(o),
                    forall("qi", self.s.input, lambda i: selected(i).implies(input_fencing[i] < k)),
                ),
            ),
            [
                Case(~self.valid_fence(o), {}, Outcome("SessionExecutionLeaseExpired")),
                Case(
                    exists("qi", self.s.input, selected),
                    updates,
                    Outcome(
                        "Claimed",
                        {
                            "claim": with_head(lambda h: self.claim_code(h, input_fencing)),
                            "rows": set_of("qi", self.s.input, selected),
                        },
                    ),
                ),
                Case(TRUE, {}, Outcome("NoClaim")),
            ],
            doc=doc,
        )

    def claim_next_inputs(self) -> Action:
        return self._input_claim_action(
            "claim_next_inputs",
            {},
            lambda i: input_state[i].eq("deferred_next_turn"),
            False,
            "claim_next_turn_inputs: every claimable deferred_next_turn row (the first under "
            "limit one), state unchanged",
        )

    def claim_active_inputs(self) -> Action:
        checkpoint = Param("checkpoint")
        return self._input_claim_action(
            "claim_active_inputs",
            {"checkpoint": CHECKPOINT},
            lambda i: all_of(
                input_state[i].eq("pending_active"),
                ~input_rewritten[i],
                self.input_admits(i, checkpoint),
            ),
            True,
            "claim_active_turn_inputs for turn-0 at a checkpoint: matching rows (the first under "
            "limit one) become accepted",
        )

    def abandon_inputs(self) -> Action:
        o = Param("o")
        code = owner_iclaim[o]

        def stamped(i: Expr) -> Expr:
            return all_of(self.input_exists(i), input_claim[i].eq(code))

        return Action(
            "abandon_inputs",
            {"o": self.s.owner},
            all_of(self.alive(o), code.ne(0)),
            [
                Case(
                    TRUE,
                    {
                        "input_state": map_of(
                            "qi",
                            self.s.input,
                            lambda i: ite(
                                all_of(stamped(i), input_state[i].eq("accepted")),
                                "pending_active",
                                input_state[i],
                            ),
                        ),
                        "input_claim": map_of(
                            "qi", self.s.input, lambda i: ite(stamped(i), 0, input_claim[i])
                        ),
                        "input_claim_gen": map_of(
                            "qi", self.s.input, lambda i: ite(stamped(i), 0, input_claim_gen[i])
                        ),
                        "owner_iclaim": owner_iclaim.set(o, 0),
                        "owner_iclaim_rows": owner_iclaim_rows.set(
                            o, map_of("qi", self.s.input, lambda _: FALSE)
                        ),
                    },
                    Outcome("Ok"),
                )
            ],
            doc="abandon_turn_input_claim: accepted rows return to pending_active",
        )

    def cancel_row_tag(self, i: Expr) -> Expr:
        """§4.6 cancel_row outcome tag of slot ``i`` (the row exists)."""
        return ite(
            input_state[i].eq("cancelled"),
            "AlreadyCancelled",
            ite(
                input_state[i].eq("completed"),
                "AlreadyCompleted",
                ite(
                    any_of(input_state[i].eq("accepted"), self.input_live_claimed(i)),
                    "AlreadyClaimed",
                    "Cancelled",
                ),
            ),
        )

    def cancellable(self, i: Expr) -> Expr:
        return all_of(
            any_of(input_state[i].eq("pending_active"), input_state[i].eq("deferred_next_turn")),
            ~self.input_live_claimed(i),
        )

    def _cancel_updates(self, targeted: Any) -> dict[str, Expr]:
        def hit(i: Expr) -> Expr:
            return all_of(targeted(i), self.cancellable(i))

        return {
            "input_state": map_of(
                "qi", self.s.input, lambda i: ite(hit(i), "cancelled", input_state[i])
            ),
            "input_claim": map_of("qi", self.s.input, lambda i: ite(hit(i), 0, input_claim[i])),
            "input_claim_gen": map_of(
                "qi", self.s.input, lambda i: ite(hit(i), 0, input_claim_gen[i])
            ),
        }

    def cancel_input(self) -> Action:
        i = Param("i")
        return Action(
            "cancel_input",
            {"i": self.s.input},
            input_state[i].ne("absent"),
            [
                Case(input_state[i].eq("vacuumed"), {}, Outcome("NotFound")),
                Case(input_state[i].eq("cancelled"), {}, Outcome("AlreadyCancelled")),
                Case(input_state[i].eq("completed"), {}, Outcome("AlreadyCompleted")),
                Case(input_state[i].eq("accepted"), {}, self.already_claimed(i)),
                Case(self.input_live_claimed(i), {}, self.already_claimed(i)),
                Case(TRUE, self._cancel_updates(lambda j: j.eq(i)), Outcome("Cancelled")),
            ],
            doc="cancel_pending_turn_input: typed outcome per row state; AlreadyClaimed "
            "carries the claim's diagnostics, of which the trace keeps the pinned lease "
            "generation (every row it answers holds a claim: accepted rows always do)",
        )

    @staticmethod
    def already_claimed(i: Expr) -> Outcome:
        """AlreadyClaimed with its diagnostics' claim_session_lease_generation (lash
        pending_turn_input_claim_diagnostics_from_row: present while a claim token is)."""
        return Outcome("AlreadyClaimed", {"claim_gen": input_claim_gen[i]})

    def cancel_inputs(self) -> Action:
        i = Param("i")
        j = Param("j")

        def tag(k: Expr) -> Expr:
            return ite(input_state[k].eq("vacuumed"), "NotFound", self.cancel_row_tag(k))

        # the targets are cancelled in order in one transaction: a row listed twice answers
        # AlreadyCancelled the second time if the first cancelled it
        second = ite(
            i.eq(j),
            ite(tag(i).eq("Cancelled"), "AlreadyCancelled", tag(i)),
            tag(j),
        )
        return Action(
            "cancel_inputs",
            {"i": self.s.input, "j": self.s.input},
            all_of(
                self.switch("multi_cancel"),
                input_state[i].ne("absent"),
                input_state[j].ne("absent"),
            ),
            [
                Case(
                    TRUE,
                    self._cancel_updates(lambda k: any_of(k.eq(i), k.eq(j))),
                    Outcome(
                        "CancelOutcomes",
                        {
                            "outcomes": list_of(
                                "qk",
                                IntSort(0, 1),
                                lambda _: TRUE,
                                lambda k: ite(k.eq(0), tag(i), second),
                            )
                        },
                    ),
                )
            ],
            doc="cancel_pending_turn_inputs with the targets [i, j] (in that order, possibly "
            "the same row twice): one outcome per target, atomically",
        )

    def cancel_suffix(self) -> Action:
        i = Param("i")

        def in_suffix(j: Expr) -> Expr:
            return all_of(i <= j, self.input_exists(j))

        return Action(
            "cancel_suffix",
            {"i": self.s.input},
            input_state[i].ne("absent"),
            [
                Case(input_state[i].eq("vacuumed"), {}, Outcome("AnchorNotFound")),
                Case(
                    TRUE,
                    self._cancel_updates(in_suffix),
                    Outcome(
                        "SuffixOutcomes",
                        {"outcomes": list_of("qj", self.s.input, in_suffix, self.cancel_row_tag)},
                    ),
                ),
            ],
            doc="cancel_pending_turn_input_suffix: the anchor and every later row, atomically",
        )

    def vacuum(self) -> Action:
        def tomb(i: Expr) -> Expr:
            return any_of(input_state[i].eq("cancelled"), input_state[i].eq("completed"))

        return Action(
            "vacuum",
            {},
            TRUE,
            [
                Case(
                    TRUE,
                    {
                        "input_state": map_of(
                            "qi", self.s.input, lambda i: ite(tomb(i), "vacuumed", input_state[i])
                        )
                    },
                    Outcome("Vacuumed", {"removed": count("qi", self.s.input, tomb)}),
                )
            ],
            doc="vacuum: deletes cancelled and completed pending-input rows",
        )

    # -- commit --------------------------------------------------------------------------------

    def queue_completion_ok(self, o: Expr) -> Expr:
        """§5.3 step 5: rows stamped with the claim == rows the claim named."""
        code = owner_qclaim[o]
        return any_of(
            code.eq(0),
            forall(
                "qb",
                self.s.batch,
                lambda b: owner_qclaim_rows[o][b].eq(
                    all_of(batch_status[b].eq("queued"), batch_claim[b].eq(code))
                ),
            ),
        )

    def input_completion_ok(self, o: Expr) -> Expr:
        """§5.3 step 6, same rule for the input claim."""
        code = owner_iclaim[o]
        return any_of(
            code.eq(0),
            forall(
                "qi",
                self.s.input,
                lambda i: owner_iclaim_rows[o][i].eq(
                    all_of(self.input_exists(i), input_claim[i].eq(code))
                ),
            ),
        )

    def stale_completion_matches(self, o: Expr) -> Expr:
        """§5.3 step 5 for a completion with a stale token: no row carries that token, so the
        check holds only if the claim named no row."""
        return forall("qb", self.s.batch, lambda b: ~owner_qclaim_rows[o][b])

    def _commit_effects(
        self, o: Expr, release: Expr, defer: Expr, delete_rows: bool
    ) -> dict[str, Expr]:
        qcode = owner_qclaim[o]
        icode = owner_iclaim[o]

        def q_done(b: Expr) -> Expr:
            return all_of(qcode.ne(0), owner_qclaim_rows[o][b])

        def q_deleted(b: Expr) -> Expr:
            # the rows stamped with the completion's claim id and token
            if not delete_rows:
                return FALSE
            return all_of(q_done(b), batch_status[b].eq("queued"), batch_claim[b].eq(qcode))

        def i_done(i: Expr) -> Expr:
            return all_of(icode.ne(0), owner_iclaim_rows[o][i])

        def i_completed(i: Expr) -> Expr:
            return all_of(i_done(i), self.input_exists(i), input_claim[i].eq(icode))

        def deferred(i: Expr) -> Expr:
            return all_of(
                defer,
                ~i_completed(i),
                input_state[i].eq("pending_active"),
                self.ingress[i].eq("active_turn"),
            )

        no_rows_b = map_of("qb", self.s.batch, lambda _: FALSE)
        no_rows_i = map_of("qi", self.s.input, lambda _: FALSE)
        return {
            **self.row_completion_updates(q_deleted, i_completed, deferred),
            "lease_holder": ite(release, -1, lease_holder),
            "lease_holder_inc": ite(release, -1, lease_holder_inc),
            "lease_live": ite(release, FALSE, lease_live),
            "lease_ttl_left": ite(release, 0, lease_ttl_left),
            "owner_fence": owner_fence.set(o, ite(release, 0, owner_fence[o])),
            "owner_qclaim": owner_qclaim.set(o, 0),
            "owner_qclaim_rows": owner_qclaim_rows.set(o, no_rows_b),
            "owner_iclaim": owner_iclaim.set(o, 0),
            "owner_iclaim_rows": owner_iclaim_rows.set(o, no_rows_i),
            "head_revision": head_revision + 1,
        }

    def row_completion_updates(
        self,
        q_deleted: Callable[[Expr], Expr],
        i_completed: Callable[[Expr], Expr],
        deferred: Callable[[Expr], Expr],
    ) -> dict[str, Expr]:
        """§5.3 steps 10-12 on the rows alone: delete the completed batches, complete the
        completed inputs, defer the deferred ones (no lease, owner memory or head update)."""
        return {
            "batch_status": map_of(
                "qb", self.s.batch, lambda b: ite(q_deleted(b), "deleted", batch_status[b])
            ),
            "batch_claim": map_of(
                "qb", self.s.batch, lambda b: ite(q_deleted(b), 0, batch_claim[b])
            ),
            "batch_claim_gen": map_of(
                "qb", self.s.batch, lambda b: ite(q_deleted(b), 0, batch_claim_gen[b])
            ),
            "input_state": map_of(
                "qi",
                self.s.input,
                lambda i: ite(
                    i_completed(i),
                    "completed",
                    ite(deferred(i), "deferred_next_turn", input_state[i]),
                ),
            ),
            "input_rewritten": map_of(
                "qi", self.s.input, lambda i: ite(deferred(i), TRUE, input_rewritten[i])
            ),
            "input_claim": map_of(
                "qi",
                self.s.input,
                lambda i: ite(any_of(i_completed(i), deferred(i)), 0, input_claim[i]),
            ),
            "input_claim_gen": map_of(
                "qi",
                self.s.input,
                lambda i: ite(any_of(i_completed(i), deferred(i)), 0, input_claim_gen[i]),
            ),
        }

    def stamp_batch_rows(self, selected: Any, code: Expr, g: Expr) -> dict[str, Expr]:
        """The row updates of a queue claim (no owner memory): stamp ``code`` and ``g`` on the
        selected rows and bump their claim fencing token."""
        return {
            name: update
            for name, update in self._stamp_batches(Param("o"), selected, code, g).items()
            if name.startswith("batch_")
        }

    def stamp_input_rows(self, selected: Any, code: Expr, g: Expr, accept: bool) -> dict[str, Expr]:
        """The row updates of an input claim (no owner memory); ``accept`` makes the selected
        rows accepted (active-turn claims)."""
        return {
            name: update
            for name, update in self._stamp_inputs(Param("o"), selected, code, g, accept).items()
            if name.startswith("input_")
        }

    def commit(self) -> Action:
        o = Param("o")
        release = Param("release")
        defer = Param("defer")
        applies = all_of(
            self.valid_fence(o), self.queue_completion_ok(o), self.input_completion_ok(o)
        )
        return Action(
            "commit",
            {"o": self.s.owner, "release": BoolSort(), "defer": BoolSort()},
            all_of(
                self.alive(o),
                owner_fence[o].ne(0),
                any_of(head_revision < self.bounds.max_head_revision, ~applies),
            ),
            [
                Case(~self.valid_fence(o), {}, Outcome("SessionExecutionLeaseExpired")),
                Case(~self.queue_completion_ok(o), {}, Outcome("QueuedWorkClaimSuperseded")),
                Case(~self.input_completion_ok(o), {}, Outcome("TurnInputClaimSuperseded")),
                Case(
                    TRUE,
                    self._commit_effects(o, release, defer, delete_rows=True),
                    Outcome("Committed", {"head_revision": head_revision + 1}),
                ),
            ],
            doc="commit_runtime_state completing the owner's claims; optional release/deferral",
        )

    def commit_stale(self) -> Action:
        o = Param("o")
        # The queue completion carries a token no row has: the stamped set is empty while the
        # claim named at least one row, so the ownership check (case 2) always rejects it. The
        # success case records what a commit would do if that check were skipped.
        stale_matches = self.stale_completion_matches(o)
        applies = all_of(self.valid_fence(o), stale_matches, self.input_completion_ok(o))
        return Action(
            "commit_stale",
            {"o": self.s.owner},
            all_of(
                self.alive(o),
                owner_fence[o].ne(0),
                owner_qclaim[o].ne(0),
                any_of(head_revision < self.bounds.max_head_revision, ~applies),
            ),
            [
                Case(~self.valid_fence(o), {}, Outcome("SessionExecutionLeaseExpired")),
                Case(~stale_matches, {}, Outcome("QueuedWorkClaimSuperseded")),
                Case(~self.input_completion_ok(o), {}, Outcome("TurnInputClaimSuperseded")),
                Case(
                    TRUE,
                    self._commit_effects(o, FALSE, FALSE, delete_rows=False),
                    Outcome("Committed", {"head_revision": head_revision + 1}),
                ),
            ],
            doc="commit whose queue completion token has ':stale' appended",
        )

    def commit_outbox(self) -> Action:
        o = Param("o")
        b = Param("b")
        applies = all_of(
            self.valid_fence(o), self.queue_completion_ok(o), self.input_completion_ok(o)
        )
        earlier_enqueued = forall(
            "qc", self.s.batch, lambda c: (c < b).implies(batch_status[c].ne("absent"))
        )
        held = all_of(owner_qclaim[o].ne(0), owner_qclaim_rows[o][b])
        effects = self._commit_effects(o, FALSE, FALSE, delete_rows=True)
        qcode = owner_qclaim[o]

        def completed(c: Expr) -> Expr:  # as _commit_effects: the rows of o's queue claim
            return all_of(
                qcode.ne(0),
                owner_qclaim_rows[o][c],
                batch_status[c].eq("queued"),
                batch_claim[c].eq(qcode),
            )

        # the outbox row is not one the claim completes (the guard excludes a held slot)
        effects["batch_status"] = map_of(
            "qb",
            self.s.batch,
            lambda c: ite(
                all_of(c.eq(b), batch_status[c].eq("absent")),
                "queued",
                ite(completed(c), "deleted", batch_status[c]),
            ),
        )
        return Action(
            "commit_outbox",
            {"o": self.s.owner, "b": self.s.batch},
            all_of(
                self.alive(o),
                owner_fence[o].ne(0),
                any_of(
                    all_of(batch_status[b].eq("absent"), earlier_enqueued),
                    batch_status[b].eq("queued"),
                ),
                ~held,
                any_of(head_revision < self.bounds.max_head_revision, ~applies),
            ),
            [
                Case(~self.valid_fence(o), {}, Outcome("SessionExecutionLeaseExpired")),
                Case(~self.queue_completion_ok(o), {}, Outcome("QueuedWorkClaimSuperseded")),
                Case(~self.input_completion_ok(o), {}, Outcome("TurnInputClaimSuperseded")),
                Case(TRUE, effects, Outcome("Committed", {"head_revision": head_revision + 1})),
            ],
            doc="commit (no release, no deferral) completing the owner's claims whose outbox "
            "enqueues slot b's draft in the same transaction (source-key idempotent: a queued "
            "row stays the one row); nothing is enqueued when the commit fails",
        )

    def outbox_actions(self) -> list[Action]:
        return [self.bind_head_to_session0(self.commit_outbox())] if self.bounds.outbox else []

    def commit_cas(self) -> Action:
        o = Param("o")
        expected = Param("expected")
        applies = all_of(
            self.valid_fence(o),
            expected.eq(head_revision),
            self.queue_completion_ok(o),
            self.input_completion_ok(o),
        )
        return Action(
            "commit_cas",
            {"o": self.s.owner, "expected": self.s.head},
            all_of(
                self.switch("head_cas"),
                self.alive(o),
                owner_fence[o].ne(0),
                any_of(head_revision < self.bounds.max_head_revision, ~applies),
            ),
            [
                Case(~self.valid_fence(o), {}, Outcome("SessionExecutionLeaseExpired")),
                Case(expected.ne(head_revision), {}, Outcome("HeadRevisionConflict")),
                Case(~self.queue_completion_ok(o), {}, Outcome("QueuedWorkClaimSuperseded")),
                Case(~self.input_completion_ok(o), {}, Outcome("TurnInputClaimSuperseded")),
                Case(
                    TRUE,
                    self._commit_effects(o, FALSE, FALSE, delete_rows=True),
                    Outcome("Committed", {"head_revision": head_revision + 1}),
                ),
            ],
            doc="commit as `commit` (no release, no deferral) with expected_head_revision set: "
            "the head CAS is checked after the fence, before the completions",
        )

    def commit_turn(self) -> Action:
        o = Param("o")
        t = Param("turn")
        content = Param("content")
        release = Param("release")
        recorded = turn_result[t].ne(0)
        matches = self.row_names_fence(o)
        released = all_of(release, matches)
        replay_release = {
            "lease_holder": ite(released, -1, lease_holder),
            "lease_holder_inc": ite(released, -1, lease_holder_inc),
            "lease_live": ite(released, FALSE, lease_live),
            "lease_ttl_left": ite(released, 0, lease_ttl_left),
            "owner_fence": owner_fence.set(o, ite(release, 0, owner_fence[o])),
        }
        apply = {
            "lease_holder": ite(release, -1, lease_holder),
            "lease_holder_inc": ite(release, -1, lease_holder_inc),
            "lease_live": ite(release, FALSE, lease_live),
            "lease_ttl_left": ite(release, 0, lease_ttl_left),
            "owner_fence": owner_fence.set(o, ite(release, 0, owner_fence[o])),
            "head_revision": head_revision + 1,
            "turn_result": turn_result.set(t, head_revision + 1),
            "turn_content": turn_content.set(t, content),
        }
        return Action(
            "commit_turn",
            {"o": self.s.owner, "turn": self.s.turn, "content": CONTENTS, "release": BoolSort()},
            all_of(
                self.switch("turns"),
                self.alive(o),
                owner_fence[o].ne(0),
                any_of(
                    head_revision < self.bounds.max_head_revision,
                    recorded,
                    ~self.valid_fence(o),
                ),
            ),
            [
                Case(
                    all_of(recorded, turn_content[t].ne(content)),
                    {},
                    Outcome("RuntimeTurnCommitConflict"),
                ),
                Case(
                    recorded,
                    replay_release,
                    Outcome("Committed", {"head_revision": turn_result[t]}),
                ),
                Case(~self.valid_fence(o), {}, Outcome("SessionExecutionLeaseExpired")),
                Case(TRUE, apply, Outcome("Committed", {"head_revision": head_revision + 1})),
            ],
            doc="commit_runtime_state stamped with turn-{turn} whose content (the checkpoint) is "
            "`content`, completing no claims: the stamp is checked first (same content -> the "
            "recorded result, only the release applies; other content -> conflict)",
        )

    # -- tokens the store never handed out -----------------------------------------------------

    def renew_stale(self) -> Action:
        o = Param("o")
        return Action(
            "renew_stale",
            {"o": self.s.owner},
            all_of(self.alive(o), owner_fence[o].ne(0)),
            [Case(TRUE, {}, Outcome("SessionExecutionLeaseExpired"))],
            doc="renew_session_execution_lease with o's fence whose lease token has ':stale' "
            "appended: the token matches no lease, so the renewal is refused whatever the row "
            "holds (same holder, incarnation and generation) and o keeps its fence",
        )

    def release_stale(self) -> Action:
        o = Param("o")
        return Action(
            "release_stale",
            {"o": self.s.owner},
            all_of(self.alive(o), owner_fence[o].ne(0)),
            [Case(TRUE, {}, Outcome("Ok"))],
            doc="release_session_execution_lease with o's completion whose lease token has "
            "':stale' appended: the release is a CAS on holder, incarnation, token and "
            "generation, so a token the store never handed out leaves the row held (a silent "
            "no-op) and o keeps its fence",
        )

    # -- forged and malformed requests (bound bad_requests) -----------------------------------

    def head_not_foreign(self) -> Expr:
        """The head is not bound to session-1 (which would refuse a session-0 commit first)."""
        return head_session.ne(1) if self.bounds.second_session else TRUE

    @staticmethod
    def one_of(request: Expr, names: tuple[str, ...]) -> Expr:
        return any_of(*(request.eq(name) for name in names))

    def forged_fence(self) -> Action:
        o, request = Param("o"), Param("request")
        return Action(
            "forged_fence",
            {"o": self.s.owner, "request": FORGERY},
            all_of(self.alive(o), self.valid_fence(o), self.one_of(request, LEASE_FORGERIES)),
            [Case(TRUE, {}, Outcome("SessionExecutionLeaseExpired"))],
            doc="claim_leading_ready_session_command with o's valid fence forged as `request` "
            "says: the fence must be the live lease exactly (session id, holder, token, "
            "generation), so it is refused and nothing changes",
        )

    def forged_release(self) -> Action:
        o, request = Param("o"), Param("request")
        return Action(
            "forged_release",
            {"o": self.s.owner, "request": FORGERY},
            all_of(
                self.alive(o),
                owner_fence[o].ne(0),
                self.row_names_fence(o),
                self.one_of(request, LEASE_FORGERIES),
            ),
            [Case(TRUE, {}, Outcome("Ok"))],
            doc="release_session_execution_lease with o's completion forged as `request` says, "
            "while the row still holds o's lease: the release is a CAS on the whole "
            "completion, so the row stays held (a silent no-op) and o keeps its fence",
        )

    def forged_reclaim(self) -> Action:
        o, request = Param("o"), Param("request")
        return Action(
            "forged_reclaim",
            {"o": self.s.owner, "request": FORGERY},
            all_of(
                self.alive(o),
                lease_live,
                self.holder_dead(),
                self.one_of(request, LEASE_FORGERIES),
            ),
            [Case(TRUE, {}, Outcome("Busy", {"holder": lease_holder, "gen": lease_gen}))],
            doc="reclaim_session_execution_lease by o observing the live row's dead holder, the "
            "observation forged as `request` says: only the observation the store handed out "
            "allows a takeover of a live lease, so the answer is Busy and nothing changes",
        )

    def forged_abandon_work(self) -> Action:
        o, request = Param("o"), Param("request")
        code = owner_qclaim[o]
        stamped = exists(
            "qb",
            self.s.batch,
            lambda b: all_of(batch_status[b].eq("queued"), batch_claim[b].eq(code)),
        )
        return Action(
            "forged_abandon_work",
            {"o": self.s.owner, "request": FORGERY},
            all_of(self.alive(o), code.ne(0), stamped, self.one_of(request, CLAIM_FORGERIES)),
            [Case(TRUE, {}, Outcome("Ok"))],
            doc="abandon_queued_work_claim with o's queue claim forged as `request` says, while "
            "rows carry it: only the claim id and token together release a row, so nothing "
            "changes and o keeps its claim",
        )

    def forged_abandon_inputs(self) -> Action:
        o, request = Param("o"), Param("request")
        code = owner_iclaim[o]
        stamped = exists(
            "qi", self.s.input, lambda i: all_of(self.input_exists(i), input_claim[i].eq(code))
        )
        return Action(
            "forged_abandon_inputs",
            {"o": self.s.owner, "request": FORGERY},
            all_of(self.alive(o), code.ne(0), stamped, self.one_of(request, CLAIM_FORGERIES)),
            [Case(TRUE, {}, Outcome("Ok"))],
            doc="abandon_turn_input_claim with o's input claim forged as `request` says, while "
            "rows carry it: nothing changes and o keeps its claim",
        )

    def forged_commit_action(self, lane: str) -> Action:
        """``forged_work_commit`` / ``forged_input_commit``: a commit whose one completion (of
        that lane; the other lane is not completed) is forged; everything else would apply."""
        o, request = Param("o"), Param("request")
        if lane == "work":
            code, ok, error = (
                owner_qclaim[o],
                self.queue_completion_ok(o),
                "QueuedWorkClaimSuperseded",
            )
            rows = count("qb", self.s.batch, lambda b: owner_qclaim_rows[o][b])
        else:
            code, ok, error = (
                owner_iclaim[o],
                self.input_completion_ok(o),
                "TurnInputClaimSuperseded",
            )
            rows = count("qi", self.s.input, lambda i: owner_iclaim_rows[o][i])
        return Action(
            f"forged_{lane}_commit",
            {"o": self.s.owner, "request": FORGERY},
            all_of(
                self.alive(o),
                self.valid_fence(o),
                self.head_not_foreign(),
                code.ne(0),
                ok,
                self.one_of(request, COMPLETION_FORGERIES),
                request.eq("listed_partly").implies(rows >= 2),
            ),
            [Case(TRUE, {}, Outcome(error))],
            doc=f"commit_runtime_state with o's valid fence completing only o's {lane} claim, "
            "whose completion is forged as `request` says: a completion must name exactly the "
            "rows stamped with its claim id and token, once each, so the commit is refused and "
            "nothing changes",
        )

    def bad_request(self) -> Action:
        o, request = Param("o"), Param("request")
        g = owner_fence[o]
        has_fence = g.ne(0)
        stale_fence = all_of(has_fence, ~self.valid_fence(o))
        after_work = Const("after_work")
        active_input = exists(
            "qi",
            self.s.input,
            lambda i: all_of(
                input_state[i].eq("pending_active"),
                ~input_rewritten[i],
                self.input_admits(i, after_work),
                any_of(input_claim[i].eq(0), input_claim_gen[i].ne(g)),
            ),
        )
        queue_at_checkpoint = let(
            "h",
            self.queue_head(g),
            lambda h: exists(
                "qb", self.s.batch, lambda b: self.turn_work_selected_at(b, h, g, FALSE)
            ),
        )
        other_turn = ("active_turn_before", "active_turn_after")
        # a by-ids claim listing slot b2 (a join batch) twice, while b2 is claimable
        join_slot_ready = self.batch_claimable(Const(2), g) if self.bounds.batches >= 3 else FALSE
        zero = ("work_limit_zero", "next_limit_zero", "active_limit_zero")
        invalid_with_fence = (
            "work_limit_negative",
            "next_limit_negative",
            "active_limit_negative",
            "checkpoint_limit_negative",
            "ttl_negative",
            "blank_session",
            "unknown_boundary",
            "unknown_checkpoint",
            "outbox_no_payloads",
        )
        drafts = ("draft_no_payloads", "draft_mixed_payloads", "draft_available_negative")
        outbox = ("outbox_session_before", "outbox_session_after")
        stamp = ("stamp_session_before", "stamp_session_after")
        commit_ready = all_of(has_fence, self.head_not_foreign())
        return Action(
            "bad_request",
            {"o": self.s.owner, "request": BAD_REQUEST},
            all_of(
                self.alive(o),
                any_of(
                    all_of(self.one_of(request, zero), stale_fence),
                    all_of(request.eq("checkpoint_limits_zero"), stale_fence, active_input),
                    all_of(request.eq("checkpoint_inputs_one"), stale_fence, active_input),
                    all_of(request.eq("checkpoint_batches_one"), stale_fence, queue_at_checkpoint),
                    all_of(self.one_of(request, other_turn), self.valid_fence(o), active_input),
                    all_of(request.eq("by_ids_listed_twice"), self.valid_fence(o), join_slot_ready),
                    all_of(self.one_of(request, invalid_with_fence), has_fence),
                    self.one_of(request, drafts),
                    all_of(self.one_of(request, outbox + stamp), commit_ready),
                ),
            ),
            [
                Case(
                    self.one_of(
                        request,
                        (*zero, "checkpoint_limits_zero", *other_turn, "by_ids_listed_twice"),
                    ),
                    {},
                    Outcome("NoClaim"),
                ),
                Case(
                    self.one_of(request, ("checkpoint_inputs_one", "checkpoint_batches_one")),
                    {},
                    Outcome("SessionExecutionLeaseExpired"),
                ),
                Case(self.one_of(request, outbox), {}, Outcome("SessionBindingMismatch")),
                Case(self.one_of(request, stamp), {}, Outcome("RuntimeTurnCommitConflict")),
                Case(TRUE, {}, Outcome("InvalidRequest")),
            ],
            doc="a malformed call by o (docs/trace-format.md §3 lists each `request`): a zero "
            "limit answers NoClaim before the fence is checked (asked with a stale fence; at a "
            "checkpoint with both limits zero while an active input is selectable), while a "
            "checkpoint claim with a limit of one for a lane with selectable rows checks the "
            "stale fence; an active-input claim for another turn id and a by-ids claim listing a "
            "row twice claim nothing, a negative "
            "limit or TTL, a blank session id, an unknown boundary or checkpoint and a draft "
            "with no payloads, mixed payload classes or a negative available_at are "
            "InvalidRequest, a commit whose outbox draft names another session is "
            "SessionBindingMismatch and one whose turn stamp does is RuntimeTurnCommitConflict; "
            "nothing changes",
        )

    def commit_unmatched(self) -> Action:
        o, request = Param("o"), Param("request")
        return Action(
            "commit_unmatched",
            {"o": self.s.owner, "request": UNMATCHED_COMMIT},
            all_of(
                self.alive(o),
                self.valid_fence(o),
                head_revision < self.bounds.max_head_revision,
                # a deferral of another turn is asked while turn-0 has an active input to defer
                any_of(
                    self.one_of(
                        request,
                        tuple(v for v in UNMATCHED_COMMIT.members if v.startswith("release_")),
                    ),
                    exists(
                        "qi",
                        self.s.input,
                        lambda i: all_of(
                            input_state[i].eq("pending_active"),
                            self.ingress[i].eq("active_turn"),
                        ),
                    ),
                ),
            ),
            [
                Case(
                    TRUE,
                    {"head_revision": head_revision + 1},
                    Outcome("Committed", {"head_revision": head_revision + 1}),
                )
            ],
            doc="commit_runtime_state with o's valid fence completing nothing, releasing o's "
            "lease completion forged as `request` says (release_*) or deferring the active "
            "inputs of another turn id (defer_*): the commit applies, but the release matches "
            "no lease (o's lease stays held) and the deferral no input",
        )

    def bad_request_actions(self) -> list[Action]:
        if not self.bounds.bad_requests:
            return []
        return [
            self.forged_fence(),
            self.forged_release(),
            self.forged_reclaim(),
            self.forged_abandon_work(),
            self.forged_abandon_inputs(),
            self.forged_commit_action("work"),
            self.forged_commit_action("input"),
            self.bad_request(),
            self.bind_head_to_session0(self.commit_unmatched()),
        ]

    # -- session-1 (bound second_session) -----------------------------------------------------

    @staticmethod
    def s1_valid_fence(o: Expr) -> Expr:
        """validate_fence for owner ``o``'s session-1 fence."""
        return all_of(
            owner_s1_fence[o].ne(0),
            s1_lease_ttl_left > 0,
            s1_lease_holder.eq(o),
            s1_lease_holder_inc.eq(owner_inc[o]),
            s1_lease_gen.eq(owner_s1_fence[o]),
        )

    def s1_acquire(self) -> Action:
        o = Param("o")
        live = s1_lease_ttl_left > 0
        full = Const(self.bounds.ttl_steps)
        return Action(
            "s1_acquire",
            {"o": self.s.owner},
            all_of(self.alive(o), any_of(s1_lease_gen < self.bounds.max_generation, live)),
            [
                Case(
                    all_of(live, s1_lease_holder.eq(o), s1_lease_holder_inc.eq(owner_inc[o])),
                    {
                        "owner_s1_fence": owner_s1_fence.set(o, s1_lease_gen),
                        "s1_lease_ttl_left": full,
                    },
                    Outcome("Acquired", {"gen": s1_lease_gen}),
                ),
                Case(live, {}, Outcome("Busy", {"holder": s1_lease_holder, "gen": s1_lease_gen})),
                Case(
                    TRUE,
                    {
                        "s1_lease_holder": o,
                        "s1_lease_holder_inc": owner_inc[o],
                        "s1_lease_gen": s1_lease_gen + 1,
                        "s1_lease_ttl_left": full,
                        "owner_s1_fence": owner_s1_fence.set(o, s1_lease_gen + 1),
                    },
                    Outcome("Acquired", {"gen": s1_lease_gen + 1}),
                ),
            ],
            doc="try_claim_session_execution_lease on session-1: its own row, whatever "
            "session-0's lease is",
        )

    def s1_enqueue(self) -> Action:
        return Action(
            "s1_enqueue",
            {},
            s1_batch_status.eq("absent"),
            [Case(TRUE, {"s1_batch_status": Const("queued")}, Outcome("Enqueued"))],
            doc="enqueue_queued_work of session-1's draft (a ProcessWake) under source key "
            "batch:b0, session-0 slot b0's key: source keys are deduplicated per session, so "
            "either session's row leaves the other's enqueue a new row",
        )

    def s1_claim(self) -> Action:
        o = Param("o")
        g = owner_s1_fence[o]
        claimable = all_of(
            s1_batch_status.eq("queued"),
            any_of(s1_batch_claim_gen.eq(0), s1_batch_claim_gen.ne(g)),
        )
        return Action(
            "s1_claim",
            {"o": self.s.owner},
            all_of(
                self.alive(o),
                owner_s1_fence[o].ne(0),
                any_of(
                    ~self.s1_valid_fence(o),
                    ~claimable,
                    s1_batch_fencing < self.bounds.max_claims_per_row,
                ),
            ),
            [
                Case(~self.s1_valid_fence(o), {}, Outcome("SessionExecutionLeaseExpired")),
                Case(
                    claimable,
                    {
                        "s1_batch_claim_gen": g,
                        "s1_batch_fencing": s1_batch_fencing + 1,
                        "owner_s1_claim": owner_s1_claim.set(o, s1_batch_fencing + 1),
                    },
                    Outcome(
                        "Claimed",
                        {
                            "claim": s1_batch_fencing + 1,
                            "rows": set_of("qb", IntSort(0, 0), lambda _: TRUE),
                        },
                    ),
                ),
                Case(TRUE, {}, Outcome("NoClaim")),
            ],
            doc="claim_ready_queued_work on session-1 at an idle boundary: only session-1's row",
        )

    def s1_commit(self) -> Action:
        o = Param("o")
        release = Param("release")
        held = owner_s1_claim[o].ne(0)
        completion_ok = any_of(
            ~held,
            all_of(
                s1_batch_status.eq("queued"),
                s1_batch_claim_gen.ne(0),
                s1_batch_fencing.eq(owner_s1_claim[o]),
            ),
        )
        applies = all_of(head_session.ne(0), self.s1_valid_fence(o), completion_ok)
        return Action(
            "s1_commit",
            {"o": self.s.owner, "release": BoolSort()},
            all_of(
                self.alive(o),
                owner_s1_fence[o].ne(0),
                any_of(head_revision < self.bounds.max_head_revision, ~applies),
            ),
            [
                Case(head_session.eq(0), {}, Outcome("SessionBindingMismatch")),
                Case(~self.s1_valid_fence(o), {}, Outcome("SessionExecutionLeaseExpired")),
                Case(~completion_ok, {}, Outcome("QueuedWorkClaimSuperseded")),
                Case(
                    TRUE,
                    {
                        "s1_batch_status": ite(held, "deleted", s1_batch_status),
                        "s1_batch_claim_gen": ite(held, 0, s1_batch_claim_gen),
                        "s1_lease_holder": ite(release, -1, s1_lease_holder),
                        "s1_lease_holder_inc": ite(release, -1, s1_lease_holder_inc),
                        "s1_lease_ttl_left": ite(release, 0, s1_lease_ttl_left),
                        "owner_s1_fence": owner_s1_fence.set(o, ite(release, 0, owner_s1_fence[o])),
                        "owner_s1_claim": owner_s1_claim.set(o, 0),
                        "head_revision": head_revision + 1,
                        "head_session": Const(1),
                    },
                    Outcome("Committed", {"head_revision": head_revision + 1}),
                ),
            ],
            doc="commit_runtime_state on session-1 with the owner's session-1 fence, completing "
            "its session-1 claim if it holds one; `release` releases session-1's lease. The "
            "store has one head: a head bound to session-0 refuses it first "
            "(SessionBindingMismatch), and its first success binds the head to session-1",
        )

    def s1_cancel_batch(self) -> Action:
        b = Param("b")
        return Action(
            "s1_cancel_batch",
            {"b": self.s.batch},
            batch_status[b].ne("absent"),
            [Case(TRUE, {}, Outcome("NotCancelled"))],
            doc="cancel_queued_work_batch(session-1, id of session-0's slot b): a batch of "
            "another session is not found, so nothing is cancelled",
        )

    def s1_cancel_input(self) -> Action:
        i = Param("i")
        return Action(
            "s1_cancel_input",
            {"i": self.s.input},
            input_state[i].ne("absent"),
            [Case(TRUE, {}, Outcome("NotFound"))],
            doc="cancel_pending_turn_input(session-1, id of session-0's input slot i): an input "
            "of another session is not found, whatever its state",
        )

    def cancel_s1_batch(self) -> Action:
        return Action(
            "cancel_s1_batch",
            {},
            s1_batch_status.ne("absent"),
            [Case(TRUE, {}, Outcome("NotCancelled"))],
            doc="cancel_queued_work_batch(session-0, id of session-1's batch): a batch of "
            "another session is not found, so nothing is cancelled",
        )

    def reclaim_observing_s1(self) -> Action:
        o = Param("o")
        return Action(
            "reclaim_observing_s1",
            {"o": self.s.owner},
            all_of(
                self.alive(o),
                s1_lease_holder >= 0,
                any_of(lease_gen < self.bounds.max_generation, lease_live),
            ),
            [
                Case(
                    ~lease_live,
                    {**self._fresh_acquisition(o), **self.full_ttl()},
                    Outcome("Acquired", {"gen": lease_gen + 1}),
                ),
                Case(TRUE, {}, Outcome("Busy", {"holder": lease_holder, "gen": lease_gen})),
            ],
            doc="reclaim_session_execution_lease on session-0 naming as observed holder "
            "session-1's lease row (its holder, token and generation): an observation of "
            "another session is never current, so a live lease stays Busy even when its "
            "generation equals the observation's and its holder is dead; a lapsed one is "
            "acquired as by any reclaim",
        )

    # -- session-1's input slot and by-ids claims across sessions (second_session = 2) -------

    def s1_enqueue_input(self) -> Action:
        s1_input = Var(SESSION1_INPUT_STATE)
        return Action(
            "s1_enqueue_input",
            {},
            s1_input.eq("absent"),
            [Case(TRUE, {SESSION1_INPUT_STATE: Const("deferred_next_turn")}, Outcome("Enqueued"))],
            doc="enqueue_pending_turn_input(draft of session-1's next-turn input s1i0, source "
            "key input:i0 as session-0 slot i0): source keys are per session, so a session-0 "
            "row under the key is not this input's, and a new row is enqueued",
        )

    def cancel_s1_input(self) -> Action:
        s1_input = Var(SESSION1_INPUT_STATE)
        return Action(
            "cancel_s1_input",
            {},
            s1_input.ne("absent"),
            [Case(TRUE, {}, Outcome("NotFound"))],
            doc="cancel_pending_turn_input(session-0, id of session-1's input): an input of "
            "another session is not found, so nothing is cancelled",
        )

    def s1_claim_by_ids(self) -> Action:
        o, b = Param("o"), Param("b")
        return Action(
            "s1_claim_by_ids",
            {"o": self.s.owner, "b": self.s.batch},
            all_of(self.alive(o), owner_s1_fence[o].ne(0), batch_status[b].ne("absent")),
            [
                Case(~self.s1_valid_fence(o), {}, Outcome("SessionExecutionLeaseExpired")),
                Case(TRUE, {}, Outcome("NoClaim")),
            ],
            doc="claim_ready_queued_work_by_batch_ids(session-1, session-1 fence of o, idle, "
            "[id of session-0's slot b]): the fence is checked first, then a listed batch of "
            "another session is not claimable, so nothing is claimed",
        )

    def claim_s1_batch_by_ids(self) -> Action:
        o = Param("o")
        return Action(
            "claim_s1_batch_by_ids",
            {"o": self.s.owner},
            all_of(self.alive(o), owner_fence[o].ne(0), s1_batch_status.ne("absent")),
            [
                Case(~self.valid_fence(o), {}, Outcome("SessionExecutionLeaseExpired")),
                Case(TRUE, {}, Outcome("NoClaim")),
            ],
            doc="claim_ready_queued_work_by_batch_ids(session-0, fence of o, idle, [id of "
            "session-1's batch]): the fence is checked first, then a listed batch of another "
            "session is not claimable, so nothing is claimed",
        )

    def session1_input_actions(self) -> list[Action]:
        if self.bounds.second_session < 2:
            return []
        return [
            self.s1_enqueue_input(),
            self.cancel_s1_input(),
            self.s1_claim_by_ids(),
            self.claim_s1_batch_by_ids(),
        ]

    def session1_actions(self) -> list[Action]:
        if not self.bounds.second_session:
            return []
        return [
            self.s1_acquire(),
            self.s1_enqueue(),
            self.s1_claim(),
            self.s1_commit(),
            self.s1_cancel_batch(),
            self.s1_cancel_input(),
            self.cancel_s1_batch(),
            self.reclaim_observing_s1(),
        ]

    def bind_head_to_session0(self, action: Action) -> Action:
        """With a second session, a session-0 commit checks the head's session binding first
        (store.md §5.3 step 1): a head bound to session-1 refuses it, and an applying commit
        binds the head to session-0. Without one the action is unchanged."""
        if not self.bounds.second_session:
            return action
        room = head_revision < self.bounds.max_head_revision
        guard = replace_all(action.guard, room, any_of(room, head_session.eq(1)))
        cases = [Case(head_session.eq(1), {}, Outcome("SessionBindingMismatch"))]
        for case in action.cases:
            updates = dict(case.updates)
            if "head_revision" in updates:
                updates["head_session"] = Const(0)
            cases.append(Case(case.condition, updates, case.outcome))
        return action.replace(guard=guard, cases=cases)

    def actions(self) -> list[Action]:
        return [
            self.acquire(),
            self.reclaim(),
            self.renew(),
            self.release(),
            self.expire(),
            self.advance(),
            self.crash(),
            self.restart(),
            self.enqueue_batch(),
            self.replay_batch(),
            self.claim_command(),
            self.claim_work(),
            self.claim_work_by_ids(),
            self.claim_checkpoint_work(),
            self.abandon_work(),
            self.cancel_batch(),
            self.enqueue_input(),
            self.replay_input(),
            self.conflict_input(),
            self.claim_next_inputs(),
            self.claim_active_inputs(),
            self.abandon_inputs(),
            self.cancel_input(),
            self.cancel_suffix(),
            self.cancel_inputs(),
            self.vacuum(),
            self.bind_head_to_session0(self.commit()),
            self.bind_head_to_session0(self.commit_stale()),
            self.bind_head_to_session0(self.commit_cas()),
            self.bind_head_to_session0(self.commit_turn()),
            self.renew_stale(),
            self.release_stale(),
            *self.session1_actions(),
            *self.session1_input_actions(),
            *self.delayed_actions(),
            *self.outbox_actions(),
            *self.bad_request_actions(),
        ]

    # -- monitors and invariants ---------------------------------------------------------------

    def monitors(self) -> list[Monitor]:
        sb, si = self.s.batch, self.s.input

        def newly_stamped(b: Expr) -> Expr:
            return all_of(Next("batch_claim")[b].ne(0), Next("batch_claim")[b].ne(batch_claim[b]))

        def newly_stamped_input(i: Expr) -> Expr:
            return all_of(Next("input_claim")[i].ne(0), Next("input_claim")[i].ne(input_claim[i]))

        next_gen = Next("lease_gen")
        generation_ok = any_of(
            next_gen.eq(lease_gen),
            all_of(next_gen.eq(lease_gen + 1), any_of(~lease_live, self.holder_dead())),
        )
        takeover_ok = all_of(lease_live, next_gen.ne(lease_gen)).implies(
            all_of(ActionIs("reclaim"), Param("observed").eq(lease_gen))
        )
        o = Param("o")
        release_ok = all_of(lease_holder >= 0, Next("lease_holder").eq(-1)).implies(
            all_of(
                any_of(ActionIs("release"), ActionIs("commit"), ActionIs("commit_turn")),
                lease_holder.eq(o),
                owner_inc[o].eq(lease_holder_inc),
                owner_fence[o].eq(lease_gen),
            )
        )
        self_steal_ok = all_of(
            forall(
                "qb",
                sb,
                lambda b: all_of(newly_stamped(b), batch_claim[b].ne(0)).implies(
                    Next("batch_claim_gen")[b].ne(batch_claim_gen[b])
                ),
            ),
            forall(
                "qi",
                si,
                lambda i: all_of(newly_stamped_input(i), input_claim[i].ne(0)).implies(
                    Next("input_claim_gen")[i].ne(input_claim_gen[i])
                ),
            ),
        )
        command_gate_ok = forall(
            "qb",
            sb,
            lambda b: all_of(
                newly_stamped(b),
                any_of(ActionIs("claim_work"), self.work_class[b].eq("turn_work")),
            ).implies(
                all_of(
                    self.work_class[b].eq("turn_work"),
                    any_of(
                        ActionIs("claim_work_by_ids"),
                        ~exists(
                            "qc",
                            sb,
                            lambda c: all_of(
                                c < b,
                                self.work_class[c].eq("session_command"),
                                self.batch_claimable(c, Next("batch_claim_gen")[b]),
                            ),
                        ),
                    ),
                )
            ),
        )
        one_command_ok = forall(
            "qb",
            sb,
            lambda b: all_of(newly_stamped(b), self.work_class[b].eq("session_command")).implies(
                forall("qc", sb, lambda c: c.ne(b).implies(~newly_stamped(c)))
            ),
        )
        boundary_ok = any_of(
            all_of(
                any_of(ActionIs("claim_work"), ActionIs("claim_work_by_ids")),
                Param("boundary").eq("active_turn_checkpoint"),
            ),
            ActionIs("claim_checkpoint_work"),
        ).implies(
            forall(
                "qb",
                sb,
                lambda b: newly_stamped(b).implies(self.delivery[b].eq("earliest_safe_boundary")),
            )
        )
        live_batch_ok = forall(
            "qb",
            sb,
            lambda b: all_of(
                batch_status[b].eq("queued"),
                self.batch_live_claimed(b),
                Next("batch_status")[b].eq("deleted"),
            ).implies(
                all_of(
                    any_of(ActionIs("commit"), ActionIs("commit_cas"), *self.outbox_is()),
                    owner_qclaim[o].ne(0),
                    owner_qclaim_rows[o][b],
                    batch_claim[b].eq(owner_qclaim[o]),
                )
            ),
        )
        claimed_input_ok = forall(
            "qi",
            si,
            lambda i: any_of(
                input_state[i].eq("accepted"),
                all_of(self.cancellable_states(i), self.input_live_claimed(i)),
            ).implies(Next("input_state")[i].ne("cancelled")),
        )
        allowed = {
            "absent": ("pending_active", "deferred_next_turn"),
            "pending_active": ("accepted", "deferred_next_turn", "cancelled"),
            "deferred_next_turn": ("cancelled", "completed"),
            "accepted": ("pending_active", "completed"),
            "cancelled": ("vacuumed",),
            "completed": ("vacuumed",),
            # with source_replay, the slot's draft enqueues a new row after vacuum
            "vacuumed": ("pending_active", "deferred_next_turn")
            if self.bounds.source_replay
            else (),
        }

        def transition_ok(i: Expr) -> Expr:
            nxt = Next("input_state")[i]
            return any_of(
                nxt.eq(input_state[i]),
                *[
                    all_of(input_state[i].eq(src), any_of(*[nxt.eq(dst) for dst in dsts]))
                    for src, dsts in allowed.items()
                    if dsts
                ],
            )

        inputs_ok = forall("qi", si, transition_ok)
        completes = any_of(
            ActionIs("commit"), ActionIs("commit_stale"), ActionIs("commit_cas"), *self.outbox_is()
        )
        # commit_unmatched (bound bad_requests) completes nothing and releases nothing
        unmatched = [ActionIs("commit_unmatched")] if self.bounds.bad_requests else []
        is_commit = any_of(completes, ActionIs("commit_turn"), *unmatched)
        # session-1's commits move the store's one head too (bound second_session)
        any_commit = (
            any_of(is_commit, ActionIs("s1_commit")) if self.bounds.second_session else is_commit
        )
        head_ok = any_of(
            Next("head_revision").eq(head_revision),
            all_of(Next("head_revision").eq(head_revision + 1), any_commit),
        )
        settled_ok = all_of(completes, Next("head_revision").ne(head_revision)).implies(
            all_of(
                forall(
                    "qb",
                    sb,
                    lambda b: all_of(owner_qclaim[o].ne(0), owner_qclaim_rows[o][b]).implies(
                        all_of(
                            batch_status[b].eq("queued"),
                            batch_claim[b].eq(owner_qclaim[o]),
                            Next("batch_status")[b].eq("deleted"),
                        )
                    ),
                ),
                forall(
                    "qi",
                    si,
                    lambda i: all_of(owner_iclaim[o].ne(0), owner_iclaim_rows[o][i]).implies(
                        all_of(
                            self.input_exists(i),
                            input_claim[i].eq(owner_iclaim[o]),
                            Next("input_state")[i].eq("completed"),
                        )
                    ),
                ),
            )
        )
        fenced_ok = all_of(is_commit, Next("head_revision").ne(head_revision)).implies(
            self.valid_fence(o)
        )
        if self.bounds.second_session:
            fenced_ok = all_of(
                fenced_ok,
                all_of(ActionIs("s1_commit"), Next("head_revision").ne(head_revision)).implies(
                    self.s1_valid_fence(o)
                ),
            )

        extends = any_of(
            ActionIs("renew"),
            ActionIs("acquire"),
            all_of(ActionIs("reclaim"), Next("lease_gen").ne(lease_gen)),
            *(
                [all_of(ActionIs("reclaim_observing_s1"), Next("lease_gen").ne(lease_gen))]
                if self.bounds.second_session
                else []
            ),
        )
        extension_ok = all_of(
            extends,
            Next("lease_live"),
            Next("lease_holder").eq(o),
            Next("lease_holder_inc").eq(owner_inc[o]),
            Next("owner_fence")[o].eq(Next("lease_gen")),
        ).implies(Next("lease_ttl_left").eq(self.bounds.ttl_steps))

        st = self.s.turn
        turn_once_ok = all_of(
            forall(
                "qt",
                st,
                lambda t: (
                    turn_result[t]
                    .ne(0)
                    .implies(
                        all_of(
                            Next("turn_result")[t].eq(turn_result[t]),
                            Next("turn_content")[t].eq(turn_content[t]),
                        )
                    )
                ),
            ),
            all_of(ActionIs("commit_turn"), turn_result[Param("turn")].ne(0)).implies(
                Next("head_revision").eq(head_revision)
            ),
        )
        cas_ok = all_of(ActionIs("commit_cas"), Next("head_revision").ne(head_revision)).implies(
            Param("expected").eq(head_revision)
        )

        def listed(b: Expr) -> Expr:
            return all_of(Param("b") <= b, b <= Param("last"))

        exact_ok = ActionIs("claim_work_by_ids").implies(
            all_of(
                forall("qb", sb, lambda b: newly_stamped(b).implies(listed(b))),
                exists("qb", sb, newly_stamped).implies(
                    forall("qb", sb, lambda b: listed(b).implies(newly_stamped(b)))
                ),
            )
        )

        def sticky(flag: str, ok: Expr) -> Monitor:
            return Monitor(flag, any_of(Var(flag), ~ok))

        session: list[Monitor] = []
        if self.bounds.outbox:
            # a batch appears (absent -> queued) other than by an enqueue only through an
            # applied commit's outbox
            outbox_ok = forall(
                "qb",
                sb,
                lambda b: all_of(
                    batch_status[b].eq("absent"), Next("batch_status")[b].ne("absent")
                ).implies(
                    any_of(
                        ActionIs("enqueue_batch"),
                        ActionIs("enqueue_batch_later"),
                        all_of(
                            ActionIs("commit_outbox"), Next("head_revision").eq(head_revision + 1)
                        ),
                    )
                ),
            )
            session.append(sticky(OUTBOX_FLAG[0], outbox_ok))
        if self.bounds.second_session:
            session.append(sticky("hist_session_crossing", self.session_isolation_ok()))
        return [
            *session,
            sticky("hist_generation_step", generation_ok),
            sticky("hist_live_takeover", takeover_ok),
            sticky("hist_release_foreign", release_ok),
            sticky("hist_self_steal", self_steal_ok),
            sticky("hist_command_gate", command_gate_ok),
            sticky("hist_one_command", one_command_ok),
            sticky("hist_boundary_gate", boundary_ok),
            sticky("hist_live_batch_removed", live_batch_ok),
            sticky("hist_claimed_input_cancelled", claimed_input_ok),
            sticky("hist_input_transition", inputs_ok),
            sticky("hist_head_step", head_ok),
            sticky("hist_completion_mismatch", settled_ok),
            sticky("hist_unfenced_commit", fenced_ok),
            sticky("hist_short_extension", extension_ok),
            sticky("hist_unlisted_claim", exact_ok),
            sticky("hist_turn_reapplied", turn_once_ok),
            sticky("hist_head_cas", cas_ok),
        ]

    def _unchanged(self, name: str) -> Expr:
        """Every leaf of variable ``name`` keeps its value across the transition."""
        sorts = {
            v.name: v.sort
            for v in _variables(self.s) + _session1_variables(self.s) + _session1_input_variables()
        }

        def leaf(cur: Expr, nxt: Expr, sort: Any, depth: int) -> Expr:
            if isinstance(sort, MapSort):
                return forall(
                    f"qu{depth}",
                    sort.key,
                    lambda k: leaf(cur[k], nxt[k], sort.value, depth + 1),
                )
            return nxt.eq(cur)

        return leaf(Var(name), Next(name), sorts[name], 0)

    def session1_state(self) -> tuple[str, ...]:
        """Session-1's variables at these bounds (its input slot with ``second_session = 2``)."""
        if self.bounds.second_session >= 2:
            return (*SESSION1_STATE, SESSION1_INPUT_STATE)
        return SESSION1_STATE

    def session_isolation_ok(self) -> Expr:
        """A session-1 action leaves session-0's state alone, and a session-0 action leaves
        session-1's alone; only processes and the clock (``SHARED_ACTIONS``) touch both."""
        on_s1 = any_of(*[ActionIs(a) for a in SESSION1_ACTIONS])
        shared = any_of(*[ActionIs(a) for a in SHARED_ACTIONS])
        return all_of(
            on_s1.implies(all_of(*[self._unchanged(v) for v in SESSION0_STATE])),
            (~any_of(on_s1, shared)).implies(
                all_of(*[self._unchanged(v) for v in self.session1_state()])
            ),
            any_of(head_session.eq(-1), Next("head_session").eq(head_session)),
        )

    def outbox_is(self) -> list[Expr]:
        """``[ActionIs("commit_outbox")]`` with the outbox bound, ``[]`` without."""
        return [ActionIs("commit_outbox")] if self.bounds.outbox else []

    def session1_invariants(self) -> list[Invariant]:
        if not self.bounds.second_session:
            return []
        so = self.s.owner
        return [
            Invariant(
                "session_isolation",
                "An action on one session changes none of the other session's rows, lease or "
                "the owners' memory of it (processes and the clock are the store's and touch "
                "both), and the store's one head, once bound to a session, stays bound to it.",
                "store.md preamble (rows keyed by session_id, the head bound to one session), "
                "§5.3 step 1; lash in_memory_store.rs filters every row by session_id",
                ~Var("hist_session_crossing"),
            ),
            Invariant(
                "second_session_consistent",
                "Session-1's lease row is well formed and never behind what owners hold or "
                "its row is pinned to; its batch carries a claim only while queued; the head "
                "is bound to a session iff some commit applied.",
                "store.md §2.1, §6.2, §6.9, §6.22 (for session-1), §5.3 step 1",
                all_of(
                    head_session.eq(-1).eq(head_revision.eq(0)),
                    s1_lease_holder.eq(-1).eq(s1_lease_holder_inc.eq(-1)),
                    (s1_lease_ttl_left > 0).implies(s1_lease_holder >= 0),
                    s1_lease_gen.eq(0).implies(s1_lease_holder.eq(-1)),
                    s1_batch_claim_gen <= s1_lease_gen,
                    s1_batch_status.ne("queued").implies(s1_batch_claim_gen.eq(0)),
                    s1_batch_status.eq("absent").implies(s1_batch_fencing.eq(0)),
                    forall(
                        "qo",
                        so,
                        lambda p: all_of(
                            owner_s1_fence[p] <= s1_lease_gen,
                            owner_s1_claim[p] <= s1_batch_fencing,
                        ),
                    ),
                ),
            ),
        ]

    @staticmethod
    def cancellable_states(i: Expr) -> Expr:
        return any_of(input_state[i].eq("pending_active"), input_state[i].eq("deferred_next_turn"))

    def invariants(self) -> list[Invariant]:
        sb, si, so = self.s.batch, self.s.input, self.s.owner
        k = self.bounds.max_claims_per_row
        fencing_sort = self.s.fencing

        def claim_id_consistent(claim: Var, fencing: Var, rows: IntSort) -> Expr:
            def row_ok(r: Expr) -> Expr:
                return claim[r].eq(0) | exists(
                    "qh",
                    rows,
                    lambda h: exists(
                        "qf",
                        fencing_sort,
                        lambda f: all_of(
                            claim[r].eq(h * (k + 1) + f),
                            f >= 1,
                            h <= r,
                            f <= fencing[h],
                            h.eq(r).implies(f.eq(fencing[r])),
                        ),
                    ),
                )

            return forall("qr", rows, row_ok)

        def flag(name: str, statement: str, reference: str) -> Invariant:
            return Invariant(name, statement, reference, ~Var(f"hist_{name}"))

        invariants = [
            Invariant(
                "lease_row_shape",
                "A lease row has an owner iff it has an incarnation; a live row has an owner; "
                "a never-acquired row has none.",
                "store.md §2.1",
                all_of(
                    lease_holder.eq(-1).eq(lease_holder_inc.eq(-1)),
                    lease_live.implies(lease_holder >= 0),
                    lease_gen.eq(0).implies(lease_holder.eq(-1)),
                ),
            ),
            Invariant(
                "single_live_holder",
                "At most one owner holds a fence for the live generation.",
                "store.md §6.1",
                forall(
                    "qo",
                    so,
                    lambda p: forall(
                        "qp",
                        so,
                        lambda q: all_of(
                            p < q,
                            lease_live,
                            owner_fence[p].eq(lease_gen),
                            owner_fence[q].eq(lease_gen),
                        ).implies(FALSE),
                    ),
                ),
            ),
            Invariant(
                "fence_not_ahead_of_row",
                "No owner believes it holds a generation the row has not minted.",
                "store.md §6.2, §6.3",
                forall(
                    "qo",
                    so,
                    lambda p: owner_fence[p] <= lease_gen,
                ),
            ),
            Invariant(
                "distinct_generations_distinct_owners",
                "Two owners never hold fences of the same generation.",
                "store.md §6.3",
                forall(
                    "qo",
                    so,
                    lambda p: forall(
                        "qp",
                        so,
                        lambda q: all_of(p < q, owner_fence[p].ne(0)).implies(
                            owner_fence[p].ne(owner_fence[q])
                        ),
                    ),
                ),
            ),
            Invariant(
                "current_fence_is_row_owner",
                "An owner whose fence names the row's generation is the row's owner incarnation.",
                "store.md §6.4, §6.5, §6.7",
                forall(
                    "qo",
                    so,
                    lambda p: all_of(owner_fence[p].ne(0), owner_fence[p].eq(lease_gen)).implies(
                        all_of(lease_holder.eq(p), lease_holder_inc.eq(owner_inc[p]))
                    ),
                ),
            ),
            Invariant(
                "live_lease_known_to_holder",
                "A live lease held by a running incarnation is remembered by that owner (commit "
                "and release end it atomically; nothing else forgets it).",
                "store.md §5.3 step 14, §6.33, §2.4",
                forall(
                    "qo",
                    so,
                    lambda p: all_of(
                        lease_live,
                        lease_holder.eq(p),
                        owner_alive[p],
                        owner_inc[p].eq(lease_holder_inc),
                    ).implies(owner_fence[p].eq(lease_gen)),
                ),
            ),
            Invariant(
                "crashed_owner_holds_nothing",
                "A process that is not running remembers no fence or claim.",
                "trace-format.md §1 (owner memory)",
                forall(
                    "qo",
                    so,
                    lambda p: (~owner_alive[p]).implies(
                        all_of(
                            owner_fence[p].eq(0),
                            owner_qclaim[p].eq(0),
                            owner_iclaim[p].eq(0),
                        )
                    ),
                ),
            ),
            Invariant(
                "claims_pinned_to_minted_generation",
                "A claimed row is pinned to a generation >= 1 that the lease row has minted; an "
                "unclaimed row is pinned to none.",
                "store.md §6.9, §6.15, §6.16",
                all_of(
                    forall(
                        "qb",
                        sb,
                        lambda b: all_of(
                            batch_claim[b].eq(0).eq(batch_claim_gen[b].eq(0)),
                            batch_claim_gen[b] <= lease_gen,
                        ),
                    ),
                    forall(
                        "qi",
                        si,
                        lambda i: all_of(
                            input_claim[i].eq(0).eq(input_claim_gen[i].eq(0)),
                            input_claim_gen[i] <= lease_gen,
                        ),
                    ),
                ),
            ),
            Invariant(
                "claim_id_matches_head_fencing",
                "A row's claim id names a head row at or before it whose claim fencing token "
                "reached the claim's; a head row still carries exactly its claim's token.",
                "store.md §6.11, §3.6",
                all_of(
                    claim_id_consistent(batch_claim, batch_fencing, sb),
                    claim_id_consistent(input_claim, input_fencing, si),
                ),
            ),
            Invariant(
                "owner_claim_memory_consistent",
                "An owner remembers a claim iff it remembers a non-empty set of rows named by it.",
                "store.md §6.12",
                forall(
                    "qo",
                    so,
                    lambda p: all_of(
                        owner_qclaim[p]
                        .eq(0)
                        .eq(forall("qb", sb, lambda b: ~owner_qclaim_rows[p][b])),
                        owner_iclaim[p]
                        .eq(0)
                        .eq(forall("qi", si, lambda i: ~owner_iclaim_rows[p][i])),
                    ),
                ),
            ),
            Invariant(
                "removed_batches_unclaimed",
                "A batch that is not queued carries no claim; a never-enqueued batch was never "
                "claimed.",
                "store.md §3.3, §6.22",
                forall(
                    "qb",
                    sb,
                    lambda b: all_of(
                        batch_status[b]
                        .ne("queued")
                        .implies(all_of(batch_claim[b].eq(0), batch_claim_gen[b].eq(0))),
                        batch_status[b].eq("absent").implies(batch_fencing[b].eq(0)),
                    ),
                ),
            ),
            Invariant(
                "enqueue_order_is_slot_order",
                "Slots are enqueued in order: no slot is present while an earlier one is absent.",
                "store.md §6.31",
                all_of(
                    forall(
                        "qb",
                        sb,
                        lambda b: forall(
                            "qc",
                            sb,
                            lambda c: all_of(b < c, batch_status[b].eq("absent")).implies(
                                batch_status[c].eq("absent")
                            ),
                        ),
                    ),
                    forall(
                        "qi",
                        si,
                        lambda i: forall(
                            "qj",
                            si,
                            lambda j: all_of(i < j, input_state[i].eq("absent")).implies(
                                input_state[j].eq("absent")
                            ),
                        ),
                    ),
                ),
            ),
            Invariant(
                "input_claim_columns_match_state",
                "Accepted rows carry a claim; pending_active rows and terminal or absent rows "
                "carry none.",
                "store.md §4.2, §6.26",
                forall(
                    "qi",
                    si,
                    lambda i: all_of(
                        input_state[i].eq("accepted").implies(input_claim[i].ne(0)),
                        any_of(
                            input_state[i].eq("accepted"),
                            input_state[i].eq("deferred_next_turn"),
                            input_claim[i].eq(0),
                        ),
                    ),
                ),
            ),
            Invariant(
                "deferral_rewrites_only_active_inputs",
                "Only active-turn inputs are ever rewritten, and a rewritten input is never "
                "pending_active or accepted again; next-turn inputs never become active.",
                "store.md §6.30, §4.2 row 8",
                forall(
                    "qi",
                    si,
                    lambda i: all_of(
                        input_rewritten[i].implies(
                            all_of(
                                self.ingress[i].eq("active_turn"),
                                input_state[i].ne("pending_active"),
                                input_state[i].ne("accepted"),
                            )
                        ),
                        self.ingress[i]
                        .eq("next_turn")
                        .implies(
                            all_of(
                                input_state[i].ne("pending_active"), input_state[i].ne("accepted")
                            )
                        ),
                    ),
                ),
            ),
            Invariant(
                "lease_ttl_matches_liveness",
                "A lease is live iff some of its TTL is left, and never more than a full TTL.",
                "store.md §2.1 (is_live: token present and expires_at > now)",
                lease_live.eq(lease_ttl_left > 0),
            ),
            flag(
                "short_extension",
                "A successful acquisition, re-entry or renewal sets the lease's expiry a full TTL "
                "from now, so a renewed or re-entered lease does not expire before a fresh TTL.",
                "store.md §2.3, §2.4 renew; lash in_memory_store try_claim re-entry",
            ),
            flag(
                "turn_reapplied",
                "A turn commits at most once: its recorded result and content never change, and a "
                "stamped commit of a committed turn applies nothing (only its lease release).",
                "store.md §5.3 step 2; lash store/mod.rs RuntimeTurnCommitStamp",
            ),
            flag(
                "head_cas",
                "A commit with an expected head revision applies only at that revision.",
                "store.md §5.3 step 4 (HeadRevisionConflict)",
            ),
            Invariant(
                "turn_results_committed",
                "A committed turn's recorded result is a revision the head has reached.",
                "store.md §5.3 step 2, §6.34",
                forall("qt", self.s.turn, lambda t: turn_result[t] <= head_revision),
            ),
            flag(
                "generation_step",
                "The fencing token only changes by +1, and only over a lease that is not live or "
                "whose holder is provably dead (renew, re-entry and release keep it).",
                "store.md §6.2, §2.6",
            ),
            flag(
                "live_takeover",
                "A live lease changes generation only for a claimant that observed exactly that "
                "generation (reclaim is a CAS on the observed holder).",
                "store.md §6.6, §2.4 reclaim",
            ),
            flag(
                "release_foreign",
                "A lease row is cleared only by release or commit of the owner holding its current "
                "fence.",
                "store.md §6.5",
            ),
            flag(
                "self_steal",
                "A row held by a generation is never re-claimed by the same generation.",
                "store.md §6.10",
            ),
            flag(
                "command_gate",
                "Turn-work claims never take a session command, and turn work is never claimed "
                "behind a ready session command not held by the claiming generation (except by "
                "an exact-by-ids claim, which may bypass earlier ready work).",
                "store.md §6.17, §3.5; lash store/mod.rs claim_ready_queued_work_by_batch_ids",
            ),
            flag(
                "unlisted_claim",
                "An exact-by-ids claim stamps exactly the rows it lists, or none of them.",
                "lash store/mod.rs claim_ready_queued_work_by_batch_ids; store.md §3.6",
            ),
            flag(
                "one_command",
                "A session command is claimed alone (one batch per claim).",
                "store.md §6.17",
            ),
            flag(
                "boundary_gate",
                "An active-turn checkpoint claim (claim_work, by ids or claim_checkpoint_work) "
                "never takes after_current_turn_commit work.",
                "store.md §6.18",
            ),
            flag(
                "live_batch_removed",
                "A live-claimed batch leaves the queue only through completion of that claim.",
                "store.md §6.22, §6.13",
            ),
            flag(
                "claimed_input_cancelled",
                "Accepted and live-claimed inputs are never cancelled.",
                "store.md §6.26, §4.6",
            ),
            flag(
                "input_transition",
                "Every input state change is a row of the §4.2 table; terminal states only vacuum.",
                "store.md §4.2, §6.25",
            ),
            flag(
                "head_step",
                "head_revision changes only by +1 and only through a commit.",
                "store.md §6.34",
            ),
            flag(
                "completion_mismatch",
                "A successful commit completes exactly the rows its claims named, each still "
                "stamped with that claim, so no batch or input is ever completed twice.",
                "store.md §6.13, §5.3 steps 5-9, §6.33",
            ),
            flag(
                "unfenced_commit",
                "A commit applies only with a fence that validates in its pre-state.",
                "store.md §6.32",
            ),
        ]
        outbox = (
            [
                Invariant(
                    "outbox_atomic",
                    "A commit's outbox batches are enqueued only when the commit applies (the "
                    "whole commit rolls back on any error, outbox included).",
                    "store.md §5.3 steps 12 and 15",
                    ~Var(OUTBOX_FLAG[0]),
                )
            ]
            if self.bounds.outbox
            else []
        )
        return invariants + self.session1_invariants() + self.delayed_invariants() + outbox

    def delayed_invariants(self) -> list[Invariant]:
        if not self.bounds.delayed_work:
            return []
        return [
            Invariant(
                "waiting_work_unclaimed",
                "Work that is not yet available (available_at > now) carries no claim, and a "
                "slot never enqueued does not wait.",
                "store.md §3.4 (ready = available_at <= now); lash in_memory_store.rs "
                "claim_ready_queued_work filters available_at_ms <= now",
                forall(
                    "qb",
                    self.s.batch,
                    lambda b: all_of(
                        (batch_wait[b] > 0).implies(batch_claim[b].eq(0)),
                        batch_status[b].eq("absent").implies(batch_wait[b].eq(0)),
                    ),
                ),
            )
        ]


def build_model(bounds: Bounds = DEFAULT_BOUNDS) -> Model:
    """The kernel model at ``bounds`` (see the module docstring)."""
    builder = KernelBuilder(bounds)
    variables = _variables(builder.s)
    init = _initial(bounds, builder.s)
    if bounds.second_session:
        variables += _session1_variables(builder.s)
        init.update(_session1_initial(bounds))
    if bounds.second_session >= 2:
        variables += _session1_input_variables()
        init[SESSION1_INPUT_STATE] = "absent"
    if bounds.delayed_work:
        variables += _delayed_variables(builder.s)
        init["batch_wait"] = {b: 0 for b in range(bounds.batches)}
    if bounds.outbox:
        variables += (Variable(OUTBOX_FLAG[0], BoolSort(), OUTBOX_FLAG[1], ghost=True),)
        init[OUTBOX_FLAG[0]] = False
    return Model(
        name="lash-kernel-store",
        variables=variables,
        init=init,
        actions=tuple(builder.actions()),
        invariants=tuple(builder.invariants()),
        monitors=tuple(builder.monitors()),
        bounds=bounds.as_dict(),
        doc=__doc__ or "",
    )


@functools.lru_cache(maxsize=32)
def compiled_model(bounds: Bounds = DEFAULT_BOUNDS) -> CompiledModel:
    """The kernel model at ``bounds``, compiled once per process.

    Compiling specialises every action instance (a second or more at the larger bounds);
    suite generation asks for the same bounds many times (a profile's exploration and its
    traces, the promoted traces), so the compiled model is shared. It holds no mutable state.
    """
    return compile_model(build_model(bounds))


# --------------------------------------------------------------------------------------------
# Lemmas: auxiliary invariants that make the invariant set inductive (model/z3check.py)
#
# Every invariant above holds in every reachable state, but two are not preserved by every
# action from every state satisfying all of them: z3 finds counterexamples to induction in
# unreachable states. Each lemma rules such states out. Lemmas are ordinary state invariants
# (tests check them on every reachable state with the explorer) kept out of the model's
# invariant list, which stays the specification's.

LEMMA_REASONS: dict[str, str] = {
    "lemma_holder_incarnation_not_ahead": (
        "live_lease_known_to_holder: without it, restart could bring a dead owner's "
        "incarnation up to one a live row records but the owner never held"
    ),
    "lemma_absent_inputs_untouched": (
        "deferral_rewrites_only_active_inputs: without it, enqueue_input could make a slot "
        "pending_active while its rewritten flag is already set"
    ),
}


def build_lemmas(bounds: Bounds = DEFAULT_BOUNDS) -> tuple[Invariant, ...]:
    """The proof lemmas at ``bounds`` (``LEMMA_REASONS`` says which invariant each serves)."""
    s = _sorts(bounds)
    return (
        Invariant(
            "lemma_holder_incarnation_not_ahead",
            "The lease row never records an incarnation newer than its owner's current one.",
            "store.md §1.1, §2.3",
            (lease_holder >= 0).implies(lease_holder_inc <= owner_inc[lease_holder]),
        ),
        Invariant(
            "lemma_absent_inputs_untouched",
            "An input slot never enqueued is not rewritten and has no claim fencing token.",
            "store.md §4.3, trace-format.md §1",
            forall(
                "qi",
                s.input,
                lambda i: (
                    input_state[i]
                    .eq("absent")
                    .implies(all_of(~input_rewritten[i], input_fencing[i].eq(0)))
                ),
            ),
        ),
    )


# --------------------------------------------------------------------------------------------
# Trace-format projection


def claim_id(prefix: str, code: int, bounds: Bounds) -> str:
    """Render a claim code as the trace format's abstract id (``""`` for none)."""
    if code == 0:
        return ""
    stride = bounds.max_claims_per_row + 1
    head, fencing = divmod(code, stride)
    letter = "b" if prefix == "qwc" else "i"
    return f"{prefix}:{letter}{head}:{fencing}"


def trace_state(model: Model, state: FlatState) -> dict[str, Any]:
    """A flat model state as the variables of docs/trace-format.md §2 (maps keyed by index)."""
    bounds = Bounds(**{k: int(v) for k, v in model.bounds.items()})
    decoded = model.decode(state)
    result: dict[str, Any] = {}
    for name, value in decoded.items():
        if name.startswith("hist_"):
            continue
        result[name] = value
    result["owner_qclaim"] = {
        o: claim_id("qwc", c, bounds) for o, c in decoded["owner_qclaim"].items()
    }
    result["owner_iclaim"] = {
        o: claim_id("tic", c, bounds) for o, c in decoded["owner_iclaim"].items()
    }
    result["batch_claim"] = {
        b: claim_id("qwc", c, bounds) for b, c in decoded["batch_claim"].items()
    }
    result["input_claim"] = {
        i: claim_id("tic", c, bounds) for i, c in decoded["input_claim"].items()
    }
    result["owner_qclaim_rows"] = {
        o: sorted(b for b, on in rows.items() if on)
        for o, rows in decoded["owner_qclaim_rows"].items()
    }
    result["owner_iclaim_rows"] = {
        o: sorted(i for i, on in rows.items() if on)
        for o, rows in decoded["owner_iclaim_rows"].items()
    }
    if "owner_s1_claim" in decoded:
        result["owner_s1_claim"] = {
            o: session1_claim_id(int(f)) for o, f in decoded["owner_s1_claim"].items()
        }
    return result


def session1_claim_id(fencing: int) -> str:
    """Session-1's claim of its batch as the trace format's abstract id (``""`` for none)."""
    return f"qwc:s1b0:{fencing}" if fencing else ""


QUEUE_CLAIM_ACTIONS = ("claim_command", "claim_work", "claim_work_by_ids")
INPUT_CLAIM_ACTIONS = ("claim_next_inputs", "claim_active_inputs")


def trace_outcome(
    model: Model, action: str, outcome: tuple[str, tuple[tuple[str, Any], ...]]
) -> dict[str, Any]:
    """An outcome value as docs/trace-format.md §4: claim ids rendered, sets/lists as lists."""
    bounds = Bounds(**{k: int(v) for k, v in model.bounds.items()})
    tag, fields = outcome
    rendered: dict[str, Any] = {"tag": tag}
    for name, value in fields:
        if name == "claim" and action == "s1_claim":
            rendered[name] = session1_claim_id(int(value))
        elif name == "claim":
            lane = "tic" if action in INPUT_CLAIM_ACTIONS else "qwc"
            rendered[name] = claim_id(lane, int(value), bounds)
        elif name in ("input_claim", "queue_claim"):
            lane = "tic" if name == "input_claim" else "qwc"
            rendered[name] = claim_id(lane, int(value), bounds)
        elif isinstance(value, frozenset):
            rendered[name] = sorted(value)
        elif isinstance(value, tuple):
            rendered[name] = list(value)
        else:
            rendered[name] = value
    return rendered
