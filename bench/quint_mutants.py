"""Does Quint's random simulator find each seeded model bug?

    python bench/quint_mutants.py [--samples N] [--steps K] [--seed S] [MUTANT ...]

Renders every mutant of ``model/mutants.py`` (at ``DEFAULT_BOUNDS``, where the explorer
finds them all) as Quint and runs ``quint run --backend typescript --invariant <expected>``
with a fixed seed. Prints, per mutant, whether Quint reported a violation of the invariant
the explorer reports, in how many steps, and the time taken. Needs Quint
(``tools/quint/install``).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from lashspec.model.kernel_model import DEFAULT_BOUNDS
    from lashspec.model.mutants import MUTANTS, build_mutant
    from lashspec.model.quint import find_quint, module_name, render_quint

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mutants", nargs="*", help="mutant names (default: all)")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--seed", default="7")
    args = parser.parse_args(argv)
    quint = find_quint()
    if quint is None:
        print("Quint is not installed: run tools/quint/install", file=sys.stderr)
        return 2
    chosen = [m for m in MUTANTS if not args.mutants or m.name in args.mutants]
    print(f"{'mutant':34} {'invariant':28} {'found':>6} {'steps':>5} {'seconds':>7}")
    missed = 0
    with tempfile.TemporaryDirectory(prefix="lashspec-quint-") as folder:
        for mutant in chosen:
            model = build_mutant(mutant.name, DEFAULT_BOUNDS)
            spec = Path(folder) / f"{module_name(model)}.qnt"
            spec.write_text(render_quint(model), encoding="utf-8")
            started = time.perf_counter()
            run = subprocess.run(
                [
                    str(quint),
                    "run",
                    "--backend=typescript",
                    f"--seed={args.seed}",
                    f"--max-samples={args.samples}",
                    f"--max-steps={args.steps}",
                    f"--invariant={mutant.expected_invariant}",
                    "--verbosity=2",
                    spec.name,
                ],
                cwd=folder,
                capture_output=True,
                text=True,
                check=False,
            )
            elapsed = time.perf_counter() - started
            found = "[violation]" in run.stdout
            states = re.findall(r"\[State (\d+)\]", run.stdout)
            steps = str(int(states[-1])) if found and states else "-"
            if not found and "[ok]" not in run.stdout:
                found_text = "error"
                print(run.stdout[-2000:] + run.stderr[-2000:], file=sys.stderr)
            else:
                found_text = "yes" if found else "no"
            missed += not found
            print(
                f"{mutant.name:34} {mutant.expected_invariant:28} {found_text:>6} {steps:>5} "
                f"{elapsed:7.1f}",
                flush=True,
            )
    print(f"{len(chosen) - missed}/{len(chosen)} seeded bugs found by quint run")
    return 0 if missed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
