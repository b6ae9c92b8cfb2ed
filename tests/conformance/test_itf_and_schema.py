"""Trace files: schema validity, itf-py compatibility, canonical round trips, determinism,
and the errors malformed documents produce (codec and schema)."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import itf_py
import pytest
from jsonschema import Draft202012Validator
from lashspec.conformance.generate import generate_suite, write_suite
from lashspec.conformance.itf import (
    PICK_NAMES,
    TraceFormatError,
    normalise_outcome,
    read_trace,
    suite_trace_files,
    trace_from_json,
    trace_to_json,
    write_trace,
)
from lashspec.conformance.schema import (
    TraceSchemaError,
    format_json_path,
    trace_schema,
    validate_trace_document,
)
from lashspec.model.kernel_model import Bounds, build_model, trace_state
from lashspec.model.profiles import Profile

# Explored in well under a second, yet reaching most action x outcome pairs; the seed
# scenarios (added by generate_suite) bring the second owner and the other slots.
SMALL = Profile(
    "small",
    Bounds(
        owners=1,
        max_incarnation=0,
        batches=1,
        inputs=1,
        max_generation=1,
        max_claims_per_row=1,
        max_head_revision=1,
    ),
    "cheap profile for codec and schema tests",
)


def _write_small_suite(directory: Path) -> list[Path]:
    suite = generate_suite([SMALL], boundary_sample=30, witnesses=False)
    return write_suite(suite, directory)


@pytest.fixture(scope="module")
def suite_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("suite")
    _write_small_suite(directory)
    return directory


@pytest.fixture(scope="module")
def trace_files(suite_dir: Path) -> list[Path]:
    files = sorted(suite_dir.glob("*.itf.json"))
    kinds = {json.loads(f.read_text())["#meta"]["lashspec"].get("kind") for f in files}
    assert kinds == {"cover", "boundary", "scenario", "promoted"}
    assert len(files) > 20
    return files


@pytest.fixture(scope="module")
def scenario_document(suite_dir: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        (suite_dir / "scenario-command_only.itf.json").read_text()
    )
    return document


# ---------------------------------------------------------------------------
# The schema
# ---------------------------------------------------------------------------


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    schema = trace_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


def test_trace_schema_returns_an_independent_copy() -> None:
    first = trace_schema()
    first["$defs"].clear()
    assert trace_schema()["$defs"], "a caller's change leaked into the shared schema"


def test_every_exported_trace_validates(trace_files: list[Path]) -> None:
    for path in trace_files:
        validate_trace_document(json.loads(path.read_text()), str(path))


def _per_action_rules(schema: Mapping[str, Any]) -> dict[str, tuple[set[str], set[str]]]:
    """action -> (picks that must be Some, outcome tags allowed), read from the schema."""
    rules: dict[str, tuple[set[str], set[str]]] = {}
    for rule in schema["$defs"]["state"]["allOf"]:
        action = rule["if"]["properties"]["mbt::actionTaken"]["const"]
        then = rule["then"]["properties"]
        picks = {
            name
            for name, ref in then["mbt::nondetPicks"]["properties"].items()
            if ref["$ref"] == "#/$defs/isSome"
        }
        rules[action] = (picks, set(then["outcome"]["properties"]["tag"]["enum"]))
    return rules


def test_schema_vocabulary_matches_the_model() -> None:
    """Actions, parameters, outcome tags and variables are the model's, nothing more."""
    schema = trace_schema()
    model = build_model(
        Bounds(
            batches=3,
            inputs=3,
            second_session=2,
            source_replay=1,
            delayed_work=1,
            outbox=1,
            bad_requests=1,
            claim_limits=1,
        )
    )
    plain = build_model(Bounds(batches=3, inputs=3))
    actions = {a.name: a for a in model.actions}

    rules = _per_action_rules(schema)
    assert set(rules) == {"init", *actions}
    assert schema["$defs"]["stepActionName"]["enum"] == list(actions)
    assert schema["$defs"]["actionName"]["enum"] == ["init", *actions]
    for name, action in actions.items():
        picks, tags = rules[name]
        assert picks == {param for param, _ in action.params}, name
        assert tags == {case.outcome.tag for case in action.cases}, name
    assert rules["init"] == (set(), {"Ok"})

    state = schema["$defs"]["state"]
    assert set(state["properties"]["mbt::nondetPicks"]["properties"]) == set(PICK_NAMES)
    assert "required" not in state["properties"]["mbt::nondetPicks"], "unused picks may be absent"
    variables = set(trace_state(model, model.initial_state()))
    # session-1's variables are there exactly when the bound second_session is on (its input
    # slot's with second_session = 2), and
    # batch_wait when delayed_work is
    optional = variables - set(trace_state(plain, plain.initial_state()))
    assert optional == {
        "s1_lease_holder",
        "s1_lease_holder_inc",
        "s1_lease_gen",
        "s1_lease_ttl_left",
        "s1_batch_status",
        "s1_batch_claim_gen",
        "s1_batch_fencing",
        "head_session",
        "owner_s1_fence",
        "owner_s1_claim",
        "s1_input_state",
        "batch_wait",
    }
    assert set(state["required"]) - {"mbt::actionTaken", "mbt::nondetPicks", "outcome"} == (
        variables - optional
    )
    assert set(state["properties"]) - {
        "#meta",
        "mbt::actionTaken",
        "mbt::nondetPicks",
        "outcome",
    } == (variables)
    all_tags = {tag for _, tags in rules.values() for tag in tags}
    assert set(schema["$defs"]["outcome"]["properties"]["tag"]["enum"]) == all_tags


