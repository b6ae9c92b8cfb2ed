"""Replay the exported conformance suite against the in-memory kernel; the mutation test command.

    python tools/mutation/replay_suite.py --suite DIR [--kernel-dir DIR] [--all]
        [--server SOCKET] [--functions-out FILE]
    python tools/mutation/replay_suite.py --suite DIR --export
    python tools/mutation/replay_suite.py --suite DIR --serve SOCKET [--timeout S]

``--export`` writes the suite (``lashspec export``) into ``DIR`` plus a pickle of the parsed
traces (``traces.pickle``), once, before a campaign.  Without it, every trace is replayed
against the kernel found in ``--kernel-dir`` (default: ``kernel/`` of the checkout this file
lives in, which is the tree the mutation tool mutates in place), stopping at the first
divergence or error unless ``--all`` is given.

``--serve SOCKET`` keeps the parsed suite in memory and, per request on the Unix socket, forks
a child that loads the kernel from the requested directory and replays (the parent never
imports the kernel, so every child sees the files on disk as they are now).  With ``--server
SOCKET`` the replay is delegated to such a server when its socket exists, which saves the
interpreter start, the imports and the suite load per mutant; the result is the same.
``--functions-out FILE`` records, as JSON, every kernel function the replay enters
(file, first line of the code object, name): mutants in functions no trace enters cannot be
killed by the traces, so the campaign records them as survivors without running them.

Exit status: 0 when every trace passes, 1 on a divergence or an exception in the kernel,
2 on a usage error (no suite).  The kernel is loaded from its directory before anything of
``lashspec.conformance`` is imported, so the replay sees exactly the files on disk whatever
editable install the interpreter has.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import pickle
import signal
import socket
import subprocess
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import CodeType, FrameType, ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lashspec.conformance.itf import Trace

REPO_ROOT = Path(__file__).resolve().parents[2]
PICKLE_NAME = "traces.pickle"


class _SourceOnlyLoader(importlib.machinery.SourceFileLoader):
    """Compile from the source file every time, never from ``__pycache__``: a mutant may have
    the same size and modification second as the file the cached bytecode was made from."""

    def get_code(self, fullname: str) -> CodeType:
        return self.source_to_code(self.get_data(self.path), self.path)


class _KernelFinder(importlib.abc.MetaPathFinder):
    """Serve ``lashspec.kernel`` and its submodules from one directory, from source."""

    def __init__(self, kernel_dir: Path) -> None:
        self.kernel_dir = kernel_dir.resolve()

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        parts = fullname.split(".")
        if parts[:2] != ["lashspec", "kernel"]:
            return None
        base = self.kernel_dir.joinpath(*parts[2:])
        package = base / "__init__.py"
        if package.is_file():
            return importlib.util.spec_from_file_location(
                fullname,
                package,
                loader=_SourceOnlyLoader(fullname, str(package)),
                submodule_search_locations=[str(base)],
            )
        module = base.with_suffix(".py")
        if module.is_file():
            return importlib.util.spec_from_file_location(
                fullname, module, loader=_SourceOnlyLoader(fullname, str(module))
            )
        return None


def load_kernel(kernel_dir: Path) -> ModuleType:
    """Import ``lashspec.kernel`` from ``kernel_dir`` (must run before any other kernel import)."""
    if "lashspec.kernel" in sys.modules:
        loaded = Path(sys.modules["lashspec.kernel"].__file__ or "").resolve().parent
        if loaded != kernel_dir.resolve():
            raise RuntimeError(f"lashspec.kernel already imported from {loaded}")
        return sys.modules["lashspec.kernel"]
    sys.meta_path.insert(0, _KernelFinder(kernel_dir))
    return importlib.import_module("lashspec.kernel")


def export_suite(suite_dir: Path) -> int:
    """Write the suite with the installed ``lashspec`` CLI, then pickle the parsed traces."""
    suite_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "lashspec.conformance.cli", "-q", "export", str(suite_dir)]
    subprocess.run(command, check=True)
    traces = _read_suite(suite_dir)
    with open(suite_dir / PICKLE_NAME, "wb") as stream:
        pickle.dump(traces, stream, protocol=pickle.HIGHEST_PROTOCOL)
    return len(traces)


def _read_suite(suite_dir: Path) -> list[Trace]:
    from lashspec.conformance.itf import read_trace

    return [read_trace(path) for path in sorted(suite_dir.glob("*.itf.json"))]


def load_suite(suite_dir: Path) -> list[Trace]:
    cached = suite_dir / PICKLE_NAME
    if cached.exists():
        with open(cached, "rb") as stream:
            traces: list[Trace] = pickle.load(stream)
        return traces
    return _read_suite(suite_dir)


def replay(traces: Sequence[Trace], stop_at_first: bool = True) -> list[str]:
    """Replay ``traces`` on the in-memory kernel; one line per failing trace."""
    from lashspec.conformance.kernel_adapter import memory_store_factory
    from lashspec.conformance.machine_adapter import KernelSystems
    from lashspec.conformance.replay import replay_trace

    failures: list[str] = []
    # the in-memory kernel, as kernel_target("memory"), with the store's other read calls
    # compared with each observation (conformance/store_reads.py)
    target = KernelSystems(memory_store_factory, check_reads=True)
    try:
        for trace in traces:
            try:
                result = replay_trace(trace, target)
            except Exception:  # a mutant may raise anything: that kills it too
                failures.append(f"{trace.trace_id}: error\n{traceback.format_exc(limit=3)}")
            else:
                if result.divergence is None:
                    continue
                failures.append(f"{trace.trace_id}: {result.divergence.describe()}")
            if stop_at_first:
                break
    finally:
        try:
            target.close()
        except Exception:
            failures.append("close: error\n" + traceback.format_exc(limit=3))
    return failures


def replay_kernel(
    kernel_dir: Path, traces: Sequence[Trace], stop_at_first: bool = True
) -> tuple[int, str]:
    """Load the kernel from ``kernel_dir`` and replay: (exit status, report text)."""
    try:
        load_kernel(kernel_dir)
        failures = replay(traces, stop_at_first=stop_at_first)
    except Exception:  # a mutant that breaks the import is killed as well
        return 1, traceback.format_exc(limit=5)
    lines = [*failures, f"{len(traces)} traces, {len(failures)} failing"]
    return (1 if failures else 0), "\n".join(lines)


def record_functions(kernel_dir: Path, out: Path, traces: Sequence[Trace]) -> int:
    """Replay under a profile hook; write, as JSON, which traces enter which kernel function:
    ``{"file:first line of the code object:name": [trace index, ...]}``."""
    root = str(kernel_dir.resolve()) + os.sep
    current: set[str] = set()

    def hook(frame: FrameType, event: str, _arg: Any) -> None:
        if event == "call":
            code = frame.f_code
            if code.co_filename.startswith(root):
                name = code.co_filename[len(root) :]
                current.add(f"{name}:{code.co_firstlineno}:{code.co_name}")

    sys.setprofile(hook)
    try:  # functions run at import time run before every trace
        load_kernel(kernel_dir)
        # the package imports its modules lazily: import each now, or the functions its
        # import runs (the machine's rule table, say) count as entered by the first trace only
        for module in sorted(kernel_dir.glob("*.py")):
            if module.stem == "__init__":
                continue
            with contextlib.suppress(ImportError):  # a backend whose driver is not installed
                importlib.import_module(f"lashspec.kernel.{module.stem}")
    finally:
        sys.setprofile(None)
    at_import = set(current)
    entered: dict[str, list[int]] = {key: list(range(len(traces))) for key in at_import}
    failures: list[str] = []
    for index, trace in enumerate(traces):
        current.clear()
        sys.setprofile(hook)
        try:
            failures += replay([trace], stop_at_first=False)
        finally:
            sys.setprofile(None)
        for key in current - at_import:
            entered.setdefault(key, []).append(index)
    out.write_text(json.dumps(entered, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{len(traces)} traces, {len(failures)} failing; {len(entered)} functions entered")
    return 1 if failures else 0


def _body_spans(source: str) -> list[tuple[int, int, str]]:
    """(first body line, last body line, "first line of the code object:name") per function."""
    spans: list[tuple[int, int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            last = node.body[-1].end_lineno or node.body[-1].lineno
            spans.append((node.body[0].lineno, last, f"{first}:{node.name}"))
    return spans


class TraceSelection:
    """Which traces can tell a mutated kernel copy from the pristine one.

    Traces are independent (each resets the target, and the kernel keeps no module state), so
    a change confined to the body of one function alters only the traces that enter that
    function; they are replayed in suite order.  A change anywhere else (decorators, default
    values, class or module level), in several places, or none found: every trace."""

    def __init__(self, pristine_dir: Path, coverage: Path) -> None:
        self.pristine = {
            p.name: p.read_text(encoding="utf-8") for p in sorted(pristine_dir.glob("*.py"))
        }
        self.spans = {name: _body_spans(text) for name, text in self.pristine.items()}
        self.entered: dict[str, list[int]] = json.loads(coverage.read_text(encoding="utf-8"))

    def select(self, kernel_dir: Path, traces: Sequence[Trace]) -> Sequence[Trace]:
        changed = []
        for name, text in self.pristine.items():
            path = kernel_dir / name
            now = path.read_text(encoding="utf-8") if path.exists() else ""
            if now != text:
                changed.append((name, text.splitlines(), now.splitlines()))
        if len(changed) != 1:
            return traces
        name, old, new = changed[0]
        top = 0
        while top < min(len(old), len(new)) and old[top] == new[top]:
            top += 1
        bottom = 0
        while bottom < min(len(old), len(new)) - top and old[-1 - bottom] == new[-1 - bottom]:
            bottom += 1
        first, last = top + 1, len(old) - bottom  # 1-based lines of the pristine file
        if len(old) != len(new) or last < first:
            return traces
        inside = [sp for sp in self.spans[name] if sp[0] <= first and last <= sp[1]]
        if not inside:
            return traces
        key = f"{name}:{max(inside)[2]}"
        return [traces[i] for i in self.entered.get(key, [])]


def serve(
    socket_path: Path,
    traces: Sequence[Trace],
    timeout_s: float,
    selection: TraceSelection | None = None,
) -> None:
    """Answer replay requests on ``socket_path`` with a forked child each (never returns)."""
    if "lashspec.kernel" in sys.modules:
        raise RuntimeError("the server must not import the kernel")
    socket_path.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(socket_path))
    listener.listen(1)
    while True:
        connection, _ = listener.accept()
        with connection:
            request = json.loads(connection.makefile("r", encoding="utf-8").readline())
            pid = os.fork()
            if pid == 0:  # the child: fresh kernel import, replay, answer, exit
                try:
                    listener.close()
                    signal.alarm(max(1, int(timeout_s)))
                    kernel_dir = Path(request["kernel_dir"])
                    chosen = traces if selection is None else selection.select(kernel_dir, traces)
                    status, report = replay_kernel(kernel_dir, chosen)
                    reply = json.dumps({"status": status, "output": report})
                    connection.sendall(reply.encode())
                    connection.close()
                finally:
                    os._exit(0)
            _, wait_status = os.waitpid(pid, 0)
            if wait_status != 0:  # the child died before answering (timeout, crash)
                answer = {"status": 1, "output": f"replay child died: wait status {wait_status}"}
                with contextlib.suppress(OSError):
                    connection.sendall(json.dumps(answer).encode())


def ask_server(socket_path: Path, kernel_dir: Path) -> int:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.connect(str(socket_path))
        request = json.dumps({"kernel_dir": str(kernel_dir.resolve())}) + "\n"
        connection.sendall(request.encode())
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    if not chunks:
        print("no answer from the replay server")
        return 1
    answer = json.loads(b"".join(chunks))
    print(answer["output"])
    status: int = answer["status"]
    return status


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--suite", type=Path, required=True, help="exported suite directory")
    parser.add_argument("--kernel-dir", type=Path, default=REPO_ROOT / "kernel")
    parser.add_argument("--export", action="store_true", help="write the suite and exit")
    parser.add_argument("--all", action="store_true", help="replay on after a failure")
    parser.add_argument("--serve", type=Path, metavar="SOCKET", help="run a replay server")
    parser.add_argument("--server", type=Path, metavar="SOCKET", help="use a replay server")
    parser.add_argument("--timeout", type=float, default=60.0, help="server: seconds per replay")
    parser.add_argument("--functions-out", type=Path, help="record the functions entered")
    parser.add_argument(
        "--select",
        nargs=2,
        type=Path,
        metavar=("PRISTINE_KERNEL", "FUNCTIONS_JSON"),
        help="server: replay only the traces entering the mutated function",
    )
    args = parser.parse_args(argv)
    if args.export:
        count = export_suite(args.suite)
        print(f"exported {count} traces to {args.suite}")
        return 0
    if args.server is not None and args.server.exists():
        return ask_server(args.server, args.kernel_dir)
    if not args.suite.is_dir():
        print(f"no suite at {args.suite}: run with --export first", file=sys.stderr)
        return 2
    traces = load_suite(args.suite)
    if not traces:
        print(f"no traces in {args.suite}", file=sys.stderr)
        return 2
    if args.serve is not None:
        selection = None if args.select is None else TraceSelection(*args.select)
        serve(args.serve, traces, args.timeout, selection)
    if args.functions_out is not None:
        return record_functions(args.kernel_dir, args.functions_out, traces)
    status, report = replay_kernel(args.kernel_dir, traces, stop_at_first=not args.all)
    print(report)
    return status


if __name__ == "__main__":
    sys.exit(main())
