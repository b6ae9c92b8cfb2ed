"""The seed's nine Runtime Scenarios written in the trace vocabulary.

Each entry is the scenario's key in the runtime-scenario coverage index, a sentence saying
how the scenario maps onto the abstract system, and its action sequence. The expected
outcomes and states are not written here: :func:`~lashspec.conformance.modeltrace.trace_of`
takes them from the model, and the tests check the outcomes the scenario is about.

Catalogue (docs/trace-format.md §1): ``b0`` is a RefreshToolCatalog session command, ``b1``
a ProcessWake at the earliest safe boundary; ``i0`` a next-turn input, ``i1`` an active-turn
input for ``after_work``, ``i2`` one for ``before_completion``. Slots are enqueued in order,
so a scenario that needs only ``b1`` enqueues ``b0`` first and drains it.
"""

from __future__ import annotations

from typing import Any

Steps = tuple[tuple[str, dict[str, Any]], ...]


def _a(action: str, **picks: Any) -> tuple[str, dict[str, Any]]:
    return (action, picks)


SEED_SCENARIO_TRACES: dict[str, tuple[str, Steps]] = {
    "command_before_turn": (
        "a ready session command blocks turn work until it is claimed and committed; a stale "
        "queue completion is rejected; the final commit releases the lease",
        (
            _a("enqueue_batch", b=0),
            _a("enqueue_batch", b=1),
            _a("acquire", o=0),
            _a("claim_work", o=0, boundary="idle"),
            _a("claim_command", o=0),
            _a("commit", o=0, release=False, defer=False),
            _a("claim_work", o=0, boundary="idle"),
            _a("commit_stale", o=0),
            _a("commit", o=0, release=True, defer=False),
        ),
    ),
    "command_only": (
        "a queue holding only a command: the command is claimed, no turn work follows, the "
        "commit completes the command",
        (
            _a("enqueue_batch", b=0),
            _a("acquire", o=0),
            _a("claim_command", o=0),
            _a("claim_work", o=0, boundary="idle"),
            _a("commit", o=0, release=True, defer=False),
        ),
    ),
    "queue_keeps_input": (
        "claiming turn work leaves a pending next-turn input pending and unclaimed",
        (
            _a("enqueue_batch", b=0),
            _a("enqueue_batch", b=1),
            _a("enqueue_input", i=0),
            _a("acquire", o=0),
            _a("claim_command", o=0),
            _a("commit", o=0, release=False, defer=False),
            _a("claim_work", o=0, boundary="idle"),
        ),
    ),
    "active_checkpoint_wake": (
        "a ProcessWake is claimable at the active-turn checkpoint boundary",
        (
            _a("enqueue_batch", b=0),
            _a("enqueue_batch", b=1),
            _a("acquire", o=0),
            _a("claim_command", o=0),
            _a("commit", o=0, release=False, defer=False),
            _a("claim_work", o=0, boundary="active_turn_checkpoint"),
        ),
    ),
    "turn_input_completion": (
        "a next-turn input is claimed, hidden from pending lists, and completed by the commit",
        (
            _a("enqueue_input", i=0),
            _a("acquire", o=0),
            _a("claim_next_inputs", o=0),
            _a("commit", o=0, release=True, defer=False),
        ),
    ),
    "observation_replay": (
        "replaying the same source key returns the original input; changed content conflicts; "
        "the original is claimed and completed",
        (
            _a("enqueue_input", i=0),
            _a("replay_input", i=0),
            _a("conflict_input", i=0),
            _a("acquire", o=0),
            _a("claim_next_inputs", o=0),
            _a("commit", o=0, release=True, defer=False),
        ),
    ),
    "checkpoint_redrive_cancel": (
        "cancelled inputs stay cancelled; an interrupted commit defers the active input to the "
        "next turn; cancelling it afterwards leaves nothing to claim",
        (
            _a("enqueue_input", i=0),
            _a("enqueue_input", i=1),
            _a("enqueue_input", i=2),
            _a("cancel_input", i=2),
            _a("cancel_input", i=0),
            _a("acquire", o=0),
            _a("commit", o=0, release=False, defer=True),
            _a("cancel_input", i=1),
            _a("claim_next_inputs", o=0),
            _a("commit", o=0, release=True, defer=False),
        ),
    ),
    "lease_release_fault": (
        "a commit with a fence the lease row no longer honours is rejected (the vocabulary's "
        "release forgets the fence, so the released lease is reached by expiry and another "
        "owner's acquisition)",
        (
            _a("acquire", o=0),
            _a("expire"),
            _a("acquire", o=1),
            _a("commit", o=0, release=True, defer=False),
        ),
    ),
    "dead_lease_reclaim": (
        "a dead holder's lease is reclaimed with a current observation; a stale observation "
        "of the old holder is refused as Busy",
        (
            _a("acquire", o=0),
            _a("crash", o=0),
            _a("acquire", o=1),
            _a("reclaim", o=1, observed=1),
            _a("restart", o=0),
            _a("reclaim", o=0, observed=1),
        ),
    ),
}
