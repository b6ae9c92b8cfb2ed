"""Seeded bugs of the composed machine model: each rewrites the machine's rule table (data) or
the built model's expressions, never the builder code.

Every mutant names the invariant it is expected to break and says in one line what the broken
kernel would do. ``tests/model/test_machine_model.py`` checks that exploration finds each one
with a shortest counterexample and that z3 BMC finds a counterexample of the same length,
while the unmutated model has none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from .dsl import TRUE, Model, Param, replace_all
from .kernel_model import KernelBuilder
from .machine_model import (
    DEFAULT_MACHINE_BOUNDS,
    RULES,
    MachineBounds,
    Rule,
    build_machine_model,
)
from .mutants import MutationError


@dataclass(frozen=True)
class MachineMutant:
    """A named broken variant of the machine model and the bounds at which it shows."""

    name: str
    description: str
    expected_invariant: str
    build: Callable[[MachineBounds], Model]
    bounds: MachineBounds


def _edit_rules(
    phase: str, event: str, edit: Callable[[Rule], Rule | None], guard: str | None = None
) -> tuple[Rule, ...]:
    """The rule table with the row(s) for (phase, event[, guard]) edited (None drops it)."""
    out: list[Rule] = []
    hits = 0
    for rule in RULES:
        if rule.phase == phase and rule.event == event and (guard is None or rule.guard == guard):
            hits += 1
            edited = edit(rule)
            if edited is not None:
                out.append(edited)
        else:
            out.append(rule)
    if hits == 0:
        raise MutationError(f"no rule {phase} x {event} [{guard}] to mutate")
    return tuple(out)


def failed_turn_commit_releases_lease(bounds: MachineBounds) -> Model:
    rules = _edit_rules(
        "Committing", "CommitFailed", lambda r: replace(r, effects=("ReleaseLease",))
    )
    return build_machine_model(bounds, rules)


def lease_loss_keeps_claiming(bounds: MachineBounds) -> Model:
    rules = _edit_rules(
        "ClaimingInputs",
        "LeaseLost",
        lambda r: replace(
            r, target="ClaimingTurnWork", effects=("ClaimQueuedWork",), update="none", outcome=""
        ),
    )
    return build_machine_model(bounds, rules)


def interrupted_turn_keeps_checkpoint_claims(bounds: MachineBounds) -> Model:
    rules = _edit_rules(
        "Interrupting",
        "CheckpointWorkClaimed",
        lambda r: replace(r, effects=("CommitTurn",), update="join"),
    )
    return build_machine_model(bounds, rules)


def turn_commit_forgets_checkpoint_claims(bounds: MachineBounds) -> Model:
    rules = _edit_rules(
        "ClaimingCheckpointWork",
        "CheckpointWorkClaimed",
        lambda r: replace(r, update="clear_checkpoint"),
        guard="claimed",
    )
    return build_machine_model(bounds, rules)


def commands_not_drained_first(bounds: MachineBounds) -> Model:
    rules = _edit_rules(
        "InspectingQueue", "PendingWorkInspected", lambda r: None, guard="commands_first"
    )
    return build_machine_model(bounds, rules)


def reclaim_retried(bounds: MachineBounds) -> Model:
    rules = _edit_rules(
        "ReclaimingLease",
        "LeaseBusy",
        lambda r: replace(
            r, target="ReclaimingLease", effects=("ReclaimLease",), update="reclaim", outcome=""
        ),
    )
    return build_machine_model(bounds, rules)


def renew_during_checkpoint_write(bounds: MachineBounds) -> Model:
    extra = Rule("WritingCheckpoint", "RenewDue", "RenewingLease", ("RenewLease",))
    return build_machine_model(bounds, (*RULES, extra))


def lease_loss_keeps_claims(bounds: MachineBounds) -> Model:
    rules = _edit_rules(
        "ClaimingCheckpointWork", "LeaseLost", lambda r: replace(r, effects=("StopTurn",))
    )
    return build_machine_model(bounds, rules)


def store_skips_fence_check(bounds: MachineBounds) -> Model:
    """The store half: fenced calls answered without validating the fence."""
    model = build_machine_model(bounds)
    fence = KernelBuilder.valid_fence(Param("o"))
    step = model.action("store_step")
    mutated = step.map_exprs(lambda e: replace_all(e, fence, TRUE))
    if mutated == step:
        raise MutationError("store_step has no fence check to drop")
    return model.with_action(mutated)


_LEASE = MachineBounds(
    owners=2,
    max_incarnation=0,
    batches=1,
    inputs=1,
    max_generation=2,
    max_claims_per_row=1,
    max_head_revision=0,
    max_turns=2,
)
_ONE = MachineBounds(
    owners=1,
    max_incarnation=0,
    batches=1,
    inputs=1,
    max_generation=1,
    max_claims_per_row=1,
    max_head_revision=1,
    max_turns=1,
)


def _b(base: MachineBounds, **changes: int) -> MachineBounds:
    return replace(base, **changes)


MACHINE_MUTANTS: tuple[MachineMutant, ...] = (
    MachineMutant(
        "failed_turn_commit_releases_lease",
        "a turn commit failing for a reason other than lease loss releases the lease",
        "failed_leftover",
        failed_turn_commit_releases_lease,
        _ONE,
    ),
    MachineMutant(
        "lease_loss_keeps_claiming",
        "after lease loss at the input claim the machine goes on claiming turn work",
        "effect_after_loss",
        lease_loss_keeps_claiming,
        _ONE,
    ),
    MachineMutant(
        "interrupted_turn_keeps_checkpoint_claims",
        "work a checkpoint claim grants after an interrupt joins the interrupted turn",
        "interrupted_took_work",
        interrupted_turn_keeps_checkpoint_claims,
        _b(_ONE, batches=2, max_head_revision=1),
    ),
    MachineMutant(
        "turn_commit_forgets_checkpoint_claims",
        "checkpoint claims are delivered but not recorded, so the turn commit leaves them",
        "unsettled_claims",
        turn_commit_forgets_checkpoint_claims,
        _b(_ONE, batches=2, max_head_revision=2),
    ),
    MachineMutant(
        "commands_not_drained_first",
        "next-turn input always goes first, even behind an earlier session command",
        "command_order",
        commands_not_drained_first,
        _ONE,
    ),
    MachineMutant(
        "reclaim_retried",
        "a reclaim answered Busy is retried instead of ending the cycle",
        "phase_order",
        reclaim_retried,
        _b(_LEASE, max_incarnation=1, max_turns=3),
    ),
    MachineMutant(
        "renew_during_checkpoint_write",
        "the renewal timer issues RenewLease while the checkpoint write is outstanding",
        "two_outstanding",
        renew_during_checkpoint_write,
        _ONE,
    ),
    MachineMutant(
        "lease_loss_keeps_claims",
        "lease loss at the checkpoint claim stops the turn without handing its claims back",
        "unsettled_claims",
        lease_loss_keeps_claims,
        # an active-turn input (i1) to claim: with nothing to claim, an expired lease answers
        # the checkpoint claim with nothing rather than lease loss
        _b(_ONE, inputs=2),
    ),
    MachineMutant(
        "store_skips_fence_check",
        "the store answers fenced calls (commits included) without validating the fence",
        "stale_commit",
        store_skips_fence_check,
        _b(_ONE, max_generation=2),
    ),
)


def machine_mutant(name: str) -> MachineMutant:
    for candidate in MACHINE_MUTANTS:
        if candidate.name == name:
            return candidate
    known = ", ".join(m.name for m in MACHINE_MUTANTS)
    raise MutationError(f"unknown machine mutant {name}; known: {known}")


def build_machine_mutant(name: str, bounds: MachineBounds | None = None) -> Model:
    """The named broken model at ``bounds`` (default: the mutant's own bounds)."""
    found = machine_mutant(name)
    model = found.build(bounds or found.bounds)
    return model.replace(name=f"{model.name}[{found.name}]")


__all__ = [
    "DEFAULT_MACHINE_BOUNDS",
    "MACHINE_MUTANTS",
    "MachineMutant",
    "build_machine_mutant",
    "machine_mutant",
]
