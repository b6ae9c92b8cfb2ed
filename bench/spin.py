"""SPIN against our C engine on the same state spaces (the Promela comes from the model).

    python bench/spin.py [--repeat N] [--quick]

For each configuration (the ``lease`` check profile and two owners x two batches x two
inputs): render the model with ``render_promela``, build SPIN's verifier
(``spin -a``; ``gcc -O2 -DNOREDUCE -DSAFETY``: exhaustive, no partial-order reduction, no
invariants, SPIN's best case), run ``./pan -c1 -w<fitted>`` and our engine (C, no symmetry,
every invariant on every state) in child processes. Prints both state counts (they must be
equal), CPU states/s (min/median of ``--repeat``) and bytes per state (peak RSS of the
verifier process; peak RSS growth of ours), and ends with ``lashspec/spin states/s ratio``
(the ratio of the medians, worst configuration).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any


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


def _ours_child(bounds_json: str) -> None:
    from lashspec.model.fastexplore import build_c, fast_explore, render_c
    from lashspec.model.kernel_model import Bounds, build_model

    model = build_model(Bounds(**json.loads(bounds_json)))
    build_c(render_c(model))
    baseline = _reset_peak()
    result = fast_explore(model, engine="c")
    grown = (_peak_bytes() - baseline) // 1024
    print(
        json.dumps(
            {
                "states": result.state_count,
                "edges": result.edge_count,
                "cpu": result.cpu_seconds,
                "bytes": grown * 1024,
            }
        )
    )


def _ours(bounds: Any) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(asdict(bounds))],
        capture_output=True,
        text=True,
        check=True,
    )
    row: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return row


def _build_spin(bounds: Any, workdir: Path) -> None:
    from lashspec.model.kernel_model import build_model
    from lashspec.model.promela import render_promela

    (workdir / "model.pml").write_text(render_promela(build_model(bounds)))
    subprocess.run(["spin", "-a", "model.pml"], cwd=workdir, check=True, capture_output=True)
    subprocess.run(
        ["gcc", "-O2", "-w", "-DNOREDUCE", "-DSAFETY", "-DMEMLIM=8000", "-o", "pan", "pan.c"],
        cwd=workdir,
        check=True,
        capture_output=True,
    )


def _spin(workdir: Path, expected_states: int) -> dict[str, Any]:
    # a hash table of about twice the states: SPIN's own advice for exhaustive runs
    width = max(expected_states * 2, 1024).bit_length()
    process = subprocess.Popen(
        ["./pan", f"-m{expected_states + 1000}", "-c1", f"-w{width}"],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    report = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    stored = re.search(r"(\d+) states, stored", report)
    transitions = re.search(r"(\d+) transitions", report)
    if stored is None or transitions is None or "errors: 0" not in report:
        raise RuntimeError(f"SPIN did not finish cleanly:\n{report}")
    return {
        "states": int(stored.group(1)),
        "edges": int(transitions.group(1)) - 1,  # SPIN also counts reaching the initial state
        "cpu": usage.ru_utime + usage.ru_stime,
        "bytes": usage.ru_maxrss * 1024,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement")
    parser.add_argument("--quick", action="store_true", help="only the lease profile")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _ours_child(args.child)
        return 0
    if shutil.which("spin") is None or shutil.which("gcc") is None:
        print("SPIN or gcc is not installed (apt-get install -y spin gcc)")
        return 1
    from lashspec.model.kernel_model import Bounds
    from lashspec.model.profiles import profile

    configs: list[tuple[str, Bounds]] = [("lease", profile("lease").bounds)]
    if not args.quick:
        configs.append(
            (
                "2x2x2",
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
    header = (
        f"{'config':7} {'tool':9} {'states':>10} {'edges':>11} {'cpu s':>7} "
        f"{'states/s min':>12} {'median':>10} {'bytes/state':>11}"
    )
    print(header)
    print("-" * len(header))
    ratios: list[float] = []
    for name, bounds in configs:
        with tempfile.TemporaryDirectory() as tmp:
            _build_spin(bounds, Path(tmp))  # first: the model may not change in between
            ours = [_ours(bounds) for _ in range(args.repeat)]
            spin = [_spin(Path(tmp), ours[0]["states"]) for _ in range(args.repeat)]
        medians = {}
        for tool, rows in (("spin", spin), ("lashspec", ours)):
            rates = sorted(r["states"] / max(r["cpu"], 1e-9) for r in rows)
            medians[tool] = statistics.median(rates)
            per_state = min(r["bytes"] for r in rows) / rows[0]["states"]
            print(
                f"{name:7} {tool:9} {rows[0]['states']:>10,} {rows[0]['edges']:>11,} "
                f"{min(r['cpu'] for r in rows):>7.2f} {rates[0]:>12,.0f} "
                f"{medians[tool]:>10,.0f} {per_state:>11.0f}",
                flush=True,
            )
        if (spin[0]["states"], spin[0]["edges"]) != (ours[0]["states"], ours[0]["edges"]):
            print(f"MISMATCH on {name}: SPIN and lashspec explored different state spaces")
            return 1
        ratios.append(medians["lashspec"] / medians["spin"])
    print(f"lashspec/spin states/s ratio: {min(ratios):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
