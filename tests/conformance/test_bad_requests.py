"""The forged and malformed requests of format 5 (bound ``bad_requests``) kill the argument
validation survivors of the mutation campaign (docs/mutation.md).

Every trace of format 4 presented fences, completions, claims and limits the store itself had
handed out, so a kernel comparing a presented token with ``>=`` instead of ``==``, reading
the wrong lease row for a release naming another session, or answering a zero limit only after
the fence check behaved the same on all of them. The bad-request profiles (model/profiles.py)
ask for exactly those requests; each case below is one such surviving mutant, applied by hand
to a copy of ``kernel/``: replaying the profiles' cover traces through the campaign's own
replay command must fail for it and pass for the kernel itself.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lashspec.conformance.generate import generate_suite, write_suite
from lashspec.model.kernel_model import BAD_REQUEST_ACTIONS
from lashspec.model.profiles import profile

from tests.conformance.mutant_replay import assert_mutant_killed, assert_replay_passes

PROFILES = ("bad-requests", "bad-request-runs", "bad-request-inputs")

_SAME_INCARNATION = (
    "return self.owner_id == other.owner_id and self.incarnation_id == other.incarnation_id"
)

#: (kernel file, original code, mutated code): survivors of the last measurement.
SURVIVORS: dict[str, tuple[str, str, str]] = {
    "_release reads the held row for another session's completion": (
        "engine.py",
        "if row is None or row.session_id != completion.session_id:",
        "if row is None or row.session_id == completion.session_id:",
    ),
    "_release token >=": (
        "engine.py",
        "and row.lease_token == completion.lease_token",
        "and row.lease_token >= completion.lease_token",
    ),
    "_validate_fence session <": (
        "engine.py",
        "if fence.session_id != session_id:",
        "if fence.session_id < session_id:",
    ),
    "_validate_fence generation <": (
        "engine.py",
        "if row.fencing_token != fence.fencing_token:",
        "if row.fencing_token < fence.fencing_token:",
    ),
    "reclaim observation token >=": (
        "engine.py",
        "and row.lease_token == observed_holder.lease_token",
        "and row.lease_token >= observed_holder.lease_token",
    ),
    "abandon_queued_work_claim token <=": (
        "engine.py",
        "c.claim_token == claim.lease_token:\n                    tx.put_batch_claim(",
        "c.claim_token <= claim.lease_token:\n                    tx.put_batch_claim(",
    ),
    "commit: a queue completion listing a row twice": (
        "engine.py",
        "elif len(listed) != len(completion.batch_ids):",
        "elif len(listed) > len(completion.batch_ids):",
    ),
    "commit: a queue completion of another session <": (
        "engine.py",
        "if completion.session_id != session_id:",
        "if completion.session_id < session_id:",
    ),
    "commit: an input completion token <=": (
        "engine.py",
        "and r.claim.claim_token == input_completion.lease_token",
        "and r.claim.claim_token <= input_completion.lease_token",
    ),
    "commit: an outbox draft of another session <": (
        "engine.py",
        "if draft.session_id != session_id:",
        "if draft.session_id < session_id:",
    ),
    "commit: deferral of another turn id <=": (
        "engine.py",
        "and row.ingress.turn_id == interrupted",
        "and row.ingress.turn_id <= interrupted",
    ),
    "claim_ready_queued_work: zero limit after the fence": (
        "engine.py",
        "boundary = _wire(ClaimBoundary, boundary)\n        if max_batches == 0:",
        "boundary = _wire(ClaimBoundary, boundary)\n        if max_batches < 0:",
    ),
    "claim_checkpoint_work probe: zero input limit probes": (
        "engine.py",
        "if max_inputs > 0 and self._selectable_inputs(tx, session_id, generation, mode, 1):",
        "if max_inputs > -1 and self._selectable_inputs(tx, session_id, generation, mode, 1):",
    ),
    "by-ids: a list naming a row twice": (
        "engine.py",
        "if len(set(ids)) != len(ids):",
        "if len(set(ids)) > len(ids):",
    ),
    "same_incarnation owner id >=": (
        "types.py",
        _SAME_INCARNATION,
        _SAME_INCARNATION.replace("self.owner_id == other", "self.owner_id >= other"),
    ),
    "same_incarnation owner id <=": (
        "types.py",
        _SAME_INCARNATION,
        _SAME_INCARNATION.replace("self.owner_id == other", "self.owner_id <= other"),
    ),
    "same_incarnation incarnation id >=": (
        "types.py",
        _SAME_INCARNATION,
        _SAME_INCARNATION.replace("self.incarnation_id == other", "self.incarnation_id >= other"),
    ),
    "_check_session_id or->and": (
        "engine.py",
        "if not isinstance(session_id, str) or not session_id.strip():",
        "if not isinstance(session_id, str) and not session_id.strip():",
    ),
}


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bad-request-suite")
    generated = generate_suite(
        [profile(name) for name in PROFILES],
        boundary_sample=0,
        witnesses=False,
        scenarios=False,
        promoted=False,
    )
    write_suite(generated, out)
    return out


def test_the_profiles_cover_every_bad_request_action(suite: Path) -> None:
    text = "".join(path.read_text() for path in sorted(suite.glob("*.itf.json")))
    for action in BAD_REQUEST_ACTIONS:
        assert f'"{action}"' in text, action


def test_the_kernel_passes_the_bad_request_traces(suite: Path) -> None:
    assert_replay_passes(suite)


@pytest.mark.parametrize("survivor", SURVIVORS)
def test_a_former_survivor_is_killed(suite: Path, survivor: str, tmp_path: Path) -> None:
    file, original, mutated = SURVIVORS[survivor]
    assert_mutant_killed(suite, tmp_path, file, original, mutated)
