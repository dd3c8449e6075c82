"""Batch normalization over the rows of a batch, per feature.

``out = gamma * (X - mean) / sqrt(var + epsilon) + beta``, where ``mean`` and ``var`` are the batch
statistics in ``"train"`` mode and the exponential moving averages (EMA) in ``"test"`` mode.

Shapes: ``X`` (N, D), ``gamma``, ``beta``, ``ema_mean``, ``ema_var``, ``cache_mean``, ``cache_var``
(1, D), ``out`` and ``cache_norm`` (N, D).

References
----------
.. [1] S. Ioffe and C. Szegedy, "Batch Normalization: Accelerating Deep Network Training by
   Reducing Internal Covariate Shift", ICML 2015. https://arxiv.org/abs/1502.03167
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from fedla.runtime.errors import InvalidArgumentError
from fedla.runtime.kernels import array_namespace

MODES = ("train", "test")


def forward(
    X: Any, gamma: Any, beta: Any, mode: str, ema_mean: Any, ema_var: Any,
    mu: float = 0.9, epsilon: float = 1e-5,
) -> tuple[Any, Any, Any, Any, Any, Any]:
    """Normalize, scale and shift each feature.

    Parameters
    ----------
    X : array of shape (N, D)
    gamma, beta : array of shape (1, D)
        Scale and shift.
    mode : {"train", "test"}
        Batch statistics (and EMA update) or the EMA statistics.
    ema_mean, ema_var : array of shape (1, D)
        Moving averages of the mean and variance.
    mu : float, default 0.9
        EMA momentum: ``ema = mu * ema + (1 - mu) * batch_statistic``.
    epsilon : float, default 1e-5
        Added to the variance for numerical stability.

    Returns
    -------
    out : array of shape (N, D)
    ema_mean_upd, ema_var_upd : array of shape (1, D)
        Updated moving averages (unchanged in test mode).
    cache_mean, cache_var : array of shape (1, D)
        Statistics used for the normalization.
    cache_norm : array of shape (N, D)
        The normalized inputs, needed by ``backward``.
    """
    xp = array_namespace(X)
    if mode == "train":
        mean = X.mean(axis=0, keepdims=True)
        var = X.var(axis=0, keepdims=True)
        ema_mean_upd = mu * ema_mean + (1 - mu) * mean
        ema_var_upd = mu * ema_var + (1 - mu) * var
    elif mode == "test":
        mean, var, ema_mean_upd, ema_var_upd = ema_mean, ema_var, ema_mean, ema_var
    else:
        raise InvalidArgumentError(
            f"The 'mode' parameter of batch_norm must be one of 'train', 'test'. Got {mode!r} "
            "instead."
        )
    norm = (X - mean) / xp.sqrt(var + epsilon)
    return gamma * norm + beta, ema_mean_upd, ema_var_upd, mean, var, norm


def backward(
    dout: Any, cache_var: Any, cache_norm: Any, gamma: Any, mode: str, epsilon: float = 1e-5
) -> tuple[Any, Any, Any]:
    """Gradients of the layer.

    Parameters
    ----------
    dout : array of shape (N, D)
    cache_var : array of shape (1, D)
    cache_norm : array of shape (N, D)
        As returned by ``forward``.
    gamma : array of shape (1, D)
    mode : {"train", "test"}
    epsilon : float, default 1e-5

    Returns
    -------
    dX : array of shape (N, D)
    dgamma, dbeta : array of shape (1, D)
    """
    xp = array_namespace(dout)
    N = dout.shape[0]
    dgamma = (dout * cache_norm).sum(axis=0, keepdims=True)
    dbeta = dout.sum(axis=0, keepdims=True)
    dnorm = dout * gamma
    inv_std = 1.0 / xp.sqrt(cache_var + epsilon)
    if mode == "test":
        return dnorm * inv_std, dgamma, dbeta
    dX = (inv_std / N) * (
        N * dnorm - dnorm.sum(axis=0, keepdims=True)
        - cache_norm * (dnorm * cache_norm).sum(axis=0, keepdims=True)
    )
    return dX, dgamma, dbeta


def init(D: int, dtype: DTypeLike = np.float64) -> tuple[Any, Any, Any, Any]:
    """``gamma`` ones, ``beta`` zeros, ``ema_mean`` zeros, ``ema_var`` ones, each (1, D)."""
    return (np.ones((1, D), dtype), np.zeros((1, D), dtype),
            np.zeros((1, D), dtype), np.ones((1, D), dtype))
