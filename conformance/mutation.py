"""Mutation testing of the kernel against the model-generated conformance traces.

    python -m lashspec.conformance.mutation [--modules engine,rules,memory] [--jobs N]
        [--json OUT] [--markdown OUT] [--suite DIR] [--unit-tests]
    python -m lashspec.conformance.mutation --from-json RUN.json --markdown docs/mutation.md

Theory of operation
-------------------
A small AST mutator (:class:`ModuleMutator`) enumerates *mutants* of the semantic kernel
modules: each is one small change at one place of one function body (see
:data:`OPERATORS`).  A mutant is *killed* when replaying the conformance suite on the
in-memory backend fails on at least one trace: a divergence from the model (``diverged``),
an exception (``error``) or no answer within the per-mutant time limit (``timeout``).  The
*score* is killed / total.  Survivors are explained in :mod:`.mutation_triage`.

Mutated code never touches the repository.  The campaign snapshots the kernel sources and
the suite into a temporary directory, then runs ``--jobs`` long-lived worker processes.  A
worker parses the snapshot once and, per mutant, compiles the mutated module and executes
``rules``, ``engine`` and ``memory`` into *fresh* module objects (:func:`build_store_class`);
the adapter replays against the resulting ``InMemoryStore`` class, while the imported kernel
stays untouched, so no mutant leaks into the next.  Workers rather than threads because the
replay is CPU-bound (the GIL would serialise threads) and because a mutant may hang or break
its interpreter: a worker enforces the time limit with an interval timer, and the parent
kills a worker that stops answering, counts its mutant as ``timeout`` and starts a new one.
A fresh interpreter per mutant would cost an import of the package each time, several times
the replay itself.

``--unit-tests`` additionally runs the store-level unit tests against every survivor, in a
subprocess whose import hook serves the mutated module source (:class:`MutantFinder`), to
confirm the ``outside`` triage of mutants the traces cannot see.

This module imports the kernel lazily so that the import hook can be installed before the
first kernel import in such a subprocess.
"""

from __future__ import annotations

import argparse
import ast
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .mutation_triage import TRIAGE, Category, Triage, TriageKey

if TYPE_CHECKING:
    from .itf import Trace

KERNEL_PACKAGE = "lashspec.kernel"
KERNEL_DIR = Path(__file__).resolve().parent.parent / "kernel"
REPO_ROOT = KERNEL_DIR.parent

#: The modules a mutant may live in, in import order: each is executed afresh per mutant.
MUTABLE_MODULES: tuple[str, ...] = ("rules", "engine", "memory")
DEFAULT_MODULES: tuple[str, ...] = ("engine", "rules", "memory")

#: Operator name -> what it does.
OPERATORS: dict[str, str] = {
    "compare": "swap a comparison: == / !=, < / <=, > / >=, is / is not, in / not in",
    "boolop": "swap a boolean operator: and / or",
    "not": "drop a `not`",
    "constant": "integer constant c becomes c + 1 and c - 1",
    "add_one": "`x + 1` (and `x += 1`) becomes `x + 0`",
    "return": "`return True` / `return False` swapped; `return <value>` becomes `return None` "
    "in functions whose result is optional",
    "raise": "`raise ...` becomes `pass`",
    "call": "a call statement (`f(...)` on its own line) becomes `pass`",
    "if_not": "negate the condition of an `if` statement or a conditional expression",
}

KILLED_STATUSES = ("diverged", "error", "timeout")
SURVIVED = "survived"
SNIPPET_LIMIT = 120
DEFAULT_TIMEOUT_S = 10.0
WORKER_START_TIMEOUT_S = 180.0
#: The store-level unit tests run against survivors (memory backend: the mutant is the same
#: engine code under both backends, and one backend halves the cost).
UNIT_TEST_PATHS: tuple[str, ...] = (
    "tests/test_persistence_conformance.py",
    "tests/test_bad_inputs.py",
    "tests/runtime_scenarios",
    "tests/kernel/test_turn_driver.py",
    "tests/test_kernel_edges.py",
)
# (the index test asserts that both backends were collected, so it cannot run on one)
UNIT_TEST_SELECTION = "not sqlite and not test_conformance_index_names_all_37_cases"
UNIT_TEST_TIMEOUT_S = 300.0

Progress = Callable[[str], None]


# ---------------------------------------------------------------------------
# The mutator
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Slot:
    """Where a node hangs in its parent: ``parent.field`` or ``parent.field[index]``."""

    parent: ast.AST
    field: str
    index: int | None

    def get(self) -> ast.AST:
        value = getattr(self.parent, self.field)
        node = value if self.index is None else value[self.index]
        assert isinstance(node, ast.AST)
        return node

    def put(self, node: ast.AST) -> None:
        if self.index is None:
            setattr(self.parent, self.field, node)
        else:
            getattr(self.parent, self.field)[self.index] = node


@dataclass(frozen=True)
class _Point:
    """One mutation: replace the node in ``slot`` by ``replacement``.

    ``context`` is the node whose text names the mutation (the parent expression of a
    constant, the ``return`` statement of a replaced value); ``None`` means the slot itself.
    """

    slot: _Slot
    operator: str
    replacement: ast.AST
    function: str
    context: ast.AST | None = None


@dataclass(frozen=True)
class Mutant:
    """A mutant as reported: where, what, and its stable triage key fields."""

    module: str
    index: int  # position in the module's mutant list for this source text
    file: str
    function: str
    operator: str
    original: str
    mutated: str
    line: int
    end_line: int
    original_line: str
    mutated_line: str
    # 1 for the first mutant of this function with the same operator and snippets, 2 for the
    # next one below it...: tells identical snippets apart without line numbers
    occurrence: int = 1

    @property
    def ref(self) -> str:
        return f"{self.module}:{self.index}"

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def snippet(node: ast.AST) -> str:
    """Formatting-independent text of a node: unparsed, whitespace collapsed, bounded."""
    text = " ".join(ast.unparse(node).split())
    return text if len(text) <= SNIPPET_LIMIT else text[: SNIPPET_LIMIT - 3] + "..."


_COMPARE_SWAPS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}


def _returns_optional(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """The annotation is ``X | None`` (or ``Optional[X]``): ``return None`` is well-typed."""
    annotation = function.returns
    if annotation is None:
        return False
    for node in ast.walk(annotation):
        if isinstance(node, ast.Constant) and node.value is None:
            return True
        if isinstance(node, ast.Name) and node.id == "Optional":
            return True
    return False


def _is_docstring(statement: ast.stmt) -> bool:
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str)
    )


