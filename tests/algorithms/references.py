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


def conjugate_gradient(X, y, icpt: int, reg: float, steps: int) -> np.ndarray:
    """``steps`` iterations of plain CG on ``(Z'Z + diag(lambda)) b = Z'y`` from ``b = 0``
    (SystemDS ``lmCG`` without its stopping test), mapped back to the raw X for ``icpt=2``."""
    Z, mean, sd = design(X, icpt)
    lam = np.full(Z.shape[1], float(reg))
    if icpt:
        lam[-1] = 0.0
    A = Z.T @ Z + np.diag(lam)
    b = Z.T @ np.asarray(y, dtype=np.float64).reshape(-1, 1)
    beta = np.zeros_like(b)
    r = b.copy()  # residual b - A beta
    p = r.copy()
    for _ in range(steps):
        Ap = A @ p
        step = (r.T @ r).item() / (p.T @ Ap).item()
        beta = beta + step * p
        r_new = r - step * Ap
        p = r_new + (r_new.T @ r_new).item() / (r.T @ r).item() * p
        r = r_new
    return to_original_space(beta, mean, sd, icpt)


def l2svm_iterations(X, y, intercept: bool, reg: float, epsilon: float, maxi: int,
                     maxii: int) -> np.ndarray:
    """SystemDS ``l2svm.dml``'s nonlinear CG with Newton line search, on a dense ``Z``.

    Written from the DML script: Fletcher-Reeves directions, a line search that stops when
    ``g^2 / h < epsilon`` or after ``maxii`` steps, and an outer loop that stops when a step gains
    less than ``epsilon * obj`` or after ``maxi`` iterations. The one addition is SystemDS's
    missing guard against ``h = 0`` (a zero direction with no support vectors).
    """
    X = _dense(X)
    Z = np.hstack([X, np.ones((X.shape[0], 1))]) if intercept else X
    y = np.asarray(y, dtype=np.float64).ravel()
    Y = np.where(y == y.max(), 1.0, -1.0)
    w = np.zeros(Z.shape[1])
    g_old = Z.T @ Y
    s = g_old.copy()
    Zw = np.zeros(Z.shape[0])
    for _ in range(maxi):
        Zs = Z @ s
        wd, dd = reg * (w @ s), reg * (s @ s)
        step = 0.0
        for _ in range(maxii):
            out = 1.0 - Y * (Zw + step * Zs)
            sv = out > 0
            g = wd + step * dd - np.sum(out * sv * Y * Zs)
            h = dd + np.sum(Zs * sv * Zs)
            if h <= 0:
                break
            step -= g / h
            if g * g / h < epsilon:
                break
        w = w + step * s
        Zw = Zw + step * Zs
        out = np.maximum(1.0 - Y * Zw, 0.0)
        obj = 0.5 * (out @ out) + reg / 2 * (w @ w)
        g_new = Z.T @ (out * Y) - reg * w
        if step * (s @ g_old) < epsilon * obj or s @ s == 0:
            break
        s = (g_new @ g_new) / (g_old @ g_old) * s + g_new
        g_old = g_new
    return w[:, None]


