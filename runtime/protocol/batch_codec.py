"""Batches of requests and their results <-> protobuf envelopes with out-of-line buffers.

The coordinator encodes with ``encode_batch`` and decodes the answer with ``decode_results``; the
worker's servicer decodes with ``decode_batch`` and encodes with ``encode_results``. A request
that does not decode becomes a typed error in its own slot, so one bad request fails alone and
the handler reports the rest of the batch as skipped.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from fedla.runtime.errors import (
    FedlaError,
    InvalidArgumentError,
    ResourceLimitError,
    WorkerInternalError,
    error_from_wire,
)
from fedla.runtime.protocol import fedla_pb2 as pb
from fedla.runtime.protocol.codec import Encoder, decode_value
from fedla.runtime.protocol.requests import (
    Clear,
    ExecInst,
    ExecUdf,
    Get,
    Literal,
    Metadata,
    Operand,
    Put,
    Read,
    Request,
    describe,
)
from fedla.runtime.protocol.status_codes import status_code

_LOGGER = logging.getLogger(__name__)


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


def decode_batch(batch: pb.BatchRequest, buffers: list[np.ndarray]) -> list[Request | FedlaError]:
    """Decode every request of ``batch``; one that does not decode becomes its error.

    The error's message names the request (``request #1 PUT -> 'x': ...``) like the errors of
    ``RequestHandler.handle``.
    """
    decoded: list[Request | FedlaError] = []
    for index, message in enumerate(batch.requests):
        try:
            decoded.append(_decode_request(message, buffers))
        except FedlaError as exc:
            decoded.append(type(exc)(f"request #{index} {_describe_message(message)}: {exc}"))
        except MemoryError:
            decoded.append(ResourceLimitError(
                f"request #{index} {_describe_message(message)}: the worker has not enough "
                "memory to decode it"
            ))
        except Exception as exc:  # noqa: BLE001 - one request must not fail the batch
            _LOGGER.exception("request #%d did not decode", index)
            label = _describe_message(message)
            decoded.append(
                WorkerInternalError(f"request #{index} {label}: {type(exc).__name__}: {exc}")
            )
    return decoded


def encode_results(
    requests: list[Request | FedlaError], results: list[Any]
) -> tuple[pb.BatchResponse, list[memoryview]]:
    """Encode one result per request (``Metadata``, a value, ``None`` or a ``FedlaError``).

    A value that cannot be sent (say, an EXEC_UDF returned a set) is answered with
    ``InvalidArgumentError`` in its slot; the requests after it have run already.
    """
    encoder = Encoder()
    responses = []
    for index, (request, result) in enumerate(zip(requests, results, strict=True)):
        try:
            responses.append(_encode_result(encoder, result))
        except FedlaError as exc:  # only values fail, and only decoded requests return values
            label = "" if isinstance(request, FedlaError) else f" {describe(request)}"
            error = type(exc)(f"request #{index}{label}: its result cannot be sent: {exc}")
            responses.append(_encode_result(encoder, error))
    envelope = pb.BatchResponse(
        responses=responses, buffer_sizes=[len(buffer) for buffer in encoder.buffers]
    )
    return envelope, encoder.buffers


def decode_results(response: pb.BatchResponse, buffers: list[np.ndarray]) -> list[Any]:
    """The results of a ``BatchResponse``: ``Metadata``, values, ``None`` or error instances."""
    return [_decode_result(item, buffers) for item in response.responses]


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
    raise TypeError(f"not a fedla request: {request!r:.80}")


def _encode_operand(encoder: Encoder, operand: Operand) -> pb.Operand:
    if isinstance(operand, Literal):
        return pb.Operand(literal=encoder.value(operand.value))
    return pb.Operand(var=operand)


def _decode_request(message: pb.Request, buffers: list[np.ndarray]) -> Request:
    kind = message.WhichOneof("kind")
    if kind == "read":
        read = message.read
        return Read(read.var, read.path, read.format, dict(read.options))
    if kind == "put":
        return Put(message.put.var, decode_value(message.put.value, buffers))
    if kind == "get":
        return Get(message.get.var)
    if kind == "exec_inst":
        inst = message.exec_inst
        return ExecInst(
            op=inst.op,
            inputs=tuple(_decode_operand(operand, buffers) for operand in inst.inputs),
            output=inst.output,
            attrs=_decode_attrs(inst.attrs, buffers),
        )
    if kind == "exec_udf":
        udf = message.exec_udf
        return ExecUdf(
            function=udf.function,
            inputs=tuple(_decode_operand(operand, buffers) for operand in udf.inputs),
            outputs=tuple(udf.outputs),
            attrs=_decode_attrs(udf.attrs, buffers),
        )
    if kind == "clear":
        return Clear(tuple(message.clear.vars), message.clear.all)
    raise InvalidArgumentError("request has no type; expected READ, PUT, GET, EXEC or CLEAR")


def _decode_operand(operand: pb.Operand, buffers: list[np.ndarray]) -> Operand:
    if operand.WhichOneof("kind") == "literal":
        return Literal(decode_value(operand.literal, buffers))
    return operand.var


def _decode_attrs(attrs: Any, buffers: list[np.ndarray]) -> dict[str, Any]:
    return {key: decode_value(value, buffers) for key, value in attrs.items()}


def _describe_message(message: pb.Request) -> str:
    """``describe`` of a request that may not decode, from its names alone."""
    kind = message.WhichOneof("kind")
    names_only: dict[str, Request] = {
        "read": Read(message.read.var, message.read.path),
        "put": Put(message.put.var, None),
        "get": Get(message.get.var),
        "exec_inst": ExecInst(message.exec_inst.op, (), message.exec_inst.output),
        "exec_udf": ExecUdf(message.exec_udf.function, ()),
        "clear": Clear(),
    }
    return describe(names_only[kind]) if kind in names_only else "(no type)"


def _encode_result(encoder: Encoder, result: Any) -> pb.Response:
    if isinstance(result, FedlaError):
        return pb.Response(
            error=pb.Error(
                type=type(result).__name__, code=status_code(result).name, message=str(result)
            )
        )
    if isinstance(result, Metadata):
        return pb.Response(
            meta=pb.Metadata(
                shape=result.shape,
                dtype=result.dtype,
                sparse=result.sparse,
                nnz=result.nnz,
                fingerprint=result.fingerprint,
                reused=result.reused,
                privacy=result.privacy,
                min_rows=result.min_rows,
            )
        )
    if result is None:
        return pb.Response(done=pb.Empty())
    return pb.Response(value=encoder.value(result))


def _decode_result(response: pb.Response, buffers: list[np.ndarray]) -> Any:
    kind = response.WhichOneof("kind")
    if kind == "error":
        return error_from_wire(response.error.type, response.error.message)
    if kind == "value":
        return decode_value(response.value, buffers)
    if kind == "meta":
        meta = response.meta
        return Metadata(
            shape=tuple(int(n) for n in meta.shape),
            dtype=meta.dtype,
            sparse=meta.sparse,
            nnz=int(meta.nnz),
            fingerprint=meta.fingerprint,
            reused=meta.reused,
            privacy=meta.privacy or "public",
            min_rows=int(meta.min_rows),
        )
    return None
