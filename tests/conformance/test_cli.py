"""The ``lashspec`` command line: check end to end, exit statuses, reports, bad arguments."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from lashspec.conformance import checking
from lashspec.conformance.checking import (
    CheckOptions,
    CheckStage,
    Progress,
    _machine_explore_stage,
    _machine_mutant_stage,
    _machine_rules_stage,
    _machine_z3_stages,
)
from lashspec.conformance.cli import (
    EXIT_OK,
    EXIT_USAGE,
    EXIT_VIOLATION,
    ProgressPrinter,
    format_table,
    main,
)
from lashspec.conformance.generate import generate_suite, write_suite
from lashspec.conformance.machine_suite import generate_machine_suite, write_machine_suite
from lashspec.model import fastexplore
from lashspec.model.explore import explore
from lashspec.model.kernel_model import SMALLEST_BOUNDS, build_model
from lashspec.model.machine_check import INDUCTION_BOUNDS, MACHINE_BMC_DEPTH
from lashspec.model.machine_model import MachineBounds, build_machine_model
from lashspec.model.machine_mutants import MACHINE_MUTANTS, MachineMutant, build_machine_mutant
from lashspec.model.mutants import MUTANTS
from lashspec.model.profiles import PROFILES, MachineProfile, Profile

SMALL = ["--owners", "1", "--batches", "1", "--inputs", "1", "--max-generation", "2"]
# 4,176 folded nodes: too many for a picture, explored in a second
SMALLER = [*SMALL[:-1], "1", "--max-incarnation", "0", "--max-claims-per-row", "1"]
CHECK_STAGE_ORDER = (
    "explore:custom",
    # the turn machine: custom store bounds give one machine profile at those bounds
    "explore:machine-custom",
    "machine:rules",
    "explore:phase-order",
    "seeded-bugs",
    "z3:induction",
    "z3:induction-unbounded",
    "z3:bmc",
    "machine:seeded-bugs",
    "machine:z3-induction",
    "machine:z3-bmc",
    "suite",
    "replay:memory",
    "replay:sqlite",
    "machine:suite",
    "replay:machine-memory",
    "replay:machine-sqlite",
)


def test_check_runs_every_stage_and_writes_a_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "report.json"
    suite = tmp_path / "suite"
    argv = ["check", *SMALL, "--bmc-depth", "3", "--report", str(report), "--out", str(suite)]
    status = main([*argv, "--jobs", "2"])
    out, err = capsys.readouterr()
    assert status == EXIT_OK, out + err
    document = json.loads(report.read_text())
    stages = {stage["name"]: stage for stage in document["stages"]}
    assert document["ok"] is True
    # the model stages ran in a worker process, yet sit where a one-process check puts them
    assert [s["name"] for s in document["stages"]] == list(CHECK_STAGE_ORDER)
    assert "seeded bug " in err and "z3:bmc: depth 3" in err, "the worker's progress shows"
    assert all(stage["ok"] for stage in stages.values())
    assert len(stages["seeded-bugs"]["caught"]) == len(MUTANTS)
    assert stages["replay:sqlite"]["actions"] == stages["replay:memory"]["actions"] > 0
    machine_caught = stages["machine:seeded-bugs"]["caught"]
    assert len(machine_caught) == len(MACHINE_MUTANTS)
    assert all(c["bmc_replays"] and c["clean_model_holds"] for c in machine_caught.values())
    assert stages["explore:machine-custom"]["states"] > 1000
    assert stages["machine:z3-bmc"]["report"]["checked_depth"] == MACHINE_BMC_DEPTH
    machine_actions = stages["replay:machine-memory"]["actions"]
    assert stages["replay:machine-sqlite"]["actions"] == machine_actions > 0
    assert stages["machine:suite"]["traces"] == len(list(suite.glob("machine-custom-*.itf.json")))
    assert all(stage["cpu_seconds"] >= 0 for stage in stages.values())
    assert "machine:z3-bmc" in out and "replay:machine-sqlite" in out
    assert "explore:custom" in out and "replay:sqlite" in out
    assert all(len(line) <= 100 for line in out.splitlines()), "the table fits 100 columns"
    assert "[" in err and "explore custom" in err, "progress goes to stderr"
    assert any(suite.glob("*.itf.json")), "--out keeps the suite"


def test_a_model_stage_that_raises_is_a_failed_stage_not_a_lost_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What a worker process runs: a runner that raises still reports a (failed) stage, and
    its traceback goes out as progress; the other runners of its share still run."""

    def broken(options: CheckOptions, progress: Progress) -> list[CheckStage]:
        raise RuntimeError("solver exploded")

    def fine(options: CheckOptions, progress: Progress) -> list[CheckStage]:
        progress("fine runs")
        return [CheckStage("fine", True, "ok")]

    monkeypatch.setattr(checking, "MODEL_STAGES", (broken, fine))
    messages: queue.Queue[tuple[str, Any, Any]] = queue.Queue()
    checking._model_stage_worker([0, 1], CheckOptions(), messages)
    sent = [messages.get_nowait() for _ in range(messages.qsize())]
    stages = {index: payload for kind, index, payload in sent if kind == "stages"}
    assert [s.ok for s in stages[0]] == [False] and "solver exploded" in stages[0][0].detail
    assert stages[1] == [CheckStage("fine", True, "ok")]
    progress = [payload for kind, _, payload in sent if kind == "progress"]
    assert any("RuntimeError: solver exploded" in line for line in progress)
    assert ("progress", None, "fine runs") in sent and sent[-1] == ("done", None, None)


