"""SGD with (classical) momentum: ``v = mu * v - lr * dX; X = X + v``.

Shapes: ``X``, ``dX`` and the velocity ``v`` equal.

References
----------
.. [1] B. T. Polyak, "Some methods of speeding up the convergence of iteration methods", USSR
   Computational Mathematics and Mathematical Physics 4(5), 1964.
   https://doi.org/10.1016/0041-5553(64)90137-5
"""

from __future__ import annotations

from typing import Any

from fedla.runtime.kernels import array_namespace


def init(X: Any) -> tuple[Any]:
    """The velocity ``v``: zeros of the shape of ``X``."""
    return (array_namespace(X).zeros_like(X),)


def update(X: Any, dX: Any, lr: float = 0.01, mu: float = 0.9, v: Any = None) -> tuple[Any, Any]:
    """Return the updated ``(X, v)`` (new arrays).

    Parameters
    ----------
    X, dX : array
        Parameters and their gradient.
    lr : float, default 0.01
        Learning rate.
    mu : float, default 0.9
        Momentum, typically in [0.5, 0.99].
    v : array of the shape of ``X``
        Velocity from ``init`` or the previous update.
    """
    v = mu * v - lr * dX
    return X + v, v
