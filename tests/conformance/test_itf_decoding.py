"""The ITF codec's fast paths agree with plain, obviously correct definitions.

``decode_value`` skips the call for scalars and takes single-key ``#map`` objects first,
``encode_value`` dispatches on exact types and sorts sets of safe integers by their text
directly, and ``has_long_digit_run`` replaces a regular expression by a byte translation;
each is held here to the simple version it replaced, on generated values and texts.
"""

from __future__ import annotations

import gc
import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lashspec.conformance import itf

SCALARS = st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.text(max_size=4)


def reference_decode(value: Any) -> Any:
    """The decoder as ITF defines it, written plainly (``#bigint`` before ``#set``, ``#tup``
    and ``#map``; any other object a record)."""
    if isinstance(value, list):
        return [reference_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "#bigint" in value:
        return int(value["#bigint"])
    for key in ("#set", "#tup", "#map"):
        if key in value and not isinstance(value[key], list):
            raise ValueError(f"{key} must hold a list")
    if "#set" in value:
        return frozenset(itf._hashable(reference_decode(v)) for v in value["#set"])
    if "#tup" in value:
        return tuple(reference_decode(v) for v in value["#tup"])
    if "#map" in value:
        if not all(isinstance(p, list) and len(p) == 2 for p in value["#map"]):
            raise ValueError("#map must hold pairs")
        return {itf._hashable(reference_decode(k)): reference_decode(v) for k, v in value["#map"]}
    return {k: reference_decode(v) for k, v in value.items()}


def itf_json(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return (
        st.lists(children, max_size=3)
        | st.builds(lambda items: {"#set": items}, st.lists(children, max_size=3))
        | st.builds(lambda items: {"#tup": items}, st.lists(children, max_size=3))
        | st.builds(
            lambda pairs: {"#map": [list(p) for p in pairs]},
            st.lists(st.tuples(children, children), max_size=3),
        )
        | st.builds(lambda n: {"#bigint": str(n)}, st.integers(-(10**30), 10**30))
        | st.dictionaries(
            st.sampled_from(["tag", "gen", "#map", "#set", "x"]), children, max_size=3
        )
    )


ITF_VALUES = st.recursive(SCALARS, itf_json, max_leaves=12)


@given(ITF_VALUES)
def test_decode_value_matches_the_plain_definition(value: Any) -> None:
    try:
        expected = reference_decode(value)
    except (TypeError, ValueError):  # an unhashable or malformed shape: both must refuse
        with pytest.raises((TypeError, ValueError)):
            itf.decode_value(value)
        return
    assert itf.decode_value(value) == expected


def test_an_object_with_map_and_bigint_keys_is_a_bigint_as_before() -> None:
    assert itf.decode_value({"#map": [], "#bigint": "7"}) == 7


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"#map": 3}, "#map must hold [key, value] pairs"),
        ({"#map": [[1, 2], [3]]}, "#map must hold [key, value] pairs"),
        ({"#set": {}}, "#set must hold a list"),
        ({"#bigint": "12a"}, "bad #bigint '12a'"),
    ],
)
def test_malformed_values_name_the_step(bad: Any, message: str) -> None:
    with pytest.raises(itf.TraceFormatError, match=re.escape(f"t.json, state 4: {message}")):
        itf.decode_value([1, {"#tup": [bad]}], "t.json", 4)


LONG_RUN = re.compile(f"[0-9]{{{itf.MAX_INTEGER_DIGITS + 1}}}")


@given(
    st.lists(
        st.sampled_from(
            ["7", "0", "9" * 20, "9" * itf.MAX_INTEGER_DIGITS, "-", " ", "é", "\U0001f600", ","]
        ),
        max_size=12,
    ).map("".join)
)
def test_long_digit_runs_are_found_exactly_as_the_pattern_finds_them(text: str) -> None:
    assert itf.has_long_digit_run(text) == (LONG_RUN.search(text) is not None)


def test_forty_digits_parse_and_forty_one_are_refused() -> None:
    assert itf.loads_limited("[" + "9" * 40 + "]") == [int("9" * 40)]
    with pytest.raises(itf.JsonLimitError, match="41 digits"):
        itf.loads_limited("[" + "9" * 41 + "]")
    assert itf.loads_limited(json.dumps(["9" * 50])) == ["9" * 50]  # a string, not a number


def test_the_collector_is_paused_while_a_trace_decodes_and_restored_after() -> None:
    assert gc.isenabled()
    with itf.collector_paused():
        assert not gc.isenabled()
        with itf.collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner pause leaves the outer one in force
    assert gc.isenabled()
    with pytest.raises(RuntimeError), itf.collector_paused():
        raise RuntimeError("a decoding error")
    assert gc.isenabled()


def reference_encode(value: Any) -> Any:
    """The encoder written plainly: isinstance dispatch, sets sorted by their JSON text."""
    if isinstance(value, bool | str) or value is None:
        return value
    if isinstance(value, int):
        return value if abs(value) <= itf.MAX_SAFE_INT else {"#bigint": str(value)}
    if isinstance(value, frozenset | set):
        encoded = [reference_encode(v) for v in value]
        return {"#set": sorted(encoded, key=lambda v: json.dumps(v, sort_keys=True))}
    if isinstance(value, tuple):
        return {"#tup": [reference_encode(v) for v in value]}
    if isinstance(value, list):
        return [reference_encode(v) for v in value]
    if isinstance(value, dict):
        return {
            "#map": [[reference_encode(k), reference_encode(v)] for k, v in sorted(value.items())]
        }
    raise TypeError(type(value).__name__)


EDGE_INTS = st.sampled_from([itf.MAX_SAFE_INT, itf.MAX_SAFE_INT + 1, -itf.MAX_SAFE_INT - 1, 10, 9])
PY_SCALARS = st.none() | st.booleans() | st.integers() | EDGE_INTS | st.text(max_size=3)
PY_VALUES = st.recursive(
    PY_SCALARS,
    lambda children: (
        st.lists(children, max_size=3)
        | st.lists(children, max_size=3).map(tuple)
        | st.frozensets(st.integers() | EDGE_INTS, max_size=4)
        | st.frozensets(st.integers(-3, 12) | st.booleans(), max_size=4)
        | st.dictionaries(st.integers(-3, 12), children, max_size=3)
        | st.dictionaries(st.text(max_size=2), children, max_size=3)
    ),
    max_leaves=10,
)


@given(PY_VALUES)
def test_encode_value_matches_the_plain_definition(value: Any) -> None:
    # byte for byte: exported trace files must not change
    assert json.dumps(itf.encode_value(value)) == json.dumps(reference_encode(value))
