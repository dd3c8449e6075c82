"""Inputs a hostile coordinator could send a worker, and how a worker may answer them.

Shared by ``test_worker_fuzz.py`` (hypothesis, a few hundred examples in CI) and
``bench/fuzz_worker.py`` (``random``, 10,000 and more). Every generator draws its choices from a
``Draw`` — hypothesis' ``data.draw`` in the test, so failures shrink, or a seeded
``random.Random`` in the bench — and builds a ``FuzzCase``: the raw bytes of one ``Call``, or the
raw frames of one ``Execute`` stream. Cases are

- **mutated valid batches**: a batch from ``SEEDS``, encoded with ``encode_batch``, then changed
  field by field through protobuf reflection (dtypes, shapes, buffer indices, buffer sizes,
  variable and kernel names, attribute values, oneof kinds, repeated elements) and/or byte by
  byte after framing (bit flips, inserted/deleted/duplicated runs, overlong varints, truncation),
  and for ``Execute`` frame by frame (dropped, duplicated, swapped, random frames);
- **random bytes**: an arbitrary ``Call`` message, or a stream of arbitrary frames.

``FuzzTarget.send`` runs one case and classifies what came back (``Outcome``); a worker may
answer with a result or a typed error, never crash, hang past ``HANG_SECONDS`` or fail untyped.
"""

from __future__ import annotations

import enum
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import grpc
import numpy as np
import scipy.sparse as sp
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from fedla.local_workers import LocalWorkerPool
from fedla.runtime.errors import ERROR_CLASSES, WorkerInternalError
from fedla.runtime.protocol import fedla_pb2 as pb
from fedla.runtime.protocol.batch_codec import encode_batch
from fedla.runtime.protocol.client import WorkerClient
from fedla.runtime.protocol.framing import (
    GRPC_OPTIONS,
    from_frames,
    pack_message,
    to_frames,
    unpack_frames,
)
from fedla.runtime.protocol.requests import (
    Clear,
    ExecInst,
    ExecUdf,
    Get,
    Literal,
    Put,
    Read,
    Request,
)

HANG_SECONDS = 5.0
"""A call unanswered after this long is a hang."""

FUZZ_TENANT = "fuzz"
SERVICE = "/fedla.v1.Worker"
WORKER_OPTIONS = ("--tenant-mem", "1GB")  # the worker's defaults otherwise
UNTYPED_CODES = (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL)


class Draw(Protocol):
    """Where a generator gets its choices from."""

    def integer(self, low: int, high: int) -> int:
        """An integer in ``[low, high]``."""

    def raw(self, size: int) -> bytes:
        """``size`` arbitrary bytes."""


class RandomDraw:
    """Choices from a seeded ``random.Random`` (the bench)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def integer(self, low: int, high: int) -> int:
        return self.rng.randint(low, high)

    def raw(self, size: int) -> bytes:
        return self.rng.randbytes(size)


def pick(draw: Draw, options: list | tuple) -> Any:
    return options[draw.integer(0, len(options) - 1)]


# --- seeds: valid batches ------------------------------------------------------------------------

DATA_FILES = {
    "fuzz.csv": "\n".join(",".join(str(i * 3 + j) for j in range(3)) for i in range(20)) + "\n",
    "agg.csv": "\n".join(",".join(str(i + j) for j in range(2)) for i in range(12)) + "\n",
    "agg.csv.policy.json": '{"level": "private-aggregation", "min_rows": 10}',
}
"""Files the fuzzed worker's data dir holds (``agg.csv`` only releases aggregates)."""

_SMALL = np.arange(12.0).reshape(3, 4)
_BUFFERED = np.arange(96 * 96, dtype=np.float64).reshape(96, 96)  # 72 KiB: out of line
_MULTI_CHUNK = np.arange(150_000, dtype=np.int64)  # 1.2 MB: two chunks of one buffer
_CSR = sp.csr_array(np.eye(4) * 2.0)

