"""Exploration throughput and memory per engine: reference, packed Python, C, C with symmetry.

    python bench/explore.py [--quick] [--exhaustive core|full] [--exhaustive-only core|full]
                            [--repeat N] [--jobs N]

Every (configuration, engine) runs in a fresh child process, ``--repeat`` times (default 3),
so that its peak resident memory (``ru_maxrss``) is its own. States/s are distinct states per
CPU second of the exploration alone (compiling is reported apart; the C module is built once
and then cached); min/median over the repeats. Bytes/state is the peak RSS growth of the
exploration divided by the states it stored (small runs reuse heap freed by code generation,
so it reads near 0 below about 100,000 states; ``C store/st`` is the C engine's own arrays
and table, capacity included). ``x ref`` is the ratio to the reference explorer
measured in this run. ``c+sym/jN`` is the C engine with symmetry on N threads (``--jobs``,
default: the CPUs this process may use).

``--exhaustive NAME`` adds an exhaustive profile (``core``: CORE_BOUNDS, ``full``:
DEFAULT_BOUNDS; C engine, owner symmetry, -O2) once on ``--jobs`` threads and once serially,
one run each (``--exhaustive-only NAME``: nothing else), and prints for each its wall and CPU
time, its peak resident memory (VmHWM of the whole child process) and the load average around
it, then the parallel/serial speedup of the two runs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import asdict
from typing import Any

ENGINES = ("reference", "python", "c", "c+sym", "c+sym/j")
EXHAUSTIVE = ("core", "full")  # fastexplore.EXHAUSTIVE_PROFILES (not imported at start-up)


def _reset_peak() -> int:
    """Reset the peak RSS to the current RSS (Linux clear_refs); returns the current RSS."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass
    return _peak_bytes()


