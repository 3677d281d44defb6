"""Why the app speaks native protocol v4 to Cassandra.

Protocol v5 wraps frames in checksummed segments with a 6-byte header. The driver's
reader (scylla-driver 3.29) throws away the bytes of a segment header that a socket
read cut in two, reads the next bytes as a header and closes the connection with
"CRC mismatch on header"; under load this happened in the suite and every query of
the process then failed with NoHostAvailable until the driver reconnected. Protocol v4
has no segments. The first test feeds the driver's own reader two reads of two
segments; once it passes on a newer driver, v5 can come back.
"""

from __future__ import annotations

import io
import struct

from cassandra import ProtocolVersion
from cassandra.connection import Connection, _ConnectionIOBuffer
from cassandra.segment import SegmentCodec
from django.conf import settings

VOID_RESULT = b"\x00\x00\x00\x01"


class _Reader(Connection):
    """The driver's connection with its socket left out: only its reading of bytes."""

    def __init__(self) -> None:
        self.endpoint = "no socket"
        self.is_defunct = False
        self._is_checksumming_enabled = True
        self._segment_codec = SegmentCodec()
        self._current_frame = None
        self._io_buffer = _ConnectionIOBuffer(self)
        self._io_buffer.set_checksumming_buffer()
        self.streams: list[int] = []
        self.error: Exception | None = None

    def process_msg(self, header, body) -> None:
        self.streams.append(header.stream)

    def defunct(self, exc: Exception) -> None:
        self.error = exc
        self.is_defunct = True

    def receive(self, data: bytes) -> None:
        self._io_buffer.io_buffer.write(data)
        self.process_io_buffer()


def _segments(*streams: int) -> bytes:
    wire = io.BytesIO()
    for stream in streams:
        frame = struct.pack(">BBhBi", 0x85, 0, stream, 0x08, len(VOID_RESULT)) + VOID_RESULT
        SegmentCodec().encode(wire, frame)
    return wire.getvalue()


def _read_in_two(data: bytes, cut: int) -> _Reader:
    reader = _Reader()
    reader.receive(data[:cut])
    reader.receive(data[cut:])
    return reader


def test_the_drivers_v5_reader_fails_on_a_segment_header_split_between_reads():
    data = _segments(1, 2)
    second_segment = len(data) // 2
    whole = _read_in_two(data, second_segment + 8)  # the cut falls after the header
    assert whole.streams == [1, 2] and whole.error is None

    split = _read_in_two(data, second_segment + 3)  # the cut falls inside the header
    assert split.streams == [1]
    assert "CRC mismatch on header" in str(split.error)


def test_the_app_uses_a_protocol_without_segments():
    version = settings.DATABASES["cassandra"]["OPTIONS"]["connection"]["protocol_version"]
    assert not ProtocolVersion.has_checksumming_support(version)
