"""L2 regularization (weight decay) of one parameter: ``loss = 0.5 * lam * sum(X^2)``.

Shapes: ``X`` any, ``loss`` a float, ``dX`` the shape of ``X``.
"""

from __future__ import annotations

from typing import Any


def forward(X: Any, lam: float) -> float:
    """Return ``0.5 * lam * sum(X^2)``."""
    return float(0.5 * lam * (X * X).sum())


def backward(X: Any, lam: float) -> Any:
    """Return ``dX = lam * X``."""
    return lam * X
