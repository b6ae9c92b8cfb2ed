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
