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

import contextlib
import gc
import hashlib
import json
import os
import re
import stat
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT_VERSION = "lashspec-trace/6"
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
    "last",
    "expected",
    "turn",
    "content",
    "j",
    "request",
    "limit",
)
#: Parameters only machine traces use (docs/machine-traces.md), written after the store ones.
MACHINE_PICK_NAMES: tuple[str, ...] = ("at", "config", "reply", "session")

#: Outcome fields whose values are sets of slot indices.
SET_VALUED_OUTCOME_FIELDS = frozenset({"rows", "input_rows", "queue_rows"})

#: Variables whose values are maps from an index to a *set* of indices.
SET_VALUED_MAPS = frozenset({"owner_qclaim_rows", "owner_iclaim_rows"})

# Limits on untrusted JSON (trace files and adapter replies; docs/trace-format.md, "Limits").
# The largest generated trace is a few hundred KiB and nests about ten levels deep.
#: Largest trace file read, in bytes.
MAX_TRACE_FILE_BYTES = 16 * 1024 * 1024
#: Deepest nesting of JSON arrays and objects accepted (the document itself is level 1).
MAX_NESTING_DEPTH = 32
#: Most decimal digits in an integer, as a JSON number or a ``#bigint`` string.
MAX_INTEGER_DIGITS = 40
#: Largest value of a bound in ``#meta.lashspec.bounds`` (the model's bounds are single digits).
MAX_BOUND_VALUE = 1000
#: How much of an offending value an error message quotes.
PREVIEW_CHARS = 60

_BIGINT = re.compile(r"-?[0-9]+")
# Digits become NUL bytes, so a long digit run is a substring test.  A regular expression
# such as [0-9]{41} tries a match at every digit and costs ten times more on a trace file.
_DIGITS_AS_NUL = bytes.maketrans(b"0123456789", bytes(10))
_LONG_NUL_RUN = bytes(MAX_INTEGER_DIGITS + 1)


def has_long_digit_run(text: str) -> bool:
    """Whether ``text`` holds more than MAX_INTEGER_DIGITS consecutive ASCII digits.

    A NUL already in the text may count as a digit; that only costs the slower parse.
    """
    return _LONG_NUL_RUN in text.encode("utf-8", "surrogatepass").translate(_DIGITS_AS_NUL)


class TraceFormatError(ValueError):
    """A trace file that does not follow docs/trace-format.md; says where and what."""

    def __init__(self, source: str, message: str, step: int | None = None) -> None:
        self.source = source
        self.step = step
        self.detail = message  # the message without the location
        where = f"{source}" if step is None else f"{source}, state {step}"
        super().__init__(f"{where}: {message}")


def preview(value: Any) -> str:
    """A short repr of an untrusted value for a one-line error message."""
    text = repr(value) if not isinstance(value, list | dict) else type(value).__name__
    return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS] + "..."


# ---------------------------------------------------------------------------
# Untrusted JSON
# ---------------------------------------------------------------------------


class JsonLimitError(ValueError):
    """Untrusted JSON beyond one of the limits above (digits, nesting, NaN)."""


def _parse_int(text: str) -> int:
    digits = len(text) - text.startswith("-")
    if digits > MAX_INTEGER_DIGITS:
        raise JsonLimitError(f"an integer has {digits} digits (at most {MAX_INTEGER_DIGITS})")
    return int(text)


def _reject_constant(name: str) -> Any:
    raise JsonLimitError(f"{name} is not a JSON value")


def check_nesting(document: dict[str, Any] | list[Any]) -> None:
    """Raise :class:`JsonLimitError` if ``document`` nests deeper than MAX_NESTING_DEPTH."""
    # Level by level, not recursive: everything after this check may recurse safely.
    level: list[Any] = [document]
    depth = 1
    while level:
        if depth > MAX_NESTING_DEPTH:
            raise JsonLimitError(f"JSON nested deeper than {MAX_NESTING_DEPTH} levels")
        below: list[Any] = []
        for node in level:
            for child in node.values() if type(node) is dict else node:
                if type(child) is dict or type(child) is list:
                    below.append(child)
        level = below
        depth += 1


