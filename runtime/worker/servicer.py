"""The thin gRPC servicer: frames -> ``decode_batch`` -> ``RequestHandler.handle`` -> frames.

Frames arrive as raw bytes and are parsed in ``framing``, so that bytes which are not a valid
frame become a clear ``MalformedRequestError`` (INVALID_ARGUMENT) instead of gRPC's generic
failure. Envelope-level errors abort the call with the status code of the error class
(``protocol.status_codes``); request-level errors travel inside the response.

Every RPC first authenticates its caller from the call metadata and the TLS auth context
(``worker.auth``), before a frame is read: an unauthenticated call costs no allocation.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from typing import NoReturn

import grpc
import numpy as np

from fedla.runtime.errors import (
    FedlaError,
    MalformedRequestError,
    ResourceLimitError,
    UnknownVariableError,
)
from fedla.runtime.protocol import fedla_pb2 as pb
from fedla.runtime.protocol.batch_codec import decode_batch, encode_results
from fedla.runtime.protocol.framing import (
    UNARY_BYTES,
    from_frames,
    leading_tenant,
    message_size,
    pack_message,
    to_frames,
    unpack_frames,
)
from fedla.runtime.protocol.status_codes import status_code
from fedla.runtime.worker.auth import Authenticator
from fedla.runtime.worker.frame_reader import TimedFrames
from fedla.runtime.worker.principal import Principal
from fedla.runtime.worker.request_handler import RequestHandler
from fedla.runtime.worker.stream_slots import StreamSlots

_LOGGER = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Worker"].full_name


class WorkerServicer:
    """Serves ``fedla.v1.Worker``: ``Call``, ``Execute``, ``Fetch`` and ``Status``."""

    def __init__(
        self, handler: RequestHandler, authenticator: Authenticator | None = None
    ) -> None:
        self.handler = handler
        self.authenticator = authenticator or Authenticator(tokens={}, operator_tokens={})
        self._started = time.monotonic()
        self._tickets: dict[str, tuple[str, float, pb.BatchResponse, list[memoryview]]] = {}
        self._lock = threading.Lock()
        streams = handler.config.limits.max_streams_per_tenant
        self._slots = StreamSlots(streams)
        # Without credentials a stream names its tenant only in its first frame; until then it
        # counts among the unnamed ones, which share twice one tenant's budget.
        self._unnamed = StreamSlots(2 * streams, who="streams not yet naming a tenant")

    def call(self, raw_message: bytes, context: grpc.ServicerContext) -> bytes:
        """A small batch in one message; a response too large for one is left under a ticket."""
        caller = self._authenticate(context)
        batch, buffers = self._receive(_unpacked(raw_message), context, caller)
        principal = caller or Principal(batch.tenant)
        self._take_slot(principal.tenant, context)
        try:
            response, out_buffers = self._handle(principal, batch, buffers)
        finally:
            self._slots.release(principal.tenant)
        if message_size(response, out_buffers) <= UNARY_BYTES:
            return pack_message(response, out_buffers)
        ticket = secrets.token_hex(16)
        with self._lock:
            self._expire_tickets()
            self._check_ticket_bytes(principal.tenant, message_size(response, out_buffers),
                                     context)
            self._tickets[ticket] = (principal.tenant, time.monotonic(), response, out_buffers)
        return pack_message(pb.BatchResponse(ticket=ticket), [])

    def execute(
        self, raw_frames: Iterator[bytes], context: grpc.ServicerContext
    ) -> Iterator[bytes]:
        """Streamed batch; yields serialized response frames.

        The stream holds one of its tenant's ``--max-streams-per-tenant`` slots from the moment
        the tenant is known (the credential, else the envelope frame) until the reply is sent,
        and each frame must follow the one before within ``--stream-timeout``.
        """
        caller = self._authenticate(context)
        limits = self.handler.config.limits
        frames: TimedFrames[bytes] = TimedFrames(raw_frames, limits.stream_timeout)
        held: list[str] = []  # the tenant whose slot this stream holds, once known
        unnamed: list[StreamSlots] = []  # the unnamed slot, held until the tenant is known
        try:
            if caller is not None:
                self._take_slot(caller.tenant, context)
                held.append(caller.tenant)
            else:
                self._take_slot("", context, self._unnamed)
                unnamed.append(self._unnamed)

            def take(tenant: str) -> None:  # without credentials: once the envelope names it
                if held and held[0] != tenant:
                    raise MalformedRequestError(
                        "the envelope names two tenants; a batch belongs to exactly one"
                    )
                if not held:
                    self._slots.acquire(tenant)
                    held.append(tenant)
                    while unnamed:
                        unnamed.pop().release("")

            batch, buffers = self._receive(
                frames if caller else _taking_slot(frames, take), context, caller,
                on_tenant=None if caller else take,
            )
            frames.close()
            response, out_buffers = self._handle(caller or Principal(batch.tenant), batch,
                                                 buffers)
            yield from to_frames(response, out_buffers)
        finally:
            frames.close()
            for tenant in held:
                self._slots.release(tenant)
            while unnamed:
                unnamed.pop().release("")

    def fetch(self, raw_message: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        """Stream the response held under a ticket, once, to the tenant that owns it."""
        caller = self._authenticate(context)
        try:
            request, _ = from_frames(_unpacked(raw_message), pb.FetchRequest)
            owner = caller.tenant if caller else request.tenant
            with self._lock:
                self._expire_tickets()
                held = self._tickets.get(request.ticket)
                if held is None or held[0] != owner:
                    raise UnknownVariableError(
                        f"no pending response under ticket {request.ticket!r} for this tenant"
                    )
                del self._tickets[request.ticket]
        except FedlaError as exc:
            self._abort(context, exc)
        _, _, response, out_buffers = held
        yield from to_frames(response, out_buffers)

    def status(self, raw_message: bytes, context: grpc.ServicerContext) -> bytes:
        """The worker's status: a tenant sees its own scope, an operator every tenant's."""
        caller = self._authenticate(context, operator=True)
        try:
            request, _ = from_frames(_unpacked(raw_message), pb.StatusRequest)
        except FedlaError as exc:
            self._abort(context, exc)
        status = _status(self.handler, caller, request.tenant)
        status.uptime_seconds = time.monotonic() - self._started
        status.rss_bytes = _resident_bytes()
        return pack_message(status, [])

    def generic_handler(self) -> grpc.GenericRpcHandler:
        """The handler to register with a ``grpc.Server``."""
        return grpc.method_handlers_generic_handler(
            SERVICE_NAME,
            {
                "Call": grpc.unary_unary_rpc_method_handler(self.call),
                "Execute": grpc.stream_stream_rpc_method_handler(self.execute),
                "Fetch": grpc.unary_stream_rpc_method_handler(self.fetch),
                "Status": grpc.unary_unary_rpc_method_handler(self.status),
            },
        )

    def _authenticate(
        self, context: grpc.ServicerContext, *, operator: bool = False
    ) -> Principal | None:
        """The caller's credential identity; None when the worker runs without credentials."""
        try:
            return self.authenticator.identify(
                context.invocation_metadata() or (), context.auth_context() or {},
                operator=operator,
            )
        except FedlaError as exc:
            self._abort(context, exc)

    def _handle(
        self, principal: Principal, batch: pb.BatchRequest, buffers: list[np.ndarray]
    ) -> tuple[pb.BatchResponse, list[memoryview]]:
        """Decode, execute and encode one batch in ``principal``'s tenant scope."""
        requests = decode_batch(batch, buffers)
        results = self.handler.handle(principal, requests)
        return encode_results(requests, results)

    def _receive(
        self, raw_frames: Iterator[bytes] | Iterator[memoryview], context: grpc.ServicerContext,
        caller: Principal | None, on_tenant: Callable[[str], None] | None = None,
    ) -> tuple[pb.BatchRequest, list[np.ndarray]]:
        """The batch and its buffers; the caller's quota admits the buffers before allocation.

        ``caller`` is the authenticated principal; without credentials configured, the
        envelope's tenant is the principal. ``on_tenant(tenant)`` runs (and may refuse by
        raising) once the envelope is parsed, before any buffer is allocated.
        """
        limits = self.handler.config.limits

        def admit(batch: pb.BatchRequest, declared: int) -> None:
            principal = caller or Principal(batch.tenant)
            if on_tenant is not None:
                on_tenant(principal.tenant)
            self.handler.admit(principal, declared)

        try:
            return from_frames(
                raw_frames, pb.BatchRequest, self.handler.config.max_request_bytes,
                max_envelope_bytes=limits.max_envelope_bytes, max_buffers=limits.max_buffers,
                admit=admit,
            )
        except FedlaError as exc:
            self._abort(context, exc)

    def _take_slot(
        self, tenant: str, context: grpc.ServicerContext, slots: StreamSlots | None = None
    ) -> None:
        """Take one of ``tenant``'s ``--max-streams-per-tenant`` slots, or abort the call."""
        try:
            (slots or self._slots).acquire(tenant)
        except FedlaError as exc:
            self._abort(context, exc)

    def _abort(self, context: grpc.ServicerContext, exc: FedlaError) -> NoReturn:
        _LOGGER.info("rejected a call from %s: %s", context.peer(), exc)
        if self.handler.audit_log is not None:  # refused before any request was decoded
            self.handler.audit_log.record("", "CALL", f"call from {context.peer()}", (), exc,
                                          value_sent=False)
        context.abort(status_code(exc), f"{type(exc).__name__}: {exc}")
        raise AssertionError("context.abort returned")  # grpc raises; this keeps mypy honest

    def _expire_tickets(self) -> None:
        now = time.monotonic()
        for ticket, (_, created, _, _) in list(self._tickets.items()):
            if now - created > self.handler.config.limits.ticket_ttl:
                del self._tickets[ticket]

    def _check_ticket_bytes(self, tenant: str, size: int, context: grpc.ServicerContext) -> None:
        """Abort when ``tenant``'s unfetched replies would exceed ``--ticket-mem``."""
        limit = self.handler.config.limits.ticket_bytes
        waiting = sum(
            message_size(response, buffers)
            for owner, _, response, buffers in self._tickets.values() if owner == tenant
        )
        if waiting + size > limit:
            self._abort(context, ResourceLimitError(
                f"the reply of {size} bytes would leave this tenant {waiting + size} bytes of "
                f"unfetched replies; the worker holds at most {limit} (--ticket-mem). Fetch "
                "replies, or GET smaller values"
            ))


