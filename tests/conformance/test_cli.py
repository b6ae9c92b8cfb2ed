"""The ``lashspec`` command line: check end to end, exit statuses, reports, bad arguments."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lashspec.conformance.cli import EXIT_OK, EXIT_USAGE, EXIT_VIOLATION, main
from lashspec.conformance.generate import generate_suite, write_suite
from lashspec.model.profiles import PROFILES

SMALL = ["--owners", "1", "--batches", "1", "--inputs", "1", "--max-generation", "2"]


def test_check_runs_every_stage_and_writes_a_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "report.json"
    suite = tmp_path / "suite"
    status = main(
        ["check", *SMALL, "--bmc-depth", "3", "--report", str(report), "--out", str(suite)]
    )
    out, err = capsys.readouterr()
    assert status == EXIT_OK, out + err
    document = json.loads(report.read_text())
    stages = {stage["name"]: stage for stage in document["stages"]}
    assert document["ok"] is True
    assert set(stages) == {
        "explore:custom",
        "explore:phase-order",
        "seeded-bugs",
        "z3:induction",
        "z3:induction-unbounded",
        "z3:bmc",
        "suite",
        "replay:memory",
        "replay:sqlite",
    }
    assert all(stage["ok"] for stage in stages.values())
    assert len(stages["seeded-bugs"]["caught"]) == 10
    assert stages["replay:sqlite"]["actions"] == stages["replay:memory"]["actions"] > 0
    assert "explore:custom" in out and "replay:sqlite" in out
    assert "[" in err and "explore custom" in err, "progress goes to stderr"
    assert any(suite.glob("*.itf.json")), "--out keeps the suite"


def test_replay_exits_1_with_the_first_divergence_on_a_broken_kernel(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_suite(generate_suite(PROFILES[:1], boundary_sample=20, witnesses=False), tmp_path)
    assert main(["-q", "replay", str(tmp_path)]) == EXIT_OK
    capsys.readouterr()
    status = main(["-q", "replay", str(tmp_path), "--kernel-variant", "commit_keeps_lease"])
    out, _ = capsys.readouterr()
    assert status == EXIT_VIOLATION
    assert "lease_holder differs" in out
    assert "failed" in out.splitlines()[-1]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["check", "--owners", "12"], "bound owners=12 must be an integer in 1..4"),
        (["check", "--owners", "x"], "expected a whole number"),
        (["check", "--backend", "postgres"], "invalid choice"),
        (["replay"], "the following arguments are required"),
        (["explore", "--dot", "g.dot"], "export one graph"),
        (["explore", *SMALL, "--dot", "g.dot"], "DOT is for pictures of at most 500 states"),
        (["frobnicate"], "invalid choice"),
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
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_suite(generate_suite(PROFILES[:1], boundary_sample=5, witnesses=False), tmp_path)
    path = next(tmp_path.glob("scenario-command_only.itf.json"))
    document = json.loads(path.read_text())
    document["states"][1]["outcome"] = {"tag": "Vacuumed", "removed": 0}  # not enqueue's outcome
    path.write_text(json.dumps(document))
    assert main(["-q", "replay", "--validate", str(path)]) == EXIT_USAGE
    _, err = capsys.readouterr()
    assert "$.states[1].outcome.tag" in err and "'Vacuumed' is not one of" in err