def loads_limited(text: str) -> Any:
    """``json.loads`` within the limits above.

    Raises :class:`json.JSONDecodeError` for text that is not JSON and
    :class:`JsonLimitError` for ``NaN``/``Infinity``, integers longer than
    :data:`MAX_INTEGER_DIGITS` or nesting deeper than :data:`MAX_NESTING_DEPTH`.
    """
    # Counting digits in a Python hook costs; only text holding a long digit run needs it.
    long_digits = has_long_digit_run(text)
    try:
        document = json.loads(
            text, parse_int=_parse_int if long_digits else None, parse_constant=_reject_constant
        )
    except RecursionError:  # the C parser's own guard, far beyond MAX_NESTING_DEPTH
        raise JsonLimitError(f"JSON nested deeper than {MAX_NESTING_DEPTH} levels") from None
    if isinstance(document, dict | list):
        check_nesting(document)
    return document


def decode_utf8(data: bytes) -> str:
    """``data`` as text; raises ValueError with a one-line message naming the bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"not UTF-8: byte 0x{data[error.start]:02x} at offset {error.start}"
        ) from None


def parse_json(data: str | bytes, source: str, step: int | None = None) -> Any:
    """Parse an untrusted JSON document; any problem is a one-line :class:`TraceFormatError`
    naming ``source`` (and ``step``): not UTF-8, not JSON, or beyond a limit."""
    try:
        return loads_limited(decode_utf8(data) if isinstance(data, bytes) else data)
    except json.JSONDecodeError as error:
        raise TraceFormatError(source, f"not JSON: {error}", step) from None
    except ValueError as error:  # JsonLimitError or not UTF-8
        raise TraceFormatError(source, str(error), step) from None


def _file_kind(mode: int) -> str:
    for test, kind in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return kind
    return "not a regular file"


def read_trace_bytes(path: Path) -> bytes:
    """The bytes of a trace file, which must be a regular file of bounded size.

    The file is opened non-blocking, so a FIFO (or device) under a trace's name is refused at
    once instead of waiting for a writer that never comes.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as error:
        raise TraceFormatError(str(path), f"cannot read: {error.strerror}") from None
    with os.fdopen(descriptor, "rb") as file:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise TraceFormatError(str(path), f"not a regular file ({_file_kind(mode)})")
        data = file.read(MAX_TRACE_FILE_BYTES + 1)
    if len(data) > MAX_TRACE_FILE_BYTES:
        raise TraceFormatError(
            str(path), f"larger than {MAX_TRACE_FILE_BYTES} bytes (MAX_TRACE_FILE_BYTES)"
        )
    return data


# ---------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------


def encode_value(value: Any) -> Any:
    """Python value -> ITF JSON value."""
    # Exact types first (a state is mostly ints, strings and dicts of them); any other type,
    # subclasses included, takes the general path below.
    kind = type(value)
    if kind is int:
        return value if -MAX_SAFE_INT <= value <= MAX_SAFE_INT else {"#bigint": str(value)}
    if kind is str:
        return value
    if kind is dict:
        return {
            "#map": [
                [
                    k if type(k) is str else encode_value(k),
                    v if type(v) is str else encode_value(v),
                ]
                for k, v in sorted(value.items())
            ]
        }
    if kind is frozenset and all(
        type(v) is int and -MAX_SAFE_INT <= v <= MAX_SAFE_INT for v in value
    ):
        return {"#set": sorted(value, key=str)}  # a safe int's JSON text is its str
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
    # Parsed JSON holds exactly list, dict, str, int, float, bool and None, so ``type(x) is``
    # stands for isinstance; scalars, most of a trace, are passed over without a call.
    kind = type(value)
    if kind is list:
        return [decode_value(v, source, step) if type(v) in _CONTAINERS else v for v in value]
    if kind is not dict:
        return value
    if len(value) == 1 and "#map" in value:  # the common case, first
        return _decode_map(value["#map"], source, step)
    if "#bigint" in value:
        digits = value["#bigint"]
        if not isinstance(digits, str) or not _BIGINT.fullmatch(digits):
            raise TraceFormatError(source, f"bad #bigint {preview(digits)}", step)
        if len(digits.lstrip("-")) > MAX_INTEGER_DIGITS:
            raise TraceFormatError(
                source,
                f"a #bigint has {len(digits.lstrip('-'))} digits (at most {MAX_INTEGER_DIGITS})",
                step,
            )
        return int(digits)
    if "#set" in value:
        items = value["#set"]
        if type(items) is not list:
            raise TraceFormatError(source, "#set must hold a list", step)
        return frozenset(
            _hashable(decode_value(v, source, step)) if type(v) in _CONTAINERS else v for v in items
        )
    if "#tup" in value:
        items = value["#tup"]
        if type(items) is not list:
            raise TraceFormatError(source, "#tup must hold a list", step)
        return tuple(decode_value(v, source, step) for v in items)
    if "#map" in value:
        return _decode_map(value["#map"], source, step)
    return {
        k: decode_value(v, source, step) if type(v) in _CONTAINERS else v for k, v in value.items()
    }


