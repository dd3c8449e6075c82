"""Stochastic gradient descent: ``X = X - lr * dX``.

Shapes: ``X`` and ``dX`` any, equal. No state.

References
----------
.. [1] H. Robbins and S. Monro, "A Stochastic Approximation Method", Ann. Math. Statist. 22(3),
   1951. https://doi.org/10.1214/aoms/1177729586
"""

from __future__ import annotations

from typing import Any


def init(X: Any) -> tuple[()]:
    """SGD keeps no state: an empty tuple."""
    return ()


def update(X: Any, dX: Any, lr: float = 0.01) -> Any:
    """Return the updated ``X`` (a new array).

    Parameters
    ----------
    X : array
        Parameters.
    dX : array of the shape of ``X``
        Gradient of the loss with respect to ``X``.
    lr : float, default 0.01
        Learning rate.
    """
    return X - lr * dX