class _PointCollector:
    """Walks a module and lists every mutation point inside function bodies.

    Skipped on purpose: ``assert`` statements (internal consistency checks, not behaviour),
    f-strings (message text), docstrings, annotations, decorators and default values.
    """

    def __init__(self) -> None:
        self.points: list[_Point] = []
        self._scope: list[str] = []
        self._functions: list[ast.FunctionDef | ast.AsyncFunctionDef] = []
        self._enclosing: list[ast.expr] = []  # the expressions around the current one

    # -- traversal ------------------------------------------------------------------------

    def module(self, tree: ast.Module) -> list[_Point]:
        self._statements(tree, "body")
        return self.points

    def _statements(self, parent: ast.AST, name: str) -> None:
        body = getattr(parent, name)
        for index, statement in enumerate(body):
            self._statement(_Slot(parent, name, index), statement)

    def _statement(self, slot: _Slot, statement: ast.stmt) -> None:
        if isinstance(statement, ast.ClassDef):
            self._scope.append(statement.name)
            self._statements(statement, "body")
            self._scope.pop()
            return
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
            self._scope.append(statement.name)
            self._functions.append(statement)
            self._statements(statement, "body")
            self._functions.pop()
            self._scope.pop()
            return
        if not self._functions or isinstance(statement, ast.Assert) or _is_docstring(statement):
            return
        self._statement_points(slot, statement)
        for name, value in ast.iter_fields(statement):
            if name == "annotation":
                continue
            if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
                self._statements(statement, name)
            elif isinstance(value, list):
                for index, item in enumerate(value):
                    self._child(statement, name, index, item)
            else:
                self._child(statement, name, None, value)

    def _child(self, parent: ast.AST, name: str, index: int | None, value: object) -> None:
        if isinstance(value, ast.expr):
            self._expression(_Slot(parent, name, index), value)
        elif isinstance(value, ast.excepthandler):
            self._statements(value, "body")
        elif isinstance(value, ast.AST):
            # comprehensions, withitems, keywords, match cases: look inside
            for child_name, child in ast.iter_fields(value):
                if isinstance(child, list) and child and isinstance(child[0], ast.stmt):
                    self._statements(value, child_name)
                elif isinstance(child, list):
                    for child_index, item in enumerate(child):
                        self._child(value, child_name, child_index, item)
                else:
                    self._child(value, child_name, None, child)

    def _expression(self, slot: _Slot, node: ast.expr) -> None:
        if isinstance(node, ast.JoinedStr):
            return
        self._expression_points(slot, node)
        self._enclosing.append(node)
        for name, value in ast.iter_fields(node):
            if isinstance(value, list):
                for index, item in enumerate(value):
                    self._child(node, name, index, item)
            else:
                self._child(node, name, None, value)
        self._enclosing.pop()

    # -- operators ------------------------------------------------------------------------

    def _add(
        self, slot: _Slot, operator: str, replacement: ast.AST, context: ast.AST | None = None
    ) -> None:
        ast.copy_location(replacement, slot.get())
        ast.fix_missing_locations(replacement)
        self.points.append(_Point(slot, operator, replacement, ".".join(self._scope), context))

    def _statement_points(self, slot: _Slot, statement: ast.stmt) -> None:
        if isinstance(statement, ast.Raise):
            self._add(slot, "raise", ast.Pass())
        elif isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call):
            self._add(slot, "call", ast.Pass())
        elif isinstance(statement, ast.If):
            negated = ast.UnaryOp(ast.Not(), statement.test)
            self._add(_Slot(statement, "test", None), "if_not", negated)
        elif isinstance(statement, ast.Return) and statement.value is not None:
            value = statement.value
            value_slot = _Slot(statement, "value", None)
            if isinstance(value, ast.Constant) and isinstance(value.value, bool):
                self._add(value_slot, "return", ast.Constant(not value.value), statement)
            elif not (isinstance(value, ast.Constant) and value.value is None) and (
                _returns_optional(self._functions[-1])
            ):
                self._add(value_slot, "return", ast.Constant(None), statement)
        elif (
            isinstance(statement, ast.AugAssign)
            and isinstance(statement.op, ast.Add)
            and _is_int(statement.value, 1)
        ):
            self._add(_Slot(statement, "value", None), "add_one", ast.Constant(0), statement)

    def _expression_points(self, slot: _Slot, node: ast.expr) -> None:
        if isinstance(node, ast.Compare):
            for position, op in enumerate(node.ops):
                swapped = _COMPARE_SWAPS.get(type(op))
                if swapped is None:
                    continue
                ops = list(node.ops)
                ops[position] = swapped()
                self._add(slot, "compare", ast.Compare(node.left, ops, node.comparators))
        elif isinstance(node, ast.BoolOp):
            other = ast.Or() if isinstance(node.op, ast.And) else ast.And()
            self._add(slot, "boolop", ast.BoolOp(other, node.values))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            self._add(slot, "not", node.operand)
        elif isinstance(node, ast.IfExp):
            self._add(_Slot(node, "test", None), "if_not", ast.UnaryOp(ast.Not(), node.test))
        elif (
            isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add) and _is_int(node.right, 1)
        ):
            self._add(_Slot(node, "right", None), "add_one", ast.Constant(0), node)
        if isinstance(node, ast.Constant) and _is_int(node):
            assert isinstance(node.value, int)
            # name a constant by the expression or simple statement that holds it
            compound = isinstance(slot.parent, ast.stmt) and hasattr(slot.parent, "body")
            context = None if compound else slot.parent
            if isinstance(slot.parent, ast.Slice) and len(self._enclosing) >= 2:
                context = self._enclosing[-2]  # `xs[1:]` says more than `1:`
            self._add(slot, "constant", ast.Constant(node.value + 1), context)
            # `x + 1` -> `x + 0` is the add_one operator's mutant already
            is_added_one = (
                isinstance(slot.parent, ast.BinOp | ast.AugAssign)
                and isinstance(slot.parent.op, ast.Add)
                and node.value == 1
            )
            if not is_added_one:
                self._add(slot, "constant", ast.Constant(node.value - 1), context)


def _is_int(node: ast.AST, value: int | None = None) -> bool:
    return (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int)
        and not isinstance(node.value, bool)
        and (value is None or node.value == value)
    )


