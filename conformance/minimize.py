"""Shrink a failing trace to a shortest reproduction (delta debugging over actions).

A candidate is a subsequence of the failing trace's actions. It is *interesting* when the
model still accepts every action in order (so its expected outcomes and states can be
recomputed; a subsequence may well change them) and the implementation still diverges at
the same action on the same field. :func:`ddmin` is Zeller's delta-debugging loop followed by
a one-at-a-time removal pass, so the result is 1-minimal: dropping any single remaining
action either makes the model refuse the sequence or makes the failure go away.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from .itf import Trace
from .modeltrace import ActionNotEnabled, ModelRunner, trace_of
from .replay import Divergence, ReplayTarget, replay_trace

T = TypeVar("T")


def ddmin(items: Sequence[T], interesting: Callable[[Sequence[T]], bool]) -> list[T]:
    """A 1-minimal interesting subsequence of ``items`` (which must be interesting)."""
    current = list(items)
    chunks = 2
    while len(current) >= 2:
        size = -(-len(current) // chunks)
        parts = [current[i : i + size] for i in range(0, len(current), size)]
        reduced = False
        for index in range(len(parts)):
            complement = [x for j, part in enumerate(parts) if j != index for x in part]
            if complement and interesting(complement):
                current = complement
                chunks = max(chunks - 1, 2)
                reduced = True
                break
        if not reduced:
            if chunks >= len(current):
                break
            chunks = min(chunks * 2, len(current))
    changed = True
    while changed:
        changed = False
        for index in range(len(current)):
            candidate = current[:index] + current[index + 1 :]
            if candidate and interesting(candidate):
                current = candidate
                changed = True
                break
    return current


def _signature(divergence: Divergence) -> tuple[str, str]:
    return (divergence.action, divergence.field)


def minimise_trace(
    trace: Trace,
    runner: ModelRunner,
    target: ReplayTarget,
) -> tuple[Trace, Divergence]:
    """The shortest reproduction of ``trace``'s divergence on ``target``.

    Raises ``ValueError`` when ``trace`` does not diverge on ``target`` in the first place.
    """
    first = replay_trace(trace, target)
    if first.divergence is None:
        raise ValueError(f"trace {trace.trace_id} does not diverge: nothing to minimise")
    wanted = _signature(first.divergence)
    actions: list[tuple[str, Mapping[str, Any]]] = list(trace.actions)
    found: dict[int, tuple[Trace, Divergence]] = {}

    def interesting(candidate: Sequence[tuple[str, Mapping[str, Any]]]) -> bool:
        try:
            expected = trace_of(runner, candidate, f"{trace.trace_id}-min", trace.meta)
        except ActionNotEnabled:
            return False
        result = replay_trace(expected, target)
        if result.divergence is None or _signature(result.divergence) != wanted:
            return False
        # Replay stops at the divergence: later actions are noise.
        found[len(candidate)] = (expected, result.divergence)
        return True

    if not interesting(actions):
        raise ValueError(f"trace {trace.trace_id} does not reproduce against the model")
    smallest = ddmin(actions, interesting)
    interesting(smallest)
    return found[len(smallest)]
