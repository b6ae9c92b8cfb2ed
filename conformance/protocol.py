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
import shlex
import subprocess
import threading
from collections.abc import Mapping
from queue import Empty, Queue
from typing import IO, Any

from .itf import decode_value, encode_record, encode_value

PROTOCOL_VERSION = 2
#: Versions whose adapters we still drive: a version 1 adapter serves store traces only.
SUPPORTED_PROTOCOL_VERSIONS = (1, 2)
#: Error kinds that refuse one request (the trace diverges) instead of breaking the session.
REFUSAL_KINDS = ("unknown_action", "bad_params", "unsupported_system")


class AdapterError(RuntimeError):
    """The adapter broke the protocol: died, timed out, sent non-JSON or an internal error."""


class AdapterRefused(ValueError):
    """The adapter refused one action (unknown action or bad parameters): a divergence."""

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind
        super().__init__(f"adapter refused ({kind}): {message}")


def _reader(stream: IO[str], lines: Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


class AdapterClient:
    """A :class:`~lashspec.conformance.replay.ReplayTarget` backed by an adapter process."""

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
                text=True,
                encoding="utf-8",
                bufsize=1,
            )
        except OSError as error:
            raise AdapterError(f"cannot start adapter {command!r}: {error}") from None
        assert self._process.stdout is not None
        self._lines: Queue[str | None] = Queue()
        self._ended = False  # the adapter closed its stdout
        self._failure: AdapterError | None = None  # once broken, every later request fails
        threading.Thread(
            target=_reader, args=(self._process.stdout, self._lines), daemon=True
        ).start()
        try:
            hello = self._request({"op": "hello", "protocol": PROTOCOL_VERSION})
            if hello.get("protocol") not in SUPPORTED_PROTOCOL_VERSIONS:
                raise AdapterError(
                    f"adapter speaks protocol {hello.get('protocol')!r}, "
                    f"we speak {PROTOCOL_VERSION}"
                )
        except AdapterError:
            self.close()
            raise
        #: the version the adapter speaks (1: store traces only)
        self.protocol: int = hello["protocol"]
        self.name = str(hello.get("name", command))

    def _request(self, message: Mapping[str, Any]) -> dict[str, Any]:
        if self._failure is not None:
            raise AdapterError(f"adapter already failed: {self._failure}")
        try:
            return self._exchange(message)
        except AdapterError as error:
            self._failure = error
            raise

    def _exchange(self, message: Mapping[str, Any]) -> dict[str, Any]:
        stdin = self._process.stdin
        assert stdin is not None
        try:
            stdin.write(json.dumps(message, sort_keys=True) + "\n")
            stdin.flush()
        except (BrokenPipeError, OSError):
            raise AdapterError(self._died(f"while sending {message.get('op')}")) from None
        try:
            line = self._lines.get(timeout=self.timeout)
        except Empty:
            raise AdapterError(
                f"adapter gave no reply to {message.get('op')} within {self.timeout:g}s"
            ) from None
        if line is None:
            self._ended = True
            raise AdapterError(self._died(f"before replying to {message.get('op')}"))
        try:
            reply = json.loads(line)
        except json.JSONDecodeError:
            raise AdapterError(f"adapter replied with non-JSON: {line.strip()[:200]!r}") from None
        if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
            raise AdapterError(f"adapter reply lacks a boolean 'ok': {line.strip()[:200]!r}")
        if not reply["ok"]:
            kind = str(reply.get("error", "internal"))
            text = str(reply.get("message", ""))
            if kind in REFUSAL_KINDS:
                # A refusal is an answer, not a broken adapter: AdapterRefused is not an
                # AdapterError, so _request does not mark the client failed.
                raise AdapterRefused(kind, text)
            raise AdapterError(f"adapter error ({kind}) on {message.get('op')}: {text}")
        return reply

    def _died(self, when: str) -> str:
        try:  # its stdout closed first; give the process a moment to report its status
            code: int | None = self._process.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            code = None
        status = "still running" if code is None else f"status {code}"
        return f"adapter exited ({status}) {when}"

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
            self._request({"op": "reset", "bounds": dict(bounds)})
            return
        self._request({"op": "reset", "bounds": dict(bounds), "system": system})

    def apply(self, action: str, picks: Mapping[str, Any]) -> dict[str, Any]:
        encoded = {k: encode_value(v) for k, v in picks.items()}
        reply = self._request({"op": "apply", "action": action, "picks": encoded})
        outcome = reply.get("outcome")
        if not isinstance(outcome, dict) or not isinstance(outcome.get("tag"), str):
            raise AdapterError(f"apply {action}: reply lacks an outcome record with a 'tag'")
        decoded = decode_value(outcome, "<adapter>")
        assert isinstance(decoded, dict)
        return decoded

    def observe(self) -> dict[str, Any]:
        reply = self._request({"op": "observe"})
        state = reply.get("state")
        if not isinstance(state, dict):
            raise AdapterError("observe: reply lacks a 'state' object")
        return {name: decode_value(value, "<adapter>") for name, value in state.items()}

    def close(self) -> None:
        if self._process.poll() is None:
            if not self._ended and self._failure is None:
                with contextlib.suppress(AdapterError):
                    self._request({"op": "quit"})
            try:
                self._process.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        for stream in (self._process.stdin, self._process.stdout):
            if stream is not None:
                stream.close()


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
