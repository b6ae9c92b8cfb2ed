"""The generated conformance suite: coverage, targeted traces, replay and minimisation."""

from __future__ import annotations

import gc
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from lashspec.conformance.broken_kernels import BROKEN_KERNELS, broken_memory_store_factory
from lashspec.conformance.generate import (
    GoalContext,
    Suite,
    edge_cover,
    first_enabled,
    generate_suite,
)
from lashspec.conformance.itf import Trace
from lashspec.conformance.kernel_adapter import KernelAdapter
from lashspec.conformance.minimize import ddmin, minimise_trace
from lashspec.conformance.modeltrace import ActionNotEnabled, ModelRunner, trace_of
from lashspec.conformance.promoted_traces import PROMOTED_TRACES
from lashspec.conformance.replay import kernel_target, replay_all, replay_trace
from lashspec.model.explore import explore
from lashspec.model.kernel_model import Bounds, build_model
from lashspec.model.mutants import MUTANTS
from lashspec.model.profiles import PROFILES, UNREACHABLE_BY_DESIGN


@pytest.fixture(scope="session")
def suite() -> Suite:
    return generate_suite()


def test_edge_cover_takes_every_reachable_goal() -> None:
    profile = PROFILES[0]
    result = explore(build_model(profile.bounds))
    context = GoalContext(result.compiled)
    covers, goals = edge_cover(result)
    assert goals == set(first_enabled(result, context))
    taken: set[Any] = set()
    runner = ModelRunner(profile.bounds)
    index = {(b.action, tuple(sorted(b.params.items()))): b.index for b in runner.compiled.bindings}
    for steps in covers:
        state = runner.initial()
        for action, picks in steps:
            binding = index[(action, tuple(sorted(picks.items())))]
            move = next(m for m in runner.compiled.successors(state) if m[0] == binding)
            taken.add(context.goal(state, binding, move[1]))
            state = move[2]
    assert taken == goals
    steps_total = sum(len(s) for s in covers)
    assert steps_total < 3 * len(goals), "the cover should not wander: fewer than 3 steps/goal"


def test_suite_covers_every_declared_outcome_except_the_documented_dead_cases(
    suite: Suite,
) -> None:
    assert set(suite.unreached_action_outcomes) == set(UNREACHABLE_BY_DESIGN)
    assert suite.unexplained_unreached == []
    error_tags = {
        o
        for _, o in suite.covered_action_outcomes
        if o.endswith(("Expired", "Superseded", "Conflict"))
    }
    assert error_tags == {
        "HeadRevisionConflict",
        "RuntimeTurnCommitConflict",
        "SessionExecutionLeaseExpired",
        "QueuedWorkClaimSuperseded",
        "TurnInputClaimSuperseded",
        "PendingTurnInputSourceKeyConflict",
    }


def test_suite_has_every_kind_of_targeted_trace(suite: Suite) -> None:
    kinds = suite.kinds()
    assert kinds["scenario"] == 9
    assert kinds["promoted"] == len(PROMOTED_TRACES) == 17
    assert kinds["witness"] == len(MUTANTS) == 18
    assert kinds["boundary"] == len(suite.boundaries) >= 10
    assert kinds["cover"] > 100
    assert len(suite.invariants) == 37  # 33, the extensions' four
    targeted = suite.targeted_invariants()
    assert set(targeted) <= set(suite.invariants)
    assert len(targeted) >= 29, f"untargeted: {set(suite.invariants) - set(targeted)}"


def _outcomes(trace: Trace) -> list[tuple[str, str]]:
    return [(s.action, str(s.outcome["tag"])) for s in trace.steps[1:]]


def test_seed_scenario_traces_show_the_behaviour_they_are_named_for(suite: Suite) -> None:
    by_id = {t.trace_id: t for t in suite.traces}
    gate = _outcomes(by_id["scenario-command_before_turn"])
    assert gate[3] == ("claim_work", "NoClaim"), "a ready command blocks turn work"
    assert ("commit_stale", "QueuedWorkClaimSuperseded") in gate
    reclaim = _outcomes(by_id["scenario-dead_lease_reclaim"])
    assert reclaim[-3:] == [("reclaim", "Acquired"), ("restart", "Ok"), ("reclaim", "Busy")]
    replay = _outcomes(by_id["scenario-observation_replay"])
    assert replay[1:3] == [
        ("replay_input", "Replayed"),
        ("conflict_input", "PendingTurnInputSourceKeyConflict"),
    ]
    redrive = by_id["scenario-checkpoint_redrive_cancel"]
    deferred = redrive.steps[7].state
    assert deferred["input_state"][1] == "deferred_next_turn" and deferred["input_rewritten"][1]
    fault = _outcomes(by_id["scenario-lease_release_fault"])
    assert fault[-1] == ("commit", "SessionExecutionLeaseExpired")


