"""The adapter protocol: replay traces against a port over JSON lines on stdin/stdout.

A port ships an *adapter*: a program that reads one JSON request per line on stdin and
writes exactly one JSON reply per line on stdout (anything else goes to stderr). The
replayer starts it once and sends, per trace, ``reset`` then ``apply``/``observe`` pairs.
docs/adapter-protocol.md is the normative description; in short:

=============================================  ==============================================
request                                        reply
=============================================  ==============================================
``{"op": "hello", "protocol": 2}``             ``{"ok": true, "protocol": 2, "name": "..."}``
``{"op": "reset", "bounds": {...}}``           ``{"ok": true}``
``{"op": "apply", "action": a, "picks": {}}``  ``{"ok": true, "outcome": {"tag": ...}}``
``{"op": "observe"}``                          ``{"ok": true, "state": {var: value, ...}}``
``{"op": "quit"}``                             ``{"ok": true}`` then exit 0
=============================================  ==============================================

Since version 2 ``reset`` also carries ``"system"``: ``"store"`` (the default, what version 1
meant) or ``"machine"`` (docs/machine-traces.md); an adapter that does not serve the system
answers ``unsupported_system``.  A version 1 adapter is still driven, for store traces only.

Values use the ITF encoding of docs/trace-format.md (``#map``, ``#set``, ``#bigint``). A
request the adapter cannot serve gets ``{"ok": false, "error": kind, "message": text}`` with
kind ``unknown_action``, ``bad_params``, ``unsupported_system``, ``bad_request`` or
``internal``; the replayer turns it into a divergence (the first three) or an
:class:`AdapterError`.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, Any, TypeVar

from .itf import (
    JsonLimitError,
    TraceFormatError,
    decode_utf8,
    decode_value,
    encode_record,
    encode_value,
    loads_limited,
)

PROTOCOL_VERSION = 2
#: Versions whose adapters we still drive: a version 1 adapter serves store traces only.
SUPPORTED_PROTOCOL_VERSIONS = (1, 2)
#: Error kinds that refuse one request (the trace diverges) instead of breaking the session.
REFUSAL_KINDS = ("unknown_action", "bad_params", "unsupported_system")

# Limits on what the replayer accepts from an adapter (docs/adapter-protocol.md, "Limits").
# Values inside a reply are held to the trace-file limits of itf.py (integer digits, nesting).
#: Longest reply line, in bytes (an observe reply is about 2 KiB).
MAX_REPLY_LINE_BYTES = 1024 * 1024
#: Seconds an adapter has to exit after replying to ``quit`` before its process group is killed.
EXIT_GRACE_SECONDS = 2.0
#: How much of an offending reply (or an adapter's error message) a report quotes.
REPLY_PREVIEW_CHARS = 200

_READ_CHUNK = 65536
_Result = TypeVar("_Result")


class AdapterError(RuntimeError):
    """The adapter broke the protocol: died, timed out, sent non-JSON or an internal error."""


class AdapterRefused(ValueError):
    """The adapter refused one action (unknown action or bad parameters): a divergence."""

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind
        super().__init__(f"adapter refused ({kind}): {message}")


@dataclass(frozen=True)
class _Overlong:
    """Read instead of a reply line longer than MAX_REPLY_LINE_BYTES."""


class _LineReader:
    """The adapter's stdout split into lines (bytes, newline kept), read when a reply is
    due, in the caller's thread. A reader thread handing lines over through a queue cost
    about 30 µs per reply in thread switches, as much as the rest of a round trip.

    Reads the raw descriptor, not a buffered file, and waits for it with ``selectors``
    (POSIX: pipes cannot be selected on Windows), so a reply can be waited for with a
    timeout and nothing ever blocks in a read.
    """

    def __init__(self, descriptor: int) -> None:
        self._descriptor = descriptor
        self._pending = bytearray()
        self._searched = 0  # no newline in pending[:searched]
        self._ended = False
        self._selector = selectors.DefaultSelector()
        self._selector.register(descriptor, selectors.EVENT_READ)

    def next_line(self, timeout: float) -> bytes | _Overlong | None:
        """The next line, :class:`_Overlong` for one beyond MAX_REPLY_LINE_BYTES, or None
        at end of file (after the unterminated rest, if any); TimeoutError after
        ``timeout`` seconds without a whole line."""
        deadline = time.monotonic() + timeout
        pending = self._pending
        while True:
            end = pending.find(b"\n", self._searched)
            if end >= 0:
                if end + 1 > MAX_REPLY_LINE_BYTES:
                    return _Overlong()
                line = bytes(pending[: end + 1])
                del pending[: end + 1]
                self._searched = 0
                return line
            self._searched = len(pending)
            if len(pending) > MAX_REPLY_LINE_BYTES:
                return _Overlong()
            if self._ended:
                if pending:
                    rest = bytes(pending)
                    pending.clear()
                    self._searched = 0
                    return rest
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._selector.select(remaining):
                raise TimeoutError
            try:
                chunk = os.read(self._descriptor, _READ_CHUNK)
            except OSError:  # the pipe was closed under us: same as end of file
                chunk = b""
            if chunk:
                pending += chunk
            else:
                self._ended = True

    def close(self) -> None:
        self._selector.close()


def _one_line(text: str) -> str:
    """An adapter-supplied text, as one bounded line for a report."""
    flat = " ".join(text.split())
    if len(flat) > REPLY_PREVIEW_CHARS:
        return flat[:REPLY_PREVIEW_CHARS] + "..."
    return flat


def _quote(line: bytes) -> str:
    return repr(line.strip()[:REPLY_PREVIEW_CHARS].decode("utf-8", "replace"))


def _no_check(reply: dict[str, Any]) -> dict[str, Any]:
    return reply


class AdapterClient:
    """A :class:`~lashspec.conformance.replay.ReplayTarget` backed by an adapter process.

    The adapter runs in its own session (process group): when the client is done with it,
    or the adapter breaks the protocol, the whole group is killed, so a child the adapter
    left behind cannot keep the session alive by holding its stdout open.
    """

    def __init__(self, command: str, *, timeout: float = 10.0) -> None:
        if not command.strip():
            raise AdapterError("the adapter command is empty")
        self.command = command
        self.timeout = timeout
        try:
            self._process = subprocess.Popen(
                shlex.split(command),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                start_new_session=True,
            )
        except (OSError, ValueError) as error:
            raise AdapterError(f"cannot start adapter {command!r}: {error}") from None
        assert self._process.stdout is not None
        self._lines = _LineReader(self._process.stdout.fileno())
        self._ended = False  # the adapter closed its stdout
        self._closed = False
        self._failure: AdapterError | None = None  # once broken, every later request fails
        try:
            hello = self._request({"op": "hello", "protocol": PROTOCOL_VERSION}, _no_check)
            if hello.get("protocol") not in SUPPORTED_PROTOCOL_VERSIONS:
                raise AdapterError(
                    f"adapter speaks protocol {_one_line(repr(hello.get('protocol')))}, "
                    f"we speak {PROTOCOL_VERSION}"
                )
        except AdapterError:
            self.close()
            raise
        #: the version the adapter speaks (1: store traces only)
        self.protocol: int = hello["protocol"]
        self.name = _one_line(str(hello.get("name", command)))

    def _request(
        self, message: Mapping[str, Any], interpret: Callable[[dict[str, Any]], _Result]
    ) -> _Result:
        """Send ``message`` and check its reply with ``interpret``; a protocol failure marks
        the client failed and kills the adapter at once (nothing it says is read any more)."""
        if self._failure is not None:
            raise AdapterError(f"adapter already failed: {self._failure}")
        try:
            return interpret(self._exchange(message))
        except AdapterError as error:
            self._failure = error
            self._kill_group()
            raise

    def _exchange(self, message: Mapping[str, Any]) -> dict[str, Any]:
        op = message.get("op")
        stdin = self._process.stdin
        assert stdin is not None
        try:
            stdin.write((json.dumps(message, sort_keys=True) + "\n").encode("utf-8"))
            stdin.flush()
        except (BrokenPipeError, OSError):
            raise AdapterError(self._died(f"while sending {op}")) from None
        try:
            line = self._lines.next_line(self.timeout)
        except TimeoutError:
            raise AdapterError(f"adapter gave no reply to {op} within {self.timeout:g}s") from None
        if line is None:
            self._ended = True
            raise AdapterError(self._died(f"before replying to {op}"))
        if isinstance(line, _Overlong):
            raise AdapterError(
                f"adapter reply to {op} is longer than {MAX_REPLY_LINE_BYTES} bytes "
                "(MAX_REPLY_LINE_BYTES)"
            )
        try:
            reply = loads_limited(decode_utf8(line))
        except json.JSONDecodeError:
            raise AdapterError(f"adapter replied with non-JSON: {_quote(line)}") from None
        except (JsonLimitError, ValueError) as error:
            raise AdapterError(f"adapter reply to {op}: {error}") from None
        if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
            raise AdapterError(f"adapter reply lacks a boolean 'ok': {_quote(line)}")
        if not reply["ok"]:
            kind = _one_line(str(reply.get("error", "internal")))
            text = reply.get("message", "")
            text = _one_line(text if isinstance(text, str) else repr(text))
            if kind in REFUSAL_KINDS:
                # A refusal is an answer, not a broken adapter: AdapterRefused is not an
                # AdapterError, so _request does not mark the client failed.
                raise AdapterRefused(kind, text)
            raise AdapterError(f"adapter error ({kind}) on {op}: {text}")
        return reply

    def _died(self, when: str) -> str:
        try:  # its stdout closed first; give the process a moment to report its status
            code: int | None = self._process.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            code = None
        status = "still running" if code is None else f"status {code}"
        return f"adapter exited ({status}) {when}"

    def _kill_group(self) -> None:
        # The group outlives its leader while a child the adapter started is still running.
        # (Once every member is gone the id is free again, but ids are not reused that fast.)
        if hasattr(os, "killpg"):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._process.pid, signal.SIGKILL)
        else:  # pragma: no cover - no process groups on this platform
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()

    def reset(self, bounds: Mapping[str, int]) -> None:
        self.reset_system(bounds, "store")

    def reset_system(self, bounds: Mapping[str, int], system: str) -> None:
        """Reset for a trace of ``system`` (docs/machine-traces.md); refused by an adapter
        that does not serve it, and by a version 1 adapter for anything but store traces."""
        if self.protocol < 2:
            if system != "store":
                raise AdapterRefused(
                    "unsupported_system",
                    f"the adapter speaks protocol {self.protocol}, which has no {system} traces",
                )
            self._request({"op": "reset", "bounds": dict(bounds)}, _no_check)
            return
        self._request({"op": "reset", "bounds": dict(bounds), "system": system}, _no_check)

    def apply(self, action: str, picks: Mapping[str, Any]) -> dict[str, Any]:
        def outcome_of(reply: dict[str, Any]) -> dict[str, Any]:
            outcome = reply.get("outcome")
            if not isinstance(outcome, dict) or not isinstance(outcome.get("tag"), str):
                raise AdapterError(f"apply {action}: reply lacks an outcome record with a 'tag'")
            try:
                decoded = decode_value(outcome, "<adapter>")
            except TraceFormatError as error:
                raise AdapterError(f"adapter reply to apply: outcome: {error.detail}") from None
            assert isinstance(decoded, dict)
            return decoded

        encoded = {k: encode_value(v) for k, v in picks.items()}
        return self._request({"op": "apply", "action": action, "picks": encoded}, outcome_of)

    def observe(self) -> dict[str, Any]:
        return self._request({"op": "observe"}, _state_of)

    def close(self) -> None:
        """End the session: ``quit``, a short wait for the adapter to exit, then kill its
        process group. A failed adapter was killed already; nothing waits for end of file."""
        if self._closed:
            return
        self._closed = True
        if self._process.poll() is None and not self._ended and self._failure is None:
            with contextlib.suppress(AdapterError):
                self._request({"op": "quit"}, _no_check)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=EXIT_GRACE_SECONDS)
        self._kill_group()
        self._process.wait()
        if self._process.stdin is not None:
            with contextlib.suppress(OSError):
                self._process.stdin.close()
        # Nothing reads the pipe any more: close it even if a descendant that left the group
        # still holds the other end.
        self._lines.close()
        if self._process.stdout is not None:
            self._process.stdout.close()


def _state_of(reply: dict[str, Any]) -> dict[str, Any]:
    state = reply.get("state")
    if not isinstance(state, dict):
        raise AdapterError("observe: reply lacks a 'state' object")
    try:
        return {name: decode_value(value, "<adapter>") for name, value in state.items()}
    except TraceFormatError as error:
        raise AdapterError(f"adapter reply to observe: state: {error.detail}") from None


def serve(target: Any, name: str, stdin: IO[str], stdout: IO[str]) -> int:
    """Serve the protocol for ``target`` (a ReplayTarget) until ``quit`` or end of input."""
    from .kernel_adapter import BadActionParams, UnknownAction
    from .machine_adapter import UnsupportedSystem

    def reply(message: Mapping[str, Any]) -> None:
        stdout.write(json.dumps(message, sort_keys=True) + "\n")
        stdout.flush()

    def fail(kind: str, message: str) -> None:
        reply({"ok": False, "error": kind, "message": message})

    for line in stdin:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
        except json.JSONDecodeError as error:
            fail("bad_request", f"not JSON: {error}")
            continue
        op = request.get("op") if isinstance(request, dict) else None
        try:
            if op == "hello":
                reply({"ok": True, "protocol": PROTOCOL_VERSION, "name": name})
            elif op == "reset":
                bounds = request.get("bounds", {})
                if not isinstance(bounds, dict):
                    fail("bad_request", "'bounds' must be an object")
                    continue
                system = request.get("system", "store")
                if not isinstance(system, str):
                    fail("bad_request", "'system' must be a string")
                    continue
                if hasattr(target, "reset_system"):
                    target.reset_system(bounds, system)
                elif system == "store":
                    target.reset(bounds)
                else:
                    fail("unsupported_system", f"this adapter serves store traces, not {system!r}")
                    continue
                reply({"ok": True})
            elif op == "apply":
                action, picks = request.get("action"), request.get("picks", {})
                if not isinstance(action, str) or not isinstance(picks, dict):
                    fail("bad_request", "apply needs a string 'action' and an object 'picks'")
                    continue
                decoded = {k: decode_value(v, "<request>") for k, v in picks.items()}
                outcome = target.apply(action, decoded)
                reply({"ok": True, "outcome": encode_record(outcome)})
            elif op == "observe":
                state = target.observe()
                reply({"ok": True, "state": {k: encode_value(v) for k, v in state.items()}})
            elif op == "quit":
                reply({"ok": True})
                return 0
            else:
                fail("bad_request", f"unknown op {op!r}; expected hello/reset/apply/observe/quit")
        except UnsupportedSystem as error:
            fail("unsupported_system", str(error))
        except UnknownAction as error:
            fail("unknown_action", str(error))
        except BadActionParams as error:
            fail("bad_params", str(error))
        except Exception as error:  # an adapter must answer, whatever went wrong
            fail("internal", f"{type(error).__name__}: {error}")
    return 0
