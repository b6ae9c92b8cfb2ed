"""The adapter protocol through real subprocesses: the reference adapter, the CLI, and fake
adapters that break the protocol in each way the client must report."""

from __future__ import annotations

import dataclasses
import shlex
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lashspec.conformance.itf import Trace, write_trace
from lashspec.conformance.modeltrace import ModelRunner, trace_of
from lashspec.conformance.protocol import PROTOCOL_VERSION, AdapterClient, AdapterError
from lashspec.conformance.replay import kernel_target, replay_all
from lashspec.conformance.seed_traces import SEED_SCENARIO_TRACES
from lashspec.model.kernel_model import build_model, trace_state
from lashspec.model.profiles import SCENARIO_BOUNDS

PYTHON = shlex.quote(sys.executable)
REPLY_TIMEOUT = 1.0  # seconds; the fakes that never answer cost this much per request


def reference_adapter(backend: str) -> str:
    return f"{PYTHON} -m lashspec.conformance.reference_adapter --backend {backend}"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lashspec.conformance.cli", "-q", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def seed_traces() -> list[Trace]:
    runner = ModelRunner(SCENARIO_BOUNDS)
    return [
        trace_of(runner, [(a, dict(p)) for a, p in steps], f"scenario-{name}")
        for name, (_, steps) in SEED_SCENARIO_TRACES.items()
    ]


