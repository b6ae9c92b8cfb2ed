"""Quint's own MBT traces, read as lashspec traces (docs/trace-format.md, "Quint traces").

``quint run --mbt --out-itf`` on a spec rendered by ``model/quint.py`` (or written by hand with
the same variables, action names and pick names) writes ITF files that differ from ours:

* no ``#meta.lashspec`` block: the bounds come from the caller (``--bounds``) or from the
  ``// lashspec-bounds:`` header of the spec that ``#meta.source`` names;
* the model's own state variables (claim codes as integers, claim rows as maps to Booleans,
  ghost ``hist_*`` flags) instead of the trace vocabulary: each state is projected through the
  model exactly as our generator projects its states;
* every integer as ``{"#bigint": "..."}`` and unused picks as ``None`` variants (the strict
  reader's value decoding accepts both);
* the outcome, when the spec has an ``outcome`` variable, as a Quint sum-type value
  ``{"tag": T, "value": {fields}}`` (``{"#tup": []}`` for none); without one the trace is
  states-only: replay compares states and says outcomes were not checked.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..model.dsl import FlatState, Model, ModelError, OutcomeValue
from ..model.kernel_model import Bounds, BoundsError, build_model, trace_outcome, trace_state
from ..model.machine_model import (
    MachineBounds,
    build_machine_model,
    machine_trace_outcome,
    machine_trace_state,
)
from ..model.quint import HEADER_BOUNDS, OUTCOME_VARIABLE, header_fields
from .itf import (
    MAX_BOUND_VALUE,
    Trace,
    TraceFormatError,
    TraceStep,
    decode_value,
    preview,
    read_trace_bytes,
)

MBT_ACTION = "mbt::actionTaken"
MBT_PICKS = "mbt::nondetPicks"
#: ``Trace.meta`` key set to False on states-only traces (replay skips their outcomes).
OUTCOMES_CHECKED = "outcomes_checked"


class BoundsSyntaxError(ValueError):
    """A ``--bounds`` value or spec header that is not ``name=int, ...``."""


def parse_bounds(text: str) -> dict[str, int]:
    """``"owners=1, batches=2"`` (commas, optional spaces) as a dict; one-line errors."""
    bounds: dict[str, int] = {}
    for item in text.split(","):
        name, equals, value = item.strip().partition("=")
        if not item.strip():
            continue
        if not equals or not name.strip().isidentifier() or not value.strip().isdigit():
            raise BoundsSyntaxError(f"bounds must read name=integer, ...; got {preview(item)}")
        number = int(value.strip())
        if number > MAX_BOUND_VALUE:
            raise BoundsSyntaxError(f"bound {name.strip()}={number} exceeds {MAX_BOUND_VALUE}")
        bounds[name.strip()] = number
    if not bounds:
        raise BoundsSyntaxError("no bounds given (expected name=integer, ...)")
    return bounds


@dataclass(frozen=True)
class QuintSystem:
    """How one system's model is rebuilt and its states and outcomes projected."""

    name: str
    marker: str  # a state variable only this system's model has
    build: Callable[[Mapping[str, int]], Model]
    state: Callable[[Model, FlatState], dict[str, Any]]
    outcome: Callable[[Model, str, OutcomeValue], dict[str, Any]]


SYSTEMS: tuple[QuintSystem, ...] = (
    QuintSystem(
        "machine",
        "machine_phase",
        lambda bounds: build_machine_model(MachineBounds(**bounds)),
        machine_trace_state,
        machine_trace_outcome,
    ),
    QuintSystem(
        "store",
        "lease_gen",
        lambda bounds: build_model(Bounds(**bounds)),
        trace_state,
        trace_outcome,
    ),
)


def is_quint_document(document: Any) -> bool:
    """A trace document without ``#meta.lashspec``: written by Quint, not by us."""
    if not isinstance(document, dict):
        return False
    meta = document.get("#meta")
    return isinstance(meta, dict) and "lashspec" not in meta


def spec_bounds(document: Mapping[str, Any], trace_path: Path) -> dict[str, int] | None:
    """The bounds in the header of the spec ``#meta.source`` names, looked up next to the
    trace and in the working directory; None when there is no such readable spec."""
    meta = document.get("#meta")
    source = meta.get("source") if isinstance(meta, dict) else None
    if not isinstance(source, str) or not source.endswith(".qnt"):
        return None
    for candidate in (trace_path.parent / source, Path(source)):
        try:
            text = read_trace_bytes(candidate).decode("utf-8", errors="replace")
        except TraceFormatError:
            continue
        header = header_fields(text).get(HEADER_BOUNDS)
        if header is None:
            return None
        try:
            return parse_bounds(header)
        except BoundsSyntaxError as error:
            raise TraceFormatError(str(trace_path), f"{candidate}: {error}") from None
    return None


def _system_of(variables: list[str]) -> QuintSystem:
    for system in SYSTEMS:
        if system.marker in variables:
            return system
    return SYSTEMS[-1]  # the store; the vocabulary check names what does not fit


