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
from collections.abc import Callable, Mapping
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


def to_dot(
    result: ExplorationResult,
    *,
    max_nodes: int = 500,
    node_label: Callable[[int, dict[str, Any]], str] | None = None,
    collapse_self_loops: bool = True,
) -> str:
    """Graphviz DOT text of the explored graph.

    ``node_label`` turns (state id, decoded state) into a label (default ``s<id>``);
    ``collapse_self_loops`` draws all self-loops of a node as one edge listing their actions.
    """
    if result.edges is None:
        raise ExportError("explore(..., keep_edges=True) is needed to export edges")
    if result.state_count > max_nodes:
        raise ExportError(f"{result.state_count} states exceed max_nodes={max_nodes}")
    deadlocks = set(result.deadlocks)
    violating = {v.state for v in result.violations.values()}
    lines = [
        f'digraph "{_dot_escape(result.model.name)}" {{',
        "  rankdir=LR;",
        '  node [shape=box, fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=8];',
    ]
    for n in range(result.state_count):
        label = node_label(n, result.decode(n)) if node_label is not None else f"s{n}"
        style = []
        if n == 0:
            style.append("penwidth=2")
        if n in deadlocks:
            style.append('color="orange"')
        if n in violating:
            style.append('color="red"')
        extra = (", " + ", ".join(style)) if style else ""
        lines.append(f'  {n} [label="{_dot_escape(label)}"{extra}];')
    loops: dict[int, list[str]] = {}
    for src, dst, label_id in result.edges:
        binding_index, outcome = result.labels[label_id]
        binding = result.compiled.bindings[binding_index]
        text = edge_label(binding.action, binding.params, outcome_as_dict(outcome))
        if collapse_self_loops and src == dst:
            loops.setdefault(src, []).append(text)
            continue
        lines.append(f'  {src} -> {dst} [label="{_dot_escape(text)}"];')
    for node, texts in loops.items():
        joined = "\n".join(sorted(set(texts)))
        lines.append(f'  {node} -> {node} [label="{_dot_escape(joined)}", style=dashed];')
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
