"""Logistic sigmoid: ``out = 1 / (1 + exp(-X))``, elementwise. Shapes: X, out, dX all (N, D).

Computed as ``(1 + tanh(X / 2)) / 2``, which never overflows.
"""

from __future__ import annotations

from typing import Any

from fedla.runtime.kernels import array_namespace


def forward(X: Any) -> Any:
    """Return ``sigmoid(X)`` of the shape of ``X``."""
    return 0.5 * (1.0 + array_namespace(X).tanh(0.5 * X))


def backward(dout: Any, X: Any) -> Any:
    """Return ``dX = dout * s * (1 - s)`` with ``s = sigmoid(X)``, of shape (N, D)."""
    s = forward(X)
    return dout * s * (1.0 - s)
