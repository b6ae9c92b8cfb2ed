"""Promoted traces: short hand-written reproductions kept in the suite for good.

The edge cover is driven by goals (action instance, outcome, lane row statuses); some
behaviour sits below that resolution or outside the check profiles' bounds. When mutation
testing finds a kernel bug the suite misses on the abstract system, the shortest action
sequence that exposes it is promoted here, the way lash keeps its promoted replays. Expected
outcomes and states still come from the model (:func:`~lashspec.conformance.modeltrace.trace_of`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..model.kernel_model import SMALLEST_BOUNDS, Bounds

Steps = tuple[tuple[str, dict[str, Any]], ...]


def _a(action: str, **picks: Any) -> tuple[str, dict[str, Any]]:
    return (action, picks)


_SMALL = Bounds(
    owners=2,
    max_incarnation=0,
    batches=1,
    inputs=1,
    max_generation=2,
    max_claims_per_row=1,
    max_head_revision=1,
)

#: Two owners and three generations: a claim re-claimed by a later generation while its owner
#: holds the lease again (outbox commits).
_OUTBOX_WIDE = replace(
    SMALLEST_BOUNDS, owners=2, batches=2, max_generation=3, max_claims_per_row=2, outbox=1
)

#: Every batch slot (b4..b8 exist for these traces alone: trace-format.md §1), one owner, rows
#: claimed up to three times (a head claimed, abandoned and claimed again).
_JOIN_SHAPES = replace(
    SMALLEST_BOUNDS, batches=9, max_head_revision=0, max_claims_per_row=3, exact_claims=1
)

#: The sessions profile's bounds (model/profiles.py).
_SESSIONS = replace(SMALLEST_BOUNDS, owners=2, second_session=1)

PROMOTED_TRACES: dict[str, tuple[str, Bounds, Steps]] = {
    "stale_fence_after_release": (
        "a fence presented after its lease expired, was taken over and then released is "
        "refused (the row has no holder, which differs from an expired or a foreign holder)",
        _SMALL,
        (
            _a("acquire", o=0),
            _a("expire"),
            _a("acquire", o=1),
            _a("release", o=1),
            _a("commit", o=0, release=False, defer=False),
            _a("renew", o=0),
            _a("claim_next_inputs", o=0),
        ),
    ),
    "input_claim_id_names_its_head": (
        "a multi-row input claim over rows with different claim fencing tokens takes its id "
        "from the head row: tic:i1:2, not the last row's tic:i2:1",
        Bounds(
            owners=1,
            max_incarnation=0,
            batches=1,
            inputs=3,
            max_generation=1,
            max_claims_per_row=2,
            max_head_revision=1,
        ),
        (
            _a("enqueue_input", i=0),
            _a("enqueue_input", i=1),
            _a("enqueue_input", i=2),
            _a("acquire", o=0),
            _a("claim_active_inputs", o=0, checkpoint="after_work"),
            _a("abandon_inputs", o=0),
            _a("claim_active_inputs", o=0, checkpoint="before_completion"),
            _a("commit", o=0, release=True, defer=False),
        ),
    ),
    # Outside the sessions profile's bounds (it has no head CAS, no turn stamps and one
    # generation per session): the second session's remaining (action, outcome) pairs.
    "session_binding_refuses_every_commit_kind": (
        "once session-1's commit binds the store's one head, session-0's plain, CAS and "
        "stamped commits are all refused with SessionBindingMismatch before the fence check",
        replace(SMALLEST_BOUNDS, head_cas=1, turns=1, second_session=1),
        (
            _a("s1_acquire", o=0),
            _a("s1_commit", o=0, release=False),
            _a("acquire", o=0),
            _a("commit_cas", o=0, expected=1),
            _a("commit_turn", o=0, turn=0, content=0, release=False),
            _a("commit", o=0, release=False, defer=False),
        ),
    ),
    "session1_stale_claim_superseded": (
        "a session-1 claim re-claimed by a later generation of session-1's lease no longer "
        "completes: its owner, holding session-1's lease again, gets QueuedWorkClaimSuperseded",
        replace(
            SMALLEST_BOUNDS, owners=2, max_generation=3, max_claims_per_row=2, second_session=1
        ),
        (
            _a("s1_enqueue"),
            _a("s1_acquire", o=0),
            _a("s1_claim", o=0),
            _a("expire"),
            _a("s1_acquire", o=1),
            _a("s1_claim", o=1),
            _a("expire"),
            _a("s1_acquire", o=0),
            _a("s1_commit", o=0, release=False),
        ),
    ),
    # A lease token the store never handed out, presented with the holder's own identity and
    # generation: only the token tells it from the live lease (StoreEngine._release and
    # _validate_fence compare it; a comparison turned to <= or `or` went unnoticed).
    "stale_lease_token_renews_and_releases_nothing": (
        "the holder's fence and completion with ':stale' appended to the lease token: the "
        "renewal is refused and the release leaves the row held, so the holder still commits",
        SMALLEST_BOUNDS,
        (
            _a("acquire", o=0),
            _a("renew_stale", o=0),
            _a("release_stale", o=0),
            _a("commit", o=0, release=True, defer=False),
        ),
    ),
    # Outside the exact-queue and delayed profiles' bounds (each has one extension): a by-ids
    # claim listing a row whose available_at is still ahead of the clock.
    "by_ids_claim_waits_for_available_at": (
        "a claim by ids listing delayed work claims nothing until the clock reaches its "
        "available_at, and then claims it (by-ids claims check availability as a ready scan does)",
        replace(SMALLEST_BOUNDS, batches=2, ttl_steps=2, exact_claims=1, delayed_work=1),
        (
            _a("enqueue_batch", b=0),
            _a("enqueue_batch_later", b=1),
            _a("acquire", o=0),
            _a("claim_work_by_ids", o=0, b=1, last=1, boundary="idle"),
            _a("advance"),
            _a("claim_work_by_ids", o=0, b=1, last=1, boundary="idle"),
        ),
    ),
    "queue_claim_id_names_its_head": (
        "a join run claimed by ids over rows with different claim fencing tokens takes its id "
        "and fencing token from the head row: qwc:b2:2, not the follower's qwc:b2:1",
        replace(SMALLEST_BOUNDS, batches=4, max_claims_per_row=2, exact_claims=1),
        (
            _a("enqueue_batch", b=0),
            _a("enqueue_batch", b=1),
            _a("enqueue_batch", b=2),
            _a("acquire", o=0),
            _a("claim_work_by_ids", o=0, b=2, last=2, boundary="idle"),
            _a("abandon_work", o=0),
            _a("enqueue_batch", b=3),
            _a("claim_work_by_ids", o=0, b=2, last=3, boundary="idle"),
        ),
    ),
    "cancel_of_a_claimed_input_names_the_claims_generation": (
        "cancelling a live-claimed next-turn input and an accepted active-turn input answers "
        "AlreadyClaimed with diagnostics naming the lease generation each claim pins",
        replace(SMALLEST_BOUNDS, inputs=2, max_generation=2),
        (
            _a("enqueue_input", i=0),
            _a("enqueue_input", i=1),
            _a("acquire", o=0),
            _a("claim_next_inputs", o=0),
            _a("cancel_input", i=0),
            _a("expire"),
            _a("acquire", o=0),
            _a("claim_active_inputs", o=0, checkpoint="after_work"),
            _a("cancel_input", i=1),
        ),
    ),
    # Session ids compared for equality, not order: the mutation campaign found a store whose
    # per-session lookups used <= or >= on session ids survive every edge-cover trace (the
    # goals do not pin which session's row came first, nor a dead holder whose generation
    # equals the other session's).
    "session1_key_and_calls_across_sessions": (
        "session-1's batch under session-0 slot b0's source key, then session-0's own b0 (a "
        "new row: keys are per session); session-0's reclaim naming session-1's holder stays "
        "Busy although session-0's holder is dead at the same generation; session-0's cancel "
        "of session-1's batch and session-1's cancel of session-0's input find nothing",
        _SESSIONS,
        (
            _a("s1_enqueue"),
            _a("enqueue_batch", b=0),
            _a("enqueue_input", i=0),
            _a("acquire", o=1),
            _a("s1_acquire", o=0),
            _a("crash", o=1),
            _a("reclaim_observing_s1", o=0),
            _a("cancel_s1_batch"),
            _a("s1_cancel_input", i=0),
        ),
    ),
    "session0_key_then_session1": (
        "session-0's b0 first, then session-1's batch under the same source key: a new "
        "session-1 row, not session-0's deduplicated",
        _SESSIONS,
        (_a("enqueue_batch", b=0), _a("s1_enqueue")),
    ),
    # Owner identities compared field by field for equality: a restarted owner keeps its owner
    # id under a new incarnation id, and only the incarnation tells it from the live lease's
    # holder (LeaseOwnerIdentity.same_incarnation joined with `or`, or its incarnation ids
    # compared with <=, let the new incarnation re-enter the old one's lease). The lease
    # profile's acquire goals are met by the other owner's Busy first.
    "restarted_owner_is_busy_behind_its_old_incarnation": (
        "an owner restarted while its crashed incarnation's lease is still live is Busy (the "
        "old incarnation holds the lease), not a re-entry of its own lease",
        replace(SMALLEST_BOUNDS, max_incarnation=1),
        (
            _a("acquire", o=0),
            _a("crash", o=0),
            _a("restart", o=0),
            _a("acquire", o=0),
        ),
    ),
    # The fenced claimability view (rules.claimable_by_generation) read before the fence
    # check: only claim_checkpoint_work's probe does, and only a stale fence whose generation
    # is below the row's claim generation tells `!=` from `<` (the exact-checkpoint profile
    # has one owner and one generation).
    "stale_fence_probes_work_claimed_by_a_later_generation": (
        "a checkpoint-work claim by a fence a later generation superseded, while that "
        "generation holds the only turn work: the probe finds the row claimable for the stale "
        "generation, so the fence is checked (SessionExecutionLeaseExpired), not NoClaim",
        replace(
            SMALLEST_BOUNDS,
            owners=2,
            batches=2,
            max_generation=2,
            max_head_revision=0,
            exact_claims=1,
        ),
        (
            _a("enqueue_batch", b=0),
            _a("enqueue_batch", b=1),
            _a("cancel_batch", b=0),
            _a("acquire", o=0),
            _a("expire"),
            _a("acquire", o=1),
            _a("claim_work", o=1, boundary="idle"),
            _a("claim_checkpoint_work", o=0, checkpoint="after_work"),
        ),
    ),
    # Outside the outbox profile's bounds (one owner, one generation): a commit with an outbox
    # refused for a superseded claim, which enqueues nothing.
    "outbox_commit_superseded_queue_claim": (
        "a commit whose outbox would enqueue a batch is refused for a queue claim a later "
        "generation re-claimed (QueuedWorkClaimSuperseded), and its outbox batch stays absent",
        _OUTBOX_WIDE,
        (
            _a("acquire", o=0),
            _a("enqueue_batch", b=0),
            _a("claim_command", o=0),
            _a("expire"),
            _a("acquire", o=1),
            _a("claim_command", o=1),
            _a("release", o=1),
            _a("acquire", o=0),
            _a("commit_outbox", o=0, b=1),
        ),
    ),
    "outbox_commit_superseded_input_claim": (
        "a commit whose outbox would enqueue a batch is refused for an input claim a later "
        "generation re-claimed (TurnInputClaimSuperseded), and its outbox batch stays absent",
        _OUTBOX_WIDE,
        (
            _a("acquire", o=0),
            _a("enqueue_input", i=0),
            _a("claim_next_inputs", o=0),
            _a("expire"),
            _a("acquire", o=1),
            _a("claim_next_inputs", o=1),
            _a("release", o=1),
            _a("acquire", o=0),
            _a("commit_outbox", o=0, b=0),
        ),
    ),
    # Outside every profile's bounds (turns=2): the generated traces stamp turn-0 only, whose
    # content the adapter keeps in a tool call's id (conformance/checkpoints.py); turn-1's
    # sits in the text of a message part, a key a hash that scrubbed part keys would drop.
    "second_turn_redelivered_by_another_owner": (
        "turn-1 committed by one owner and delivered again by the next holder: the same content "
        "(differing only in lash's volatile keys) answers the recorded result, other content "
        "a conflict; then turn-0 the same way, between plain commits (an empty checkpoint)",
        replace(SMALLEST_BOUNDS, owners=2, max_generation=2, max_head_revision=4, turns=2),
        (
            _a("acquire", o=0),
            _a("commit", o=0, release=False, defer=False),
            _a("commit_turn", o=0, turn=1, content=1, release=True),
            _a("acquire", o=1),
            _a("commit_turn", o=1, turn=1, content=1, release=False),
            _a("commit_turn", o=1, turn=1, content=0, release=False),
            _a("commit_turn", o=1, turn=0, content=0, release=False),
            _a("commit_turn", o=1, turn=0, content=1, release=False),
            _a("commit", o=1, release=False, defer=False),
        ),
    ),
    # Outside every profile's bounds (batches 9): the check profiles' catalogue prefix b0..b3
    # forms no join head followed by a row that must not join it but for one attribute, so
    # the mutation campaign found select_turn_work_claim_prefix surviving with any of its
    # follower tests weakened; and no goal pinned a by-ids claim of an after-commit head at an
    # active-turn checkpoint while the row was claimable.
    "join_shapes_listed_by_ids": (
        "claims by ids of two neighbouring slots that must not form a run, each answering "
        "NoClaim: an exclusive head with a follower (b1, b2), an after-commit join head with an "
        "earliest-safe-boundary join row (b3, b4) and the reverse (b4, b5), a join head with "
        "an exclusive row of its delivery and merge key (b5, b6); and an after-commit join head "
        "alone at an active-turn checkpoint (b2: the head gate); then an idle scan of b3..b8 "
        "claims b3 alone: the run stops at b4 although b5 could join b3",
        _JOIN_SHAPES,
        (
            *(_a("enqueue_batch", b=b) for b in range(9)),
            _a("acquire", o=0),
            _a("claim_work_by_ids", o=0, b=2, last=2, boundary="active_turn_checkpoint"),
            _a("claim_work_by_ids", o=0, b=1, last=2, boundary="idle"),
            _a("claim_work_by_ids", o=0, b=3, last=4, boundary="idle"),
            _a("claim_work_by_ids", o=0, b=4, last=5, boundary="idle"),
            _a("claim_work_by_ids", o=0, b=5, last=6, boundary="idle"),
            _a("cancel_batch", b=0),
            _a("cancel_batch", b=1),
            _a("cancel_batch", b=2),
            _a("claim_work", o=0, boundary="idle"),
        ),
    ),
    "join_shapes_scanned": (
        "idle queue scans each claiming the head alone: an exclusive wake whose next ready row "
        "is a join row of its delivery and merge key (b1, b4: b2 and b3 held), an "
        "earliest-safe-boundary join head before an after-commit join row (b4, b5), and the "
        "after-commit join head b5 before an exclusive row of its delivery and merge key (b6), "
        "a join row under another merge key (b7) and a session command with join policies "
        "(b8), b5's claim abandoned and the row behind it cancelled in between",
        _JOIN_SHAPES,
        (
            *(_a("enqueue_batch", b=b) for b in range(9)),
            _a("acquire", o=0),
            _a("cancel_batch", b=0),
            _a("claim_work_by_ids", o=0, b=2, last=3, boundary="idle"),
            _a("claim_work", o=0, boundary="idle"),
            _a("claim_work", o=0, boundary="idle"),
            _a("claim_work", o=0, boundary="idle"),
            _a("abandon_work", o=0),
            _a("cancel_batch", b=6),
            _a("claim_work", o=0, boundary="idle"),
            _a("abandon_work", o=0),
            _a("cancel_batch", b=7),
            _a("claim_work", o=0, boundary="idle"),
        ),
    ),
}
