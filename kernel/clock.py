"""Injected time and process liveness: the store never reads the wall clock or /proc itself.

Tests, the model replayer and simulations drive time with :class:`ManualClock` and process
death with :class:`FakeProcessTable`; production uses :class:`SystemClock` and
:class:`ProcfsLiveness`.
"""

from __future__ import annotations

import enum
import os
import threading
import time
from typing import Protocol

from .types import LeaseOwnerIdentity, LocalProcessLiveness


class Clock(Protocol):
    def now_ms(self) -> int:
        """Current time in integer epoch milliseconds; read once per store operation."""
        ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class ManualClock:
    """A clock that moves only when told to; thread-safe."""

    def __init__(self, start_ms: int = 10_000) -> None:
        self._now = start_ms
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        # Reading one attribute is atomic; the lock orders the writers.
        return self._now

    def advance(self, delta_ms: int) -> int:
        if delta_ms < 0:
            raise ValueError(f"a clock cannot move backwards (delta {delta_ms} ms)")
        with self._lock:
            self._now += delta_ms
            return self._now

    def set(self, now_ms: int) -> None:
        with self._lock:
            if now_ms < self._now:
                raise ValueError(f"a clock cannot move backwards ({self._now} -> {now_ms})")
            self._now = now_ms


class ProcessState(enum.Enum):
    ALIVE = "alive"
    DEAD = "dead"
    UNKNOWN = "unknown"


class LivenessOracle(Protocol):
    def process_state(self, pid: int, process_start: str) -> ProcessState:
        """Is the process with this pid and start time still running on this host?"""
        ...


# /proc/<pid>/stat states of a process that has exited: a zombie waiting to be reaped, or
# one being reaped ("x" on kernels before 3.13).  Neither can touch the store again.
_EXITED_STATES = frozenset({"Z", "X", "x"})


class ProcfsLiveness:
    """Linux: read /proc/<pid>/stat; a missing file, a different start time or an exited
    (zombie) process means dead.

    lash's own check treats a zombie as alive; we deliberately do not, so that a SIGKILLed
    holder whose parent has not reaped it yet can be taken over without waiting for the TTL.
    """

    def process_state(self, pid: int, process_start: str) -> ProcessState:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                line = handle.read()
        except FileNotFoundError:
            return ProcessState.DEAD
        except OSError:
            return ProcessState.UNKNOWN
        _, sep, rest = line.rpartition(") ")
        fields = rest.split()
        if not sep or len(fields) < 20:
            return ProcessState.UNKNOWN
        if fields[19] != process_start or fields[0] in _EXITED_STATES:
            return ProcessState.DEAD
        return ProcessState.ALIVE


class FakeProcessTable:
    """A process table the test controls: pid -> start time; absent pid means dead."""

    def __init__(self) -> None:
        self._processes: dict[int, str] = {}
        self._lock = threading.Lock()

    def spawn(self, pid: int, process_start: str) -> None:
        with self._lock:
            self._processes[pid] = process_start

    def kill(self, pid: int) -> None:
        with self._lock:
            self._processes.pop(pid, None)

    def process_state(self, pid: int, process_start: str) -> ProcessState:
        with self._lock:
            current = self._processes.get(pid)
        if current is None:
            return ProcessState.DEAD
        return ProcessState.ALIVE if current == process_start else ProcessState.DEAD


def current_process_start() -> str:
    """This process's start time as /proc reports it (field 22), or '' when unavailable."""
    try:
        with open(f"/proc/{os.getpid()}/stat") as handle:
            rest = handle.read().rpartition(") ")[2].split()
        return rest[19] if len(rest) >= 20 else ""
    except OSError:
        return ""


def is_definitely_dead_for_claimant(
    holder: LeaseOwnerIdentity, claimant: LeaseOwnerIdentity, oracle: LivenessOracle
) -> bool:
    """True only when both sides are local processes on the same host and boot and the
    holder's process is provably gone (missing pid or reused pid).  Unknown is not dead."""
    h, c = holder.liveness, claimant.liveness
    if not isinstance(h, LocalProcessLiveness) or not isinstance(c, LocalProcessLiveness):
        return False
    if h.host_id != c.host_id or h.boot_id != c.boot_id:
        return False
    return oracle.process_state(h.pid, h.process_start) is ProcessState.DEAD
