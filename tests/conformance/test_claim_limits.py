"""Claims whose limit binds (bound ``claim_limits``) kill the per-claim limit survivors of the
mutation campaign (docs/mutation.md).

Until format 6 every claim of the store traces passed a limit no selectable prefix reached,
so a kernel ignoring ``max_batches``/``max_inputs`` (taking one row more than asked, or the
whole prefix) behaved the same on all of them. The profiles ``limit-run`` and
``limit-inputs`` (model/profiles.py) claim with a limit of one while two rows are selectable:
the first row of a join run, the first of both active-turn inputs, alone and in a
checkpoint-work claim. The adapter's uncapped limit (32, the scan surplus) makes a scan window
computed from the limit any other way than ``limit + 32`` read no row. Each case below is one
surviving mutant, applied by hand to a copy of ``kernel/``: replaying the profiles' cover
traces through the campaign's own replay command must fail for it and pass for the kernel.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lashspec.conformance.generate import generate_suite, write_suite
from lashspec.model.profiles import profile

from tests.conformance.mutant_replay import assert_mutant_killed, assert_replay_passes

PROFILES = ("limit-run", "limit-inputs")

#: (kernel file, original code, mutated code): survivors of the last measurement.
SURVIVORS: dict[str, tuple[str, str, str]] = {
    "select_turn_work_claim_prefix: a join run past the limit": (
        "rules.py",
        "if taken >= max_batches:",
        "if taken > max_batches:",
    ),
    "claim_scan_limit %": (
        "rules.py",
        "return max_batches + CLAIM_SCAN_SURPLUS",
        "return max_batches % CLAIM_SCAN_SURPLUS",
    ),
    "claim_scan_limit ^": (
        "rules.py",
        "return max_batches + CLAIM_SCAN_SURPLUS",
        "return max_batches ^ CLAIM_SCAN_SURPLUS",
    ),
    "_selectable_inputs: an input past the limit": (
        "engine.py",
        "if len(selected) >= max_inputs:",
        "if len(selected) > max_inputs:",
    ),
}


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("claim-limit-suite")
    generated = generate_suite(
        [profile(name) for name in PROFILES],
        boundary_sample=0,
        witnesses=False,
        scenarios=False,
        promoted=False,
    )
    write_suite(generated, out)
    return out


def test_the_profiles_claim_with_a_binding_limit(suite: Path) -> None:
    limited = set()
    for path in sorted(suite.glob("*.itf.json")):
        for state in json.loads(path.read_text())["states"]:
            limit = state["mbt::nondetPicks"].get("limit")
            if limit == {"tag": "Some", "value": "one"}:
                limited.add(state["mbt::actionTaken"])
    assert limited == {"claim_work", "claim_active_inputs", "claim_checkpoint_work"}


def test_the_kernel_passes_the_claim_limit_traces(suite: Path) -> None:
    assert_replay_passes(suite)


@pytest.mark.parametrize("survivor", SURVIVORS)
def test_a_former_survivor_is_killed(suite: Path, survivor: str, tmp_path: Path) -> None:
    file, original, mutated = SURVIVORS[survivor]
    assert_mutant_killed(suite, tmp_path, file, original, mutated)
