"""fedla: federated linear algebra for Python.

A ``Matrix`` is a lazy handle over data that may live at remote worker daemons; operations build
a plan that runs where the data is, and only aggregates come back.

>>> import numpy as np
>>> import fedla as fl
>>> data = np.arange(12.0).reshape(4, 3)
>>> with fl.Context(local_workers=2) as ctx:           # loopback workers, no configuration
...     X = ctx.scatter(data)                          # or ctx.federated(["host:port/X1.csv", ...])
...     G = (X.T @ X).compute()                        # numpy array; X's blocks never move
>>> bool(np.allclose(G, data.T @ data))
True
"""

from fedla.context import Context
from fedla.functions import (
    abs,
    compute,
    eigh,
    exp,
    explain,
    log,
    maximum,
    minimum,
    round,
    sigmoid,
    sign,
    solve,
    sqrt,
)
from fedla.matrix import Matrix, hstack, matrix, vstack, where
from fedla.paramserv import paramserv
from fedla.plan import Partitioning
from fedla.runtime.errors import (
    AccessDeniedError,
    DataFileNotFoundError,
    FedlaError,
    InvalidArgumentError,
    MalformedRequestError,
    RequestSkippedError,
    ResourceLimitError,
    ShapeMismatchError,
    UnknownKernelError,
    UnknownVariableError,
    WorkerInternalError,
    WorkerUnavailableError,
)
from fedla.spark import from_spark, read_spark

__version__ = "0.1.0"

__all__ = [
    "AccessDeniedError",
    "Context",
    "DataFileNotFoundError",
    "FedlaError",
    "InvalidArgumentError",
    "MalformedRequestError",
    "Matrix",
    "Partitioning",
    "RequestSkippedError",
    "ResourceLimitError",
    "ShapeMismatchError",
    "UnknownKernelError",
    "UnknownVariableError",
    "WorkerInternalError",
    "WorkerUnavailableError",
    "abs",
    "compute",
    "eigh",
    "exp",
    "explain",
    "from_spark",
    "hstack",
    "log",
    "matrix",
    "maximum",
    "minimum",
    "paramserv",
    "read_spark",
    "round",
    "sigmoid",
    "sign",
    "solve",
    "sqrt",
    "vstack",
    "where",
]
