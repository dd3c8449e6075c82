"""Spatial batch normalization: one mean and variance per channel, over the batch and all pixels.

Shapes: ``X``, ``out`` (N, C*Hin*Win) in NCHW order; ``gamma``, ``beta``, ``ema_mean``, ``ema_var``,
``cache_mean``, ``cache_var`` (C, 1); ``cache_norm`` (N, C*Hin*Win). The pixels are laid out as
(N*Hin*Win, C) rows and normalized by ``batch_norm1d``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from fedla.algorithms.nn.layers import batch_norm1d


def _to_rows(X: Any, C: int, Hin: int, Win: int) -> Any:
    """(N, C*Hin*Win) -> (N*Hin*Win, C)."""
    return X.reshape(X.shape[0], C, Hin * Win).transpose(0, 2, 1).reshape(-1, C)


def _from_rows(R: Any, C: int, Hin: int, Win: int) -> Any:
    """(N*Hin*Win, C) -> (N, C*Hin*Win)."""
    return R.reshape(-1, Hin * Win, C).transpose(0, 2, 1).reshape(-1, C * Hin * Win)


def forward(
    X: Any, gamma: Any, beta: Any, C: int, Hin: int, Win: int, mode: str, ema_mean: Any,
    ema_var: Any, mu: float = 0.9, epsilon: float = 1e-5,
) -> tuple[Any, Any, Any, Any, Any, Any]:
    """Normalize, scale and shift each channel.

    Parameters
    ----------
    X : array of shape (N, C*Hin*Win)
    gamma, beta : array of shape (C, 1)
    C, Hin, Win : int
    mode : {"train", "test"}
    ema_mean, ema_var : array of shape (C, 1)
    mu : float, default 0.9
    epsilon : float, default 1e-5

    Returns
    -------
    out : array of shape (N, C*Hin*Win)
    ema_mean_upd, ema_var_upd, cache_mean, cache_var : array of shape (C, 1)
    cache_norm : array of shape (N, C*Hin*Win)
    """
    out, ema_mean_upd, ema_var_upd, mean, var, norm = batch_norm1d.forward(
        _to_rows(X, C, Hin, Win), gamma.T, beta.T, mode, ema_mean.T, ema_var.T, mu, epsilon
    )
    return (_from_rows(out, C, Hin, Win), ema_mean_upd.T, ema_var_upd.T, mean.T, var.T,
            _from_rows(norm, C, Hin, Win))


def backward(
    dout: Any, cache_var: Any, cache_norm: Any, gamma: Any, C: int, Hin: int, Win: int,
    mode: str, epsilon: float = 1e-5,
) -> tuple[Any, Any, Any]:
    """Gradients of the layer.

    Parameters
    ----------
    dout : array of shape (N, C*Hin*Win)
    cache_var : array of shape (C, 1)
    cache_norm : array of shape (N, C*Hin*Win)
    gamma : array of shape (C, 1)
    C, Hin, Win : int
    mode : {"train", "test"}
    epsilon : float, default 1e-5

    Returns
    -------
    dX : array of shape (N, C*Hin*Win)
    dgamma, dbeta : array of shape (C, 1)
    """
    dX, dgamma, dbeta = batch_norm1d.backward(
        _to_rows(dout, C, Hin, Win), cache_var.T, _to_rows(cache_norm, C, Hin, Win), gamma.T,
        mode, epsilon,
    )
    return _from_rows(dX, C, Hin, Win), dgamma.T, dbeta.T


def init(C: int, dtype: DTypeLike = np.float64) -> tuple[Any, Any, Any, Any]:
    """``gamma`` ones, ``beta`` zeros, ``ema_mean`` zeros, ``ema_var`` ones, each (C, 1)."""
    return (np.ones((C, 1), dtype), np.zeros((C, 1), dtype),
            np.zeros((C, 1), dtype), np.ones((C, 1), dtype))
