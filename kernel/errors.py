"""Typed errors of the kernel.

Every rejection the store or the turn machine can produce is a subclass of
:class:`KernelError`.  Store errors mirror lash-core's ``StoreError`` variants one to
one (same names, same fields) so that a port can map them by name; conformance traces
encode an error as its class name plus its fields (see ``docs/trace-format.md``).

Messages always say what was wrong and with which ids, so a failing test or a user at a
terminal can act on them without reading the source.
"""

from __future__ import annotations

from typing import Any


class KernelError(Exception):
    """Base class of every error raised by lashspec.kernel."""

    #: the variant name used in traces and adapter replies
    kind: str = "KernelError"

    def fields(self) -> dict[str, Any]:
        """The error's structured fields, as encoded in conformance traces."""
        return {}


class StoreError(KernelError):
    """An operation of the store was rejected; nothing it would have written is visible."""

    kind = "StoreError"


class SessionExecutionLeaseExpired(StoreError):
    """The presented fence is not the session's live lease (released, expired, stale, absent)."""

    kind = "SessionExecutionLeaseExpired"

    def __init__(self, session_id: str, reason: str) -> None:
        self.session_id = session_id
        self.reason = reason
        super().__init__(
            f"session execution lease for session {session_id!r} is not held by the caller: "
            f"{reason}"
        )

    def fields(self) -> dict[str, Any]:
        return {"session_id": self.session_id}


class SessionBindingMismatch(StoreError):
    """The store is bound to another session, or an outbox draft targets another session."""

    kind = "SessionBindingMismatch"

    def __init__(self, bound_session_id: str, attempted_session_id: str) -> None:
        self.bound_session_id = bound_session_id
        self.attempted_session_id = attempted_session_id
        super().__init__(
            f"store is bound to session {bound_session_id!r}; "
            f"a write for session {attempted_session_id!r} was rejected"
        )

    def fields(self) -> dict[str, Any]:
        return {
            "bound_session_id": self.bound_session_id,
            "attempted_session_id": self.attempted_session_id,
        }


class HeadRevisionConflict(StoreError):
    """``expected_head_revision`` did not match the current head revision."""

    kind = "HeadRevisionConflict"

    def __init__(self, expected: int, actual: int) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(f"expected head revision {expected}, but the head is at {actual}")

    def fields(self) -> dict[str, Any]:
        return {"expected": self.expected, "actual": self.actual}


class RuntimeTurnCommitConflict(StoreError):
    """A turn commit stamp conflicts with the commit or with an already recorded turn."""

    kind = "RuntimeTurnCommitConflict"

    def __init__(self, session_id: str, turn_id: str, reason: str) -> None:
        self.session_id = session_id
        self.turn_id = turn_id
        self.reason = reason
        super().__init__(f"turn {turn_id!r} of session {session_id!r} conflicts: {reason}")

    def fields(self) -> dict[str, Any]:
        return {"session_id": self.session_id, "turn_id": self.turn_id}


class QueuedWorkClaimSuperseded(StoreError):
    """A queued-work completion no longer owns exactly the rows it names."""

    kind = "QueuedWorkClaimSuperseded"

    def __init__(self, session_id: str, claim_id: str, reason: str) -> None:
        self.session_id = session_id
        self.claim_id = claim_id
        self.reason = reason
        super().__init__(
            f"queued-work claim {claim_id!r} of session {session_id!r} is superseded: {reason}"
        )

    def fields(self) -> dict[str, Any]:
        return {"session_id": self.session_id, "claim_id": self.claim_id}


class TurnInputClaimSuperseded(StoreError):
    """A turn-input completion no longer owns exactly the rows it names."""

    kind = "TurnInputClaimSuperseded"

    def __init__(self, session_id: str, claim_id: str, reason: str) -> None:
        self.session_id = session_id
        self.claim_id = claim_id
        self.reason = reason
        super().__init__(
            f"turn-input claim {claim_id!r} of session {session_id!r} is superseded: {reason}"
        )

    def fields(self) -> dict[str, Any]:
        return {"session_id": self.session_id, "claim_id": self.claim_id}


class UnsettledQueuedWorkClaim(StoreError):
    """A turn's originating queued-work claim is missing from its final commit."""

    kind = "UnsettledQueuedWorkClaim"

    def __init__(self, session_id: str, claim_id: str) -> None:
        self.session_id = session_id
        self.claim_id = claim_id
        super().__init__(
            f"queued-work claim {claim_id!r} of session {session_id!r} is not settled by the commit"
        )

    def fields(self) -> dict[str, Any]:
        return {"session_id": self.session_id, "claim_id": self.claim_id}


class UnsettledTurnInputClaim(StoreError):
    """A turn's originating turn-input claim is missing from its final commit."""

    kind = "UnsettledTurnInputClaim"

    def __init__(self, session_id: str, claim_id: str) -> None:
        self.session_id = session_id
        self.claim_id = claim_id
        super().__init__(
            f"turn-input claim {claim_id!r} of session {session_id!r} is not settled by the commit"
        )

    def fields(self) -> dict[str, Any]:
        return {"session_id": self.session_id, "claim_id": self.claim_id}