class ModuleMutator:
    """Every mutant of one kernel module's source text, and the code of each."""

    def __init__(self, module: str, source: str, path: str) -> None:
        self.module = module
        self.source = source
        self.path = path
        self.file = f"kernel/{module}.py"
        self._lines = source.splitlines()
        self._tree = ast.parse(source, path)
        self._points = _PointCollector().module(self._tree)
        described = [self._describe(i, p) for i, p in enumerate(self._points)]
        seen: dict[tuple[str, str, str, str], int] = {}
        self.mutants: list[Mutant] = []
        for mutant in described:
            same = (mutant.function, mutant.operator, mutant.original, mutant.mutated)
            seen[same] = seen.get(same, 0) + 1
            self.mutants.append(replace(mutant, occurrence=seen[same]))

    @contextmanager
    def _applied(self, point: _Point) -> Iterator[None]:
        original = point.slot.get()
        point.slot.put(point.replacement)
        try:
            yield
        finally:
            point.slot.put(original)

    def _describe(self, index: int, point: _Point) -> Mutant:
        target = point.slot.get()
        named = point.context if point.context is not None else target
        original = snippet(named)
        with self._applied(point):
            mutated = snippet(point.context if point.context is not None else point.slot.get())
        line = getattr(target, "lineno", 0)
        end_line = getattr(target, "end_lineno", line) or line
        original_line, mutated_line = self._source_lines(point, line, end_line)
        return Mutant(
            module=self.module,
            index=index,
            file=self.file,
            function=point.function,
            operator=point.operator,
            original=original,
            mutated=mutated,
            line=line,
            end_line=end_line,
            original_line=original_line,
            mutated_line=mutated_line,
        )

    def _source_lines(self, point: _Point, line: int, end_line: int) -> tuple[str, str]:
        """The source lines the mutated node spans, before and after, whitespace collapsed."""
        target = point.slot.get()
        lines = [text.encode() for text in self._lines[line - 1 : end_line]]  # offsets are bytes
        if not lines:
            return "", ast.unparse(point.replacement)
        start = getattr(target, "col_offset", 0)
        end = getattr(target, "end_col_offset", None) or len(lines[-1])
        prefix, suffix = lines[0][:start].decode(), lines[-1][end:].decode()
        before = " ".join(b" ".join(lines).decode().split())
        after = " ".join((prefix + ast.unparse(point.replacement) + suffix).split())
        return before, after

    def mutated_source(self, index: int | None = None) -> str:
        """The module unparsed, with mutant ``index`` applied (``None``: unmutated)."""
        if index is None:
            return ast.unparse(self._tree)
        with self._applied(self._points[index]):
            return ast.unparse(self._tree)

    def code(self, index: int | None = None) -> types.CodeType:
        """The module's code object, with mutant ``index`` applied (``None``: unmutated)."""
        if index is None:
            return compile(self._tree, self.path, "exec")
        with self._applied(self._points[index]):
            return compile(self._tree, self.path, "exec")


# ---------------------------------------------------------------------------
# The kernel snapshot and installing a mutant
# ---------------------------------------------------------------------------

SNAPSHOT_FILE = "kernel-sources.json"
SUITE_FOLDER = "suite"


