"""Typed errors shared by worker and coordinator.

A worker raises these while handling a request; the protocol sends the class name, its status
code (``protocol.status_codes``) and the message; the client raises the same class again.
Anything that is not a ``FedlaError`` becomes ``WorkerInternalError`` (its traceback is logged at
the worker, not sent). This module has no transport dependency: in-process sites and Spark tasks
raise and catch the same classes.
"""

from __future__ import annotations


class FedlaError(Exception):
    """Base class of every error fedla raises on purpose."""


class InvalidArgumentError(FedlaError, ValueError):
    """A request or an argument is malformed or out of range."""


class ShapeMismatchError(InvalidArgumentError):
    """Operand shapes do not fit the operation."""


class MalformedRequestError(InvalidArgumentError):
    """Bytes on the wire do not decode to a valid request (truncated, corrupt, inconsistent)."""


class UnknownVariableError(FedlaError, LookupError):
    """A request names a variable that does not exist in the caller's tenant scope."""

    def __str__(self) -> str:  # LookupError would quote the message like a dict key
        return str(self.args[0]) if self.args else ""


class DataFileNotFoundError(FedlaError, FileNotFoundError):
    """A READ names a file that does not exist under the worker's data directory."""


class UnknownKernelError(FedlaError, NotImplementedError):
    """A request names an operation that is not in the kernel registry."""


class AuthenticationError(FedlaError, PermissionError):
    """The caller presented no credential, or one the worker does not know.

    A missing or wrong bearer token; a client certificate from another CA is refused by the TLS
    handshake itself, before any call.
    """


class AccessDeniedError(FedlaError, PermissionError):
    """The worker refuses the request (path outside the data directory, forbidden function)."""


class ResourceLimitError(FedlaError):
    """A request exceeds a configured limit (message size, memory)."""


class RequestSkippedError(FedlaError):
    """A request was not executed because an earlier request of the same batch failed."""


class WorkerUnavailableError(FedlaError, ConnectionError):
    """The worker cannot be reached, stopped answering, or the call's deadline passed."""


class CallCancelledError(FedlaError):
    """The caller cancelled a call that was in flight (``WorkerClient.cancel_all``)."""


class WorkerInternalError(FedlaError):
    """The worker failed in an unexpected way; its log holds the traceback."""


ERROR_CLASSES: dict[str, type[FedlaError]] = {
    cls.__name__: cls
    for cls in (
        FedlaError,
        InvalidArgumentError,
        ShapeMismatchError,
        MalformedRequestError,
        UnknownVariableError,
        DataFileNotFoundError,
        UnknownKernelError,
        AuthenticationError,
        AccessDeniedError,
        ResourceLimitError,
        RequestSkippedError,
        WorkerUnavailableError,
        CallCancelledError,
        WorkerInternalError,
    )
}


def error_from_wire(type_name: str, message: str) -> FedlaError:
    """Rebuild the exception a worker reported; unknown names become ``WorkerInternalError``."""
    cls = ERROR_CLASSES.get(type_name, WorkerInternalError)
    return cls(message)
