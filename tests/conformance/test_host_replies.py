"""Machine traces kill the Cosmic Ray survivors of the turn machine's wrong-reply guards and
of the driver's own loop.

Until format 6 every machine trace fed each machine only the store's own answer to its
outstanding effect, and the adapter fed that answer itself after performing the effect, so
the guards refusing a reply that is not the awaited one, or that carries a lease or claim of
another session or lease generation, were never asked, nor did the driver's loop ever feed a
reply of its own store call. ``host_misfeed(o, reply)`` feeds o's machine such a wrong reply
(the model says it is refused and nothing changes; the promoted walk ``misfed-replies`` feeds
each kind at every outstanding effect of a turn, and while an interrupt or a cancellation
waits for the store); every ``store_step`` now lets the driver's loop perform the outstanding
effect and feed its reply (a run-to-completion step of ``TurnDriver.feed``); and
``open_driver(session)`` opens a driver over the store for the trace's session or another
session id, which must not start from the store's checkpoint (the promoted walk
``checkpoint-in-second-turn`` opens them once the store holds turn index 1). The promoted
walk ``turn-work-is-no-command`` has the driver inspect a queue holding only turn work, which
is no session command.

Each case below is one such surviving mutant, applied by hand to a copy of ``kernel/``;
replaying the three promoted walks through the campaign's own replay command must fail for it
and pass for the kernel itself.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lashspec.conformance.machine_suite import PROMOTED_WALKS

from tests.conformance.mutant_replay import (
    assert_mutant_killed,
    assert_replay_passes,
    write_promoted_machine_walks,
)

#: The promoted walks (conformance/machine_suite.py) the cases below need.
WALKS = ("misfed-replies", "checkpoint-in-second-turn", "turn-work-is-no-command")

_CLAIM_GENERATION = "if m.lease is not None and claim.session_lease_generation != m.lease"
_RENEWAL_GENERATION = (
    "if isinstance(event, LeaseRenewed) and held and lease.fencing_token != held.fencing_token:"
)
_BOUND_HERE = "bound_here = read is not None and read.session_id == session_id"

#: (kernel file, original code, mutated code): survivors of the last measurement.
SURVIVORS: dict[str, tuple[str, str, str]] = {
    "handle: wrong reply checked only when nothing is awaited": (
        "machine.py",
        "and self.awaiting is not None\n            and type(event) not in",
        "and self.awaiting is None\n            and type(event) not in",
    ),
    "accepts: reply type checked only when nothing is awaited": (
        "machine.py",
        "if event_type.is_reply and self.awaiting is not None:",
        "if event_type.is_reply and self.awaiting is None:",
    ),
    "claim session >": (
        "machine.py",
        "if claim.session_id != m.session_id:",
        "if claim.session_id > m.session_id:",
    ),
    "claim session <": (
        "machine.py",
        "if claim.session_id != m.session_id:",
        "if claim.session_id < m.session_id:",
    ),
    "claim generation: not lease held": (
        "machine.py",
        _CLAIM_GENERATION,
        _CLAIM_GENERATION.replace("if m.lease", "if not m.lease"),
    ),
    "claim generation: lease is None": (
        "machine.py",
        _CLAIM_GENERATION,
        _CLAIM_GENERATION.replace("is not None", "is None"),
    ),
    "claim generation >": (
        "machine.py",
        _CLAIM_GENERATION,
        _CLAIM_GENERATION.replace("!=", ">"),
    ),
    "claim generation <": (
        "machine.py",
        _CLAIM_GENERATION,
        _CLAIM_GENERATION.replace("!=", "<"),
    ),
    "lease session >": (
        "machine.py",
        "if lease.session_id != m.session_id:",
        "if lease.session_id > m.session_id:",
    ),
    "lease session <": (
        "machine.py",
        "if lease.session_id != m.session_id:",
        "if lease.session_id < m.session_id:",
    ),
    "renewal generation: not a renewal": (
        "machine.py",
        _RENEWAL_GENERATION,
        _RENEWAL_GENERATION.replace("if isinstance", "if not isinstance"),
    ),
    "renewal generation >": (
        "machine.py",
        _RENEWAL_GENERATION,
        _RENEWAL_GENERATION.replace("!=", ">"),
    ),
    "renewal generation <": (
        "machine.py",
        _RENEWAL_GENERATION,
        _RENEWAL_GENERATION.replace("!=", "<"),
    ),
    "checkpoint work: inputs and work both foreign": (
        "machine.py",
        "return _claim_problem(m, event.inputs) or _claim_problem(m, event.work)",
        "return _claim_problem(m, event.inputs) and _claim_problem(m, event.work)",
    ),
    "feed: reply is None": ("driver.py", "if reply is not None:", "if reply is None:"),
    "feed: not reply is not None": (
        "driver.py",
        "if reply is not None:",
        "if not reply is not None:",
    ),
    "TurnDriver.session_id not a property": (
        "driver.py",
        "    @property\n    def session_id(self) -> str:",
        "    def session_id(self) -> str:",
    ),
    "bound here >=": ("driver.py", _BOUND_HERE, _BOUND_HERE.replace("==", ">=")),
    "bound here <=": ("driver.py", _BOUND_HERE, _BOUND_HERE.replace("==", "<=")),
    "checkpoint read unless bound": (
        "driver.py",
        "checkpoint = read.checkpoint if read is not None and bound_here else None",
        "checkpoint = read.checkpoint if read is not None or bound_here else None",
    ),
    "inspection counts turn work as a command": (
        "driver.py",
        "if batch.work_class is QueuedWorkClass.SESSION_COMMAND",
        "if batch.work_class >= QueuedWorkClass.SESSION_COMMAND",
    ),
    "positional-only store, session and owner": (
        "driver.py",
        "        owner: LeaseOwnerIdentity,\n        *,\n        clock",
        "        owner: LeaseOwnerIdentity,\n        /,\n        clock",
    ),
}


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("host-replies")
    write_promoted_machine_walks(out, (w for w in PROMOTED_WALKS if w.name in WALKS))
    return out


def test_the_kernel_refuses_misfed_replies_as_the_model_says(suite: Path) -> None:
    assert_replay_passes(suite)


@pytest.mark.parametrize("survivor", SURVIVORS)
def test_a_former_survivor_is_killed(suite: Path, survivor: str, tmp_path: Path) -> None:
    file, original, mutated = SURVIVORS[survivor]
    assert_mutant_killed(suite, tmp_path, file, original, mutated)
