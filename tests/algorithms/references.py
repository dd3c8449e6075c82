"""Reference solutions of the algorithms' objectives, written with numpy and scipy only.

Each function states the objective of the SystemDS builtin that fedla implements and solves it
by a different method than fedla does (least squares instead of normal equations or CG,
quasi-Newton instead of trust-region Newton, a fixed-point check instead of a rerun), so a test
that compares with it can fail when fedla's math is wrong.
"""

from __future__ import annotations

import numpy as np
import scipy.optimize
import scipy.sparse as sp


def _dense(X) -> np.ndarray:
    return X.toarray() if sp.issparse(X) else np.asarray(X, dtype=np.float64)


def standardization(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and sample standard deviations (ddof=1; 1 for constant columns)."""
    mean, sd = X.mean(axis=0), X.std(axis=0, ddof=1)
    return mean, np.where(sd > 0, sd, 1.0)


def design(X: np.ndarray, icpt: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SystemDS's design matrix for ``icpt`` 0/1/2, and the column means and sds it used."""
    X = _dense(X)
    n, m = X.shape
    mean, sd = np.zeros(m), np.ones(m)
    if icpt == 2:
        mean, sd = standardization(X)
        X = (X - mean) / sd
    return (np.hstack([X, np.ones((n, 1))]) if icpt else X), mean, sd


def to_original_space(B: np.ndarray, mean: np.ndarray, sd: np.ndarray, icpt: int) -> np.ndarray:
    """Coefficients of standardized columns (intercept last) as coefficients of the raw X."""
    if icpt != 2:
        return B
    m = mean.size
    out = B.copy()
    out[:m] = B[:m] / sd[:, None]
    out[m] = B[m] - (mean / sd) @ B[:m]
    return out


def ridge(X, y, icpt: int, reg: float) -> np.ndarray:
    """``argmin ||Z b - y||^2 + reg ||b_no_intercept||^2`` by least squares (SystemDS ``lm``).

    Solved as the stacked least-squares problem ``[Z; sqrt(reg) I'] b = [y; 0]`` with numpy's
    SVD-based ``lstsq``, never through the normal equations.
    """
    Z, mean, sd = design(X, icpt)
    y = np.asarray(y, dtype=np.float64).reshape(-1, 1)
    penalty = np.sqrt(reg) * np.eye(Z.shape[1])
    if icpt:
        penalty = penalty[:-1]  # the intercept is not regularized
    A = np.vstack([Z, penalty])
    b = np.vstack([y, np.zeros((penalty.shape[0], 1))])
    beta = np.linalg.lstsq(A, b, rcond=None)[0]
    return to_original_space(beta, mean, sd, icpt)


def mlogreg_objective(B_flat: np.ndarray, Z: np.ndarray, y: np.ndarray, K: int,
                      lam: np.ndarray) -> tuple[float, np.ndarray]:
    """SystemDS ``multiLogReg``'s objective and gradient: softmax over ``[Z B, 0]``."""
    B = B_flat.reshape(Z.shape[1], K)
    LT = np.hstack([Z @ B, np.zeros((Z.shape[0], 1))])
    LT_max = LT.max(axis=1, keepdims=True)
    log_total = np.log(np.exp(LT - LT_max).sum(axis=1, keepdims=True)) + LT_max
    P = np.exp(LT - log_total)
    Y = y[:, None] == np.arange(1, K + 2)[None, :]
    f = float(np.sum(log_total) - np.sum(LT[Y]) + 0.5 * np.sum(lam * B**2))
    grad = Z.T @ (P[:, :K] - Y[:, :K]) + lam * B
    return f, grad.ravel()


def mlogreg(X, y, icpt: int, reg: float) -> np.ndarray:
    """Minimizer of SystemDS ``multiLogReg``'s objective by L-BFGS (labels ``1..K+1``).

    ``f(B) = sum_i [log sum_c exp(LT_ic) - LT_i,y_i] + 1/2 sum(lambda * B^2)``, ``LT = [Z B, 0]``,
    ``lambda = reg`` on every row of ``B`` except the intercept row.
    """
    Z, mean, sd = design(X, icpt)
    y = np.asarray(y).ravel().astype(int)
    K = int(y.max()) - 1
    lam = np.full((Z.shape[1], 1), float(reg))
    if icpt:
        lam[-1] = 0.0
    result = scipy.optimize.minimize(
        mlogreg_objective, np.zeros(Z.shape[1] * K), args=(Z, y, K, lam), jac=True,
        method="L-BFGS-B", options={"gtol": 1e-11, "ftol": 1e-15, "maxiter": 50_000},
    )
    return to_original_space(result.x.reshape(Z.shape[1], K), mean, sd, icpt)


def l2svm_objective(w: np.ndarray, X: np.ndarray, y_pm: np.ndarray, reg: float,
                    intercept: bool) -> tuple[float, np.ndarray]:
    """SystemDS ``l2svm``'s primal objective and gradient (the bias regularized like a weight)."""
    Z = np.hstack([X, np.ones((X.shape[0], 1))]) if intercept else X
    hinge = np.maximum(0.0, 1.0 - y_pm * (Z @ w))
    f = 0.5 * float(hinge @ hinge) + 0.5 * reg * float(w @ w)
    return f, -Z.T @ (hinge * y_pm) + reg * w


def l2svm(X, y, intercept: bool, reg: float) -> np.ndarray:
    """Minimizer of ``1/2 sum max(0, 1 - y_i z_i'w)^2 + reg/2 ||w||^2`` by L-BFGS.

    ``y`` holds two labels; the smaller becomes -1, the larger +1 (SystemDS's mapping).
    """
    X = _dense(X)
    y = np.asarray(y, dtype=np.float64).ravel()
    y_pm = np.where(y == y.max(), 1.0, -1.0)
    w0 = np.zeros(X.shape[1] + intercept)
    result = scipy.optimize.minimize(
        l2svm_objective, w0, args=(X, y_pm, reg, intercept), jac=True, method="L-BFGS-B",
        options={"gtol": 1e-12, "ftol": 1e-16, "maxiter": 50_000},
    )
    return result.x[:, None]


def assert_lloyd_fixed_point(X, C: np.ndarray, Y: np.ndarray, rtol: float = 1e-9) -> None:
    """``Y`` assigns every row to its nearest centroid and each centroid is its rows' mean.

    That is what a converged run of Lloyd's algorithm returns, whatever its initialization.
    """
    X = _dense(X)
    Y = np.asarray(Y).ravel()
    distances = ((X[:, None, :] - C[None, :, :]) ** 2).sum(axis=2)
    np.testing.assert_array_equal(Y, np.argmin(distances, axis=1) + 1)
    for j in range(C.shape[0]):
        assert np.any(Y == j + 1), f"centroid {j + 1} has no rows"
        np.testing.assert_allclose(C[j], X[Y == j + 1].mean(axis=0), rtol=rtol,
                                   atol=rtol * np.abs(X).max())


def wcss(X, C: np.ndarray, Y: np.ndarray) -> float:
    """Within-cluster sum of squares of the assignment ``Y`` (1-based) to ``C``."""
    return float(np.sum((_dense(X) - C[np.asarray(Y).ravel() - 1]) ** 2))
