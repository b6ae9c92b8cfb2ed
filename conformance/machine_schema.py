"""The JSON Schema of one machine trace file (docs/machine-traces.md), and validation that
picks the schema by ``#meta.lashspec.system``.

``machine-trace.schema.json`` (draft 2020-12, shipped inside the package) describes the ITF
envelope of a machine trace, its meta (``system`` ``"machine"``, bounds with ``max_turns``),
the machine actions with their picks, the ``{tag, effects}`` outcome of host events and store
steps, and the machine variables (``machine_phase`` ... ``session_turns``); store variables are
any ITF value there (``trace.schema.json`` describes them) except the owner claim memory,
which machine traces do not have. :func:`validate_any_trace_document` validates a machine
trace against it and any other trace with :func:`.schema.validate_trace_document`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Any

from .itf import JsonLimitError, TraceFormatError, check_nesting
from .schema import MAX_MESSAGE, TraceSchemaError, format_json_path, validate_trace_document

MACHINE_SCHEMA_RESOURCE = "machine-trace.schema.json"


def machine_trace_schema() -> dict[str, Any]:
    """The machine trace schema as a fresh dict."""
    package = resources.files(__package__ or "lashspec.conformance")
    schema: dict[str, Any] = json.loads(
        package.joinpath(MACHINE_SCHEMA_RESOURCE).read_text(encoding="utf-8")
    )
    return schema


@cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(machine_trace_schema())


def trace_system(document: Any) -> str:
    """``#meta.lashspec.system`` of a decoded trace document (``"store"`` when absent)."""
    meta = document.get("#meta") if isinstance(document, Mapping) else None
    lashspec = meta.get("lashspec") if isinstance(meta, Mapping) else None
    system = lashspec.get("system", "store") if isinstance(lashspec, Mapping) else "store"
    return system if isinstance(system, str) else "store"


def _position(document: Any, path: Sequence[str | int]) -> tuple[int, ...]:
    """Where ``path`` points in document order (list indices, object key positions)."""
    position: list[int] = []
    node = document
    for part in path:
        if isinstance(node, Mapping):
            keys = list(node)
            position.append(keys.index(part) if part in keys else len(keys))
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int):
            position.append(part)
            node = node[part] if 0 <= part < len(node) else None
        else:
            break
    return tuple(position)


def validate_machine_trace_document(document: Any, source: str = "<trace>") -> None:
    """Check a decoded machine trace against the machine schema; raises
    :class:`~.schema.TraceSchemaError` for the first error in document order, one line
    naming its JSON path."""
    from jsonschema.exceptions import best_match

    if isinstance(document, dict | list):
        try:
            check_nesting(document)
        except JsonLimitError as error:
            raise TraceFormatError(source, str(error)) from None
    errors = list(_validator().iter_errors(document))
    if not errors:
        return
    first = min(errors, key=lambda e: (_position(document, list(e.absolute_path)), e.message))
    detail = best_match([first])
    path = list(detail.absolute_path)
    message = " ".join(detail.message.split())  # one line
    if len(message) > MAX_MESSAGE:
        message = f"{message[: MAX_MESSAGE // 2]} ... {message[-MAX_MESSAGE // 3 :]}"
    step = path[1] if len(path) > 1 and path[0] == "states" and isinstance(path[1], int) else None
    raise TraceSchemaError(source, format_json_path(path), message, step)


def validate_any_trace_document(document: Any, source: str = "<trace>") -> None:
    """Validate against the schema of the trace's system: machine traces against
    ``machine-trace.schema.json``, store traces against ``trace.schema.json``."""
    if trace_system(document) == "machine":
        validate_machine_trace_document(document, source)
    else:
        validate_trace_document(document, source)
