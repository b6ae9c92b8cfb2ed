"""Independent pieces of work computed in forked worker processes, results in order.

Suite generation computes each check profile's traces in a worker (``generate_suite(jobs=)``):
the profiles share nothing but the read-only explorations and compiled models, which a
forked worker has without copying or pickling them.  Workers take the next piece as they
finish one (the profiles differ a hundredfold in cost); each result is pickled back, and
the caller gets them in the order of the pieces, as a loop in one process would.

Progress lines the pieces report travel to the caller's ``progress`` through the same pipe.
A piece that raises, or a worker that dies, is a :class:`WorkerError` with what happened.
Replay has its own two-phase workers (``replay.replay_in_workers``).
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import traceback
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.connection import Connection, wait
from typing import Any, TypeVar

Result = TypeVar("Result")
Progress = Callable[[str], None]
Piece = Callable[[int, Progress], Result]
"""Computes piece ``i``, reporting progress lines through the callable it is given."""


class WorkerError(RuntimeError):
    """A worker process raised or died; the message holds what it reported."""


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def forked_map(piece: Piece[Result], count: int, jobs: int, progress: Progress) -> list[Result]:
    """``[piece(i, progress) for i in range(count)]``, in ``jobs`` forked processes when
    there are more than one (and the platform forks), else in this one."""
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, not {jobs}")
    jobs = min(jobs, count)
    if jobs <= 1 or not can_fork():
        return [piece(index, progress) for index in range(count)]
    next_piece = multiprocessing.get_context("fork").Value("i", 0)
    with forked_workers(jobs, _work, lambda worker, parent: (piece, count, next_piece, parent)) as (
        workers,
        connections,
    ):
        return _collect(count, workers, connections, progress)


@contextlib.contextmanager
def forked_workers(
    jobs: int, target: Callable[..., None], arguments: Callable[[int, Connection], tuple[Any, ...]]
) -> Iterator[tuple[list[Any], list[Connection]]]:
    """``jobs`` forked processes running ``target(*arguments(k, pipe_end))``, and this side's
    end of each one's pipe (two-way: the worker may also receive); on leaving, any worker
    still running is stopped and every pipe closed.

    Objects are frozen out of the collector while the workers fork: a worker's collector
    then never touches what it inherited, whose pages stay shared instead of being copied.
    """
    context = multiprocessing.get_context("fork")
    workers, connections = [], []
    thaw = gc.get_freeze_count() == 0  # leave a caller's own frozen objects frozen
    gc.freeze()
    try:
        for worker in range(jobs):
            here, there = context.Pipe()
            process = context.Process(
                target=target,
                args=arguments(worker, there),
                name=f"lashspec-worker-{worker}",
                daemon=True,
            )
            process.start()
            there.close()  # the worker holds the only other end: its death ends the pipe
            workers.append(process)
            connections.append(here)
    finally:
        if thaw:
            gc.unfreeze()
    try:
        yield workers, connections
    finally:
        for process in workers:
            if process.is_alive():
                process.terminate()
            process.join()
        for connection in connections:
            connection.close()


def _collect(
    count: int, workers: Sequence[Any], connections: Sequence[Connection], progress: Progress
) -> list[Any]:
    results: dict[int, Any] = {}
    waiting = dict(enumerate(connections))
    while waiting:
        ready = wait(list(waiting.values()))
        for worker, connection in list(waiting.items()):
            if connection not in ready:
                continue
            try:
                message = connection.recv()
            except EOFError:
                code = exit_code(workers[worker])
                raise WorkerError(
                    f"worker {worker} ended before its work was done (exit code {code})"
                ) from None
            kind = message[0]
            if kind == "progress":
                progress(message[1])
            elif kind == "result":
                results[message[1]] = message[2]
            elif kind == "done":
                del waiting[worker]
            else:  # "error"
                raise WorkerError(f"worker {worker} failed:\n{message[1]}")
    missing = [index for index in range(count) if index not in results]
    if missing:  # pragma: no cover - every worker said it was done
        raise WorkerError(f"pieces {missing} were never computed")
    return [results[index] for index in range(count)]


def exit_code(process: Any) -> int | None:
    """The exit code of a worker whose pipe has ended: its end of file can come before the
    process is reaped, so wait a little for it (None if it is somehow still running)."""
    process.join(timeout=EXIT_WAIT_SECONDS)
    return process.exitcode  # type: ignore[no-any-return]


#: How long to wait for a worker whose pipe ended to be reaped.
EXIT_WAIT_SECONDS = 5.0


def _work(
    piece: Piece[Any], count: int, next_piece: Any, parent: Connection
) -> None:  # pragma: no cover - runs in a forked process (its results are tested)
    def report(line: str) -> None:
        parent.send(("progress", line))

    try:
        while True:
            with next_piece.get_lock():
                index = next_piece.value
                next_piece.value += 1
            if index >= count:
                break
            parent.send(("result", index, piece(index, report)))
        parent.send(("done",))
    except BaseException:  # everything reaches the parent, which raises WorkerError
        parent.send(("error", traceback.format_exc()))
    finally:
        parent.close()
