"""Exploration throughput and peak memory of the explicit-state explorer.

    python bench/explore.py [--quick]

Each configuration is explored in a fresh child process so that its peak resident memory
(``ru_maxrss``) is its own. Prints distinct states per second, bytes per state and the ratio
to the target of 50,000 states/s; all numbers come from this one run.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from dataclasses import asdict

TARGET_STATES_PER_SECOND = 50_000


def _child(bounds_json: str) -> None:
    from lashspec.model.dsl import compile_model
    from lashspec.model.explore import explore
    from lashspec.model.kernel_model import Bounds, build_model

    bounds = Bounds(**json.loads(bounds_json))
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    compiled = compile_model(build_model(bounds))
    started = time.perf_counter()
    result = explore(compiled)
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "states": result.state_count,
                "edges": result.edge_count,
                "seconds": elapsed,
                "peak_kib": peak,
                "baseline_kib": baseline,
            }
        )
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the check profiles")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child)
        return 0
    from lashspec.model.kernel_model import Bounds
    from lashspec.model.profiles import PROFILES

    configs = [(p.name, p.bounds) for p in PROFILES]
    if not args.quick:
        configs.append(
            (
                "wide",
                Bounds(
                    owners=2,
                    max_incarnation=0,
                    batches=2,
                    inputs=2,
                    max_generation=2,
                    max_claims_per_row=1,
                    max_head_revision=1,
                ),
            )
        )
    header = f"{'config':8} {'states':>10} {'edges':>12} {'seconds':>8} {'states/s':>10} "
    header += f"{'x target':>8} {'peak MiB':>9} {'bytes/state':>11}"
    print(header)
    print("-" * len(header))
    for name, bounds in configs:
        out = subprocess.run(
            [sys.executable, __file__, "--child", json.dumps(asdict(bounds))],
            capture_output=True,
            text=True,
            check=True,
        )
        row = json.loads(out.stdout.strip().splitlines()[-1])
        rate = row["states"] / row["seconds"]
        grown = (row["peak_kib"] - row["baseline_kib"]) * 1024
        print(
            f"{name:8} {row['states']:>10,} {row['edges']:>12,} {row['seconds']:>8.1f} "
            f"{rate:>10,.0f} {rate / TARGET_STATES_PER_SECOND:>8.2f} "
            f"{row['peak_kib'] / 1024:>9.0f} {grown / row['states']:>11.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