@pytest.mark.parametrize("backend", ["memory", "sqlite", "postgres"])
def test_the_whole_suite_replays_green(
    suite: Suite, backend: str, request: pytest.FixtureRequest
) -> None:
    dsn = request.getfixturevalue("postgres_dsn") if backend == "postgres" else None
    report = replay_all(suite.traces, kernel_target(backend, dsn=dsn))
    assert report.ok, report.report()
    assert report.actions == suite.steps


def test_sqlite_replay_removes_its_scratch_databases(
    suite: Suite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database file per trace lives in a scratch folder that goes with the target."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    target = kernel_target("sqlite")
    (folder,) = tmp_path.iterdir()
    assert replay_all(suite.traces[:3], target).ok
    assert list(folder.glob("*.sqlite")), "the replay wrote no database where expected"
    del target
    gc.collect()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("variant", BROKEN_KERNELS, ids=lambda v: v.name)
def test_every_broken_kernel_variant_diverges(suite: Suite, variant: Any) -> None:
    report = replay_all(suite.traces, KernelAdapter(broken_memory_store_factory(variant.name)))
    assert not report.ok, f"the suite does not catch {variant.name}: {variant.description}"


def test_commit_that_keeps_the_lease_gets_a_clear_first_divergence(suite: Suite) -> None:
    report = replay_all(
        suite.traces, KernelAdapter(broken_memory_store_factory("commit_keeps_lease"))
    )
    first = next(r for r in report.results if not r.ok)
    assert first.divergence is not None
    text = first.divergence.describe()
    assert text.startswith(f"step {first.divergence.step} commit(")
    assert "release=True" in text
    assert "lease_holder differs" in text
    assert "expected: -1" in text
    assert "FAIL " + first.trace_id in report.report()


def test_ddmin_finds_a_one_minimal_subsequence() -> None:
    items = list(range(20))

    def interesting(xs: Sequence[int]) -> bool:
        return 3 in xs and 11 in xs and 17 in xs

    assert ddmin(items, interesting) == [3, 11, 17]


def test_minimised_reproduction_is_short_and_one_minimal(suite: Suite) -> None:
    target = KernelAdapter(broken_memory_store_factory("commit_keeps_lease"))
    failing = next(
        t for t in suite.traces if t.meta.get("kind") == "cover" and not replay_trace(t, target).ok
    )
    runner = ModelRunner(Bounds(**failing.meta["bounds"]))
    smallest, divergence = minimise_trace(failing, runner, target)
    assert [a for a, _ in smallest.actions] == ["acquire", "commit"]
    assert divergence.action == "commit"
    actions = list(smallest.actions)
    for drop in range(len(actions)):
        candidate = actions[:drop] + actions[drop + 1 :]
        try:
            shorter = trace_of(runner, candidate, "candidate", failing.meta)
        except ActionNotEnabled:
            continue
        assert replay_trace(shorter, target).ok


def test_minimising_a_passing_trace_is_refused(suite: Suite) -> None:
    trace = next(t for t in suite.traces if t.meta.get("kind") == "scenario")
    runner = ModelRunner(Bounds(**trace.meta["bounds"]))
    with pytest.raises(ValueError, match="does not diverge"):
        minimise_trace(trace, runner, kernel_target("memory"))


def test_promoted_traces_pin_the_behaviour_they_were_promoted_for(suite: Suite) -> None:
    by_id = {t.trace_id: t for t in suite.traces}
    released = _outcomes(by_id["promoted-stale_fence_after_release"])
    assert released[3:] == [
        ("release", "Ok"),
        ("commit", "SessionExecutionLeaseExpired"),
        ("renew", "SessionExecutionLeaseExpired"),
        ("claim_next_inputs", "SessionExecutionLeaseExpired"),
    ]
    head = by_id["promoted-input_claim_id_names_its_head"]
    assert head.steps[7].outcome["claim"] == "tic:i1:2"


def _steps_with_pre(suite: Suite) -> list[tuple[dict[str, Any], Any]]:
    """(pre-state, step) for every step of every trace in the suite."""
    return [
        (t.steps[n - 1].state, t.steps[n]) for t in suite.traces for n in range(1, len(t.steps))
    ]


def test_suite_claims_a_join_run_of_two_rows(suite: Suite) -> None:
    runs = [
        s.outcome["rows"]
        for _, s in _steps_with_pre(suite)
        if s.action == "claim_work" and s.outcome["tag"] == "Claimed"
    ]
    assert any(len(rows) >= 2 for rows in runs), "no claim_work takes a join run"
    assert {2, 3} <= max((set(r) for r in runs), key=len)


def test_suite_claims_both_active_turn_inputs_together(suite: Suite) -> None:
    together = [
        s
        for _, s in _steps_with_pre(suite)
        if s.action == "claim_active_inputs"
        and s.outcome["tag"] == "Claimed"
        and {1, 2} <= set(s.outcome["rows"])
    ]
    assert together, "no trace claims after_work and before_completion inputs in one claim"
    assert all(s.picks["checkpoint"] == "before_completion" for s in together)


def test_suite_separates_validate_first_commit_from_apply_as_you_go(suite: Suite) -> None:
    """A commit whose queue claim is valid but whose input claim is superseded fails and
    leaves the queue rows queued and stamped (lash's in-memory store deletes them first)."""
    hits = []
    for pre, step in _steps_with_pre(suite):
        if step.action != "commit" or step.outcome["tag"] != "TurnInputClaimSuperseded":
            continue
        o = step.picks["o"]
        rows = pre["owner_qclaim_rows"][o]
        if pre["owner_qclaim"][o] and rows:
            hits.append((pre, step, rows))
    assert hits, "no trace fails an input check after a passing queue check"
    for pre, step, rows in hits:
        for b in rows:
            assert step.state["batch_status"][b] == "queued"
            assert step.state["batch_claim"][b] == pre["batch_claim"][b] != ""


def test_suite_shows_expiry_extension_by_renew_and_reentry(suite: Suite) -> None:
    """Half a TTL after a renewal or re-entry the lease is still live with a full TTL left
    less one step, which an adapter that does not extend expiry cannot show."""
    extended = {
        step.action
        for pre, step in _steps_with_pre(suite)
        if step.action in ("renew", "acquire")
        and step.outcome["tag"] in ("Ok", "Acquired")
        and pre["lease_live"]
        and pre["lease_ttl_left"] < step.state["lease_ttl_left"]
    }
    assert extended == {"renew", "acquire"}


def test_suite_takes_exact_and_checkpoint_claims(suite: Suite) -> None:
    steps = [s for _, s in _steps_with_pre(suite)]
    by_ids = {str(s.outcome["tag"]) for s in steps if s.action == "claim_work_by_ids"}
    assert by_ids == {"Claimed", "NoClaim", "SessionExecutionLeaseExpired"}
    bypass = [
        s
        for pre, s in _steps_with_pre(suite)
        if s.action == "claim_work_by_ids"
        and s.outcome["tag"] == "Claimed"
        and any(pre["batch_status"][b] == "queued" for b in range(s.picks["b"]))
    ]
    assert bypass, "no by-ids claim bypasses earlier ready work"
    assert any(
        s.action == "claim_work_by_ids" and len(s.outcome.get("rows", ())) == 2 for s in steps
    ), "no by-ids claim takes a join run"
    both = [
        s
        for s in steps
        if s.action == "claim_checkpoint_work"
        and s.outcome["tag"] == "CheckpointClaimed"
        and s.outcome["input_rows"]
        and s.outcome["queue_rows"]
    ]
    assert both, "no checkpoint-work claim takes inputs and turn work together"


def test_suite_replays_and_refuses_turn_commits_and_stale_expectations(suite: Suite) -> None:
    pairs = {(s.action, str(s.outcome["tag"])) for _, s in _steps_with_pre(suite)}
    assert ("commit_turn", "RuntimeTurnCommitConflict") in pairs
    assert ("commit_cas", "HeadRevisionConflict") in pairs
    replays = [
        (pre, s)
        for pre, s in _steps_with_pre(suite)
        if s.action == "commit_turn"
        and s.outcome["tag"] == "Committed"
        and pre["turn_result"][s.picks["turn"]] != 0
    ]
    assert replays, "no turn is committed twice"
    for pre, s in replays:
        assert s.outcome["head_revision"] == pre["turn_result"][s.picks["turn"]]
        assert s.state["head_revision"] == pre["head_revision"]


def test_suite_cancels_two_targets_in_one_call(suite: Suite) -> None:
    calls = [s for _, s in _steps_with_pre(suite) if s.action == "cancel_inputs"]
    assert calls
    twice = [s for s in calls if s.picks["i"] == s.picks["j"]]
    assert ["Cancelled", "AlreadyCancelled"] in [list(s.outcome["outcomes"]) for s in twice]
    assert any(s.picks["i"] != s.picks["j"] for s in calls)


def test_suite_works_two_sessions_side_by_side(suite: Suite) -> None:
    """The sessions profile's traces take every session-1 action and outcome, and session-0
    work beside a session-1 batch and lease (trace-format.md §1, a second session)."""
    pairs: set[tuple[str, str]] = set()
    beside = set()
    for pre, step in _steps_with_pre(suite):
        across = step.action in ("cancel_s1_batch", "reclaim_observing_s1")
        binding = step.outcome["tag"] == "SessionBindingMismatch"
        if step.action.startswith("s1_") or across or binding:
            pairs.add((step.action, str(step.outcome["tag"])))
        elif "s1_batch_status" in pre and pre["s1_batch_status"] == "queued":
            beside.add((step.action, str(step.outcome["tag"])))
    assert pairs == {
        ("s1_acquire", "Acquired"),
        ("s1_acquire", "Busy"),
        ("s1_enqueue", "Enqueued"),
        ("s1_claim", "Claimed"),
        ("s1_claim", "NoClaim"),
        ("s1_claim", "SessionExecutionLeaseExpired"),
        ("s1_commit", "Committed"),
        ("s1_commit", "QueuedWorkClaimSuperseded"),
        ("s1_commit", "SessionBindingMismatch"),
        ("s1_commit", "SessionExecutionLeaseExpired"),
        ("s1_cancel_batch", "NotCancelled"),
        ("s1_cancel_input", "NotFound"),
        ("cancel_s1_batch", "NotCancelled"),
        ("reclaim_observing_s1", "Acquired"),
        ("reclaim_observing_s1", "Busy"),
        ("commit", "SessionBindingMismatch"),
        ("commit_stale", "SessionBindingMismatch"),
        ("commit_cas", "SessionBindingMismatch"),
        ("commit_turn", "SessionBindingMismatch"),
        # format 5: a commit whose runtime-state draft names another session is refused too
        ("bad_request", "SessionBindingMismatch"),
        # format 6: session-1's input (second_session 2) and its by-ids claims of a
        # session-0 batch
        ("s1_enqueue_input", "Enqueued"),
        ("s1_claim_by_ids", "NoClaim"),
        ("s1_claim_by_ids", "SessionExecutionLeaseExpired"),
    }
    assert {("claim_work", "NoClaim"), ("claim_command", "Claimed"), ("acquire", "Acquired")} <= (
        beside
    )


def test_suite_replays_source_keys_after_deletion_and_vacuum(suite: Suite) -> None:
    """The source-replay profile's traces enqueue new rows for deleted and vacuumed slots and
    claim them again under claim ids that count on (trace-format.md §1)."""
    new_rows = {
        (
            s.action,
            pre["batch_status"].get(s.picks.get("b"), pre["input_state"].get(s.picks.get("i"))),
        )
        for pre, s in _steps_with_pre(suite)
        if s.action in ("replay_batch", "replay_input") and s.outcome["tag"] == "Enqueued"
    }
    assert new_rows == {("replay_batch", "deleted"), ("replay_input", "vacuumed")}
    claims = {
        s.outcome["claim"]
        for _, s in _steps_with_pre(suite)
        if s.action in ("claim_command", "claim_next_inputs") and s.outcome["tag"] == "Claimed"
    }
    assert {"qwc:b0:2", "tic:i0:2"} <= claims
