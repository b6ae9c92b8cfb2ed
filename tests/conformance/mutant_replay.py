"""Replay trace files against ``kernel/`` or a copy of it carrying one hand-applied mutant.

The survivor tests (``test_*_survivors.py``, ``test_bad_requests.py``) show that a trace
kills a mutant the Cosmic Ray campaign saw survive (docs/mutation.md): the campaign's own
replay command must pass on the kernel and fail on the mutated copy.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

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
