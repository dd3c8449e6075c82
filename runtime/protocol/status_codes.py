"""The one table between fedla's error classes and gRPC status codes.

The servicer aborts a call with ``status_code(error)`` and writes its name into per-request
errors; the client turns a failed call back into an exception with ``error_from_status``. A
subclass without an entry of its own takes its nearest base class's code, so
``ShapeMismatchError`` travels as INVALID_ARGUMENT like ``InvalidArgumentError``.
"""

from __future__ import annotations

import grpc

from fedla.runtime.errors import (
    ERROR_CLASSES,
    AccessDeniedError,
    AuthenticationError,
    CallCancelledError,
    DataFileNotFoundError,
    FedlaError,
    InvalidArgumentError,
    RequestSkippedError,
    ResourceLimitError,
    UnknownKernelError,
    UnknownVariableError,
    WorkerInternalError,
    WorkerUnavailableError,
)

STATUS_CODES: dict[type[FedlaError], grpc.StatusCode] = {
    InvalidArgumentError: grpc.StatusCode.INVALID_ARGUMENT,
    UnknownVariableError: grpc.StatusCode.NOT_FOUND,
    DataFileNotFoundError: grpc.StatusCode.NOT_FOUND,
    UnknownKernelError: grpc.StatusCode.UNIMPLEMENTED,
    AuthenticationError: grpc.StatusCode.UNAUTHENTICATED,
    AccessDeniedError: grpc.StatusCode.PERMISSION_DENIED,
    ResourceLimitError: grpc.StatusCode.RESOURCE_EXHAUSTED,
    RequestSkippedError: grpc.StatusCode.ABORTED,
    WorkerUnavailableError: grpc.StatusCode.UNAVAILABLE,
    CallCancelledError: grpc.StatusCode.CANCELLED,
    WorkerInternalError: grpc.StatusCode.INTERNAL,
    FedlaError: grpc.StatusCode.INTERNAL,
}
"""Error class -> status code; the first class listed for a code is the one a code maps back to."""

_CLASS_OF_CODE: dict[grpc.StatusCode, type[FedlaError]] = {
    **{code: cls for cls, code in reversed(STATUS_CODES.items())},
    grpc.StatusCode.DEADLINE_EXCEEDED: WorkerUnavailableError,
}


def status_code(error: FedlaError) -> grpc.StatusCode:
    """The status code ``error`` travels with: that of its class or its nearest listed base."""
    for cls in type(error).__mro__:
        if cls in STATUS_CODES:
            return STATUS_CODES[cls]  # type: ignore[index]
    return grpc.StatusCode.INTERNAL


def error_from_status(code: grpc.StatusCode | None, details: str) -> FedlaError:
    """The exception for a call that ended with ``code`` and ``details``.

    A worker aborts a call with details ``"ErrorClass: message"``; that class is rebuilt when it
    is known. Otherwise the class follows from the code (INTERNAL for codes fedla never sends)
    and the message is the whole ``details``.
    """
    type_name, separator, message = details.partition(": ")
    if separator and type_name in ERROR_CLASSES:
        return ERROR_CLASSES[type_name](message)
    cls = _CLASS_OF_CODE.get(code, WorkerInternalError) if code is not None else WorkerInternalError
    return cls(details)
