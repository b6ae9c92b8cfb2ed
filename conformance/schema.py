"""The JSON Schema of one trace file, and validation with JSON-path error reports.

``trace.schema.json`` (JSON Schema draft 2020-12, shipped inside the package) describes a
trace file of docs/trace-format.md: the ITF envelope, every state's ``mbt::actionTaken``
(the action vocabulary plus ``init``), ``mbt::nondetPicks`` (every parameter name as a
Quint Option, ``Some`` exactly for the parameters the action uses), ``outcome`` (a record
whose tag the action can produce, with that tag's fields) and the ITF encoding of every
state variable.  Ports in other languages can validate traces with any 2020-12 validator;
here :func:`validate_trace_document` does it with ``jsonschema`` (a test dependency, imported
on first use).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Any

from .itf import JsonLimitError, TraceFormatError, check_nesting

SCHEMA_RESOURCE = "trace.schema.json"
MAX_MESSAGE = 240


class TraceSchemaError(TraceFormatError):
    """A trace document the schema rejects; ``json_path`` locates the first error."""

    def __init__(self, source: str, json_path: str, message: str, step: int | None) -> None:
        self.json_path = json_path
        super().__init__(source, f"{json_path}: {message}", step)


@cache
def _schema_text() -> str:
    package = resources.files(__package__ or "lashspec.conformance")
    return package.joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8")


def trace_schema() -> dict[str, Any]:
    """The trace schema as a fresh dict (callers may change their copy freely)."""
    schema: dict[str, Any] = json.loads(_schema_text())
    return schema


@cache
def _validator() -> Any:
    try:
        from jsonschema import Draft202012Validator
    except ImportError as error:  # pragma: no cover - jsonschema ships with the test extra
        raise ImportError(
            "validating traces needs the 'jsonschema' package (pip install 'lashspec[test]')"
        ) from error
    return Draft202012Validator(trace_schema())


def format_json_path(path: Sequence[str | int]) -> str:
    """``["states", 3, "mbt::nondetPicks"]`` -> ``$.states[3]['mbt::nondetPicks']``."""
    parts = ["$"]
    for part in path:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif part.isidentifier():
            parts.append(f".{part}")
        else:
            parts.append(f"[{json.dumps(part)}]".replace('"', "'"))
    return "".join(parts)


def _document_position(document: Any, path: Sequence[str | int]) -> tuple[int, ...]:
    """Where ``path`` points in document order: list indices and object key positions."""
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


def validate_trace_document(document: Any, source: str = "<trace>") -> None:
    """Check a decoded JSON trace document against the schema.

    Raises :class:`TraceSchemaError` (a :class:`TraceFormatError`) for the error that comes
    first in document order, naming its JSON path, e.g.
    ``$.states[4]['mbt::actionTaken']: 'fly' is not one of [...]``.
    """
    from jsonschema.exceptions import best_match

    if isinstance(document, dict | list):
        try:  # the validator recurses: refuse what the trace reader refuses, first
            check_nesting(document)
        except JsonLimitError as error:
            raise TraceFormatError(source, str(error)) from None
    errors = list(_validator().iter_errors(document))
    if not errors:
        return
    first = min(
        errors, key=lambda e: (_document_position(document, list(e.absolute_path)), e.message)
    )
    # Inside anyOf/oneOf/if-then the most specific sub-error explains the problem best.
    detail = best_match([first])
    path = list(detail.absolute_path)
    message = detail.message
    if len(message) > MAX_MESSAGE:
        # jsonschema quotes whole instances and enums; keep the start and the verdict.
        message = f"{message[: MAX_MESSAGE // 2]} ... {message[-MAX_MESSAGE // 3 :]}"
    step = path[1] if len(path) > 1 and path[0] == "states" and isinstance(path[1], int) else None
    raise TraceSchemaError(source, format_json_path(path), message, step)
