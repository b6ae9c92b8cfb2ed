"""The pytest plugin, run inside pytester sessions over a three-trace directory."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from lashspec.conformance import pytest_plugin
from lashspec.conformance.itf import write_trace
from lashspec.conformance.modeltrace import ModelRunner, trace_of
from lashspec.conformance.seed_traces import SEED_SCENARIO_TRACES
from lashspec.model.profiles import SCENARIO_BOUNDS

pytest_plugins = ["pytester"]

# Every one of these acquires the lease as owner 0 with generation 1 before anything else
# can diverge, which the broken target below relies on.
SCENARIOS = ("command_only", "turn_input_completion", "dead_lease_reclaim")
TRACE_IDS = sorted(f"scenario-{name}" for name in SCENARIOS)  # file order

TARGETS = """
from lashspec.conformance.protocol import AdapterError
from lashspec.conformance.replay import kernel_target


class ForgetfulAcquire:
    '''Our kernel, except that acquire reports Ok instead of the lease it granted.'''

    def __init__(self):
        self.kernel = kernel_target("memory")

    def reset(self, bounds):
        self.kernel.reset(bounds)

    def apply(self, action, picks):
        outcome = self.kernel.apply(action, picks)
        return {"tag": "Ok"} if action == "acquire" else outcome

    def observe(self):
        return self.kernel.observe()

    def close(self):
        self.kernel.close()


class Unreachable(ForgetfulAcquire):
    def apply(self, action, picks):
        raise AdapterError("adapter gave no reply to apply within 1s")
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    # The hypothesis plugin alone costs about two seconds per inner session.
    return pytester.runpytest("-p", "no:hypothesispytest", "-p", "no:cacheprovider", *args)


@pytest.fixture(scope="module")
def trace_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("traces")
    runner = ModelRunner(SCENARIO_BOUNDS)
    for name in SCENARIOS:
        _, steps = SEED_SCENARIO_TRACES[name]
        trace = trace_of(runner, [(a, dict(p)) for a, p in steps], f"scenario-{name}")
        write_trace(trace, directory / f"{trace.trace_id}.itf.json")
    return directory


