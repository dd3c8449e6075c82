"""Cutting an envelope and its buffers into serialized frames, and reassembling them.

A message (``BatchRequest`` or ``BatchResponse``) is serialized and cut into envelope frames;
the buffers it references follow as chunk frames of at most ``CHUNK_BYTES``. The receiver
allocates every buffer once from the sizes in the envelope and copies each chunk straight into
place, so a 300 MB array costs one allocation and no concatenation.

Chunk frames are written and read by hand (``_chunk_frame_parts``, ``_read_chunk``): they are plain
protobuf ``Frame{chunk: Chunk{buffer, offset, data}}`` on the wire, but protobuf's Python
serializer copies every megabyte several times and ran at 0.2 GB/s here. Anything the fast reader
does not recognise goes through the protobuf parser, which validates it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

import numpy as np
from google.protobuf.message import DecodeError, Message

from fedla.runtime.errors import MalformedRequestError, ResourceLimitError
from fedla.runtime.protocol import fedla_pb2 as pb

CHUNK_BYTES = 1024 * 1024
"""Largest payload of one frame; 1 MiB streamed fastest through gRPC on loopback here."""

UNARY_BYTES = 4 * CHUNK_BYTES
"""Messages whose frames total at most this many bytes travel in one unary ``Call``."""

MAX_FRAME_BYTES = UNARY_BYTES + 64 * 1024
"""gRPC message limit of fedla endpoints: the largest unary frame, with room for framing."""

GRPC_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_FRAME_BYTES),
    ("grpc.max_send_message_length", MAX_FRAME_BYTES),
]
"""Channel/server options every fedla endpoint uses."""

M = TypeVar(
    "M", pb.BatchRequest, pb.BatchResponse, pb.FetchRequest, pb.StatusRequest, pb.WorkerStatus
)

_FRAMES_ITEM_TAG = 0x0A  # Frames.frames: field 1, length-delimited
_FRAME_CHUNK_TAG = 0x12  # field 2 (chunk), wire type 2 (length-delimited)
_CHUNK_BUFFER_TAG = 0x08  # field 1, varint
_CHUNK_OFFSET_TAG = 0x10  # field 2, varint
_CHUNK_DATA_TAG = 0x1A  # field 3, length-delimited
_FRAME_ENVELOPE_TAG = 0x0A  # Frame.envelope: field 1, length-delimited
_BATCH_TENANT_TAG = 0x0A  # BatchRequest.tenant: field 1, length-delimited


def message_size(envelope: Message, buffers: list[memoryview]) -> int:
    """Bytes of payload a message carries: its serialized envelope plus its buffers."""
    return envelope.ByteSize() + sum(len(buffer) for buffer in buffers)


def pack_message(envelope: Message, buffers: list[memoryview]) -> bytes:
    """All frames of a message as one serialized ``Frames`` (for ``Call``), in a single copy."""
    parts: list[bytes | memoryview] = []
    for frame in _frame_parts(envelope, buffers):
        parts += (bytes((_FRAMES_ITEM_TAG,)), _varint(sum(len(p) for p in frame)), *frame)
    return b"".join(parts)


def unpack_frames(raw: bytes) -> list[memoryview]:
    """Split a serialized ``Frames`` message into its frames without copying them."""
    view = memoryview(raw)
    frames = []
    pos = 0
    try:
        while pos < len(view):
            if view[pos] != _FRAMES_ITEM_TAG:
                raise ValueError(f"unexpected tag {view[pos]}")
            size, pos = _read_varint(view, pos + 1)
            if pos + size > len(view):
                raise ValueError("a frame runs past the end of the message")
            frames.append(view[pos : pos + size])
            pos += size
    except (ValueError, IndexError) as exc:
        raise MalformedRequestError(
            f"message ({len(raw)} bytes) is not a list of frames: {exc}"
        ) from None
    return frames


def leading_tenant(frame: bytes | memoryview) -> str | None:
    """The tenant named at the start of a ``BatchRequest``'s first envelope frame, if any.

    Serializers write ``tenant`` (field 1) first, so a worker knows a stream's tenant from its
    first frame, before the rest of a long envelope arrives. None when the frame does not begin
    with a whole tenant field; the tenant is then known once the envelope is complete.
    """
    view = memoryview(frame)
    try:
        if view[0] != _FRAME_ENVELOPE_TAG:
            return None
        _, pos = _read_varint(view, 1)
        if view[pos] != _BATCH_TENANT_TAG:
            return None
        size, pos = _read_varint(view, pos + 1)
        if pos + size > len(view):
            return None
        return bytes(view[pos : pos + size]).decode("utf-8")
    except (ValueError, IndexError, UnicodeDecodeError):
        return None


def to_frames(envelope: Message, buffers: list[memoryview]) -> Iterator[bytes]:
    """Yield serialized frames: ``envelope`` in pieces, then the chunks of ``buffers``."""
    for parts in _frame_parts(envelope, buffers):
        yield b"".join(parts)


def _frame_parts(
    envelope: Message, buffers: list[memoryview]
) -> Iterator[tuple[bytes | memoryview, ...]]:
    """Each frame as the pieces that, joined, serialize it (so data is copied only once)."""
    data = memoryview(envelope.SerializeToString())
    for start in range(0, max(len(data), 1), CHUNK_BYTES):
        yield (pb.Frame(envelope=bytes(data[start : start + CHUNK_BYTES])).SerializeToString(),)
    for index, buffer in enumerate(buffers):
        for start in range(0, len(buffer), CHUNK_BYTES):
            yield _chunk_frame_parts(index, start, buffer[start : start + CHUNK_BYTES])


def from_frames(
    frames: Iterable[bytes | memoryview],
    envelope_type: type[M],
    max_bytes: int | None = None,
    *,
    max_envelope_bytes: int | None = None,
    max_buffers: int | None = None,
    admit: Callable[[M, int], None] | None = None,
) -> tuple[M, list[np.ndarray]]:
    """Reassemble an envelope and its buffers from serialized ``frames``.

    Raises ``MalformedRequestError`` for bytes that are not frames, frames out of order, chunks
    that do not fit their buffer, or buffers left incomplete when the stream ends, and
    ``ResourceLimitError`` when the buffers would exceed ``max_bytes``, the envelope
    ``max_envelope_bytes`` (checked as its frames arrive) or the buffer count ``max_buffers``.
    ``admit(envelope, declared_bytes)`` may refuse the message (by raising) after the envelope
    is parsed and before any buffer is allocated.
    """
    pieces: list[bytes] = []
    envelope_bytes = 0
    iterator = iter(frames)
    first_chunk: tuple[int, int, memoryview] | None = None
    for position, raw in enumerate(iterator):
        chunk = _read_chunk(raw, position)
        if chunk is not None:
            first_chunk = chunk
            break
        pieces.append(_parse_frame(raw, position).envelope)
        envelope_bytes += len(pieces[-1])
        if max_envelope_bytes is not None and envelope_bytes > max_envelope_bytes:
            raise ResourceLimitError(
                f"message envelope exceeds {max_envelope_bytes} bytes (--max-envelope); send "
                "large values as arrays, which travel out of line, or split the batch"
            )
    if not pieces:
        raise MalformedRequestError("stream carried no envelope frame")
    envelope = envelope_type()
    try:
        envelope.ParseFromString(b"".join(pieces))
    except DecodeError as exc:
        raise MalformedRequestError(f"{envelope_type.__name__} does not parse: {exc}") from None
    declared = getattr(envelope, "buffer_sizes", ())
    if max_buffers is not None and len(declared) > max_buffers:
        raise ResourceLimitError(
            f"message declares {len(declared)} buffers; this endpoint accepts at most "
            f"{max_buffers} per message (--max-buffers); split the batch"
        )
    sizes = [int(n) for n in declared]
    total = sum(sizes)
    if max_bytes is not None and total > max_bytes:
        raise ResourceLimitError(
            f"message carries {total} bytes of buffers; this endpoint accepts at most {max_bytes}"
        )
    if admit is not None:
        admit(envelope, total)
    try:
        buffers = [np.empty(size, dtype=np.uint8) for size in sizes]
    except MemoryError:
        raise ResourceLimitError(
            f"message declares {total} bytes of buffers; the endpoint has not enough memory"
        ) from None
    filled = [0] * len(sizes)
    chunk = first_chunk
    position = len(pieces)
    while chunk is not None:
        index, offset, data = chunk
        if index >= len(buffers):
            raise MalformedRequestError(
                f"chunk for buffer {index} but the envelope declares {len(buffers)} buffers"
            )
        if offset != filled[index] or offset + len(data) > sizes[index]:
            raise MalformedRequestError(
                f"chunk at offset {offset} (+{len(data)} bytes) does not continue buffer {index} "
                f"({filled[index]} of {sizes[index]} bytes received)"
            )
        buffers[index][offset : offset + len(data)] = np.frombuffer(data, dtype=np.uint8)
        filled[index] += len(data)
        following = next(iterator, None)
        position += 1
        if following is None:
            break
        chunk = _read_chunk(following, position)
        if chunk is None:
            raise MalformedRequestError(f"frame {position}: an envelope frame after buffer chunks")
    for index, (got, want) in enumerate(zip(filled, sizes)):
        if got != want:
            raise MalformedRequestError(
                f"stream ended early: buffer {index} received {got} of {want} bytes"
            )
    return envelope, buffers


def _chunk_frame_parts(index: int, offset: int, data: memoryview) -> tuple[bytes, memoryview]:
    body_head = b"".join(
        (
            bytes((_CHUNK_BUFFER_TAG,)), _varint(index),
            bytes((_CHUNK_OFFSET_TAG,)), _varint(offset),
            bytes((_CHUNK_DATA_TAG,)), _varint(len(data)),
        )
    )
    frame_head = bytes((_FRAME_CHUNK_TAG,)) + _varint(len(body_head) + len(data))
    return frame_head + body_head, data


def _read_chunk(raw: bytes | memoryview, position: int) -> tuple[int, int, memoryview] | None:
    """Decode a chunk frame as ``_chunk_frame_parts`` writes it; ``None`` for an envelope frame."""
    if not raw or raw[0] != _FRAME_CHUNK_TAG:
        return None
    try:
        length, pos = _read_varint(raw, 1)
        if pos + length != len(raw):
            raise ValueError("length prefix does not match the frame size")
        fields = {}
        while pos < len(raw):
            tag = raw[pos]
            if tag in (_CHUNK_BUFFER_TAG, _CHUNK_OFFSET_TAG):
                fields[tag], pos = _read_varint(raw, pos + 1)
            elif tag == _CHUNK_DATA_TAG:
                size, pos = _read_varint(raw, pos + 1)
                if pos + size != len(raw):
                    raise ValueError("data does not end the frame")
                data = memoryview(raw)[pos:]
                return fields.get(_CHUNK_BUFFER_TAG, 0), fields.get(_CHUNK_OFFSET_TAG, 0), data
            else:
                raise ValueError(f"unexpected tag {tag}")
    except (ValueError, IndexError):
        pass
    # Not in the layout we write: let protobuf parse (and validate) it.
    frame = _parse_frame(raw, position)
    if frame.WhichOneof("part") != "chunk":
        return None
    return frame.chunk.buffer, frame.chunk.offset, memoryview(frame.chunk.data)


def _parse_frame(raw: bytes | memoryview, position: int) -> pb.Frame:
    try:
        frame = pb.Frame.FromString(raw)
    except DecodeError:
        raise MalformedRequestError(
            f"frame {position} ({len(raw)} bytes) is not a valid fedla frame"
        ) from None
    if frame.WhichOneof("part") is None:
        raise MalformedRequestError(f"frame {position} is empty")
    return frame


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(raw: bytes | memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = raw[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")
