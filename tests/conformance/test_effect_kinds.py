"""Machine traces check every emitted effect's kind against the machine model's effect table.

A machine trace's outcome names the effects; their kinds (store or host, awaited, the lease
flags ``uses_lease``, ``releases_lease``, ``acquires_lease``, the reply a backend failure
produces) are class attributes the driver, hosts and docs/turn-machine.md read.  The last
Cosmic Ray measurement saw ten mutants of those flags survive every trace (docs/mutation.md,
"not runtime: docs renderer"), because nothing in a replay read them.  With the replay's
cross-check on, :mod:`lashspec.conformance.effect_kinds` compares each emitted effect with
the model's table; each case below is one such mutant, applied by hand to a copy of
``kernel/``: the campaign's replay of the ``machine-lease`` cover must fail on it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lashspec.conformance.effect_kinds import EffectKindDisagrees, check_effect_kind
from lashspec.conformance.machine_suite import generate_machine_suite, write_machine_suite
from lashspec.kernel import machine
from lashspec.model.machine_model import EFFECTS
from lashspec.model.profiles import machine_profile

from tests.conformance.mutant_replay import assert_mutant_killed, assert_replay_passes


def _effect_classes() -> list[type[machine.Effect]]:
    found = [
        value
        for value in vars(machine).values()
        if isinstance(value, type) and issubclass(value, machine.Effect)
    ]
    return [c for c in found if c not in (machine.Effect, machine.StoreEffect, machine.HostEffect)]


def test_every_kernel_effect_is_the_models_kind() -> None:
    classes = _effect_classes()
    assert sorted(c.__name__ for c in classes) == sorted(EFFECTS)
    for effect_class in classes:
        check_effect_kind(effect_class)


@pytest.mark.parametrize(
    ("flag", "effect"),
    [
        ("acquires_lease", machine.RenewLease),
        ("releases_lease", machine.WriteCheckpoint),
        ("uses_lease", machine.InspectPendingWork),
    ],
)
def test_a_wrong_flag_disagrees(flag: str, effect: type[machine.StoreEffect]) -> None:
    wrong = type(effect.__name__, (effect,), {flag: not getattr(effect, flag)})
    with pytest.raises(EffectKindDisagrees, match=flag):
        check_effect_kind(wrong)


def test_an_effect_the_model_lacks_disagrees() -> None:
    unknown = type("Teleport", (machine.HostEffect,), {})
    with pytest.raises(EffectKindDisagrees, match="no such effect"):
        check_effect_kind(unknown)


#: (original, mutated) in kernel/machine.py: survivors of the last measurement.
SURVIVORS: dict[str, tuple[str, str]] = {
    "AcquireLease acquires nothing": (
        "(LeaseAcquired, LeaseBusy, StoreFailed)\n    acquires_lease: ClassVar[bool] = True\n"
        "    session_id: str\n    owner:",
        "(LeaseAcquired, LeaseBusy, StoreFailed)\n    acquires_lease: ClassVar[bool] = False\n"
        "    session_id: str\n    owner:",
    ),
    "ReclaimLease acquires nothing": (
        "acquires_lease: ClassVar[bool] = True\n    session_id: str\n    claimant:",
        "acquires_lease: ClassVar[bool] = False\n    session_id: str\n    claimant:",
    ),
    "every store effect acquires": (
        "acquires_lease: ClassVar[bool] = False",
        "acquires_lease: ClassVar[bool] = True",
    ),
    "every store effect releases": (
        "releases_lease: ClassVar[bool] = False",
        "releases_lease: ClassVar[bool] = True",
    ),
    "every store effect uses the lease": (
        "uses_lease: ClassVar[bool] = False",
        "uses_lease: ClassVar[bool] = True",
    ),
    "CommitTurn releases nothing": (
        "    uses_lease: ClassVar[bool] = True\n    releases_lease: ClassVar[bool] = True\n"
        "    commit: RuntimeCommit",
        "    uses_lease: ClassVar[bool] = True\n    releases_lease: ClassVar[bool] = False\n"
        "    commit: RuntimeCommit",
    ),
    "ReleaseLease uses no lease": (
        "    uses_lease: ClassVar[bool] = True\n    releases_lease: ClassVar[bool] = True\n"
        "    completion:",
        "    uses_lease: ClassVar[bool] = False\n    releases_lease: ClassVar[bool] = True\n"
        "    completion:",
    ),
    "ReleaseLease releases nothing": (
        "    uses_lease: ClassVar[bool] = True\n    releases_lease: ClassVar[bool] = True\n"
        "    completion:",
        "    uses_lease: ClassVar[bool] = True\n    releases_lease: ClassVar[bool] = False\n"
        "    completion:",
    ),
    "RenewLease uses no lease": (
        "(LeaseRenewed, LeaseLost)\n    uses_lease: ClassVar[bool] = True",
        "(LeaseRenewed, LeaseLost)\n    uses_lease: ClassVar[bool] = False",
    ),
}


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("machine-lease")
    write_machine_suite(generate_machine_suite([machine_profile("machine-lease")]), out)
    return out


def test_the_kernel_passes_the_cover(suite: Path) -> None:
    assert_replay_passes(suite)


@pytest.mark.parametrize("survivor", SURVIVORS)
def test_a_former_survivor_is_killed(suite: Path, survivor: str, tmp_path: Path) -> None:
    original, mutated = SURVIVORS[survivor]
    output = assert_mutant_killed(suite, tmp_path, "machine.py", original, mutated)
    assert "EffectKindDisagrees" in output
