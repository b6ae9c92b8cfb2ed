"""Export an explored state graph: GraphML (for tools, round-trips through networkx) and DOT.

GraphML attributes must be scalars, so the exported graph carries strings: node ``state`` is
the decoded state as JSON (maps keyed by index), ``label`` a short id, ``initial``/``deadlock``
booleans and ``violates`` the comma-joined names of invariants first violated there; edge
``action``, ``params`` (JSON), ``outcome`` (JSON) and ``label`` (one readable line).
Rendering a picture needs Graphviz ``dot``; nothing here requires it except ``render_dot``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx

from .dsl import outcome_as_dict
from .explore import ExplorationError, ExplorationResult


class ExportError(Exception):
    """The export cannot be produced (no edges kept, graph too large, renderer failed)."""


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, frozenset | set):
        return sorted(value)
    raise TypeError(f"not JSON serialisable: {value!r}")


def edge_label(action: str, params: Mapping[str, Any], outcome: Mapping[str, Any]) -> str:
    args = ", ".join(f"{k}={v}" for k, v in params.items())
    fields = {k: v for k, v in outcome.items() if k != "tag"}
    extra = "{" + ", ".join(f"{k}={_short(v)}" for k, v in fields.items()) + "}" if fields else ""
    return f"{action}({args}) -> {outcome['tag']}{extra}"


def _short(value: Any) -> str:
    if isinstance(value, frozenset | set):
        return "{" + ",".join(str(v) for v in sorted(value)) + "}"
    if isinstance(value, tuple | list):
        return "[" + ",".join(str(v) for v in value) + "]"
    return str(value)


def graph_for_export(result: ExplorationResult) -> Any:
    """The explored graph with GraphML-safe (string/bool) attributes."""
    try:
        graph = result.graph()
    except ExplorationError as error:
        raise ExportError(str(error)) from error
    exported = nx.MultiDiGraph(name=result.model.name, bounds=_json(dict(result.model.bounds)))
    for node, data in graph.nodes(data=True):
        exported.add_node(
            str(node),
            label=f"s{node}",
            state=_json(result.model.decode(data["state"])),
            initial=bool(data["initial"]),
            deadlock=bool(data["deadlock"]),
            violates=",".join(data["violates"]),
        )
    for src, dst, data in graph.edges(data=True):
        exported.add_edge(
            str(src),
            str(dst),
            action=data["action"],
            params=_json(data["params"]),
            outcome=_json(data["outcome"]),
            label=edge_label(data["action"], data["params"], data["outcome"]),
        )
    return exported


def write_graphml(result: ExplorationResult, path: str | Path) -> Path:
    target = Path(path)
    nx.write_graphml(graph_for_export(result), target)
    return target


def read_graphml(path: str | Path) -> Any:
    """Read an exported graph back (node ids are strings, as written)."""
    return nx.read_graphml(Path(path), force_multigraph=True)


def _dot_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


# The variables each lane of the model works on: projecting every state onto one lane's
# variables and merging equal projections leaves a graph small enough to read.
LANES: dict[str, tuple[str, ...]] = {
    "lease": (
        "lease_holder",
        "lease_holder_inc",
        "lease_gen",
        "lease_live",
        "owner_alive",
        "owner_inc",
        "owner_fence",
    ),
    "queue": (
        "batch_status",
        "batch_claim",
        "batch_claim_gen",
        "batch_fencing",
        "owner_qclaim",
        "owner_qclaim_rows",
    ),
    "inputs": (
        "input_state",
        "input_rewritten",
        "input_claim",
        "input_claim_gen",
        "input_fencing",
        "owner_iclaim",
        "owner_iclaim_rows",
    ),
}
MAX_LABEL_LINES = 4


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return tuple((k, _freeze(v)) for k, v in value.items())
    if isinstance(value, set | frozenset):
        return tuple(sorted(value))
    return value


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "T" if value else "F"
    return _short(value)


def _differences(name: str, initial: Any, value: Any) -> list[str]:
    """``name=value`` for every scalar of ``value`` that differs from ``initial``."""
    if isinstance(value, Mapping) and isinstance(initial, Mapping):
        found: list[str] = []
        for key, item in value.items():
            found.extend(_differences(f"{name}[{key}]", initial.get(key), item))
        return found
    return [] if value == initial else [f"{name}={_scalar_text(value)}"]


def state_label(initial: Mapping[str, Any], state: Mapping[str, Any]) -> str:
    """What ``state`` changed relative to the initial state, one variable per line."""
    lines: list[str] = []
    for name, value in state.items():
        changed = _differences(name, initial[name], value)
        if changed:
            # owner_fence[0]=1 owner_fence[1]=2 -> owner_fence[0]=1 [1]=2
            lines.append(" ".join([changed[0], *(c[len(name) :] for c in changed[1:])]))
    return "\n".join(lines) if lines else "initial"


def _edge_text(labels: set[tuple[str, tuple[tuple[str, Any], ...], str]]) -> str:
    """Parallel transitions as one label: one line per (action, outcome), parameters merged."""
    grouped: dict[tuple[str, str], dict[str, set[str]]] = {}
    for action, params, tag in labels:
        merged = grouped.setdefault((action, tag), {})
        for key, value in params:
            merged.setdefault(key, set()).add(_scalar_text(value))
    lines = []
    for (action, tag), merged_params in sorted(grouped.items()):
        args = ", ".join(f"{k}={'|'.join(sorted(v))}" for k, v in merged_params.items())
        lines.append(f"{action}({args}) {tag}")
    if len(lines) > MAX_LABEL_LINES:
        hidden = len(lines) - MAX_LABEL_LINES + 1
        lines = [*lines[: MAX_LABEL_LINES - 1], f"+{hidden} more"]
    return "\n".join(lines)


@dataclass
class Picture:
    """The explored graph folded for drawing: nodes are classes of states with equal projection.

    ``members[n]`` counts the states of node ``n``; ``edges`` maps each (source, target) pair
    of nodes to the distinct transitions (action, params, outcome tag) between them, so
    parallel transitions and self-loops are one edge each.
    """

    labels: list[str]
    members: list[int]
    initial: int
    deadlocks: set[int]
    violating: set[int]
    edges: dict[tuple[int, int], set[tuple[str, tuple[tuple[str, Any], ...], str]]]
    title: str


def _leaves(value: Any) -> int:
    return sum(_leaves(v) for v in value.values()) if isinstance(value, Mapping) else 1


def _slots(result: ExplorationResult, names: tuple[str, ...]) -> list[int]:
    """Positions in the flat state tuple of the scalars of the variables ``names``."""
    slots: list[int] = []
    position = 0
    for name, value in result.decode(0).items():
        width = _leaves(value)
        if name in names:
            slots.extend(range(position, position + width))
        position += width
    return slots


def fold_graph(result: ExplorationResult, *, lane: str | None = None) -> Picture:
    """Fold the explored graph: project states on ``lane``'s variables (all when None)."""
    if result.edges is None:
        raise ExportError("explore(..., keep_edges=True) is needed to export edges")
    if lane is not None and lane not in LANES:
        raise ExportError(f"unknown lane {lane!r}; expected one of {', '.join(LANES)}")
    names = LANES[lane] if lane is not None else tuple(v.name for v in result.model.variables)
    slots = _slots(result, names)
    node_of_key: dict[tuple[Any, ...], int] = {}
    node_of_state: list[int] = []
    labels: list[str] = []
    members: list[int] = []
    first = result.decode(0)
    initial = {name: first[name] for name in names}
    for n, state in enumerate(result.states):
        key = tuple(state[i] for i in slots)
        node = node_of_key.get(key)
        if node is None:
            node = len(labels)
            node_of_key[key] = node
            decoded = result.decode(n)
            labels.append(state_label(initial, {name: decoded[name] for name in names}))
            members.append(0)
        members[node] += 1
        node_of_state.append(node)
    transitions = []
    for binding_index, outcome in result.labels:
        binding = result.compiled.bindings[binding_index]
        transitions.append(
            (binding.action, tuple(binding.params.items()), outcome_as_dict(outcome)["tag"])
        )
    edges: dict[tuple[int, int], set[tuple[str, tuple[tuple[str, Any], ...], str]]] = {}
    for src, dst, label_id in result.edges:
        pair = (node_of_state[src], node_of_state[dst])
        if lane is not None and pair[0] == pair[1]:
            continue  # another lane's transition: drawn, it would loop on every node
        edges.setdefault(pair, set()).add(transitions[label_id])
    bounds = ", ".join(f"{k}={v}" for k, v in result.model.bounds.items())
    scope = (
        f"projected onto the {lane} lane (transitions that leave it unchanged not drawn)"
        if lane is not None
        else "parallel transitions folded"
    )
    title = (
        f"{result.model.name} ({bounds})\n{result.state_count:,} states {scope}: "
        f"{len(labels):,} nodes, {len(edges):,} edges; a node shows what differs from the "
        "initial state"
    )
    return Picture(
        labels,
        members,
        node_of_state[0],
        {node_of_state[n] for n in result.deadlocks},
        {node_of_state[v.state] for v in result.violations.values()},
        edges,
        title,
    )


