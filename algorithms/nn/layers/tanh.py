"""Hyperbolic tangent: ``out = tanh(X)``, elementwise. Shapes: X, out, dX all (N, D)."""

from __future__ import annotations

from typing import Any

from fedla.runtime.kernels import array_namespace


def forward(X: Any) -> Any:
    """Return ``tanh(X)`` of the shape of ``X``."""
    return array_namespace(X).tanh(X)


def backward(dout: Any, X: Any) -> Any:
    """Return ``dX = dout * (1 - tanh(X)^2)``, of shape (N, D)."""
    out = array_namespace(X).tanh(X)
    return dout * (1.0 - out * out)
