"""Differential test: the model and the kernel driven side by side by hypothesis.

Each step picks one of the transitions the model allows in its current state, applies the
same action to the kernel (through the trace vocabulary's adapter) and compares the outcome
and the projected state. Hypothesis shrinks any disagreement to a short action sequence.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from lashspec.conformance.broken_kernels import broken_memory_store_factory
from lashspec.conformance.itf import normalise_outcome, normalise_state
from lashspec.conformance.kernel_adapter import KernelAdapter
from lashspec.conformance.modeltrace import ModelRunner
from lashspec.conformance.replay import kernel_target
from lashspec.model.kernel_model import trace_outcome
from lashspec.model.profiles import PROFILES, Profile

RUNNERS = {p.name: ModelRunner(p.bounds) for p in PROFILES}


def machine_for(
    profile: Profile, backend: str, broken: str | None = None
) -> type[RuleBasedStateMachine]:
    runner = RUNNERS[profile.name]
    compiled = runner.compiled

    class ModelVersusKernel(RuleBasedStateMachine):
        kernel: KernelAdapter
        state: tuple[Any, ...]

        @initialize()
        def start(self) -> None:
            self.kernel = (
                kernel_target(backend)
                if broken is None
                else KernelAdapter(broken_memory_store_factory(broken))
            )
            self.kernel.reset(profile.bounds.as_dict())
            self.state = runner.initial()
            self.steps: list[str] = []

        @rule(data=st.data())
        def step(self, data: st.DataObject) -> None:
            moves = compiled.successors(self.state)
            binding, outcome, successor = data.draw(st.sampled_from(moves), label="transition")
            action = compiled.bindings[binding].action
            picks = dict(compiled.bindings[binding].params)
            expected = normalise_outcome(trace_outcome(compiled.model, action, outcome))
            actual = normalise_outcome(self.kernel.apply(action, picks))
            self.steps.append(f"{action}{picks}")
            assert actual == expected, f"after {self.steps}: outcome {actual} != {expected}"
            self.state = successor

        @invariant()
        def same_state(self) -> None:
            if not hasattr(self, "kernel"):
                return
            expected = runner.state(self.state)
            observed = normalise_state(self.kernel.observe())
            actual = {name: observed.get(name, "<missing>") for name in expected}
            assert actual == expected, f"after {self.steps}: states differ"

        def teardown(self) -> None:
            if hasattr(self, "kernel"):
                self.kernel.close()

    ModelVersusKernel.__name__ = f"ModelVersusKernel_{profile.name}_{backend}"
    return ModelVersusKernel


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
def test_model_and_memory_kernel_agree_on_random_walks(profile: Profile) -> None:
    machine = machine_for(profile, "memory")
    machine.TestCase.settings = settings(
        max_examples=60,
        stateful_step_count=30,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    machine.TestCase().runTest()


def test_model_and_sqlite_kernel_agree_on_random_walks() -> None:
    machine = machine_for(PROFILES[1], "sqlite")
    machine.TestCase.settings = settings(
        max_examples=15,
        stateful_step_count=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    machine.TestCase().runTest()


@pytest.mark.parametrize("broken", ["commit_keeps_lease", "release_does_nothing"])
def test_random_walks_find_a_broken_kernel(broken: str) -> None:
    machine = machine_for(PROFILES[0], "memory", broken)
    machine.TestCase.settings = settings(
        max_examples=200,
        stateful_step_count=30,
        deadline=None,
        database=None,
        # finding the divergence is what is tested; shrinking it costs minutes
        phases=(Phase.explicit, Phase.reuse, Phase.generate),
        suppress_health_check=[HealthCheck.too_slow],
    )
    with pytest.raises(AssertionError, match=r"states differ|outcome"):
        machine.TestCase().runTest()
