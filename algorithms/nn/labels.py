"""Class labels for the built-in classifiers: one-hot encoding and its check."""

from __future__ import annotations

from typing import Any

import numpy as np

from fedla.runtime.errors import InvalidArgumentError


def one_hot(y: Any, n_classes: int | None = None, dtype: Any = np.float64) -> np.ndarray:
    """Encode integer class indices ``y`` of shape (N,) as a one-hot (N, n_classes) matrix."""
    y = np.asarray(y).reshape(-1)
    if y.size and (not np.issubdtype(y.dtype, np.integer) or y.min() < 0):
        raise InvalidArgumentError(
            f"one_hot needs non-negative integer class indices; got dtype {y.dtype}"
        )
    n_classes = int(y.max()) + 1 if n_classes is None else n_classes
    return np.eye(n_classes, dtype=dtype)[y]


def check_one_hot(labels: Any, caller: str) -> None:
    """Raise ``InvalidArgumentError`` unless ``labels`` is a 2-D 0/1 matrix, one 1 per row."""
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.shape[1] < 2:
        raise InvalidArgumentError(
            f"{caller}: labels must be one-hot encoded of shape (n_samples, n_classes) with "
            f"n_classes >= 2. Got an array of shape {labels.shape} instead; encode class indices "
            "with fedla.algorithms.nn.labels.one_hot(y)"
        )
    binary = (labels == 0) | (labels == 1)
    if not binary.all() or not (labels.sum(axis=1) == 1).all():
        bad = int(np.flatnonzero(~binary.all(axis=1) | (labels.sum(axis=1) != 1))[0])
        raise InvalidArgumentError(
            f"{caller}: labels must be one-hot encoded (each row one 1 and zeros elsewhere). "
            f"Got row {bad} = {labels[bad].tolist()} instead; encode class indices with "
            "fedla.algorithms.nn.labels.one_hot(y)"
        )
