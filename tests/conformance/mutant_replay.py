"""Replay trace files against ``kernel/`` or a copy of it carrying one hand-applied mutant.

The survivor tests (``test_*_survivors.py``, ``test_bad_requests.py``) show that a trace
kills a mutant the Cosmic Ray campaign saw survive (docs/mutation.md): the campaign's own
replay command must pass on the kernel and fail on the mutated copy.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from lashspec.conformance.itf import write_trace
from lashspec.conformance.machine_suite import PromotedWalk, promoted_trace
from lashspec.model.dsl import compile_model
from lashspec.model.machine_model import build_machine_model
from lashspec.model.profiles import machine_profile

REPO = Path(__file__).resolve().parents[2]
KERNEL = REPO / "kernel"
REPLAY = REPO / "tools" / "mutation" / "replay_suite.py"
SUBPROCESS_GUARD_S = 300  # a hang guard, not a timing assertion


def replay(suite: Path, kernel_dir: Path) -> subprocess.CompletedProcess[str]:
    """The campaign's replay of ``suite`` against the kernel sources in ``kernel_dir``."""
    command = [sys.executable, str(REPLAY), "--suite", str(suite), "--kernel-dir", str(kernel_dir)]
    return subprocess.run(command, capture_output=True, text=True, timeout=SUBPROCESS_GUARD_S)


def mutated_kernel(directory: Path, file: str, original: str, mutated: str) -> Path:
    """A copy of ``kernel/`` in ``directory`` whose ``file`` has its one ``original`` replaced
    by ``mutated``."""
    copy = directory / "kernel"
    shutil.copytree(KERNEL, copy, ignore=shutil.ignore_patterns("__pycache__"))
    source = (copy / file).read_text(encoding="utf-8")
    assert source.count(original) == 1, f"kernel/{file} no longer holds {original!r} once"
    (copy / file).write_text(source.replace(original, mutated), encoding="utf-8")
    return copy


def assert_replay_passes(suite: Path) -> None:
    """The campaign's replay of ``suite`` passes on the unmutated ``kernel/``."""
    result = replay(suite, KERNEL)
    assert result.returncode == 0, result.stdout + result.stderr


def assert_mutant_killed(
    suite: Path, directory: Path, file: str, original: str, mutated: str
) -> str:
    """The campaign's replay of ``suite`` fails on ``kernel/`` with the one hand-applied mutant
    (``original`` -> ``mutated`` in ``file``); returns the replay's output."""
    result = replay(suite, mutated_kernel(directory, file, original, mutated))
    assert result.returncode == 1, result.stdout + result.stderr
    return result.stdout + result.stderr


def write_promoted_machine_walks(out: Path, walks: Iterable[PromotedWalk]) -> None:
    """Write the machine traces of ``walks`` (promoted walks of the machine profiles) to
    ``out``, as the exported machine suite has them."""
    for walk in walks:
        profile = machine_profile(walk.profile)
        compiled = compile_model(build_machine_model(profile.bounds))
        meta = {"system": "machine", "bounds": profile.bounds.as_dict(), "profile": profile.name}
        trace = promoted_trace(compiled, profile, walk, meta)
        write_trace(trace, out / f"{trace.trace_id}.itf.json")