def _peak_bytes() -> int:
    """Peak resident memory since the last reset (VmHWM; ru_maxrss where /proc is missing)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _child(bounds_json: str, engine: str, jobs: int, optimisation: str | None) -> None:
    from lashspec.model.dsl import compile_model
    from lashspec.model.explore import explore
    from lashspec.model.fastexplore import build_c, fast_explore, owner_symmetry, render_c
    from lashspec.model.kernel_model import Bounds, build_model

    model = build_model(Bounds(**json.loads(bounds_json)))
    symmetry = owner_symmetry(model) if engine.startswith("c+sym") else None
    if engine.startswith("c"):
        # compile (or load from the cache) before measuring
        build_c(render_c(model, symmetry), optimisation)
    compiled = compile_model(model)
    load_before = os.getloadavg()[0]
    baseline = _reset_peak()
    row: dict[str, Any]
    if engine == "reference":
        started = time.process_time()
        result = explore(compiled)
        row = {
            "states": result.state_count,
            "edges": result.edge_count,
            "full_states": result.state_count,
            "cpu": time.process_time() - started,
        }
    else:
        fast = fast_explore(
            model,
            engine="python" if engine == "python" else "c",
            symmetry=symmetry,
            jobs=jobs if engine == "c+sym/j" else 1,
            optimisation=optimisation,
        )
        row = {
            "states": fast.state_count,
            "edges": fast.edge_count,
            "full_states": fast.full_state_count,
            "full_edges": fast.full_edge_count,
            "cpu": fast.cpu_seconds,
            "wall": fast.elapsed,
            "jobs": fast.jobs,
            "holds": sum(fast.invariant_status().values()),
            "store": fast.store_bytes if engine.startswith("c") else None,
        }
    peak = _peak_bytes()
    row["grown_kib"] = (peak - baseline) // 1024
    row["peak_bytes"] = peak
    row["load"] = (load_before, os.getloadavg()[0])
    print(json.dumps(row))


def _run(
    bounds: Any, engine: str, jobs: int = 1, optimisation: str | None = None
) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", json.dumps(asdict(bounds))]
    command += ["--engine", engine, "--jobs", str(jobs)]
    if optimisation:
        command.append(f"--optimisation={optimisation}")  # "-O2" alone reads as an option
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    row: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the check profiles")
    parser.add_argument(
        "--exhaustive",
        choices=EXHAUSTIVE,
        help="add this exhaustive profile: parallel and serial, one run each",
    )
    parser.add_argument(
        "--exhaustive-only", choices=EXHAUSTIVE, help="only this exhaustive profile"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement")
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated engines")
    parser.add_argument("--jobs", type=int, default=None, help="threads of c+sym/j (default: CPUs)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--engine", help=argparse.SUPPRESS)
    parser.add_argument("--optimisation", help=argparse.SUPPRESS)
    args = parser.parse_args()
    from lashspec.model.fastexplore import default_jobs

    jobs = args.jobs or default_jobs()
    if args.child:
        _child(args.child, args.engine, jobs, args.optimisation)
        return 0
    if args.exhaustive_only:
        return _exhaustive(args.exhaustive_only, jobs)
    from lashspec.model.kernel_model import Bounds
    from lashspec.model.profiles import PROFILES

    engines = [e for e in args.engines.split(",") if e]
    configs: list[tuple[str, Any, list[str]]] = [(p.name, p.bounds, engines) for p in PROFILES]
    if not args.quick:
        wide = Bounds(
            owners=2,
            max_incarnation=0,
            batches=2,
            inputs=2,
            max_generation=2,
            max_claims_per_row=1,
            max_head_revision=1,
        )
        configs.append(("wide", wide, engines))
    header = (
        f"{'config':7} {'engine':9} {'states':>10} {'full states':>11} {'edges':>11} "
        f"{'cpu s':>7} {'states/s min':>12} {'median':>10} {'x ref':>6} {'bytes/state':>11} "
        f"{'C store/st':>10}"
    )
    print(header)
    print("-" * len(header))
    for name, bounds, wanted in configs:
        reference_rate: float | None = None
        for engine in wanted:
            rows = [_run(bounds, engine, jobs) for _ in range(args.repeat)]
            rates = sorted(r["states"] / max(r["cpu"], 1e-9) for r in rows)
            grown = min(r["grown_kib"] for r in rows) * 1024 / rows[0]["states"]
            median = statistics.median(rates)
            # the C engine's own arrays; small runs reuse freed heap, so RSS growth says ~0
            store = f"{rows[0]['store'] / rows[0]['states']:.0f}" if rows[0].get("store") else "-"
            if engine == "reference":
                reference_rate = median
            ratio = f"{median / reference_rate:6.1f}" if reference_rate else f"{'-':>6}"
            row = rows[0]
            label = f"c+sym/j{jobs}" if engine == "c+sym/j" else engine
            print(
                f"{name:7} {label:9} {row['states']:>10,} {row['full_states']:>11,} "
                f"{row['edges']:>11,} {min(r['cpu'] for r in rows):>7.2f} {rates[0]:>12,.0f} "
                f"{median:>10,.0f} {ratio} {grown:>11.0f} {store:>10}",
                flush=True,
            )
    if args.exhaustive:
        print()
        return _exhaustive(args.exhaustive, jobs)
    return 0


def _exhaustive(name: str, jobs: int) -> int:
    """The exhaustive profile ``name`` on ``jobs`` threads, then serially: one run each, and
    the speedup."""
    from lashspec.model.fastexplore import FULL_OPTIMISATION, exhaustive_profile

    bounds = exhaustive_profile(name).bounds

    header = (
        f"{name + ' profile':14} {'orbits':>12} {'states':>12} {'edges':>14} {'wall s':>8} "
        f"{'cpu s':>8} {'peak GiB':>8} {'load before/after':>17}"
    )
    print(header)
    print("-" * len(header))
    rows: dict[int, dict[str, Any]] = {}
    for threads in dict.fromkeys((jobs, 1)):  # the parallel run first
        started = time.perf_counter()
        row = _run(bounds, "c+sym/j", threads, FULL_OPTIMISATION)
        rows[threads] = row
        label = "serial" if threads == 1 else f"{threads} threads"
        print(
            f"{label:14} {row['states']:>12,} {row['full_states']:>12,} "
            f"{row['full_edges']:>14,} {row['wall']:>8.1f} {row['cpu']:>8.1f} "
            f"{row['peak_bytes'] / 2**30:>8.2f} {row['load'][0]:>8.2f}/{row['load'][1]:<8.2f}"
            f"  ({time.perf_counter() - started:.0f} s with start-up)",
            flush=True,
        )
    serial, parallel = rows[1], rows[jobs]
    same = all(
        serial[k] == parallel[k] for k in ("states", "full_states", "edges", "full_edges", "holds")
    )
    print(
        f"speedup on {jobs} threads: {serial['wall'] / parallel['wall']:.2f}x wall, "
        f"CPU {parallel['cpu'] / serial['cpu']:.2f}x the serial run's; "
        f"counts and verdicts {'equal' if same else 'DIFFER'}"
    )
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
