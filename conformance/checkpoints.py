"""The committed state of a stamped turn commit, and the check that the store keeps it.

``commit_turn(o, turn, content, release)`` (docs/trace-format.md) commits an abstract content
id.  :func:`turn_checkpoint` maps it to concrete runtime state shaped like lash's: nested
objects and lists, every JSON scalar, messages and message parts whose ``id`` lash treats as
volatile, and graph node ids and timestamps (lash's volatile keys, scrubbed anywhere before a
commit is hashed).  The volatile values name the delivery (the owner and a per-trace count of
turn commits), which the model treats as irrelevant: two deliveries of the same content are
the same commit only modulo the volatile keys, so a kernel whose turn-commit hash stopped
scrubbing them would answer a conflict where the model answers the recorded result.  The
content itself sits in exactly one place per turn, each a key lash keeps: turn 0's in the
``id`` of an object that has a ``role`` but no ``parts`` (not a message), turn 1's in the text
of a message part.  A hash that scrubbed either would make two contents the same commit.

:class:`CheckpointLedger` remembers what the adapter committed at each head revision, and
:class:`CheckpointRefs` the checkpoint reference every commit and read reported.
:meth:`CheckpointLedger.check_read` compares ``load_session`` with them: the head read back
must be exactly the checkpoint committed at that revision, at the revision
``inspect_session`` reports, and a reference names one checkpoint and a checkpoint has one
reference (lash stores checkpoints as content-addressed blobs, so this holds across stores:
the adapter keeps one :class:`CheckpointRefs` for every trace it replays).  The store owns
its copy of the state: after the comparison the adapter empties every list and object of the
state it read, which must not change what the next read returns.  A disagreement raises
:class:`CommittedStateDisagrees`, which a replay reports as an error at that step.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field

from ..kernel.types import JsonValue, SessionCheckpoint, SessionRead

#: The turn index of every checkpoint the store adapter commits (plain commits use 0 too).
CHECKPOINT_TURN_INDEX = 0


class CommittedStateDisagrees(AssertionError):
    """What the store read back is not what was committed, or a reference names two
    checkpoints."""


def turn_checkpoint(turn: int, content: int, owner: int, delivery: int) -> SessionCheckpoint:
    """The checkpoint of ``commit_turn``'s ``content`` for ``turn``, delivered by ``owner``
    as the trace's ``delivery``-th turn commit (the last two only reach volatile keys)."""
    writer = f"o{owner}:d{delivery}"
    node = f"node:{writer}"
    call_id = f"call:{content}" if turn == 0 else "call"
    text = f"answer {content}" if turn == 1 else "answer"
    state: dict[str, JsonValue] = {
        "turn": f"turn-{turn}",
        "messages": [
            {
                "id": f"message:{writer}",
                "role": "assistant",
                "timestamp": delivery,
                "parts": [
                    {
                        "id": f"part:{writer}",
                        "kind": "text",
                        "content": text,
                        "prune_state": "intact",
                        "node_id": node,
                    }
                ],
            }
        ],
        "tool_call": {
            "id": call_id,
            "role": "tool",
            "arguments": {"attempt": 1, "ratio": 0.5, "flags": [True, False, None], "tags": []},
        },
        "graph": {"leaf_node_id": node, "parent_node_id": None, "nodes": [{"node_id": node}]},
    }
    return SessionCheckpoint(CHECKPOINT_TURN_INDEX, state)


def _empty(value: object) -> None:
    """Empty every list and object in ``value``, innermost first."""
    if isinstance(value, dict):
        for item in value.values():
            _empty(item)
        value.clear()
    elif isinstance(value, list):
        for item in value:
            _empty(item)
        value.clear()


def canonical(checkpoint: SessionCheckpoint) -> str:
    return json.dumps(
        {"turn_index": checkpoint.turn_index, "state": checkpoint.state},
        sort_keys=True,
        separators=(",", ":"),
    )


@dataclass
class CheckpointRefs:
    """Which checkpoint each reference named, and the reverse, as seen so far."""

    _checkpoint_of_ref: dict[str, str] = field(default_factory=dict)
    _ref_of_checkpoint: dict[str, str] = field(default_factory=dict)

    def pair(self, ref: str, checkpoint: SessionCheckpoint, where: str) -> None:
        text = canonical(checkpoint)
        known = self._checkpoint_of_ref.setdefault(ref, text)
        if known != text:
            raise CommittedStateDisagrees(
                f"{where}: checkpoint ref {ref} names {text}, earlier {known}"
            )
        other = self._ref_of_checkpoint.setdefault(text, ref)
        if other != ref:
            raise CommittedStateDisagrees(
                f"{where}: checkpoint {text} has ref {ref}, earlier {other}"
            )


@dataclass
class CheckpointLedger:
    """Per trace: the checkpoints the adapter committed (their own copies), and the
    references seen (shared between traces)."""

    refs: CheckpointRefs = field(default_factory=CheckpointRefs)
    deliveries: int = 0
    by_revision: dict[int, SessionCheckpoint] = field(default_factory=dict)

    def next_delivery(self) -> int:
        self.deliveries += 1
        return self.deliveries

    def committed(self, revision: int, checkpoint: SessionCheckpoint, ref: str) -> None:
        """A commit of ``checkpoint`` answered ``revision`` and ``ref``.  A re-delivered turn
        answers the recorded revision, whose checkpoint is the first delivery's."""
        first = self.by_revision.setdefault(revision, copy.deepcopy(checkpoint))
        self.refs.pair(ref, first, f"commit_runtime_state (head revision {revision})")

    def check_read(self, read: SessionRead | None, session_id: str, head_revision: int) -> None:
        """``read`` is ``load_session()``; ``head_revision`` is what ``inspect_session`` of
        ``session_id`` reported (0 when the head is another session's or absent)."""
        if read is None:
            if head_revision:
                raise CommittedStateDisagrees(
                    f"load_session found no head; inspect_session({session_id!r}) reports "
                    f"head revision {head_revision}"
                )
            return
        self.refs.pair(read.checkpoint_ref, read.checkpoint, "load_session")
        if read.session_id != session_id:
            if head_revision:
                raise CommittedStateDisagrees(
                    f"load_session reads {read.session_id!r}'s head; inspect_session"
                    f"({session_id!r}) reports head revision {head_revision}"
                )
            return
        if read.head_revision != head_revision:
            raise CommittedStateDisagrees(
                f"load_session reads head revision {read.head_revision}; inspect_session"
                f"({session_id!r}) reports {head_revision}"
            )
        committed = self.by_revision.get(read.head_revision)
        if committed is not None and read.checkpoint != committed:
            raise CommittedStateDisagrees(
                f"load_session reads {canonical(read.checkpoint)} at head revision "
                f"{read.head_revision}; the commit there was {canonical(committed)}"
            )
        # the reader owns what it read, all the way down: emptying it must not reach the store
        _empty(read.checkpoint.state)
