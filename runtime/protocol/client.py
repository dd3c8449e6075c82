"""The coordinator's end of the wire: one persistent gRPC channel per worker.

Failure detection: the channel sends HTTP/2 keepalive pings every ``keepalive_s`` seconds and
closes the connection when one is not acknowledged within another ``keepalive_s``, so a worker
that froze (SIGSTOP, a hung host, a cut network) fails the waiting call with
``WorkerUnavailableError`` after about ``2 * keepalive_s`` seconds. A worker that is busy
computing still answers pings (gRPC's transport threads do), so long work is never cut off; only
the optional ``timeout`` bounds a call's total time.

Waiting is interruptible: calls are cancellable call objects awaited in short slices, so Ctrl-C
reaches a coordinator blocked on a worker within a fraction of a second (and cancels the call),
and ``WorkerClient.cancel_all`` unblocks waiting calls from any thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from fedla.runtime.errors import (
    CallCancelledError,
    FedlaError,
    InvalidArgumentError,
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
from fedla.runtime.protocol.requests import ExecInst, Metadata, Read, Request, describe
from fedla.runtime.protocol.status_codes import error_from_status

_LOGGER = logging.getLogger(__name__)

DEFAULT_KEEPALIVE_SECONDS = 10.0
"""Ping interval, and how long a ping may go unanswered, unless the caller sets ``keepalive_s``."""

WAIT_SLICE_SECONDS = 0.2
"""A waiting call wakes this often, so that signals (Ctrl-C) are handled promptly."""

_DESCRIBED_REQUESTS = 3
"""How many requests of a batch an error message names."""


def keepalive_options(keepalive_s: float) -> list[tuple[str, int]]:
    """Channel options that ping the worker every ``keepalive_s`` and give up after as long.

    Pings go out whether or not a call is active and however long no data flowed, so a
    computation of any length is watched; the worker accepts them (``worker.server``).
    ``grpc.http2.ping_timeout_ms`` is not in gRPC's public header, but without it gRPC core
    waits a minute for any ping's ack, whatever the keepalive timeout says.
    """
    interval_ms = max(1, round(keepalive_s * 1000))
    return [
        ("grpc.keepalive_time_ms", interval_ms),
        ("grpc.keepalive_timeout_ms", interval_ms),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.http2.min_time_between_pings_ms", interval_ms),
        ("grpc.http2.ping_timeout_ms", interval_ms),
    ]


@dataclass(frozen=True)
class ClientTls:
    """TLS files (PEM) of a coordinator.

    The CA that signed the workers' certificates, and for mTLS the coordinator's own certificate
    and key (``fedla certs`` makes a development set).

    Parameters
    ----------
    ca : str or Path, optional
        CA certificate to verify workers with; None uses the system's roots.
    cert, key : str or Path, optional
        Client certificate and its key, for workers that require one (``--tls-client-ca``).
    """

    ca: str | Path | None = None
    cert: str | Path | None = None
    key: str | Path | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        """Channel credentials for gRPC from the files."""
        if (self.cert is None) != (self.key is None):
            raise InvalidArgumentError(
                "a client certificate needs its key: give both tls_cert and tls_key, or neither"
            )
        return grpc.ssl_channel_credentials(
            root_certificates=_read(self.ca),
            private_key=_read(self.key),
            certificate_chain=_read(self.cert),
        )


def _read(path: str | Path | None) -> bytes | None:
    return None if path is None else Path(path).read_bytes()


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

    Parameters
    ----------
    address : str
        ``host:port`` of the worker.
    timeout : float or None, default None
        Deadline in seconds for a whole batch (including fetching a large answer); None waits as
        long as the worker keeps answering keepalive pings.
    keepalive_s : float, default 10.0
        Ping interval and ping timeout in seconds: a worker that stops answering is detected
        after about twice this.
    token : str, optional
        Bearer token sent as ``authorization`` call metadata on every RPC, for workers started
        with ``--token-file``; the worker takes the tenant from it, not from ``execute``'s
        ``tenant`` argument.
    tls : ClientTls, optional
        Connect over TLS (workers started with ``--tls-cert``); None connects in plaintext.
    """

    def __init__(
        self,
        address: str,
        timeout: float | None = None,
        keepalive_s: float = DEFAULT_KEEPALIVE_SECONDS,
        token: str | None = None,
        tls: ClientTls | None = None,
    ) -> None:
        if timeout is not None and not timeout > 0:
            raise InvalidArgumentError(
                f"The 'timeout' of WorkerClient must be None or a number of seconds > 0. "
                f"Got {timeout!r} instead."
            )
        if not keepalive_s > 0:
            raise InvalidArgumentError(
                f"The 'keepalive_s' of WorkerClient must be a number of seconds > 0. "
                f"Got {keepalive_s!r} instead."
            )
        self.address = address
        self.timeout = timeout
        self.keepalive_s = keepalive_s
        self.traffic = TrafficCounter()
        self._lock = threading.Lock()
        self._in_flight: set[grpc.Future] = set()
        self._cancelled: set[grpc.Future] = set()
        self._metadata = (("authorization", f"Bearer {token}"),) if token else None
        options = [*GRPC_OPTIONS, *keepalive_options(keepalive_s)]
        if tls is None:
            self._channel = grpc.insecure_channel(address, options=options)
        else:
            self._channel = grpc.secure_channel(address, tls.credentials(), options=options)
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

    def execute_all(
        self, tenant: str, requests: list[Request], *, cancellable: bool = True
    ) -> list[Any]:
        """Like ``execute`` but return errors in place of results instead of raising them.

        ``cancellable=False`` makes a small batch a plain blocking call, about 0.2 ms faster on
        loopback, that neither ``cancel_all`` nor Ctrl-C can stop (only ``close`` can): for
        callers that wait on another thread and close the client to cancel.

        Raises
        ------
        WorkerUnavailableError
            The worker cannot be reached, stopped answering keepalive pings, or the deadline
            ``timeout`` passed.
        CallCancelledError
            ``cancel_all`` cancelled the call.
        KeyboardInterrupt
            Ctrl-C while waiting (the call is cancelled).
        """
        envelope, buffers = encode_batch(tenant, requests)
        waiting = _waiting_for(requests)
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        counter = _ByteCounter()
        if message_size(envelope, buffers) <= UNARY_BYTES:
            request = counter.sent(pack_message(envelope, buffers))
            if cancellable:
                call = self._call.future(
                    request, timeout=_remaining(deadline), metadata=self._metadata
                )
                with self._waiting(call, waiting):
                    reply = counter.received(_result(call))
            else:
                try:
                    reply = counter.received(self._call(
                        request, timeout=_remaining(deadline), metadata=self._metadata
                    ))
                except grpc.RpcError as exc:
                    raise self._call_error(exc, waiting, cancelled=False) from None
            response, response_buffers = from_frames(unpack_frames(reply), pb.BatchResponse)
            if response.ticket:
                fetch = pb.FetchRequest(tenant=tenant, ticket=response.ticket)
                stream = self._fetch(
                    counter.sent(pack_message(fetch, [])), timeout=_remaining(deadline),
                    metadata=self._metadata,
                )
                with self._waiting(stream, waiting):
                    response, response_buffers = from_frames(
                        map(counter.received, stream), pb.BatchResponse
                    )
        else:
            stream = self._execute(
                map(counter.sent, to_frames(envelope, buffers)), timeout=_remaining(deadline),
                metadata=self._metadata,
            )
            with self._waiting(stream, waiting):
                response, response_buffers = from_frames(
                    map(counter.received, stream), pb.BatchResponse
                )
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

    def cancel_all(self) -> int:
        """Cancel every call of this client in flight now, from any thread.

        Each waiting ``execute``/``execute_all``/``status`` raises ``CallCancelledError``.
        Requests the worker already ran stay done. Returns the number of calls cancelled.
        """
        with self._lock:
            calls = list(self._in_flight)
            self._cancelled.update(calls)
        for call in calls:
            call.cancel()
        return len(calls)

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

    def status(self, tenant: str = "") -> pb.WorkerStatus:
        """The worker's tenants, memory and cache figures.

        A worker with credentials shows the caller's own tenant (every tenant to an operator
        token). Without credentials it names no tenant but ``tenant``, the caller's own id.
        """
        request = pb.StatusRequest(tenant=tenant)
        call = self._status.future(
            pack_message(request, []), timeout=self.timeout, metadata=self._metadata
        )
        with self._waiting(call, "a status request"):
            status, _ = from_frames(unpack_frames(_result(call)), pb.WorkerStatus)
        return status

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    @contextmanager
    def _waiting(self, call: grpc.Future, waiting: str) -> Iterator[None]:
        """Track ``call`` for ``cancel_all``; turn its failure into a fedla error.

        Anything else that ends the wait (Ctrl-C, a frame that does not decode) cancels the call,
        so the worker does not stream an answer nobody reads.
        """
        with self._lock:
            self._in_flight.add(call)
        try:
            yield
        except (grpc.RpcError, grpc.FutureCancelledError) as exc:
            with self._lock:
                cancelled = call in self._cancelled
            raise self._call_error(exc, waiting, cancelled) from None
        except BaseException:
            call.cancel()
            raise
        finally:
            with self._lock:
                self._in_flight.discard(call)
                self._cancelled.discard(call)

    def _call_error(self, exc: Exception, waiting: str, cancelled: bool) -> FedlaError:
        code = exc.code() if isinstance(exc, grpc.Call) else grpc.StatusCode.CANCELLED
        details = (exc.details() if isinstance(exc, grpc.Call) else None) or str(exc)
        where = f"worker {self.address}"
        if cancelled:
            return CallCancelledError(
                f"the call to {where} was cancelled (WorkerClient.cancel_all) while {waiting} "
                "was waiting; requests the worker had run stay done"
            )
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return WorkerUnavailableError(
                f"{where} did not answer within the deadline of {self.timeout:g} s while "
                f"{waiting} was waiting; raise the client's timeout if the work takes longer"
            )
        if code == grpc.StatusCode.UNAVAILABLE and "ping" in details.lower():  # "ping timeout"
            return WorkerUnavailableError(
                f"{where} stopped answering (no keepalive reply within "
                f"{2 * self.keepalive_s:g} s) while {waiting} was waiting; is the worker "
                "process stopped, or its host or network down?"
            )
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
            return WorkerUnavailableError(
                f"{where} is unreachable ({details}) while {waiting} was waiting"
            )
        # The worker aborts a call only for envelope-level errors; its details name the class.
        error = error_from_status(code, details)
        error.args = (f"{where}: {error.args[0] if error.args else details}",)
        return error


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


def _result(call: grpc.Future) -> Any:
    """``call.result()``, waited for in short slices so that signals get through."""
    while True:
        try:
            return call.result(timeout=WAIT_SLICE_SECONDS)
        except grpc.FutureTimeoutError:
            continue


def _remaining(deadline: float | None) -> float | None:
    """Seconds left until ``deadline`` (a ``time.monotonic`` value), at least a millisecond."""
    return None if deadline is None else max(0.001, deadline - time.monotonic())


def _waiting_for(requests: list[Request]) -> str:
    """``a batch of 3 requests (EXEC_INST 'tsmm' -> 'G', GET 'G', CLEAR)`` for messages."""
    named = ", ".join(describe(request) for request in requests[:_DESCRIBED_REQUESTS])
    more = ", ..." if len(requests) > _DESCRIBED_REQUESTS else ""
    plural = "" if len(requests) == 1 else "s"
    return f"a batch of {len(requests)} request{plural} ({named}{more})"