SEEDS: list[list[Request]] = [
    [Put("x", _SMALL), Get("x")],
    [Put("x", _BUFFERED), ExecInst("tsmm", ("x",), "g"), Get("g")],
    [Put("a", _SMALL), Put("b", _SMALL.T.copy()), ExecInst("matmul", ("a", "b"), "c"), Get("c")],
    [Put("s", _CSR), ExecInst("transpose", ("s",), "t"), Get("t")],
    [Put("v", _MULTI_CHUNK), Get("v")],
    [Read("X", "fuzz.csv"), ExecInst("slice", ("X",), "y", {"rows": [0, 5], "cols": None}),
     Get("y")],
    [Read("A", "agg.csv"), ExecInst("tsmm", ("A",), "G"), Get("G"), Get("A")],
    [Put("x", _SMALL), ExecInst("binary", ("x", Literal(2.0)), "y", {"op": "add"}), Get("y")],
    [Put("x", _SMALL), ExecInst("reduce", ("x",), "r", {"reduction": "sum", "axis": 0}),
     Get("r")],
    [Put("p", _SMALL[:2]), Put("q", _SMALL[2:]),
     ExecInst("assemble", ("p", "q"), "z", {"shape": [3, 4], "offsets": [[0, 0], [2, 0]]}),
     Get("z")],
    [Put("x", _SMALL), ExecUdf("tests.udfs:total", ("x",), attrs={"axis": 1})],
    [Put("m", {"k": [1, 2.5, "s", None, True], "n": np.arange(3, dtype=np.int32)}), Get("m")],
    [Put("x", 1), Put("y", "text"), Clear(("x",)), Get("y"), Clear(all=True)],
]
"""Valid batches covering every request type, value kind, kernel family and both data paths."""


# --- mutations -----------------------------------------------------------------------------------

_INTS = (0, 1, 2, 3, 7, 8, 255, 4096, 2**20, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**53, 2**62,
         2**63 - 1, 2**63, 2**64 - 1, -1, -2, -(2**31), -(2**63))
_FLOATS = (0.0, -0.0, 1.0, -1.0, 0.5, 1e308, float("inf"), float("-inf"), float("nan"), 2.0**63)
_STRINGS = (
    "", "x", "X", "g", "fuzz", "<f8", "<f4", "<f2", "|b1", "<i4", "<i8", "|u1", "<u8", "<c16",
    "|O", "O", "<U3", "|S3", "V8", "<M8[s]", "(3,)f8", "(99999999,)f8", "f8,f8", ">f8", "=f8",
    "matmul", "tsmm", "transpose", "assemble", "slice", "binary", "reduce", "add", "sum",
    "tests.udfs:total", "tests.udfs:object_array", "os:system", "fedla.algorithms.nn.ffn:ffn_train",
    "fuzz.csv", "agg.csv", "agg.csv.policy.json", "../fuzz.csv", "/etc/passwd", ".", "",
    "x\0y", "é" * 3, "x" * 300, "csv", "npy", "mtx", "parquet", "header", "dtype",
)


def _ints_for(field: FieldDescriptor) -> tuple[int, ...]:
    signed = field.cpp_type in (FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_INT64)
    bits = 32 if field.cpp_type in (
        FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_UINT32) else 64
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    return tuple(v for v in _INTS if low <= v <= high)


def _scalar(draw: Draw, field: FieldDescriptor, current: Any = None) -> Any:
    """An interesting value for a scalar ``field``, sometimes derived from ``current``."""
    cpp = field.cpp_type
    if cpp == FieldDescriptor.CPPTYPE_BOOL:
        return not current if current is not None and draw.integer(0, 1) else bool(
            draw.integer(0, 1))
    if cpp in (FieldDescriptor.CPPTYPE_DOUBLE, FieldDescriptor.CPPTYPE_FLOAT):
        return pick(draw, _FLOATS)
    if cpp == FieldDescriptor.CPPTYPE_STRING:
        if field.type == FieldDescriptor.TYPE_BYTES:
            return _mutated_bytes(draw, bytes(current or b""), draw.integer(1, 2))
        if current and draw.integer(0, 3) == 0:
            return current[: draw.integer(0, len(current))]
        return pick(draw, _STRINGS)
    if cpp == FieldDescriptor.CPPTYPE_ENUM:
        return draw.integer(0, 3)
    ints = _ints_for(field)
    if current is not None and draw.integer(0, 2) == 0:
        return current + pick(draw, (-1, 1, 8, -8))  # out of range: the caller skips it
    return pick(draw, ints)


