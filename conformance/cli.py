"""The ``lashspec`` command line.

    lashspec check     prove the invariants (z3), explore the state graph, generate and replay
                       the conformance suite against the kernel; non-zero exit on any violation
    lashspec explore   explore the model's state graph only, optionally exporting it
    lashspec export    write the conformance trace suite (ITF JSON) to a directory
    lashspec replay    replay ITF traces against our kernel or against a port's adapter
    lashspec render    write the model as a Quint module (docs/trace-format.md, Quint traces)

Every sub-command prints progress on stderr and a summary on stdout; ``--help`` on each
explains its options.  Bad arguments exit with status 2 and a one-line message.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import textwrap
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path

from ..model.explore import ExplorationError, parse_bytes
from ..model.export import LANES
from ..model.fastexplore import EXHAUSTIVE_PROFILES
from ..model.profiles import PROFILES
from .broken_kernels import BROKEN_KERNELS
from .checking import JobError, Progress
from .forked import WorkerError
from .protocol import AdapterError
from .replay import ReplayWorkerError

# One measured run (the stage seconds of its --report), so the user knows which stage waits.
CHECK_DURATIONS = """\
Cost of each stage, from one run on an otherwise idle 2-core machine (--jobs 2: 2.1 minutes
of wall time, 3.7 minutes of CPU time; the model stages run beside the rest, and the suite's
profiles and the replays in --jobs worker processes). Compiling each model costs a second or
more the first time; compiled models are cached on disk (LASHSPEC_CACHE_DIR), so a second
check takes about 1.4 minutes:
  explore:<profile>        0.5-4.5 s each (the 21 store profiles: about 32 s)
  explore:machine-<profile>  4-6 s each; machine:rules about a second
  explore:phase-order      instant
  seeded-bugs              about 30 s (each bug explored to its first violation; 3 s cached)
  z3:induction             about 1 s; z3:induction-unbounded about 1 s
  z3:bmc                   the longest model stage: about 35 s at depth 8 (the default;
                           each depth slower than the last; --skip-z3 skips z3)
  machine:seeded-bugs      about 20 s (each explored, then z3 BMC over its last steps)
  machine:z3-induction     about 1 s; machine:z3-bmc about 5 s (depth 6, one owner)
  suite                    the longest stage: about 65 s, 40 s cached (generating and
                           writing 1,769 traces, witnesses of the seeded bugs included)
  replay:memory            about 1 s; replay:sqlite about 10 s (a durable transaction per
                           store call, a new file per trace), each in --jobs processes
  machine:suite and its replays  about 5 s
  replay:postgres          (--backend all) about a minute on a local throwaway server
