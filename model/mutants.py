"""Seeded bugs: broken variants of the kernel model, each made by rewriting the model data.

Every mutant takes the correct model and rewrites some of its expressions or cases (never the
builder code), names the invariant it is expected to break, and says in one line what the
broken kernel would do. ``tests/model/test_mutants.py`` checks that exploration finds each one
with a counterexample path while the unmutated model has none; this is what shows that the
invariants can fail.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from .dsl import (
    FALSE,
    TRUE,
    And,
    Case,
    Const,
    Eq,
    Expr,
    IllFormedModelError,
    Le,
    Model,
    Not,
    Or,
    Param,
    Select,
    Var,
    ite,
    replace_all,
    transform,
)
from .kernel_model import DEFAULT_BOUNDS, SMALLEST_BOUNDS, Bounds, KernelBuilder, build_model


class MutationError(IllFormedModelError):
    """A mutation did not find the model fragment it rewrites (the model changed shape)."""


@dataclass(frozen=True)
class Mutant:
    """A named broken variant of the kernel model."""

    name: str
    description: str
    expected_invariant: str
    build: Callable[[Bounds], Model]
    bounds: Bounds | None = None
    """Bounds at which the bug shows and its witness trace is made (None: the defaults)."""


def _rewrite(model: Model, action: str, fn: Callable[[Expr], Expr | None]) -> Model:
    """Apply ``fn`` (see ``dsl.transform``) to every expression of one action; it must hit."""
    original = model.action(action)
    hits = 0

    def counting(e: Expr) -> Expr | None:
        nonlocal hits
        replaced = fn(e)
        if replaced is not None:
            hits += 1
        return replaced

    mutated = original.map_exprs(lambda e: transform(e, counting))
    if hits == 0:
        raise MutationError(f"the mutation found nothing to rewrite in {action}")
    return model.with_action(mutated)


def _drop_cases(model: Model, action: str, tag: str) -> Model:
    original = model.action(action)
    kept = [c for c in original.cases if c.outcome.tag != tag]
    if len(kept) == len(original.cases):
        raise MutationError(f"{action} has no case with outcome {tag}")
    return model.with_action(original.replace(cases=kept))


def _replace_case(model: Model, action: str, tag: str, make: Callable[[Case], Case]) -> Model:
    original = model.action(action)
    found = [c for c in original.cases if c.outcome.tag == tag]
    if not found:
        raise MutationError(f"{action} has no case with outcome {tag}")
    cases = [make(c) if c.outcome.tag == tag else c for c in original.cases]
    return model.with_action(original.replace(cases=cases))


def _is_select_of(expr: Expr, variable: str) -> bool:
    return isinstance(expr, Select) and expr.map == Var(variable)


# -- the mutants -----------------------------------------------------------------------------


def renew_bumps_fencing_token(bounds: Bounds) -> Model:
    """Renew mints generation + 1 for the caller instead of keeping the generation."""
    model = build_model(bounds)
    o = Param("o")
    lease_gen = Var("lease_gen")

    def bump(case: Case) -> Case:
        return Case(
            case.condition,
            {
                **dict(case.updates),
                "lease_gen": lease_gen + 1,
                "owner_fence": Var("owner_fence").set(o, lease_gen + 1),
            },
            case.outcome,
        )

    model = _replace_case(model, "renew", "Ok", bump)
    renew = model.action("renew")
    guarded = renew.replace(guard=renew.guard & (lease_gen < bounds.max_generation))
    return model.with_action(guarded)


def claim_ignores_command_gate(bounds: Bounds) -> Model:
    """A turn-work claim treats every head row as turn work, so a ready command is taken."""
    model = build_model(bounds)
    builder = KernelBuilder(bounds)

    def drop_class_check(e: Expr) -> Expr | None:
        if (
            isinstance(e, Eq)
            and isinstance(e.lhs, Select)
            and e.lhs.map == builder.work_class
            and e.rhs == Const("turn_work")
        ):
            return TRUE
        return None

    return _rewrite(model, "claim_work", drop_class_check)


def commit_keeps_lease(bounds: Bounds) -> Model:
    """A releasing commit forgets the fence but leaves the lease row live."""
    model = build_model(bounds)
    lease_columns = {"lease_holder", "lease_holder_inc", "lease_live", "lease_ttl_left"}

    def keep(case: Case) -> Case:
        updates = [(k, v) for k, v in case.updates if k not in lease_columns]
        return Case(case.condition, updates, case.outcome)

    return _replace_case(model, "commit", "Committed", keep)


def _is_input_live_claim(e: Expr) -> bool:
    """Matches ``input_live_claimed(x)`` as the builder writes it, for any row expression."""
    if not isinstance(e, And) or len(e.args) != 3:
        return False
    first, second, third = e.args
    return (
        isinstance(first, Not)
        and isinstance(first.arg, Eq)
        and _is_select_of(first.arg.lhs, "input_claim")
        and second == Var("lease_live")
        and isinstance(third, Eq)
        and third.lhs == Var("lease_gen")
        and _is_select_of(third.rhs, "input_claim_gen")
    )


def cancel_claimed_input_succeeds(bounds: Bounds) -> Model:
    """Cancel ignores live claims: a pending row claimed by the live generation is cancelled."""
    model = build_model(bounds)
    return _rewrite(model, "cancel_input", lambda e: FALSE if _is_input_live_claim(e) else None)


def commit_skips_claim_check(bounds: Bounds) -> Model:
    """Commit skips the completion ownership check (claim id and token of every named row)."""
    model = build_model(bounds)
    builder = KernelBuilder(bounds)
    o = Param("o")
    checks = (
        builder.queue_completion_ok(o),
        builder.input_completion_ok(o),
        builder.stale_completion_matches(o),
    )

    def skip_checks(e: Expr) -> Expr:
        for check in checks:
            e = replace_all(e, check, TRUE)
        return e

    for action in ("commit", "commit_stale"):
        original = model.action(action)
        mutated = original.map_exprs(skip_checks)
        if mutated == original:
            raise MutationError(f"no completion check found in {action}")
        model = model.with_action(mutated)
    return model


def reclaim_ignores_observed_holder(bounds: Bounds) -> Model:
    """Reclaim takes over any provably dead holder, whatever generation the claimant observed."""
    model = build_model(bounds)
    pattern = Eq(Param("observed"), Var("lease_gen"))
    return _rewrite(model, "reclaim", lambda e: TRUE if e == pattern else None)


def _is_claimable_check(e: Expr) -> bool:
    """Matches ``claim == 0 or claim_gen != g`` of either lane."""
    if not isinstance(e, Or) or len(e.args) != 2:
        return False
    first, second = e.args
    return (
        isinstance(first, Eq)
        and (_is_select_of(first.lhs, "batch_claim") or _is_select_of(first.lhs, "input_claim"))
        and first.rhs == Const(0)
        and isinstance(second, Not)
        and isinstance(second.arg, Eq)
        and (
            _is_select_of(second.arg.lhs, "batch_claim_gen")
            or _is_select_of(second.arg.lhs, "input_claim_gen")
        )
    )


def claim_allows_self_steal(bounds: Bounds) -> Model:
    """Claims treat rows held by the caller's own generation as claimable."""
    model = build_model(bounds)
    for action in ("claim_command", "claim_work", "claim_next_inputs", "claim_active_inputs"):
        model = _rewrite(model, action, lambda e: TRUE if _is_claimable_check(e) else None)
    return model


