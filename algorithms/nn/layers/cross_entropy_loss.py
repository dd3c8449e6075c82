"""Cross-entropy loss for one-hot targets: ``loss = -(1/N) sum_i sum_j y[i, j] log(pred[i, j])``.

Shapes: ``pred`` (N, K) class probabilities (a softmax output), ``y`` (N, K) one-hot targets,
``loss`` a float, ``dpred`` (N, K). ``log`` is taken of ``pred + 1e-10`` (as in SystemDS) so a
zero probability gives a large finite loss instead of ``inf``.
"""

from __future__ import annotations

from typing import Any

from fedla.runtime.kernels import array_namespace

EPS = 1e-10


def forward(pred: Any, y: Any) -> float:
    """Return the mean cross-entropy over the N rows."""
    xp = array_namespace(pred, y)
    return float(-(y * xp.log(pred + EPS)).sum() / pred.shape[0])


def backward(pred: Any, y: Any) -> Any:
    """Return ``dpred = -(1/N) y / (pred + eps)``, of shape (N, K)."""
    return -(y / (pred + EPS)) / pred.shape[0]
