"""Softmax over each row: ``probs[i, j] = exp(scores[i, j]) / sum_k exp(scores[i, k])``.

Shapes: ``scores`` (N, D), ``probs`` (N, D), ``dprobs`` (N, D), ``dscores`` (N, D). The row
maximum is subtracted first, so large scores do not overflow.

Row maxima and row sums avoid numpy's reduction along the short trailing axis, which walks the
rows one by one: for a batch of 128 x 2 it took ~9 us (max) and ~4 us (sum), a third of a
logistic regression's whole step. A max along the leading axis of the C-ordered transpose and a
sum as a product with a column of ones give the same values in a third of the time.
"""

from __future__ import annotations

from typing import Any

from fedla.runtime.kernels import array_namespace


def forward(scores: Any) -> Any:
    """Return ``probs`` of shape (N, D); each row is positive and sums to 1."""
    xp = array_namespace(scores)
    unnormalized = xp.exp(scores - scores.T.copy().max(axis=0)[:, None])
    return unnormalized / row_sums(unnormalized)


def backward(dprobs: Any, scores: Any, probs: Any = None) -> Any:
    """Return ``dscores = probs * (dprobs - rowSums(dprobs * probs))``, of shape (N, D).

    ``probs``: ``forward(scores)`` when the caller has it from the forward pass (recomputing it
    was a fifth of a small network's training time); computed from ``scores`` otherwise.
    """
    if probs is None:
        probs = forward(scores)
    return probs * (dprobs - row_sums(dprobs * probs))


def row_sums(values: Any) -> Any:
    """``values.sum(axis=1, keepdims=True)`` of a 2-d array, as a product with ones."""
    xp = array_namespace(values)
    return values @ xp.ones((values.shape[1], 1), dtype=values.dtype)
