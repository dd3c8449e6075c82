"""Affine (fully connected) layer: ``out = X W + b``.

Shapes: ``X`` (N, D), ``W`` (D, M), ``b`` (1, M), ``out`` (N, M).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from fedla.algorithms.nn.initializers import Seed, he_normal
from fedla.runtime.kernels import array_namespace


def forward(X: Any, W: Any, b: Any) -> Any:
    """Compute ``out = X W + b``.

    Parameters
    ----------
    X : array of shape (N, D)
        Inputs.
    W : array of shape (D, M)
        Weights.
    b : array of shape (1, M)
        Biases.

    Returns
    -------
    out : array of shape (N, M)
    """
    return X @ W + b


def backward(dout: Any, X: Any, W: Any, b: Any) -> tuple[Any, Any, Any]:
    """Gradients of the layer.

    Parameters
    ----------
    dout : array of shape (N, M)
        Gradient of the loss with respect to ``out``.
    X : array of shape (N, D)
    W : array of shape (D, M)
    b : array of shape (1, M)

    Returns
    -------
    dX : array of shape (N, D)
    dW : array of shape (D, M)
    db : array of shape (1, M)
    """
    dW, db = parameter_gradients(dout, X)
    return dout @ W.T, dW, db


def parameter_gradients(dout: Any, X: Any) -> tuple[Any, Any]:
    """``dW`` and ``db`` of ``backward`` without ``dX``.

    The first layer of a network needs no gradient for its input. ``db`` is a product with a
    row of ones: numpy's column sums of a small batch cost three times as much.
    """
    xp = array_namespace(dout)
    return X.T @ dout, xp.ones((1, dout.shape[0]), dtype=dout.dtype) @ dout


def init(D: int, M: int, seed: Seed = None, dtype: DTypeLike = np.float64) -> tuple[Any, Any]:
    """He-normal weights ``W`` of shape (D, M) and zero biases ``b`` of shape (1, M)."""
    return he_normal((D, M), fan_in=D, seed=seed, dtype=dtype), np.zeros((1, M), dtype=dtype)