@pytest.fixture(scope="module")
def seed_dir(seed_traces: list[Trace], tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("seed-traces")
    for trace in seed_traces:
        write_trace(trace, directory / f"{trace.trace_id}.itf.json")
    return directory


def with_step(trace: Trace, index: int, action: str, picks: Mapping[str, Any]) -> Trace:
    """``trace`` with step ``index`` replaced (expected outcome and state kept)."""
    steps = list(trace.steps)
    steps[index] = dataclasses.replace(steps[index], action=action, picks=dict(picks))
    return dataclasses.replace(trace, trace_id=f"{trace.trace_id}-edited", steps=tuple(steps))


# ---------------------------------------------------------------------------
# The reference adapter
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_reference_adapter_replays_the_seed_scenarios(
    backend: str, seed_traces: list[Trace]
) -> None:
    client = AdapterClient(reference_adapter(backend), timeout=30)
    assert client.name == f"lashspec-kernel/{backend}"
    report = replay_all(seed_traces, client)
    assert report.ok, report.report()
    assert [r.trace_id for r in report.results] == [t.trace_id for t in seed_traces]
    assert [r.steps for r in report.results] == [len(t.steps) - 1 for t in seed_traces]
    assert report.actions == replay_all(seed_traces, kernel_target(backend)).actions


def test_cli_replays_through_the_reference_adapter(seed_dir: Path) -> None:
    result = run_cli("replay", str(seed_dir), "--adapter", reference_adapter("sqlite"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(SEED_SCENARIO_TRACES)} passed, 0 failed" in result.stdout


@pytest.mark.parametrize(
    ("action", "picks", "kind", "named"),
    [
        ("teleport", {"o": 0}, "unknown_action", "'teleport'"),
        ("acquire", {"o": 7}, "bad_params", "'o'=7"),
        ("acquire", {}, "bad_params", "'o'"),
    ],
)
def test_a_refused_action_is_a_divergence_naming_it(
    seed_traces: list[Trace], action: str, picks: dict[str, Any], kind: str, named: str
) -> None:
    good = seed_traces[0]
    bad = with_step(good, 2, action, picks)
    report = replay_all([bad, good], AdapterClient(reference_adapter("memory"), timeout=30))
    failed, passed = report.results
    assert passed.ok, "a refused action must not end the session"
    assert failed.divergence is not None
    assert (failed.divergence.step, failed.divergence.field) == (2, "error")
    text = failed.divergence.describe()
    assert f"step 2 {action}(" in text
    assert f"adapter refused ({kind})" in text
    assert named in text


def test_cli_reports_an_unknown_action(seed_traces: list[Trace], tmp_path: Path) -> None:
    trace = with_step(seed_traces[0], 1, "teleport", {"o": 0})
    write_trace(trace, tmp_path / "edited.itf.json")
    result = run_cli("replay", str(tmp_path), "--adapter", reference_adapter("memory"))
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"FAIL {trace.trace_id}" in result.stdout
    assert "step 1 teleport(o=0): error differs" in result.stdout
    assert "unknown action 'teleport'" in result.stdout
    assert "0 passed, 1 failed" in result.stdout


# ---------------------------------------------------------------------------
# Adapters that break the protocol
# ---------------------------------------------------------------------------

FAKE_ADAPTER = """\
import json, signal, sys

signal.alarm(60)  # never outlive the test session, whatever the client does
MISBEHAVIOUR = {misbehaviour!r}


def send(message):
    sys.stdout.write(json.dumps(message) + "\\n")
    sys.stdout.flush()


for line in sys.stdin:
    op = json.loads(line)["op"]
    if op == "hello":
        if MISBEHAVIOUR == "hello_not_json":
            print("adapter v0.1 starting", flush=True)
        elif MISBEHAVIOUR == "hello_silent":
            continue
        elif MISBEHAVIOUR == "protocol_3":
            send({{"ok": True, "protocol": 3, "name": "from the future"}})
        else:
            send({{"ok": True, "protocol": 1, "name": "fake"}})
    elif op == "quit":
        send({{"ok": True}})
        break
    elif MISBEHAVIOUR == "not_json":
        print("reset done", flush=True)
    elif MISBEHAVIOUR == "exits":
        sys.exit(3)
    elif MISBEHAVIOUR == "silent":
        continue
    elif MISBEHAVIOUR == "internal":
        send({{"ok": False, "error": "internal", "message": "store exploded"}})
    elif MISBEHAVIOUR == "no_ok":
        send({{"state": {{}}}})
"""


@dataclass(frozen=True)
class Misbehaviour:
    at_hello: bool  # True: the handshake fails; False: the first reset does
    message: str


MISBEHAVIOURS = {
    "hello_not_json": Misbehaviour(True, "adapter replied with non-JSON: 'adapter v0.1 starting'"),
    "hello_silent": Misbehaviour(True, "adapter gave no reply to hello within 1s"),
    "protocol_3": Misbehaviour(True, f"adapter speaks protocol 3, we speak {PROTOCOL_VERSION}"),
    "not_json": Misbehaviour(False, "adapter replied with non-JSON: 'reset done'"),
    "exits": Misbehaviour(False, "before replying to reset"),
    "silent": Misbehaviour(False, "adapter gave no reply to reset within 1s"),
    "internal": Misbehaviour(False, "adapter error (internal) on reset: store exploded"),
    "no_ok": Misbehaviour(False, "adapter reply lacks a boolean 'ok'"),
}


def fake_adapter(tmp_path: Path, misbehaviour: str) -> str:
    script = tmp_path / f"fake_{misbehaviour}.py"
    script.write_text(FAKE_ADAPTER.format(misbehaviour=misbehaviour))
    return f"{PYTHON} {shlex.quote(str(script))}"


def test_the_fake_adapter_is_a_working_adapter_until_it_misbehaves(tmp_path: Path) -> None:
    """The control: with no misbehaviour the fake passes the handshake and quits cleanly."""
    client = AdapterClient(fake_adapter(tmp_path, "none"), timeout=REPLY_TIMEOUT)
    assert client.name == "fake"
    client.close()


@pytest.mark.parametrize("name", list(MISBEHAVIOURS))
def test_a_broken_adapter_raises_a_clear_adapter_error(
    name: str, tmp_path: Path, seed_traces: list[Trace]
) -> None:
    case = MISBEHAVIOURS[name]
    command = fake_adapter(tmp_path, name)
    if case.at_hello:
        with pytest.raises(AdapterError) as error:
            AdapterClient(command, timeout=REPLY_TIMEOUT)
        assert case.message in str(error.value)
        return
    client = AdapterClient(command, timeout=REPLY_TIMEOUT)
    report = replay_all(seed_traces[:2], client)
    assert not report.ok
    assert len(report.results) == 1, "the replay must stop once the adapter is broken"
    divergence = report.results[0].divergence
    assert divergence is not None
    assert divergence.field == "adapter"
    assert case.message in str(divergence.actual)
    if name == "exits":
        assert "adapter exited" in str(divergence.actual)


@pytest.mark.parametrize("name", ["hello_not_json", "protocol_3", "not_json", "exits", "silent"])
def test_cli_replay_fails_with_the_adapter_error(name: str, tmp_path: Path, seed_dir: Path) -> None:
    case = MISBEHAVIOURS[name]
    result = run_cli(
        "replay",
        str(seed_dir),
        "--adapter",
        fake_adapter(tmp_path, name),
        "--timeout",
        str(REPLY_TIMEOUT),
    )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    # The replay report shows the error as a Python repr, quotes escaped.
    assert case.message in output or case.message.replace("'", "\\'") in output, output
    if not case.at_hello:
        assert result.returncode == 1
        assert "0 passed, 1 failed" in result.stdout


def test_an_empty_adapter_command_is_refused() -> None:
    with pytest.raises(AdapterError, match="the adapter command is empty"):
        AdapterClient("  ")


def test_an_adapter_that_cannot_start_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-adapter"
    with pytest.raises(AdapterError, match="cannot start adapter") as error:
        AdapterClient(str(missing))
    assert str(missing) in str(error.value)


# ---------------------------------------------------------------------------
# Usage errors
# ---------------------------------------------------------------------------


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("lashspec: error: ")
    return lines[0]


def test_cli_replay_of_a_missing_path_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.itf.json"
    line = _one_line_error(run_cli("replay", str(missing)))
    assert f"trace path {missing} does not exist" in line


def test_cli_replay_of_a_malformed_file_exits_2(tmp_path: Path) -> None:
    broken = tmp_path / "broken.itf.json"
    broken.write_text('{"states": [')
    line = _one_line_error(run_cli("replay", str(broken)))
    assert "malformed trace" in line
    assert str(broken) in line
    assert "not JSON" in line


def test_cli_replay_of_a_trace_lacking_variables_exits_2(seed_dir: Path, tmp_path: Path) -> None:
    source = (seed_dir / "scenario-command_only.itf.json").read_text()
    broken = tmp_path / "no-vars.itf.json"
    broken.write_text(source.replace('"vars"', '"variables"', 1))
    line = _one_line_error(run_cli("replay", str(broken)))
    assert "'vars' must be a list of variable names" in line


def test_cli_replay_of_a_directory_without_traces_exits_2(tmp_path: Path) -> None:
    line = _one_line_error(run_cli("replay", str(tmp_path)))
    assert "no *.itf.json trace files" in line


# ---------------------------------------------------------------------------
# The normative description
# ---------------------------------------------------------------------------

PROTOCOL_DOC = Path(__file__).resolve().parents[2] / "docs" / "adapter-protocol.md"


def test_the_protocol_document_matches_the_implementation() -> None:
    text = PROTOCOL_DOC.read_text()
    assert f"# Adapter protocol (version {PROTOCOL_VERSION})" in text
    for op in ("hello", "reset", "apply", "observe", "quit"):
        assert f'{{"op": "{op}"' in text, op
    for kind in ("unknown_action", "bad_params", "unsupported_system", "bad_request", "internal"):
        assert f"| `{kind}` |" in text, kind
    model = build_model(SCENARIO_BOUNDS)
    assert f"one of the {len(model.actions)} action names" in text
    assert f"onto the {len(trace_state(model, model.initial_state()))} state variables" in text
