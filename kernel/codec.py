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


# Exact types that encode and decode as themselves.
_PLAIN = frozenset({str, int, float, bool, type(None)})

# How each type encodes, decided once per type with the same tests, in the same order, as
# the isinstance chain below would make per value (values of one type always take the same
# branch), so encoding a record does not re-inspect dataclass fields on every call.
_ENUM, _BYTES, _SEQUENCE, _MAPPING, _SCALAR = "enum", "bytes", "sequence", "mapping", "scalar"
_Record = tuple[str, tuple[str, ...], frozenset[str]]  # class name, fields, opaque fields
_ENCODINGS: dict[type[Any], str | _Record | None] = {}


def _encoding(kind: type[Any]) -> str | _Record | None:
    found: str | _Record | None
    if issubclass(kind, enum.Enum):
        found = _ENUM
    elif issubclass(kind, bytes):
        found = _BYTES
    elif dataclasses.is_dataclass(kind) and not issubclass(kind, type):
        name = kind.__name__
        names = tuple(f.name for f in dataclasses.fields(kind))
        found = (name, names, frozenset(n for n in names if (name, n) in _OPAQUE_FIELDS))
    elif issubclass(kind, tuple | list):
        found = _SEQUENCE
    elif issubclass(kind, dict):
        found = _MAPPING
    elif kind is type(None) or issubclass(kind, str | int | float | bool):
        found = _SCALAR
    else:
        found = None
    _ENCODINGS[kind] = found
    return found


def to_jsonable(value: Any) -> Any:
    kind = type(value)
    encoding = _ENCODINGS[kind] if kind in _ENCODINGS else _encoding(kind)
    if encoding is _SCALAR:
        return value
    if type(encoding) is tuple:
        name, names, opaque = encoding
        encoded: dict[str, Any] = {"$type": name}
        for field_name in names:
            item = getattr(value, field_name)
            if field_name in opaque:
                encoded[field_name] = {"$json": dict(item)}
            elif type(item) in _PLAIN:  # a leaf encodes as itself: skip the call
                encoded[field_name] = item
            else:
                encoded[field_name] = to_jsonable(item)
        return encoded
    if encoding is _ENUM:
        return {"$enum": kind.__name__, "value": value.value}
    if encoding is _SEQUENCE:
        return [to_jsonable(v) for v in value]
    if encoding is _MAPPING:
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if encoding is _BYTES:
        return {"$bytes": base64.b64encode(value).decode("ascii")}
    raise BackendFailure(f"cannot encode a value of type {kind.__name__}")


def from_jsonable(data: Any) -> Any:
    if type(data) in _PLAIN:
        return data
    if isinstance(data, list):
        return tuple([v if type(v) in _PLAIN else from_jsonable(v) for v in data])
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
        kwargs = {
            k: v if type(v) in _PLAIN else from_jsonable(v) for k, v in data.items() if k != "$type"
        }
        try:
            return cls(**kwargs)
        except TypeError as error:
            raise BackendFailure(f"malformed {data['$type']} record: {error}") from None
    return {k: from_jsonable(v) for k, v in data.items()}


# Owner identities are written and read with almost every row; both directions are cached
# (bounded). Decoding is keyed by the exact text; encoding by the object itself (held in the
# entry, so its id cannot be reused while the entry lives), never by equality: equal
# identities may still encode differently (``pid=1`` and ``pid=True``).
_OWNER_CACHE_SIZE = 1024
_owner_by_text: dict[str, _types.LeaseOwnerIdentity] = {}
_text_by_owner: dict[int, tuple[_types.LeaseOwnerIdentity, str]] = {}


def dumps_owner(owner: _types.LeaseOwnerIdentity) -> str:
    """``dumps(owner)``, cached for the same identity object."""
    entry = _text_by_owner.get(id(owner))
    if entry is not None and entry[0] is owner:
        return entry[1]
    text = dumps(owner)
    if len(_text_by_owner) >= _OWNER_CACHE_SIZE:
        _text_by_owner.clear()
    _text_by_owner[id(owner)] = (owner, text)
    return text


