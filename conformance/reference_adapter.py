"""The reference adapter: our kernel behind the JSON-lines adapter protocol, for store traces
and machine traces (docs/machine-traces.md) alike.

    python -m lashspec.conformance.reference_adapter [--backend memory|sqlite]

It is what a port's adapter looks like from the replayer's side, and the protocol's own
test: ``lashspec replay --adapter 'python -m lashspec.conformance.reference_adapter'``
must agree with ``lashspec replay`` on every trace.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .protocol import serve
from .replay import kernel_target


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lashspec.conformance.reference_adapter",
        description="Serve the lashspec adapter protocol (JSON lines) for our kernel.",
    )
    parser.add_argument("--backend", choices=("memory", "sqlite"), default="memory")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lashspec-adapter-") as scratch:
        target = kernel_target(args.backend, Path(scratch))
        try:
            return serve(target, f"lashspec-kernel/{args.backend}", sys.stdin, sys.stdout)
        finally:
            target.close()


if __name__ == "__main__":
    sys.exit(main())
