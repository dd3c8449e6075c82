"""Multinomial logistic regression by trust-region Newton: SystemDS's ``multiLogReg`` and predict.

Labels ``1..K+1`` (the largest is the baseline; labels <= 0 are mapped to it) and the design
matrix ``Z`` that ``icpt`` selects (see ``design_matrix``) give ``K`` linear terms per row,
``LT = [Z B, 0]`` with ``B`` of shape (ncol(Z), K), and the softmax probabilities ``P``. The
regularized negative log-likelihood is::

    f(B) = - sum(Y * LT) + sum_i log(sum_c exp(LT_ic)) + 1/2 sum(lambda * B^2)

(``Y`` one-hot; ``lambda = reg``, 0 for the intercept row). Its gradient and Hessian-vector
product are ``Z'(P_K - Y_K) + lambda B`` and ``Z'(Q - P_K * rowSums(Q)) + lambda V`` with
``Q = P_K * (Z V)``. Each outer iteration solves the trust-region subproblem
``min_S g'S + 1/2 S'HS, ||S|| <= delta`` by Steihaug's truncated CG (at most ``maxii`` steps),
accepts ``B + S`` when the actual reduction is at least ``eta0`` of the predicted one, and adapts
``delta`` (Lin, Weng and Keerthi's rules, constants as in SystemDS). Every CG step is two passes
over X where it lives; the sites send back one (ncol x K) matrix.

References
----------
Apache SystemDS, ``scripts/builtin/multiLogReg.dml`` and ``multiLogRegPredict.dml``.
C.-J. Lin, R. C. Weng and S. S. Keerthi, "Trust Region Newton Method for Logistic Regression",
JMLR 9, 627-650, 2008.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

import numpy as np

import fedla as fl
from fedla.algorithms.convergence import Progress, warn_not_converged
from fedla.algorithms.design_matrix import DesignMatrix
from fedla.algorithms.validation import (
    Interval,
    Options,
    as_matrix,
    check_model_rows,
    check_same_rows,
    returned_like,
    validate_params,
)

ETA0, ETA1, ETA2 = 0.0001, 0.25, 0.75  # acceptance and trust-region update thresholds
SIGMA1, SIGMA2, SIGMA3 = 0.25, 0.5, 4.0  # trust-region shrink and growth factors
PSI = 0.1  # inner CG stops when ||R|| <= PSI * ||Grad||

_CONSTRAINTS = {
    "icpt": [Options(Integral, (0, 1, 2))],
    "tol": [Interval(Real, 0, None, closed="left")],
    "reg": [Interval(Real, 0, None, closed="left")],
    "maxi": [Interval(Integral, 1, None, closed="left")],
    "maxii": [Interval(Integral, 0, None, closed="left")],
    "verbose": [bool],
}


def mlogreg(
    X: Any, Y: Any, icpt: int = 2, tol: float = 1e-6, reg: float = 1.0, maxi: int = 100,
    maxii: int = 20, verbose: bool = False,
) -> np.ndarray:
    """Fit multinomial logistic regression by trust-region Newton (SystemDS ``multiLogReg``).

    Parameters
    ----------
    X : ndarray, scipy sparse or fl.Matrix of shape (n_samples, n_features)
        Features; a federated ``X`` stays at its sites.
    Y : ndarray or fl.Matrix of shape (n_samples, 1) or (n_samples,)
        Integer class labels ``1..K+1``; labels <= 0 are treated as ``max(Y) + 1``.
    icpt : {0, 1, 2}, default 2
        0: no intercept; 1: intercept; 2: intercept, and columns of X shifted and scaled to
        mean 0, variance 1 while fitting (coefficients are returned for the original X).
    tol : float, default 1e-6
        Stop when the gradient norm falls below ``tol`` times its initial value.
    reg : float, default 1.0
        L2 regularization (the intercept is not regularized).
    maxi : int, default 100
        Maximum outer (Newton) iterations.
    maxii : int, default 20
        Maximum inner CG iterations per outer iteration; 0 means ``ncol * K``.
    verbose : bool, default False
        Show the objective per outer iteration.

    Returns
    -------
    B : ndarray of shape (n_features + (icpt > 0), K)
        Coefficients of the K non-baseline classes; the intercepts are the last row.

    Examples
    --------
    >>> import numpy as np
    >>> from fedla.algorithms import mlogreg, mlogreg_predict
    >>> X = np.array([[0.0], [0.1], [1.0], [1.1], [2.0], [2.1]]); y = np.array([1, 1, 2, 2, 3, 3])
    >>> B = mlogreg(X, y, reg=1e-3)
    >>> mlogreg_predict(X, B)[1].ravel()
    array([1, 1, 2, 2, 3, 3])
    """
    validate_params("mlogreg", _CONSTRAINTS, locals())
    X, _ = as_matrix(X, "X", "mlogreg")
    Y, _ = as_matrix(Y, "Y", "mlogreg", column=True)
    check_same_rows("mlogreg", X, Y, "Y")

    # STEP 1: labels to classes 1..K+1 and the one-hot Y_K of the K non-baseline classes
    y, num_classes = _classes(Y)
    K = num_classes - 1
    Y_K = y == np.arange(1, K + 1)[None, :]  # (n, K), stays where Y lives
    Z = DesignMatrix(X, icpt)
    N, D = Z.n, Z.ncol
    lam = np.full((D, 1), float(reg))
    if icpt:
        lam[-1] = 0.0

    # STEP 2: B = 0: uniform probabilities, objective N log(K+1), initial trust region
    B = np.zeros((D, K))
    rowSums_X_sq = (X**2) @ Z.scale[: Z.m, None] ** 2 + X @ (2 * Z.scale * Z.shift)[: Z.m, None]
    max_row_sq = float(rowSums_X_sq.max().compute()) + float(np.sum(Z.shift**2)) + (icpt > 0)
    delta = 0.5 * np.sqrt(D) / np.sqrt(max_row_sq)
    obj = N * np.log(K + 1)
    Grad = Z.tdot(1.0 / (K + 1) - Y_K)[0] + lam * B
    norm_Grad = norm_Grad_initial = float(np.sqrt(np.sum(Grad**2)))
    max_inner = D * K if maxii == 0 else maxii

    iteration, converged = 1, norm_Grad < tol
    with Progress("mlogreg", maxi, verbose) as progress:
        while not converged:
            # STEP 3: trust-region subproblem by Steihaug CG; P stays fixed at the current B
            P_K = _probabilities(Z, B)[0]
            S, R = np.zeros((D, K)), -Grad
            V, norm_R2 = R, float(np.sum(R**2))
            inner, boundary = 0, False
            while np.sqrt(norm_R2) > PSI * norm_Grad and inner < max_inner:
                Q = P_K * Z.dot(V)
                HV = Z.tdot(Q - P_K * Q.sum(axis=1))[0] + lam * V
                alpha = norm_R2 / float(np.sum(V * HV))
                inner += 1
                if np.sum((S + alpha * V) ** 2) <= delta**2:
                    S, R = S + alpha * V, R - alpha * HV
                    old_norm_R2, norm_R2 = norm_R2, float(np.sum(R**2))
                    V = R + (norm_R2 / old_norm_R2) * V
                else:  # step to the boundary along V
                    boundary = True
                    sv, v2, s2 = float(np.sum(S * V)), float(np.sum(V**2)), float(np.sum(S**2))
                    rad = np.sqrt(sv**2 + v2 * (delta**2 - s2))
                    alpha = (delta**2 - s2) / (sv + rad) if sv >= 0 else (rad - sv) / v2
                    S, R = S + alpha * V, R - alpha * HV
                    break

            # STEP 4: actual vs predicted reduction; update the trust region
            gs = float(np.sum(S * Grad))
            qk = -0.5 * (gs - float(np.sum(S * R)))
            B_new = B + S
            obj_new, Grad_new = _objective_and_gradient(Z, B_new, Y_K, lam)
            actred = obj - obj_new
            with np.errstate(divide="ignore", invalid="ignore"):
                rho = float(np.float64(actred) / qk)  # NaN or inf, as in SystemDS, if S = 0
            snorm = float(np.sqrt(np.sum(S**2)))
            if iteration == 1:
                delta = min(delta, snorm)
            alpha2 = obj_new - obj - gs
            alpha = SIGMA3 if alpha2 <= 0 else max(SIGMA1, -0.5 * gs / alpha2)
            if rho < ETA0:
                delta = min(max(alpha, SIGMA1) * snorm, SIGMA2 * delta)
            elif rho < ETA1:
                delta = max(SIGMA1 * delta, min(alpha * snorm, SIGMA2 * delta))
            elif rho < ETA2:
                delta = max(SIGMA1 * delta, min(alpha * snorm, SIGMA3 * delta))
            else:
                delta = max(delta, min(alpha * snorm, SIGMA3 * delta))
            if rho > ETA0:  # accept
                B, obj, Grad = B_new, obj_new, Grad_new
                norm_Grad = float(np.sqrt(np.sum(Grad**2)))
            progress.step(obj=obj, grad_norm=norm_Grad, cg_steps=inner, delta=delta)

            # STEP 5: converged, out of iterations, or no progress possible
            iteration += 1
            converged = (norm_Grad < tol * norm_Grad_initial or iteration > maxi
                         or (not boundary and abs(actred) < (abs(obj) + abs(obj_new)) * 1e-14))
    if norm_Grad >= tol * norm_Grad_initial and iteration > maxi:
        warn_not_converged("mlogreg", maxi, "Try increasing maxi, or tol.")
    return Z.ss(B)


def mlogreg_predict(X: Any, B: Any) -> tuple[Any, Any]:
    """Class probabilities and predicted classes of :func:`mlogreg` (``multiLogRegPredict``).

    Parameters
    ----------
    X : ndarray, scipy sparse or fl.Matrix of shape (n_samples, n_features)
    B : ndarray of shape (n_features, K) or (n_features + 1, K)
        Coefficients from :func:`mlogreg`; an extra last row holds the intercepts.

    Returns
    -------
    M : ndarray, or fl.Matrix living where X lives, of shape (n_samples, K + 1)
        Probabilities of the classes ``1..K+1`` (the last is the baseline).
    predicted_Y : same kind, of shape (n_samples, 1)
        The most probable class, ``1..K+1`` (int64).
    """
    X, was_array = as_matrix(X, "X", "mlogreg_predict")
    B = check_model_rows("mlogreg_predict", X, B, "B")
    P_K, P_base = _probabilities(DesignMatrix(X, 1 if B.shape[0] > X.shape[1] else 0), B)
    M = fl.hstack([P_K, P_base])
    return returned_like(M, was_array), returned_like(M.argmax(axis=1) + 1, was_array)


def _probabilities(Z: DesignMatrix, B: np.ndarray) -> tuple[fl.Matrix, fl.Matrix]:
    """Softmax over ``[Z B, 0]``: the K non-baseline columns and the baseline column (lazy)."""
    LT = Z.dot(B)
    row_max = fl.maximum(LT.max(axis=1), 0)
    exp_LT, exp_base = fl.exp(LT - row_max), fl.exp(-row_max)
    total = exp_LT.sum(axis=1) + exp_base
    return exp_LT / total, exp_base / total


def _objective_and_gradient(
    Z: DesignMatrix, B: np.ndarray, Y_K: fl.Matrix, lam: np.ndarray
) -> tuple[float, np.ndarray]:
    """``f(B)`` and its gradient, in one evaluation (one pass for Z B, one for Z'(...))."""
    LT = Z.dot(B)
    row_max = fl.maximum(LT.max(axis=1), 0)
    exp_LT = fl.exp(LT - row_max)
    total = exp_LT.sum(axis=1) + fl.exp(-row_max)
    # sum(Y * [LT, 0]) - sum(row_max) + sum(log(total)): each row of Y sums to one
    nll = (fl.log(total) + row_max - (Y_K * LT).sum(axis=1)).sum()
    Grad, (loglik,) = Z.tdot(exp_LT / total - Y_K, nll)
    obj = float(loglik) + 0.5 * float(np.sum(lam * B**2))
    return obj, Grad + lam * B


def _classes(Y: fl.Matrix) -> tuple[fl.Matrix, int]:
    """Labels as classes ``1..K+1`` (labels <= 0 become ``max + 1``), and ``K + 1``."""
    low, high, fractional = fl.compute(Y.min(), Y.max(), (Y != fl.round(Y)).sum())
    if int(fractional):
        raise fl.InvalidArgumentError(
            f"The 'Y' argument of mlogreg must hold integer class labels; got {int(fractional)} "
            "non-integer label(s)."
        )
    low, high = float(low), float(high)
    if low <= 0:
        Y = fl.where(Y <= 0, high + 1, Y)
        high += 1
    if high < 2:
        raise fl.InvalidArgumentError(
            f"The 'Y' argument of mlogreg must hold at least two classes; got only {high:g}."
        )
    return Y, int(high)
