"""Linear regression with L2 regularization: SystemDS's ``lm``, ``lmDS``, ``lmCG``, ``lmPredict``.

The model minimizes the ridge objective over the design matrix ``Z`` that ``icpt`` selects
(``X``, ``[X, 1]``, or ``[X, 1]`` with standardized columns; see ``design_matrix``)::

    f(beta) = 1/2 ||Z beta - y||^2 + 1/2 sum_j lambda_j beta_j^2,   lambda_j = reg (0: intercept)

whose minimizer solves the normal equations ``(Z'Z + diag(lambda)) beta = Z'y``.

* ``lmDS`` forms ``A = Z'Z + diag(lambda)`` and ``b = Z'y`` (one ``X'X`` per site, summed at the
  coordinator) and solves the small m x m system directly.
* ``lmCG`` runs conjugate gradient on the same system; each iteration costs one product
  ``Z'(Z p)``, evaluated where X lives, and stops when ``||r|| <= tol * ||r_0||`` or after
  ``maxi`` iterations (0: ``ncol(Z)``, when exact CG has converged).
* ``lm`` picks ``lmDS`` up to 1024 columns and ``lmCG`` beyond, as SystemDS does.

With ``icpt=2`` the coefficients are solved for the standardized columns and returned in the
space of the original ``X`` (``beta = T beta_scaled``), the intercept last.

References
----------
Apache SystemDS, ``scripts/builtin/lm.dml``, ``lmDS.dml``, ``lmCG.dml``, ``lmPredict.dml``.
M. Boehm et al., "SystemDS: A Declarative Machine Learning System for the End-to-End Data Science
Lifecycle", CIDR 2020. M. R. Hestenes and E. Stiefel, "Methods of Conjugate Gradients for Solving
Linear Systems", J. Res. Nat. Bur. Standards 49(6), 1952.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real
from typing import Any

import numpy as np
from scipy.linalg import LinAlgWarning

import fedla as fl
from fedla.algorithms.convergence import Progress, report, warn_not_converged
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

DIRECT_SOLVE_MAX_COLUMNS = 1024

_CONSTRAINTS = {
    "icpt": [Options(Integral, (0, 1, 2))],
    "reg": [Interval(Real, 0, None, closed="left")],
    "tol": [Interval(Real, 0, None, closed="left")],
    "maxi": [Interval(Integral, 0, None, closed="left")],
    "verbose": [bool],
}


def lm(
    X: Any, y: Any, icpt: int = 0, reg: float = 1e-7, tol: float = 1e-7, maxi: int = 0,
    verbose: bool = False,
) -> np.ndarray:
    """Fit a linear regression model (SystemDS ``lm``): direct solve or conjugate gradient.

    Parameters
    ----------
    X : ndarray, scipy sparse or fl.Matrix of shape (n_samples, n_features)
        Features; a federated ``X`` stays at its sites.
    y : ndarray or fl.Matrix of shape (n_samples, 1) or (n_samples,)
        Responses; federated with the same row blocks as ``X`` to keep them at the sites.
    icpt : {0, 1, 2}, default 0
        0: no intercept; 1: intercept; 2: intercept, and columns of X shifted and scaled to
        mean 0, variance 1 while solving (coefficients are returned for the original X).
    reg : float, default 1e-7
        L2 regularization ``lambda`` (the intercept is not regularized).
    tol : float, default 1e-7
        CG stops when the residual norm falls below ``tol`` times its initial value.
    maxi : int, default 0
        Maximum CG iterations; 0 means ``ncol``, where exact CG has converged.
    verbose : bool, default False
        Show CG progress, or fit statistics of the direct solve.

    Returns
    -------
    B : ndarray of shape (n_features + (icpt > 0), 1)
        Coefficients; with an intercept it is the last entry.

    Warns
    -----
    LinAlgWarning
        If the design matrix (with its intercept column) is singular: the least-squares fit is
        then not unique, and ``reg`` picks one (``lmDS``).
    ConvergenceWarning
        If CG ends at ``maxi`` iterations before reaching ``tol`` (``lmCG``).

    Notes
    -----
    ``n_features <= 1024`` uses ``lmDS`` (``tol`` and ``maxi`` are ignored), else ``lmCG``.

    Examples
    --------
    >>> import numpy as np
    >>> from fedla.algorithms import lm
    >>> X = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [2.0, 1.0]]); y = X @ [[1.0], [2.0]] + 3
    >>> np.round(lm(X, y, icpt=1, reg=0.0), 6).ravel()
    array([1., 2., 3.])
    """
    validate_params("lm", _CONSTRAINTS, locals())
    X, y = _inputs("lm", X, y)
    if X.shape[1] <= DIRECT_SOLVE_MAX_COLUMNS:
        return lmDS(X, y, icpt=icpt, reg=reg, verbose=verbose)
    return lmCG(X, y, icpt=icpt, reg=reg, tol=tol, maxi=maxi, verbose=verbose)


def lmDS(  # noqa: N802 - SystemDS's name
    X: Any, y: Any, icpt: int = 0, reg: float = 1e-7, verbose: bool = False
) -> np.ndarray:
    """Linear regression by a direct solve of the normal equations (SystemDS ``lmDS``).

    Parameters and return value as in :func:`lm` (without ``tol`` and ``maxi``).
    """
    validate_params("lmDS", {k: _CONSTRAINTS[k] for k in ("icpt", "reg", "verbose")}, locals())
    X, y = _inputs("lmDS", X, y)
    Z = DesignMatrix(X, icpt)
    lam = _lambda(Z, reg)

    # STEP 1: A = Z'Z + diag(lambda), b = Z'y (aggregated over the sites)
    A, b = Z.gram(y)
    _warn_if_singular("lmDS", A, reg)
    A = A + np.diag(lam)

    # STEP 2: solve, and map the coefficients back to the space of X
    beta = Z.ss(fl.solve(A, b))
    if verbose:
        _report_fit("lmDS", Z, y, beta)
    return beta


def lmCG(  # noqa: N802 - SystemDS's name
    X: Any, y: Any, icpt: int = 0, reg: float = 1e-7, tol: float = 1e-7, maxi: int = 0,
    verbose: bool = False,
) -> np.ndarray:
    """Linear regression by conjugate gradient on the normal equations (SystemDS ``lmCG``).

    Parameters and return value as in :func:`lm`. Warns with ``ConvergenceWarning`` when
    ``maxi`` iterations end before the tolerance is met.
    """
    validate_params("lmCG", _CONSTRAINTS, locals())
    X, y = _inputs("lmCG", X, y)
    Z = DesignMatrix(X, icpt)
    lam = _lambda(Z, reg)[:, None]
    max_iteration = Z.ncol if maxi == 0 or maxi > Z.ncol else maxi

    # STEP 1: r = -Z'y is the gradient at beta = 0; p is the first search direction
    beta = np.zeros((Z.ncol, 1))
    r = -Z.tdot(y)[0]
    p = -r
    norm_r2 = norm_r2_initial = float(np.sum(r**2))
    norm_r2_target = norm_r2_initial * tol**2

    # STEP 2: CG iterations, one q = (Z'Z + diag(lambda)) p per iteration
    i = 0
    with Progress("lmCG", max_iteration, verbose) as progress:
        while i < max_iteration and norm_r2 > norm_r2_target:
            q = Z.tdot(Z.dot(p))[0] + lam * p
            a = norm_r2 / float(np.sum(p * q))
            beta += a * p
            r += a * q
            old_norm_r2, norm_r2 = norm_r2, float(np.sum(r**2))
            p = -r + (norm_r2 / old_norm_r2) * p
            i += 1
            progress.step(relative_residual=float(np.sqrt(norm_r2 / norm_r2_initial)))
    if norm_r2 > norm_r2_target:
        remedy = ("Try increasing maxi (at most ncol)." if i < Z.ncol else
                  "Try increasing tol or reg, or solve directly with lmDS.")
        warn_not_converged("lmCG", i, remedy)
    return Z.ss(beta)


def lm_predict(X: Any, B: Any, icpt: int = 0) -> Any:
    """Predict responses ``X @ B[:m] + intercept`` (SystemDS ``lmPredict``).

    Parameters
    ----------
    X : ndarray, scipy sparse or fl.Matrix of shape (n_samples, n_features)
    B : ndarray of shape (n_features, 1) or (n_features + 1, 1)
        Coefficients from :func:`lm`; a last extra row is the intercept.
    icpt : {0, 1, 2}, default 0
        Whether ``B`` holds an intercept; it is also taken when ``B`` has one row too many.

    Returns
    -------
    yhat : ndarray, or fl.Matrix living where X lives, of shape (n_samples, 1)
    """
    validate_params("lm_predict", {"icpt": _CONSTRAINTS["icpt"]}, locals())
    X, was_array = as_matrix(X, "X", "lm_predict")
    B = check_model_rows("lm_predict", X, B, "B")
    m = X.shape[1]
    if icpt > 0 and B.shape[0] == m:
        raise fl.ShapeMismatchError(
            f"The 'B' argument of lm_predict has no intercept row for icpt={icpt}; expected "
            f"{m + 1} rows, got {m}."
        )
    intercept = B[m, 0] if B.shape[0] == m + 1 else 0.0
    return returned_like(X @ B[:m] + intercept, was_array)


def _inputs(algorithm: str, X: Any, y: Any) -> tuple[fl.Matrix, fl.Matrix]:
    X, _ = as_matrix(X, "X", algorithm)
    y, _ = as_matrix(y, "y", algorithm, column=True)
    check_same_rows(algorithm, X, y, "y")
    return X, y


def _lambda(Z: DesignMatrix, reg: float) -> np.ndarray:
    """Per-coefficient regularization: ``reg``, except 0 for the intercept."""
    lam = np.full(Z.ncol, float(reg))
    if Z.icpt:
        lam[-1] = 0.0
    return lam


def _warn_if_singular(algorithm: str, ZtZ: np.ndarray, reg: float) -> None:
    """Warn when ``Z'Z`` is numerically rank deficient: the least-squares fit is not unique.

    The rank uses numpy's default tolerance (largest eigenvalue times ``ncol * eps``), which is
    the rounding error of a computed Gram matrix.
    """
    rank = int(np.linalg.matrix_rank(ZtZ, hermitian=True))
    if rank < ZtZ.shape[0]:
        warnings.warn(
            f"{algorithm}: the design matrix is singular (rank {rank} < {ZtZ.shape[0]} "
            f"columns, counting an intercept), so the coefficients are not unique; reg={reg!r} "
            "picks one of the fits. Drop linearly dependent columns, or increase reg.",
            LinAlgWarning,
            stacklevel=3,
        )


def _report_fit(algorithm: str, Z: DesignMatrix, y: fl.Matrix, beta: np.ndarray) -> None:
    """Print R^2 and the residual dispersion (SystemDS's verbose statistics) in one pass."""
    residual = y - (Z.X @ beta[: Z.m] + (beta[Z.m:] if Z.icpt else 0.0))
    ss_res, y_sum, y_sq = fl.compute((residual**2).sum(), y.sum(), (y**2).sum())
    ss_avg_tot = float(y_sq) - float(y_sum) ** 2 / Z.n
    r2 = 1.0 - float(ss_res) / ss_avg_tot if ss_avg_tot > 0 else float("nan")
    dispersion = float(ss_res) / (Z.n - Z.ncol) if Z.n > Z.ncol else float("nan")
    report(algorithm, f"R2 = {r2:.6g}, dispersion = {dispersion:.6g}", verbose=True)
