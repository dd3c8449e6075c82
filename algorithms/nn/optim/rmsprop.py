"""RMSprop: AdaGrad with an exponentially decaying average of the squared gradients.

``cache = decay_rate * cache + (1 - decay_rate) * dX^2; X = X - lr * dX / (sqrt(cache) +
epsilon)``. Shapes: ``X``, ``dX``, ``cache`` equal.

References
----------
.. [1] T. Tieleman and G. Hinton, "Lecture 6.5 - RMSprop: Divide the gradient by a running average
   of its recent magnitude", COURSERA: Neural Networks for Machine Learning, 2012.
   http://www.cs.toronto.edu/~tijmen/csc321/slides/lecture_slides_lec6.pdf
"""

from __future__ import annotations

from typing import Any

from fedla.runtime.kernels import array_namespace


def init(X: Any) -> tuple[Any]:
    """The squared-gradient average ``cache``: zeros of the shape of ``X``."""
    return (array_namespace(X).zeros_like(X),)


def update(
    X: Any, dX: Any, lr: float = 0.001, decay_rate: float = 0.99, epsilon: float = 1e-8,
    cache: Any = None,
) -> tuple[Any, Any]:
    """Return the updated ``(X, cache)`` (new arrays).

    Parameters
    ----------
    X, dX : array
        Parameters and their gradient.
    lr : float, default 0.001
        Learning rate.
    decay_rate : float, default 0.99
        Decay of the average, typically one of 0.9, 0.99, 0.999.
    epsilon : float, default 1e-8
        Smoothing term, typically in [1e-8, 1e-4].
    cache : array of the shape of ``X``
        Running average of squared gradients.
    """
    xp = array_namespace(X, dX)
    cache = decay_rate * cache + (1 - decay_rate) * dX * dX
    return X - lr * dX / (xp.sqrt(cache) + epsilon), cache
