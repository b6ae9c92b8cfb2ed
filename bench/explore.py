"""Exploration throughput and memory per engine: reference, packed Python, C, C with symmetry.

    python bench/explore.py [--quick] [--full] [--repeat N]

Every (configuration, engine) runs in a fresh child process, ``--repeat`` times (default 3),
so that its peak resident memory (``ru_maxrss``) is its own. States/s are distinct states per
CPU second of the exploration alone (compiling is reported apart; the C module is built once
and then cached); min/median over the repeats. Bytes/state is the peak RSS growth of the
exploration divided by the states it stored (small runs reuse heap freed by code generation,
so it reads near 0 below about 100,000 states; ``C store/st`` is the C engine's own arrays
and table, capacity included). ``x ref`` is the ratio to the reference explorer
measured in this run. ``--full`` adds DEFAULT_BOUNDS with the C engine and owner symmetry.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import asdict
from typing import Any

ENGINES = ("reference", "python", "c", "c+sym")


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


def _child(bounds_json: str, engine: str) -> None:
    from lashspec.model.dsl import compile_model
    from lashspec.model.explore import explore
    from lashspec.model.fastexplore import build_c, fast_explore, owner_symmetry, render_c
    from lashspec.model.kernel_model import Bounds, build_model

    model = build_model(Bounds(**json.loads(bounds_json)))
    symmetry = owner_symmetry(model) if engine == "c+sym" else None
    if engine.startswith("c"):
        build_c(render_c(model, symmetry))  # compile (or load from the cache) before measuring
    compiled = compile_model(model)
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
            model, engine="python" if engine == "python" else "c", symmetry=symmetry
        )
        row = {
            "states": fast.state_count,
            "edges": fast.edge_count,
            "full_states": fast.full_state_count,
            "cpu": fast.cpu_seconds,
            "store": fast.store_bytes if engine.startswith("c") else None,
        }
    row["grown_kib"] = (_peak_bytes() - baseline) // 1024
    print(json.dumps(row))


def _run(bounds: Any, engine: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(asdict(bounds)), "--engine", engine],
        capture_output=True,
        text=True,
        check=True,
    )
    row: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the check profiles")
    parser.add_argument("--full", action="store_true", help="add DEFAULT_BOUNDS (C, symmetry)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement")
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated engines")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--engine", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.engine)
        return 0
    from lashspec.model.kernel_model import DEFAULT_BOUNDS, Bounds
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
    if args.full:
        configs.append(("full", DEFAULT_BOUNDS, ["c+sym"]))
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
            rows = [_run(bounds, engine) for _ in range(args.repeat)]
            rates = sorted(r["states"] / max(r["cpu"], 1e-9) for r in rows)
            grown = min(r["grown_kib"] for r in rows) * 1024 / rows[0]["states"]
            median = statistics.median(rates)
            # the C engine's own arrays; small runs reuse freed heap, so RSS growth says ~0
            store = f"{rows[0]['store'] / rows[0]['states']:.0f}" if rows[0].get("store") else "-"
            if engine == "reference":
                reference_rate = median
            ratio = f"{median / reference_rate:6.1f}" if reference_rate else f"{'-':>6}"
            row = rows[0]
            print(
                f"{name:7} {engine:9} {row['states']:>10,} {row['full_states']:>11,} "
                f"{row['edges']:>11,} {min(r['cpu'] for r in rows):>7.2f} {rates[0]:>12,.0f} "
                f"{median:>10,.0f} {ratio} {grown:>11.0f} {store:>10}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
