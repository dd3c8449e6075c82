"""Executing a batch of federated requests, independent of the transport.

Requests run in order inside the caller's ``TenantScope``. Each gets its own response; once one
fails, the rest of the batch is answered with ``RequestSkippedError`` instead of running on a
state the caller did not expect. Every error message names the request and its cause.

READs go through the worker's ``ReadCache`` (one copy per file, shared by tenants) and EXEC_INST
results through its ``LineageCache`` (a repeated computation is a lookup); see ``variables``.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import inspect
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from fedla.runtime.errors import (
    AccessDeniedError,
    FedlaError,
    InvalidArgumentError,
    RequestSkippedError,
    WorkerInternalError,
)
from fedla.runtime.kernels import get_kernel
from fedla.runtime.lineage_cache import LineageCache
from fedla.runtime.protocol import fedla_pb2 as pb
from fedla.runtime.protocol.codec import Encoder, decode_value
from fedla.runtime.worker.data_reader import (
    data_format,
    file_fingerprint,
    read_matrix,
    resolve_data_path,
)
from fedla.runtime.worker.read_cache import ReadCache
from fedla.runtime.worker.tenant_scope import TenantRegistry, TenantScope
from fedla.runtime.worker.variables import (
    DerivedVariable,
    LiteralInput,
    PinnedVariable,
    ReadVariable,
    Variable,
    array_digest,
)

_LOGGER = logging.getLogger(__name__)

DEFAULT_ALLOWED_MODULES = ("fedla.algorithms",)
"""Packages whose functions EXEC_UDF may call unless the operator allows more."""

DEFAULT_TENANT_TIMEOUT_SECONDS = 24 * 3600.0
"""A tenant idle this long loses its scope (``fedla worker --tenant-timeout``)."""


def default_cache_bytes() -> int:
    """The lineage cache budget when the operator sets none: a quarter of RAM, at most 4 GiB."""
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        physical = 8 * 1024**3
    return min(4 * 1024**3, physical // 4)


@dataclass
class WorkerConfig:
    """What the operator decided when starting the worker."""

    data_dir: Path
    allowed_modules: tuple[str, ...] = DEFAULT_ALLOWED_MODULES
    max_request_bytes: int = 16 * 1024**3
    cache_bytes: int = field(default_factory=default_cache_bytes)
    tenant_timeout: float = DEFAULT_TENANT_TIMEOUT_SECONDS
    tenants: TenantRegistry = field(default_factory=TenantRegistry)


class RequestHandler:
    """Runs batches of decoded envelopes against the worker's tenant scopes and caches."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.read_cache = ReadCache()
        self.lineage_cache = LineageCache(config.cache_bytes)

    def handle_batch(
        self, batch: pb.BatchRequest, buffers: list[np.ndarray]
    ) -> tuple[pb.BatchResponse, list[memoryview]]:
        """Execute ``batch`` and return the response envelope with its out-of-line buffers."""
        encoder = Encoder()
        held: list[DerivedVariable] = []  # results kept for later requests of this batch
        responses: list[pb.Response] = []
        failed: int | None = None
        try:
            scope = self.config.tenants.scope(batch.tenant)
        except FedlaError as exc:
            scope, failed = None, -1
            responses = [_error_response(exc) for _ in batch.requests]
        for index, request in enumerate(batch.requests):
            if scope is None:
                break
            label = _label(index, request)
            if failed is not None:
                skipped = RequestSkippedError(
                    f"{label} was not executed because request #{failed} failed"
                )
                responses.append(_error_response(skipped))
                continue
            try:
                _LOGGER.debug("tenant %s: %s", batch.tenant, label)
                responses.append(self._handle(scope, request, buffers, encoder, held))
            except FedlaError as exc:
                failed = index
                responses.append(_error_response(type(exc)(f"{label}: {exc}")))
            except Exception as exc:  # noqa: BLE001 - the worker must answer and keep serving
                failed = index
                _LOGGER.exception("tenant %s: %s failed unexpectedly", batch.tenant, label)
                error = WorkerInternalError(f"{label}: {type(exc).__name__}: {exc}")
                responses.append(_error_response(error))
        for variable in held:
            variable.release()
        envelope = pb.BatchResponse(
            responses=responses, buffer_sizes=[len(b) for b in encoder.buffers]
        )
        return envelope, encoder.buffers

    def _handle(
        self,
        scope: TenantScope,
        request: pb.Request,
        buffers: list[np.ndarray],
        encoder: Encoder,
        held: list[DerivedVariable],
    ) -> pb.Response:
        kind = request.WhichOneof("kind")
        if kind == "read":
            return self._read(scope, request.read)
        if kind == "put":
            value = decode_value(request.put.value, buffers)
            scope.put(request.put.var, PinnedVariable(value))
            return pb.Response(meta=_metadata(value))
        if kind == "get":
            return pb.Response(value=encoder.value(scope.get(request.get.var).value()))
        if kind == "exec_inst":
            return self._exec_inst(scope, request.exec_inst, buffers, held)
        if kind == "exec_udf":
            return self._exec_udf(scope, request.exec_udf, buffers, encoder)
        if kind == "clear":
            if request.clear.all:
                scope.drop_all()
            else:
                scope.drop(list(request.clear.vars))
            return pb.Response(done=pb.Empty())
        raise InvalidArgumentError("request has no type; expected READ, PUT, GET, EXEC or CLEAR")

    def _read(self, scope: TenantScope, read: pb.Read) -> pb.Response:
        path = resolve_data_path(self.config.data_dir, read.path)
        fmt = data_format(path, read.format)
        options = dict(read.options)
        fingerprint = file_fingerprint(path, fmt, options)
        loaded, reused = self.read_cache.load(
            fingerprint, lambda: read_matrix(path, fmt, options)
        )
        scope.put(read.var, ReadVariable(loaded))
        meta = _metadata(loaded.value, count_nonzero=True)
        meta.fingerprint = fingerprint
        meta.reused = reused
        return pb.Response(meta=meta)

    def _exec_inst(
        self,
        scope: TenantScope,
        inst: pb.ExecInst,
        buffers: list[np.ndarray],
        held: list[DerivedVariable],
    ) -> pb.Response:
        kernel = get_kernel(inst.op)  # an unknown op fails before its inputs are looked up
        inputs = [_input(scope, operand, buffers) for operand in inst.inputs]
        attrs = {key: decode_value(value, buffers) for key, value in inst.attrs.items()}
        # Kernels are called as fn(xp, *inputs, **attrs); xp is not an input of the request.
        # Only the arity and names are checked here, so no input value needs computing.
        _check_arguments(kernel, f"operation {inst.op!r}", [None, *inputs], attrs, skip=1)
        variable = DerivedVariable(
            inst.op, attrs, _digest(inst.attrs), inputs, self.lineage_cache, scope.tenant
        )
        result, reused = variable.hold()
        held.append(variable)
        scope.put(inst.output, variable)
        meta = _metadata(result)
        meta.reused = reused
        return pb.Response(meta=meta)

    def _exec_udf(
        self, scope: TenantScope, udf: pb.ExecUdf, buffers: list[np.ndarray], encoder: Encoder
    ) -> pb.Response:
        function = self._allowed_function(udf.function)
        inputs = [_value(_input(scope, operand, buffers)) for operand in udf.inputs]
        attrs = {key: decode_value(value, buffers) for key, value in udf.attrs.items()}
        _check_arguments(function, f"function {udf.function!r}", inputs, attrs)
        result = function(*inputs, **attrs)
        outputs = list(udf.outputs)
        if not outputs:
            return pb.Response(value=encoder.value(result))
        values = [result] if len(outputs) == 1 else result
        if not isinstance(values, (list, tuple)) or len(values) != len(outputs):
            raise InvalidArgumentError(
                f"{udf.function} must return {len(outputs)} values for outputs {outputs}"
            )
        for name, value in zip(outputs, values):
            scope.put(name, PinnedVariable(value))
        return pb.Response(done=pb.Empty())

    def status(self) -> pb.WorkerStatus:
        """Tenants, variables and cache figures, for ``fedla status``."""
        tenants = [
            pb.TenantStatus(
                tenant_hint=hashlib.blake2b(scope.tenant.encode(), digest_size=4).hexdigest(),
                variables=len(scope.names()),
                held_bytes=scope.held_bytes(),
                idle_seconds=time.monotonic() - scope.last_used,
            )
            for scope in self.config.tenants.tenants()
        ]
        return pb.WorkerStatus(
            data_dir=str(self.config.data_dir.resolve()),
            tenants=tenants,
            read_cache=pb.CacheStatus(**self.read_cache.stats()),
            lineage_cache=pb.CacheStatus(**self.lineage_cache.stats()),
            tenant_timeout_seconds=self.config.tenant_timeout,
        )

    def _allowed_function(self, reference: str) -> Any:
        module_name, sep, name = reference.partition(":")
        if not sep or not module_name or not name.isidentifier():
            raise InvalidArgumentError(
                f"function reference {reference!r} must look like 'package.module:function'"
            )
        if name.startswith("_"):
            raise AccessDeniedError(
                f"{reference!r} names a private attribute; only public functions can be called"
            )
        allowed = self.config.allowed_modules
        if not any(module_name == p or module_name.startswith(p + ".") for p in allowed):
            raise AccessDeniedError(
                f"module {module_name!r} is not allowed at this worker; its operator allows "
                f"{', '.join(allowed) or 'none'} (start the worker with --allow-module PKG)"
            )
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise InvalidArgumentError(f"cannot import {module_name!r}: {exc}") from None
        function = getattr(module, name, None)
        if not callable(function):
            raise InvalidArgumentError(f"{reference!r} is not a function")
        return function


