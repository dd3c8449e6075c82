"""Inverted dropout: keep each unit with probability ``p`` and scale kept units by ``1 / p``.

Shapes: ``X`` (N, D), ``out`` (N, D), ``mask`` (N, D) of 0/1 in the dtype of ``X``.

As in SystemDS, ``p`` is the probability of *keeping* a unit (PyTorch's ``Dropout(q)`` drops with
probability ``q``: ``p = 1 - q``). The mask is drawn on the host from
``numpy.random.default_rng(seed)``, so a given seed gives the same mask on numpy and cupy.

References
----------
.. [1] N. Srivastava, G. Hinton, A. Krizhevsky, I. Sutskever and R. Salakhutdinov, "Dropout: A
   Simple Way to Prevent Neural Networks from Overfitting", JMLR 15, 2014.
   http://jmlr.org/papers/v15/srivastava14a.html
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fedla.runtime.kernels import array_namespace


def forward(X: Any, p: float, seed: int | None = None) -> tuple[Any, Any]:
    """Apply dropout in training mode.

    Parameters
    ----------
    X : array of shape (N, D)
    p : float in (0, 1]
        Probability of keeping each unit; 1 disables dropout.
    seed : int, optional
        Seed of the mask; ``None`` draws fresh OS entropy.

    Returns
    -------
    out : array of shape (N, D)
        ``X * mask / p``.
    mask : array of shape (N, D)
        The 0/1 keep mask, needed by ``backward``.
    """
    xp = array_namespace(X)
    keep = np.random.default_rng(seed).random(X.shape) < p
    mask = xp.asarray(keep, dtype=X.dtype)
    return X * mask / p, mask


def backward(dout: Any, X: Any, p: float, mask: Any) -> Any:
    """Return ``dX = dout * mask / p``, of shape (N, D)."""
    return dout * mask / p
