"""Regenerate the pictures in docs/img (needs Graphviz ``dot``).

    python docs/render_pictures.py

``lease-lane.svg``: the model at two owners and two generations with only the lease actions
(acquire, reclaim, renew, release, expire, crash): every state and transition the explorer
finds, drawn from the same DOT export ``lashspec explore --dot`` writes.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from lashspec.model.explore import explore
from lashspec.model.export import render_dot, write_dot
from lashspec.model.kernel_model import Bounds, build_model

LEASE_ACTIONS = frozenset({"acquire", "reclaim", "renew", "release", "expire", "crash"})
LEASE_BOUNDS = Bounds(
    owners=2,
    max_incarnation=0,
    batches=1,
    inputs=1,
    max_generation=2,
    max_claims_per_row=1,
    max_head_revision=0,
)


def main() -> int:
    model = build_model(LEASE_BOUNDS)
    model = model.replace(actions=tuple(a for a in model.actions if a.name in LEASE_ACTIONS))
    result = explore(model, keep_edges=True)
    out = Path(__file__).resolve().parent / "img" / "lease-lane.svg"
    with tempfile.TemporaryDirectory() as scratch:
        dot = write_dot(result, Path(scratch) / "lease.dot")
        render_dot(dot, out)
    print(f"{out}: {result.state_count} states, {result.edge_count} transitions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