def mlogreg_iterations(X, y, icpt: int, reg: float, tol: float, maxi: int,
                       maxii: int) -> np.ndarray:
    """SystemDS ``multiLogReg.dml``'s trust-region Newton method, on a dense design matrix.

    Written from the DML script (Lin, Weng and Keerthi 2008): Steihaug CG for the subproblem
    (stop at ``||R|| <= 0.1 ||Grad||``, the boundary, or ``maxii`` steps), acceptance at
    ``rho > 1e-4``, the trust-region update with (eta0, eta1, eta2) = (1e-4, 0.25, 0.75) and
    (sigma1, sigma2, sigma3) = (0.25, 0.5, 4), and the stop on the gradient norm, ``maxi``, or
    a relative change of the objective below 1e-14 without reaching the boundary.
    """
    eta0, eta1, eta2, sigma1, sigma2, sigma3, psi = 1e-4, 0.25, 0.75, 0.25, 0.5, 4.0, 0.1
    Z, mean, sd = design(X, icpt)
    y = np.asarray(y).ravel().astype(int)
    N, D = Z.shape
    K = int(y.max()) - 1
    Y = (y[:, None] == np.arange(1, K + 2)[None, :]).astype(float)
    lam = np.full((D, 1), float(reg))
    if icpt:
        lam[-1] = 0.0
    max_inner = D * K if maxii == 0 else maxii

    def probabilities_and_nll(B):
        LT = np.hstack([Z @ B, np.zeros((N, 1))])
        LT_max = LT.max(axis=1, keepdims=True)
        E = np.exp(LT - LT_max)
        log_total = np.log(E.sum(axis=1, keepdims=True)) + LT_max
        return E / E.sum(axis=1, keepdims=True), float(np.sum(log_total) - np.sum(Y * LT))

    B = np.zeros((D, K))
    P = np.full((N, K + 1), 1.0 / (K + 1))
    delta = 0.5 * np.sqrt(D) / np.max(np.sqrt(np.sum(Z**2, axis=1)))
    obj = N * np.log(K + 1)
    Grad = Z.T @ (P[:, :K] - Y[:, :K]) + lam * B
    norm_Grad = norm_Grad_initial = np.sqrt(np.sum(Grad**2))
    iteration = 1
    converged = norm_Grad < tol
    while not converged:
        S, R = np.zeros((D, K)), -Grad
        V, norm_R2 = R.copy(), np.sum(R**2)
        inner, boundary = 0, False
        P_K = P[:, :K]
        while np.sqrt(norm_R2) > psi * norm_Grad and inner < max_inner:
            Q = P_K * (Z @ V)
            HV = Z.T @ (Q - P_K * Q.sum(axis=1, keepdims=True)) + lam * V
            alpha = norm_R2 / np.sum(V * HV)
            inner += 1
            if np.sum((S + alpha * V) ** 2) <= delta**2:
                S, R = S + alpha * V, R - alpha * HV
                old_norm_R2, norm_R2 = norm_R2, np.sum(R**2)
                V = R + norm_R2 / old_norm_R2 * V
            else:
                boundary = True
                sv, v2, s2 = np.sum(S * V), np.sum(V**2), np.sum(S**2)
                rad = np.sqrt(sv**2 + v2 * (delta**2 - s2))
                alpha = (delta**2 - s2) / (sv + rad) if sv >= 0 else (rad - sv) / v2
                S, R = S + alpha * V, R - alpha * HV
                break
        gs = np.sum(S * Grad)
        qk = -0.5 * (gs - np.sum(S * R))
        B_new = B + S
        P_new, nll = probabilities_and_nll(B_new)
        obj_new = nll + 0.5 * float(np.sum(lam * B_new**2))
        actred = obj - obj_new
        rho = actred / qk
        snorm = np.sqrt(np.sum(S**2))
        if iteration == 1:
            delta = min(delta, snorm)
        alpha2 = obj_new - obj - gs
        alpha = sigma3 if alpha2 <= 0 else max(sigma1, -0.5 * gs / alpha2)
        if rho < eta0:
            delta = min(max(alpha, sigma1) * snorm, sigma2 * delta)
        elif rho < eta1:
            delta = max(sigma1 * delta, min(alpha * snorm, sigma2 * delta))
        elif rho < eta2:
            delta = max(sigma1 * delta, min(alpha * snorm, sigma3 * delta))
        else:
            delta = max(delta, min(alpha * snorm, sigma3 * delta))
        if rho > eta0:
            B, P, obj = B_new, P_new, obj_new
            Grad = Z.T @ (P[:, :K] - Y[:, :K]) + lam * B
            norm_Grad = np.sqrt(np.sum(Grad**2))
        iteration += 1
        converged = (norm_Grad < tol * norm_Grad_initial or iteration > maxi
                     or (not boundary and abs(actred) < (abs(obj) + abs(obj_new)) * 1e-14))
    return to_original_space(B, mean, sd, icpt)
