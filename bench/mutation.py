"""Bench: the kernel mutation campaign against the generated conformance suite.

    python bench/mutation.py [--jobs 2] [--json OUT]

Generates the suite, judges every mutant of kernel/engine.py, rules.py and memory.py
(docs/mutation.md explains the operators and the triage) and prints the score.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from lashspec.conformance.mutation import run_campaign


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--json", type=Path, help="also write the run as JSON")
    args = parser.parse_args(argv)

    def progress(message: str) -> None:
        if not message.startswith("mutant "):
            print(message, file=sys.stderr, flush=True)

    run = run_campaign(jobs=args.jobs, progress=progress)
    if args.json is not None:
        args.json.write_text(json.dumps(run.to_json(), indent=1) + "\n", encoding="utf-8")
    triaged = run.triage_counts()
    print(
        f"mutation score {100 * run.score:.1f}% ({run.killed}/{run.total} mutants killed); "
        f"on the abstract system {100 * run.in_scope_score:.1f}%; "
        f"real gaps {triaged['gap']}, untriaged {triaged['untriaged']}; "
        f"{run.elapsed_seconds:.0f} s with {run.jobs} workers"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
