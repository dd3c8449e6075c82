"""The design matrix of SystemDS's regression builtins: X, an intercept column, a shift and scale.

SystemDS's ``lm``, ``lmCG`` and ``multiLogReg`` take ``icpt``:

* ``0``: the model sees ``X`` (n x m);
* ``1``: it sees ``X1 = [X, 1]`` (n x (m+1)), an intercept column appended;
* ``2``: it sees ``X1 @ T``, every column of ``X`` shifted and scaled to mean 0 and variance 1
  (sample variance; constant columns are only shifted), the intercept column left as ones:
  ``T = [[diag(s), 0], [t', 1]]`` with ``s_j = 1 / sd_j`` and ``t_j = -mean_j * s_j``.

Neither the ones column nor the scaled ``X`` is ever built: ``X1 @ T @ V`` is computed as
``X @ (s * V[:m]) + (V[m] + t' V[:m])`` and ``(X1 @ T)' @ U`` as ``T' [X' U; 1' U]``, so a
federated (or sparse) ``X`` stays as it is and only m-sized vectors travel. This is SystemDS's
``ssX_A`` / ``tssX_A`` rewrite (``scripts/builtin/lmCG.dml``), in one place for every algorithm.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import fedla as fl


class DesignMatrix:
    """``X`` seen through SystemDS's ``icpt`` option, applied implicitly.

    Parameters
    ----------
    X : fl.Matrix of shape (n, m)
        Features: local or federated, dense or sparse.
    icpt : {0, 1, 2}
        No intercept; intercept; intercept plus shift and scale of the columns of ``X``.

    Attributes
    ----------
    n, m : int
        Rows and columns of ``X``.
    ncol : int
        Columns the model sees: ``m``, or ``m + 1`` with an intercept.
    scale, shift : ndarray of shape (ncol,)
        The diagonal ``s`` and the last row ``t`` of ``T`` (ones and zeros unless ``icpt=2``).
    """

    def __init__(self, X: fl.Matrix, icpt: int) -> None:
        self.X, self.icpt = X, icpt
        self.n, self.m = X.shape
        self.ncol = self.m + (1 if icpt else 0)
        self.scale = np.ones(self.ncol)
        self.shift = np.zeros(self.ncol)
        if icpt == 2:
            mean, var = fl.compute(X.mean(axis=0), X.var(axis=0, ddof=1))
            mean, var = np.ravel(mean), np.ravel(var)
            is_unsafe = ~(var > 0)  # constant columns (and NaN variances) are only shifted
            self.scale[: self.m] = 1.0 / np.sqrt(np.where(is_unsafe, 1.0, var))
            self.shift[: self.m] = -mean * self.scale[: self.m]

    def ss(self, A: np.ndarray) -> np.ndarray:
        """``T @ A`` for A of shape (ncol, k): model coefficients back in the space of X."""
        out = self.scale[:, None] * A
        if self.icpt == 2:
            out[-1] += self.shift @ A
        return out

    def tss(self, A: np.ndarray) -> np.ndarray:
        """``T' @ A`` for A of shape (ncol, k): gradients of X into the model's space."""
        out = self.scale[:, None] * A
        if self.icpt == 2:
            out += self.shift[:, None] * A[-1]
        return out

    def dot(self, V: np.ndarray) -> fl.Matrix:
        """The lazy product ``X1 @ T @ V`` of shape (n, k); it lives where X lives."""
        W = self.ss(np.asarray(V, dtype=np.float64).reshape(self.ncol, -1))
        if not self.icpt:
            return self.X @ W
        return self.X @ W[: self.m] + W[self.m:]

    def tdot(self, U: fl.Matrix, *extra: fl.Matrix) -> tuple[np.ndarray, list[Any]]:
        """Compute ``(X1 @ T)' @ U`` of shape (ncol, k), and ``extra`` in the same evaluation.

        ``U`` (n x k) is typically lazy and federated, built from ``dot`` results; the extras
        (an objective's sum, say) share its subexpressions, so U is evaluated once.
        """
        parts = [self.X.T @ U] + ([U.sum(axis=0)] if self.icpt else [])
        values = fl.compute(*parts, *extra)
        G = np.vstack([_dense(value) for value in values[: len(parts)]])
        return self.tss(G), values[len(parts):]

    def gram(self, y: fl.Matrix) -> tuple[np.ndarray, np.ndarray]:
        """``A = (X1 T)'(X1 T)`` and ``b = (X1 T)' y`` for the normal equations, in one pass."""
        X = self.X
        if not self.icpt:
            A, b = fl.compute(X.T @ X, X.T @ y)
            return _dense(A), _dense(b)
        XtX, Xty, colsums, ysum = fl.compute(X.T @ X, X.T @ y, X.sum(axis=0), y.sum(axis=0))
        colsums = _dense(colsums)
        A = np.block([[_dense(XtX), colsums.T], [colsums, np.full((1, 1), float(self.n))]])
        b = np.vstack([_dense(Xty), _dense(ysum)])
        return self.tss(self.tss(A).T), self.tss(b)


def _dense(value: Any) -> np.ndarray:
    value = value.toarray() if hasattr(value, "toarray") else value
    return np.atleast_2d(np.asarray(value, dtype=np.float64))
