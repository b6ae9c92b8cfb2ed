"""Session-1's input and by-ids claims across sessions (``second_session = 2``, format 6)
kill the second-session survivors of the mutation campaign (docs/mutation.md).

Up to format 5 session-1 had no input, and no by-ids claim named a batch of the other
session, so a store looking up an input's source key, resolving a cancel's input id or
checking a by-ids claim's batch with ``<=``, ``>=``, ``<`` or ``>`` on session ids instead of
``==``/``!=`` behaved the same on every trace. The session-inputs profile (model/profiles.py)
enqueues session-1's input under session-0 slot i0's source key before and after session-0's
own, cancels it from session-0, and lists each session's batch in the other's by-ids claim.
Each case below is one such surviving mutant, applied by hand to a copy of ``kernel/``:
replaying the profile's cover traces through the campaign's own replay command must fail for
it and pass for the kernel itself.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lashspec.conformance.generate import generate_suite, write_suite
from lashspec.model.check import check_model
from lashspec.model.profiles import profile
from lashspec.model.z3check import prove_kernel

from tests.conformance.mutant_replay import assert_mutant_killed, assert_replay_passes

_INPUT_KEY = "if r.row.session_id == session_id and r.row.source_key == source_key:"
_BY_IDS_SESSION = (
    "or record.batch.session_id != session_id\n                    or record.batch.available_at_ms"
)
_RESOLVE = "return record if record is not None and record.row.session_id == session_id else None"

#: (kernel file, original code, mutated code): survivors of the last measurement.
SURVIVORS: dict[str, tuple[str, str, str]] = {
    "input_by_source_key session >= (session-0 finds session-1's input)": (
        "memory.py",
        _INPUT_KEY,
        _INPUT_KEY.replace("session_id == session_id", "session_id >= session_id"),
    ),
    "input_by_source_key session <= (session-1 finds session-0's input)": (
        "memory.py",
        _INPUT_KEY,
        _INPUT_KEY.replace("session_id == session_id", "session_id <= session_id"),
    ),
    "_resolve >= (session-0 cancels session-1's input)": (
        "engine.py",
        _RESOLVE,
        _RESOLVE.replace("session_id == session_id", "session_id >= session_id"),
    ),
    "by-ids claim session > (session-1 claims session-0's batch)": (
        "engine.py",
        _BY_IDS_SESSION,
        _BY_IDS_SESSION.replace("!=", ">"),
    ),
    "by-ids claim session < (session-0 claims session-1's batch)": (
        "engine.py",
        _BY_IDS_SESSION,
        _BY_IDS_SESSION.replace("!=", "<"),
    ),
}


def test_the_profile_keeps_the_sessions_apart() -> None:
    bounds = profile("session-inputs").bounds
    assert check_model(bounds).ok
    report = prove_kernel(bounds)
    assert report.inductive, report.failed()
    assert report.proof("session_isolation").proved


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("session-inputs-suite")
    generated = generate_suite(
        [profile("session-inputs")],
        boundary_sample=0,
        witnesses=False,
        scenarios=False,
        promoted=False,
    )
    write_suite(generated, out)
    return out


def test_the_kernel_passes_the_session_input_traces(suite: Path) -> None:
    assert_replay_passes(suite)


@pytest.mark.parametrize("survivor", SURVIVORS)
def test_a_former_survivor_is_killed(suite: Path, survivor: str, tmp_path: Path) -> None:
    file, original, mutated = SURVIVORS[survivor]
    assert_mutant_killed(suite, tmp_path, file, original, mutated)
