"""Expected traces from the model: run abstract actions through the compiled model.

This is the only place where traces get their expected outcomes and states, so a replayer
checks the kernel against the model, never against itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..model.dsl import CompiledModel, FlatState
from ..model.kernel_model import Bounds, compiled_model, trace_outcome, trace_state
from .itf import Trace, TraceStep, normalise_outcome, normalise_state

INIT_OUTCOME: dict[str, Any] = {"tag": "Ok"}


class ActionNotEnabled(ValueError):
    """The model does not allow this action (with these picks) in the current state."""


def enabled_move(
    compiled: CompiledModel, state: FlatState, action: str, picks: Mapping[str, Any]
) -> tuple[int, Any, FlatState] | None:
    """The model's move (binding, outcome, successor) for ``action`` with ``picks`` from
    ``state``, or None when the model does not allow it there."""
    wanted = dict(picks)
    for binding, outcome, successor in compiled.successors(state):
        instance = compiled.bindings[binding]
        if instance.action == action and dict(instance.params) == wanted:
            return binding, outcome, successor
    return None


class ModelRunner:
    """The compiled kernel model at some bounds, stepped one named action at a time."""

    def __init__(self, bounds: Bounds) -> None:
        self.bounds = bounds
        self.compiled: CompiledModel = compiled_model(bounds)
        self._binding_index = {
            (b.action, tuple(sorted(b.params.items()))): b.index for b in self.compiled.bindings
        }

    def initial(self) -> tuple[Any, ...]:
        return self.compiled.model.initial_state()

    def step(
        self, state: tuple[Any, ...], action: str, picks: Mapping[str, Any]
    ) -> tuple[dict[str, Any], tuple[Any, ...]]:
        key = (action, tuple(sorted(picks.items())))
        index = self._binding_index.get(key)
        if index is None:
            raise ActionNotEnabled(f"the model has no action {action} with picks {dict(picks)}")
        move = enabled_move(self.compiled, state, action, picks)
        if move is None:
            raise ActionNotEnabled(f"{action} {dict(picks)} is not enabled in this state")
        _, outcome, successor = move
        return trace_outcome(self.compiled.model, action, outcome), successor

    def state(self, flat: tuple[Any, ...]) -> dict[str, Any]:
        return normalise_state(trace_state(self.compiled.model, flat))

    def violated(self, flat: tuple[Any, ...]) -> list[str]:
        return [self.compiled.model.invariants[i].name for i in self.compiled.violations(flat)]


def trace_of(
    runner: ModelRunner,
    actions: Sequence[tuple[str, Mapping[str, Any]]],
    trace_id: str,
    meta: Mapping[str, Any] | None = None,
) -> Trace:
    """The expected trace of an action sequence (raises ActionNotEnabled if one is not)."""
    flat = runner.initial()
    steps = [TraceStep("init", {}, INIT_OUTCOME, runner.state(flat))]
    for action, picks in actions:
        outcome, flat = runner.step(flat, action, picks)
        steps.append(TraceStep(action, dict(picks), normalise_outcome(outcome), runner.state(flat)))
    info = {"bounds": runner.bounds.as_dict(), **dict(meta or {})}
    return Trace(trace_id, tuple(steps), info)
