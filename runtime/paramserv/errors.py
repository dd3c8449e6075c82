"""Errors of the parameter server."""

from __future__ import annotations

from fedla.runtime.errors import FedlaError


class WorkerFailedError(FedlaError, RuntimeError):
    """A paramserv worker died or could not start; the message names it and says why."""


class RemoteTraceback(Exception):
    """The formatted traceback of an exception raised in a worker (set as ``__cause__``)."""

    def __str__(self) -> str:
        return "\n" + (self.args[0] if self.args else "")


class ModeNotAvailableError(FedlaError, NotImplementedError):
    """The requested paramserv mode has no executor yet."""
