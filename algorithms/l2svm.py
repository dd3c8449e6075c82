"""Binary linear SVM with squared hinge loss: SystemDS's ``l2svm`` and ``l2svmPredict``.

With labels mapped to ``y_i in {-1, +1}`` and ``Z`` = ``X`` or ``[X, 1]`` (``intercept``), the
primal objective is::

    f(w) = 1/2 sum_i max(0, 1 - y_i z_i'w)^2 + reg/2 ||w||^2

(the bias is regularized like every weight). It is minimized by nonlinear conjugate gradient
(Fletcher-Reeves): along each direction ``s`` a Newton line search finds the step ``t`` with
``f'(w + t s) = 0``, using only ``Zw`` and ``Zs``::

    g(t) = reg w's + t reg s's - sum_i (1 - y_i (Zw + t Zs)_i)_+ y_i (Zs)_i
    h(t) = reg s's + sum_{i in support} (Zs)_i^2,        t <- t - g(t) / h(t)

then the gradient ``Z'((1 - y Zw)_+ y) - reg w`` gives the next direction. Every iteration costs
a few passes over X where it lives; only scalars and one m-vector come back.

References
----------
Apache SystemDS, ``scripts/builtin/l2svm.dml`` and ``l2svmPredict.dml``.
O. Chapelle, "Training a Support Vector Machine in the Primal", Neural Computation 19(5), 2007.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real
from typing import Any

import numpy as np

import fedla as fl
from fedla.algorithms.convergence import ConvergenceWarning, Progress, warn_not_converged
from fedla.algorithms.design_matrix import DesignMatrix
from fedla.algorithms.validation import (
    Interval,
    as_matrix,
    check_model_rows,
    check_same_rows,
    returned_like,
    validate_params,
)

STALL_GAP = 0.1
"""A stop with a duality gap above this fraction of the objective is reported as stalled."""

_CONSTRAINTS = {
    "intercept": [bool],
    "epsilon": [Interval(Real, 0, None, closed="left")],
    "reg": [Interval(Real, 0, None, closed="left")],
    "maxi": [Interval(Integral, 1, None, closed="left")],
    "maxii": [Interval(Integral, 1, None, closed="left")],
    "verbose": [bool],
}


def l2svm(
    X: Any, y: Any, intercept: bool = False, epsilon: float = 1e-3, reg: float = 1.0,
    maxi: int = 100, maxii: int = 20, verbose: bool = False,
) -> np.ndarray:
    """Train a binary linear SVM with squared hinge loss in the primal (SystemDS ``l2svm``).

    Parameters
    ----------
    X : ndarray, scipy sparse or fl.Matrix of shape (n_samples, n_features)
        Features; a federated ``X`` stays at its sites.
    y : ndarray or fl.Matrix of shape (n_samples, 1) or (n_samples,)
        Two distinct labels of any values; the smaller becomes -1, the larger +1.
    intercept : bool, default False
        Append a constant column (its weight, the bias, is regularized too).
    epsilon : float, default 1e-3
        Stop when a step reduces the objective by less than ``epsilon`` times its value; the
        line search stops when its Newton decrement ``g^2 / h`` falls below ``epsilon``.
    reg : float, default 1.0
        L2 regularization ``reg``.
    maxi : int, default 100
        Maximum outer (conjugate gradient) iterations.
    maxii : int, default 20
        Maximum Newton steps of each line search.
    verbose : bool, default False
        Show the objective per iteration.

    Returns
    -------
    w : ndarray of shape (n_features + intercept, 1)
        Weights; the bias is the last entry when ``intercept``.

    Warns
    -----
    ConvergenceWarning
        If ``maxi`` iterations end before the stopping test holds, or if the method stopped
        with a duality gap above ``STALL_GAP`` times the objective (a stalled search, typical
        of unscaled features; the gap is evaluated at ``alpha = max(0, 1 - y Zw)``).

    Examples
    --------
    >>> import numpy as np
    >>> from fedla.algorithms import l2svm, l2svm_predict
    >>> X = np.array([[1.0, 2.0], [2.0, 1.0], [-1.0, -2.0], [-2.0, -1.0]])
    >>> w = l2svm(X, np.array([1, 1, 0, 0]))
    >>> l2svm_predict(X, w)[1].ravel()
    array([ 1.,  1., -1., -1.])
    """
    validate_params("l2svm", _CONSTRAINTS, locals())
    X, _ = as_matrix(X, "X", "l2svm")
    y, _ = as_matrix(y, "y", "l2svm", column=True)
    check_same_rows("l2svm", X, y, "y")
    if X.shape[0] < 2:
        raise fl.InvalidArgumentError(
            f"l2svm: n_samples={X.shape[0]} should be >= 2 to learn a binary classifier."
        )

    # STEP 1: map the two labels to -1 and +1
    Y = _plus_minus_one(y)
    Z = DesignMatrix(X, 1 if intercept else 0)

    # STEP 2: nonlinear CG from w = 0, first direction s = Z'y
    w = np.zeros((Z.ncol, 1))
    g_old = Z.tdot(Y)[0]
    s = g_old
    iteration, converged = 0, False
    with Progress("l2svm", maxi, verbose) as progress:
        while not converged and iteration < maxi:
            # STEP 3: Newton line search for the step along s; Zw and Zs in one pass over X
            Zws = Z.dot(np.hstack([w, s]))
            Zw, Zs = Zws[:, 0:1], Zws[:, 1:2]
            wd, dd = reg * float(np.sum(w * s)), reg * float(np.sum(s * s))
            step_sz, inner = 0.0, 0
            while inner < maxii:
                out = 1 - Y * (Zw + step_sz * Zs)
                sv = out > 0
                sums = fl.hstack([out * sv * Y * Zs, Zs * sv * Zs]).sum(axis=0).compute()
                g = wd + step_sz * dd - float(sums[0, 0])
                h = dd + float(sums[0, 1])
                if h <= 0:  # s = 0 and no support vectors: f is flat along s
                    break
                step_sz -= g / h
                inner += 1
                if g * g / h < epsilon:
                    break

            # STEP 4: update w; objective and gradient at the new w
            w = w + step_sz * s
            out = fl.maximum(1 - Y * Z.dot(w), 0)
            grad, (sq_out, sum_out) = Z.tdot(out * Y, (out * out).sum(), out.sum())
            obj = 0.5 * float(sq_out) + reg / 2 * float(np.sum(w * w))
            g_new = grad - reg * w
            progress.step(obj=obj, line_search_steps=inner)

            # STEP 5: stop when the step gained too little, else the next CG direction
            converged = not (step_sz * float(np.sum(s * g_old)) >= epsilon * obj
                             and float(np.sum(s**2)) != 0)
            if not converged:  # Fletcher-Reeves
                be = float(np.sum(g_new * g_new)) / float(np.sum(g_old * g_old))
                s = be * s + g_new
            g_old = g_new
            iteration += 1
    if not converged:
        warn_not_converged("l2svm", maxi, "Try increasing maxi, or epsilon.")
    elif reg > 0 and (gap := obj - _dual(sq_out, sum_out, grad, reg)) > STALL_GAP * obj:
        warnings.warn(
            f"l2svm stalled after {iteration} iterations: its steps gained less than epsilon "
            f"times the objective ({obj:.6g}), yet the duality gap {gap:.6g} says the optimum "
            "may be far lower. This happens on badly scaled features. Try standardizing the "
            "columns of X (e.g. sklearn's StandardScaler), or a smaller epsilon.",
            ConvergenceWarning,
            stacklevel=2,
        )
    return w


def l2svm_predict(X: Any, w: Any) -> tuple[Any, Any]:
    """Scores and ``-1/+1`` labels of a trained :func:`l2svm` (SystemDS ``l2svmPredict``).

    Parameters
    ----------
    X : ndarray, scipy sparse or fl.Matrix of shape (n_samples, n_features)
    w : ndarray of shape (n_features, 1) or (n_features + 1, 1)
        Weights from :func:`l2svm`; an extra last row is the bias.

    Returns
    -------
    YRaw : ndarray, or fl.Matrix living where X lives, of shape (n_samples, 1)
        Scores ``X w[:m] + bias``.
    Y : same kind and shape
        ``+1`` where the score is positive, else ``-1`` (SystemDS returns ``rowIndexMax(YRaw)``,
        which is 1 for every row of a single score column; the sign is what is meant).
    """
    X, was_array = as_matrix(X, "X", "l2svm_predict")
    w = check_model_rows("l2svm_predict", X, w, "w")
    m = X.shape[1]
    YRaw = X @ w[:m] + (w[m, 0] if w.shape[0] > m else 0.0)
    Y = fl.where(YRaw > 0, 1.0, -1.0)
    return returned_like(YRaw, was_array), returned_like(Y, was_array)


def _dual(sq_out: Any, sum_out: Any, grad: np.ndarray, reg: float) -> float:
    """The dual objective at ``alpha = xi(w)``, a lower bound of the optimal primal objective.

    The dual of the squared-hinge SVM is ``max_{alpha >= 0} sum(alpha) - 1/2 ||alpha||^2 -
    1/(2 reg) ||Z'(alpha * y)||^2``; at the optimum ``alpha = xi = max(0, 1 - y Zw)``, so
    evaluating it there costs nothing more than the gradient already computed.
    """
    return float(sum_out) - 0.5 * float(sq_out) - 0.5 / reg * float(np.sum(grad * grad))


def _plus_minus_one(y: fl.Matrix) -> fl.Matrix:
    """``y`` with its smaller label as -1 and its larger as +1; fails unless it has exactly two."""
    low, high = (float(v) for v in fl.compute(y.min(), y.max()))
    if not low < high:
        raise fl.InvalidArgumentError(
            f"The 'y' argument of l2svm must hold two distinct labels; got only {low!r}."
        )
    others = int(((y != low) * (y != high)).sum().compute())
    if others:
        raise fl.InvalidArgumentError(
            f"The 'y' argument of l2svm must hold two distinct labels; got {others} label(s) "
            f"other than min(y)={low!r} and max(y)={high!r}. Use mlogreg for more classes."
        )
    if low == -1 and high == 1:
        return y
    return 2 / (high - low) * y - (low + high) / (high - low)