Progress lines on stderr show each phase; a silent phase prints a line every 10 s."""

CHECK_BACKENDS = {
    "embedded": ("memory", "sqlite"),
    "memory": ("memory",),
    "sqlite": ("sqlite",),
    "postgres": ("postgres",),
    "all": ("memory", "sqlite", "postgres"),
}
"""``check --backend``: a name or group of names of the kernel backends to replay on."""

EXIT_OK = 0
EXIT_VIOLATION = 1
EXIT_USAGE = 2


class CliError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


class ProgressPrinter:
    """Progress lines with elapsed seconds; a heartbeat line when a phase runs long silently.

    Call it with a message to print ``[  12.3s] message``; while no message arrives for
    ``heartbeat`` seconds a background thread prints how long the current phase has run, so a
    long silent phase (suite generation, loading traces) still shows signs of life. ``sink``
    receives each finished line (default: stderr). Use as a context manager to stop the
    heartbeat; ``quiet`` prints nothing.
    """

    def __init__(
        self,
        *,
        quiet: bool = False,
        heartbeat: float = 10.0,
        sink: Callable[[str], None] | None = None,
    ) -> None:
        self.quiet = quiet
        self.heartbeat = heartbeat
        self._sink = sink if sink is not None else _print_to_stderr
        self._start = time.perf_counter()
        self._last_line = self._start
        self._phase = "starting"
        self._phase_start = self._start
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        _LIVE_PRINTERS.add(self)

    def __call__(self, message: str) -> None:
        now = time.perf_counter()
        with self._lock:
            self._phase, self._phase_start = message.splitlines()[0], now
            self._emit(message, now)

    def _emit(self, message: str, now: float) -> None:
        self._last_line = now
        if not self.quiet:
            self._sink(f"[{now - self._start:7.1f}s] {message}")

    def _beat(self) -> None:
        while not self._stopped.wait(min(1.0, self.heartbeat)):
            now = time.perf_counter()
            with self._lock:
                if now - self._last_line >= self.heartbeat:
                    self._emit(
                        f"... still working ({now - self._phase_start:.0f}s since the last "
                        f"progress line: {self._phase})",
                        now,
                    )

    def __enter__(self) -> ProgressPrinter:
        if not self.quiet and self.heartbeat > 0:
            self._thread = threading.Thread(target=self._beat, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join()


# Replay forks its workers (replay.py) while the heartbeat thread may be printing. A fork
# child gets every lock in the state it had at that instant, and one held by a thread that
# does not exist in the child is never released. So each printer's lock is taken before a
# fork and given back on both sides: no heartbeat is then half-way through a line, and
# stderr's own lock is free in the child.
_LIVE_PRINTERS: weakref.WeakSet[ProgressPrinter] = weakref.WeakSet()
_HELD_OVER_FORK: list[threading.Lock] = []


def _take_printer_locks() -> None:
    _HELD_OVER_FORK[:] = [printer._lock for printer in list(_LIVE_PRINTERS)]
    for lock in _HELD_OVER_FORK:
        lock.acquire()


def _give_printer_locks_back() -> None:
    for lock in _HELD_OVER_FORK:
        lock.release()
    _HELD_OVER_FORK.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_take_printer_locks,
        after_in_parent=_give_printer_locks_back,
        after_in_child=_give_printer_locks_back,
    )


def _print_to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return value


def _add_bounds_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "model bounds",
        "Any bound given replaces the check profiles by one configuration; bounds not given "
        "take the model's defaults (lashspec.model.kernel_model.Bounds).",
    )
    group.add_argument("--owners", type=_positive_int, help="number of lease owners")
    group.add_argument("--batches", type=_positive_int, help="queued-work batch slots")
    group.add_argument("--inputs", type=_positive_int, help="pending turn-input slots")
    group.add_argument(
        "--max-generation", type=_positive_int, help="largest session fencing token explored"
    )
    group.add_argument("--max-incarnation", type=_positive_int, help="restarts allowed per owner")
    group.add_argument(
        "--max-claims-per-row", type=_positive_int, help="claims of one row explored"
    )
    group.add_argument("--max-head-revision", type=_positive_int, help="commits explored")


def _byte_size(text: str) -> int:
    """``--max-memory``: ``2G``, ``512M`` (``parse_bytes``); a bad size is a usage error."""
    try:
        return parse_bytes(text)
    except ExplorationError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


EXHAUSTIVE_PROFILE_HELP = (
    "core and full explore everything at large bounds (every invariant on every state) with "
    "the C engine under owner symmetry, on --jobs threads: core the core store's bounds at "
    "their defaults with the trace-format-2 extensions at their smallest (about 250 million "
    "states: minutes on two threads, 3.6 GiB), full DEFAULT_BOUNDS (every bound at its "
    "default: more than 530 million orbits, about a billion states, more than 16 GiB; README, "
    "Benchmarks); both need a C compiler "
    "(the pure-Python fallback cannot finish them)"
)
JOBS_HELP = (
    "threads of the C explorer for --profile core or full (default: the CPUs this process may "
    "use; 1 is the serial engine); the other explorations run on one"
)


def _add_exploration_arguments(parser: argparse.ArgumentParser, *, only: str) -> None:
    group = parser.add_argument_group("exploration")
    group.add_argument(
        "--profile",
        choices=[p.name for p in PROFILES] + list(EXHAUSTIVE_PROFILES),
        help=f"explore only this check profile (model/profiles.py){only}; "
        + EXHAUSTIVE_PROFILE_HELP,
    )
    group.add_argument(
        "--max-memory",
        metavar="SIZE",
        type=_byte_size,
        help="stop an exploration whose resident memory passes SIZE (e.g. 2G, 512M) with exit "
        "status 2 and one line saying how far it got",
    )


BOUND_NAMES = (
    "owners",
    "batches",
    "inputs",
    "max_generation",
    "max_incarnation",
    "max_claims_per_row",
    "max_head_revision",
)


def _bounds_overrides(args: argparse.Namespace) -> dict[str, int]:
    names = BOUND_NAMES
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def _check_description() -> str:
    """What ``check`` runs, with the counts read from the registries that define them."""
    from ..model.machine_mutants import MACHINE_MUTANTS
    from ..model.mutants import MUTANTS
    from ..model.profiles import MACHINE_PROFILES

    return (
        f"Run every check on the embedded defaults: explicit-state exploration of the model at "
        f"the {len(PROFILES)} check profiles (every invariant on every state), the phase-order "
        f"automaton, the {len(MUTANTS)} seeded model bugs (each must be caught), z3 "
        "inductiveness proofs of every invariant (at the default bounds and with the counter "
        "bounds symbolic), bounded model checking, generation of the conformance trace suite "
        "and its replay against the kernel on every backend; then the same for the turn "
        f"machine composed with the store: exploration of the {len(MACHINE_PROFILES)} machine "
        f"profiles (every invariant, deadlocks, rule coverage), its {len(MACHINE_MUTANTS)} "
        "seeded bugs, z3 induction and BMC, and the machine trace suite replayed on every "
        "backend. With two CPUs or more, the stages that need no exploration (phase order, "
        "seeded bugs, z3) run in a worker process beside the rest (--jobs). Bounds given on "
        "the command line replace the store profiles by one configuration and the machine "
        "profiles by one machine configuration at those bounds with one turn. Progress goes to "
        "stderr, a summary table to stdout. Exits 1 on any violation or divergence, 2 on a "
        "bad argument."
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lashspec",
        description="Formally modelled reference of the lash runtime kernel.",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    # Global options are accepted after the command too; SUPPRESS keeps a sub-command that
    # does not see the option from resetting what was given before it.
    global_options = argparse.ArgumentParser(add_help=False)
    global_options.add_argument(
        "-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress output"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = sub.add_parser(
        "check",
        parents=[global_options],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="prove invariants, explore the model, generate and replay the conformance suite",
        description=textwrap.fill(_check_description(), 88) + "\n\n" + CHECK_DURATIONS,
    )
    _add_bounds_arguments(check)
    _add_exploration_arguments(check, only=" and nothing else (no z3, suite or replay)")
    check.add_argument(
        "--bmc-depth",
        type=_positive_int,
        default=None,
        help="depth of the store model's bounded model checking (default 8: about two "
        "minutes of CPU; each depth costs more than the last)",
    )
    check.add_argument("--skip-z3", action="store_true", help="skip the z3 proofs and BMC")
    check.add_argument(
        "--backend",
        choices=tuple(CHECK_BACKENDS),
        default="embedded",
        help="kernel backends to replay the suites against: embedded (the default) is memory "
        "and sqlite, all adds postgres",
    )
    check.add_argument(
        "--dsn",
        help="PostgreSQL connection string for the postgres backend (default: "
        "$LASHSPEC_PG_DSN, else a throwaway server when PostgreSQL is installed)",
    )
    check.add_argument(
        "--jobs",
        type=_positive_int,
        default=None,
        help="processes to run the stages in (default: the CPUs this process may use); the "
        "z3 proofs and seeded bugs run beside the explorations, suite and replays, and the "
        "replays in memory and SQLite are spread over this many worker processes; with "
        "--profile core or full, the threads of the C explorer",
    )
    check.add_argument("--report", type=Path, help="write a JSON report to this file")
    check.add_argument("--out", type=Path, help="keep the generated trace suite in this directory")
    check.set_defaults(handler=_cmd_check)

    explore = sub.add_parser(
        "explore",
        parents=[global_options],
        help="explore the model's state graph and optionally export it",
        description="Breadth-first exploration of the model; invariants checked on every state.",
    )
    _add_bounds_arguments(explore)
    _add_exploration_arguments(explore, only="")
    explore.add_argument("--jobs", type=_positive_int, default=None, help=JOBS_HELP)
    explore.add_argument("--graphml", type=Path, help="write the state graph as GraphML")
    explore.add_argument(
        "--dot",
        type=Path,
        help="write a picture of the state graph as Graphviz DOT: nodes show what differs from "
        "the initial state, parallel transitions are one edge (at most 500 nodes)",
    )
    explore.add_argument(
        "--dot-lane",
        choices=tuple(LANES),
        help="draw only one lane: project every state onto the lane's variables and merge "
        "equal projections (a readable picture of a graph of thousands of states)",
    )
    explore.add_argument(
        "--svg", type=Path, help="render the picture as SVG (needs Graphviz's dot program)"
    )
    explore.set_defaults(handler=_cmd_explore)

    export = sub.add_parser(
        "export",
        parents=[global_options],
        help="write the conformance trace suite as ITF JSON files",
        description=(
            "Generate the coverage-driven trace suite from the model's state graph and write "
            "one ITF JSON file per trace plus an index.json. Output is byte-identical for the "
            "same model and bounds."
        ),
    )
    export.add_argument("out_dir", type=Path, help="directory to write the traces into")
    export.add_argument(
        "--jobs",
        type=_positive_int,
        default=None,
        help="worker processes computing the profiles' traces (default: the CPUs this "
        "process may use); the suite is the same for any number",
    )
    _add_bounds_arguments(export)
    export.set_defaults(handler=_cmd_export)

    replay = sub.add_parser(
        "replay",
        parents=[global_options],
        help="replay ITF traces against the kernel or a port's adapter",
        description=(
            "Replay traces step by step, checking each step's outcome and state. Reports the "
            "first divergence (step, action, field, expected, actual). Directories are searched "
            "for *.itf.json files."
        ),
    )
    replay.add_argument("traces", nargs="+", type=Path, help="trace files or directories")
    target = replay.add_mutually_exclusive_group()
    target.add_argument(
        "--backend",
        choices=("memory", "sqlite", "postgres"),
        default="memory",
        help="our kernel backend",
    )
    target.add_argument(
        "--adapter",
        metavar="COMMAND",
        help="replay against a port: a shell command speaking the JSON-lines adapter protocol",
    )
    replay.add_argument(
        "--dsn",
        help="PostgreSQL connection string for --backend postgres (default: $LASHSPEC_PG_DSN, "
        "else a throwaway server when PostgreSQL is installed)",
    )
    replay.add_argument(
        "--timeout", type=float, default=10.0, help="seconds to wait for each adapter reply"
    )
    replay.add_argument(
        "--validate",
        action="store_true",
        help="check every file against conformance/trace.schema.json first (needs jsonschema; "
        "slow: about 20 files/s)",
    )
    replay.add_argument(
        "--kernel-variant",
        choices=[v.name for v in BROKEN_KERNELS],
        help="replay against a deliberately broken kernel (in memory) to see a divergence",
    )
    replay.add_argument(
        "--bounds",
        metavar="NAME=N,...",
        help="bounds of Quint traces whose spec header is not at hand, e.g. "
        "owners=1,batches=1,inputs=1,max_generation=2,max_incarnation=0,"
        "max_claims_per_row=1,max_head_revision=1",
    )
    replay.add_argument(
        "--jobs",
        type=_positive_int,
        default=None,
        help="worker processes, each replaying its share of the traces against its own "
        "target (default: the CPUs this process may use for our kernel in memory or SQLite; "
        "1 for PostgreSQL and for --adapter, since a port's adapter may not run twice side "
        "by side)",
    )
    replay.set_defaults(handler=_cmd_replay)

    render = sub.add_parser(
        "render",
        parents=[global_options],
        help="write the model as a Quint module",
        description=(
            "Render the store model (or the machine model, or a seeded bug) at the given "
            "bounds as a Quint module whose MBT traces `lashspec replay` accepts unchanged."
        ),
    )
    render.add_argument("--format", choices=("quint",), default="quint", help="output format")
    render.add_argument("--system", choices=("store", "machine"), default="store")
    render.add_argument("--mutant", metavar="NAME", help="render a seeded bug of the store model")
    render.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    _add_bounds_arguments(render)
    render.set_defaults(handler=_cmd_render)
    return parser


MAX_TABLE_WIDTH = 100


def format_table(
    rows: Sequence[Sequence[str]], header: Sequence[str], *, width: int | None = None
) -> list[str]:
    """The rows as aligned columns; the last column is wrapped to fit ``width`` characters.

    ``width`` defaults to the terminal's width, at most 100 (the full text of every detail
    stays in ``check --report``).
    """
    if width is None:
        width = min(shutil.get_terminal_size((MAX_TABLE_WIDTH, 24)).columns, MAX_TABLE_WIDTH)
    widths = [max(len(str(cell)) for cell in col) for col in zip(header, *rows, strict=False)]
    lead = sum(w + 2 for w in widths[:-1])
    widths[-1] = min(widths[-1], max(width - lead, 20))
    indent = " " * lead

    def render(cells: Sequence[str]) -> list[str]:
        first = "  ".join(str(c).ljust(w) for c, w in zip(cells[:-1], widths, strict=False))
        wrapped = textwrap.wrap(str(cells[-1]), widths[-1]) or [""]
        lines = [(first + "  " if first else "") + wrapped[0]]
        lines.extend(indent + more for more in wrapped[1:])
        return [line.rstrip() for line in lines]

    lines = render(header)
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.extend(render(row))
    return lines


def _print_table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> None:
    print("\n".join(format_table(rows, header)))


def _check_writable_file(path: Path, option: str) -> None:
    """Fail before any work if ``path`` cannot be written (the file is left as it was)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        existed = path.exists()
        with path.open("a"):
            pass
        if not existed:
            path.unlink()
    except OSError as error:
        raise CliError(f"{option} {path}: cannot write: {error.strerror or error}") from None


