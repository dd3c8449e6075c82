"""SGD with Nesterov momentum, in the form that updates ``X`` from its look-ahead position.

``v_prev = v; v = mu * v - lr * dX; X = X - mu * v_prev + (1 + mu) * v``. Shapes: ``X``, ``dX``,
``v`` equal.

References
----------
.. [1] I. Sutskever, J. Martens, G. Dahl and G. Hinton, "On the importance of initialization and
   momentum in deep learning", ICML 2013. http://proceedings.mlr.press/v28/sutskever13.html
.. [2] Y. Bengio, N. Boulanger-Lewandowski and R. Pascanu, "Advances in Optimizing Recurrent
   Networks", ICASSP 2013 (this form). https://arxiv.org/abs/1212.0901
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
    v_prev = v
    v = mu * v - lr * dX
    return X - mu * v_prev + (1 + mu) * v, v
