"""Committed payloads and transaction kinds kill the survivors they were added for.

The mutation campaign (docs/mutation.md) found kernels surviving every trace that

* take a read as a write transaction, or count transactions wrongly: nothing looked at the
  backends' transaction counters (conformance/store_transactions.py now checks every call);
* stop scrubbing lash's volatile keys from the turn-commit hash, scrub kept keys, or stop
  copying committed JSON state, or hand out a wrong memoised checkpoint reference: traces
  committed no state (commit_turn now commits lash-shaped state whose volatile values differ
  between deliveries, and the projection reads the head back: conformance/checkpoints.py);
* drop an agent-frame task's work class (no batch carried one; slot b1 now does);
* show the head's revision to a session that does not own it (nothing compared
  ``inspect_session`` with ``load_session``).

Each case is one such surviving mutant, applied by hand to a copy of ``kernel/``; replaying
the traces below through the campaign's own replay command (read cross-check on) must fail
for it and pass for the kernel itself.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from lashspec.conformance.itf import write_trace
from lashspec.conformance.modeltrace import ModelRunner, trace_of
from lashspec.conformance.promoted_traces import PROMOTED_TRACES
from lashspec.model.kernel_model import SMALLEST_BOUNDS

from tests.conformance.mutant_replay import assert_mutant_killed, assert_replay_passes

PROMOTED = ("second_turn_redelivered_by_another_owner",)

#: Slot b1 (a wake and an agent-frame task) claimed at a checkpoint after a quiescent probe.
CHECKPOINT_CLAIM = (
    replace(SMALLEST_BOUNDS, batches=2, exact_claims=1),
    (
        ("acquire", {"o": 0}),
        ("enqueue_batch", {"b": 0}),
        ("enqueue_batch", {"b": 1}),
        ("claim_checkpoint_work", {"o": 0, "checkpoint": "after_work"}),
        ("claim_command", {"o": 0}),
        ("claim_checkpoint_work", {"o": 0, "checkpoint": "after_work"}),
    ),
)

#: Session-0 commits while session-1 is observed too (the store's one head is session-0's).
SESSION0_HEAD = (
    replace(SMALLEST_BOUNDS, second_session=1),
    (("acquire", {"o": 0}), ("commit", {"o": 0, "release": True, "defer": False})),
)

_SCRUB_KEEP = 'if k not in _VOLATILE_HASH_KEYS and not (k == "id" and (is_message or is_part))'

#: (kernel file, original code, mutated code): survivors of the last measurement.
SURVIVORS: dict[str, tuple[str, str, str]] = {
    "_run default read": (
        "engine.py",
        "def _run(self, operation: Callable[[Tables, int], T], write: bool = True) -> T:",
        "def _run(self, operation: Callable[[Tables, int], T], write: bool = False) -> T:",
    ),
    "checkpoint probe as a write": (
        "engine.py",
        "if not self._run(probe, write=False):",
        "if not self._run(probe, write=True):",
    ),
    "load_session as a write": (
        "engine.py",
        "return SessionRead(head.session_id, head.head_revision, checkpoint, head.checkpoint_ref)"
        "\n\n        return self._run(op, write=False)",
        "return SessionRead(head.session_id, head.head_revision, checkpoint, head.checkpoint_ref)"
        "\n\n        return self._run(op, write=True)",
    ),
    "write counter starts at 1": (
        "memory.py",
        "self.write_transactions = 0",
        "self.write_transactions = 1",
    ),
    "write counter not counted": (
        "memory.py",
        "backend.write_transactions += 1",
        "backend.write_transactions += 0",
    ),
    "scrub: no dict": (
        "types.py",
        "    if isinstance(value, dict):\n        is_message",
        "    if not isinstance(value, dict):\n        is_message",
    ),
    "scrub: role or parts": (
        "types.py",
        'is_message = "role" in value and "parts" in value',
        'is_message = "role" in value or "parts" in value',
    ),
    "scrub: keys >= id": ("types.py", _SCRUB_KEEP, _SCRUB_KEEP.replace('k == "id"', 'k >= "id"')),
    "scrub: keys <= id": ("types.py", _SCRUB_KEEP, _SCRUB_KEEP.replace('k == "id"', 'k <= "id"')),
    "json copy: objects copied empty": (
        "engine.py",
        "for key, item in value.items():",
        "for key, item in []:",
    ),
    "json copy: shared, not copied": (
        "engine.py",
        "if value is None or isinstance(value, str | bool | int | float):",
        "if not value is None or isinstance(value, str | bool | int | float):",
    ),
    "checkpoint memo: states memoised": (
        "engine.py",
        "empty = not checkpoint.state and type(index) is int",
        "empty = checkpoint.state and type(index) is int",
    ),
    "checkpoint memo: hit for states": (
        "engine.py",
        "if empty and index in _EMPTY_CHECKPOINTS:",
        "if not empty and index in _EMPTY_CHECKPOINTS:",
    ),
    "agent-frame task without work_class property": (
        "types.py",
        'type: Literal["agent_frame_task"] = "agent_frame_task"\n\n    @property\n',
        'type: Literal["agent_frame_task"] = "agent_frame_task"\n\n',
    ),
    "head revision shown to a later session id": (
        "engine.py",
        "head[1] if head is not None and head[0] == session_id else 0,",
        "head[1] if head is not None and head[0] <= session_id else 0,",
    ),
}


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("payload-suite")
    for name in PROMOTED:
        _, bounds, steps = PROMOTED_TRACES[name]
        trace = trace_of(ModelRunner(bounds), list(steps), f"promoted-{name}")
        write_trace(trace, out / f"promoted-{name}.itf.json")
    for name, (bounds, steps) in (
        ("checkpoint-claim-of-b1", CHECKPOINT_CLAIM),
        ("session0-head", SESSION0_HEAD),
    ):
        write_trace(trace_of(ModelRunner(bounds), list(steps), name), out / f"{name}.itf.json")
    return out


def test_the_kernel_passes(suite: Path) -> None:
    assert_replay_passes(suite)


@pytest.mark.parametrize("survivor", SURVIVORS)
def test_a_former_survivor_is_killed(suite: Path, survivor: str, tmp_path: Path) -> None:
    file, original, mutated = SURVIVORS[survivor]
    assert_mutant_killed(suite, tmp_path, file, original, mutated)
