"""numpy-style functions over matrices: ``fl.exp``, ``fl.maximum``, ``fl.solve``, ...

Elementwise functions build lazy plan nodes like the operators do. ``solve`` and ``eigh`` are for
small results at the coordinator (a Gram matrix, a covariance): they compute their inputs and
return numpy arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fedla.evaluation import evaluate
from fedla.evaluation import explain as explain_plan
from fedla.matrix import Matrix, Operand, binary, unary
from fedla.runtime.errors import InvalidArgumentError


def exp(x: Operand) -> Matrix:
    """Elementwise e**x."""
    return unary("exp", x)


def log(x: Operand) -> Matrix:
    """Elementwise natural logarithm."""
    return unary("log", x)


def sqrt(x: Operand) -> Matrix:
    """Elementwise square root."""
    return unary("sqrt", x)


def abs(x: Operand) -> Matrix:  # noqa: A001 - numpy's name
    """Elementwise absolute value."""
    return unary("abs", x)


def sign(x: Operand) -> Matrix:
    """Elementwise sign (-1, 0, 1)."""
    return unary("sign", x)


def round(x: Operand) -> Matrix:  # noqa: A001 - numpy's name
    """Elementwise rounding to the nearest integer, halves to even (as ``np.round``)."""
    return unary("round", x)


def sigmoid(x: Operand) -> Matrix:
    """Elementwise logistic function 1 / (1 + e**-x), computed without overflow."""
    return unary("sigmoid", x)


def maximum(a: Operand, b: Operand) -> Matrix:
    """Elementwise maximum (numpy broadcasting)."""
    return binary("maximum", a, b)


def minimum(a: Operand, b: Operand) -> Matrix:
    """Elementwise minimum (numpy broadcasting)."""
    return binary("minimum", a, b)


def compute(*matrices: Operand) -> list[Any]:
    """Compute several matrices in one evaluation, like ``dask.compute``.

    Subexpressions the plans share run once: ``G, s = fl.compute(X.T @ U, U.sum(axis=0))``
    evaluates ``U`` at the workers once, where two ``.compute()`` calls would evaluate it twice.
    Operands that are not matrices (ndarrays, scalars) come back as they are.

    Returns
    -------
    list
        One value per argument: a numpy array, a scipy CSR array, or a scalar.
    """
    plans = [m for m in matrices if isinstance(m, Matrix)]
    values = iter(evaluate([m.node for m in plans], _context_of("compute", plans)))
    return [next(values) if isinstance(m, Matrix) else m for m in matrices]


def explain(*matrices: Matrix, rewrite: bool = True) -> str:
    """The physical plan that computing ``matrices`` together would run, as text.

    Per stage: which site runs which kernel steps, what is broadcast to it, what it returns, and
    the coordinator's steps (combine, gather, repartition) with estimated bytes. Nothing is sent.

    Examples
    --------
    >>> import numpy as np, fedla as fl
    >>> print(fl.explain(fl.matrix(np.ones((2, 2))).sum()))  # doctest: +ELLIPSIS
    PhysicalPlan: 0 round trip(s), 0 site(s)
    ...
    """
    return explain_plan([m.node for m in matrices], _context_of("explain", matrices), rewrite)


def _context_of(what: str, matrices: Any) -> Any:
    contexts = {id(m.context): m.context for m in matrices if m.context is not None}
    if len(contexts) > 1:
        raise InvalidArgumentError(
            f"{what}: matrices belong to different Contexts; a plan runs in one Context (tenant)"
        )
    return next(iter(contexts.values()), None)


def solve(a: Operand, b: Operand) -> np.ndarray:
    """Solve ``a @ x = b`` at the coordinator; ``a`` is a small square matrix."""
    return np.linalg.solve(_value(a), _value(b))


def eigh(a: Operand) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (ascending) and eigenvectors of a small symmetric matrix, at the coordinator."""
    return np.linalg.eigh(_value(a))


def _value(x: Operand) -> Any:
    value = x.compute() if isinstance(x, Matrix) else x
    return value.toarray() if hasattr(value, "toarray") else np.asarray(value)
