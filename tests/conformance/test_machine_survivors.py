"""Machine traces kill the Cosmic Ray survivors of driver construction and of the driver's
lease-loss mapping.

Until format 5 every machine trace built its drivers with the one valid configuration the
adapter chose (a 60 s TTL, the bounds as claim limits), so kernels with other defaults (lash's
30 s TTL renewed every 10 s, 64 inputs and 64 batches per claim), or that accepted or refused
other timings and limits, passed them all. ``build_driver(config)`` reports what a driver built
with each named configuration runs with, or the variant of the error refusing it, as the
machine model decides. And the driver answers a lease-expired store error with LeaseLost
exactly for the effects whose class says they present the lease (``uses_lease``); the
promoted walks ``lease-expires-during-*`` let the lease expire while each such effect is
outstanding, where the cover met the expiry only for some of them; ``interrupted-*`` fail a
claim after an interrupt, where only a command claim's failure releases the lease. The
adapter reads a live owner's phase and cycle outcome through its driver's properties.

Each case below is one such surviving mutant, applied by hand to a copy of ``kernel/``;
replaying a trace of every ``build_driver`` configuration through the campaign's own replay
command must fail for it and pass for the kernel itself.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lashspec.conformance.itf import write_trace
from lashspec.conformance.machine_suite import (
    PROMOTED_WALKS,
    PromotedWalk,
    promoted_walk,
    trace_of_walk,
)
from lashspec.model.dsl import compile_model
from lashspec.model.machine_model import DRIVER_CONFIGS, MachineBounds, build_machine_model

from tests.conformance.mutant_replay import (
    assert_mutant_killed,
    assert_replay_passes,
    write_promoted_machine_walks,
)

#: The promoted walks (conformance/machine_suite.py) the cases below need.
WALKS = ("lease-expires-", "interrupted-")

#: (kernel file, original code, mutated code): survivors of the last measurement.
SURVIVORS: dict[str, tuple[str, str, str]] = {
    "default ttl 30001": ("types.py", "ttl_ms: int = 30_000", "ttl_ms: int = 30001"),
    "default renew 9999": (
        "types.py",
        "renew_interval_ms: int = 10_000",
        "renew_interval_ms: int = 9999",
    ),
    "ttl floor < 0": ("types.py", "if self.ttl_ms < 1:", "if self.ttl_ms < 0:"),
    "renew floor <= 1": (
        "types.py",
        "if self.renew_interval_ms < 1:",
        "if self.renew_interval_ms <= 1:",
    ),
    "ratio 3 + renew": (
        "types.py",
        "if self.ttl_ms < 3 * self.renew_interval_ms:",
        "if self.ttl_ms < 3 + self.renew_interval_ms:",
    ),
    "ratio !=": (
        "types.py",
        "if self.ttl_ms < 3 * self.renew_interval_ms:",
        "if self.ttl_ms != 3 * self.renew_interval_ms:",
    ),
    "from_ttl /": ("types.py", "return cls(ttl_ms, ttl_ms // 3)", "return cls(ttl_ms, ttl_ms / 3)"),
    "default max inputs 63": ("machine.py", "DEFAULT_MAX_INPUTS = 64", "DEFAULT_MAX_INPUTS = 63"),
    "default max batches 65": (
        "machine.py",
        "DEFAULT_MAX_BATCHES = 64",
        "DEFAULT_MAX_BATCHES = 65",
    ),
    "max inputs < 0": ("machine.py", "if max_inputs < 1:", "if max_inputs < 0:"),
    "max batches <= 1": ("machine.py", "if max_batches < 1:", "if max_batches <= 1:"),
    "TurnDriver.state not a property": (
        "driver.py",
        "    @property\n    def state(self) -> TurnState:",
        "    def state(self) -> TurnState:",
    ),
    "TurnDriver.last_outcome not a property": (
        "driver.py",
        "    @property\n    def last_outcome(self)",
        "    def last_outcome(self)",
    ),
    "ClaimLeadingCommand uses no lease": (
        "machine.py",
        "(CommandClaimed, LeaseLost, StoreFailed)\n    uses_lease: ClassVar[bool] = True",
        "(CommandClaimed, LeaseLost, StoreFailed)\n    uses_lease: ClassVar[bool] = False",
    ),
    "draining guard is not": (
        "machine.py",
        "lambda m, e: m.awaiting is ClaimLeadingCommand",
        "lambda m, e: m.awaiting is not ClaimLeadingCommand",
    ),
    "draining guard <=": (
        "machine.py",
        "lambda m, e: m.awaiting is ClaimLeadingCommand",
        "lambda m, e: m.awaiting <= ClaimLeadingCommand",
    ),
    "ClaimCheckpointWork uses no lease": (
        "machine.py",
        "(CheckpointWorkClaimed, LeaseLost, StoreFailed)\n    uses_lease: ClassVar[bool] = True",
        "(CheckpointWorkClaimed, LeaseLost, StoreFailed)\n    uses_lease: ClassVar[bool] = False",
    ),
}


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    bounds = MachineBounds(owners=1, max_incarnation=0, batches=1, inputs=1, max_turns=1)
    compiled = compile_model(build_machine_model(bounds))
    walk = PromotedWalk(
        "driver-configurations",
        "machine-lease",
        "every build_driver configuration",
        tuple(("build_driver", {"config": name}) for name in DRIVER_CONFIGS),
    )
    meta = {"system": "machine", "bounds": bounds.as_dict(), "kind": "promoted"}
    trace = trace_of_walk(compiled, promoted_walk(compiled, walk), "driver-configurations", meta)
    out = tmp_path_factory.mktemp("driver-configurations")
    write_trace(trace, out / "machine-driver-configurations.itf.json")
    write_promoted_machine_walks(out, (w for w in PROMOTED_WALKS if w.name.startswith(WALKS)))
    return out


def test_the_kernel_builds_drivers_as_the_model_says(suite: Path) -> None:
    assert_replay_passes(suite)


@pytest.mark.parametrize("survivor", SURVIVORS)
def test_a_former_survivor_is_killed(suite: Path, survivor: str, tmp_path: Path) -> None:
    file, original, mutated = SURVIVORS[survivor]
    assert_mutant_killed(suite, tmp_path, file, original, mutated)