def _messages(message: Message) -> Iterator[Message]:
    """``message`` and every sub-message set within it."""
    yield message
    for field, value in message.ListFields():
        if field.cpp_type != FieldDescriptor.CPPTYPE_MESSAGE:
            continue
        if field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            if value_field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
                for item in value.values():
                    yield from _messages(item)
        elif field.is_repeated:
            for item in value:
                yield from _messages(item)
        else:
            yield from _messages(value)


def _mutate_field(draw: Draw, message: Message) -> None:
    """Change one field of ``message``: set, clear, add, remove or duplicate."""
    field = pick(draw, message.DESCRIPTOR.fields)
    name = field.name
    if field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE and field.message_type.GetOptions(
    ).map_entry:
        container = getattr(message, name)
        value_field = field.message_type.fields_by_name["value"]
        keys = list(container.keys())
        if keys and draw.integer(0, 1):
            del container[pick(draw, keys)]
        elif value_field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
            container[pick(draw, _STRINGS[:40])].SetInParent()
        else:
            container[pick(draw, _STRINGS)] = pick(draw, _STRINGS)
        return
    if field.is_repeated:
        container = getattr(message, name)
        action = draw.integer(0, 3)
        if field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
            if action == 0 and len(container):
                del container[draw.integer(0, len(container) - 1)]
            elif action == 1 and len(container):
                container.add().CopyFrom(container[draw.integer(0, len(container) - 1)])
            elif action == 2:
                container.add()
            else:
                message.ClearField(name)
            return
        if action == 0 and len(container):
            del container[draw.integer(0, len(container) - 1)]
        elif action == 1 and len(container):
            index = draw.integer(0, len(container) - 1)
            container[index] = _scalar(draw, field, container[index])
        elif action == 2:
            container.append(_scalar(draw, field))
        else:
            for _ in range(draw.integer(1, 5)):
                container.append(_scalar(draw, field))
        return
    if field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
        if message.HasField(name) and draw.integer(0, 1):
            message.ClearField(name)
        else:
            getattr(message, name).SetInParent()
        return
    current = getattr(message, name)
    setattr(message, name, _scalar(draw, field, current))


def mutate_envelope(draw: Draw, envelope: pb.BatchRequest) -> None:
    """Apply 1-4 field mutations anywhere in ``envelope`` (in place)."""
    for _ in range(draw.integer(1, 4)):
        target = pick(draw, list(_messages(envelope)))
        try:
            _mutate_field(draw, target)
        except (ValueError, TypeError):  # a value the field's type cannot hold: skip it
            pass


_VARINTS = (b"\x80", b"\xff" * 9 + b"\x01", b"\xff" * 10 + b"\x7f", b"\x80" * 12, b"\x7f",
            b"\xff\xff\xff\xff\x0f", b"\x00")


def _mutated_bytes(draw: Draw, data: bytes, count: int) -> bytes:
    """``data`` after ``count`` byte-level edits."""
    out = bytearray(data)
    for _ in range(count):
        action = draw.integer(0, 7)
        pos = draw.integer(0, len(out)) if out else 0
        if action == 0 and out:  # flip a bit
            pos = min(pos, len(out) - 1)
            out[pos] ^= 1 << draw.integer(0, 7)
        elif action == 1 and out:  # an edge-case byte
            out[min(pos, len(out) - 1)] = pick(draw, (0x00, 0x01, 0x7F, 0x80, 0xFF, 0x0A, 0x12))
        elif action == 2:  # insert
            out[pos:pos] = draw.raw(draw.integer(1, 16))
        elif action == 3:  # delete a run
            del out[pos : pos + draw.integer(1, 16)]
        elif action == 4:  # duplicate a run
            out[pos:pos] = out[pos : pos + draw.integer(1, 64)]
        elif action == 5:  # truncate
            del out[pos:]
        elif action == 6:  # an overlong or extreme varint
            out[pos : pos + draw.integer(0, 2)] = pick(draw, _VARINTS)
        else:  # overwrite a run
            size = draw.integer(1, 8)
            out[pos : pos + size] = draw.raw(size)
    return bytes(out)


