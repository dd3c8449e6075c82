"""Remote functions for tests, registered like an operator's own package would register them.

Workers started with ``--allow-module tests.udfs`` may call these by reference (the worker
imports this module, so the tests run from the repository root, which ``tests/conftest.py`` puts
on the workers' ``PYTHONPATH``).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from fedla.runtime.udf_registry import remote_function


@remote_function
def add(a: Any, b: Any) -> Any:
    """``a + b``."""
    return np.add(a, b)


@remote_function
def total(a: Any, axis: int | None = None) -> Any:
    """``a.sum(axis)``."""
    return np.sum(a, axis=axis)


@remote_function
def cumulative(a: Any) -> Any:
    """``np.cumsum(a)``."""
    return np.cumsum(a)


@remote_function
def norm(a: Any) -> float:
    """The Euclidean norm of ``a``."""
    return float(np.linalg.norm(a))


@remote_function
def quotient_remainder(a: Any, b: Any) -> tuple[Any, Any]:
    """``divmod(a, b)``: two results."""
    return np.divmod(a, b)


@remote_function
def object_array(n: int) -> Any:
    """An array of dtype object, which cannot be sent back."""
    return np.empty(n, dtype=object)


@remote_function
def sleep(seconds: float) -> None:
    """Sleep (releasing the GIL)."""
    time.sleep(seconds)


@remote_function
def factorial(n: int) -> int:
    """``n!`` (holds the GIL for a while when ``n`` is large)."""
    return math.factorial(n)


@remote_function
def allocate(n_bytes: int) -> Any:
    """An array of ``n_bytes`` bytes (a huge one raises ``MemoryError``)."""
    return np.ones(n_bytes, dtype=np.uint8)


LEAST_SQUARES = {"upd": "tests.udfs:ls_gradients", "agg": "tests.udfs:ls_aggregate"}
"""paramserv's ``upd``/``agg`` for the least-squares model ``[W (d, 1), b (1, 1)]``."""


@remote_function
def ls_gradients(model: Any, hyperparams: Any, X: Any, y: Any) -> list[Any]:
    """Least squares ``[W, b]``: the mean-squared-error gradients of one batch.

    Rows whose first feature is 1 sleep ``hyperparams["delay"]`` seconds first (a slow site).
    """
    if hyperparams.get("delay") and X[0, 0] == 1:
        time.sleep(hyperparams["delay"])
    err = X @ model[0] + model[1] - y
    return [X.T @ err / X.shape[0], err.mean(axis=0, keepdims=True)]


@remote_function
def ls_aggregate(model: Any, hyperparams: Any, gradients: Any) -> list[Any]:
    """Plain SGD with ``hyperparams["lr"]`` (default 0.1)."""
    lr = hyperparams.get("lr", 0.1)
    return [p - lr * g for p, g in zip(model, gradients)]


def not_registered(a: Any) -> Any:
    """A public function that is deliberately not registered."""
    return a


PI = 3.14159
