"""JSON encoding of the kernel's value types, for the SQLite backend and for diagnostics.

Every dataclass in :mod:`lashspec.kernel.types` encodes as an object tagged with its class
name (``{"$type": "QueuedWorkBatch", ...fields}``); enums as ``{"$enum": name, "value": v}``;
bytes as ``{"$bytes": base64}``; tuples as lists.  Opaque JSON (a checkpoint's runtime
state) is kept verbatim under ``{"$json": ...}``.  Decoding rejects unknown tags with
:class:`~lashspec.kernel.errors.BackendFailure`, so a corrupt row is reported, never guessed.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import json
from typing import Any

from . import types as _types
from .errors import BackendFailure

_DATACLASSES: dict[str, type[Any]] = {
    name: obj
    for name, obj in vars(_types).items()
    if isinstance(obj, type) and dataclasses.is_dataclass(obj)
}
_ENUMS: dict[str, type[enum.Enum]] = {
    name: obj
    for name, obj in vars(_types).items()
    if isinstance(obj, type) and issubclass(obj, enum.Enum)
}
_OPAQUE_FIELDS = {("SessionCheckpoint", "state")}


def to_jsonable(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return {"$enum": type(value).__name__, "value": value.value}
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode("ascii")}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        name = type(value).__name__
        encoded: dict[str, Any] = {"$type": name}
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if (name, f.name) in _OPAQUE_FIELDS:
                encoded[f.name] = {"$json": dict(item)}
            else:
                encoded[f.name] = to_jsonable(item)
        return encoded
    if isinstance(value, tuple | list):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise BackendFailure(f"cannot encode a value of type {type(value).__name__}")


def from_jsonable(data: Any) -> Any:
    if isinstance(data, list):
        return tuple(from_jsonable(v) for v in data)
    if not isinstance(data, dict):
        return data
    if "$json" in data:
        return data["$json"]
    if "$bytes" in data:
        return base64.b64decode(data["$bytes"])
    if "$enum" in data:
        enum_type = _ENUMS.get(data["$enum"])
        if enum_type is None:
            raise BackendFailure(f"unknown enum {data['$enum']!r} in stored data")
        try:
            return enum_type(data["value"])
        except ValueError:
            raise BackendFailure(
                f"unknown wire string {data['value']!r} for {data['$enum']}"
            ) from None
    if "$type" in data:
        cls = _DATACLASSES.get(data["$type"])
        if cls is None:
            raise BackendFailure(f"unknown record type {data['$type']!r} in stored data")
        kwargs = {k: from_jsonable(v) for k, v in data.items() if k != "$type"}
        try:
            return cls(**kwargs)
        except TypeError as error:
            raise BackendFailure(f"malformed {data['$type']} record: {error}") from None
    return {k: from_jsonable(v) for k, v in data.items()}


def dumps(value: Any) -> str:
    return json.dumps(to_jsonable(value), sort_keys=True, separators=(",", ":"))


def loads(text: str) -> Any:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise BackendFailure(f"undecodable stored JSON: {error}") from None
    return from_jsonable(data)
