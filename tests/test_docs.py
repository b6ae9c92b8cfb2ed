"""The documentation names real tests, real model invariants and real commands."""

from __future__ import annotations

import re
from pathlib import Path

from lashspec.model.kernel_model import build_model

ROOT = Path(__file__).resolve().parent.parent


def _test_functions() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "tests").rglob("test_*.py"):
        names.update(re.findall(r"^def (test_\w+)", path.read_text(), flags=re.MULTILINE))
    return names


def test_kernel_doc_names_only_existing_tests() -> None:
    text = (ROOT / "docs" / "kernel.md").read_text()
    mentioned = set(re.findall(r"`(test_\w+)`", text))
    assert mentioned, "docs/kernel.md should name tests"
    missing = sorted(mentioned - _test_functions())
    assert not missing, f"docs/kernel.md names tests that do not exist: {missing}"


def test_kernel_doc_maps_every_seed_scenario_and_every_store_invariant() -> None:
    text = (ROOT / "docs" / "kernel.md").read_text()
    scenarios = {n for n in _test_functions() if n.startswith("test_runtime_scenario_")}
    scenarios -= {n for n in scenarios if "coverage" in n}
    assert len(scenarios) == 9
    for name in scenarios:
        assert f"`{name}`" in text, f"docs/kernel.md does not map {name}"
    rows = re.findall(r"^\| (\d+) \|", text, flags=re.MULTILINE)
    assert [int(r) for r in rows] == list(range(1, 38))


def test_kernel_doc_names_only_existing_model_invariants() -> None:
    text = (ROOT / "docs" / "kernel.md").read_text()
    table = text[text.index("## Invariants") :]
    invariants = {inv.name for inv in build_model().invariants}
    cited: set[str] = set()
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.split("|")]
        if len(cells) > 3 and cells[1].isdigit():
            cited.update(re.findall(r"`([a-z_]+)`", cells[3]))
    unknown = sorted(cited - invariants)
    assert not unknown, f"docs/kernel.md cites unknown model invariants: {unknown}"


def _setup_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    setup = text[text.index("## Set up") :]
    setup = setup[: setup.index("\n## ", 1)]
    return re.findall(r"```sh\n(.*?)\n```", setup, flags=re.DOTALL)


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_command() -> None:
    commands = _setup_commands()
    assert len(commands) == 2, commands
    install_and_check, tests = commands
    assert install_and_check.endswith("lashspec check")
    assert tests.endswith("python -m pytest -q -n auto")
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests in ci, ".ci/run must run exactly the README's test command"


def test_readme_links_point_to_existing_files() -> None:
    text = (ROOT / "README.md").read_text()
    for target in re.findall(r"\]\(([^)#]+)\)", text):
        if "://" in target:
            continue  # a web page, not a file of this repository
        assert (ROOT / target).exists(), f"README links to missing {target}"
