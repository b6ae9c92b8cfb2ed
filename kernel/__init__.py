"""lashspec.kernel: the sans-IO runtime kernel of lash, with in-memory and SQLite stores.

The store port is :class:`Store`; :class:`InMemoryStore` and :class:`SqliteStore` implement it
with identical semantics (both run :class:`~lashspec.kernel.engine.StoreEngine`).  The turn
machine lives in :mod:`lashspec.kernel.machine` and its store driver in
:mod:`lashspec.kernel.driver`.
"""

from .clock import FakeProcessTable, ManualClock, ProcfsLiveness, SystemClock
from .errors import KernelError, StoreError
from .memory import InMemoryStore
from .sqlite import SqliteStore
from .store import Store

__all__ = [
    "FakeProcessTable",
    "InMemoryStore",
    "KernelError",
    "ManualClock",
    "ProcfsLiveness",
    "SqliteStore",
    "Store",
    "StoreError",
    "SystemClock",
]

# The sans-IO turn machine and its store driver, imported on first use: a host that only
# needs the store port never loads them.
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .driver import TurnDriver
    from .machine import CycleOutcome, TurnMachine, TurnState

_LAZY = {
    "CycleOutcome": "machine",
    "TurnDriver": "driver",
    "TurnMachine": "machine",
    "TurnState": "machine",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ += [
    "CycleOutcome",
    "TurnDriver",
    "TurnMachine",
    "TurnState",
]
