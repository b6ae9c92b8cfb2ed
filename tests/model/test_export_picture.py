"""The DOT picture of an explored graph: readable labels, folded edges, lane projections."""

from __future__ import annotations

import re

import pytest
from lashspec.model.explore import ExplorationResult, explore
from lashspec.model.export import LANES, ExportError, fold_graph, to_dot
from lashspec.model.kernel_model import Bounds, build_model

TINY = Bounds(
    owners=1,
    max_incarnation=0,
    batches=1,
    inputs=1,
    max_generation=1,
    max_claims_per_row=1,
    max_head_revision=0,
)
LANE_EXAMPLE = Bounds(  # the README's picture: 25,056 states
    owners=1,
    max_incarnation=0,
    batches=1,
    inputs=1,
    max_generation=2,
    max_claims_per_row=2,
    max_head_revision=2,
)


@pytest.fixture(scope="module")
def tiny() -> ExplorationResult:
    return explore(build_model(TINY), keep_edges=True)


@pytest.fixture(scope="module")
def lane_example() -> ExplorationResult:
    return explore(build_model(LANE_EXAMPLE), keep_edges=True)


def _node_labels(dot: str) -> dict[str, str]:
    return dict(re.findall(r'^  (\d+) \[label="((?:[^"\\]|\\.)*)"', dot, flags=re.M))


def _edges(dot: str) -> list[tuple[str, str]]:
    return re.findall(r"^  (\d+) -> (\d+) ", dot, flags=re.M)


def test_nodes_are_labelled_with_what_differs_from_the_initial_state(
    tiny: ExplorationResult,
) -> None:
    labels = _node_labels(to_dot(tiny, max_nodes=tiny.state_count))
    assert len(labels) == tiny.state_count
    assert labels["0"] == "initial"
    assert not any(re.fullmatch(r"s\d+", label) for label in labels.values())
    acquired = next(n for n in range(tiny.state_count) if tiny.decode(n)["lease_holder"] == 0)
    assert "lease_holder=0" in labels[str(acquired)]
    assert "lease_live=T" in labels[str(acquired)]


def test_parallel_transitions_and_self_loops_are_one_edge_each(tiny: ExplorationResult) -> None:
    dot = to_dot(tiny, max_nodes=tiny.state_count)
    assert tiny.edges is not None
    pairs = {(src, dst) for src, dst, _ in tiny.edges}
    assert len(tiny.edges) > len(pairs), "the fixture must have parallel transitions"
    edges = _edges(dot)
    assert len(edges) == len(pairs)
    assert set(edges) == {(str(a), str(b)) for a, b in pairs}


def test_a_lane_projection_merges_states_with_equal_lane_variables(
    lane_example: ExplorationResult,
) -> None:
    for lane, variables in LANES.items():
        picture = fold_graph(lane_example, lane=lane)
        assert len(picture.labels) < lane_example.state_count / 100, lane
        assert sum(picture.members) == lane_example.state_count
        text = "\n".join(picture.labels)
        assert all(name.split("[")[0] in variables for name in re.findall(r"(\w+)(?:\[|=)", text))
        assert all(src != dst for src, dst in picture.edges), "other lanes' loops not drawn"
    lease = fold_graph(lane_example, lane="lease")
    assert len(lease.labels) == 14
    dot = to_dot(lane_example, lane="lease")
    assert "25,056 states" in dot and "(12 states)" in dot


def test_too_large_a_picture_names_the_lane_option(lane_example: ExplorationResult) -> None:
    with pytest.raises(ExportError, match="--dot-lane"):
        to_dot(lane_example)
    with pytest.raises(ExportError, match="unknown lane"):
        fold_graph(lane_example, lane="turns")
