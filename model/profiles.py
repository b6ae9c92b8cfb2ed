"""Check profiles: the bounds at which ``lashspec check`` explores the model exhaustively.

The state space grows with the product of every bound (two owners, two batch slots and two
input slots with a restart already pass three million states), so one configuration cannot be
both complete and quick. Each profile widens the lane it is named after and keeps the others
minimal; together they reach every action x outcome pair the model declares except the ones
listed in :data:`UNREACHABLE_BY_DESIGN`. The scenario bounds are wide enough for the seed's
nine Runtime Scenarios expressed as traces; they are stepped, never explored.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .kernel_model import BAD_REQUEST_ACTIONS, SMALLEST_BOUNDS, Bounds
from .machine_model import MachineBounds


@dataclass(frozen=True)
class Profile:
    """A named bound configuration and the behaviour it exists to reach."""

    name: str
    bounds: Bounds
    purpose: str
    focus: frozenset[str] = frozenset()
    """When not empty, the suite's edge cover of this profile takes only the goals whose
    action or refined outcome tag (``conformance/generate.py``, ``GoalContext``) is listed:
    the profile exists for those, and the other goals repeat what smaller profiles cover."""


PROFILES: tuple[Profile, ...] = (
    Profile(
        "lease",
        replace(SMALLEST_BOUNDS, owners=2, max_incarnation=1, max_generation=2),
        "two owners with crash and restart: takeover, stale observations, fencing",
    ),
    Profile(
        "queue",
        replace(SMALLEST_BOUNDS, owners=2, batches=2, max_generation=2),
        "a session command ahead of turn work: the command gate, both boundaries",
    ),
    Profile(
        "join",
        replace(SMALLEST_BOUNDS, batches=3, max_generation=2, max_head_revision=2),
        "an after-commit join batch behind a wake: boundary gates, join runs, two commits",
    ),
    Profile(
        "inputs",
        replace(SMALLEST_BOUNDS, owners=2, inputs=2, max_generation=2),
        "next-turn and active-turn inputs: claims, cancels, suffix cancels, deferral",
    ),
    Profile(
        "join-run",
        replace(SMALLEST_BOUNDS, batches=4, max_head_revision=0),
        "two after-commit join batches behind a wake: a join run of two rows claimed at once",
        frozenset({"Claimed+run"}),
    ),
    Profile(
        "active-inputs",
        replace(SMALLEST_BOUNDS, inputs=3, max_head_revision=0),
        "both active-turn inputs: after_work and before_completion claimed together",
        frozenset({"Claimed+run"}),
    ),
    Profile(
        "limit-run",
        replace(SMALLEST_BOUNDS, batches=4, max_head_revision=0, claim_limits=1),
        "turn-work claims with a limit of one: only the head of a join run of two rows",
        frozenset({"Claimed+limited"}),
    ),
    Profile(
        "limit-inputs",
        replace(SMALLEST_BOUNDS, inputs=3, max_head_revision=0, exact_claims=1, claim_limits=1),
        "input claims with a limit of one: the first of both active-turn inputs, alone and in "
        "a checkpoint-work claim",
        frozenset({"Claimed+limited", "CheckpointClaimed+limited"}),
    ),
    Profile(
        "time",
        replace(SMALLEST_BOUNDS, owners=2, max_generation=2, ttl_steps=2),
        "a TTL of two clock steps: renew and re-entry extend expiry, half-expired leases",
        frozenset({"acquire", "reclaim", "renew", "release", "expire", "advance"}),
    ),
    Profile(
        "exact-queue",
        replace(SMALLEST_BOUNDS, batches=4, max_head_revision=0, exact_claims=1),
        "exact-by-ids claims over every slot range: bypassing earlier work, join runs by ids, "
        "rejected lists (a command, a deleted or held row, an exclusive head with followers)",
        frozenset({"claim_work_by_ids"}),
    ),
    Profile(
        "exact-checkpoint",
        replace(SMALLEST_BOUNDS, batches=2, inputs=2, max_head_revision=0, exact_claims=1),
        "checkpoint-work claims: inputs and turn work together, either alone, the read-only "
        "probe answering NoClaim before the fence check",
        frozenset({"claim_checkpoint_work"}),
    ),
    Profile(
        "commits",
        replace(
            SMALLEST_BOUNDS, owners=2, max_generation=2, max_head_revision=2, head_cas=1, turns=1
        ),
        "head CAS and turn-commit stamps: stale expected revisions, a turn re-committed "
        "(same content: the recorded result, even by another owner or after expiry; other "
        "content: RuntimeTurnCommitConflict)",
        frozenset({"commit_turn", "commit_cas"}),
    ),
    Profile(
        "multi-cancel",
        replace(SMALLEST_BOUNDS, inputs=2, multi_cancel=1),
        "cancel calls with two targets (the same row twice, claimed, accepted, completed, "
        "vacuumed rows)",
        frozenset({"cancel_inputs"}),
    ),
    Profile(
        "sessions",
        replace(SMALLEST_BOUNDS, owners=2, second_session=1),
        "a second session beside session-0: its own lease and batch, claimed and committed "
        "while session-0 works (isolation both ways, cancels and a reclaim naming the other "
        "session's rows, one source key in both sessions, the store's one head bound to the "
        "first committing session)",
        frozenset(
            {
                "s1_acquire",
                "s1_enqueue",
                "s1_claim",
                "s1_commit",
                "s1_cancel_batch",
                "s1_cancel_input",
                "cancel_s1_batch",
                "reclaim_observing_s1",
                "enqueue_input",
                "acquire",
                "release",
                "enqueue_batch",
                "claim_command",
                "claim_work",
                "cancel_batch",
                "SessionBindingMismatch",
            }
        ),
    ),
    Profile(
        "session-inputs",
        replace(SMALLEST_BOUNDS, batches=2, second_session=2),
        "session-1's input under session-0 slot i0's source key, enqueued before and after "
        "session-0's (keys are per session), session-0's cancel of it, and by-ids claims of "
        "either session listing the other's batch: each finds nothing of the other session",
        frozenset(
            {
                "s1_enqueue_input",
                "cancel_s1_input",
                "s1_claim_by_ids",
                "claim_s1_batch_by_ids",
                "enqueue_input",
            }
        ),
    ),
    Profile(
        "source-replay",
        replace(SMALLEST_BOUNDS, batches=2, max_claims_per_row=2, source_replay=1),
        "a slot's source key replayed after its batch was deleted or its input vacuumed: a new "
        "row, claimed again under a claim id that does not repeat the old row's",
        frozenset(
            {
                "replay_batch",
                "replay_input",
                "claim_command",
                "claim_work",
                "claim_next_inputs",
                "cancel_batch",
                "commit",
            }
        ),
    ),
    Profile(
        "delayed",
        replace(SMALLEST_BOUNDS, batches=2, ttl_steps=2, delayed_work=1),
        "work enqueued with available_at one clock step ahead: not claimed, not gating the "
        "queue head, until the clock has moved",
        frozenset(
            {
                "enqueue_batch_later",
                "claim_command",
                "claim_work",
                "advance",
                "expire",
                "cancel_batch",
            }
        ),
    ),
    Profile(
        "outbox",
        replace(SMALLEST_BOUNDS, batches=3, max_head_revision=2, outbox=1),
        "commits whose outbox enqueues a command, a wake or an after-commit join batch in the "
        "same transaction (source-key idempotent; nothing enqueued when the commit fails), "
        "then claimed under their delivery and slot policies",
        frozenset({"commit_outbox", "claim_work", "claim_command"}),
    ),
    Profile(
        "bad-requests",
        replace(SMALLEST_BOUNDS, max_incarnation=1, inputs=2, bad_requests=1),
        "forged and malformed requests: fences, lease completions, observations, claims and "
        "commit completions the store never handed out, zero and negative limits, blank ids, "
        "unknown wire strings, malformed drafts; each refused, changing nothing",
        frozenset(BAD_REQUEST_ACTIONS),
    ),
    Profile(
        "bad-request-runs",
        replace(SMALLEST_BOUNDS, batches=4, max_head_revision=0, bad_requests=1),
        "forged completions of a queue claim holding a join run of two rows (a list leaving "
        "one row out); malformed claims while turn work is ready",
        frozenset({"forged_work_commit", "bad_request"}),
    ),
    Profile(
        "bad-request-inputs",
        replace(SMALLEST_BOUNDS, inputs=3, max_head_revision=0, bad_requests=1),
        "forged completions of an input claim holding both active-turn inputs: a list "
        "leaving one input out",
        frozenset({"forged_input_commit"}),
    ),
)

#: Bounds of the seed scenarios as traces (stepped through the model, not explored).
SCENARIO_BOUNDS = Bounds(
    owners=2,
    max_incarnation=1,
    batches=2,
    inputs=3,
    max_generation=2,
    max_claims_per_row=1,
    max_head_revision=2,
)

#: Declared (action, outcome) pairs no state of any bound reaches, and why.
UNREACHABLE_BY_DESIGN: dict[tuple[str, str], str] = {
    ("commit_stale", "Committed"): (
        "a stale completion token never matches the row's claim token, so the queue check "
        "always fails first"
    ),
    ("commit_stale", "TurnInputClaimSuperseded"): (
        "the queue completion is validated before the input completion and always fails"
    ),
}


def profile(name: str) -> Profile:
    for candidate in PROFILES:
        if candidate.name == name:
            return candidate
    known = ", ".join(p.name for p in PROFILES)
    raise KeyError(f"unknown profile {name!r}; known profiles: {known}")


@dataclass(frozen=True)
class MachineProfile:
    """A named bound configuration of the composed machine model (``machine_model.py``)."""

    name: str
    bounds: MachineBounds
    purpose: str


MACHINE_PROFILES: tuple[MachineProfile, ...] = (
    MachineProfile(
        "machine-lease",
        MachineBounds(
            owners=2,
            max_incarnation=0,
            batches=1,
            inputs=1,
            max_generation=2,
            max_claims_per_row=1,
            max_head_revision=0,
            max_turns=2,
        ),
        "two owners: busy, takeover of a crashed holder, expiry, renewal, lease loss in every "
        "phase, store failures (no commit applies: head revision 0)",
    ),
    MachineProfile(
        "machine-turn",
        MachineBounds(
            owners=1,
            max_incarnation=0,
            batches=2,
            inputs=2,
            max_generation=2,
            max_claims_per_row=1,
            max_head_revision=3,
            max_turns=1,
        ),
        "one turn: a session command drained first, idle and checkpoint claims, interrupts, "
        "deferral of active input, failed commits",
    ),
    MachineProfile(
        "machine-turns",
        MachineBounds(
            owners=1,
            max_incarnation=0,
            batches=1,
            inputs=2,
            max_generation=2,
            max_claims_per_row=1,
            max_head_revision=3,
            max_turns=2,
        ),
        "two turns: deferred active input taken by the next turn, same-generation re-entry "
        "after a failure, stranded claims superseded",
    ),
)


def machine_profile(name: str) -> MachineProfile:
    for candidate in MACHINE_PROFILES:
        if candidate.name == name:
            return candidate
    known = ", ".join(p.name for p in MACHINE_PROFILES)
    raise KeyError(f"unknown machine profile {name!r}; known profiles: {known}")