@functools.lru_cache(maxsize=8)
def _cached_model(system: QuintSystem, bounds: tuple[tuple[str, int], ...]) -> Model:
    return system.build(dict(bounds))  # building takes a while; a suite shares its bounds


def _build(system: QuintSystem, bounds: Mapping[str, int], source: str) -> Model:
    try:
        return _cached_model(system, tuple(sorted(bounds.items())))
    except (TypeError, ValueError, BoundsError, ModelError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise TraceFormatError(source, f"bounds {dict(bounds)} unusable: {message}") from None


def _picks(raw: Any, source: str, index: int) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise TraceFormatError(source, f"missing object {MBT_PICKS!r}", index)
    picks: dict[str, Any] = {}
    for name, option in raw.items():
        if not isinstance(option, dict) or option.get("tag") not in ("Some", "None"):
            raise TraceFormatError(
                source, f"pick {name!r} must be a Quint option {{tag: Some|None}}", index
            )
        if option["tag"] == "Some":
            if "value" not in option:
                raise TraceFormatError(source, f"pick {name!r} has no value", index)
            picks[name] = decode_value(option["value"], source, index)
    return picks


def _outcome(raw: Any, source: str, index: int) -> OutcomeValue:
    if not isinstance(raw, dict) or not isinstance(raw.get("tag"), str) or "value" not in raw:
        raise TraceFormatError(source, "outcome must be a Quint sum-type value {tag, value}", index)
    payload = decode_value(raw["value"], source, index)
    if payload == ():
        return raw["tag"], ()
    if not isinstance(payload, dict) or not all(isinstance(k, str) for k in payload):
        raise TraceFormatError(source, "an outcome's value must be a record or empty", index)
    return raw["tag"], tuple(payload.items())


def trace_from_quint(document: Any, source: str, bounds: Mapping[str, int] | None = None) -> Trace:
    """A Quint MBT trace document as a :class:`Trace` (states in the trace vocabulary).

    ``bounds`` (from ``--bounds``) wins over the spec header; one of them must be there.
    """
    if not isinstance(document, dict):
        raise TraceFormatError(source, "the document must be a JSON object")
    states, variables = document.get("states"), document.get("vars")
    if not isinstance(states, list) or not states:
        raise TraceFormatError(source, "'states' must be a non-empty list")
    if not isinstance(variables, list) or not all(isinstance(v, str) for v in variables):
        raise TraceFormatError(source, "'vars' must be a list of variable names")
    if bounds is None:
        bounds = spec_bounds(document, Path(source))
    if bounds is None:
        raise TraceFormatError(
            source,
            "a Quint trace without lashspec bounds: pass --bounds name=value,... or keep the "
            "spec named in #meta.source (with its '// lashspec-bounds:' header) beside it",
        )
    state_vars = [v for v in variables if v not in (MBT_ACTION, MBT_PICKS, OUTCOME_VARIABLE)]
    system = _system_of(state_vars)
    model = _build(system, bounds, source)
    sorts = model.sorts()
    required = {v.name for v in model.variables if not v.ghost}
    missing = sorted(required - set(state_vars))
    unknown = sorted(set(state_vars) - set(sorts))
    if missing or unknown:
        parts = [f"missing {missing}" if missing else "", f"unknown {unknown}" if unknown else ""]
        raise TraceFormatError(
            source,
            f"variables do not match the {system.name} vocabulary: "
            + "; ".join(p for p in parts if p),
        )
    with_outcome = OUTCOME_VARIABLE in variables
    steps = []
    for index, raw in enumerate(states):
        if not isinstance(raw, dict):
            raise TraceFormatError(source, "a state must be a JSON object", index)
        action = raw.get(MBT_ACTION)
        if not isinstance(action, str):
            raise TraceFormatError(source, f"missing string {MBT_ACTION!r}", index)
        picks = _picks(raw.get(MBT_PICKS), source, index)
        decoded = dict(model.init)  # ghost variables a hand-written spec omits
        for name in state_vars:
            if name not in raw:
                raise TraceFormatError(source, f"state lacks variable {name!r}", index)
            value = decode_value(raw[name], source, index)
            if not sorts[name].contains(value):
                raise TraceFormatError(
                    source, f"{name} = {preview(value)} is outside its sort {sorts[name]}", index
                )
            decoded[name] = value
        state = system.state(model, model.encode(decoded))
        outcome: dict[str, Any] = {}
        if with_outcome:
            outcome = system.outcome(model, action, _outcome(raw.get("outcome"), source, index))
        steps.append(TraceStep(action, picks, outcome, state))
    meta: dict[str, Any] = {"bounds": dict(bounds), "kind": "quint"}
    if system.name != "store":
        meta["system"] = system.name
    if not with_outcome:
        meta[OUTCOMES_CHECKED] = False
    trace_id = Path(source).name.removesuffix(".json").removesuffix(".itf")
    return Trace(trace_id, tuple(steps), meta)
