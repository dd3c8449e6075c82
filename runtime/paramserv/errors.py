"""Errors of the parameter server."""

from __future__ import annotations

from typing import Any

from fedla.runtime.errors import FedlaError


class WorkerFailedError(FedlaError, RuntimeError):
    """A paramserv worker died or could not start; the message names it and says why.

    Attributes
    ----------
    model : list of arrays or None
        The server's model when the run stopped (FEDERATED), to continue from.
    checkpoint : path or None
        The last checkpoint written, if any.
    site : str or None
        The site that failed (FEDERATED).
    """

    model: list[Any] | None = None
    checkpoint: Any = None
    site: str | None = None


class RemoteTraceback(Exception):
    """The formatted traceback of an exception raised in a worker (set as ``__cause__``)."""

    def __str__(self) -> str:
        return "\n" + (self.args[0] if self.args else "")