def loads_owner(text: str) -> _types.LeaseOwnerIdentity:
    """A stored owner identity; :class:`BackendFailure` if ``text`` holds anything else."""
    owner = _owner_by_text.get(text)
    if owner is not None:
        return owner
    decoded = loads(text)
    if not isinstance(decoded, _types.LeaseOwnerIdentity):
        raise BackendFailure(f"stored owner is not an identity: {text[:80]!r}")
    if len(_owner_by_text) >= _OWNER_CACHE_SIZE:
        _owner_by_text.clear()
    _owner_by_text[text] = decoded
    return decoded


_RECORD_CACHE_SIZE = 1024
_record_by_text: dict[str, Any] = {}


def loads_record(text: str) -> Any:
    """``loads(text)``, cached by the exact text when the value is immutable (hashable: frozen
    records, tuples, enums, scalars; a value holding a dict or list is decoded every time),
    so the rows a transaction reads again (a batch claimed, then completed) decode once."""
    value = _record_by_text.get(text)
    if value is not None:
        return value
    value = loads(text)
    try:
        hash(value)
    except TypeError:
        return value
    if len(_record_by_text) >= _RECORD_CACHE_SIZE:
        _record_by_text.clear()
    _record_by_text[text] = value
    return value


# One encoder for every call: ``json.dumps`` with options builds a new one each time.
_encode_json = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode


def dumps(value: Any) -> str:
    return _encode_json(to_jsonable(value))


# For each type met by ``_decodes_as_itself``: the fields to check (a frozen record of this
# module without opaque fields), () for a type that always decodes as itself (a plain
# scalar, bytes, an enum of this module), None for a type that never does.
_SELF_DECODING: dict[type[Any], tuple[str, ...] | None] = {
    str: (),
    int: (),
    float: (),
    bool: (),
    type(None): (),
    bytes: (),
}


def _self_decoding(kind: type[Any]) -> tuple[str, ...] | None:
    name = kind.__name__
    found: tuple[str, ...] | None = None
    if _ENUMS.get(name) is kind:
        found = ()
    elif (
        _DATACLASSES.get(name) is kind
        and kind.__dataclass_params__.frozen
        and kind.__hash__ is not None
    ):
        encoding = _ENCODINGS[kind] if kind in _ENCODINGS else _encoding(kind)
        if type(encoding) is tuple and not encoding[2]:  # an opaque field decodes to a dict
            found = encoding[1]
    _SELF_DECODING[kind] = found
    return found


def _decodes_as_itself(value: Any) -> bool:
    """Whether ``loads(dumps(value))`` rebuilds ``value`` with the same type at every level:
    plain scalars, bytes, tuples, and this module's enums and hashable (frozen) records,
    never their subclasses, a list or a dict (those decode as something else, or are
    mutable)."""
    kind = type(value)
    if kind is tuple:
        return all(_decodes_as_itself(item) for item in value)
    fields = _SELF_DECODING[kind] if kind in _SELF_DECODING else _self_decoding(kind)
    if fields is None:
        return False
    for field in fields:
        item = getattr(value, field)
        if type(item) not in _PLAIN and not _decodes_as_itself(item):
            return False
    return True


def dumps_record(value: Any) -> str:
    """``dumps(value)``; when the text decodes to a value equal to ``value`` with the same
    types throughout, ``value`` itself is remembered as that text's decoding, so the next
    ``loads_record`` of the text (a row read back in a later transaction) skips the decode."""
    text = dumps(value)
    if text not in _record_by_text and _decodes_as_itself(value):  # so hashable, immutable
        if len(_record_by_text) >= _RECORD_CACHE_SIZE:
            _record_by_text.clear()
        _record_by_text[text] = value
    return text


def loads(text: str) -> Any:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise BackendFailure(f"undecodable stored JSON: {error}") from None
    return from_jsonable(data)
