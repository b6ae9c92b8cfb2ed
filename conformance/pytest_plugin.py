"""pytest plugin: run a port's own test suite over the lashspec conformance traces.

Installing lashspec registers this plugin (``pytest11`` entry point ``lashspec``); it does
nothing until a test asks for one of its fixtures.

Fixtures
--------
``lashspec_trace``
    One :class:`~lashspec.conformance.itf.Trace`. Every test that uses it (directly or
    through another fixture) is parametrised over every ``*.itf.json`` file of the trace
    directories, one test per file, with the trace id as the test id (files written by
    ``lashspec export`` are named ``<trace id>.itf.json``). A file that cannot be read fails
    only its own test.
``lashspec_replay``
    A function ``replay(target)`` that replays the current trace against ``target`` (anything
    with the :class:`~lashspec.conformance.replay.ReplayTarget` shape: ``reset``, ``apply``,
    ``observe``, ``close``; machine traces, docs/machine-traces.md, reset a target that has
    ``reset_system(bounds, system)``, as ``AdapterClient`` does, with their system) and fails
    the test with the first divergence, as
    :meth:`~lashspec.conformance.replay.Divergence.describe` words it. It never closes the
    target, so one adapter process can serve the whole session (a session-scoped fixture);
    once that process has failed (died, timed out) the tests after it fail too, so give the
    fixture function scope when the adapter is flaky.

:func:`replay_or_fail` does the same for a trace obtained some other way.

Where the traces come from (the first that is set)
--------------------------------------------------
1. ``--lashspec-traces DIR`` on the command line (repeatable; relative to the directory
   pytest was started in);
2. the ini option ``lashspec_traces`` (one or more directories, relative to the ini file);
3. otherwise the full suite is generated once per test session (about a minute) into a
   temporary directory that is removed at the end. Export it once with
   ``lashspec export DIR`` and point the option at it to skip that cost.

Example: a port whose adapter speaks docs/adapter-protocol.md::

    # conftest.py
    import pytest
    from lashspec.conformance.protocol import AdapterClient

    @pytest.fixture(scope="session")
    def port_adapter():
        client = AdapterClient("./target/release/lash-conformance-adapter", timeout=5)
        yield client
        client.close()

    # test_conformance.py
    def test_follows_the_model(lashspec_replay, port_adapter):
        lashspec_replay(port_adapter)

and, in ``pytest.ini``::

    [pytest]
    lashspec_traces = conformance-traces

Then ``pytest -k cover-lease`` runs the lease edge-cover traces only, ``pytest -x`` stops at
the first diverging trace, and a failure reads like::

    trace scenario-command_only diverges
    step 3 claim_command(o=0): outcome differs
      expected: {'claim': 'qwc:b0:1', 'rows': {0}, 'tag': 'Claimed'}
      actual:   {'tag': 'NoClaim'}
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .itf import Trace
    from .replay import ReplayTarget, TraceResult

TRACE_FIXTURE = "lashspec_trace"
TRACE_SUFFIX = ".itf.json"
INI_NAME = "lashspec_traces"

_TRACE_FILES = pytest.StashKey[list[Path]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lashspec", "lashspec conformance traces")
    group.addoption(
        "--lashspec-traces",
        action="append",
        dest="lashspec_traces",
        metavar="DIR",
        default=None,
        help="directory of *.itf.json traces for the lashspec_trace fixture (repeatable); "
        "default: the ini option lashspec_traces, else the suite generated for this session",
    )
    parser.addini(
        INI_NAME,
        type="paths",
        default=[],
        help="directories of *.itf.json traces for the lashspec_trace fixture",
    )


def configured_directories(config: pytest.Config) -> list[Path]:
    """The trace directories given on the command line or in the ini file (may be empty)."""
    given: list[str] | None = config.getoption("lashspec_traces")
    if given:
        return [config.invocation_params.dir / directory for directory in given]
    from_ini: list[Path] = config.getini(INI_NAME)
    return list(from_ini)


def write_default_suite(directory: Path) -> None:
    """Generate the full conformance suite (every profile, every trace kind, store and machine
    traces, as ``lashspec export`` writes it) into a folder."""
    from .generate import generate_suite, write_suite
    from .machine_suite import generate_machine_suite, write_machine_suite

    write_suite(generate_suite(), directory)
    write_machine_suite(generate_machine_suite(), directory)


def _generated_directory(config: pytest.Config) -> Path:
    directory = Path(tempfile.mkdtemp(prefix="lashspec-traces-"))
    config.add_cleanup(lambda: shutil.rmtree(directory, ignore_errors=True))
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"lashspec: generating the conformance suite into {directory}")
    write_default_suite(directory)
    return directory


def trace_files(config: pytest.Config) -> list[Path]:
    """Every trace file the session parametrises over, found (or generated) once.

    A missing or empty directory fails the collection of the modules that use the traces
    (and nothing else), so a port's unrelated tests still run without exported traces.
    """
    if _TRACE_FILES in config.stash:
        return config.stash[_TRACE_FILES]
    from .itf import SuiteError, suite_trace_files

    directories = configured_directories(config) or [_generated_directory(config)]
    files: list[Path] = []
    for directory in directories:
        if not directory.is_dir():
            pytest.fail(f"{INI_NAME}: {directory} is not a directory", pytrace=False)
        try:  # a suite with an index.json must match it, as for `lashspec replay`
            files.extend(suite_trace_files(directory, warn=_warn))
        except SuiteError as error:
            pytest.fail(f"{INI_NAME}: {error}", pytrace=False)
    config.stash[_TRACE_FILES] = files
    return files


def _warn(message: str) -> None:
    warnings.warn(f"lashspec: {message}", stacklevel=2)


def pytest_report_header(config: pytest.Config) -> str | None:
    directories = configured_directories(config)
    if not directories:
        return None
    return "lashspec traces: " + ", ".join(str(d) for d in directories)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if TRACE_FIXTURE not in metafunc.fixturenames:
        return
    files = trace_files(metafunc.config)
    metafunc.parametrize(
        TRACE_FIXTURE,
        files,
        indirect=True,
        ids=[path.name.removesuffix(TRACE_SUFFIX) for path in files],
    )


@pytest.fixture
def lashspec_trace(request: pytest.FixtureRequest) -> Trace:
    """One conformance trace; tests using it run once per trace file (see the module doc)."""
    from .itf import TraceFormatError, read_trace

    path: Path | None = getattr(request, "param", None)
    if path is None:
        pytest.fail(
            "lashspec_trace is parametrised at collection: take it as a test or fixture "
            "argument instead of calling request.getfixturevalue",
            pytrace=False,
        )
    try:
        return read_trace(path)
    except TraceFormatError as error:
        pytest.fail(f"malformed trace: {error}", pytrace=False)


def replay_or_fail(trace: Trace, target: ReplayTarget) -> TraceResult:
    """Replay ``trace`` against ``target``; fail the running test at the first divergence.

    A target that breaks the adapter protocol (dies, times out, answers nonsense) fails the
    test too, with the protocol error. The target is left open.
    """
    from .replay import replay_trace_until_failure

    result = replay_trace_until_failure(trace, target)
    if result.adapter_failed and result.divergence is not None:
        pytest.fail(
            f"trace {trace.trace_id}: adapter failure at {result.divergence.where()}: "
            f"{result.divergence.actual}",
            pytrace=False,
        )
    if result.divergence is not None:
        pytest.fail(
            f"trace {trace.trace_id} diverges\n{result.divergence.describe()}", pytrace=False
        )
    return result


@pytest.fixture
def lashspec_replay(lashspec_trace: Trace) -> Callable[[ReplayTarget], TraceResult]:
    """``replay(target)``: replay the current trace, failing the test with the divergence."""

    def replay(target: ReplayTarget) -> TraceResult:
        return replay_or_fail(lashspec_trace, target)

    return replay