# ---------------------------------------------------------------------------
# itf-py
# ---------------------------------------------------------------------------


def _from_itf_py(value: Any) -> Any:
    """An itf-py value in our codec's shapes (records and variants as dicts)."""
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        fields = {k: _from_itf_py(v) for k, v in value._asdict().items()}
        if getattr(type(value), "_itf_variant", False):
            return {"tag": type(value).__name__, **fields}
        return fields
    if isinstance(value, Mapping):
        return {_from_itf_py(k): _from_itf_py(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_itf_py(v) for v in value]
    if isinstance(value, frozenset):
        return frozenset(_from_itf_py(v) for v in value)
    if isinstance(value, tuple):
        return tuple(_from_itf_py(v) for v in value)
    return value


def test_quint_style_none_picks_are_read_as_absent(scenario_document: dict[str, Any]) -> None:
    """Quint writes unused parameters as None options; we omit them; both read the same."""
    with_none = copy.deepcopy(scenario_document)
    names = ("o", "observed", "b", "i", "boundary", "checkpoint", "release", "defer")
    for state in with_none["states"]:
        for name in names:
            state["mbt::nondetPicks"].setdefault(name, {"tag": "None", "value": {"#tup": []}})
    assert trace_from_json(with_none) == trace_from_json(scenario_document)
    validate_trace_document(with_none)


def test_itf_py_reads_the_same_values_as_our_codec(trace_files: list[Path]) -> None:
    """Every exported file loads in itf-py unchanged and reads the same as in our codec."""
    for path in trace_files:
        document = json.loads(path.read_text())
        ours = trace_from_json(document, str(path))
        theirs = itf_py.trace_from_json(document)
        assert theirs.vars == document["vars"]
        assert theirs.meta == document["#meta"]
        assert len(theirs.states) == len(ours.steps)
        for index, (state, step) in enumerate(zip(theirs.states, ours.steps, strict=True)):
            where = f"{path.name} state {index}"
            values = state.values
            assert state.meta == {"index": index}, where
            assert values["mbt::actionTaken"] == step.action, where
            picks = _from_itf_py(values["mbt::nondetPicks"])
            assert {k: v["value"] for k, v in picks.items()} == dict(step.picks), where
            assert all(v["tag"] == "Some" for v in picks.values()), where
            outcome = _from_itf_py(values["outcome"])
            assert normalise_outcome(outcome) == normalise_outcome(step.outcome), where
            for name, expected in step.state.items():
                assert _from_itf_py(values[name]) == expected, f"{where}: {name}"


# ---------------------------------------------------------------------------
# Canonical files
# ---------------------------------------------------------------------------


def test_write_read_write_is_byte_identical(trace_files: list[Path], tmp_path: Path) -> None:
    for path in trace_files:
        trace = read_trace(path)
        copy_path = tmp_path / path.name
        write_trace(trace, copy_path)
        assert copy_path.read_bytes() == path.read_bytes(), path.name
        assert trace_to_json(trace) == json.loads(path.read_text()), path.name


def test_two_generations_of_a_profile_are_byte_identical(suite_dir: Path, tmp_path: Path) -> None:
    written = _write_small_suite(tmp_path)
    names = sorted(p.name for p in written)
    assert names == sorted(p.name for p in suite_dir.iterdir())
    assert "index.json" in names
    for name in names:
        assert (tmp_path / name).read_bytes() == (suite_dir / name).read_bytes(), name


def test_the_index_records_the_sha256_of_every_trace_file(suite_dir: Path) -> None:
    index = json.loads((suite_dir / "index.json").read_text())
    recorded = {entry["file"]: entry["sha256"] for entry in index["traces"]}
    actual = {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in suite_dir.glob("*.itf.json")
    }
    assert recorded == actual
    # A freshly written suite matches its index, without a warning (pytest.fail as warn).
    checked = suite_trace_files(suite_dir, warn=pytest.fail)
    assert checked == sorted(suite_dir.glob("*.itf.json"))


# ---------------------------------------------------------------------------
# Malformed documents
# ---------------------------------------------------------------------------

Mutation = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Malformed:
    mutate: Mutation
    codec_error: str | None  # what read_trace says, None when only the schema objects
    schema_path: str
    schema_error: str


def _set(path: tuple[str | int, ...], value: Any) -> Mutation:
    def mutate(document: dict[str, Any]) -> None:
        node: Any = document
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value

    return mutate


def _delete(key: str) -> Mutation:
    def mutate(document: dict[str, Any]) -> None:
        del document[key]

    return mutate


def _delete_pick(state: int, name: str) -> Mutation:
    def mutate(document: dict[str, Any]) -> None:
        del document["states"][state]["mbt::nondetPicks"][name]

    return mutate


def _delete_variable(state: int, name: str) -> Mutation:
    def mutate(document: dict[str, Any]) -> None:
        del document["states"][state][name]

    return mutate


MALFORMED = {
    "missing vars": Malformed(
        _delete("vars"), "'vars' must be a list", "$", "'vars' is a required property"
    ),
    "pick not an option": Malformed(
        _set(("states", 2, "mbt::nondetPicks", "o"), {"tag": "Maybe", "value": 0}),
        "pick 'o' must be a Quint option",
        "$.states[2]['mbt::nondetPicks'].o.tag",
        "'Maybe' is not one of ['Some', 'None']",
    ),
    "pick value of the wrong type": Malformed(
        _set(("states", 2, "mbt::nondetPicks", "o"), {"tag": "Some", "value": "zero"}),
        None,
        "$.states[2]['mbt::nondetPicks'].o.value",
        "'zero'",
    ),
    "pick for a parameter the action lacks": Malformed(
        _set(("states", 2, "mbt::nondetPicks", "b"), {"tag": "Some", "value": 0}),
        None,
        "$.states[2]['mbt::nondetPicks'].b.tag",
        "'None' was expected",
    ),
    "pick missing for a parameter the action uses": Malformed(
        _delete_pick(2, "o"),
        None,
        "$.states[2]['mbt::nondetPicks']",
        "'o' is a required property",
    ),
    "unknown action": Malformed(
        _set(("states", 3, "mbt::actionTaken"), "teleport"),
        None,
        "$.states[3]['mbt::actionTaken']",
        "'teleport' is not one of",
    ),
    "outcome the action cannot produce": Malformed(
        _set(("states", 1, "outcome"), {"tag": "Vacuumed", "removed": 0}),
        None,
        "$.states[1].outcome.tag",
        "'Vacuumed' is not one of ['Enqueued']",
    ),
    "wrong format version": Malformed(
        _set(("#meta", "lashspec", "format_version"), "lashspec-trace/1"),
        "unsupported format version 'lashspec-trace/1'",
        "$['#meta'].lashspec.format_version",
        "'lashspec-trace/6' was expected",
    ),
    "state variable badly encoded": Malformed(
        _set(("states", 4, "owner_qclaim_rows"), {"#map": [[0, [0]], [1, {"#set": []}]]}),
        None,
        "$.states[4].owner_qclaim_rows['#map'][0][1]",
        "is not of type 'object'",
    ),
    "missing state variable": Malformed(
        _delete_variable(2, "head_revision"),
        "state lacks variables ['head_revision']",
        "$.states[2]",
        "'head_revision' is a required property",
    ),
}


@pytest.mark.parametrize("case", MALFORMED.values(), ids=list(MALFORMED))
def test_malformed_documents_are_named(
    case: Malformed, scenario_document: dict[str, Any], tmp_path: Path
) -> None:
    document = copy.deepcopy(scenario_document)
    case.mutate(document)

    with pytest.raises(TraceSchemaError) as schema_error:
        validate_trace_document(document, "broken.itf.json")
    assert isinstance(schema_error.value, TraceFormatError)
    assert schema_error.value.json_path == case.schema_path
    assert case.schema_error in str(schema_error.value)
    assert str(schema_error.value).startswith("broken.itf.json")

    path = tmp_path / "broken.itf.json"
    path.write_text(json.dumps(document))
    if case.codec_error is None:
        read_trace(path)  # well-formed ITF: only the vocabulary check rejects it
    else:
        with pytest.raises(TraceFormatError) as codec_error:
            read_trace(path)
        assert case.codec_error in str(codec_error.value)
        assert str(path) in str(codec_error.value)


def test_a_file_that_is_not_json_is_named(tmp_path: Path) -> None:
    path = tmp_path / "garbage.itf.json"
    path.write_text('{"#meta": {"format": "ITF"}, "states": [')
    with pytest.raises(TraceFormatError, match="not JSON") as error:
        read_trace(path)
    assert str(error.value).startswith(str(path))


def test_the_first_error_in_document_order_is_reported(
    scenario_document: dict[str, Any],
) -> None:
    document = copy.deepcopy(scenario_document)
    document["states"][5]["mbt::actionTaken"] = "fly"
    document["states"][2]["lease_live"] = "yes"
    with pytest.raises(TraceSchemaError) as error:
        validate_trace_document(document)
    assert error.value.json_path == "$.states[2].lease_live"
    assert error.value.step == 2
    assert "'yes' is not of type 'boolean'" in str(error.value)


def test_long_messages_keep_their_verdict(scenario_document: dict[str, Any]) -> None:
    document = copy.deepcopy(scenario_document)
    document["vars"] = document["vars"][:-1]
    with pytest.raises(TraceSchemaError) as error:
        validate_trace_document(document)
    assert error.value.json_path == "$.vars"
    message = str(error.value)
    assert message.endswith("is too short")
    assert len(message) < 300


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ([], "$"),
        (["states", 3, "outcome", "tag"], "$.states[3].outcome.tag"),
        (["#meta", "lashspec"], "$['#meta'].lashspec"),
        (["states", 0, "mbt::nondetPicks"], "$.states[0]['mbt::nondetPicks']"),
    ],
)
def test_json_paths_are_written_like_jsonpath(path: list[str | int], text: str) -> None:
    assert format_json_path(path) == text


def test_scenario_fixture_is_what_the_cases_assume(scenario_document: dict[str, Any]) -> None:
    """The malformed cases index states of scenario-command_only; pin the actions they use."""
    actions = [s["mbt::actionTaken"] for s in scenario_document["states"]]
    assert actions[:4] == ["init", "enqueue_batch", "acquire", "claim_command"]
