"""Promoted traces kill the Cosmic Ray survivors they were written for.

The mutation campaign (docs/mutation.md) found kernels surviving every edge-cover trace that

* compare session ids with ``<=``, ``>=`` or ``<`` instead of ``==``: with a session-1 that
  never shares a source key, an input id or a generation with session-0, the order of two
  session ids never mattered;
* compare a presented lease token with ``<=``/``>`` or join its check with ``or``: every
  token a trace presented was one the store handed out, so the holder, incarnation and
  generation already decided;
* ignore ``available_at`` in a claim by ids (no profile has by-ids claims and delayed work
  together), or take a queue claim's id from the last row of a join run (every run the edge
  cover claims has rows with equal claim fencing tokens);
* drop or blank the claim diagnostics of a cancel answered AlreadyClaimed (format 3 kept only
  the tag; format 4 keeps the pinned generation);
* let a restarted owner re-enter its crashed incarnation's live lease (owner identities
  matched by owner id alone, or incarnation ids compared with ``<=``), or read a row claimed
  by a later generation as unclaimable for a stale fence in claim_checkpoint_work's probe
  (``<`` for ``!=``; format 6's promoted traces);
* leave lease times on a released lease row (lash sets them to 0): the read cross-check
  (conformance/store_reads.py) compares a released row's times with 0 after every step.

Each case below is one such surviving mutant, applied by hand to a copy of ``kernel/``;
replaying the promoted traces written for them (conformance/promoted_traces.py) through the
campaign's own replay command must fail for it and pass for the kernel itself.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lashspec.conformance.itf import write_trace
from lashspec.conformance.modeltrace import ModelRunner, trace_of
from lashspec.conformance.promoted_traces import PROMOTED_TRACES

from tests.conformance.mutant_replay import assert_mutant_killed, assert_replay_passes

TRACES = (
    "stale_fence_after_release",
    "session1_key_and_calls_across_sessions",
    "session0_key_then_session1",
    "stale_lease_token_renews_and_releases_nothing",
    "by_ids_claim_waits_for_available_at",
    "queue_claim_id_names_its_head",
    "cancel_of_a_claimed_input_names_the_claims_generation",
    "restarted_owner_is_busy_behind_its_old_incarnation",
    "stale_fence_probes_work_claimed_by_a_later_generation",
)

_SAME_INCARNATION = (
    "return self.owner_id == other.owner_id and self.incarnation_id == other.incarnation_id"
)

#: What follows the head in _stamp_batches (the input claim's twin begins alike).
_QUEUE_CLAIM_ID = (
    '\n        fencing = head.claim.claim_fencing_token + 1\n        claim_id = f"qwc:'
)

#: (kernel file, original code, mutated code): the survivors of the last measurement.
SURVIVORS: dict[str, tuple[str, str, str]] = {
    "batch_by_source_key >=": (
        "memory.py",
        "if r.batch.session_id == session_id and r.batch.source_key == source_key:",
        "if r.batch.session_id >= session_id and r.batch.source_key == source_key:",
    ),
    "batch_by_source_key <=": (
        "memory.py",
        "if r.batch.session_id == session_id and r.batch.source_key == source_key:",
        "if r.batch.session_id <= session_id and r.batch.source_key == source_key:",
    ),
    "_resolve <=": (
        "engine.py",
        "return record if record is not None and record.row.session_id == session_id else None",
        "return record if record is not None and record.row.session_id <= session_id else None",
    ),
    "cancel_queued_work_batch <": (
        "engine.py",
        "if record is None or record.batch.session_id != session_id:",
        "if record is None or record.batch.session_id < session_id:",
    ),
    "reclaim observation and->or": (
        "engine.py",
        "and row.fencing_token == observed_holder.fencing_token",
        "or row.fencing_token == observed_holder.fencing_token",
    ),
    "_release token and->or": (
        "engine.py",
        "and row.lease_token == completion.lease_token",
        "or row.lease_token == completion.lease_token",
    ),
    "_release token <=": (
        "engine.py",
        "and row.lease_token == completion.lease_token",
        "and row.lease_token <= completion.lease_token",
    ),
    "_release fencing and->or": (
        "engine.py",
        "and row.fencing_token == completion.fencing_token",
        "or row.fencing_token == completion.fencing_token",
    ),
    "by-ids available_at or->and": (
        "engine.py",
        "or record.batch.available_at_ms > now",
        "and record.batch.available_at_ms > now",
    ),
    "by-ids available_at ==": (
        "engine.py",
        "or record.batch.available_at_ms > now",
        "or record.batch.available_at_ms == now",
    ),
    "by-ids available_at is": (
        "engine.py",
        "or record.batch.available_at_ms > now",
        "or record.batch.available_at_ms is now",
    ),
    "_stamp_batches head from the last row": (
        "engine.py",
        "head = selected[0]" + _QUEUE_CLAIM_ID,
        "head = selected[-1]" + _QUEUE_CLAIM_ID,
    ),
    "_cancel_row diagnostics only for accepted rows": (
        "engine.py",
        "if c.claim_token is not None or row.state is TurnInputState.ACCEPTED:",
        "if c.claim_token is None or row.state is TurnInputState.ACCEPTED:",
    ),
    "_cancel_row diagnostics without the generation": (
        "engine.py",
        "c.claim_session_lease_generation if c.claim_token is not None else None",
        "c.claim_session_lease_generation if c.claim_token is None else None",
    ),
    "same_incarnation and->or": (
        "types.py",
        _SAME_INCARNATION,
        _SAME_INCARNATION.replace(" and ", " or "),
    ),
    "same_incarnation incarnation <=": (
        "types.py",
        _SAME_INCARNATION,
        _SAME_INCARNATION.replace("self.incarnation_id == other", "self.incarnation_id <= other"),
    ),
    "claimable_by_generation <": (
        "rules.py",
        "claim.claim_session_lease_generation != generation",
        "claim.claim_session_lease_generation < generation",
    ),
    **{
        f"_release leaves {column} {value}": (
            "engine.py",
            "claimed_at_ms=0, expires_at_ms=0",
            "claimed_at_ms=0, expires_at_ms=0".replace(f"{column}=0", f"{column}={value}"),
        )
        for column in ("claimed_at_ms", "expires_at_ms")
        for value in ("1", "-1")
    },
    "_validate_fence token >": (
        "engine.py",
        "if row.lease_token != fence.lease_token:",
        "if row.lease_token > fence.lease_token:",
    ),
}


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("promoted-suite")
    for name in TRACES:
        _, bounds, steps = PROMOTED_TRACES[name]
        trace = trace_of(ModelRunner(bounds), list(steps), f"promoted-{name}")
        write_trace(trace, out / f"promoted-{name}.itf.json")
    return out


def test_the_kernel_passes_the_promoted_traces(suite: Path) -> None:
    assert_replay_passes(suite)


@pytest.mark.parametrize("survivor", SURVIVORS)
def test_a_former_survivor_is_killed(suite: Path, survivor: str, tmp_path: Path) -> None:
    file, original, mutated = SURVIVORS[survivor]
    assert_mutant_killed(suite, tmp_path, file, original, mutated)
