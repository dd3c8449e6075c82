"""The worker's audit log (``fedla worker --audit-log FILE``): one JSON line per request.

Each line records::

    {"time": "2026-01-31T12:00:00.123456+00:00", "tenant": "analytics", "request": "GET",
     "detail": "GET 'G'", "datasets": ["X.csv"], "bytes_out": 800,
     "outcome": "refused", "reason": "..."}

``time`` is UTC; ``datasets`` are the file read (READ) or the restricted datasets the request's
values derive from; ``bytes_out`` counts the array bytes of a value sent back (GET, EXEC_UDF
without outputs), not protocol framing; ``outcome`` is ``allowed``, ``refused`` (access or
privacy denied), ``failed`` (any other error) or ``skipped`` (an earlier request of the batch
failed), with the error message as ``reason``. Lines are appended and flushed one by one, so the
file can be followed (``tail -f``) and survives a crash of the worker up to the last request.
"""

from __future__ import annotations

import datetime
import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from fedla.runtime.errors import (
    AccessDeniedError,
    AuthenticationError,
    FedlaError,
    RequestSkippedError,
    ResourceLimitError,
)


class AuditLog:
    """Appends audit records to ``path`` (created if missing), safe across threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - held until close

    def record(
        self,
        tenant: str,
        request: str,
        detail: str,
        datasets: Sequence[str],
        result: Any,
        value_sent: bool,
    ) -> None:
        """Append the line of one request.

        Parameters
        ----------
        tenant : str
            The caller's tenant.
        request : str
            The request type (``READ``, ``GET``, ...).
        detail : str
            The request's label, e.g. ``GET 'G'``.
        datasets : sequence of str
            The datasets involved.
        result : Any
            What the request answered: a ``FedlaError`` for a refusal or failure.
        value_sent : bool
            Whether ``result`` is a value sent back to the caller (its bytes count as out).
        """
        if isinstance(result, (AccessDeniedError, AuthenticationError, ResourceLimitError)):
            outcome = "refused"
        elif isinstance(result, RequestSkippedError):
            outcome = "skipped"
        elif isinstance(result, FedlaError):
            outcome = "failed"
        else:
            outcome = "allowed"
        entry = {
            "time": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "tenant": tenant,
            "request": request,
            "detail": detail,
            "datasets": sorted(datasets),
            "bytes_out": payload_bytes(result) if value_sent and outcome == "allowed" else 0,
            "outcome": outcome,
            "reason": str(result) if isinstance(result, FedlaError) else "",
        }
        line = json.dumps(entry, default=str) + "\n"
        with self._lock:
            self._file.write(line)
            self._file.flush()

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._file.close()


def payload_bytes(value: Any) -> int:
    """The array bytes in ``value`` (arrays, CSR arrays, and lists or dicts of them)."""
    if sp.issparse(value):
        return int(value.data.nbytes + value.indices.nbytes + value.indptr.nbytes)
    if isinstance(value, (np.ndarray, np.generic)):
        return int(value.nbytes)
    if isinstance(value, dict):
        return sum(payload_bytes(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return sum(payload_bytes(item) for item in value)
    if isinstance(value, (bytes, str)):
        return len(value)
    nbytes = getattr(value, "nbytes", None)  # a cupy array
    return int(nbytes) if isinstance(nbytes, int) else 0
