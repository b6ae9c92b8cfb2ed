"""The join-run shapes of batch slots b4..b8 kill the select_turn_work_claim_prefix survivors.

The mutation campaign (docs/mutation.md) found kernels surviving every trace that

* let an exclusive head take a join row behind it, or count the head as its own follower;
* let a join run take a row that must not join it: a session command, an exclusive row, a
  join row of the other delivery policy or of another merge key (the check profiles'
  catalogue prefix b0..b3 has none of these behind a join head), or go on past such a row;
* skip the active-turn-checkpoint head gate (a by-ids claim reaches it directly; a queue
  scan stops at the same head before the rule sees it);
* accept any by-ids list whose claimable prefix is shorter than the list.

Each case is one such surviving mutant, applied by hand to a copy of ``kernel/``; replaying
the two promoted traces through the campaign's own replay command must fail for it and pass
for the kernel itself.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lashspec.conformance.itf import write_trace
from lashspec.conformance.modeltrace import ModelRunner, trace_of
from lashspec.conformance.promoted_traces import PROMOTED_TRACES

from tests.conformance.mutant_replay import assert_mutant_killed, assert_replay_passes

PROMOTED = ("join_shapes_listed_by_ids", "join_shapes_scanned")

_GATE = "boundary is ClaimBoundary.ACTIVE_TURN_CHECKPOINT\n        and head"
_HEAD_ESB = "and head.delivery_policy is not DeliveryPolicy.EARLIEST_SAFE_BOUNDARY"
_CLASS = "follower.work_class is not QueuedWorkClass.TURN_WORK"
_SLOT = "or follower.slot_policy is not SlotPolicy.JOIN"
_DELIVERY = "or follower.delivery_policy is not head.delivery_policy"
_MERGE = "or follower.merge_key != head.merge_key"

#: (original code, mutated code) in kernel/rules.py: survivors of the last measurement
#: (docs/mutation.md, by line), each followed by the trace step that tells it apart.
SURVIVORS: dict[str, tuple[str, str]] = {
    # by ids, b2 at an active-turn checkpoint: the head gate must refuse it
    "107 boundary is -> <": (_GATE, _GATE.replace(" is ClaimBoundary", " < ClaimBoundary")),
    "108 is not -> >": (_HEAD_ESB, _HEAD_ESB.replace("is not", ">")),
    "110 return 0 -> 1": ("return 0  # the head gates", "return 1  # the head gates"),
    # scan: exclusive b1, then join b4 (b2, b3 held)
    "111 is -> <": (
        "if head.slot_policy is SlotPolicy.EXCLUSIVE:",
        "if head.slot_policy < SlotPolicy.EXCLUSIVE:",
    ),
    # by ids (b5, b6) and scan: the join head counted as its own follower
    "114 [1:] -> [0:]": ("for follower in candidates[1:]:", "for follower in candidates[0:]:"),
    # scan: join b5, then the command b8
    "118 is not -> >": (_CLASS, _CLASS.replace("is not", ">")),
    # by ids (b5, b6) and scan: join b5, then the exclusive b6
    "119 or -> and": (_SLOT, _SLOT.replace("or ", "and ", 1)),
    "119 is not -> >": (_SLOT, _SLOT.replace("is not", ">")),
    # by ids (b3, b4) and (b4, b5), scan b4 then b5
    "120 or -> and": (_DELIVERY, _DELIVERY.replace("or ", "and ", 1)),
    "120 is not -> >": (_DELIVERY, _DELIVERY.replace("is not", ">")),
    "120 is not -> <": (_DELIVERY, _DELIVERY.replace("is not", "<")),
    # scan: join b5, then the payload_default join row b7
    "121 or -> and": (_MERGE, _MERGE.replace("or ", "and ", 1)),
    # scan of b3..b8: b4 ends b3's run, even though b5 behind it could join b3
    "123 break -> continue": (
        "            break\n        taken += 1",
        "            continue\n        taken += 1",
    ),
    # by ids (b1, b2): an exclusive head with a follower is no claimable prefix
    "134 == -> <=": (") == len(candidates)", ") <= len(candidates)"),
}


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("join-shape-suite")
    for name in PROMOTED:
        _, bounds, steps = PROMOTED_TRACES[name]
        trace = trace_of(ModelRunner(bounds), list(steps), f"promoted-{name}")
        write_trace(trace, out / f"promoted-{name}.itf.json")
    return out


def test_the_kernel_passes(suite: Path) -> None:
    assert_replay_passes(suite)


@pytest.mark.parametrize("survivor", SURVIVORS)
def test_a_former_survivor_is_killed(suite: Path, survivor: str, tmp_path: Path) -> None:
    original, mutated = SURVIVORS[survivor]
    assert_mutant_killed(suite, tmp_path, "rules.py", original, mutated)
