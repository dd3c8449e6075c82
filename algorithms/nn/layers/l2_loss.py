"""L2 (squared error) loss: ``loss = (1/N) sum_i 0.5 ||pred[i] - y[i]||^2``.

Shapes: ``pred`` (N, M), ``y`` (N, M), ``loss`` a float, ``dpred`` (N, M).
"""

from __future__ import annotations

from typing import Any


def forward(pred: Any, y: Any) -> float:
    """Return half the mean over rows of the squared row errors."""
    diff = pred - y
    return float(0.5 * (diff * diff).sum() / pred.shape[0])


def backward(pred: Any, y: Any) -> Any:
    """Return ``dpred = (pred - y) / N``, of shape (N, M)."""
    return (pred - y) / pred.shape[0]
