"""Softmax over each row: ``probs[i, j] = exp(scores[i, j]) / sum_k exp(scores[i, k])``.

Shapes: ``scores`` (N, D), ``probs`` (N, D), ``dprobs`` (N, D), ``dscores`` (N, D). The row
maximum is subtracted first, so large scores do not overflow.
"""

from __future__ import annotations

from typing import Any

from fedla.runtime.kernels import array_namespace


def forward(scores: Any) -> Any:
    """Return ``probs`` of shape (N, D); each row is positive and sums to 1."""
    xp = array_namespace(scores)
    unnormalized = xp.exp(scores - scores.max(axis=1, keepdims=True))
    return unnormalized / unnormalized.sum(axis=1, keepdims=True)


def backward(dprobs: Any, scores: Any, probs: Any = None) -> Any:
    """Return ``dscores = probs * (dprobs - rowSums(dprobs * probs))``, of shape (N, D).

    ``probs``: ``forward(scores)`` when the caller has it from the forward pass (recomputing it
    was a fifth of a small network's training time); computed from ``scores`` otherwise.
    """
    if probs is None:
        probs = forward(scores)
    return probs * (dprobs - (dprobs * probs).sum(axis=1, keepdims=True))
