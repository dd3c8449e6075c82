"""Executing a batch of federated requests, independent of the transport.

Requests run in order inside the caller's ``TenantScope``. Each gets its own response; once one
fails, the rest of the batch is answered with ``RequestSkippedError`` instead of running on a
state the caller did not expect. Every error message names the request and its cause.

READs go through the worker's ``ReadCache`` (one copy per file, shared by tenants) and EXEC_INST
results through its ``LineageCache`` (a repeated computation is a lookup); see ``variables``.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
import os
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
    ResourceLimitError,
    WorkerInternalError,
)
from fedla.runtime.kernels import get_kernel
from fedla.runtime.lineage_cache import LineageCache, value_nbytes
from fedla.runtime.privacy import derive
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
from fedla.runtime.udf_registry import (
    callbacks_of,
    import_packages,
    in_packages,
    registered_function,
)
from fedla.runtime.worker.audit_log import AuditLog
from fedla.runtime.worker.data_reader import (
    data_format,
    file_fingerprint,
    open_data_file,
    read_matrix,
    resolve_data_path,
)
from fedla.runtime.worker.dataset_policy import load_policy
from fedla.runtime.worker.limits import WorkerLimits
from fedla.runtime.worker.principal import Principal
from fedla.runtime.worker.privacy_guard import (
    check_release,
    privacy_of,
    request_datasets,
    udf_privacy,
)
from fedla.runtime.worker.read_cache import ReadCache
from fedla.runtime.worker.tenant_scope import TenantRegistry, TenantScope
from fedla.runtime.worker.variables import (
    DerivedVariable,
    LiteralInput,
    PinnedVariable,
    ReadVariable,
    Variable,
)

_LOGGER = logging.getLogger(__name__)

DEFAULT_ALLOWED_MODULES = ("fedla.algorithms", "fedla.runtime.paramserv.site_training")
"""Packages whose registered functions (``fedla.runtime.udf_registry``) EXEC_UDF may call unless
the operator allows more: the models' gradient functions and the site side of federated
training, which calls them."""

REFUSALS = (AccessDeniedError, ResourceLimitError)
"""Errors that mean the worker refused a request (logged at INFO; an operator wants to see
them without DEBUG's line per request)."""

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
    limits: WorkerLimits = field(default_factory=WorkerLimits)
    tenants: TenantRegistry = field(default_factory=TenantRegistry)
    audit_log: Path | None = None


class RequestHandler:
    """Runs batches of decoded requests against the worker's tenant scopes and caches.

    The gRPC servicer calls ``handle`` with what it decoded; a site in the coordinator's own
    process and a Spark task call it directly.
    """

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        config.tenants.limits = config.limits
        import_packages(config.allowed_modules)  # their @remote_function decorators register
        self.read_cache = ReadCache()
        self.lineage_cache = LineageCache(config.cache_bytes)
        # A dropped tenant's private results can never be reused: free them with its scope.
        config.tenants.on_drop.append(self.lineage_cache.drop_tag)
        self.audit_log = AuditLog(config.audit_log) if config.audit_log else None

    def admit(self, principal: Principal, declared_bytes: int) -> None:
        """Refuse a message whose buffers would put its tenant over ``--tenant-mem``.

        Called with the bytes a message's envelope declares, before they are allocated. A
        message without buffers is not checked here: ``handle`` answers each of its requests.
        """
        if declared_bytes == 0:
            return
        scope = self.config.tenants.scope(principal.tenant)
        self.config.limits.check_tenant_bytes(
            scope.pinned_bytes(), declared_bytes, "the message's buffers"
        )

    def handle(
        self, principal: Principal, requests: list[Request | FedlaError]
    ) -> list[Metadata | Any | None | FedlaError]:
        """Execute ``requests`` in order in ``principal``'s tenant scope.

        Parameters
        ----------
        principal : Principal
            The caller; its tenant's scope holds every variable the batch names.
        requests : list of Request or FedlaError
            Decoded requests; an error stands for a request that did not decode and fails in
            its slot.

        Returns
        -------
        list
            One result per request, never raised: ``Metadata`` for READ, PUT and EXEC_INST, the
            value for GET and for EXEC_UDF without outputs, ``None`` for CLEAR and EXEC_UDF with
            outputs, and a ``FedlaError`` for a request that failed; the requests after a
            failure are not run and get ``RequestSkippedError``. The error messages name the
            request (``request #2 EXEC_INST 'tsmm' -> 'G': ...``) and the cause.
        """
        try:
            with self.config.tenants.using(principal.tenant) as scope:  # never dropped meanwhile
                return self._handle_in(principal, scope, requests)
        except FedlaError as exc:  # no scope for this tenant
            for index, request in enumerate(requests):
                if self.audit_log is not None:
                    self._audit(principal, None, index, request, exc)
            return [exc for _ in requests]

    def _handle_in(
        self, principal: Principal, scope: TenantScope, requests: list[Request | FedlaError]
    ) -> list[Metadata | Any | None | FedlaError]:
        results: list[Metadata | Any | None | FedlaError] = []
        held: list[DerivedVariable] = []  # results kept for later requests of this batch
        failed: int | None = None
        try:
            for index, request in enumerate(requests):
                if failed is not None:
                    label = _label(index, request)
                    results.append(RequestSkippedError(
                        f"{label} was not executed because request #{failed} failed"
                    ))
                elif isinstance(request, FedlaError):  # labelled by the decoder
                    failed = index
                    results.append(request)
                else:
                    results.append(self._run(principal, scope, index, request, held))
                    if isinstance(results[-1], FedlaError):
                        failed = index
                if self.audit_log is not None:
                    self._audit(principal, scope, index, request, results[-1])
        finally:
            for variable in held:
                variable.release()
        return results

    def _run(
        self,
        principal: Principal,
        scope: TenantScope,
        index: int,
        request: Request,
        held: list[DerivedVariable],
    ) -> Metadata | Any | None | FedlaError:
        """One request's result, or its error labelled with the request."""
        label = _label(index, request)
        try:
            _LOGGER.debug("tenant %s: %s", principal.tenant, label)
            return self._execute(scope, request, held)
        except FedlaError as exc:
            if isinstance(exc, REFUSALS):
                _LOGGER.info("tenant %s: refused %s: %s", principal.tenant, label, exc)
            return type(exc)(f"{label}: {exc}")
        except MemoryError:
            _LOGGER.warning("tenant %s: %s ran out of memory", principal.tenant, label)
            return ResourceLimitError(
                f"{label}: the worker has not enough memory for it; send smaller blocks or "
                "ask its operator for more memory"
            )
        except Exception as exc:  # noqa: BLE001 - the worker must answer and keep serving
            _LOGGER.exception("tenant %s: %s failed unexpectedly", principal.tenant, label)
            return WorkerInternalError(f"{label}: {type(exc).__name__}: {exc}")

    def _execute(
        self, scope: TenantScope, request: Request, held: list[DerivedVariable]
    ) -> Metadata | Any | None:
        if isinstance(request, Read):
            return self._read(scope, request)
        if isinstance(request, Put):
            self.config.limits.check_tenant_bytes(
                scope.pinned_bytes(), value_nbytes(request.value), "the value"
            )
            scope.put(request.var, PinnedVariable(request.value))
            return _metadata(request.value)
        if isinstance(request, Get):
            variable = scope.get(request.var)
            check_release(variable)
            return variable.value()
        if isinstance(request, ExecInst):
            return self._exec_inst(scope, request, held)
        if isinstance(request, ExecUdf):
            return self._exec_udf(scope, request)
        if isinstance(request, Clear):
            if request.all:
                # Results derived from this tenant's private data are cached under keys only
                # it can make: with all its variables gone they only hold memory. (A CLEAR of
                # some variables keeps them: coordinators clear a plan's intermediates after
                # each plan and reuse their cached values in the next one.)
                scope.drop_all()
                self.lineage_cache.drop_tag(scope.tenant)
            else:
                scope.drop(list(request.vars))
            return None
        raise InvalidArgumentError(
            f"{request!r:.80} is not a request; expected Read, Put, Get, ExecInst, ExecUdf or Clear"
        )

    def _read(self, scope: TenantScope, read: Read) -> Metadata:
        path = resolve_data_path(self.config.data_dir, read.path)
        fmt = data_format(path, read.format)
        options = dict(read.options)
        policy = load_policy(self.config.data_dir, path)
        policy.check_reader(scope.tenant)
        with open_data_file(self.config.data_dir, path, read.path) as file:  # no symlink race
            fingerprint = file_fingerprint(path, fmt, options, os.fstat(file.fileno()))
            loaded, reused = self.read_cache.load(
                fingerprint, lambda: read_matrix(path, fmt, options, file)
            )
        privacy = policy.privacy(rows=loaded.value.shape[0])
        scope.put(read.var, ReadVariable(loaded, privacy=privacy))
        meta = _metadata(loaded.value, count_nonzero=True)
        reused = scope.own_reuse(fingerprint, reused)  # never another tenant's READ
        return dataclasses.replace(meta, fingerprint=fingerprint, reused=reused,
                                   privacy=policy.level.value, min_rows=policy.min_rows)

    def _exec_inst(
        self, scope: TenantScope, inst: ExecInst, held: list[DerivedVariable]
    ) -> Metadata:
        kernel = get_kernel(inst.op)  # an unknown op fails before its inputs are looked up
        inputs = [_input(scope, operand) for operand in inst.inputs]
        attrs = dict(inst.attrs)
        # Kernels are called as fn(backend, *inputs, **attrs); the backend is not an input.
        # Only the arity and names are checked here, so no input value needs computing.
        _check_arguments(kernel, f"operation {inst.op!r}", [None, *inputs], attrs, skip=1)
        variable = DerivedVariable(inst.op, attrs, inputs, self.lineage_cache, scope.tenant,
                                   privacy=derive(inst.op, attrs, [privacy_of(i) for i in inputs]))
        result, reused = variable.hold()
        held.append(variable)
        scope.put(inst.output, variable)
        reused = scope.own_reuse(variable.cache_key, reused)  # never another tenant's EXEC
        return dataclasses.replace(_metadata(result), reused=reused)

    def _exec_udf(self, scope: TenantScope, udf: ExecUdf) -> Any:
        function = self._allowed_function(udf.function)
        items = [_input(scope, operand) for operand in udf.inputs]
        privacy = udf_privacy(udf.function, items, returned=not udf.outputs)
        inputs = [_value(item) for item in items]
        attrs = dict(udf.attrs)
        for name in callbacks_of(udf.function):
            reference = attrs.get(name)
            if not isinstance(reference, str):
                raise InvalidArgumentError(
                    f"function {udf.function!r} takes {name!r} as a 'module:function' reference "
                    f"to a registered remote function; got {type(reference).__name__}"
                )
            attrs[name] = self._allowed_function(reference)
        _check_arguments(function, f"function {udf.function!r}", inputs, attrs)
        try:
            result = function(*inputs, **attrs)
        except (TypeError, ValueError, AttributeError, IndexError, KeyError) as exc:
            # A registered function is a pure function of what the caller sent: failing on it
            # is a bad argument (strings for arrays, wrong shapes), not a worker fault.
            _LOGGER.debug("%s failed on its inputs", udf.function, exc_info=True)
            raise InvalidArgumentError(
                f"function {udf.function!r} cannot run on the given inputs: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        outputs = list(udf.outputs)
        if not outputs:
            return result
        values = [result] if len(outputs) == 1 else result
        if not isinstance(values, (list, tuple)) or len(values) != len(outputs):
            raise InvalidArgumentError(
                f"{udf.function} must return {len(outputs)} values for outputs {outputs}"
            )
        for name, value in zip(outputs, values):
            scope.put(name, PinnedVariable(value, privacy=privacy))
        return None

    def _audit(self, principal: Principal, scope: TenantScope | None, index: int,
               request: Request | FedlaError, result: Any) -> None:
        assert self.audit_log is not None
        detail = _label(index, request)
        kind = "UNDECODED" if isinstance(request, FedlaError) else describe(request).split()[0]
        returned = isinstance(request, Get) or (
            isinstance(request, ExecUdf) and not request.outputs
        )
        datasets = request_datasets(scope, request) if scope is not None else ()
        self.audit_log.record(principal.tenant, kind, detail, datasets, result,
                              value_sent=returned)

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
        if not in_packages(module_name, allowed):
            raise AccessDeniedError(
                f"module {module_name!r} is not allowed at this worker; its operator allows "
                f"{', '.join(allowed) or 'none'} (start the worker with --allow-module PKG)"
            )
        function = registered_function(reference, allowed)
        if function is None:
            raise AccessDeniedError(
                f"{reference!r} is not a registered remote function at this worker; only "
                "functions decorated with @fedla.runtime.udf_registry.remote_function in an "
                "allowed package can be called. An operator registers one in their own package "
                "and starts the worker with --allow-module PKG; `fedla worker --list-udfs` "
                "lists what is callable"
            )
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
    names = tuple(sorted(kwargs))
    try:
        problem = _binding_problem(function, len(args), names)
    except TypeError:  # an unhashable callable: bind without the cache
        problem = _binding_problem.__wrapped__(function, len(args), names)
    if problem is None:
        return
    params = list(_signature(function).parameters.values())[skip:]  # type: ignore[union-attr]
    raise InvalidArgumentError(
        f"{label} cannot take {len(args) - skip} input(s) and attrs {sorted(kwargs)}: {problem}; "
        f"its parameters are ({', '.join(str(p) for p in params)})"
    )


@functools.lru_cache(maxsize=1024)
def _binding_problem(function: Any, n_args: int, names: tuple[str, ...]) -> str | None:
    """Why ``function`` cannot take ``n_args`` positional arguments and keywords ``names``.

    None if it can. Binding looks only at how many arguments there are and their names, so
    the answer is cached: a training site binds the same call every round.
    """
    signature = _signature(function)
    if signature is None:
        return None
    try:
        signature.bind(*[None] * n_args, **dict.fromkeys(names))
    except TypeError as exc:
        return str(exc)
    return None


def _input(scope: TenantScope, operand: Operand) -> Variable | LiteralInput:
    if isinstance(operand, Literal):
        return LiteralInput(operand.value)
    return scope.get(operand)


def _value(item: Variable | LiteralInput) -> Any:
    return item.value() if isinstance(item, Variable) else item.value


def _metadata(value: Any, count_nonzero: bool = False) -> Metadata:
    if sp.issparse(value):
        return Metadata(
            shape=tuple(value.shape), dtype=value.dtype.str, sparse=True, nnz=int(value.nnz)
        )
    if isinstance(value, np.ndarray):
        nnz = int(np.count_nonzero(value)) if count_nonzero else -1
        return Metadata(shape=value.shape, dtype=value.dtype.str, sparse=False, nnz=nnz)
    if isinstance(value, np.generic):
        return Metadata(shape=(), dtype=value.dtype.str, sparse=False, nnz=-1)
    return Metadata(shape=(), dtype=type(value).__name__, sparse=False, nnz=-1)


def _label(index: int, request: Request | FedlaError) -> str:
    if isinstance(request, FedlaError):
        return f"request #{index}"
    return f"request #{index} {describe(request)}"
