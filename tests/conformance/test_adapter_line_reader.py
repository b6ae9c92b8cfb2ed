"""The adapter client reads reply lines itself, without a reader thread
(``protocol._LineReader``): lines cut anywhere by the pipe come out whole and in order, the
unterminated rest before end of file is a line of its own, an overlong line is refused
before all of it is read, and a missing reply is a timeout, never a hang."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

import pytest
from lashspec.conformance import protocol
from lashspec.conformance.protocol import _LineReader, _Overlong


@pytest.fixture
def pipe() -> Iterator[tuple[_LineReader, int]]:
    read_end, write_end = os.pipe()
    reader = _LineReader(read_end)
    yield reader, write_end
    reader.close()
    os.close(read_end)
    with contextlib.suppress(OSError):  # the test may have closed it already
        os.close(write_end)


def test_lines_cut_anywhere_come_out_whole(pipe: tuple[_LineReader, int]) -> None:
    reader, write_end = pipe
    for chunk in (b'{"ok": tr', b'ue}\n{"ok"', b": false}\n", b"\n"):
        os.write(write_end, chunk)
    assert reader.next_line(5) == b'{"ok": true}\n'
    assert reader.next_line(5) == b'{"ok": false}\n'
    assert reader.next_line(5) == b"\n"
    os.write(write_end, b"tail without newline")
    os.close(write_end)
    assert reader.next_line(5) == b"tail without newline"
    assert reader.next_line(5) is None
    assert reader.next_line(5) is None


def test_a_line_written_later_is_waited_for(pipe: tuple[_LineReader, int]) -> None:
    reader, write_end = pipe
    writer = threading.Timer(0.2, os.write, (write_end, b"late\n"))
    writer.start()
    assert reader.next_line(30) == b"late\n"
    writer.join()
    os.close(write_end)


def test_no_line_within_the_timeout_raises(pipe: tuple[_LineReader, int]) -> None:
    reader, write_end = pipe
    os.write(write_end, b"half a line")
    with pytest.raises(TimeoutError):
        reader.next_line(0.2)
    os.close(write_end)


@pytest.mark.parametrize("terminated", [True, False])
def test_an_overlong_line_is_refused(
    pipe: tuple[_LineReader, int], monkeypatch: pytest.MonkeyPatch, terminated: bool
) -> None:
    monkeypatch.setattr(protocol, "MAX_REPLY_LINE_BYTES", 100)
    reader, write_end = pipe
    os.write(write_end, b"short\n" + b"x" * 150 + (b"\n" if terminated else b""))
    assert reader.next_line(5) == b"short\n"
    assert isinstance(reader.next_line(5), _Overlong)
    os.close(write_end)


def test_a_line_of_exactly_the_limit_is_read(
    pipe: tuple[_LineReader, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(protocol, "MAX_REPLY_LINE_BYTES", 100)
    reader, write_end = pipe
    os.write(write_end, b"y" * 99 + b"\n")
    assert reader.next_line(5) == b"y" * 99 + b"\n"
    os.close(write_end)