def _signature(function: Any) -> inspect.Signature | None:
    """``function``'s signature (cached; kernels and UDFs are called again and again)."""
    try:
        return _cached_signature(function)
    except TypeError:  # an unhashable callable: inspect it without the cache
        return _cached_signature.__wrapped__(function)


@functools.lru_cache(maxsize=256)
def _cached_signature(function: Any) -> inspect.Signature | None:
    try:
        return inspect.signature(function)
    except (TypeError, ValueError):  # some builtins have no introspectable signature
        return None


def _check_arguments(
    function: Any, label: str, args: list[Any], kwargs: dict[str, Any], skip: int = 0
) -> None:
    """Raise ``InvalidArgumentError`` when ``function`` cannot take ``args`` and ``kwargs``.

    Catching this before the call keeps a caller's wrong arity or unknown attribute from
    surfacing as an internal error (a ``TypeError`` from inside the function still does).
    ``skip`` leading arguments are supplied by the worker and left out of the message.
    """
    signature = _signature(function)
    if signature is None:
        return
    try:
        signature.bind(*args, **kwargs)
    except TypeError as exc:
        params = list(signature.parameters.values())[skip:]
        raise InvalidArgumentError(
            f"{label} cannot take {len(args) - skip} input(s) and attrs {sorted(kwargs)}: {exc}; "
            f"its parameters are ({', '.join(str(p) for p in params)})"
        ) from None


