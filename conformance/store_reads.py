"""The store port's other read calls must agree with ``inspect_session``.

The trace state is projected from one :meth:`~lashspec.kernel.store.Store.inspect_session`
read (one transaction per step).  The port has more read calls, which a host uses and no
trace action makes: the lease reads (``load_session_execution_lease``,
``session_fencing_token``), the inspection's parts (``inspect_lease_row``,
``inspect_queued_work``, ``inspect_turn_inputs``), the listings (``list_queued_work``,
``list_pending_queued_work``, ``list_pending_turn_inputs``) and the single-row read
``get_pending_turn_input``.  After every
step :func:`check_store_reads` reads the same session through each of them and compares the
answers with the inspection's (what each call returns follows from the rows: the live lease
is the lease row while its token is set and it has not expired; the fencing token is the
row's, 0 without a row; a listing leaves out rows under a live claim, and inputs that are not
pending; a row is found by its id within its session only; a released lease row, which has
no holder, keeps no lease times: lash's release sets ``claimed_at``/``expires_at`` to 0 in
every store).  A disagreement
raises :class:`StoreReadsDisagree`, which a replay reports as an error at that step.  So these
reads are checked in every state the suite reaches, without trace actions of their own.
With the cross-check on, the adapter also checks the transaction kind of every store call it
makes (``store_transactions.py``: a read takes no write lock).
"""

from __future__ import annotations

from typing import Any

from ..kernel.store import Store
from ..kernel.types import (
    ClaimColumns,
    LeaseRow,
    SessionExecutionLease,
    SessionInspection,
    TurnInputState,
)

#: Input states a row is pending in (lash: the row can still be claimed or cancelled).
PENDING_STATES = frozenset({TurnInputState.PENDING_ACTIVE, TurnInputState.DEFERRED_NEXT_TURN})

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


def _claim_live(columns: ClaimColumns, row: LeaseRow | None, now_ms: int) -> bool:
    """A claim is live while its lease generation is the session's live lease generation."""
    return (
        columns.is_claimed
        and row is not None
        and row.is_live(now_ms)
        and row.fencing_token == columns.claim_session_lease_generation
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
    # the inspection's parts, each on its own
    _agree("inspect_lease_row", store.inspect_lease_row(session_id), row)
    if row is not None and row.owner is None:
        _agree(
            "inspect_lease_row's lease times of a released row",
            (row.claimed_at_ms, row.expires_at_ms),
            (0, 0),
        )
    _agree("inspect_queued_work", store.inspect_queued_work(session_id), list(seen.queued_work))
    _agree("inspect_turn_inputs", store.inspect_turn_inputs(session_id), list(seen.turn_inputs))
    _agree("list_queued_work", store.list_queued_work(session_id), [b for b, _ in seen.queued_work])
    _agree("session_fencing_token", store.session_fencing_token(session_id), token)
    _agree(
        "load_session_execution_lease",
        store.load_session_execution_lease(session_id),
        _expected_lease(row, now_ms),
    )
    _agree(
        "list_pending_queued_work",
        store.list_pending_queued_work(session_id),
        [b for b, c in seen.queued_work if not _claim_live(c, row, now_ms)],
    )
    _agree(
        "list_pending_turn_inputs",
        store.list_pending_turn_inputs(session_id),
        [
            r
            for r, c in seen.turn_inputs
            if r.state in PENDING_STATES and not _claim_live(c, row, now_ms)
        ],
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
