"""Bench: the kernel mutation campaign against the generated conformance suite alone.

    python bench/mutation.py [--jobs 2] [--workdir DIR] [--json OUT] [...]

Runs tools/mutation/run.py (Cosmic Ray; docs/mutation.md explains the command, the filters
and the equivalents): exports the suite, judges every mutant of kernel/ in worker copies
(the checkout is never mutated), prints the survivors and ends with the line
``traces kill K of N non-equivalent mutants (P%)``.  Needs ``pip install -e '.[mutation]'``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

RUN = Path(__file__).resolve().parents[1] / "tools" / "mutation" / "run.py"


def main() -> int:
    spec = importlib.util.spec_from_file_location("lashspec_tools_mutation_run", RUN)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {RUN}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    status: int = module.main(sys.argv[1:])
    return status


if __name__ == "__main__":
    sys.exit(main())
