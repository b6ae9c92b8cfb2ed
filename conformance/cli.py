"""The ``lashspec`` command line.

    lashspec check     prove the invariants (z3), explore the state graph, generate and replay
                       the conformance suite against the kernel; non-zero exit on any violation
    lashspec explore   explore the model's state graph only, optionally exporting it
    lashspec export    write the conformance trace suite (ITF JSON) to a directory
    lashspec replay    replay ITF traces against our kernel or against a port's adapter

Every sub-command prints progress on stderr and a summary on stdout; ``--help`` on each
explains its options.  Bad arguments exit with status 2 and a one-line message.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from .broken_kernels import BROKEN_KERNELS
from .checking import JobError
from .protocol import AdapterError

EXIT_OK = 0
EXIT_VIOLATION = 1
EXIT_USAGE = 2


class CliError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


def _progress(quiet: bool) -> Callable[[str], None]:
    start = time.perf_counter()

    def emit(message: str) -> None:
        if not quiet:
            print(f"[{time.perf_counter() - start:7.1f}s] {message}", file=sys.stderr, flush=True)

    return emit


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lashspec",
        description="Formally modelled reference of the lash runtime kernel.",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = sub.add_parser(
        "check",
        help="prove invariants, explore the model, generate and replay the conformance suite",
        description=(
            "Run every check on the embedded defaults: explicit-state exploration of the "
            "model at the four check profiles (every invariant on every state), the phase-order "
            "automaton, the ten seeded model bugs (each must be caught), z3 inductiveness proofs "
            "of every invariant (at the default bounds and with the counter bounds symbolic), "
            "bounded model checking, generation of the conformance trace suite and its replay "
            "against the kernel on every backend. Progress goes to stderr, a summary table to "
            "stdout. Exits 1 on any violation or divergence, 2 on a bad argument."
        ),
    )
    _add_bounds_arguments(check)
    check.add_argument(
        "--bmc-depth",
        type=_positive_int,
        default=None,
        help="bounded model checking depth (default 10, about a minute)",
    )
    check.add_argument("--skip-z3", action="store_true", help="skip the z3 proofs and BMC")
    check.add_argument(
        "--backend",
        choices=("memory", "sqlite", "all"),
        default="all",
        help="kernel backends to replay the suite against (default: all)",
    )
    check.add_argument("--report", type=Path, help="write a JSON report to this file")
    check.add_argument("--out", type=Path, help="keep the generated trace suite in this directory")
    check.set_defaults(handler=_cmd_check)

    explore = sub.add_parser(
        "explore",
        help="explore the model's state graph and optionally export it",
        description="Breadth-first exploration of the model; invariants checked on every state.",
    )
    _add_bounds_arguments(explore)
    explore.add_argument("--graphml", type=Path, help="write the state graph as GraphML")
    explore.add_argument("--dot", type=Path, help="write the state graph as Graphviz DOT")
    explore.set_defaults(handler=_cmd_explore)

    export = sub.add_parser(
        "export",
        help="write the conformance trace suite as ITF JSON files",
        description=(
            "Generate the coverage-driven trace suite from the model's state graph and write "
            "one ITF JSON file per trace plus an index.json. Output is byte-identical for the "
            "same model and bounds."
        ),
    )
    export.add_argument("out_dir", type=Path, help="directory to write the traces into")
    _add_bounds_arguments(export)
    export.set_defaults(handler=_cmd_export)

    replay = sub.add_parser(
        "replay",
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
        "--backend", choices=("memory", "sqlite"), default="memory", help="our kernel backend"
    )
    target.add_argument(
        "--adapter",
        metavar="COMMAND",
        help="replay against a port: a shell command speaking the JSON-lines adapter protocol",
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
    replay.set_defaults(handler=_cmd_replay)
    return parser


def _print_table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> None:
    widths = [max(len(str(cell)) for cell in col) for col in zip(header, *rows, strict=False)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    print(line)
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))


def _cmd_check(args: argparse.Namespace) -> int:
    from .checking import run_check

    progress = _progress(args.quiet)
    report = run_check(
        bounds=_bounds_overrides(args),
        bmc_depth=args.bmc_depth,
        skip_z3=args.skip_z3,
        backends=("memory", "sqlite") if args.backend == "all" else (args.backend,),
        out_dir=args.out,
        progress=progress,
    )
    _print_table(report.summary_rows(), ("check", "status", "detail"))
    if args.report is not None:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(report.to_json(), indent=2, sort_keys=True) + "\n")
        progress(f"report written to {args.report}")
    return EXIT_OK if report.ok else EXIT_VIOLATION


def _cmd_explore(args: argparse.Namespace) -> int:
    from .checking import run_explore

    progress = _progress(args.quiet)
    result = run_explore(
        bounds=_bounds_overrides(args), graphml=args.graphml, dot=args.dot, progress=progress
    )
    _print_table(result.summary_rows(), ("measure", "value"))
    return EXIT_OK if result.ok else EXIT_VIOLATION


def _cmd_export(args: argparse.Namespace) -> int:
    from .checking import run_export

    progress = _progress(args.quiet)
    summary = run_export(args.out_dir, bounds=_bounds_overrides(args), progress=progress)
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


def _cmd_replay(args: argparse.Namespace) -> int:
    from .checking import run_replay

    progress = _progress(args.quiet)
    files = _collect_trace_files(args.traces)
    if args.kernel_variant and args.adapter:
        raise CliError("--kernel-variant replays our kernel: it cannot be combined with --adapter")
    result = run_replay(
        files,
        backend=args.backend,
        adapter=args.adapter,
        timeout=args.timeout,
        kernel_variant=args.kernel_variant,
        validate=args.validate,
        progress=progress,
    )
    print(result.report())
    return EXIT_OK if result.ok else EXIT_VIOLATION


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except (CliError, JobError) as error:
        print(f"lashspec: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except AdapterError as error:
        print(f"lashspec: adapter failed: {error}", file=sys.stderr)
        return EXIT_VIOLATION
    except KeyboardInterrupt:
        print("lashspec: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