_CONTAINERS = (list, dict)


def _decode_map(pairs: Any, source: str, step: int | None) -> dict[Any, Any]:
    if type(pairs) is not list:
        raise TraceFormatError(source, "#map must hold [key, value] pairs", step)
    for pair in pairs:
        if type(pair) is not list or len(pair) != 2:
            raise TraceFormatError(source, "#map must hold [key, value] pairs", step)
    return {
        (_hashable(decode_value(k, source, step)) if type(k) in _CONTAINERS else k): (
            decode_value(v, source, step) if type(v) in _CONTAINERS else v
        )
        for k, v in pairs
    }


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
    for key in SET_VALUED_OUTCOME_FIELDS & set(result):
        result[key] = frozenset(result[key])
    if "outcomes" in result:
        result["outcomes"] = list(result["outcomes"])
    return result


def _encode_outcome(outcome: Mapping[str, Any]) -> dict[str, Any]:
    encoded: dict[str, Any] = {}
    for key, value in outcome.items():
        if key in SET_VALUED_OUTCOME_FIELDS:
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
    source: str | None = field(default=None, compare=False)  # the file it was read from

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
        for name in (*PICK_NAMES, *MACHINE_PICK_NAMES)
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
        raise TraceFormatError(source, f"unsupported format version {preview(version)}")
    _check_bounds(lashspec_meta.get("bounds", {}), source)
    trace_id = lashspec_meta.get("trace_id", Path(source).stem)
    if not isinstance(trace_id, str):
        raise TraceFormatError(source, "'#meta.lashspec.trace_id' must be a string")
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
    extra = {k: v for k, v in lashspec_meta.items() if k not in ("format_version", "trace_id")}
    return Trace(trace_id, tuple(steps), extra)


def _check_bounds(bounds: Any, source: str) -> None:
    """``#meta.lashspec.bounds`` is handed to the implementation's reset: check it first."""
    if not isinstance(bounds, dict):
        raise TraceFormatError(
            source, f"'#meta.lashspec.bounds' must be an object, got {preview(bounds)}"
        )
    for name, value in bounds.items():
        if type(value) is not int or not 0 <= value <= MAX_BOUND_VALUE:
            raise TraceFormatError(
                source,
                f"bound {preview(name)} must be an integer in 0..{MAX_BOUND_VALUE}, "
                f"got {preview(value)}",
            )


def read_trace_document(path: Path) -> Any:
    """The JSON document of a trace file, read and parsed within the limits."""
    return parse_json(read_trace_bytes(path), str(path))


def read_trace(path: Path, quint_bounds: Mapping[str, int] | None = None) -> Trace:
    """The trace in ``path``: ours (strictly, as this module describes) or, for a document
    without ``#meta.lashspec``, one written by ``quint run --mbt`` (``quint_traces.py``;
    ``quint_bounds`` overrides the bounds it reads from the spec's header)."""
    from .quint_traces import is_quint_document, trace_from_quint  # it imports this module

    with collector_paused():
        document = read_trace_document(path)
        if is_quint_document(document):
            trace = trace_from_quint(document, str(path), quint_bounds)
        else:
            trace = trace_from_json(document, str(path))
    return Trace(trace.trace_id, trace.steps, trace.meta, source=str(path))


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a trace is parsed and decoded.

    A trace file makes tens of thousands of containers, none of them in a reference cycle,
    and each collection pass started by those allocations also walks every trace loaded
    before: with the collector running, a suite of 1,800 files loads about three times
    slower.  The collector looks at the new objects once, when it runs again.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# ---------------------------------------------------------------------------
# Suite directories
# ---------------------------------------------------------------------------

TRACE_SUFFIX = ".itf.json"
SUITE_INDEX_FILE = "index.json"
#: How many file names a suite error quotes of each kind.
NAMES_QUOTED = 3
_SHA256 = re.compile(r"[0-9a-f]{64}")


