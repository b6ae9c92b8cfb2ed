"""Mutation campaign of kernel/ against the conformance traces alone, with Cosmic Ray.

    python tools/mutation/run.py [--jobs 2] [--modules engine,rules,memory,types]
        [--timeout 60] [--workdir DIR] [--json OUT] [--report-only]

Steps: export the suite once into ``WORKDIR/suite`` (``replay_suite.py --export``); copy
``kernel/`` into one directory per worker; ``cosmic-ray init`` a session over the chosen
modules; mark mutants inside annotations as skipped (the kernel uses ``from __future__ import
annotations``, so annotations are never evaluated: such mutants are not code); start one
``cosmic-ray http-worker`` per job, each in its own copy, so the checkout this runs from is
never mutated; ``cosmic-ray exec``; then report.  The test command is
``replay_suite.py --suite WORKDIR/suite --kernel-dir kernel`` (run in the worker's copy): a
mutant is killed when a trace diverges, the kernel raises, or the replay exceeds the timeout.

The report lists survivors grouped by file and function (with the note from
``survivor_groups.toml``), subtracts the equivalent mutants of ``equivalents.toml`` (keyed by
Cosmic Ray's identity: file, operator, occurrence; the line and the original code are stored to
check that an entry still names the same place) and ends with exactly one line
``traces kill K of N non-equivalent mutants (P%)``.  A session is resumable: rerunning with the
same ``--workdir`` runs only the pending mutants (``--fresh`` starts over).
"""

from __future__ import annotations

import argparse
import ast
import json
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
REPLAY = HERE / "replay_suite.py"
EQUIVALENTS = HERE / "equivalents.toml"
SURVIVOR_GROUPS = HERE / "survivor_groups.toml"
DEFAULT_MODULES = ("engine", "rules", "memory", "types")
DEFAULT_WORKDIR = Path(tempfile.gettempdir()) / "lashspec-mutation"
SKIP_NOTE = "annotation: never evaluated (from __future__ import annotations)"
NOT_RUN_NOTE = "not executed: no trace enters this function"
SOCKET_NAME = ".replay.sock"
#: Operators left out (Cosmic Ray's operators-filter): swapping identity and equality tests.
#: The kernel compares enum members, None, bools and small ints, for which ``is`` and ``==``
#: agree (enum equality is identity); where they could differ, the difference is CPython's
#: interning, not kernel behaviour.  Such mutants are equivalent by construction.
EXCLUDED_OPERATORS = (
    "core/ReplaceComparisonOperator_Is_Eq",
    "core/ReplaceComparisonOperator_IsNot_NotEq",
    "core/ReplaceComparisonOperator_Eq_Is",
    "core/ReplaceComparisonOperator_NotEq_IsNot",
)


@dataclass(frozen=True, order=True)
class MutantKey:
    file: str  # relative to the repository, e.g. "kernel/engine.py"
    operator: str  # Cosmic Ray's operator name, e.g. "core/NumberReplacer"
    occurrence: int


@dataclass
class Mutant:
    key: MutantKey
    line: int
    col: int
    end_line: int
    end_col: int
    definition: str
    outcome: str  # killed timeout survived not-run skipped excluded incompetent pending
    diff: str = ""

    def code(self, source_lines: Sequence[str]) -> str:
        if self.line == self.end_line:
            return source_lines[self.line - 1][self.col : self.end_col]
        return source_lines[self.line - 1][self.col :]

    @property
    def change(self) -> str:
        """The diff's removed and added lines, stripped: ``- old / + new``."""
        minus = [ln[1:].strip() for ln in self.diff.splitlines() if ln.startswith("-")]
        plus = [ln[1:].strip() for ln in self.diff.splitlines() if ln.startswith("+")]
        minus = [ln for ln in minus if not ln.startswith("--")]
        plus = [ln for ln in plus if not ln.startswith("++")]
        return f"{' '.join(minus)}  ->  {' '.join(plus)}"


# ---------------------------------------------------------------------------
# Data files
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Equivalent:
    key: MutantKey
    line: int
    code: str  # the original code Cosmic Ray replaces (checked against the file)
    reason: str


