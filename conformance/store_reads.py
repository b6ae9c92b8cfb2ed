"""The store port's other read calls must agree with ``inspect_session``.

The trace state is projected from one :meth:`~lashspec.kernel.store.Store.inspect_session`
read (one transaction per step).  The port has more read calls, which a host uses and no
trace action makes: the lease reads (``inspect_lease_row``, ``load_session_execution_lease``,
``session_fencing_token``), the row listings (``inspect_queued_work``, ``list_queued_work``,
``inspect_turn_inputs``) and the single-row read ``get_pending_turn_input``.  After every
step :func:`check_store_reads` reads the same session through each of them and compares the
answers with the inspection's (what each call returns follows from the rows: the live lease
is the lease row while its token is set and it has not expired; the fencing token is the
row's, 0 without a row; a row is found by its id within its session only).  A disagreement
raises :class:`StoreReadsDisagree`, which a replay reports as an error at that step.  So these
reads are checked in every state the suite reaches, without trace actions of their own.
"""

from __future__ import annotations

from typing import Any

from ..kernel.store import Store
from ..kernel.types import LeaseRow, SessionExecutionLease, SessionInspection

#: An input id no row ever has (the adapter's ids come from the store).
ABSENT_INPUT_ID = "lashspec:absent-input"


class StoreReadsDisagree(AssertionError):
    """Two read calls of the store port answered differently about the same rows."""


def _expected_lease(row: LeaseRow | None, now_ms: int) -> SessionExecutionLease | None:
    if row is None or not row.is_live(now_ms):
        return None
    assert row.owner is not None and row.lease_token is not None
    return SessionExecutionLease(
        row.session_id,
        row.owner,
        row.lease_token,
        row.fencing_token,
        row.claimed_at_ms,
        row.expires_at_ms,
    )


def _agree(call: str, answered: Any, expected: Any) -> None:
    if answered != expected:
        raise StoreReadsDisagree(
            f"{call} answered {answered!r}; inspect_session implies {expected!r}"
        )


def check_store_reads(store: Store, session_id: str, seen: SessionInspection, now_ms: int) -> None:
    """Raise :class:`StoreReadsDisagree` unless the read calls agree with ``seen``, the
    store's ``inspect_session(session_id)`` at clock ``now_ms``."""
    row = seen.lease_row
    token = row.fencing_token if row is not None else 0
    _agree("session_fencing_token", store.session_fencing_token(session_id), token)
    _agree(
        "load_session_execution_lease",
        store.load_session_execution_lease(session_id),
        _expected_lease(row, now_ms),
    )
    for input_row, _ in seen.turn_inputs:
        _agree(
            f"get_pending_turn_input({input_row.input_id!r})",
            store.get_pending_turn_input(session_id, input_row.input_id),
            input_row,
        )
    if seen.turn_inputs:
        # the first row is not found under session ids sorting before and after its own
        first = seen.turn_inputs[0][0].input_id
        for other in (session_id[:-1], session_id + "~"):
            _agree(
                f"get_pending_turn_input({first!r}) in session {other!r}",
                store.get_pending_turn_input(other, first),
                None,
            )
    else:
        _agree(
            "get_pending_turn_input of an unknown id",
            store.get_pending_turn_input(session_id, ABSENT_INPUT_ID),
            None,
        )
