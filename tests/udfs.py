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


def not_registered(a: Any) -> Any:
    """A public function that is deliberately not registered."""
    return a


PI = 3.14159