@dataclass(frozen=True)
class KernelSnapshot:
    """The mutable modules' sources, read once so that every process mutates the same text
    even if the files change while a campaign runs."""

    sources: Mapping[str, str]
    paths: Mapping[str, str]

    @classmethod
    def from_files(cls, kernel_dir: Path = KERNEL_DIR) -> KernelSnapshot:
        paths = {name: str(kernel_dir / f"{name}.py") for name in MUTABLE_MODULES}
        sources = {name: Path(path).read_text(encoding="utf-8") for name, path in paths.items()}
        return cls(sources, paths)

    def save(self, directory: Path) -> None:
        document = {"sources": dict(self.sources), "paths": dict(self.paths)}
        (directory / SNAPSHOT_FILE).write_text(json.dumps(document), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> KernelSnapshot:
        document = json.loads((directory / SNAPSHOT_FILE).read_text(encoding="utf-8"))
        return cls(document["sources"], document["paths"])

    def mutators(self) -> dict[str, ModuleMutator]:
        return {
            name: ModuleMutator(name, self.sources[name], self.paths[name])
            for name in MUTABLE_MODULES
        }


def parse_ref(ref: str) -> tuple[str, int]:
    module, _, index = ref.partition(":")
    if module not in MUTABLE_MODULES or not index.isdigit():
        raise ValueError(
            f"a mutant reference is module:index (module in {MUTABLE_MODULES}), got {ref!r}"
        )
    return module, int(index)


def kernel_codes(
    mutators: Mapping[str, ModuleMutator], ref: str | None = None
) -> dict[str, types.CodeType]:
    """Code objects of the mutable modules, with mutant ``ref`` applied (``None``: none)."""
    codes = {name: mutator.code() for name, mutator in mutators.items()}
    if ref is not None:
        module, index = parse_ref(ref)
        codes[module] = mutators[module].code(index)
    return codes


def build_store_class(codes: Mapping[str, types.CodeType]) -> Any:
    """Execute ``rules``, ``engine`` and ``memory`` from ``codes`` into fresh module objects and
    return the fresh ``InMemoryStore``.

    While the modules execute, ``sys.modules`` and the package attributes point at the fresh
    objects, so ``from . import rules`` and ``from .engine import ...`` bind the fresh (possibly
    mutated) code; afterwards the imported kernel is restored untouched.
    """
    package = importlib.import_module(KERNEL_PACKAGE)
    importlib.import_module(f"{KERNEL_PACKAGE}.memory")  # the originals, to restore afterwards
    names = [f"{KERNEL_PACKAGE}.{name}" for name in MUTABLE_MODULES]
    saved_modules = {full: sys.modules[full] for full in names}
    saved_attributes = {name: getattr(package, name) for name in MUTABLE_MODULES}
    fresh: dict[str, types.ModuleType] = {}
    try:
        for name, full in zip(MUTABLE_MODULES, names, strict=True):
            module = types.ModuleType(full)
            module.__package__ = KERNEL_PACKAGE
            module.__file__ = codes[name].co_filename
            sys.modules[full] = module
            setattr(package, name, module)
            exec(codes[name], module.__dict__)
            fresh[name] = module
    finally:
        sys.modules.update(saved_modules)
        for name, module in saved_attributes.items():
            setattr(package, name, module)
    return fresh["memory"].InMemoryStore


# ---------------------------------------------------------------------------
# Judging one mutant
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    status: str  # diverged | error | timeout | survived
    trace: str = ""
    detail: str = ""
    seconds: float = 0.0

    @property
    def killed(self) -> bool:
        return self.status in KILLED_STATUSES


class MutantTimeout(BaseException):
    """Raised by the interval timer; a BaseException so that kernel code cannot swallow it."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`MutantTimeout` in the main thread after ``seconds`` (no-op elsewhere)."""
    if threading.current_thread() is not threading.main_thread() or seconds <= 0:
        yield
        return

    def expire(signum: int, frame: types.FrameType | None) -> None:
        raise MutantTimeout()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _first_line(text: str, limit: int = 300) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def replay_against(store_class: Any, traces: Sequence[Trace]) -> Verdict:
    """Replay ``traces`` (memory backend) against ``store_class`` until the first failure."""
    from .kernel_adapter import KernelAdapter
    from .replay import replay_trace

    def factory(clock: Any, processes: Any) -> Any:
        return store_class(clock=clock, liveness=processes)

    target = KernelAdapter(factory)
    try:
        for trace in traces:
            try:
                result = replay_trace(trace, target)
            except Exception as error:
                return Verdict("error", trace.trace_id, f"{type(error).__name__}: {error}")
            if result.divergence is not None:
                return Verdict(
                    "diverged", trace.trace_id, _first_line(result.divergence.describe())
                )
    finally:
        with suppress(Exception):  # a mutant may break close(); the verdict is decided
            target.close()
    return Verdict(SURVIVED)


def judge(
    mutators: Mapping[str, ModuleMutator],
    ref: str | None,
    traces: Sequence[Trace],
    timeout_s: float,
) -> Verdict:
    """Build the kernel with mutant ``ref`` and replay the suite against it."""
    started = time.perf_counter()
    try:
        with time_limit(timeout_s):
            try:
                store_class = build_store_class(kernel_codes(mutators, ref))
            except Exception as error:
                verdict = Verdict(
                    "error", "", f"loading the mutant: {type(error).__name__}: {error}"
                )
            else:
                verdict = replay_against(store_class, traces)
    except MutantTimeout:
        verdict = Verdict("timeout", "", f"no verdict within {timeout_s:g} s")
    return Verdict(
        verdict.status, verdict.trace, _first_line(verdict.detail), time.perf_counter() - started
    )


def load_traces(directory: Path) -> list[Trace]:
    """The suite written by :func:`~lashspec.conformance.generate.write_suite`, in index order."""
    from .itf import read_trace

    index_path = directory / "index.json"
    if index_path.exists():
        index = json.loads(index_path.read_text(encoding="utf-8"))
        files = [directory / entry["file"] for entry in index["traces"]]
    else:
        files = sorted(directory.glob("*.itf.json"))
    return [read_trace(path) for path in files]


def covered_lines(
    codes: Mapping[str, types.CodeType], traces: Sequence[Trace]
) -> tuple[Verdict, dict[str, set[int]]]:
    """Replay the suite against the unmutated snapshot under a line tracer: the baseline
    verdict (it must be ``survived``) and the lines of each module the suite executes."""
    files = {code.co_filename: name for name, code in codes.items()}
    hits: dict[str, set[int]] = {name: set() for name in codes}

    def tracer(frame: types.FrameType, event: str, arg: object) -> Any:
        name = files.get(frame.f_code.co_filename)
        if name is None:
            return None
        lines = hits[name]

        def local(frame: types.FrameType, event: str, arg: object) -> Any:
            lines.add(frame.f_lineno)
            return local

        lines.add(frame.f_lineno)
        return local

    store_class = build_store_class(codes)
    started = time.perf_counter()
    sys.settrace(tracer)
    try:
        verdict = replay_against(store_class, traces)
    finally:
        sys.settrace(None)
    return replace(verdict, seconds=time.perf_counter() - started), hits


# ---------------------------------------------------------------------------
# Worker processes
# ---------------------------------------------------------------------------

MODULE_NAME = "lashspec.conformance.mutation"


def worker_main(workdir: Path, timeout_s: float) -> int:
    """Judge the mutants named on stdin (one ``{"ref": ...}`` per line), answer on stdout."""
    channel = sys.stdout
    sys.stdout = sys.stderr  # nothing but answers on the channel
    mutators = KernelSnapshot.load(workdir).mutators()
    traces = load_traces(workdir / SUITE_FOLDER)
    channel.write(json.dumps({"ready": True}) + "\n")
    channel.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        ref = json.loads(line)["ref"]
        verdict = judge(mutators, ref, traces, timeout_s)
        channel.write(json.dumps({"ref": ref, **asdict(verdict)}) + "\n")
        channel.flush()
    return 0


class WorkerProcess:
    """One worker subprocess and a reader thread turning its answers into a queue."""

    def __init__(self, workdir: Path, timeout_s: float, log: Path) -> None:
        self._log = log.open("a", encoding="utf-8")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                MODULE_NAME,
                "--worker",
                str(workdir),
                "--timeout",
                str(timeout_s),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            bufsize=1,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
        self._answers: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._answers.put(line)
        self._answers.put(None)

    def send(self, payload: Mapping[str, Any]) -> bool:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps(payload) + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            return False
        return True

    def receive(self, timeout_s: float) -> dict[str, Any] | None:
        """The next answer, or ``None`` if the worker exited or did not answer in time."""
        try:
            line = self._answers.get(timeout=timeout_s)
        except queue.Empty:
            return None
        if line is None:
            return None
        answer: dict[str, Any] = json.loads(line)
        return answer

    def stop(self) -> None:
        if self.process.stdin is not None:
            with suppress(OSError):
                self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
        self._log.close()

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        self._log.close()


class _Scheduler:
    """Hands mutants to ``jobs`` workers; replaces a worker that hangs or dies."""

    def __init__(
        self,
        workdir: Path,
        timeout_s: float,
        mutants: Sequence[Mutant],
        progress: Progress,
    ) -> None:
        self._workdir = workdir
        self._timeout_s = timeout_s
        self._pending: queue.Queue[Mutant] = queue.Queue()
        for mutant in mutants:
            self._pending.put(mutant)
        self._total = len(mutants)
        self._done = 0
        self._lock = threading.Lock()
        self._progress = progress
        self.verdicts: dict[str, Verdict] = {}
        self._worker_count = 0

    def _start_worker(self) -> WorkerProcess:
        with self._lock:
            self._worker_count += 1
            number = self._worker_count
        worker = WorkerProcess(
            self._workdir, self._timeout_s, self._workdir / f"worker-{number}.log"
        )
        ready = worker.receive(WORKER_START_TIMEOUT_S)
        if ready is None or not ready.get("ready"):
            worker.kill()
            log = (self._workdir / f"worker-{number}.log").read_text(encoding="utf-8")
            raise RuntimeError(f"a mutation worker failed to start:\n{log[-3000:]}")
        return worker

    def _record(self, mutant: Mutant, verdict: Verdict) -> None:
        with self._lock:
            self.verdicts[mutant.ref] = verdict
            self._done += 1
            done = self._done
        outcome = "survived" if verdict.status == SURVIVED else f"killed ({verdict.status})"
        self._progress(f"mutant {done}/{self._total} {mutant.where} {mutant.operator}: {outcome}")

    def drive(self) -> None:
        worker = self._start_worker()
        # a worker that does not answer in time is stuck where the interval timer cannot reach
        deadline = self._timeout_s + 15.0
        try:
            while True:
                try:
                    mutant = self._pending.get_nowait()
                except queue.Empty:
                    break
                answer = worker.receive(deadline) if worker.send({"ref": mutant.ref}) else None
                if answer is None:
                    alive = worker.process.poll() is None
                    worker.kill()
                    status = "timeout" if alive else "error"
                    detail = (
                        f"the worker gave no answer within {deadline:g} s"
                        if alive
                        else f"the worker exited with status {worker.process.returncode}"
                    )
                    self._record(mutant, Verdict(status, "", detail, deadline if alive else 0.0))
                    worker = self._start_worker()
                    continue
                self._record(
                    mutant,
                    Verdict(answer["status"], answer["trace"], answer["detail"], answer["seconds"]),
                )
        finally:
            if worker.process.poll() is None:
                worker.stop()

    def run(self, jobs: int) -> dict[str, Verdict]:
        threads = max(1, min(jobs, self._total))
        errors: list[BaseException] = []

        def guarded() -> None:
            try:
                self.drive()
            except BaseException as error:  # re-raised in the calling thread below
                errors.append(error)

        runners = [threading.Thread(target=guarded) for _ in range(threads)]
        for runner in runners:
            runner.start()
        for runner in runners:
            runner.join()
        if errors:
            raise errors[0]
        return self.verdicts


# ---------------------------------------------------------------------------
# Unit tests against a mutant (import hook)
# ---------------------------------------------------------------------------


class _CodeLoader(importlib.abc.Loader):
    def __init__(self, code: types.CodeType) -> None:
        self._code = code

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return None  # the default module object

    def exec_module(self, module: types.ModuleType) -> None:
        exec(self._code, module.__dict__)


class MutantFinder(importlib.abc.MetaPathFinder):
    """Serves the kernel's mutable modules from given code objects (first on the meta path),
    so every later import of them, by tests and backends alike, gets the mutant."""

    def __init__(self, codes: Mapping[str, types.CodeType]) -> None:
        self._codes = {f"{KERNEL_PACKAGE}.{name}": code for name, code in codes.items()}

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        code = self._codes.get(fullname)
        if code is None:
            return None
        return importlib.util.spec_from_file_location(
            fullname, code.co_filename, loader=_CodeLoader(code)
        )


def pytest_with_mutant(workdir: Path, ref: str | None, pytest_args: Sequence[str]) -> int:
    """Run pytest in this process with mutant ``ref`` installed by :class:`MutantFinder`."""
    loaded = [name for name in sys.modules if name.startswith(KERNEL_PACKAGE)]
    if loaded:
        raise RuntimeError(f"the kernel was imported before the import hook: {loaded}")
    codes = kernel_codes(KernelSnapshot.load(workdir).mutators(), ref)
    sys.meta_path.insert(0, MutantFinder(codes))
    import pytest

    return int(pytest.main(list(pytest_args)))


def _unit_test_verdict(workdir: Path, ref: str | None, paths: Sequence[str]) -> str:
    command = [sys.executable, "-m", MODULE_NAME, "--pytest-mutant", ref or "none"]
    command += ["--workdir", str(workdir), "--", "-x", "-q", "-p", "no:cacheprovider"]
    command += ["-k", UNIT_TEST_SELECTION, *paths]
    try:
        result = subprocess.run(
            command,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=UNIT_TEST_TIMEOUT_S,
            check=False,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
    except subprocess.TimeoutExpired:
        return "killed"
    if result.returncode == 0:
        return SURVIVED
    # pytest: 1 = a test failed, 2 = interrupted (collection errors under the mutant)
    return "killed" if result.returncode in (1, 2) else "error"


# ---------------------------------------------------------------------------
# A campaign
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class MutantResult:
    mutant: Mutant
    verdict: Verdict
    covered: bool  # the suite executes the mutated lines of the unmutated kernel
    unit_tests: str | None = None  # killed | survived | error, when --unit-tests ran

    @property
    def killed(self) -> bool:
        return self.verdict.killed

    def to_json(self) -> dict[str, Any]:
        match = triage_of(self.mutant)
        return {
            **asdict(self.mutant),
            "ref": self.mutant.ref,
            **asdict(self.verdict),
            "covered": self.covered,
            "unit_tests": self.unit_tests,
            "triage": None if self.killed or match is None else match[1].category.value,
        }

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> MutantResult:
        mutant_fields = {f: record[f] for f in Mutant.__dataclass_fields__}
        verdict_fields = {f: record[f] for f in Verdict.__dataclass_fields__}
        return cls(
            Mutant(**mutant_fields),
            Verdict(**verdict_fields),
            bool(record["covered"]),
            record.get("unit_tests"),
        )


@dataclass
class CampaignRun:
    modules: tuple[str, ...]
    operators: tuple[str, ...]
    jobs: int
    timeout_s: float
    suite_traces: int
    suite_steps: int
    baseline_seconds: float
    elapsed_seconds: float
    results: list[MutantResult] = field(default_factory=list)
    unit_test_paths: tuple[str, ...] = ()
    unit_test_seconds: float = 0.0  # part of elapsed_seconds spent on --unit-tests
    suite_generated: bool = True  # False when an exported suite was reused (--suite)

    # -- counts -----------------------------------------------------------------------------

    @property
    def total(self) -> int:
        return len(self.results)

    @property
    def killed(self) -> int:
        return sum(r.killed for r in self.results)

    @property
    def survivors(self) -> list[MutantResult]:
        return [r for r in self.results if not r.killed]

    @property
    def score(self) -> float:
        return self.killed / self.total if self.total else 1.0

    def status_counts(self) -> dict[str, int]:
        counts = {status: 0 for status in (*KILLED_STATUSES, SURVIVED)}
        for result in self.results:
            counts[result.verdict.status] = counts.get(result.verdict.status, 0) + 1
        return counts

    def triage_counts(self) -> dict[str, int]:
        counts = {c.value: 0 for c in Category} | {"untriaged": 0}
        for result in self.survivors:
            match = triage_of(result.mutant)
            counts[match[1].category.value if match else "untriaged"] += 1
        return counts

    @property
    def in_scope_score(self) -> float:
        """Killed over the mutants the abstract system can observe: equivalent and
        outside-the-abstraction survivors are left out of the denominator."""
        triaged = self.triage_counts()
        relevant = self.total - triaged[Category.EQUIVALENT.value] - triaged[Category.OUTSIDE.value]
        return self.killed / relevant if relevant else 1.0

    # -- JSON -------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "lashspec-mutation/1",
            "modules": list(self.modules),
            "operators": list(self.operators),
            "jobs": self.jobs,
            "timeout_s": self.timeout_s,
            "suite": {"traces": self.suite_traces, "steps": self.suite_steps},
            "baseline_seconds": round(self.baseline_seconds, 3),
            "elapsed_seconds": round(self.elapsed_seconds, 1),
            "unit_test_paths": list(self.unit_test_paths),
            "unit_test_seconds": round(self.unit_test_seconds, 1),
            "suite_generated": self.suite_generated,
            "summary": {
                "total": self.total,
                "killed": self.killed,
                "survived": self.total - self.killed,
                "score": round(self.score, 4),
                "in_scope_score": round(self.in_scope_score, 4),
                "statuses": self.status_counts(),
                "survivor_triage": self.triage_counts(),
            },
            "mutants": [r.to_json() for r in self.results],
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> CampaignRun:
        return cls(
            modules=tuple(document["modules"]),
            operators=tuple(document["operators"]),
            jobs=int(document["jobs"]),
            timeout_s=float(document["timeout_s"]),
            suite_traces=int(document["suite"]["traces"]),
            suite_steps=int(document["suite"]["steps"]),
            baseline_seconds=float(document["baseline_seconds"]),
            elapsed_seconds=float(document["elapsed_seconds"]),
            results=[MutantResult.from_json(r) for r in document["mutants"]],
            unit_test_paths=tuple(document.get("unit_test_paths", ())),
            unit_test_seconds=float(document.get("unit_test_seconds", 0.0)),
            suite_generated=bool(document.get("suite_generated", True)),
        )


def all_mutants(
    snapshot: KernelSnapshot | None = None,
    modules: Sequence[str] = MUTABLE_MODULES,
    operators: Sequence[str] | None = None,
) -> list[Mutant]:
    """Every mutant the mutator generates today for ``modules`` (and ``operators``)."""
    mutators = (snapshot or KernelSnapshot.from_files()).mutators()
    wanted = set(operators) if operators is not None else set(OPERATORS)
    return [
        mutant
        for name in MUTABLE_MODULES
        if name in modules
        for mutant in mutators[name].mutants
        if mutant.operator in wanted
    ]


def _prepare_suite(workdir: Path, suite_dir: Path | None, progress: Progress) -> None:
    target = workdir / SUITE_FOLDER
    if suite_dir is not None:
        shutil.copytree(suite_dir, target)
        return
    from .generate import generate_suite, write_suite

    progress("generating the conformance suite (once for the whole campaign)")
    write_suite(generate_suite(progress=progress), target)


def run_campaign(
    modules: Sequence[str] = DEFAULT_MODULES,
    operators: Sequence[str] | None = None,
    *,
    jobs: int = 2,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    suite_dir: Path | None = None,
    limit: int | None = None,
    unit_tests: bool = False,
    unit_test_paths: Sequence[str] = UNIT_TEST_PATHS,
    progress: Progress = print,
) -> CampaignRun:
    """Generate (or copy) the suite, judge every mutant, optionally run the unit tests on the
    survivors; nothing is written outside a temporary directory."""
    started = time.perf_counter()
    chosen_operators = tuple(operators) if operators is not None else tuple(OPERATORS)
    with tempfile.TemporaryDirectory(prefix="lashspec-mutation-") as temporary:
        workdir = Path(temporary)
        snapshot = KernelSnapshot.from_files()
        snapshot.save(workdir)
        _prepare_suite(workdir, suite_dir, progress)
        traces = load_traces(workdir / SUITE_FOLDER)
        mutators = snapshot.mutators()
        baseline, hits = covered_lines(kernel_codes(mutators), traces)
        if baseline.status != SURVIVED:
            raise RuntimeError(
                f"the unmutated kernel fails the suite ({baseline.status} on {baseline.trace}: "
                f"{baseline.detail}); mutation scores would mean nothing"
            )
        progress(f"baseline: {len(traces)} traces pass in {baseline.seconds:.2f} s (traced)")
        mutants = all_mutants(snapshot, modules, chosen_operators)
        if limit is not None:
            mutants = mutants[:limit]
        progress(f"{len(mutants)} mutants, {jobs} worker(s), {timeout_s:g} s per mutant")
        verdicts = _Scheduler(workdir, timeout_s, mutants, progress).run(jobs)
        results = [
            MutantResult(
                m,
                verdicts[m.ref],
                any(line in hits[m.module] for line in range(m.line, m.end_line + 1)),
            )
            for m in mutants
        ]
        unit_tests_started = time.perf_counter()
        if unit_tests:
            results = _run_unit_tests(workdir, results, unit_test_paths, jobs, progress)
        unit_test_seconds = time.perf_counter() - unit_tests_started
        return CampaignRun(
            modules=tuple(name for name in MUTABLE_MODULES if name in modules),
            operators=chosen_operators,
            jobs=jobs,
            timeout_s=timeout_s,
            suite_traces=len(traces),
            suite_steps=sum(len(t.steps) - 1 for t in traces),
            baseline_seconds=baseline.seconds,
            elapsed_seconds=time.perf_counter() - started,
            results=results,
            unit_test_paths=tuple(unit_test_paths) if unit_tests else (),
            unit_test_seconds=unit_test_seconds if unit_tests else 0.0,
            suite_generated=suite_dir is None,
        )


def _run_unit_tests(
    workdir: Path,
    results: list[MutantResult],
    paths: Sequence[str],
    jobs: int,
    progress: Progress,
) -> list[MutantResult]:
    from concurrent.futures import ThreadPoolExecutor

    baseline = _unit_test_verdict(workdir, None, paths)
    if baseline != SURVIVED:
        progress(f"unit tests fail on the unmutated kernel ({baseline}); survivors not checked")
        return results
    survivors = [r for r in results if not r.killed]
    progress(f"running the unit tests against {len(survivors)} survivors")
    lock = threading.Lock()
    done = [0]

    def check(result: MutantResult) -> str:
        verdict = _unit_test_verdict(workdir, result.mutant.ref, paths)
        with lock:
            done[0] += 1
            count = done[0]
        progress(f"mutant {count}/{len(survivors)} unit tests {result.mutant.where}: {verdict}")
        return verdict

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        verdicts = list(pool.map(check, survivors))
    by_ref = {r.mutant.ref: v for r, v in zip(survivors, verdicts, strict=True)}
    return [MutantResult(r.mutant, r.verdict, r.covered, by_ref.get(r.mutant.ref)) for r in results]


# ---------------------------------------------------------------------------
# Triage lookup and reports
# ---------------------------------------------------------------------------


def _specificity(key: TriageKey) -> int:
    named = sum(value != "*" for value in (key.operator, key.original, key.mutated))
    return named + (key.occurrence != 0)


def triage_of(mutant: Mutant) -> tuple[TriageKey, Triage] | None:
    """The most specific triage entry matching ``mutant``."""
    matches = [
        (key, triage)
        for key, triage in TRIAGE.items()
        if key.matches(
            mutant.file,
            mutant.function,
            mutant.operator,
            mutant.original,
            mutant.mutated,
            mutant.occurrence,
        )
    ]
    if not matches:
        return None
    return max(matches, key=lambda item: _specificity(item[0]))


def unused_triage(run: CampaignRun) -> list[TriageKey]:
    """Entries for the run's modules and operators that explain no survivor of the run: the
    suite now kills those mutants, so the entry (a gap, say) should go."""
    files = {f"kernel/{module}.py" for module in run.modules}
    survivors = [r.mutant for r in run.survivors]
    return [
        key
        for key in TRIAGE
        if key.file in files
        and (key.operator == "*" or key.operator in run.operators)
        and not any(
            key.matches(m.file, m.function, m.operator, m.original, m.mutated, m.occurrence)
            for m in survivors
        )
    ]


def _percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def breakdown(run: CampaignRun) -> list[tuple[str, str, int, int, int, str]]:
    """(module, operator, mutants, killed, survived, score) rows, then a total row."""
    rows: list[tuple[str, str, int, int, int, str]] = []
    for module in run.modules:
        for operator in run.operators:
            chosen = [
                r
                for r in run.results
                if r.mutant.module == module and r.mutant.operator == operator
            ]
            if not chosen:
                continue
            killed = sum(r.killed for r in chosen)
            rows.append(
                (
                    module,
                    operator,
                    len(chosen),
                    killed,
                    len(chosen) - killed,
                    _percent(killed / len(chosen)),
                )
            )
    rows.append(("all", "all", run.total, run.killed, run.total - run.killed, _percent(run.score)))
    return rows


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    ]


def text_report(run: CampaignRun) -> str:
    lines = _table(("module", "operator", "mutants", "killed", "survived", "score"), breakdown(run))
    statuses = run.status_counts()
    triaged = run.triage_counts()
    lines += [
        "",
        f"mutants {run.total}, killed {run.killed} (diverged {statuses['diverged']}, "
        f"error {statuses['error']}, timeout {statuses['timeout']}), "
        f"survived {run.total - run.killed}",
        f"score {_percent(run.score)}; on the abstract system (equivalent and outside "
        f"survivors excluded) {_percent(run.in_scope_score)}",
        f"survivors: equivalent {triaged['equivalent']}, outside {triaged['outside']}, "
        f"gap {triaged['gap']}, untriaged {triaged['untriaged']}",
        f"{_timing(run)}; {run.suite_traces} traces ({run.suite_steps} steps)",
    ]
    unused = unused_triage(run)
    if unused:
        lines += ["", f"triage entries that explain no survivor of this run ({len(unused)}):"]
        lines += [
            f"  {k.file} {k.function} {k.operator}: {k.original} -> {k.mutated}" for k in unused
        ]
    if run.survivors:
        lines += ["", "survivors:"]
        for result in run.survivors:
            m = result.mutant
            match = triage_of(m)
            category = match[1].category.value if match else "UNTRIAGED"
            tested = f" unit-tests:{result.unit_tests}" if result.unit_tests else ""
            covered = "" if result.covered else " (not executed by the suite)"
            lines.append(f"  {m.where} {m.function} {m.operator} [{category}]{tested}{covered}")
            lines.append(f"      - {m.original_line}")
            lines.append(f"      + {m.mutated_line}")
    return "\n".join(lines)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("`", "'")


def _md_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def render_markdown(run: CampaignRun) -> str:
    """docs/mutation.md: how to run, the operators, and this run's numbers and survivors."""
    statuses = run.status_counts()
    triaged = run.triage_counts()
    lines = [
        "# Mutation testing of the kernel against the conformance traces",
        "",
        "<!-- Generated by `python -m lashspec.conformance.mutation --markdown docs/mutation.md`",
        "     (or `--from-json RUN.json --markdown docs/mutation.md`); do not edit by hand:",
        "     the survivor explanations live in conformance/mutation_triage.py. -->",
        "",
        "The model-generated conformance suite (`lashspec export`) is meant to pin the kernel's",
        "behaviour on the abstract system. Mutation testing measures how well it does: small",
        "deliberate bugs (*mutants*) are put into the kernel one at a time and the suite is",
        "replayed against each on the in-memory backend. A mutant is *killed* when at least one",
        "trace fails: a divergence from the model (`diverged`), an exception (`error`) or no",
        "verdict within the time limit (`timeout`). The *score* is killed / total.",
        "",
        "## Running it",
        "",
        "```",
        "python -m lashspec.conformance.mutation --jobs 2 --json /tmp/mutation.json \\",
        "    --markdown docs/mutation.md",
        "python bench/mutation.py            # the same campaign, prints the score",
        "```",
        "",
        "Options: `--modules engine,rules,memory` (default: all three), `--operators` (a comma",
        "list, default: all), `--timeout` seconds per mutant (default "
        f"{DEFAULT_TIMEOUT_S:g}), `--suite DIR` to reuse a",
        "suite written by `lashspec export` instead of generating one, `--limit N` for a smoke",
        "run, `--unit-tests` to also run the store-level unit tests against every survivor, and",
        "`--from-json RUN.json` to re-render this page (for instance after editing the triage)",
        "without re-running. The command exits with status 1 when a survivor has no triage entry,",
        "and lists the triage entries that explain no survivor any more (the suite caught up",
        "with them: delete them).",
        "",
        "How it works: the kernel sources and the suite are snapshotted into a temporary",
        "directory; `--jobs` long-lived worker processes each parse the snapshot once and, per",
        "mutant, compile the mutated module and execute `rules`, `engine` and `memory` into fresh",
        "module objects, so the replay uses the mutant while the imported kernel stays intact and",
        "nothing is ever written to the repository. Workers (not threads) because the replay is",
        "CPU-bound and a mutant may hang: a worker enforces the time limit with an interval timer,",
        "and a worker that stops answering is killed and replaced, its mutant counted as a",
        "`timeout`. `--unit-tests` runs pytest in a subprocess whose import hook serves the",
        "mutated module, so both backends and every test see the mutant.",
        "",
        "## Operators",
        "",
        *_md_table(("operator", "mutation"), [(f"`{k}`", v) for k, v in OPERATORS.items()]),
        "",
        "Mutations are made inside function bodies only. Not mutated: `assert` statements",
        "(internal consistency checks that would only turn a mutant into a crash), f-strings",
        "(message text), docstrings, annotations, decorators and default values. Mutants are",
        "keyed for triage by file, function, operator and the original and mutated snippet",
        "(`ast.unparse` text), never by line number.",
        "",
        "## Result",
        "",
        f"Modules: {', '.join(f'`kernel/{m}.py`' for m in run.modules)}; operators: all "
        f"{len(run.operators)}; suite: {run.suite_traces} traces, {run.suite_steps} steps "
        f"(baseline replay {run.baseline_seconds:.2f} s under the line tracer); "
        f"{_timing(run)}; time limit {run.timeout_s:g} s per mutant.",
        "",
        f"* **{run.total} mutants, {run.killed} killed, {run.total - run.killed} survived: "
        f"score {_percent(run.score)}.**",
        f"* Killed by: divergence {statuses['diverged']}, error {statuses['error']}, timeout "
        f"{statuses['timeout']}.",
        f"* Survivors: {triaged['equivalent']} equivalent, {triaged['outside']} outside the "
        f"abstract system, {triaged['gap']} real gaps, {triaged['untriaged']} untriaged.",
        f"* Score on the abstract system (equivalent and outside survivors left out of the "
        f"total): **{_percent(run.in_scope_score)}**.",
        *_unit_test_bullet(run),
        "",
        *_md_table(
            ("module", "operator", "mutants", "killed", "survived", "score"), breakdown(run)
        ),
        "",
        "## Survivors",
        "",
    ]
    if run.unit_test_paths:
        killed_by_tests = sum(r.unit_tests == "killed" for r in run.survivors)
        lines += [
            f"The unit tests ({', '.join(f'`{p}`' for p in run.unit_test_paths)}, memory "
            f"backend) were run against every survivor: they kill {killed_by_tests} of the "
            f"{len(run.survivors)}. *unit tests: survived* marks the survivors nothing catches.",
            "",
        ]
    groups: dict[str, list[MutantResult]] = {}
    for result in run.survivors:
        match = triage_of(result.mutant)
        groups.setdefault(match[1].category.value if match else "untriaged", []).append(result)
    for category in ("gap", "untriaged"):
        chosen = groups.get(category, [])
        if chosen:
            lines += [f"### {SURVIVOR_TITLES[category]}: {len(chosen)}", ""]
            lines += [*_survivor_table(run, chosen), ""]
    for category in ("outside", "equivalent"):
        chosen = groups.get(category, [])
        if chosen:
            lines += [f"### {SURVIVOR_TITLES[category]}: {len(chosen)}", ""]
            lines += _survivor_groups(run, chosen)
    lines += MEANING
    return "\n".join(lines) + "\n"


SURVIVOR_TITLES = {
    "gap": "Real gaps (the abstract system could see these; no trace does)",
    "untriaged": "Untriaged",
    "outside": "Outside the abstract system (the unit tests are the net)",
    "equivalent": "Equivalent (no change observable through the store API)",
}


def _unit_test_bullet(run: CampaignRun) -> list[str]:
    if not run.unit_test_paths:
        return []
    outside = [
        r
        for r in run.survivors
        if (match := triage_of(r.mutant)) is not None and match[1].category is Category.OUTSIDE
    ]
    caught = sum(r.unit_tests == "killed" for r in outside)
    return [
        f"* The unit tests kill {caught} of the {len(outside)} outside survivors; the other "
        f"{len(outside) - caught} are caught by nothing (marked *unit tests: survived*)."
    ]


def _timing(run: CampaignRun) -> str:
    campaign = run.elapsed_seconds - run.unit_test_seconds
    suite = "suite generation included" if run.suite_generated else "suite reused"
    text = f"campaign {campaign:.0f} s with {run.jobs} workers ({suite})"
    if run.unit_test_seconds:
        text += f", plus {run.unit_test_seconds:.0f} s of unit tests against the survivors"
    return text


def _notes(run: CampaignRun, result: MutantResult) -> str:
    notes = [] if result.covered else ["not executed by the suite"]
    if run.unit_test_paths and result.unit_tests is not None:
        notes.append(f"unit tests: {result.unit_tests}")
    return f" ({'; '.join(notes)})" if notes else ""


def _survivor_table(run: CampaignRun, chosen: Sequence[MutantResult]) -> list[str]:
    rows = []
    for result in chosen:
        m = result.mutant
        match = triage_of(m)
        why = (match[1].why if match else "") + _notes(run, result)
        rows.append(
            (
                f"{m.file}:{m.line}",
                f"`{m.function}`",
                m.operator,
                f"`{_md_cell(m.original_line)}`",
                f"`{_md_cell(m.mutated_line)}`",
                _md_cell(why.strip()),
            )
        )
    return _md_table(("where", "function", "operator", "original", "mutated", "why"), rows)


def _survivor_groups(run: CampaignRun, chosen: Sequence[MutantResult]) -> list[str]:
    """One paragraph per explanation, listing its survivors."""
    by_reason: dict[str, list[MutantResult]] = {}
    for result in chosen:
        match = triage_of(result.mutant)
        by_reason.setdefault(match[1].why if match else "", []).append(result)
    lines: list[str] = []
    for why, results in by_reason.items():
        lines += [f"**{_md_cell(why)}** ({len(results)})", ""]
        for result in results:
            m = result.mutant
            lines.append(
                f"- {m.file}:{m.line} `{m.function}` {m.operator}: `{_md_cell(m.original)}` → "
                f"`{_md_cell(m.mutated)}`{_notes(run, result)}"
            )
        lines.append("")
    return lines


MEANING: list[str] = [
    "## What the score means",
    "",
    "The score is a lower bound on how much of the kernel's behaviour the traces pin down, over",
    "the mutation operators above. Mutants on code the trace vocabulary never reaches (by-ids",
    "and checkpoint-work claims, head CAS, turn-commit stamps, outbox batches, argument",
    "validation, other sessions) survive by construction: the model abstracts those features",
    "away, and the unit tests under `tests/` cover them instead. The score on the abstract",
    "system leaves those and the equivalent mutants out, so it is the figure to watch for the",
    "suite itself; every *real gap* is a behaviour the model could express but no generated",
    "trace exercises, and is the place to add a trace or a scenario. A killed mutant says only",
    "that some trace notices the change, not that the suite finds every bug of that shape.",
    "",
    "The figures belong to the suite of the day: the suite is generated from the model and its",
    "profiles, so a change there moves them. Re-run the campaign after such changes; the",
    "triage entries that no longer explain a survivor are listed for deletion.",
]


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def _names(text: str, allowed: Sequence[str], what: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in allowed]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown {what} {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(allowed)}"
        )
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lashspec.conformance.mutation",
        description="Mutation testing of the kernel against the generated conformance traces.",
    )
    parser.add_argument(
        "--modules",
        type=lambda t: _names(t, MUTABLE_MODULES, "module"),
        default=DEFAULT_MODULES,
        help="kernel modules to mutate (comma list; default engine,rules,memory)",
    )
    parser.add_argument(
        "--operators",
        type=lambda t: _names(t, tuple(OPERATORS), "operator"),
        default=tuple(OPERATORS),
        help=f"mutation operators (comma list; default all: {','.join(OPERATORS)})",
    )
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds per mutant"
    )
    parser.add_argument("--suite", type=Path, help="reuse a suite written by `lashspec export`")
    parser.add_argument("--limit", type=int, help="judge only the first N mutants")
    parser.add_argument(
        "--unit-tests", action="store_true", help="also run the unit tests against survivors"
    )
    parser.add_argument("--json", type=Path, help="write the run as JSON")
    parser.add_argument("--markdown", type=Path, help="write the report page (docs/mutation.md)")
    parser.add_argument("--from-json", type=Path, help="report an earlier run instead of running")
    parser.add_argument("--quiet", action="store_true", help="no per-mutant progress")
    # internal: the worker and pytest subprocesses
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--pytest-mutant", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in arguments:
        cut = arguments.index("--")
        arguments, extra = arguments[:cut], arguments[cut + 1 :]
    args = build_parser().parse_args(arguments)
    if args.worker is not None:
        return worker_main(args.worker, args.timeout)
    if args.pytest_mutant is not None:
        ref = None if args.pytest_mutant == "none" else args.pytest_mutant
        return pytest_with_mutant(args.workdir, ref, extra)

    if args.from_json is not None:
        run = CampaignRun.from_json(json.loads(args.from_json.read_text(encoding="utf-8")))
    else:

        def progress(message: str) -> None:
            if not args.quiet or not message.startswith("mutant "):
                print(message, file=sys.stderr, flush=True)

        run = run_campaign(
            args.modules,
            args.operators,
            jobs=max(1, args.jobs),
            timeout_s=args.timeout,
            suite_dir=args.suite,
            limit=args.limit,
            unit_tests=args.unit_tests,
            progress=progress,
        )
    print(text_report(run))
    if args.json is not None:
        args.json.write_text(json.dumps(run.to_json(), indent=1) + "\n", encoding="utf-8")
    if args.markdown is not None:
        args.markdown.write_text(render_markdown(run), encoding="utf-8")
    return 1 if run.triage_counts()["untriaged"] else 0


if __name__ == "__main__":
    sys.exit(main())
