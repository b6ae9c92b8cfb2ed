"""ITF traces (the Informal Trace Format of Apalache and Quint) with Quint's MBT convention.

A trace file is one JSON document::

    {"#meta": {"format": "ITF", "format-description": ..., "lashspec": {...}},
     "vars": ["lease_gen", ...],
     "states": [{"#meta": {"index": 0},
                 "mbt::actionTaken": "init",
                 "mbt::nondetPicks": {"o": {"tag": "None", "value": {"#tup": []}}, ...},
                 "outcome": {"tag": "Ok"},
                 "lease_gen": 0, ...}, ...]}

Values: integers beyond 2^53 as ``{"#bigint": "..."}``, sets ``{"#set": [...]}``, maps
``{"#map": [[k, v], ...]}``, tuples ``{"#tup": [...]}``, records as plain objects.  Inside
Python a decoded trace uses ``dict`` for maps, ``frozenset`` for sets, ``tuple`` for
tuples and ``dict`` for records (a record is recognised by its position: picks, outcomes).
Files are written canonically (sorted keys, fixed separators, newline at the end) so the same
trace is byte-identical on every run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT_VERSION = "lashspec-trace/1"
MAX_SAFE_INT = 2**53 - 1

#: Every parameter name any action uses, in the order picks are written.
PICK_NAMES: tuple[str, ...] = (
    "o",
    "observed",
    "b",
    "i",
    "boundary",
    "checkpoint",
    "release",
    "defer",
)

#: Variables whose values are maps from an index to a *set* of indices.
SET_VALUED_MAPS = frozenset({"owner_qclaim_rows", "owner_iclaim_rows"})


class TraceFormatError(ValueError):
    """A trace file that does not follow docs/trace-format.md; says where and what."""

    def __init__(self, source: str, message: str, step: int | None = None) -> None:
        self.source = source
        self.step = step
        where = f"{source}" if step is None else f"{source}, state {step}"
        super().__init__(f"{where}: {message}")


# ---------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------


def encode_value(value: Any) -> Any:
    """Python value -> ITF JSON value."""
    if isinstance(value, bool | str) or value is None:
        return value
    if isinstance(value, int):
        return value if abs(value) <= MAX_SAFE_INT else {"#bigint": str(value)}
    if isinstance(value, frozenset | set):
        return {"#set": sorted((encode_value(v) for v in value), key=_sort_key)}
    if isinstance(value, tuple):
        return {"#tup": [encode_value(v) for v in value]}
    if isinstance(value, list):
        return [encode_value(v) for v in value]
    if isinstance(value, Mapping):
        return {"#map": [[encode_value(k), encode_value(v)] for k, v in sorted(value.items())]}
    raise TypeError(f"cannot encode {type(value).__name__} as an ITF value")


def encode_record(record: Mapping[str, Any]) -> dict[str, Any]:
    return {k: encode_value(v) for k, v in record.items()}


def _sort_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def decode_value(value: Any, source: str = "<trace>", step: int | None = None) -> Any:
    """ITF JSON value -> Python value (maps -> dict, sets -> frozenset, tuples -> tuple)."""
    if isinstance(value, list):
        return [decode_value(v, source, step) for v in value]
    if not isinstance(value, dict):
        return value
    if "#bigint" in value:
        try:
            return int(value["#bigint"])
        except (TypeError, ValueError):
            raise TraceFormatError(source, f"bad #bigint {value['#bigint']!r}", step) from None
    if "#set" in value:
        items = value["#set"]
        if not isinstance(items, list):
            raise TraceFormatError(source, "#set must hold a list", step)
        return frozenset(_hashable(decode_value(v, source, step)) for v in items)
    if "#tup" in value:
        items = value["#tup"]
        if not isinstance(items, list):
            raise TraceFormatError(source, "#tup must hold a list", step)
        return tuple(decode_value(v, source, step) for v in items)
    if "#map" in value:
        pairs = value["#map"]
        if not isinstance(pairs, list) or not all(
            isinstance(p, list) and len(p) == 2 for p in pairs
        ):
            raise TraceFormatError(source, "#map must hold [key, value] pairs", step)
        return {
            _hashable(decode_value(k, source, step)): decode_value(v, source, step)
            for k, v in pairs
        }
    return {k: decode_value(v, source, step) for k, v in value.items()}


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    return value


def normalise_state(state: Mapping[str, Any]) -> dict[str, Any]:
    """Bring a state produced by Python code to the decoded-ITF shape (sets as frozensets)."""
    result: dict[str, Any] = {}
    for name, value in state.items():
        if name in SET_VALUED_MAPS:
            result[name] = {k: frozenset(v) for k, v in value.items()}
        else:
            result[name] = value
    return result


def normalise_outcome(outcome: Mapping[str, Any]) -> dict[str, Any]:
    result = dict(outcome)
    if "rows" in result:
        result["rows"] = frozenset(result["rows"])
    if "outcomes" in result:
        result["outcomes"] = list(result["outcomes"])
    return result


def _encode_outcome(outcome: Mapping[str, Any]) -> dict[str, Any]:
    encoded: dict[str, Any] = {}
    for key, value in outcome.items():
        if key == "rows":
            encoded[key] = encode_value(frozenset(value))
        else:
            encoded[key] = encode_value(value)
    return encoded


# ---------------------------------------------------------------------------
# Traces
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TraceStep:
    """One ITF state: the action that led to it, its picks, its outcome and the state."""

    action: str
    picks: Mapping[str, Any]  # only the parameters the action uses
    outcome: Mapping[str, Any]
    state: Mapping[str, Any]


@dataclass(frozen=True)
class Trace:
    trace_id: str
    steps: tuple[TraceStep, ...]  # steps[0] is the initial state ("init")
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(sorted(self.steps[0].state)) if self.steps else ()

    @property
    def actions(self) -> tuple[tuple[str, Mapping[str, Any]], ...]:
        return tuple((s.action, s.picks) for s in self.steps[1:])


def _picks_json(picks: Mapping[str, Any]) -> dict[str, Any]:
    """Quint's ``mbt::nondetPicks`` with only the parameters the action uses, each as Some.

    Quint also writes the unused ones as ``None``; readers (ours included) treat a missing
    pick as None. We leave them out because itf-py cannot decode a variant tagged ``None``.
    """
    return {
        name: {"tag": "Some", "value": encode_value(picks[name])}
        for name in PICK_NAMES
        if name in picks
    }


def trace_to_json(trace: Trace) -> dict[str, Any]:
    variables = list(trace.variables)
    states = []
    for index, step in enumerate(trace.steps):
        entry: dict[str, Any] = {
            "#meta": {"index": index},
            "mbt::actionTaken": step.action,
            "mbt::nondetPicks": _picks_json(step.picks),
            "outcome": _encode_outcome(step.outcome),
        }
        for name in variables:
            value = step.state[name]
            if name in SET_VALUED_MAPS:
                value = {k: frozenset(v) for k, v in value.items()}
            entry[name] = encode_value(value)
        states.append(entry)
    return {
        "#meta": {
            "format": "ITF",
            "format-description": "https://apalache-mc.org/docs/adr/015adr-trace.html",
            "lashspec": {
                "format_version": FORMAT_VERSION,
                "trace_id": trace.trace_id,
                **dict(trace.meta),
            },
        },
        "vars": ["mbt::actionTaken", "mbt::nondetPicks", "outcome", *variables],
        "states": states,
    }


def dumps_canonical(document: Any) -> str:
    return json.dumps(document, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def write_trace(trace: Trace, path: Path) -> None:
    path.write_text(dumps_canonical(trace_to_json(trace)), encoding="utf-8")


def trace_from_json(document: Any, source: str = "<trace>") -> Trace:
    if not isinstance(document, dict):
        raise TraceFormatError(source, "the document must be a JSON object")
    meta = document.get("#meta", {})
    states = document.get("states")
    variables = document.get("vars")
    if not isinstance(states, list) or not states:
        raise TraceFormatError(source, "'states' must be a non-empty list")
    if not isinstance(variables, list) or not all(isinstance(v, str) for v in variables):
        raise TraceFormatError(source, "'vars' must be a list of variable names")
    lashspec_meta = meta.get("lashspec", {}) if isinstance(meta, dict) else {}
    if not isinstance(lashspec_meta, dict):
        raise TraceFormatError(source, "'#meta.lashspec' must be an object")
    version = lashspec_meta.get("format_version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise TraceFormatError(source, f"unsupported format version {version!r}")
    state_vars = [
        v for v in variables if v not in ("mbt::actionTaken", "mbt::nondetPicks", "outcome")
    ]
    steps = []
    for index, raw in enumerate(states):
        if not isinstance(raw, dict):
            raise TraceFormatError(source, "a state must be a JSON object", index)
        action = raw.get("mbt::actionTaken")
        if not isinstance(action, str):
            raise TraceFormatError(source, "missing string 'mbt::actionTaken'", index)
        raw_picks = raw.get("mbt::nondetPicks")
        if not isinstance(raw_picks, dict):
            raise TraceFormatError(source, "missing object 'mbt::nondetPicks'", index)
        picks: dict[str, Any] = {}
        for name, option in raw_picks.items():
            if not isinstance(option, dict) or option.get("tag") not in ("Some", "None"):
                raise TraceFormatError(
                    source, f"pick {name!r} must be a Quint option {{tag: Some|None}}", index
                )
            if option["tag"] == "Some":
                if "value" not in option:
                    raise TraceFormatError(source, f"pick {name!r} has no value", index)
                picks[name] = decode_value(option["value"], source, index)
        outcome = raw.get("outcome")
        if not isinstance(outcome, dict) or not isinstance(outcome.get("tag"), str):
            raise TraceFormatError(source, "missing outcome record with a string 'tag'", index)
        missing = [v for v in state_vars if v not in raw]
        if missing:
            raise TraceFormatError(source, f"state lacks variables {missing}", index)
        state = {v: decode_value(raw[v], source, index) for v in state_vars}
        steps.append(TraceStep(action, picks, decode_value(outcome, source, index), state))
    trace_id = str(lashspec_meta.get("trace_id", Path(source).stem))
    extra = {k: v for k, v in lashspec_meta.items() if k not in ("format_version", "trace_id")}
    return Trace(trace_id, tuple(steps), extra)


def read_trace(path: Path) -> Trace:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise TraceFormatError(str(path), f"not JSON: {error}") from None
    except OSError as error:
        raise TraceFormatError(str(path), f"cannot read: {error}") from None
    return trace_from_json(document, str(path))