class SuiteError(ValueError):
    """Trace paths that cannot be replayed as given; the message is one line."""


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _first_names(names: list[str]) -> str:
    shown = ", ".join(names[:NAMES_QUOTED])
    return f"{shown}, ..." if len(names) > NAMES_QUOTED else shown


def _suite_index(index_path: Path) -> dict[str, str | None]:
    """``index.json``'s trace files, each with its recorded sha256 (None when not recorded)."""
    try:
        document = parse_json(read_trace_bytes(index_path), str(index_path))
    except TraceFormatError as error:
        raise SuiteError(str(error)) from None
    entries = document.get("traces") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise SuiteError(f"{index_path}: 'traces' must be a list of files")
    listed: dict[str, str | None] = {}
    for number, entry in enumerate(entries):
        name = entry.get("file") if isinstance(entry, dict) else None
        # Only plain names in this directory: an index must not point the replayer elsewhere.
        if not isinstance(name, str) or not name.endswith(TRACE_SUFFIX) or "/" in name:
            raise SuiteError(f"{index_path}: traces[{number}].file must name a *{TRACE_SUFFIX}")
        assert isinstance(entry, dict)
        digest = entry.get("sha256")
        if digest is not None and not (isinstance(digest, str) and _SHA256.fullmatch(digest)):
            raise SuiteError(f"{index_path}: traces[{number}].sha256 is not a sha256 hex digest")
        listed[name] = digest
    return listed


def suite_trace_files(directory: Path, warn: Callable[[str], None]) -> list[Path]:
    """The trace files of a suite directory, checked against its ``index.json``.

    Every ``*.itf.json`` entry must be a regular file. With an index, the directory must hold
    exactly the files it lists, with the recorded sha256 where one is recorded; otherwise
    :class:`SuiteError` names the problem, its count and the first names. Without an index
    every trace file found is returned and ``warn`` says that nothing was checked.
    """
    found = sorted(directory.glob(f"*{TRACE_SUFFIX}"))
    irregular = [path for path in found if not _is_regular(path)]
    if irregular:
        raise SuiteError(
            f"{irregular[0]} is not a regular file ({_describe_entry(irregular[0])}); only "
            f"regular files are replayed ({len(irregular)} such entries in {directory})"
        )
    index_path = directory / SUITE_INDEX_FILE
    if not index_path.exists():
        if not found:
            raise SuiteError(f"no *{TRACE_SUFFIX} trace files in directory {directory}")
        warn(
            f"{directory} has no {SUITE_INDEX_FILE}: replaying the {len(found)} "
            f"*{TRACE_SUFFIX} files found, unchecked for missing or changed files"
        )
        return found
    listed = _suite_index(index_path)
    present = {path.name for path in found}
    missing = [name for name in listed if name not in present]
    extra = sorted(present - set(listed))
    changed = []
    for name, digest in listed.items():
        if digest is not None and name in present:
            try:
                data = read_trace_bytes(directory / name)
            except TraceFormatError as error:
                raise SuiteError(str(error)) from None
            if file_sha256(data) != digest:
                changed.append(name)
    problems = [
        f"{len(names)} {what} (first: {_first_names(names)})"
        for what, names in (("missing", missing), ("not listed", extra), ("changed", changed))
        if names
    ]
    if problems:
        raise SuiteError(
            f"{directory} does not match its {SUITE_INDEX_FILE} ({len(listed)} files listed): "
            + "; ".join(problems)
        )
    if any(digest is None for digest in listed.values()):
        warn(f"{index_path} records no sha256 for some files: changes to them go undetected")
    if not listed:
        raise SuiteError(f"{index_path} lists no trace files")
    return sorted(directory / name for name in listed)


def _is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except OSError:  # e.g. a dangling symbolic link
        return False


def _describe_entry(path: Path) -> str:
    try:
        return _file_kind(path.stat().st_mode)
    except OSError as error:
        return f"cannot stat: {error.strerror}"


def collect_trace_files(paths: Sequence[Path], warn: Callable[[str], None]) -> list[Path]:
    """The trace files named by ``paths`` (files, or suite directories checked as in
    :func:`suite_trace_files`); raises :class:`SuiteError` with a one-line message."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(suite_trace_files(path, warn))
        elif _is_regular(path):
            files.append(path)
        elif path.exists():
            raise SuiteError(f"trace path {path} is not a regular file ({_describe_entry(path)})")
        else:
            raise SuiteError(f"trace path {path} does not exist")
    return files