# --- cases ---------------------------------------------------------------------------------------


@dataclass
class FuzzCase:
    """One call: ``Call`` with one message, or ``Execute`` with a stream of frames."""

    method: str  # "Call" or "Execute"
    frames: list[bytes]  # for "Call", exactly one: the serialized ``Frames`` message
    kind: str  # how it was made, for the report

    def __repr__(self) -> str:  # what hypothesis prints for a failing example
        sizes = [len(f) for f in self.frames]
        head = [f[:200] for f in self.frames[:4]]
        return f"FuzzCase({self.method}, {self.kind}, frame sizes {sizes}, heads {head!r})"


def mutated_case(draw: Draw) -> FuzzCase:
    """A valid batch from ``SEEDS``, changed in its fields, its bytes or its frames."""
    envelope, buffers = encode_batch(FUZZ_TENANT, pick(draw, SEEDS))
    layers = pick(draw, (1, 1, 2, 3))  # 1: fields, 2: bytes, 3: both; fields reach deepest
    if layers & 1:
        mutate_envelope(draw, envelope)
    method = pick(draw, ("Call", "Execute"))
    if method == "Call":
        message = pack_message(envelope, buffers)
        if layers & 2:
            message = _mutated_bytes(draw, message, draw.integer(1, 4))
        return FuzzCase("Call", [message], f"mutated/{layers}")
    frames = list(to_frames(envelope, buffers))
    if layers & 2:
        for _ in range(draw.integer(1, 3)):
            action = draw.integer(0, 5)
            index = draw.integer(0, len(frames) - 1)
            if action <= 1:
                frames[index] = _mutated_bytes(draw, frames[index], draw.integer(1, 3))
            elif action == 2 and len(frames) > 1:
                del frames[index]
            elif action == 3:
                frames.insert(index, frames[index])
            elif action == 4:
                other = draw.integer(0, len(frames) - 1)
                frames[index], frames[other] = frames[other], frames[index]
            else:
                frames.insert(index, draw.raw(draw.integer(0, 64)))
    return FuzzCase("Execute", frames, f"mutated/{layers}")


def random_case(draw: Draw) -> FuzzCase:
    """Arbitrary bytes: one ``Call`` message, or 1-4 ``Execute`` frames."""
    if draw.integer(0, 1):
        size = pick(draw, (0, 1, 2, 8, 64, 512, 4096))
        prefix = b"\x0a" if draw.integer(0, 1) else b""  # looks like a Frames item
        return FuzzCase("Call", [prefix + draw.raw(draw.integer(0, size))], "random")
    frames = []
    for _ in range(draw.integer(1, 4)):
        head = pick(draw, (b"", b"\x0a", b"\x12"))  # plain, envelope-like, chunk-like
        frames.append(head + draw.raw(draw.integer(0, pick(draw, (0, 4, 64, 1024)))))
    return FuzzCase("Execute", frames, "random")


def fuzz_case(draw: Draw) -> FuzzCase:
    """Three mutated valid batches for every random one."""
    return random_case(draw) if draw.integer(0, 3) == 0 else mutated_case(draw)


# --- outcomes ------------------------------------------------------------------------------------


class Outcome(enum.Enum):
    """What a worker did with one case; the first two are allowed."""

    RESULT = "result"
    TYPED_ERROR = "typed error"
    OTHER_ERROR = "other error"
    HANG = f"hang > {HANG_SECONDS:.0f} s"
    CRASH = "crash"
    UNHEALTHY = "unhealthy after"

    @property
    def allowed(self) -> bool:
        return self in (Outcome.RESULT, Outcome.TYPED_ERROR)


def _typed_details(details: str) -> bool:
    type_name, separator, _ = details.partition(": ")
    return bool(separator) and type_name in ERROR_CLASSES and type_name != (
        WorkerInternalError.__name__)


