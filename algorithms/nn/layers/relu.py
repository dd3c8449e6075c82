"""Rectified linear unit: ``out = max(X, 0)``, elementwise. Shapes: X, out, dX all (N, D)."""

from __future__ import annotations

from typing import Any

from fedla.runtime.kernels import array_namespace


def forward(X: Any) -> Any:
    """Return ``max(X, 0)`` of the shape of ``X``."""
    return array_namespace(X).maximum(X, 0)


def backward(dout: Any, X: Any) -> Any:
    """Return ``dX = dout * (X > 0)``, of shape (N, D) like ``dout`` and ``X``."""
    return dout * (X > 0)