def release_ignores_fence(bounds: Bounds) -> Model:
    """Release clears the row whoever holds it (no compare-and-swap on the completion)."""
    model = build_model(bounds)
    release = model.action("release")
    cases = list(release.cases)
    first = cases[0]
    cases[0] = Case(TRUE, first.updates, first.outcome)
    return model.with_action(release.replace(cases=cases))


def cancel_batch_ignores_live_claim(bounds: Bounds) -> Model:
    """Cancel deletes a batch even while its claim is live."""
    model = build_model(bounds)
    builder = KernelBuilder(bounds)
    live = builder.batch_live_claimed(Param("b"))
    cancel = model.action("cancel_batch")
    cases = [c for c in cancel.cases if c.condition != live]
    if len(cases) == len(cancel.cases):
        raise MutationError("cancel_batch has no live-claim case")
    return model.with_action(cancel.replace(cases=cases))


def vacuum_removes_pending_inputs(bounds: Bounds) -> Model:
    """Vacuum also deletes pending (non-terminal) inputs."""
    model = build_model(bounds)

    def widen(e: Expr) -> Expr | None:
        if (
            isinstance(e, Eq)
            and e.rhs == Const("cancelled")
            and _is_select_of(e.lhs, "input_state")
        ):
            return Not(Eq(e.lhs, Const("absent")))
        return None

    return _rewrite(model, "vacuum", widen)


def renew_keeps_expiry(bounds: Bounds) -> Model:
    """A successful renew keeps the lease's old expiry instead of a full TTL from now."""
    model = build_model(bounds)

    def keep(case: Case) -> Case:
        updates = [(k, v) for k, v in case.updates if k != "lease_ttl_left"]
        if len(updates) == len(case.updates):
            raise MutationError("renew's Ok case does not set the lease's expiry")
        return Case(case.condition, updates, case.outcome)

    return _replace_case(model, "renew", "Ok", keep)