def load_equivalents(path: Path = EQUIVALENTS) -> dict[MutantKey, Equivalent]:
    document = tomllib.loads(path.read_text(encoding="utf-8"))
    entries: dict[MutantKey, Equivalent] = {}
    for item in document.get("equivalent", []):
        key = MutantKey(str(item["file"]), str(item["operator"]), int(item["occurrence"]))
        if key in entries:
            raise ValueError(f"{path}: {key} listed twice")
        entries[key] = Equivalent(key, int(item["line"]), str(item["code"]), str(item["reason"]))
    return entries


def load_survivor_groups(path: Path = SURVIVOR_GROUPS) -> dict[tuple[str, str], tuple[str, str]]:
    """(file, function) -> (vocabulary extension that would kill its survivors, note)."""
    if not path.exists():
        return {}
    document = tomllib.loads(path.read_text(encoding="utf-8"))
    return {
        (str(g["file"]), str(g["function"])): (str(g["extension"]), str(g["note"]))
        for g in document.get("group", [])
    }


def check_equivalent_locations(
    entries: dict[MutantKey, Equivalent], root: Path = REPO_ROOT
) -> list[str]:
    """Entries whose file, line or original code no longer match the source."""
    problems: list[str] = []
    for entry in entries.values():
        path = root / entry.key.file
        if not path.is_file():
            problems.append(f"{entry.key}: no file {entry.key.file}")
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        if not 1 <= entry.line <= len(lines) or entry.code not in lines[entry.line - 1]:
            problems.append(f"{entry.key}: line {entry.line} does not hold {entry.code!r}")
    return problems


# ---------------------------------------------------------------------------
# Annotation filter
# ---------------------------------------------------------------------------


def annotation_spans(source: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """(start, end) positions (line 1-based, column 0-based) of every annotation."""
    spans: list[tuple[tuple[int, int], tuple[int, int]]] = []

    def add(node: ast.expr | None) -> None:
        if node is not None and node.end_lineno is not None and node.end_col_offset is not None:
            spans.append(((node.lineno, node.col_offset), (node.end_lineno, node.end_col_offset)))

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.AnnAssign | ast.arg):
            add(node.annotation)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            add(node.returns)
    return spans


def skip_annotation_mutants(session: Path, root: Path) -> int:
    """Mark every pending mutant lying inside an annotation as skipped; return the count."""
    spans: dict[str, list[tuple[tuple[int, int], tuple[int, int]]]] = {}
    skipped: list[str] = []
    with sqlite3.connect(session) as db:
        rows = db.execute(
            "SELECT s.job_id, s.module_path, s.start_pos_row, s.start_pos_col, s.end_pos_row,"
            " s.end_pos_col FROM mutation_specs s LEFT JOIN work_results r USING (job_id)"
            " WHERE r.job_id IS NULL"
        ).fetchall()
        for job_id, module, row, col, end_row, end_col in rows:
            if module not in spans:
                spans[module] = annotation_spans((root / module).read_text(encoding="utf-8"))
            start, end = (row, col), (end_row, end_col)
            if any(a <= start and end <= b for a, b in spans[module]):
                skipped.append(job_id)
        db.executemany(
            "INSERT INTO work_results (worker_outcome, output, test_outcome, diff, job_id)"
            " VALUES ('SKIPPED', ?, NULL, NULL, ?)",
            [(SKIP_NOTE, job) for job in skipped],
        )
    return len(skipped)


