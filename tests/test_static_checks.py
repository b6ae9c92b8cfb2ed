"""The package stays ruff- and mypy --strict-clean; run as part of the one test command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("kernel", "model", "conformance")
LINTED = [d for d in (*PACKAGES, "tests", "bench", "tools") if (ROOT / d).is_dir()]
#: development tooling and benchmarks outside the package, type-checked as plain scripts
TOOL_SCRIPTS = sorted(
    str(p.relative_to(ROOT)) for folder in ("tools", "bench") for p in (ROOT / folder).rglob("*.py")
)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, check=False
    )


def test_ruff_is_clean() -> None:
    result = _run("ruff", "check", *LINTED)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_applied() -> None:
    result = _run("ruff", "format", "--check", *LINTED)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("package", PACKAGES)
def test_mypy_strict_is_clean(package: str) -> None:
    result = _run("mypy", "-p", f"lashspec.{package}")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_is_clean_on_the_tools() -> None:
    result = _run("mypy", *TOOL_SCRIPTS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_kernel_and_model_are_independent() -> None:
    """The kernel never imports the model and the model never imports the kernel."""
    offenders = []
    for folder, forbidden in (("kernel", "model"), ("model", "kernel")):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text()
            if f"lashspec.{forbidden}" in text or f"from ..{forbidden}" in text:
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