def by_ids_claims_unlisted_rows(bounds: Bounds) -> Model:
    """An exact-by-ids claim extends past the last listed slot (it takes every later row)."""
    model = build_model(bounds)
    last = Param("last")

    def widen(e: Expr) -> Expr | None:
        if isinstance(e, Le) and e.rhs == last and e.lhs != Param("b"):
            return TRUE
        return None

    return _rewrite(model, "claim_work_by_ids", widen)


def turn_stamp_reapplies(bounds: Bounds) -> Model:
    """A stamped commit ignores the turn's record: a re-commit applies again."""
    model = build_model(bounds)
    commit = model.action("commit_turn")
    cases = list(commit.cases)
    if [c.outcome.tag for c in cases[:2]] != ["RuntimeTurnCommitConflict", "Committed"]:
        raise MutationError("commit_turn does not start with its two stamp cases")
    # without the stamp cases a re-commit applies, so it needs a head revision to spend
    room = Var("head_revision") < bounds.max_head_revision
    guard = commit.guard & (room | ~KernelBuilder(bounds).valid_fence(Param("o")))
    return model.with_action(commit.replace(cases=cases[2:], guard=guard))


def commit_cas_ignores_expected(bounds: Bounds) -> Model:
    """A commit with an expected head revision applies whatever the current revision."""
    model = _drop_cases(build_model(bounds), "commit_cas", "HeadRevisionConflict")
    commit = model.action("commit_cas")
    room = Var("head_revision") < bounds.max_head_revision
    guard = commit.guard & (room | ~KernelBuilder(bounds).valid_fence(Param("o")))
    return model.with_action(commit.replace(guard=guard))


def session1_acquire_expires_session0(bounds: Bounds) -> Model:
    """A session-1 acquisition lapses session-0's lease too (a lease table keyed without the
    session: acquiring one session's row overwrites the other's). A seeded bug of the second
    session switches it on at any bounds."""
    model = build_model(replace(bounds, second_session=1))

    def crossing(case: Case) -> Case:
        return Case(
            case.condition,
            {**dict(case.updates), "lease_live": FALSE, "lease_ttl_left": Const(0)},
            case.outcome,
        )

    return _replace_case(model, "s1_acquire", "Acquired", crossing)


def replayed_input_keeps_rewrite(bounds: Bounds) -> Model:
    """The new row a replayed source key enqueues after vacuum inherits the vacuumed row's
    ingress rewrite (a store that reuses the old row's record instead of the draft's ingress).
    A seeded bug of source-key replay switches it on at any bounds."""
    model = build_model(replace(bounds, source_replay=1))

    def keep(case: Case) -> Case:
        updates = {k: v for k, v in case.updates if k != "input_rewritten"}
        return Case(case.condition, updates, case.outcome)

    return _replace_case(model, "replay_input", "Enqueued", keep)


def claim_ignores_available_at(bounds: Bounds) -> Model:
    """Queued-work claims take rows whose available_at is still ahead (a store that filters
    claimable rows without the clock). A seeded bug of delayed work switches it on."""
    model = build_model(replace(bounds, delayed_work=1))

    def drop_wait(e: Expr) -> Expr | None:
        if isinstance(e, Eq) and _is_select_of(e.lhs, "batch_wait") and e.rhs == Const(0):
            return TRUE
        return None

    for action in ("claim_command", "claim_work"):
        model = _rewrite(model, action, drop_wait)
    return model


def outbox_enqueued_on_failed_commit(bounds: Bounds) -> Model:
    """A commit refused for its expired fence still enqueues its outbox batch (a store that
    writes the outbox before validating, or does not roll it back). A seeded bug of the outbox
    switches it on at any bounds."""
    model = build_model(replace(bounds, outbox=1))
    b = Param("b")
    status = Var("batch_status")

    def enqueue(case: Case) -> Case:
        return Case(
            case.condition,
            {
                **dict(case.updates),
                "batch_status": status.set(b, ite(status[b].eq("absent"), "queued", status[b])),
            },
            case.outcome,
        )

    return _replace_case(model, "commit_outbox", "SessionExecutionLeaseExpired", enqueue)


#: Bounds of the outbox bug: one owner, two batch slots, a commit to spend.
OUTBOX_BOUNDS = replace(SMALLEST_BOUNDS, batches=2, outbox=1)


#: Bounds of the delayed-work bug: one owner, a TTL of two clock steps.
DELAYED_BOUNDS = replace(SMALLEST_BOUNDS, batches=2, ttl_steps=2, delayed_work=1)