def function_spans(source: str) -> list[tuple[int, str, tuple[int, int], tuple[int, int]]]:
    """(code object first line, name, body start, body end) of every function definition.

    The first line is what ``co_firstlineno`` reports: the first decorator's line if any."""
    spans: list[tuple[int, str, tuple[int, int], tuple[int, int]]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            last = node.body[-1]
            end = (last.end_lineno or last.lineno, last.end_col_offset or 0)
            start = (node.body[0].lineno, node.body[0].col_offset)
            spans.append((first, node.name, start, end))
    return spans


def record_not_run_mutants(session: Path, root: Path, entered_json: Path) -> int:
    """Record pending mutants whose innermost function no trace enters as survivors.

    A mutation inside a function body that never runs changes nothing the replay executes,
    so it survives; running it would only cost time."""
    entered = {
        (f"kernel/{f}", line, name) for f, line, name in json.loads(entered_json.read_text())
    }
    spans: dict[str, list[tuple[int, str, tuple[int, int], tuple[int, int]]]] = {}
    not_run: list[str] = []
    with sqlite3.connect(session) as db:
        rows = db.execute(
            "SELECT s.job_id, s.module_path, s.start_pos_row, s.start_pos_col, s.end_pos_row,"
            " s.end_pos_col FROM mutation_specs s LEFT JOIN work_results r USING (job_id)"
            " WHERE r.job_id IS NULL"
        ).fetchall()
        for job_id, module, row, col, end_row, end_col in rows:
            if module not in spans:
                spans[module] = function_spans((root / module).read_text(encoding="utf-8"))
            start, end = (row, col), (end_row, end_col)
            inside = [sp for sp in spans[module] if sp[2] <= start and end <= sp[3]]
            if not inside:
                continue
            innermost = max(inside, key=lambda sp: sp[2])
            if (module, innermost[0], innermost[1]) not in entered:
                not_run.append(job_id)
        db.executemany(
            "INSERT INTO work_results (worker_outcome, output, test_outcome, diff, job_id)"
            " VALUES ('NORMAL', ?, 'SURVIVED', NULL, ?)",
            [(NOT_RUN_NOTE, job) for job in not_run],
        )
    return len(not_run)


# ---------------------------------------------------------------------------
# Session
# ---------------------------------------------------------------------------


def read_session(session: Path) -> list[Mutant]:
    with sqlite3.connect(session) as db:
        rows = db.execute(
            "SELECT s.module_path, s.operator_name, s.occurrence, s.start_pos_row,"
            " s.start_pos_col, s.end_pos_row, s.end_pos_col, s.definition_name,"
            " r.worker_outcome, r.test_outcome, r.output, r.diff"
            " FROM mutation_specs s LEFT JOIN work_results r USING (job_id)"
        ).fetchall()
    mutants: list[Mutant] = []
    for module, op, occ, row, col, erow, ecol, definition, worker, test, output, diff in rows:
        # Cosmic Ray stores its enums by name (SKIPPED, KILLED, ...)
        worker, test = (worker or "").lower() or None, (test or "").lower() or None
        if worker is None:
            outcome = "pending"
        elif worker == "skipped":
            outcome = "skipped" if output == SKIP_NOTE else "excluded"  # operators-filter
        elif test == "survived":
            outcome = "not-run" if output == NOT_RUN_NOTE else "survived"
        elif test == "killed":
            outcome = "timeout" if (output or "").strip() == "timeout" else "killed"
        else:
            outcome = "incompetent"  # the mutation could not be applied or the worker failed
        key = MutantKey(str(module), str(op), int(occ))
        mutants.append(
            Mutant(key, row, col, erow, ecol, definition or "<module>", outcome, diff or "")
        )
    mutants.sort(key=lambda m: (m.key.file, m.line, m.col, m.key.operator, m.key.occurrence))
    return mutants


def write_config(
    path: Path, modules: Sequence[str], suite: Path, timeout: float, urls: Sequence[str]
) -> None:
    command = (
        f"{sys.executable} {REPLAY} --suite {suite} --kernel-dir kernel --server {SOCKET_NAME}"
    )
    excluded = ", ".join(json.dumps(f"^{op}$") for op in EXCLUDED_OPERATORS)
    paths = ", ".join(json.dumps(f"kernel/{m}.py") for m in modules)
    path.write_text(
        "[cosmic-ray]\n"
        f"module-path = [{paths}]\n"
        f"timeout = {timeout}\n"
        "excluded-modules = []\n"
        f"test-command = {json.dumps(command)}\n\n"
        "[cosmic-ray.filters.operators-filter]\n"
        f"exclude-operators = [{excluded}]\n\n"
        "[cosmic-ray.distributor]\n"
        'name = "http"\n\n'
        "[cosmic-ray.distributor.http]\n"
        f"worker-urls = [{', '.join(json.dumps(u) for u in urls)}]\n",
        encoding="utf-8",
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for_port(port: int, process: subprocess.Popen[bytes], limit_s: float = 60.0) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"http-worker on port {port} exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"http-worker on port {port} did not start")


def cosmic_ray() -> str:
    beside = Path(sys.executable).parent / "cosmic-ray"
    found = str(beside) if beside.exists() else shutil.which("cosmic-ray")
    if found is None:
        raise SystemExit("cosmic-ray is not installed: pip install -e '.[mutation]'")
    return found


def run_campaign(
    workdir: Path, modules: Sequence[str], jobs: int, timeout: float, fresh: bool
) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    suite = workdir / "suite"
    if fresh or not (suite / "traces.pickle").exists():
        subprocess.run([sys.executable, str(REPLAY), "--suite", str(suite), "--export"], check=True)
    workers = [workdir / f"worker-{n}" for n in range(jobs)]
    for directory in workers:  # a fresh copy: a killed worker may leave a mutant behind
        shutil.rmtree(directory, ignore_errors=True)
        shutil.copytree(
            REPO_ROOT / "kernel", directory / "kernel", ignore=shutil.ignore_patterns("__pycache__")
        )
    baseline = subprocess.run(
        [sys.executable, str(REPLAY), "--suite", str(suite), "--kernel-dir", "kernel"],
        cwd=workers[0],
        capture_output=True,
        text=True,
    )
    if baseline.returncode != 0:
        raise SystemExit(f"the unmutated kernel fails the replay:\n{baseline.stdout}")
    ports = [_free_port() for _ in workers]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    config = workdir / "cosmic-ray.toml"
    write_config(config, modules, suite, timeout + 15, urls)
    session = workdir / "session.sqlite"
    if fresh:
        session.unlink(missing_ok=True)
    if not session.exists():
        subprocess.run(
            [cosmic_ray(), "init", str(config), str(session)], cwd=workers[0], check=True
        )
        filter_operators = Path(cosmic_ray()).with_name("cr-filter-operators")
        subprocess.run([str(filter_operators), str(session), str(config)], check=True)
        skipped = skip_annotation_mutants(session, workers[0])
        entered = workdir / "entered.json"
        record = [sys.executable, str(REPLAY), "--suite", str(suite), "--kernel-dir", "kernel"]
        record += ["--functions-out", str(entered)]
        subprocess.run(record, cwd=workers[0], check=True, stdout=subprocess.DEVNULL)
        not_run = record_not_run_mutants(session, workers[0], entered)
        print(
            f"skipped {skipped} mutants inside annotations; recorded {not_run} mutants in "
            "functions no trace enters as survivors",
            file=sys.stderr,
        )
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for directory in workers:  # one replay server per worker copy
            (directory / SOCKET_NAME).unlink(missing_ok=True)
            serve = [sys.executable, str(REPLAY), "--suite", str(suite), "--timeout", str(timeout)]
            serve += ["--serve", str(directory / SOCKET_NAME)]
            server = subprocess.Popen(serve, cwd=directory)
            processes.append(server)
            deadline = time.monotonic() + 120
            while not (directory / SOCKET_NAME).exists():
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the replay server in {directory} did not start")
                time.sleep(0.2)
        for directory, port in zip(workers, ports, strict=True):
            process = subprocess.Popen(
                [cosmic_ray(), "http-worker", "--port", str(port)],
                cwd=directory,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            processes.append(process)
            _wait_for_port(port, process)
        subprocess.run([cosmic_ray(), "exec", str(config), str(session)], check=True)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------


@dataclass
class Summary:
    total: int
    skipped: int
    excluded: int
    pending: int
    killed: int  # incl. timeouts and incompetent
    timeouts: int
    incompetent: int
    survived: int  # incl. not run
    not_run: int
    equivalent: int
    stale_equivalents: list[str]

    @property
    def non_equivalent(self) -> int:
        return self.killed + self.survived - self.equivalent

    @property
    def final_line(self) -> str:
        n = self.non_equivalent
        share = 100.0 * self.killed / n if n else 0.0
        return f"traces kill {self.killed} of {n} non-equivalent mutants ({share:.1f}%)"


def summarise(mutants: Sequence[Mutant], equivalents: dict[MutantKey, Equivalent]) -> Summary:
    by_key = {m.key: m for m in mutants}
    stale = [
        f"{key.file} {key.operator} #{key.occurrence}: "
        + ("no such mutant" if key not in by_key else f"{by_key[key].outcome}, not survived")
        for key in sorted(equivalents)
        if key not in by_key or by_key[key].outcome not in ("survived", "not-run", "pending")
    ]
    count = Counter(m.outcome for m in mutants)
    equivalent = sum(
        1 for m in mutants if m.outcome in ("survived", "not-run") and m.key in equivalents
    )
    return Summary(
        total=len(mutants),
        skipped=count["skipped"],
        excluded=count["excluded"],
        pending=count["pending"],
        killed=count["killed"] + count["timeout"] + count["incompetent"],
        timeouts=count["timeout"],
        incompetent=count["incompetent"],
        survived=count["survived"] + count["not-run"],
        not_run=count["not-run"],
        equivalent=equivalent,
        stale_equivalents=stale,
    )


def survivor_lines(
    mutants: Sequence[Mutant],
    equivalents: dict[MutantKey, Equivalent],
    groups: dict[tuple[str, str], tuple[str, str]],
) -> Iterator[str]:
    grouped: dict[tuple[str, str], list[Mutant]] = defaultdict(list)
    for m in mutants:
        if m.outcome in ("survived", "not-run") and m.key not in equivalents:
            grouped[(m.key.file, m.definition)].append(m)
    current = ""
    sources: dict[str, list[str]] = {}
    for (file, function), members in sorted(grouped.items()):
        if file != current:
            current = file
            yield f"== {file}"
        extension, note = groups.get((file, function), ("untriaged", ""))
        yield f"  {function}: {len(members)} [{extension}] {note}".rstrip()
        for m in members:
            if m.diff:
                change = m.change
            else:  # recorded without running: show the code the operator would change
                lines = sources.setdefault(
                    file, (REPO_ROOT / file).read_text(encoding="utf-8").splitlines()
                )
                change = f"(not run) {m.code(lines)!r} in: {lines[m.line - 1].strip()}"
            yield f"    {m.line}:{m.col} {m.key.operator} #{m.key.occurrence}  {change}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="http workers (default 2)")
    parser.add_argument("--modules", default=",".join(DEFAULT_MODULES))
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per replay")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    parser.add_argument("--fresh", action="store_true", help="new suite and session")
    parser.add_argument("--report-only", action="store_true", help="report the session")
    parser.add_argument("--json", type=Path, help="also write every mutant as JSON")
    args = parser.parse_args(argv)
    modules = [m.strip() for m in args.modules.split(",") if m.strip()]
    started = time.monotonic()
    if not args.report_only:
        run_campaign(args.workdir, modules, args.jobs, args.timeout, args.fresh)
    mutants = read_session(args.workdir / "session.sqlite")
    equivalents = load_equivalents()
    summary = summarise(mutants, equivalents)
    for line in survivor_lines(mutants, equivalents, load_survivor_groups()):
        print(line)
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {"summary": asdict(summary), "mutants": [asdict(m) for m in mutants]}, indent=1
            ),
            encoding="utf-8",
        )
    for problem in summary.stale_equivalents + check_equivalent_locations(equivalents):
        print(f"stale equivalent: {problem}")
    print(
        f"mutants {summary.total}: skipped (annotations) {summary.skipped}, "
        f"excluded operators {summary.excluded}, "
        f"pending {summary.pending}, killed {summary.killed} (timeouts {summary.timeouts}, "
        f"incompetent {summary.incompetent}), survived {summary.survived} "
        f"(not run {summary.not_run}) "
        f"(equivalent {summary.equivalent}); {time.monotonic() - started:.0f} s"
    )
    print(summary.final_line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
