"""Running an algorithm on the same data three ways: numpy arrays, local fedla matrices, and
federated matrices over the session's three loopback workers with uneven row blocks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import fedla as fl
from fedla.runtime.lineage import content_key

MODES = ["numpy", "local", "federated"]

Convert = Callable[[Any], Any]


def uneven_sizes(n: int) -> list[int]:
    """Three row blocks of about 55%, 5% and 40% of ``n`` rows."""
    small = max(1, n // 20)
    first = (n - small) * 11 // 20
    return [first, small, n - first - small]


@pytest.fixture(scope="module")
def fed_ctx(workers: list[str]) -> Iterator[fl.Context]:
    """One tenant over the three session workers for a whole test module."""
    with fl.Context(workers=workers) as context:
        yield context


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def convert(mode: str, request: pytest.FixtureRequest) -> Convert:
    """Turn an array into the input of ``mode``: itself, ``fl.matrix``, or scattered rows."""
    if mode == "numpy":
        return lambda A: A
    if mode == "local":
        return fl.matrix
    ctx = request.getfixturevalue("fed_ctx")
    scattered = request.getfixturevalue("scattered")

    def scatter(A: Any) -> fl.Matrix:
        A = A.reshape(-1, 1) if A.ndim == 1 else A
        key = content_key(A)
        if key not in scattered:
            scattered[key] = ctx.scatter(A, sizes=uneven_sizes(A.shape[0]))
        return scattered[key]

    return scatter


@pytest.fixture(scope="module")
def scattered(fed_ctx: fl.Context) -> dict[str, fl.Matrix]:
    """Federated copies of the module's data sets, each scattered once and kept for the module."""
    return {}


def as_array(value: Any) -> np.ndarray:
    """A per-row result as an ndarray, computing it if it is a (lazy) fedla matrix."""
    if isinstance(value, fl.Matrix):
        value = value.compute()
    return np.asarray(value.toarray() if hasattr(value, "toarray") else value)


def assert_close(result: Any, expected: Any, rtol: float, what: str = "") -> None:
    """Largest error relative to the largest magnitude of ``expected`` is at most ``rtol``."""
    result, expected = as_array(result), as_array(expected)
    assert result.shape == expected.shape, (what, result.shape, expected.shape)
    scale = max(float(np.max(np.abs(expected))), 1e-300)
    error = float(np.max(np.abs(result - expected))) / scale
    assert error <= rtol, f"{what}: relative error {error:.3g} > {rtol:.3g}"


def traffic(ctx: fl.Context) -> dict[str, int]:
    """Bytes received from all workers so far."""
    return {key: sum(s[key] for s in ctx.stats().values()) for key in ("bytes_received",)}
