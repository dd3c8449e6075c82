"""The coordinator's end of the wire: one persistent gRPC channel per worker."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import grpc

from fedla.runtime.errors import (
    FedlaError,
    RequestSkippedError,
    WorkerUnavailableError,
)
from fedla.runtime.protocol import fedla_pb2 as pb
from fedla.runtime.protocol.batch_codec import decode_results, encode_batch
from fedla.runtime.protocol.framing import (
    GRPC_OPTIONS,
    UNARY_BYTES,
    from_frames,
    message_size,
    pack_message,
    to_frames,
    unpack_frames,
)
from fedla.runtime.protocol.requests import ExecInst, Metadata, Read, Request
from fedla.runtime.protocol.status_codes import error_from_status

_LOGGER = logging.getLogger(__name__)


@dataclass
class TrafficCounter:
    """Requests, calls and bytes that crossed one channel, and how often the worker reused work.

    ``read_hits``: READs of a file the worker had loaded already; ``exec_hits``: EXEC_INSTs
    answered from its lineage cache.
    """

    calls: int = 0
    requests: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    read_hits: int = 0
    read_misses: int = 0
    exec_hits: int = 0
    exec_misses: int = 0


class WorkerClient:
    """A persistent HTTP/2 channel to one worker; ``execute`` sends one batch per call.

    Thread-safe: gRPC channels multiplex concurrent calls.
    """

    def __init__(self, address: str, timeout: float | None = None) -> None:
        self.address = address
        self.timeout = timeout
        self.traffic = TrafficCounter()
        self._lock = threading.Lock()
        self._channel = grpc.insecure_channel(address, options=GRPC_OPTIONS)
        # Frames are (de)serialized by ``framing``; gRPC moves raw bytes.
        service = "/" + pb.DESCRIPTOR.services_by_name["Worker"].full_name
        self._call = self._channel.unary_unary(f"{service}/Call")
        self._execute = self._channel.stream_stream(f"{service}/Execute")
        self._fetch = self._channel.unary_stream(f"{service}/Fetch")
        self._status = self._channel.unary_unary(f"{service}/Status")

    def execute(self, tenant: str, requests: list[Request]) -> list[Any]:
        """Run ``requests`` in order at the worker and return one result per request.

        A result is ``Metadata`` (READ, PUT, EXEC_INST), a value (GET, EXEC_UDF without outputs)
        or ``None`` (CLEAR). The first failed request's error is raised as the exception class
        the worker reported; later requests of the batch were not executed.
        """
        results = self.execute_all(tenant, requests)
        for result in results:
            if isinstance(result, FedlaError) and not isinstance(result, RequestSkippedError):
                raise result
        return results

    def execute_all(self, tenant: str, requests: list[Request]) -> list[Any]:
        """Like ``execute`` but return errors in place of results instead of raising them."""
        envelope, buffers = encode_batch(tenant, requests)
        counter = _ByteCounter()
        try:
            if message_size(envelope, buffers) <= UNARY_BYTES:
                request = counter.sent(pack_message(envelope, buffers))
                reply = counter.received(self._call(request, timeout=self.timeout))
                response, response_buffers = from_frames(unpack_frames(reply), pb.BatchResponse)
                if response.ticket:
                    fetch = pb.FetchRequest(tenant=tenant, ticket=response.ticket)
                    frames = self._fetch(counter.sent(pack_message(fetch, [])),
                                         timeout=self.timeout)
                    response, response_buffers = from_frames(
                        map(counter.received, frames), pb.BatchResponse
                    )
            else:
                frames = self._execute(
                    map(counter.sent, to_frames(envelope, buffers)), timeout=self.timeout
                )
                response, response_buffers = from_frames(
                    map(counter.received, frames), pb.BatchResponse
                )
        except grpc.RpcError as exc:
            raise _rpc_error(self.address, exc) from None
        with self._lock:
            self.traffic.calls += 1
            self.traffic.requests += len(requests)
            self.traffic.bytes_sent += counter.bytes_sent
            self.traffic.bytes_received += counter.bytes_received
        if len(response.responses) != len(requests):
            raise FedlaError(
                f"worker {self.address} answered {len(response.responses)} responses "
                f"to {len(requests)} requests"
            )
        results = decode_results(response, response_buffers)
        self._count_reuse(requests, results)
        return results

    def _count_reuse(self, requests: list[Request], results: list[Any]) -> None:
        with self._lock:
            for request, result in zip(requests, results):
                if not isinstance(result, Metadata):
                    continue
                if isinstance(request, Read):
                    if result.reused:
                        self.traffic.read_hits += 1
                    else:
                        self.traffic.read_misses += 1
                elif isinstance(request, ExecInst):
                    if result.reused:
                        self.traffic.exec_hits += 1
                    else:
                        self.traffic.exec_misses += 1

    def status(self) -> pb.WorkerStatus:
        """The worker's tenants, memory and cache figures."""
        try:
            reply = self._status(pack_message(pb.StatusRequest(), []), timeout=self.timeout)
        except grpc.RpcError as exc:
            raise _rpc_error(self.address, exc) from None
        status, _ = from_frames(unpack_frames(reply), pb.WorkerStatus)
        return status

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()


class _ByteCounter:
    """Counts the serialized bytes passing through, for ``TrafficCounter``."""

    def __init__(self) -> None:
        self.bytes_sent = 0
        self.bytes_received = 0

    def sent(self, frame: bytes) -> bytes:
        self.bytes_sent += len(frame)
        return frame

    def received(self, frame: bytes) -> bytes:
        self.bytes_received += len(frame)
        return frame


def _rpc_error(address: str, exc: grpc.RpcError) -> FedlaError:
    code = exc.code() if hasattr(exc, "code") else None
    details = exc.details() if hasattr(exc, "details") else str(exc)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return WorkerUnavailableError(f"worker {address} is unreachable: {details}")
    # The worker aborts a call only for envelope-level errors; its details name the error class.
    error = error_from_status(code, details or "")
    error.args = (f"worker {address}: {error.args[0] if error.args else details}",)
    return error