def _taking_slot(frames: Iterator[bytes], take: Callable[[str], None]) -> Iterator[bytes]:
    """``frames``, calling ``take(tenant)`` when the first one names its tenant.

    An envelope that declares buffers is complete only when the first chunk arrives, so a
    stream that stalls after it would otherwise hold a thread without counting against its
    tenant's ``--max-streams-per-tenant``.
    """
    for index, frame in enumerate(frames):
        if index == 0:
            tenant = leading_tenant(frame)
            if tenant:
                take(tenant)
        yield frame


def _unpacked(raw_message: bytes) -> Iterator[memoryview]:
    """The frames of a ``Frames`` message, split lazily so errors surface inside ``_receive``."""
    yield from unpack_frames(raw_message)


def _status(
    handler: RequestHandler, caller: Principal | None, claimed_tenant: str
) -> pb.WorkerStatus:
    """Tenants, variables and cache figures, for ``fedla status``.

    An operator sees every tenant by name; an authenticated tenant only its own scope. A caller
    of a worker without credentials sees every scope's figures but no tenant id other than the
    one it sent (there, an id is the only credential). Nobody sees an absolute path: the data
    dir shows by name.
    """
    scopes = handler.config.tenants.tenants()
    if caller is not None and not caller.operator:
        scopes = [scope for scope in scopes if scope.tenant == caller.tenant]
    tenants = [
        pb.TenantStatus(
            tenant=scope.tenant if caller is not None or scope.tenant == claimed_tenant else "",
            variables=len(scope.names()),
            held_bytes=scope.held_bytes(),
            idle_seconds=time.monotonic() - scope.last_used,
        )
        for scope in scopes
    ]
    status = pb.WorkerStatus(
        data_dir=handler.config.data_dir.resolve().name,
        tenants=tenants,
        tenant_timeout_seconds=handler.config.tenant_timeout,
    )
    if caller is None or caller.operator:  # hit counts would tell a tenant about others' work
        status.read_cache.CopyFrom(pb.CacheStatus(**handler.read_cache.stats()))
        status.lineage_cache.CopyFrom(pb.CacheStatus(**handler.lineage_cache.stats()))
    return status


def _resident_bytes() -> int:
    """Resident memory of this process (Linux ``/proc``), else its peak."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
