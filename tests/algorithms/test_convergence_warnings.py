"""Non-convergence is reported as users of scikit-learn expect: a result plus a warning.

kmeans out of iterations returns its best unfinished run, l2svm says when its search stalled
(checked against an optimum found by scipy), and lm says when the design matrix is singular.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.linalg import LinAlgWarning
from scipy.optimize import minimize
from sklearn.datasets import load_breast_cancer, load_iris

from fedla.algorithms import ConvergenceWarning, kmeans, l2svm, lm

X_IRIS = load_iris().data
X_CANCER, Y_CANCER = load_breast_cancer(return_X_y=True)


def _wcss(X: np.ndarray, C: np.ndarray) -> float:
    return float(np.sum(np.min(((X[:, None, :] - C[None, :, :]) ** 2).sum(axis=2), axis=1)))


def test_kmeans_out_of_iterations_returns_its_best_run_with_a_warning() -> None:
    with pytest.warns(ConvergenceWarning, match=r"kmeans did not converge within 1 iterations.*"
                                                r"best of the unfinished runs.*max_iter"):
        C, Y = kmeans(X_IRIS, k=3, runs=4, max_iter=1, seed=3)
    distances = ((X_IRIS[:, None, :] - C[None, :, :]) ** 2).sum(axis=2)
    np.testing.assert_array_equal(Y.ravel(), np.argmin(distances, axis=1) + 1)
    # one Lloyd iteration from k-means++ seeds is worse than converged clusters, not garbage
    C_done, _ = kmeans(X_IRIS, k=3, runs=4, seed=3)
    assert _wcss(X_IRIS, C_done) < _wcss(X_IRIS, C) < 3 * _wcss(X_IRIS, C_done)


def test_kmeans_that_converges_does_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        kmeans(X_IRIS, k=3, runs=2, seed=3)


def _svm_objective(X: np.ndarray, y: np.ndarray, reg: float = 1.0) -> tuple[float, np.ndarray]:
    """Squared-hinge objective with a regularized bias, minimized by scipy (the reference)."""
    Z, Y = np.hstack([X, np.ones((X.shape[0], 1))]), 2.0 * y - 1.0

    def f(w: np.ndarray) -> tuple[float, np.ndarray]:
        xi = np.maximum(0.0, 1.0 - Y * (Z @ w))
        return 0.5 * xi @ xi + 0.5 * reg * w @ w, -Z.T @ (xi * Y) + reg * w

    result = minimize(f, np.zeros(Z.shape[1]), jac=True, method="L-BFGS-B",
                      options={"maxiter": 100_000, "gtol": 1e-10, "ftol": 1e-15})
    return float(result.fun), f


def test_l2svm_warns_when_its_search_stalls_on_unscaled_features() -> None:
    optimum, f = _svm_objective(X_CANCER, Y_CANCER)
    with pytest.warns(ConvergenceWarning, match=r"l2svm stalled.*duality gap.*standardizing"):
        w = l2svm(X_CANCER, Y_CANCER, intercept=True)
    assert f(w.ravel())[0] > 2 * optimum  # the stall is real: far above the optimum


def test_l2svm_on_standardized_features_converges_without_warning() -> None:
    X = (X_CANCER - X_CANCER.mean(axis=0)) / X_CANCER.std(axis=0)
    optimum, f = _svm_objective(X, Y_CANCER)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        w = l2svm(X, Y_CANCER, intercept=True)
    assert f(w.ravel())[0] == pytest.approx(optimum, rel=1e-2)


def test_lm_warns_on_a_singular_design() -> None:
    X = np.arange(8.0).reshape(4, 2)  # second column = first + 1: collinear with the intercept
    y = X @ [[1.0], [2.0]] + 3
    with pytest.warns(LinAlgWarning, match=r"lmDS: the design matrix is singular \(rank 2 < 3"):
        B = lm(X, y, icpt=1)
    # still a least-squares fit, just not the one that generated y
    np.testing.assert_allclose(np.hstack([X, np.ones((4, 1))]) @ B, y, atol=1e-5)


def test_lm_on_a_full_rank_design_does_not_warn() -> None:
    X = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [2.0, 1.0]])
    y = X @ [[1.0], [2.0]] + 3
    with warnings.catch_warnings():
        warnings.simplefilter("error", LinAlgWarning)
        B = lm(X, y, icpt=1, reg=0.0)
    np.testing.assert_allclose(B.ravel(), [1.0, 2.0, 3.0], atol=1e-10)
