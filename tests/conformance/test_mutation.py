"""The mutation tooling in tools/mutation (docs/mutation.md), without running a campaign.

The replay command Cosmic Ray runs per mutant must pass for the kernel and fail for a broken
copy of it, directly and through its replay server; the equivalents and survivor-group files
must name code that exists; the filters must find annotations and function bodies.  The
campaign itself is ``python tools/mutation/run.py`` (or ``python bench/mutation.py``).
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from lashspec.conformance.itf import write_trace
from lashspec.conformance.modeltrace import ModelRunner, trace_of
from lashspec.conformance.seed_traces import SEED_SCENARIO_TRACES
from lashspec.model.profiles import SCENARIO_BOUNDS

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / "tools" / "mutation"
REPLAY = TOOLS / "replay_suite.py"
SUBPROCESS_GUARD_S = 300  # a hang guard, not a timing assertion
#: A fencing check turned around: every seed scenario presenting a valid fence fails.
FENCE_CHECK = "row.fencing_token != fence.fencing_token"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"lashspec_tools_{name}", TOOLS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


run = _load("run")


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    runner = ModelRunner(SCENARIO_BOUNDS)
    out = tmp_path_factory.mktemp("suite")
    for name, (_, steps) in SEED_SCENARIO_TRACES.items():
        trace = trace_of(runner, [(a, dict(p)) for a, p in steps], name)
        write_trace(trace, out / f"{name}.itf.json")
    return out


def _kernel_copy(tmp_path: Path, old: str, new: str) -> Path:
    copy = tmp_path / "kernel"
    shutil.copytree(REPO / "kernel", copy, ignore=shutil.ignore_patterns("__pycache__"))
    engine = copy / "engine.py"
    source = engine.read_text(encoding="utf-8")
    assert old in source, f"kernel/engine.py no longer holds {old!r}: pick another break"
    engine.write_text(source.replace(old, new), encoding="utf-8")
    return copy


@pytest.fixture
def broken_kernel(tmp_path: Path) -> Path:
    return _kernel_copy(tmp_path, FENCE_CHECK, FENCE_CHECK.replace("!=", "=="))


def _replay(suite: Path, kernel_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(REPLAY), "--suite", str(suite), "--kernel-dir", str(kernel_dir)]
    return subprocess.run(
        [*command, *extra], capture_output=True, text=True, timeout=SUBPROCESS_GUARD_S
    )


def test_the_replay_passes_for_the_kernel(suite: Path) -> None:
    result = _replay(suite, REPO / "kernel")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(SEED_SCENARIO_TRACES)} traces, 0 failing" in result.stdout


def test_the_replay_fails_for_a_broken_copy(suite: Path, broken_kernel: Path) -> None:
    result = _replay(suite, broken_kernel)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 failing" in result.stdout  # it stops at the first failing trace


def test_a_kernel_that_does_not_import_fails(suite: Path, tmp_path: Path) -> None:
    copy = _kernel_copy(tmp_path, FENCE_CHECK, FENCE_CHECK + " +")
    result = _replay(suite, copy)
    assert result.returncode == 1
    assert "SyntaxError" in result.stdout


def test_the_replay_needs_a_suite(tmp_path: Path) -> None:
    assert _replay(tmp_path / "missing", REPO / "kernel").returncode == 2


@pytest.fixture
def server(suite: Path, tmp_path: Path) -> Iterator[Path]:
    socket_path = tmp_path / "replay.sock"
    command = [sys.executable, str(REPLAY), "--suite", str(suite), "--serve", str(socket_path)]
    process = subprocess.Popen(command)
    try:
        for _ in range(SUBPROCESS_GUARD_S * 10):
            if socket_path.exists() or process.poll() is not None:
                break
            time.sleep(0.1)
        assert socket_path.exists(), "the replay server did not start"
        yield socket_path
    finally:
        process.terminate()
        process.wait(timeout=SUBPROCESS_GUARD_S)


def test_the_replay_server_judges_each_kernel_afresh(
    suite: Path, broken_kernel: Path, server: Path
) -> None:
    # broken, sound, broken again: a child never reuses another child's kernel
    for kernel_dir, status in ((broken_kernel, 1), (REPO / "kernel", 0), (broken_kernel, 1)):
        result = _replay(suite, kernel_dir, "--server", str(server))
        assert result.returncode == status, (kernel_dir, result.stdout + result.stderr)


def test_trace_selection_replays_the_traces_entering_the_changed_function(
    suite: Path, broken_kernel: Path, tmp_path: Path
) -> None:
    replay_suite = _load("replay_suite")
    coverage = tmp_path / "entered.json"
    recorded = _replay(suite, REPO / "kernel", "--functions-out", str(coverage))
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    selection = replay_suite.TraceSelection(REPO / "kernel", coverage)
    traces = list(range(len(SEED_SCENARIO_TRACES)))  # stand-ins: selection only indexes
    assert selection.select(REPO / "kernel", traces) == traces  # no change: every trace
    chosen = selection.select(broken_kernel, traces)
    assert 0 < len(chosen) <= len(traces)  # the fence check runs in some scenarios
    unused = _kernel_copy(tmp_path / "unused", FENCE_CHECK, FENCE_CHECK)
    driver = unused / "driver.py"
    source = driver.read_text(encoding="utf-8")
    marker = "\n    def feed("
    assert marker in source
    body = source.index("\n", source.index(":\n", source.index(marker))) + 1
    indent = " " * 8
    driver.write_text(source[:body] + f"{indent}pass\n" + source[body:], encoding="utf-8")
    assert selection.select(unused, traces) == traces  # a line more: every trace
    lines = source.splitlines(keepends=True)
    first = next(i for i, line in enumerate(lines) if line.startswith("    def feed("))
    target = next(i for i in range(first + 1, len(lines)) if " is not None:" in lines[i])
    lines[target] = lines[target].replace(" is not None:", " is None:", 1)
    driver.write_text("".join(lines), encoding="utf-8")
    # machine traces drive TurnMachine and the store directly: TurnDriver.feed runs in no trace
    assert selection.select(unused, traces) == []


def test_surviving_dataclass_flag_mutants_are_equivalent_by_rule() -> None:
    def mutant(occurrence: int, outcome: str, old: str, new: str) -> object:
        key = run.MutantKey("kernel/types.py", "core/ReplaceTrueWithFalse", occurrence)
        diff = f"--- a\n+++ b\n-{old}\n+{new}\n"
        return run.Mutant(key, 7, 0, 7, 30, "Lease", outcome, diff)

    flags = "@dataclass(frozen=True, slots=True)"
    mutants = [
        mutant(0, "survived", flags, "@dataclass(frozen=True, slots=False)"),
        mutant(1, "survived", flags, "@dataclass(frozen=False, slots=True)"),
        mutant(2, "killed", flags, "@dataclass(frozen=False, slots=True)"),
        mutant(3, "survived", "return True", "return False"),
    ]
    found = run.dataclass_flag_equivalents(mutants)
    assert sorted(k.occurrence for k in found) == [0, 1]
    assert [e.reason for e in found.values()] == [
        run.DATACLASS_FLAG_REASONS["slots"],
        run.DATACLASS_FLAG_REASONS["frozen"],
    ]


def test_the_equivalents_name_existing_code() -> None:
    equivalents = run.load_equivalents()
    assert run.check_equivalent_locations(equivalents) == []
    for entry in equivalents.values():
        assert entry.reason.strip(), entry.key
        assert entry.key.file.startswith("kernel/"), entry.key


def _surplus_mutants(occurrences: tuple[int, ...]) -> tuple[int, list[object]]:
    """NumberReplacer mutants of rules.py's ``CLAIM_SCAN_SURPLUS = 32`` (+1, then -1)."""
    lines = (run.REPO_ROOT / "kernel" / "rules.py").read_text(encoding="utf-8").splitlines()
    line = next(n for n, text in enumerate(lines, 1) if text.startswith("CLAIM_SCAN_SURPLUS = "))
    col = lines[line - 1].index("32")
    mutants = [
        run.Mutant(
            run.MutantKey("kernel/rules.py", "core/NumberReplacer", k),
            line,
            col,
            line,
            col + 2,
            "<module>",
            "pending",
        )
        for k in occurrences
    ]
    return line, mutants