def _input(
    scope: TenantScope, operand: pb.Operand, buffers: list[np.ndarray]
) -> Variable | LiteralInput:
    if operand.WhichOneof("kind") == "literal":
        value = decode_value(operand.literal, buffers)
        if isinstance(value, np.ndarray) or sp.issparse(value):
            # A large literal's message holds only a buffer index: digest the content itself.
            return LiteralInput(value, array_digest(value), shared=False)
        return LiteralInput(value, _digest_message(operand.literal), shared=True)
    return scope.get(operand.var)


def _value(item: Variable | LiteralInput) -> Any:
    return item.value() if isinstance(item, Variable) else item.value


def _digest_message(message: Any) -> str:
    data = message.SerializeToString(deterministic=True)
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _digest(attrs: Any) -> str:
    """Digest of an attribute map, independent of the order the client wrote it in."""
    digest = hashlib.blake2b(digest_size=16)
    for key in sorted(attrs):
        digest.update(key.encode() + b"\x00" + _digest_message(attrs[key]).encode())
    return digest.hexdigest()


def _metadata(value: Any, count_nonzero: bool = False) -> pb.Metadata:
    if sp.issparse(value):
        return pb.Metadata(shape=value.shape, dtype=value.dtype.str, sparse=True, nnz=value.nnz)
    if isinstance(value, np.ndarray):
        nnz = int(np.count_nonzero(value)) if count_nonzero else -1
        return pb.Metadata(shape=value.shape, dtype=value.dtype.str, nnz=nnz)
    if isinstance(value, np.generic):
        return pb.Metadata(dtype=value.dtype.str, nnz=-1)
    return pb.Metadata(dtype=type(value).__name__, nnz=-1)


def _error_response(error: FedlaError) -> pb.Response:
    return pb.Response(
        error=pb.Error(type=type(error).__name__, code=error.code.name, message=str(error))
    )


def _label(index: int, request: pb.Request) -> str:
    kind = request.WhichOneof("kind")
    if kind == "read":
        return f"request #{index} READ {request.read.path!r} -> {request.read.var!r}"
    if kind == "put":
        return f"request #{index} PUT -> {request.put.var!r}"
    if kind == "get":
        return f"request #{index} GET {request.get.var!r}"
    if kind == "exec_inst":
        inst = request.exec_inst
        return f"request #{index} EXEC_INST {inst.op!r} -> {inst.output!r}"
    if kind == "exec_udf":
        return f"request #{index} EXEC_UDF {request.exec_udf.function!r}"
    if kind == "clear":
        return f"request #{index} CLEAR"
    return f"request #{index} (no type)"