def _check_writable_directory(path: Path, option: str) -> None:
    """Fail before any work if files cannot be created in directory ``path``."""
    if path.exists() and not path.is_dir():
        raise CliError(f"{option} {path} exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        raise CliError(f"{option} {path}: cannot write: {error.strerror or error}") from None


def _cmd_check(args: argparse.Namespace, progress: Progress) -> int:
    from .checking import default_jobs, run_check

    if args.report is not None:
        _check_writable_file(args.report, "--report")
    if args.out is not None:
        _check_writable_directory(args.out, "--out")
    report = run_check(
        bounds=_bounds_overrides(args),
        bmc_depth=args.bmc_depth,
        skip_z3=args.skip_z3,
        backends=CHECK_BACKENDS[args.backend],
        out_dir=args.out,
        progress=progress,
        profile=args.profile,
        max_memory_bytes=args.max_memory,
        jobs=args.jobs if args.jobs is not None else default_jobs(),
        dsn=args.dsn,
    )
    _print_table(report.summary_rows(), ("check", "status", "detail"))
    if args.report is not None:
        args.report.write_text(json.dumps(report.to_json(), indent=2, sort_keys=True) + "\n")
        progress(f"report written to {args.report}")
    return EXIT_OK if report.ok else EXIT_VIOLATION


def _cmd_explore(args: argparse.Namespace, progress: Progress) -> int:
    from ..model.export import dot_available
    from .checking import run_explore

    if args.dot_lane is not None and args.dot is None and args.svg is None:
        raise CliError("--dot-lane chooses what --dot/--svg draw: give --dot FILE or --svg FILE")
    if args.svg is not None and not dot_available():
        raise CliError(
            "--svg needs Graphviz's dot program, which is not installed "
            "(e.g. apt-get install graphviz); --dot FILE writes the DOT text without it"
        )
    for path, option in ((args.graphml, "--graphml"), (args.dot, "--dot"), (args.svg, "--svg")):
        if path is not None:
            _check_writable_file(path, option)
    result = run_explore(
        bounds=_bounds_overrides(args),
        graphml=args.graphml,
        dot=args.dot,
        svg=args.svg,
        lane=args.dot_lane,
        progress=progress,
        profile=args.profile,
        max_memory_bytes=args.max_memory,
        jobs=args.jobs,
    )
    _print_table(result.summary_rows(), ("measure", "value"))
    return EXIT_OK if result.ok else EXIT_VIOLATION


def _cmd_export(args: argparse.Namespace, progress: Progress) -> int:
    from .checking import run_export

    _check_writable_directory(args.out_dir, "export directory")
    summary = run_export(
        args.out_dir, bounds=_bounds_overrides(args), progress=progress, jobs=args.jobs
    )
    _print_table(summary.summary_rows(), ("measure", "value"))
    return EXIT_OK


def _collect_trace_files(paths: Sequence[Path]) -> list[Path]:
    from .itf import SuiteError, collect_trace_files

    def warn(message: str) -> None:  # shown even with -q: it qualifies the verdict
        print(f"lashspec: warning: {message}", file=sys.stderr, flush=True)

    try:
        return collect_trace_files(paths, warn)
    except SuiteError as error:
        raise CliError(str(error)) from None


def _cmd_replay(args: argparse.Namespace, progress: Progress) -> int:
    from .checking import run_replay

    files = _collect_trace_files(args.traces)
    if args.kernel_variant and args.adapter:
        raise CliError("--kernel-variant replays our kernel: it cannot be combined with --adapter")
    result = run_replay(
        files,
        backend=args.backend,
        dsn=args.dsn,
        adapter=args.adapter,
        timeout=args.timeout,
        kernel_variant=args.kernel_variant,
        validate=args.validate,
        progress=progress,
        quint_bounds=_quint_bounds(args.bounds),
        jobs=args.jobs,
    )
    print(result.report())
    return EXIT_OK if result.ok else EXIT_VIOLATION


def _quint_bounds(text: str | None) -> dict[str, int] | None:
    from .quint_traces import BoundsSyntaxError, parse_bounds

    try:
        return None if text is None else parse_bounds(text)
    except BoundsSyntaxError as error:
        raise CliError(f"--bounds: {error}") from None


def _cmd_render(args: argparse.Namespace, progress: Progress) -> int:
    from ..model.dsl import ModelError
    from ..model.quint import render_system

    try:
        text = render_system(args.system, _bounds_overrides(args), args.mutant)
    except (ValueError, ModelError) as error:
        raise CliError(str(error).splitlines()[0]) from None
    if args.output is None:
        sys.stdout.write(text)
    else:
        try:
            args.output.write_text(text, encoding="utf-8")
        except OSError as error:
            raise CliError(f"cannot write {args.output}: {error.strerror}") from None
        progress(f"wrote {args.output} ({len(text.splitlines())} lines)")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace, Progress], int] = args.handler
    try:
        with ProgressPrinter(quiet=args.quiet) as progress:
            return handler(args, progress)
    except (CliError, JobError) as error:
        print(f"lashspec: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except AdapterError as error:
        print(f"lashspec: adapter failed: {error}{_adapter_hint(error)}", file=sys.stderr)
        return EXIT_VIOLATION
    except (ReplayWorkerError, WorkerError) as error:
        print(f"lashspec: {error}", file=sys.stderr)
        return EXIT_VIOLATION
    except KeyboardInterrupt:
        print("lashspec: interrupted", file=sys.stderr)
        return 130


def _adapter_hint(error: AdapterError) -> str:
    """What to check when the adapter died before answering at all."""
    if "before replying to hello" not in str(error) and "cannot start" not in str(error):
        return ""
    return (
        "\n  the adapter command did not start or stopped at once: its own error output, if "
        "any, is printed above.\n  Check that the command runs by itself (is the program on "
        "PATH, is its module installed?); a bare `python` outside the virtualenv cannot import "
        "lashspec: use .venv/bin/python -m lashspec.conformance.reference_adapter"
    )


if __name__ == "__main__":
    sys.exit(main())