def test_a_worker_that_dies_turns_its_stages_into_failures() -> None:
    """A worker killed before it reports (OOM killer, SIGKILL) cannot pass the check: each
    of its stages fails, naming the exit status; none is silently missing."""
    lines: list[str] = []
    workers = checking._ModelStagesInWorkers(CheckOptions(), lines.append, 2)
    for process in workers._processes:
        os.kill(process.pid or 0, signal.SIGKILL)
    stages = workers.results()
    assert len(stages) == len(checking.MODEL_STAGES)
    assert all(not s.ok and "exited with status -9" in s.detail for s in stages)


def _commands_not_drained_first(bounds: MachineBounds) -> object:
    return build_machine_mutant("commands_not_drained_first", bounds)


def test_machine_stages_fail_on_a_broken_model() -> None:
    """Each machine stage of the check can fail: run on a seeded bug (or a "bug" that is
    none), it reports the violation instead of ok."""
    lines: list[str] = []
    profile = MachineProfile("machine-broken", INDUCTION_BOUNDS, "a seeded bug")
    stage, explored = _machine_explore_stage(profile, lines.append, _commands_not_drained_first)
    assert not stage.ok and "violated: command_order" in stage.detail
    assert stage.data["violated"] == ["command_order"]

    rules = _machine_rules_stage({profile.name: explored}, True, lines.append)
    assert not rules.ok and "rows not taken" in rules.detail and "busy" in rules.detail

    not_a_bug = MachineMutant(
        "not_a_bug", "the correct model", "command_order", build_machine_model, INDUCTION_BOUNDS
    )
    seeded = _machine_mutant_stage(lines.append, [MACHINE_MUTANTS[4], not_a_bug], use_z3=False)
    assert MACHINE_MUTANTS[4].name == "commands_not_drained_first"
    assert not seeded.ok and seeded.detail.endswith("(z3 skipped); missed: not_a_bug")
    assert set(seeded.data["caught"]) == {"commands_not_drained_first"}

    induction, bmc = _machine_z3_stages(lines.append, _commands_not_drained_first, depth=4)
    assert not induction.ok and "command_order" in induction.detail
    assert not bmc.ok and bmc.detail == "violated: command_order"