class PendingTurnInputSourceKeyConflict(StoreError):
    """A source key is already used by an input with different ingress or content."""

    kind = "PendingTurnInputSourceKeyConflict"

    def __init__(self, session_id: str, source_key: str, existing_input_id: str) -> None:
        self.session_id = session_id
        self.source_key = source_key
        self.existing_input_id = existing_input_id
        super().__init__(
            f"source key {source_key!r} of session {session_id!r} already names input "
            f"{existing_input_id!r} with different ingress or content"
        )

    def fields(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "source_key": self.source_key,
            "existing_input_id": self.existing_input_id,
        }


class SchemaVersionMismatch(StoreError):
    """A durable store file was written by an incompatible schema version."""

    kind = "SchemaVersionMismatch"

    def __init__(
        self,
        path: str,
        actual: int | None,
        expected: int,
        *,
        store: str = "store file",
        advice: str = "delete the file and recreate the store",
    ) -> None:
        self.path = path
        self.actual = actual
        self.expected = expected
        found = "no schema version" if actual is None else f"schema version {actual}"
        super().__init__(
            f"{store} {path!r} has {found}, this lashspec needs version {expected}; {advice}"
        )

    def fields(self) -> dict[str, Any]:
        return {"path": self.path, "actual": self.actual, "expected": self.expected}


class InvalidRequest(StoreError):
    """A malformed argument: empty ids, a batch with mixed or no payload classes, bad sizes.

    A deliberate difference from lash, which has no such error: it accepts blank session,
    turn and input ids and stores them as given, accepts empty or mixed drafts at enqueue
    (a later claim scan then fails with ``Backend``), and cannot express a negative size
    (``usize``).  We refuse these calls up front, before any transaction, so a caller's bug
    surfaces where it is made instead of as rows no runtime can address; a bad call is kept
    apart from an I/O fault (:class:`BackendFailure`).
    """

    kind = "InvalidRequest"

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)

    def fields(self) -> dict[str, Any]:
        return {"message": self.message}


class BackendFailure(StoreError):
    """The backing storage failed (I/O, corrupt row, unknown wire string)."""

    kind = "Backend"

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)

    def fields(self) -> dict[str, Any]:
        return {"message": self.message}


class StoreFileError(BackendFailure):
    """The store's file cannot be used as it is (read-only, foreign, not SQLite, corrupt,
    disk full, ...).  ``cause`` is a short stable code; the message names the path, the
    cause and what to do.  Traces still see it as ``Backend`` (lash has no finer variant)."""

    #: worth retrying the same call unchanged later (only lock timeouts are)
    retryable: bool = False

    def __init__(self, path: str, cause: str, detail: str, advice: str) -> None:
        self.path = path
        self.cause = cause
        self.detail = detail
        self.advice = advice
        super().__init__(f"store file {path!r}: {detail}; {advice}")


class StoreBusy(StoreFileError):
    """Another connection held the file's write lock for longer than the configured wait."""

    retryable = True

    def __init__(self, path: str, waited_ms: int) -> None:
        self.waited_ms = waited_ms
        super().__init__(
            path,
            "busy",
            f"another connection held the write lock for the whole {waited_ms} ms wait",
            "retry the call later, or open the store with a longer busy_timeout_ms",
        )


class StoreServerError(BackendFailure):
    """The PostgreSQL server cannot serve the store as asked (unreachable, refused login,
    missing privilege, foreign schema, disk full, connection lost...).  ``cause`` is a short
    stable code; the message names the server (never its password), the cause and what to
    do.  Traces still see it as ``Backend`` (lash has no finer variant)."""

    def __init__(
        self, server: str, cause: str, detail: str, advice: str, retryable: bool = False
    ) -> None:
        self.server = server
        self.cause = cause
        self.detail = detail
        self.advice = advice
        #: worth retrying the same call unchanged later
        self.retryable = retryable
        super().__init__(f"postgres store {server}: {detail}; {advice}")


class StoreServerBusy(StoreServerError):
    """Another connection held the store's write lock for longer than the configured wait."""

    def __init__(self, server: str, waited_ms: int) -> None:
        self.waited_ms = waited_ms
        super().__init__(
            server,
            "busy",
            f"another connection held the store's write lock for the whole {waited_ms} ms "
            "wait; nothing of this operation was committed",
            "retry the call later, or open the store with a longer lock_timeout_ms",
            retryable=True,
        )


class LeaseTimingsError(KernelError):
    """Invalid ``LeaseTimings``: ttl and renew interval must be >= 1 ms and ttl >= 3 x renew."""

    kind = "LeaseTimingsError"

    def __init__(self, variant: str, message: str) -> None:
        self.variant = variant
        super().__init__(message)

    def fields(self) -> dict[str, Any]:
        return {"variant": self.variant}


class MachineLimitsError(KernelError, ValueError):
    """Invalid turn-machine claim limits: ``max_inputs`` and ``max_batches`` must be >= 1
    (a claim that may take nothing would never make progress)."""

    kind = "MachineLimitsError"

    def __init__(self, variant: str, message: str) -> None:
        self.variant = variant
        super().__init__(message)

    def fields(self) -> dict[str, Any]:
        return {"variant": self.variant}


class TurnMachineError(KernelError):
    """The sans-IO turn machine received an event it cannot accept in its current state."""

    kind = "TurnMachineError"

    def __init__(self, state: str, event: str, reason: str) -> None:
        self.state = state
        self.event = event
        super().__init__(f"turn machine in state {state!r} cannot accept {event!r}: {reason}")

    def fields(self) -> dict[str, Any]:
        return {"state": self.state, "event": self.event}
