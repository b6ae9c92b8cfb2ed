"""Every shell example in README.md runs as written, in a fresh directory, with the installed CLI.

Each ```sh block is one test; its commands run in order in one temporary directory (a later
command may read what an earlier one wrote), through ``sh``, and must exit 0 and leave the
files they name. Exceptions, each said where it is made:

- commands that install (``pip install``): the set-up is what runs these tests;
- ``lashspec check``: minutes long; CI's recipe (``.ci/run``) runs it, which is asserted;
- benchmarks: minutes long and measured by hand; the scripts must exist and compile;
- ``--adapter`` with a port's command: no port exists here, so the reference adapter is
  substituted;
- ``lashspec export`` of the full suite (about 1.5 minutes): run at small bounds;
- ``--svg`` needs Graphviz's ``dot``; without it ``--svg FILE`` becomes ``--dot FILE.dot``
  (the same drawing, not rendered), so ``--dot-lane`` still has something to draw;
- Quint's own commands (installing it, ``quint run`` and the replay of what it wrote): a
  minute each; ``tests/conformance/test_quint.py`` runs the same round trip, which is asserted;
- ``--backend postgres`` needs a PostgreSQL server or its binaries (``.ci/run`` installs
  them); without either the command is skipped.
"""

from __future__ import annotations

import ast
import os
import py_compile
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
VENV = Path(sys.prefix)  # the virtualenv running these tests: the README's .venv
REFERENCE_ADAPTER = f"{VENV / 'bin' / 'python'} -m lashspec.conformance.reference_adapter"
SMALL_BOUNDS = "--owners 1 --batches 1 --inputs 1 --max-generation 2 --max-incarnation 0"


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"^ *```{language}\n(.*?)^ *```", README.read_text(), re.M | re.S)


def commands(block: str) -> list[str]:
    """The block's command lines, without trailing comments and prompts."""
    found = []
    for line in block.splitlines():
        command = re.sub(r"\s+#\s.*$", "", line).strip()
        if command and not command.startswith("#"):
            found.append(command)
    return found


def _is_install(command: str) -> bool:
    return "pip install" in command


def _is_check(command: str) -> bool:
    return re.search(r"lashspec check\b", command) is not None


def _is_benchmark(command: str) -> bool:
    return "bench/" in command


def _is_quint(command: str) -> bool:
    return "quint/install" in command or "quint run" in command or "trace_*" in command


def _postgres_unavailable(command: str) -> bool:
    if "--backend postgres" not in command or os.environ.get("LASHSPEC_PG_DSN"):
        return False
    return shutil.which("initdb") is None and not list(
        Path("/usr/lib/postgresql").glob("*/bin/initdb")
    )


def runnable(command: str) -> str:
    """The command as this test runs it (see the module docstring for each substitution)."""
    command = re.sub(
        r"--adapter '([^']*)'",
        lambda m: (
            m.group(0) if "reference_adapter" in m.group(1) else f"--adapter '{REFERENCE_ADAPTER}'"
        ),
        command,
    )
    # Only an export given no bounds (nothing follows its directory) is the full suite.
    command = re.sub(r"(lashspec export \S+)(?=\s*(?:&&|$))", rf"\1 {SMALL_BOUNDS}", command)
    if shutil.which("dot") is None:
        command = re.sub(r" --svg (\S+)", r" --dot \1.dot", command)
    return command


def expected_files(command: str) -> list[str]:
    """The files a lashspec command line says it writes."""
    words = shlex.split(command.replace("&&", " ; "))
    files = []
    for option in ("--dot", "--svg", "--graphml", "--report"):
        files += [words[n + 1] for n, word in enumerate(words[:-1]) if word == option]
    files += [
        str(Path(words[n + 1]) / "index.json")
        for n, word in enumerate(words[:-1])
        if word == "export" and words[n - 1].endswith("lashspec")
    ]
    return files


SH_BLOCKS = code_blocks("sh")


def test_readme_examples_are_found_and_each_kind_is_handled() -> None:
    every = [command for block in SH_BLOCKS for command in commands(block)]
    assert len(SH_BLOCKS) >= 4 and len(every) >= 10, every
    assert sum(_is_install(c) for c in every) == 3, "two set-up commands and CI's pip install"
    assert any(_is_check(c) for c in every)
    ci = (ROOT / ".ci" / "run").read_text()
    assert ".venv/bin/lashspec check --report" in ci, "CI's recipe runs lashspec check"
    assert any("--dot-lane" in c and "--svg" in c for c in every), "a picture example"
    if any(_is_quint(c) for c in every):
        quint_test = (ROOT / "tests" / "conformance" / "test_quint.py").read_text()
        assert "--mbt" in quint_test, "the Quint round trip is tested where Quint runs"


@pytest.mark.parametrize("block", SH_BLOCKS, ids=[f"block{n}" for n in range(len(SH_BLOCKS))])
def test_readme_shell_example_runs_as_written(block: str, tmp_path: Path) -> None:
    (tmp_path / ".venv").symlink_to(VENV)
    environment = {**os.environ, "PATH": f"{VENV / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    for command in commands(block):
        if _is_install(command) or (_is_check(command) and "export" not in command):
            continue  # the set-up ran these; CI's recipe runs check (see the test above)
        if _is_quint(command) or _postgres_unavailable(command):
            continue  # see the module docstring
        if _is_benchmark(command):
            script = ROOT / shlex.split(command)[1]
            py_compile.compile(str(script), cfile=str(tmp_path / "compiled.pyc"), doraise=True)
            continue
        run = runnable(command)
        done = subprocess.run(
            ["sh", "-c", run],
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=900,  # a guard against a hang, not a speed limit
        )
        assert done.returncode == 0, f"{run}\nexit {done.returncode}\n{done.stdout}\n{done.stderr}"
        for name in expected_files(run):
            assert (tmp_path / name).is_file(), f"{run} did not write {name}"


def test_readme_pytest_example_closes_its_adapter() -> None:
    (example,) = [b for b in code_blocks("python") if "lashspec_replay" in b]
    tree = ast.parse(textwrap.dedent(example))
    fixture = next(
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and node.name == "port_adapter"
    )
    body = ast.unparse(fixture)
    assert "scope='session'" in body, "one adapter process for the whole session"
    assert "yield" in body and ".close()" in body, "the fixture closes the adapter"