@pytest.fixture
def targets(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(targets=TARGETS)


def test_one_test_per_trace_file(pytester: pytest.Pytester, trace_dir: Path) -> None:
    pytester.makepyfile(
        test_traces="""
        from lashspec.conformance.itf import Trace

        def test_trace(lashspec_trace):
            assert isinstance(lashspec_trace, Trace)
            assert lashspec_trace.steps[0].action == "init"

        def test_untouched():
            pass
        """
    )
    result = run(pytester, "--lashspec-traces", str(trace_dir), "-v")
    result.assert_outcomes(passed=len(SCENARIOS) + 1)
    result.stdout.fnmatch_lines(
        [f"*test_traces.py::test_trace[[]{trace_id}[]] PASSED*" for trace_id in TRACE_IDS]
    )
    result.stdout.fnmatch_lines([f"lashspec traces: {trace_dir}"])


def test_our_kernel_replays_green(
    pytester: pytest.Pytester, trace_dir: Path, targets: None
) -> None:
    pytester.makepyfile(
        test_kernel="""
        from lashspec.conformance.replay import kernel_target

        def test_kernel(lashspec_replay):
            result = lashspec_replay(kernel_target("memory"))
            assert result.ok and result.steps > 0
        """
    )
    result = run(pytester, "--lashspec-traces", str(trace_dir))
    result.assert_outcomes(passed=len(SCENARIOS))


def test_a_broken_target_fails_with_the_divergence(
    pytester: pytest.Pytester, trace_dir: Path, targets: None
) -> None:
    pytester.makepyfile(
        test_port="""
        from targets import ForgetfulAcquire

        def test_port(lashspec_replay):
            lashspec_replay(ForgetfulAcquire())
        """
    )
    result = run(pytester, "--lashspec-traces", str(trace_dir))
    result.assert_outcomes(failed=len(SCENARIOS))
    result.stdout.fnmatch_lines(
        [
            "trace scenario-command_only diverges",
            "step 2 acquire(o=0): outcome differs",
            "  expected: {'gen': 1, 'tag': 'Acquired'}",
            "  actual:   {'tag': 'Ok'}",
        ]
    )
    result.stdout.fnmatch_lines(["trace scenario-dead_lease_reclaim diverges"])
    result.stdout.fnmatch_lines(["step 1 acquire(o=0): outcome differs"])
    result.stdout.no_fnmatch_line("*Traceback*")


def test_an_adapter_failure_fails_the_test_with_the_protocol_error(
    pytester: pytest.Pytester, trace_dir: Path, targets: None
) -> None:
    pytester.makepyfile(
        test_port="""
        from lashspec.conformance.pytest_plugin import replay_or_fail
        from targets import Unreachable

        def test_port(lashspec_trace):
            replay_or_fail(lashspec_trace, Unreachable())
        """
    )
    result = run(pytester, "--lashspec-traces", str(trace_dir))
    result.assert_outcomes(failed=len(SCENARIOS))
    result.stdout.fnmatch_lines(
        [
            "trace scenario-command_only: adapter failure at step 1 enqueue_batch(b=0): "
            "adapter gave no reply to apply within 1s"
        ]
    )


def test_the_ini_option_names_the_directory(pytester: pytest.Pytester, trace_dir: Path) -> None:
    shutil.copytree(trace_dir, pytester.path / "conformance-traces")
    pytester.makeini("[pytest]\nlashspec_traces = conformance-traces\n")
    pytester.makepyfile(test_ini="def test_trace(lashspec_trace):\n    pass\n")
    result = run(pytester, "-v")
    result.assert_outcomes(passed=len(SCENARIOS))
    result.stdout.fnmatch_lines(["*test_trace[[]scenario-command_only[]] PASSED*"])


def test_a_malformed_trace_fails_only_its_own_test(
    pytester: pytest.Pytester, trace_dir: Path
) -> None:
    traces = pytester.path / "traces"
    shutil.copytree(trace_dir, traces)
    (traces / "truncated.itf.json").write_text('{"states": [')
    pytester.makepyfile(test_files="def test_trace(lashspec_trace):\n    pass\n")
    result = run(pytester, "--lashspec-traces", str(traces))
    result.assert_outcomes(passed=len(SCENARIOS), errors=1)
    result.stdout.fnmatch_lines(["*malformed trace: *truncated.itf.json: not JSON*"])


@pytest.mark.parametrize(
    ("make_directory", "complaint"),
    [
        (False, "lashspec_traces: {} is not a directory"),
        (True, "lashspec_traces: no [*].itf.json trace files in directory {}"),
    ],
)
def test_a_bad_directory_fails_only_the_modules_using_traces(
    pytester: pytest.Pytester, make_directory: bool, complaint: str
) -> None:
    directory = pytester.path / "exported"
    if make_directory:
        directory.mkdir()
    pytester.makepyfile(
        test_uses="def test_trace(lashspec_trace):\n    pass\n",
        test_other="def test_other():\n    pass\n",
    )
    result = run(pytester, "--lashspec-traces", "exported", "--continue-on-collection-errors")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([complaint.format(directory)])
    result.stdout.no_fnmatch_line("*Traceback*")


def test_without_a_directory_the_suite_is_generated_once(
    pytester: pytest.Pytester, trace_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generated: list[Path] = []

    def write_small_suite(directory: Path) -> None:
        # Stands in for the full suite, which takes about a minute to generate.
        generated.append(directory)
        for path in trace_dir.iterdir():
            shutil.copy(path, directory / path.name)

    monkeypatch.setattr(pytest_plugin, "write_default_suite", write_small_suite)
    body = "def test_trace(lashspec_trace):\n    assert lashspec_trace.trace_id\n"
    pytester.makepyfile(test_one=body, test_two=body, test_none="def test_x():\n    pass\n")
    result = run(pytester, "-v")
    result.assert_outcomes(passed=2 * len(SCENARIOS) + 1)
    assert len(generated) == 1, "the suite must be generated once per session"
    result.stdout.fnmatch_lines(
        [f"*lashspec: generating the conformance suite into {generated[0]}"]
    )
    assert not generated[0].exists(), "the generated suite must be removed after the session"


def test_sessions_that_never_ask_for_traces_generate_nothing(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(directory: Path) -> None:
        raise AssertionError("no test asked for traces")

    monkeypatch.setattr(pytest_plugin, "write_default_suite", fail)
    pytester.makepyfile(test_plain="def test_x():\n    pass\n")
    result = run(pytester)
    result.assert_outcomes(passed=1)
