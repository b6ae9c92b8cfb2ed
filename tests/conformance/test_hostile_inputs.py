"""`lashspec replay` against hostile input (issue 10): malformed and oversized trace files,
truncated or altered suites, adapters whose replies break the limits, adapters that die in
the middle of a suite or leave children behind. Every case must end, with a non-zero exit
and one line naming the file (and the step, for adapter replies), never a traceback."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lashspec.conformance import itf, protocol
from lashspec.conformance.cli import EXIT_OK, EXIT_USAGE, EXIT_VIOLATION, main
from lashspec.conformance.itf import Trace, write_trace
from lashspec.conformance.modeltrace import ModelRunner, trace_of
from lashspec.conformance.seed_traces import SEED_SCENARIO_TRACES
from lashspec.model.profiles import SCENARIO_BOUNDS

PYTHON = shlex.quote(sys.executable)
HANG_GUARD = 60  # seconds; only against a hang, never a speed assertion


@pytest.fixture(scope="module")
def seed_traces() -> list[Trace]:
    runner = ModelRunner(SCENARIO_BOUNDS)
    return [
        trace_of(runner, [(a, dict(p)) for a, p in steps], f"scenario-{name}")
        for name, (_, steps) in sorted(SEED_SCENARIO_TRACES.items())
    ]


def write_traces(traces: list[Trace], directory: Path, *, index: bool) -> list[Path]:
    """The traces as files, with an index.json shaped like write_suite's when ``index``."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for trace in traces:
        path = directory / f"{trace.trace_id}.itf.json"
        write_trace(trace, path)
        paths.append(path)
    if index:
        entries = [
            {"file": p.name, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()} for p in paths
        ]
        (directory / "index.json").write_text(json.dumps({"traces": entries}))
    return paths


@pytest.fixture
def suite(seed_traces: list[Trace], tmp_path: Path) -> Path:
    directory = tmp_path / "suite"
    write_traces(seed_traces, directory, index=True)
    return directory