def to_dot(result: ExplorationResult, *, lane: str | None = None, max_nodes: int = 500) -> str:
    """Graphviz DOT text of the explored graph, folded by :func:`fold_graph`.

    Nodes are labelled with the variables that differ from the initial state (with ``lane``,
    only that lane's variables, and equal projections merged); each (source, target) pair is
    one edge listing its transitions; self-loops are dashed.
    """
    picture = fold_graph(result, lane=lane)
    if len(picture.labels) > max_nodes:
        hint = "" if lane is not None else " (project onto one lane: --dot-lane)"
        raise ExportError(
            f"the picture would have {len(picture.labels):,} nodes; DOT is for pictures of at "
            f"most {max_nodes} nodes: choose smaller bounds{hint}"
        )
    lines = [
        f'digraph "{_dot_escape(result.model.name)}" {{',
        f'  label="{_dot_escape(picture.title)}"; labelloc=t; fontname="Helvetica";',
        "  rankdir=LR; nodesep=0.15; ranksep=0.5;",
        '  node [shape=box, style=rounded, fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=8, color="#555555"];',
    ]
    for node, text in enumerate(picture.labels):
        if picture.members[node] > 1:
            text += f"\n({picture.members[node]:,} states)"
        style = []
        if node == picture.initial:
            style.append("penwidth=2.5")
        if node in picture.deadlocks:
            style.append('color="orange"')
        if node in picture.violating:
            style.append('color="red"')
        extra = (", " + ", ".join(style)) if style else ""
        lines.append(f'  {node} [label="{_dot_escape(text)}"{extra}];')
    for (src, dst), transitions in sorted(picture.edges.items()):
        text = _edge_text(transitions)
        loop = ', style=dashed, color="#999999", fontcolor="#777777"' if src == dst else ""
        lines.append(f'  {src} -> {dst} [label="{_dot_escape(text)}"{loop}];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_dot(result: ExplorationResult, path: str | Path, **options: Any) -> Path:
    target = Path(path)
    target.write_text(to_dot(result, **options))
    return target


def dot_available() -> bool:
    return shutil.which("dot") is not None


def render_dot(dot_path: str | Path, out_path: str | Path, fmt: str = "svg") -> Path:
    """Render a DOT file with Graphviz ``dot`` (raises ExportError when it is unavailable)."""
    executable = shutil.which("dot")
    if executable is None:
        raise ExportError("Graphviz 'dot' is not installed")
    target = Path(out_path)
    completed = subprocess.run(
        [executable, f"-T{fmt}", str(dot_path), "-o", str(target)],
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise ExportError(f"dot failed: {completed.stderr.strip()}")
    return target