#: Bounds of the source-key replay bug: an active-turn input deferred, cancelled, vacuumed.
REPLAY_BOUNDS = replace(SMALLEST_BOUNDS, inputs=2, source_replay=1)


#: Bounds of the session-isolation bug: one owner and a second session.
SESSION_BOUNDS = replace(SMALLEST_BOUNDS, max_head_revision=0, second_session=1)

MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        "renew_bumps_fencing_token",
        "renew mints a new generation for the live holder",
        "generation_step",
        renew_bumps_fencing_token,
    ),
    Mutant(
        "claim_ignores_command_gate",
        "turn-work claims take a leading session command",
        "command_gate",
        claim_ignores_command_gate,
    ),
    Mutant(
        "commit_keeps_lease",
        "a releasing commit does not release the lease row",
        "live_lease_known_to_holder",
        commit_keeps_lease,
    ),
    Mutant(
        "cancel_claimed_input_succeeds",
        "cancelling a live-claimed pending input succeeds",
        "claimed_input_cancelled",
        cancel_claimed_input_succeeds,
    ),
    Mutant(
        "commit_skips_claim_check",
        "commit completes claims whose rows were superseded (or with a stale token)",
        "completion_mismatch",
        commit_skips_claim_check,
    ),
    Mutant(
        "reclaim_ignores_observed_holder",
        "reclaim of a live lease ignores which holder the claimant observed",
        "live_takeover",
        reclaim_ignores_observed_holder,
    ),
    Mutant(
        "claim_allows_self_steal",
        "a generation re-claims rows it already holds",
        "self_steal",
        claim_allows_self_steal,
    ),
    Mutant(
        "release_ignores_fence",
        "release clears the lease row without checking the completion",
        "release_foreign",
        release_ignores_fence,
    ),
    Mutant(
        "cancel_batch_ignores_live_claim",
        "cancel deletes a live-claimed batch",
        "live_batch_removed",
        cancel_batch_ignores_live_claim,
    ),
    Mutant(
        "vacuum_removes_pending_inputs",
        "vacuum deletes inputs that are not tombstones",
        "input_transition",
        vacuum_removes_pending_inputs,
    ),
    Mutant(
        "renew_keeps_expiry",
        "a successful renew does not move the lease's expiry (a renewed lease lapses early)",
        "short_extension",
        renew_keeps_expiry,
    ),
    Mutant(
        "by_ids_claims_unlisted_rows",
        "an exact-by-ids claim also takes the rows after the last listed one",
        "unlisted_claim",
        by_ids_claims_unlisted_rows,
        Bounds(
            owners=1,
            max_incarnation=0,
            batches=4,
            inputs=1,
            max_generation=1,
            max_claims_per_row=1,
            max_head_revision=0,
            ttl_steps=1,
            head_cas=0,
            turns=0,
        ),
    ),
    Mutant(
        "turn_stamp_reapplies",
        "a stamped re-commit of a committed turn applies again instead of answering the record",
        "turn_reapplied",
        turn_stamp_reapplies,
    ),
    Mutant(
        "commit_cas_ignores_expected",
        "a commit with an expected head revision applies over another revision",
        "head_cas",
        commit_cas_ignores_expected,
    ),
    Mutant(
        "session1_acquire_expires_session0",
        "acquiring session-1's lease lapses session-0's live lease (leases keyed without the "
        "session)",
        "session_isolation",
        session1_acquire_expires_session0,
        SESSION_BOUNDS,
    ),
    Mutant(
        "replayed_input_keeps_rewrite",
        "the new row of a source key replayed after vacuum keeps the old row's ingress rewrite",
        "deferral_rewrites_only_active_inputs",
        replayed_input_keeps_rewrite,
        REPLAY_BOUNDS,
    ),
    Mutant(
        "claim_ignores_available_at",
        "queued-work claims take a row whose available_at is still ahead of the clock",
        "waiting_work_unclaimed",
        claim_ignores_available_at,
        DELAYED_BOUNDS,
    ),
    Mutant(
        "outbox_enqueued_on_failed_commit",
        "a commit refused for its expired fence still enqueues its outbox batch",
        "outbox_atomic",
        outbox_enqueued_on_failed_commit,
        OUTBOX_BOUNDS,
    ),
)


def mutant(name: str) -> Mutant:
    for candidate in MUTANTS:
        if candidate.name == name:
            return candidate
    raise MutationError(f"unknown mutant {name}; known: {', '.join(m.name for m in MUTANTS)}")


def build_mutant(name: str, bounds: Bounds = DEFAULT_BOUNDS) -> Model:
    """The named broken model at ``bounds``."""
    found = mutant(name)
    model = found.build(bounds)
    return model.replace(name=f"{model.name}[{found.name}]")
