"""The six federated request types and the worker's ``Metadata`` as plain Python objects.

Coordinators build these and hand a list of them to ``WorkerClient.execute``, or, for a site in
their own process, straight to ``RequestHandler.handle``. Nothing here knows the wire:
``batch_codec`` turns them into protobuf and back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Literal:
    """An EXEC input given by value (a scalar or a small array) instead of by variable name."""

    value: Any


Operand = str | Literal


@dataclass(frozen=True)
class Read:
    """Load ``path`` (relative to the worker's data directory) into variable ``var``."""

    var: str
    path: str
    format: str = ""
    options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Put:
    """Store ``value`` in variable ``var``."""

    var: str
    value: Any


@dataclass(frozen=True)
class Get:
    """Return the value of ``var``."""

    var: str


@dataclass(frozen=True)
class ExecInst:
    """Run registered kernel ``op`` on ``inputs`` with ``attrs``; store the result in ``output``."""

    op: str
    inputs: tuple[Operand, ...]
    output: str
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExecUdf:
    """Call ``function`` ("module:function") on ``inputs``; store results in ``outputs``.

    With no outputs, the function's return value comes back in the response.
    """

    function: str
    inputs: tuple[Operand, ...]
    outputs: tuple[str, ...] = ()
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Clear:
    """Drop ``vars`` from the tenant's scope, or every variable of the tenant when ``all``."""

    vars: tuple[str, ...] = ()
    all: bool = False


Request = Read | Put | Get | ExecInst | ExecUdf | Clear


@dataclass(frozen=True)
class Metadata:
    """What a worker reports about a variable it created (READ, PUT, EXEC_INST)."""

    shape: tuple[int, ...]
    dtype: str
    sparse: bool
    nnz: int
    fingerprint: str = ""
    reused: bool = False
    privacy: str = "public"
    """READ: the file's privacy level (``public``, ``private-aggregation`` or ``private``)."""
    min_rows: int = 0
    """READ: the fewest rows an aggregate must cover to leave the site (private-aggregation)."""


def describe(request: Request) -> str:
    """A short label of ``request`` for messages and logs, e.g. ``EXEC_INST 'tsmm' -> 'G'``."""
    if isinstance(request, Read):
        return f"READ {request.path!r} -> {request.var!r}"
    if isinstance(request, Put):
        return f"PUT -> {request.var!r}"
    if isinstance(request, Get):
        return f"GET {request.var!r}"
    if isinstance(request, ExecInst):
        return f"EXEC_INST {request.op!r} -> {request.output!r}"
    if isinstance(request, ExecUdf):
        return f"EXEC_UDF {request.function!r}"
    if isinstance(request, Clear):
        return "CLEAR"
    raise TypeError(
        f"not a fedla request: {request!r:.80}; expected Read, Put, Get, ExecInst, ExecUdf or Clear"
    )