def replay(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["-q", "replay", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return status, out, err


def one_error_line(status: int, err: str) -> str:
    """The single ``lashspec: error:`` line of a usage failure."""
    assert status == EXIT_USAGE, err
    errors = [line for line in err.splitlines() if line.startswith("lashspec: error: ")]
    assert len(errors) == 1, err
    return errors[0]


# ---------------------------------------------------------------------------
# Hostile trace files
# ---------------------------------------------------------------------------


def trace_document(trace: Trace, tmp_path: Path) -> dict[str, object]:
    path = tmp_path / "source.itf.json"
    write_trace(trace, path)
    document: dict[str, object] = json.loads(path.read_text())
    path.unlink()
    return document


def test_bounds_given_as_a_string_are_one_line_naming_the_file(
    seed_traces: list[Trace], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = trace_document(seed_traces[0], tmp_path)
    document["#meta"]["lashspec"]["bounds"] = "owners=2"  # type: ignore[index]
    bad = tmp_path / "bad.itf.json"
    bad.write_text(json.dumps(document))
    line = one_error_line(*replay(capsys, str(bad))[::2])
    assert str(bad) in line
    assert "'#meta.lashspec.bounds' must be an object, got 'owners=2'" in line


def test_a_bound_of_the_wrong_type_is_named(
    seed_traces: list[Trace], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = trace_document(seed_traces[0], tmp_path)
    document["#meta"]["lashspec"]["bounds"]["owners"] = "2"  # type: ignore[index]
    bad = tmp_path / "bad.itf.json"
    bad.write_text(json.dumps(document))
    line = one_error_line(*replay(capsys, str(bad))[::2])
    assert f"{bad}: bound 'owners' must be an integer in 0..1000, got '2'" in line


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[" * 100_000 + "]" * 100_000, "JSON nested deeper than 32 levels"),
        ('{"#set": [' * 3000 + "]}" * 3000, "JSON nested deeper than 32 levels"),
        ('{"states": [' + "7" * 5000 + "]}", "an integer has 5000 digits (at most 40)"),
        ('{"states": [NaN]}', "NaN is not a JSON value"),
    ],
    ids=["100k-brackets", "3k-sets", "5000-digits", "nan"],
)
def test_a_file_beyond_the_json_limits_is_one_line_naming_it(
    content: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "hostile.itf.json"
    bad.write_text(content)
    line = one_error_line(*replay(capsys, str(bad))[::2])
    assert f"{bad}: {message}" in line


def test_deep_sets_inside_a_state_variable_are_refused(
    seed_traces: list[Trace], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = trace_document(seed_traces[0], tmp_path)
    states = document["states"]
    assert isinstance(states, list)
    states[0]["lease_gen"] = "NESTED"
    bad = tmp_path / "bad.itf.json"
    nested = '{"#set": [' * 3000 + "]}" * 3000  # too deep for json.dumps itself
    bad.write_text(json.dumps(document).replace('"NESTED"', nested))
    line = one_error_line(*replay(capsys, str(bad))[::2])
    assert f"{bad}: JSON nested deeper than 32 levels" in line


def test_a_bigint_of_5000_digits_is_refused(
    seed_traces: list[Trace], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = trace_document(seed_traces[0], tmp_path)
    states = document["states"]
    assert isinstance(states, list)
    states[1]["lease_gen"] = {"#bigint": "9" * 5000}
    bad = tmp_path / "bad.itf.json"
    bad.write_text(json.dumps(document))
    line = one_error_line(*replay(capsys, str(bad))[::2])
    assert f"{bad}, state 1: a #bigint has 5000 digits (at most 40)" in line


def test_a_file_larger_than_the_limit_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(itf, "MAX_TRACE_FILE_BYTES", 1000)
    big = tmp_path / "big.itf.json"
    big.write_text(json.dumps({"states": ["x" * 2000]}))
    line = one_error_line(*replay(capsys, str(big))[::2])
    assert f"{big}: larger than 1000 bytes" in line


def test_non_utf8_bytes_in_a_trace_file_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "latin1.itf.json"
    bad.write_bytes(b'{"states": ["caf\xe9"]}')
    line = one_error_line(*replay(capsys, str(bad))[::2])
    assert f"{bad}: not UTF-8: byte 0xe9 at offset 16" in line


def test_a_fifo_in_the_suite_directory_is_refused_without_hanging(
    seed_traces: list[Trace], tmp_path: Path
) -> None:
    write_traces(seed_traces[:1], tmp_path, index=False)
    fifo = tmp_path / "x.itf.json"
    os.mkfifo(fifo)
    result = subprocess.run(
        [sys.executable, "-m", "lashspec.conformance.cli", "-q", "replay", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        check=False,
    )
    assert "Traceback" not in result.stderr
    line = one_error_line(result.returncode, result.stderr)
    assert f"{fifo} is not a regular file (a FIFO)" in line


def test_a_fifo_named_on_the_command_line_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "x.itf.json"
    os.mkfifo(fifo)
    line = one_error_line(*replay(capsys, str(fifo))[::2])
    assert f"trace path {fifo} is not a regular file (a FIFO)" in line


# ---------------------------------------------------------------------------
# Suites checked against their index.json
# ---------------------------------------------------------------------------


def test_a_complete_suite_replays(suite: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = replay(capsys, str(suite))
    assert status == EXIT_OK, out + err
    assert f"{len(SEED_SCENARIO_TRACES)} passed, 0 failed" in out
    assert "warning" not in err


def test_a_truncated_suite_fails_naming_the_missing_files(
    suite: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = sorted(suite.glob("*.itf.json"))
    for path in files[3:]:
        path.unlink()
    line = one_error_line(*replay(capsys, str(suite))[::2])
    missing = [p.name for p in files[3:]]
    assert f"{suite} does not match its index.json ({len(files)} files listed)" in line
    assert f"{len(missing)} missing (first: {', '.join(missing[:3])}, ...)" in line


def test_an_unlisted_trace_file_fails(
    suite: Path, seed_traces: list[Trace], capsys: pytest.CaptureFixture[str]
) -> None:
    write_trace(seed_traces[0], suite / "stowaway.itf.json")
    line = one_error_line(*replay(capsys, str(suite))[::2])
    assert "1 not listed (first: stowaway.itf.json)" in line


def test_a_changed_trace_file_fails(suite: Path, capsys: pytest.CaptureFixture[str]) -> None:
    changed = sorted(suite.glob("*.itf.json"))[1]
    changed.write_text(changed.read_text().replace('"lease_gen": 0', '"lease_gen":  0', 1))
    line = one_error_line(*replay(capsys, str(suite))[::2])
    assert f"1 changed (first: {changed.name})" in line


def test_an_index_pointing_outside_the_directory_is_refused(
    suite: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (suite / "index.json").write_text(json.dumps({"traces": [{"file": "../x.itf.json"}]}))
    line = one_error_line(*replay(capsys, str(suite))[::2])
    assert f"{suite / 'index.json'}: traces[0].file must name a *.itf.json" in line


def test_a_directory_without_an_index_replays_and_says_so(
    seed_traces: list[Trace], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_traces(seed_traces[:2], tmp_path, index=False)
    status, out, err = replay(capsys, str(tmp_path))
    assert status == EXIT_OK, out + err
    assert "2 passed, 0 failed" in out
    assert f"lashspec: warning: {tmp_path} has no index.json: replaying the 2" in err


# ---------------------------------------------------------------------------
# Hostile adapter replies
# ---------------------------------------------------------------------------

# The reference adapter, with its fifth reply line (the observe after the first apply:
# hello, reset, observe, apply, observe) replaced by BAD.
CORRUPTING_ADAPTER = """\
import signal, sys

signal.alarm(60)  # never outlive the test session, whatever the client does
from lashspec.conformance.protocol import serve
from lashspec.conformance.replay import kernel_target

BAD = {bad!r}


class Output:
    replies = 0

    def write(self, text):
        Output.replies += 1
        sys.stdout.buffer.write(BAD if Output.replies == 5 else text.encode())

    def flush(self):
        sys.stdout.buffer.flush()


serve(kernel_target("memory"), "corrupting", sys.stdin, Output())
"""


def corrupting_adapter(tmp_path: Path, bad: bytes) -> str:
    script = tmp_path / "corrupting_adapter.py"
    script.write_text(CORRUPTING_ADAPTER.format(bad=bad))
    return f"{PYTHON} {shlex.quote(str(script))}"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (
            b'{"ok": true, "state": {"lease_gen": ' + b"7" * 5000 + b"}}\n",
            "adapter reply to observe: an integer has 5000 digits (at most 40)",
        ),
        (
            b'{"ok": true, "state": {"lease_gen": {"#set": 5}}}\n',
            "adapter reply to observe: state: #set must hold a list",
        ),
        (
            b'{"ok": true, "state": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n",
            "adapter reply to observe: JSON nested deeper than 32 levels",
        ),
        (
            b'{"ok": true, "state": ' + b'{"#set": [' * 3000 + b"]}" * 3000 + b"}\n",
            "adapter reply to observe: JSON nested deeper than 32 levels",
        ),
        (
            b'{"ok": true, "state": {"lease_gen": "\xff"}}\n',
            "adapter reply to observe: not UTF-8: byte 0xff at offset 37",
        ),
        (
            b'{"ok": false, "error": "internal", "message": ' + b"[" * 30 + b"]" * 30 + b"}\n",
            "adapter error (internal) on observe: " + "[" * 30,
        ),
    ],
    ids=["5000-digits", "set-of-int", "100k-brackets", "3k-sets", "not-utf8", "list-message"],
)
def test_a_hostile_observe_reply_names_the_trace_and_step(
    bad: bytes,
    message: str,
    seed_traces: list[Trace],
    suite: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, err = replay(capsys, str(suite), "--adapter", corrupting_adapter(tmp_path, bad))
    assert status == EXIT_VIOLATION, out + err
    first = seed_traces[0]
    action, picks = first.actions[0]
    where = f"step 1 {action}({', '.join(f'{k}={v!r}' for k, v in sorted(picks.items()))})"
    assert f"FAIL {first.trace_id}\n{where}: adapter failed: {message}" in out
    summary = out.splitlines()[-1]
    not_run = len(seed_traces) - 1
    assert summary.startswith(f"0 passed, 1 failed, {not_run} not run ({len(seed_traces)} traces")
    assert f"the adapter failed in trace {first.trace_id} ({first_file(suite)}) at {where}" in (
        summary
    )


def first_file(suite: Path) -> Path:
    return sorted(suite.glob("*.itf.json"))[0]


def test_an_overlong_reply_line_is_a_protocol_error(
    suite: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(protocol, "MAX_REPLY_LINE_BYTES", 4096)
    bad = b'{"ok": true, "state": {"pad": "' + b"x" * 100_000 + b'"}}\n'
    status, out, err = replay(capsys, str(suite), "--adapter", corrupting_adapter(tmp_path, bad))
    assert status == EXIT_VIOLATION, out + err
    assert "adapter failed: adapter reply to observe is longer than 4096 bytes" in out


# ---------------------------------------------------------------------------
# Adapters that leave children behind or must be stopped
# ---------------------------------------------------------------------------


def run_replay_process(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lashspec.conformance.cli", "-q", "replay", *argv],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        check=False,
    )


def process_gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"  # a zombie waiting for init to reap it is dead too


@pytest.fixture
def background_child_pid_file(tmp_path: Path) -> Iterator[Path]:
    pid_file = tmp_path / "child.pid"
    yield pid_file
    if pid_file.exists():  # never leave the sleeper behind, whatever the test found
        pid = int(pid_file.read_text())
        if not process_gone(pid):
            os.kill(pid, 9)


def test_a_child_holding_the_adapters_stdout_does_not_stall_the_replay(
    seed_traces: list[Trace], tmp_path: Path, background_child_pid_file: Path
) -> None:
    write_traces(seed_traces[:2], tmp_path / "suite", index=True)
    reference = f"{PYTHON} -m lashspec.conformance.reference_adapter"
    wrapper = f"sleep 300 & echo $! > {shlex.quote(str(background_child_pid_file))}; "
    command = f"sh -c {shlex.quote(wrapper + 'exec ' + reference)}"
    result = run_replay_process(str(tmp_path / "suite"), "--adapter", command)
    assert result.returncode == EXIT_OK, result.stdout + result.stderr
    assert "2 passed, 0 failed" in result.stdout
    pid = int(background_child_pid_file.read_text())
    deadline = time.monotonic() + HANG_GUARD
    while not process_gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process_gone(pid), "the adapter's process group is killed at the end"


STUBBORN_ADAPTER = """\
import json, signal, sys, time

signal.alarm(120)
for line in sys.stdin:
    if json.loads(line)["op"] == "hello":
        print(json.dumps({"ok": True, "protocol": 1}), flush=True)
    else:
        print("reset done", flush=True)  # not JSON: the session is over
        time.sleep(110)  # and it will not go away by itself
"""


def test_a_failed_adapter_is_killed_not_waited_for(
    seed_traces: list[Trace], tmp_path: Path
) -> None:
    write_traces(seed_traces[:2], tmp_path / "suite", index=True)
    script = tmp_path / "stubborn.py"
    script.write_text(STUBBORN_ADAPTER)
    # With a reply timeout beyond the hang guard, only killing the adapter at once can pass.
    result = run_replay_process(
        str(tmp_path / "suite"),
        "--adapter",
        f"{PYTHON} {shlex.quote(str(script))}",
        "--timeout",
        str(HANG_GUARD * 2),
    )
    assert result.returncode == EXIT_VIOLATION, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "step 0 init(): adapter failed: adapter replied with non-JSON: 'reset done'" in (
        result.stdout
    )
    assert "0 passed, 1 failed, 1 not run (2 traces" in result.stdout
