"""Every store call must open the transaction kind its work needs.

A read-only call must not take the write lock: on SQLite a read runs on the connection
without ``BEGIN IMMEDIATE`` (lash's stores read through ``conn.call`` and write through
``write_flow``), and a read taken as a write would serialise every worker behind one writer.
A call that may write does its work in one write transaction, so it is atomic.  Only the
backends' instrumentation, ``transaction_counts`` (read transactions, write transactions
opened so far, not part of the ``Store`` protocol), can tell the kinds apart, so the check
runs with the replay's read cross-check (``KernelAdapter(..., check_reads=True)``) on a
store that exposes the counters.

The rule, per call, as (read transactions, write transactions) opened by it:

* a read-only call (:data:`READ_CALLS`): exactly (1, 0);
* ``claim_checkpoint_work``: its probe, one read, then at most one write: (1, 0) or (1, 1)
  (lash probes before it writes, so a quiescent checkpoint takes no write lock);
* any other call (it may write): exactly (0, 1), so it checks the fence or the rows and
  writes atomically, in its one write transaction;
* a claim asked for zero rows (:data:`ZERO_LIMIT_ARGUMENTS`) is answered from its arguments,
  as lash's SQLite store answers it: exactly (0, 0);
* a call refused with ``InvalidRequest`` (format 5's bad requests) may also have opened
  nothing: malformed arguments are refused before any transaction, a conflict only the rows
  show inside the call's one transaction.

A store that was just created has opened no transaction.  A violation raises
:class:`WrongTransactionKind`, which a replay reports as an error at that step.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from ..kernel.errors import InvalidRequest

#: The store port's read-only calls.
READ_CALLS = frozenset(
    {
        "load_session_execution_lease",
        "session_fencing_token",
        "list_queued_work",
        "list_pending_queued_work",
        "list_pending_turn_inputs",
        "get_pending_turn_input",
        "inspect_lease_row",
        "inspect_queued_work",
        "inspect_turn_inputs",
        "inspect_session",
        "load_session",
    }
)

#: Calls that probe with a read transaction before they write.
PROBING_CALLS = frozenset({"claim_checkpoint_work"})

#: Claims answered without a transaction when this argument (their limit) is zero.
ZERO_LIMIT_ARGUMENTS = {
    "claim_ready_queued_work": "max_batches",
    "claim_next_turn_inputs": "max_inputs",
    "claim_active_turn_inputs": "max_inputs",
}

#: Calls that are not store operations (no transaction rule applies).
UNCHECKED_CALLS = frozenset({"close", "transaction_counts"})


class WrongTransactionKind(AssertionError):
    """A store call opened other transactions than its kind of work needs."""


def allowed_transactions(call: str) -> frozenset[tuple[int, int]]:
    """The (read, write) transaction counts ``call`` may open."""
    if call in READ_CALLS:
        return frozenset({(1, 0)})
    if call in PROBING_CALLS:
        return frozenset({(1, 0), (1, 1)})
    return frozenset({(0, 1)})


def _counts(store: Any) -> tuple[int, int]:
    counts = store.transaction_counts
    if not (
        isinstance(counts, tuple)
        and len(counts) == 2
        and all(isinstance(c, int) and not isinstance(c, bool) for c in counts)
    ):
        raise WrongTransactionKind(f"transaction_counts is {counts!r}, not (reads, writes)")
    return counts[0], counts[1]


def has_transaction_counts(store: object) -> bool:
    return hasattr(type(store), "transaction_counts")


class TransactionKindCheck:
    """Wraps a store that exposes ``transaction_counts``; every public call is forwarded and
    then checked against :func:`allowed_transactions`.  Built on a fresh store."""

    def __init__(self, store: Any) -> None:
        self._store = store
        opened = _counts(store)
        if opened != (0, 0):
            raise WrongTransactionKind(
                f"a store that was just created reports {opened} (read, write) transactions"
            )

    @property
    def checked_store(self) -> Any:
        return self._store

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._store, name)
        if name.startswith("_") or name in UNCHECKED_CALLS or not callable(attribute):
            return attribute
        return self._checked(name, attribute)

    def _checked(self, name: str, call: Callable[..., Any]) -> Callable[..., Any]:
        usual = allowed_transactions(name)
        limit = ZERO_LIMIT_ARGUMENTS.get(name)

        def checked(*args: Any, **kwargs: Any) -> Any:
            allowed = usual
            if limit is not None:
                asked = inspect.signature(call).bind(*args, **kwargs).arguments.get(limit)
                if asked == 0 and not isinstance(asked, bool):
                    allowed = frozenset({(0, 0)})
            reads, writes = _counts(self._store)
            try:
                return call(*args, **kwargs)
            except InvalidRequest:
                allowed = allowed | {(0, 0)}
                raise
            finally:
                after_reads, after_writes = _counts(self._store)
                opened = (after_reads - reads, after_writes - writes)
                if opened not in allowed:
                    raise WrongTransactionKind(
                        f"{name} opened {opened[0]} read and {opened[1]} write transactions; "
                        f"allowed (read, write): {sorted(allowed)}"
                    )

        return checked
