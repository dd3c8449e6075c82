"""The six federated request types as plain Python objects, and their encoding.

Coordinators build these and hand a list of them to ``WorkerClient.execute``; the worker decodes
the wire form itself (``worker.request_handler``), request by request, so one bad request fails
alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fedla.runtime.protocol import fedla_pb2 as pb
from fedla.runtime.protocol.codec import Encoder


@dataclass(frozen=True)
class Literal:
    """An EXEC input given by value (a scalar or a small array) instead of by variable name."""

    value: Any


Operand = str | Literal


@dataclass(frozen=True)
class Read:
    """Load ``path`` (relative to the worker's data directory) into variable ``var``."""

    var: str
    path: str
    format: str = ""
    options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Put:
    """Store ``value`` in variable ``var``."""

    var: str
    value: Any


@dataclass(frozen=True)
class Get:
    """Return the value of ``var``."""

    var: str


@dataclass(frozen=True)
class ExecInst:
    """Run registered kernel ``op`` on ``inputs`` with ``attrs``; store the result in ``output``."""

    op: str
    inputs: tuple[Operand, ...]
    output: str
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExecUdf:
    """Call ``function`` ("module:function") on ``inputs``; store results in ``outputs``.

    With no outputs, the function's return value comes back in the response.
    """

    function: str
    inputs: tuple[Operand, ...]
    outputs: tuple[str, ...] = ()
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Clear:
    """Drop ``vars`` from the tenant's scope, or every variable of the tenant when ``all``."""

    vars: tuple[str, ...] = ()
    all: bool = False


Request = Read | Put | Get | ExecInst | ExecUdf | Clear


@dataclass(frozen=True)
class Metadata:
    """What a worker reports about a variable it created (READ, PUT, EXEC_INST)."""

    shape: tuple[int, ...]
    dtype: str
    sparse: bool
    nnz: int
    fingerprint: str = ""
    reused: bool = False


def encode_batch(tenant: str, requests: list[Request]) -> tuple[pb.BatchRequest, list[memoryview]]:
    """Encode ``requests`` for ``tenant``; returns the envelope and its out-of-line buffers."""
    encoder = Encoder()
    messages = [_encode_request(encoder, request) for request in requests]
    envelope = pb.BatchRequest(
        tenant=tenant,
        requests=messages,
        buffer_sizes=[len(buffer) for buffer in encoder.buffers],
    )
    return envelope, encoder.buffers


def _encode_request(encoder: Encoder, request: Request) -> pb.Request:
    if isinstance(request, Read):
        return pb.Request(
            read=pb.Read(
                var=request.var, path=request.path, format=request.format, options=request.options
            )
        )
    if isinstance(request, Put):
        return pb.Request(put=pb.Put(var=request.var, value=encoder.value(request.value)))
    if isinstance(request, Get):
        return pb.Request(get=pb.Get(var=request.var))
    if isinstance(request, ExecInst):
        return pb.Request(
            exec_inst=pb.ExecInst(
                op=request.op,
                inputs=[_encode_operand(encoder, operand) for operand in request.inputs],
                attrs={key: encoder.value(value) for key, value in request.attrs.items()},
                output=request.output,
            )
        )
    if isinstance(request, ExecUdf):
        return pb.Request(
            exec_udf=pb.ExecUdf(
                function=request.function,
                inputs=[_encode_operand(encoder, operand) for operand in request.inputs],
                attrs={key: encoder.value(value) for key, value in request.attrs.items()},
                outputs=list(request.outputs),
            )
        )
    if isinstance(request, Clear):
        return pb.Request(clear=pb.Clear(vars=list(request.vars), all=request.all))
    raise TypeError(f"not a fedla request: {request!r}")


def _encode_operand(encoder: Encoder, operand: Operand) -> pb.Operand:
    if isinstance(operand, Literal):
        return pb.Operand(literal=encoder.value(operand.value))
    return pb.Operand(var=operand)