def _entry(occurrence: int, line: int, code: str) -> str:
    return (
        '[[equivalent]]\nfile = "kernel/rules.py"\noperator = "core/NumberReplacer"\n'
        f'occurrence = {occurrence}\nline = {line}\ncode = "{code}"\nreason = "why"\n'
    )


def test_rekey_moves_a_stale_entry_to_the_mutant_that_replaces_its_code() -> None:
    rekey = _load("rekey_equivalents")
    line, mutants = _surplus_mutants((8, 9))  # an edit above shifted the pair (6, 7) by two
    stale = _entry(7, line - 3, "CLAIM_SCAN_SURPLUS = 32")  # the -1 member, three lines lower
    text, changes, failures = rekey.rekey(stale, mutants)
    assert failures == [] and len(changes) == 1
    assert f"occurrence = 9\nline = {line}\n" in text
    current = _entry(9, line, "CLAIM_SCAN_SURPLUS = 32")
    assert rekey.rekey(current, mutants) == (current, [], [])


def test_rekey_reports_an_entry_whose_code_is_gone() -> None:
    rekey = _load("rekey_equivalents")
    line, mutants = _surplus_mutants((6, 7))
    gone = _entry(6, line, "CLAIM_SCAN_SURPLUS = 33")
    text, changes, failures = rekey.rekey(gone, mutants)
    assert text == gone and changes == [] and len(failures) == 1


def test_the_survivor_groups_name_existing_functions() -> None:
    groups = run.load_survivor_groups()
    assert groups, "tools/mutation/survivor_groups.toml is empty"
    defined: dict[str, set[str]] = {}
    for file, function in groups:
        if file not in defined:
            source = (REPO / file).read_text(encoding="utf-8")
            defined[file] = {name for _, _, name in run.qualified_spans(source)}
        assert function in defined[file] or function == "<module>", (file, function)


SAMPLE = """\
from __future__ import annotations


class Row:
    size: int | None = None

    @property
    def full(self) -> bool:
        return self.size == 3


def pick(rows: list[Row], limit: int | None) -> Row | None:
    return rows[0] if rows and limit != 0 else None
"""


def test_annotation_spans_cover_every_annotation_and_nothing_else() -> None:
    lines = SAMPLE.splitlines()
    texts = sorted(
        lines[start[0] - 1][start[1] : end[1]] for start, end in run.annotation_spans(SAMPLE)
    )
    assert texts == sorted(["int | None", "bool", "list[Row]", "int | None", "Row | None"])


def test_qualified_spans_name_methods_by_their_class() -> None:
    names = {name: (start, end) for start, end, name in run.qualified_spans(SAMPLE)}
    assert names["Row.full"] == ((7, 4), (9, 29))  # from the decorator on
    assert set(names) == {"Row", "Row.full", "pick"}


def test_function_spans_report_the_code_objects_first_line() -> None:
    spans = {name: (first, start) for first, name, start, _ in run.function_spans(SAMPLE)}
    assert spans["full"] == (7, (9, 8))  # the decorator's line, as co_firstlineno says
    assert spans["pick"] == (12, (13, 4))