@pytest.fixture(scope="module")
def lease_suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small store suite (the lease profile, no witnesses), written once for the module;
    a test that changes a file works on a copy."""
    folder = tmp_path_factory.mktemp("lease-suite")
    write_suite(generate_suite(PROFILES[:1], boundary_sample=20, witnesses=False), folder)
    return folder


@pytest.fixture(scope="module")
def machine_traces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("machine-suite")
    tiny = MachineProfile("machine-tiny", INDUCTION_BOUNDS, "one owner, one turn")
    write_machine_suite(generate_machine_suite([tiny]), folder)
    return folder


def test_replay_validate_accepts_machine_traces(
    machine_traces: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-q", "replay", "--validate", str(machine_traces)]) == EXIT_OK
    out, _ = capsys.readouterr()
    assert out.splitlines()[-1].startswith("21 passed, 0 failed")


@pytest.mark.parametrize(
    ("break_it", "message"),
    [
        (
            lambda d: d["states"][2].update({"mbt::actionTaken": "host_fly"}),
            "$.states[2]['mbt::actionTaken']: 'host_fly' is not one of",
        ),
        (
            lambda d: d["states"][2].pop("machine_phase"),
            "$.states[2]: 'machine_phase' is a required property",
        ),
        (
            lambda d: d["vars"].remove("machine_iclaims"),
            "$.vars: ",
        ),
        (
            lambda d: d["states"][2]["outcome"].update({"effects": ["Fly"]}),
            "$.states[2].outcome.effects[0]: 'Fly' is not one of",
        ),
    ],
)
def test_replay_validate_rejects_a_broken_machine_trace_in_one_line(
    break_it: Callable[[dict[str, Any]], object],
    message: str,
    machine_traces: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    document = json.loads((machine_traces / "machine-tiny-cover-000.itf.json").read_text())
    assert document["#meta"]["lashspec"]["system"] == "machine"
    break_it(document)
    path = tmp_path / "machine-broken.itf.json"
    path.write_text(json.dumps(document))
    assert main(["-q", "replay", "--validate", str(path)]) == EXIT_USAGE
    _, err = capsys.readouterr()
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_replay_exits_1_with_the_first_divergence_on_a_broken_kernel(
    lease_suite: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-q", "replay", str(lease_suite)]) == EXIT_OK
    capsys.readouterr()
    status = main(["-q", "replay", str(lease_suite), "--kernel-variant", "commit_keeps_lease"])
    out, _ = capsys.readouterr()
    assert status == EXIT_VIOLATION
    assert "lease_holder differs" in out
    assert "failed" in out.splitlines()[-1]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["check", "--owners", "12"], "bound owners=12 must be an integer in 1..4"),
        (["check", "--owners", "x"], "expected a whole number"),
        (["check", "--backend", "oracle"], "invalid choice"),
        (["check", "--jobs", "0"], "jobs must be at least 1, not 0"),
        (["replay"], "the following arguments are required"),
        (["explore", "--dot", "g.dot"], "export one graph"),
        (["explore", *SMALLER, "--dot", "g.dot"], "DOT is for pictures of at most 500 nodes"),
        (["explore", *SMALL, "--dot-lane", "lease"], "give --dot FILE or --svg FILE"),
        (["frobnicate"], "invalid choice"),
        (["explore", "--max-memory", "lots"], "argument --max-memory: not a byte count"),
        (["check", "--max-memory", "0"], "argument --max-memory: a byte count must be positive"),
        (["explore", "--profile", "nope"], "invalid choice"),
        (["explore", "--profile", "lease", "--owners", "1"], "--profile and the bound options"),
        (["explore", "--profile", "full", "--graphml", "g.xml"], "cannot export the full"),
        (["explore", "--profile", "core", "--dot", "g.dot"], "cannot export the core"),
        (["check", "--profile", "core", "--owners", "1"], "--profile and the bound options"),
    ],
)
def test_bad_arguments_exit_2_with_one_line_saying_what_is_wrong(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        status = main(argv)
    except SystemExit as exit_:  # argparse exits by itself
        status = int(exit_.code or 0)
    _, err = capsys.readouterr()
    assert status == EXIT_USAGE
    assert message in err


def test_explore_exports_graphml_and_dot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    graphml, dot = tmp_path / "g.graphml", tmp_path / "g.dot"
    tiny = [*SMALL, "--max-incarnation", "0", "--max-claims-per-row", "1"]
    tiny += ["--max-head-revision", "0", "--max-generation", "1"]
    argv = ["-q", "explore", *tiny, "--graphml", str(graphml), "--dot", str(dot)]
    assert main(argv) == EXIT_OK
    out, _ = capsys.readouterr()
    assert "states" in out
    assert "<graphml" in graphml.read_text()
    assert dot.read_text().startswith("digraph")


def test_help_explains_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("check", "explore", "export", "replay"):
        with pytest.raises(SystemExit) as exit_:
            main([command, "--help"])
        assert exit_.value.code == 0
        out, _ = capsys.readouterr()
        assert f"usage: lashspec {command}" in out
        assert "--help" in out


def test_replay_validate_rejects_a_file_the_reader_would_accept(
    lease_suite: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "scenario-command_only.itf.json"
    document = json.loads((lease_suite / path.name).read_text())
    document["states"][1]["outcome"] = {"tag": "Vacuumed", "removed": 0}  # not enqueue's outcome
    path.write_text(json.dumps(document))
    assert main(["-q", "replay", "--validate", str(path)]) == EXIT_USAGE
    _, err = capsys.readouterr()
    assert "$.states[1].outcome.tag" in err and "'Vacuumed' is not one of" in err


def test_the_summary_table_wraps_long_details_to_the_width() -> None:
    detail = "1049 traces (cover 1013, boundary 27, witness 9), " * 5
    rows = [("explore:lease", "ok", "49,963 states"), ("suite", "ok", detail)]
    lines = format_table(rows, ("check", "status", "detail"), width=100)
    assert all(len(line) <= 100 for line in lines)
    lead = len("explore:lease  status  ")
    assert " ".join(line[lead:] for line in lines[3:]).split() == detail.split(), (
        "nothing of the detail is lost, continuation lines align under it"
    )
    assert all(len(line) <= 80 for line in format_table(rows, ("c", "s", "d"), width=80))


@pytest.mark.parametrize("position", ["before", "after"])
def test_quiet_is_accepted_before_and_after_the_command(
    position: str, lease_suite: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = str(next(lease_suite.glob("scenario-*.itf.json")))
    argv = ["-q", "replay", trace] if position == "before" else ["replay", trace, "-q"]
    assert main(argv) == EXIT_OK
    _, err = capsys.readouterr()
    assert err == ""
    assert main(["replay", trace]) == EXIT_OK
    assert "replay 1 traces" in capsys.readouterr().err, "without -q progress is shown"


def _under_a_file(tmp_path: Path, name: str) -> str:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    return str(blocker / name)


@pytest.mark.parametrize(
    "argv",
    [
        ["check", "--report", "{bad}"],
        ["check", "--out", "{bad}"],
        ["export", "{bad}"],
        ["explore", *SMALL, "--dot", "{bad}"],
        ["explore", *SMALL, "--graphml", "{bad}"],
    ],
)
def test_unwritable_outputs_fail_at_once_with_one_line(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = _under_a_file(tmp_path, "out")
    status = main([arg.replace("{bad}", bad) for arg in argv])
    _, err = capsys.readouterr()
    assert status == EXIT_USAGE
    assert err.startswith("lashspec: error: ") and bad in err
    assert len(err.strip().splitlines()) == 1, "no progress: nothing ran before the check"


def test_svg_without_graphviz_says_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(shutil, "which", lambda _: None)
    status = main(["explore", *SMALL, "--dot-lane", "lease", "--svg", str(tmp_path / "g.svg")])
    _, err = capsys.readouterr()
    assert status == EXIT_USAGE
    assert "--svg needs Graphviz's dot program" in err


@pytest.mark.skipif(shutil.which("dot") is None, reason="needs Graphviz's dot")
def test_explore_draws_one_lane_as_svg(tmp_path: Path) -> None:
    svg, dot = tmp_path / "lease.svg", tmp_path / "lease.dot"
    argv = ["explore", *SMALL, "--max-incarnation", "0", "--dot-lane", "lease"]
    assert main([*argv, "--dot", str(dot), "--svg", str(svg), "-q"]) == EXIT_OK
    assert "<svg" in svg.read_text()
    text = dot.read_text()
    assert "lease_holder=0" in text and "projected onto the lease lane" in text


def test_an_adapter_that_cannot_start_says_what_to_check(
    lease_suite: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = str(next(lease_suite.glob("scenario-*.itf.json")))
    missing_module = f"{sys.executable} -m lashspec_no_such_adapter"
    status = main(["-q", "replay", trace, "--adapter", missing_module])
    _, err = capsys.readouterr()
    assert status == EXIT_VIOLATION
    assert "did not start or stopped at once" in err
    assert ".venv/bin/python -m lashspec.conformance.reference_adapter" in err


def test_progress_shows_a_heartbeat_in_a_long_silent_phase() -> None:
    lines: list[str] = []
    with ProgressPrinter(heartbeat=0.05, sink=lines.append) as progress:
        progress("suite: exploring profile inputs")
        deadline = time.monotonic() + 10
        while len(lines) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert lines[0].endswith("] suite: exploring profile inputs")
    assert re.match(r"\[ *\d+\.\ds\] \.\.\. still working .*exploring profile inputs", lines[1])
    quiet: list[str] = []
    with ProgressPrinter(quiet=True, heartbeat=0.01, sink=quiet.append) as progress:
        progress("anything")
        time.sleep(0.05)
    assert quiet == []


def test_explore_past_the_memory_cap_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # 1 MiB is below the resident memory of any Python process: the first check stops it.
    status = main(["-q", "explore", "--profile", "lease", "--max-memory", "1M"])
    out, err = capsys.readouterr()
    assert status == EXIT_USAGE
    assert out == ""
    assert len(err.splitlines()) == 1, err
    assert err.startswith("lashspec: error: exploration stopped at the memory cap")
    assert "> 1.0 MiB after" in err and "states processed" in err
    assert "Traceback" not in err


def test_explore_one_profile_reports_its_state_count(capsys: pytest.CaptureFixture[str]) -> None:
    lease = next(p for p in PROFILES if p.name == "lease")
    assert main(["explore", "--profile", "lease", "--max-memory", "4G"]) == EXIT_OK
    out, err = capsys.readouterr()
    rows = [line for line in out.splitlines() if line.split()[:1] == ["lease"]]
    assert len(out.splitlines()) == 3, "the header, its rule and the one profile explored"
    match = re.match(r"lease +([\d,]+) states", rows[0])
    assert match is not None, out
    states = explore(build_model(lease.bounds)).state_count
    assert int(match.group(1).replace(",", "")) == states
    # the exploration's progress report (the last one is made when it ends) goes to stderr
    assert f"explore lease: {states:,} states (" in err and "memory" in err


@pytest.mark.parametrize("name", ["full", "core"])
def test_check_exhaustive_profile_runs_the_fast_engine_alone(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # `core` takes minutes and `full` far longer: the same path on small bounds.
    tiny = replace(SMALLEST_BOUNDS, owners=2, max_generation=2)
    monkeypatch.setattr(fastexplore, f"{name}_profile", lambda: Profile(name, tiny, "tiny"))
    assert main(["-q", "check", "--profile", name]) == EXIT_OK
    out, _ = capsys.readouterr()
    (row,) = [line for line in out.splitlines() if line.startswith(f"explore:{name}")]
    match = re.search(r"ok +([\d,]+) states \(([\d,]+) orbits\)", row)
    assert match is not None, out
    states, orbits = (int(g.replace(",", "")) for g in match.groups())
    assert states == explore(build_model(tiny)).state_count
    assert orbits < states, "owner symmetry folds states into orbits"
    assert "replay:" not in out and "suite" not in out
    # explore --profile NAME --jobs N: the same row on one thread and on two
    rows = []
    for jobs in ("1", "2"):
        assert main(["-q", "explore", "--profile", name, "--jobs", jobs]) == EXIT_OK
        text = " ".join(capsys.readouterr().out.split())  # the table may wrap the row
        assert f"engine c on {jobs} thread{'s' if jobs == '2' else ''}" in text
        found = re.search(
            name + r" ([\d,]+ states \([\d,]+ orbits\), [\d,]+ edges, depth \d+)", text
        )
        assert found is not None, text
        rows.append(found.group(1))
    assert rows[0] == rows[1] and rows[0].startswith(f"{states:,} states ({orbits:,} orbits)")