def classify_reply(frames: list[bytes] | list[memoryview]) -> tuple[Outcome, str]:
    """A reply that came back: a result, or per-request errors that must all be typed."""
    try:
        response, _ = from_frames(frames, pb.BatchResponse)
    except Exception as exc:  # noqa: BLE001 - anything unreadable is "other"
        return Outcome.OTHER_ERROR, f"unreadable reply: {exc!r}"
    errors = [r.error for r in response.responses if r.WhichOneof("kind") == "error"]
    for error in errors:
        if error.type not in ERROR_CLASSES or error.type == WorkerInternalError.__name__:
            return Outcome.OTHER_ERROR, f"{error.type} ({error.code}): {error.message}"
    if errors:
        return Outcome.TYPED_ERROR, f"{errors[0].type}: {errors[0].message}"
    return Outcome.RESULT, ""


class FuzzTarget:
    """A ``fedla worker`` process of its own, with a raw channel and a healthy client."""

    def __init__(self, data_dir: Path) -> None:
        for name, text in DATA_FILES.items():
            (data_dir / name).write_text(text)
        self.pool = LocalWorkerPool(
            1, data_dir=data_dir, allow_modules=("tests.udfs",), options=WORKER_OPTIONS
        )
        self.process = self.pool.processes[0]
        self.address = self.pool.addresses[0]
        self.channel = grpc.insecure_channel(self.address, options=GRPC_OPTIONS)
        self._call = self.channel.unary_unary(f"{SERVICE}/Call")
        self._execute = self.channel.stream_stream(f"{SERVICE}/Execute")
        self.client = WorkerClient(self.address, timeout=HANG_SECONDS)

    def close(self) -> None:
        self.client.close()
        self.channel.close()
        self.pool.close()

    def alive(self) -> bool:
        return self.process.poll() is None

    def send(self, case: FuzzCase) -> tuple[Outcome, str]:
        """Run ``case``, then check the worker still answers a healthy batch."""
        outcome, detail = self._send(case)
        if not self.alive():
            return Outcome.CRASH, f"worker exited with {self.process.returncode}; {detail}"
        if outcome.allowed and not self.healthy():
            return Outcome.UNHEALTHY, detail
        return outcome, detail

    def _send(self, case: FuzzCase) -> tuple[Outcome, str]:
        try:
            if case.method == "Call":
                reply = self._call(case.frames[0], timeout=HANG_SECONDS)
                return classify_reply(unpack_frames(reply))
            reply_frames = list(self._execute(iter(case.frames), timeout=HANG_SECONDS))
            return classify_reply(reply_frames)
        except grpc.RpcError as exc:
            code, details = exc.code(), exc.details() or ""
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                return Outcome.HANG, details
            if code in UNTYPED_CODES or not _typed_details(details):
                return Outcome.OTHER_ERROR, f"{code.name}: {details}"
            return Outcome.TYPED_ERROR, details

    def healthy(self) -> bool:
        """The fuzz tenant's scope is reset, and a PUT and GET round-trip exactly."""
        value = np.arange(12.0).reshape(3, 4)
        try:
            results = self.client.execute(
                FUZZ_TENANT, [Clear(all=True), Put("health", value), Get("health")]
            )
        except Exception:  # noqa: BLE001 - any failure is unhealthy
            return False
        return bool(np.array_equal(results[2], value))


def run_cases(
    target: FuzzTarget, cases: Iterator[FuzzCase], on_failure: Callable[[FuzzCase, Outcome, str],
                                                                        None] | None = None,
) -> dict[Outcome, int]:
    """Send every case and count outcomes; ``on_failure`` sees each disallowed one."""
    counts = dict.fromkeys(Outcome, 0)
    for case in cases:
        started = time.monotonic()
        outcome, detail = target.send(case)
        if outcome is Outcome.RESULT and time.monotonic() - started > HANG_SECONDS:
            outcome = Outcome.HANG
        counts[outcome] += 1
        if not outcome.allowed and on_failure is not None:
            on_failure(case, outcome, detail)
        if outcome is Outcome.CRASH:
            break
    return counts
