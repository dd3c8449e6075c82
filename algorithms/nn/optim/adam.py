"""Adam: bias-corrected estimates of the first and second gradient moments.

``t = t + 1; m = beta1 m + (1 - beta1) dX; v = beta2 v + (1 - beta2) dX^2;
X = X - lr sqrt(1 - beta2^t) / (1 - beta1^t) * m / (sqrt(v) + epsilon)``.
Shapes: ``X``, ``dX``, ``m``, ``v`` equal; ``t`` is the number of updates done before this one.

References
----------
.. [1] D. P. Kingma and J. Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015.
   https://arxiv.org/abs/1412.6980
"""

from __future__ import annotations

from typing import Any

from fedla.runtime.kernels import array_namespace


def init(X: Any) -> tuple[Any, Any]:
    """The moment estimates ``(m, v)``: zeros of the shape of ``X``."""
    xp = array_namespace(X)
    return xp.zeros_like(X), xp.zeros_like(X)


def update(
    X: Any, dX: Any, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
    epsilon: float = 1e-8, t: float = 0, m: Any = None, v: Any = None,
) -> tuple[Any, Any, Any]:
    """Return the updated ``(X, m, v)`` (new arrays).

    Parameters
    ----------
    X, dX : array
        Parameters and their gradient.
    lr : float, default 0.001
        Learning rate (the paper's alpha).
    beta1, beta2 : float, default 0.9 and 0.999
        Decay rates of the first and second moment estimates.
    epsilon : float, default 1e-8
        Smoothing term.
    t : float, default 0
        Updates done so far (0 for the first call), as in SystemDS's ``adam::update``.
    m, v : array of the shape of ``X``
        Moment estimates from ``init`` or the previous update.
    """
    xp = array_namespace(X, dX)
    t = t + 1
    m = beta1 * m + (1 - beta1) * dX
    v = beta2 * v + (1 - beta2) * dX * dX
    step = lr * (1 - beta2 ** t) ** 0.5 / (1 - beta1 ** t)
    return X - step * m / (xp.sqrt(v) + epsilon), m, v
