"""AdaGrad: per-parameter learning rates scaled by the accumulated squared gradients.

``cache = cache + dX^2; X = X - lr * dX / (sqrt(cache) + epsilon)``. Shapes: ``X``, ``dX``,
``cache`` equal.

References
----------
.. [1] J. Duchi, E. Hazan and Y. Singer, "Adaptive Subgradient Methods for Online Learning and
   Stochastic Optimization", JMLR 12, 2011. http://jmlr.org/papers/v12/duchi11a.html
"""

from __future__ import annotations

from typing import Any

from fedla.runtime.kernels import array_namespace


def init(X: Any) -> tuple[Any]:
    """The gradient accumulator ``cache``: zeros of the shape of ``X``."""
    return (array_namespace(X).zeros_like(X),)


def update(
    X: Any, dX: Any, lr: float = 0.01, epsilon: float = 1e-8, cache: Any = None
) -> tuple[Any, Any]:
    """Return the updated ``(X, cache)`` (new arrays).

    Parameters
    ----------
    X, dX : array
        Parameters and their gradient.
    lr : float, default 0.01
        Learning rate.
    epsilon : float, default 1e-8
        Smoothing term, typically in [1e-8, 1e-4].
    cache : array of the shape of ``X``
        Sum of squared gradients so far.
    """
    xp = array_namespace(X, dX)
    cache = cache + dX * dX
    return X - lr * dX / (xp.sqrt(cache) + epsilon), cache
