"""l2svm and l2svm_predict against scikit-learn's LinearSVC, on arrays, local and federated
matrices; federated results agree with local ones to 1e-10."""

from __future__ import annotations

import functools
import re

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

import fedla as fl
from fedla.algorithms import ConvergenceWarning, l2svm, l2svm_predict
from tests.algorithms import references
from tests.algorithms.conftest import as_array, assert_close

X_BC, Y_BC = load_breast_cancer(return_X_y=True)
X_BC = StandardScaler().fit_transform(X_BC)
REG = 1.0


def objective(w: np.ndarray, X: np.ndarray, y01: np.ndarray, reg: float) -> float:
    """SystemDS's primal objective 1/2 sum(hinge^2) + reg/2 ||w||^2 (bias as a last weight)."""
    if w.size == X.shape[1] + 1:
        X = np.hstack([X, np.ones((X.shape[0], 1))])
    hinge = np.maximum(0.0, 1.0 - (2 * y01 - 1) * (X @ np.ravel(w)))
    return 0.5 * float(np.sum(hinge**2)) + reg / 2 * float(np.sum(np.square(w)))


@functools.cache
def _sklearn_objective(intercept: bool) -> float:
    # sklearn minimizes 1/2 ||w||^2 + C sum(hinge^2); dividing SystemDS's objective
    # 1/2 sum(hinge^2) + reg/2 ||w||^2 by reg gives 1/2 ||w||^2 + 1/(2 reg) sum(hinge^2), so the
    # two have the same minimizer exactly when C = 1 / (2 reg). With intercept_scaling=1
    # liblinear treats the bias as a weight on a constant feature and regularizes it, as l2svm.
    svc = LinearSVC(loss="squared_hinge", fit_intercept=intercept, C=1 / (2 * REG), dual=False,
                    tol=1e-12, max_iter=100_000).fit(X_BC, Y_BC)
    w = np.append(svc.coef_, svc.intercept_) if intercept else svc.coef_.ravel()
    return objective(w, X_BC, Y_BC, REG)


@functools.cache
def _local(intercept: bool) -> np.ndarray:
    return l2svm(X_BC, Y_BC, intercept=intercept, reg=REG)


@pytest.mark.parametrize("intercept", [False, True], ids=["no-intercept", "intercept"])
def test_l2svm_reaches_linear_svc_objective(convert, intercept: bool) -> None:
    w = l2svm(convert(X_BC), convert(Y_BC), intercept=intercept, reg=REG, epsilon=1e-6)
    assert w.shape == (X_BC.shape[1] + intercept, 1)
    reference = _sklearn_objective(intercept)
    assert abs(objective(w, X_BC, Y_BC, REG) - reference) <= 1e-4 * reference


@pytest.mark.parametrize("intercept", [False, True], ids=["no-intercept", "intercept"])
def test_l2svm_default_run_agrees_everywhere(convert, intercept: bool) -> None:
    w = l2svm(convert(X_BC), convert(Y_BC), intercept=intercept, reg=REG)
    assert_close(w, _local(intercept), 1e-10, "federated vs local")
    assert objective(w, X_BC, Y_BC, REG) <= 1.01 * _sklearn_objective(intercept)


def test_l2svm_predict(convert) -> None:
    w = _local(True)
    YRaw, Y = l2svm_predict(convert(X_BC), w)
    assert isinstance(Y, np.ndarray) == isinstance(convert(X_BC), np.ndarray)
    assert_close(YRaw, X_BC @ w[:-1] + w[-1], 1e-12)
    Y = as_array(Y)
    assert set(np.unique(Y)) <= {-1.0, 1.0}
    assert np.mean(Y.ravel() == 2 * Y_BC - 1) > 0.98


@pytest.mark.parametrize("labels", [(-1, 1), (0, 1), (3, 7), (1.5, 2.5)], ids=str)
def test_any_two_labels_map_to_minus_one_and_one(labels: tuple[float, float]) -> None:
    y = np.where(Y_BC == 1, labels[1], labels[0])
    np.testing.assert_allclose(l2svm(X_BC, y), _local(False), rtol=1e-12, atol=1e-14)


def test_l2svm_separable_synthetic_data(fed_ctx: fl.Context) -> None:
    rng = np.random.default_rng(5)
    X = rng.normal(size=(500, 4))
    y = (X @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.3 > 0).astype(float)
    sizes = [100, 1, 399]
    w = l2svm(fed_ctx.scatter(X, sizes=sizes), fed_ctx.scatter(y[:, None], sizes=sizes),
              intercept=True, reg=0.1)
    assert np.mean(np.sign(X @ w[:-1] + w[-1]).ravel() == 2 * y - 1) > 0.99
    optimum = objective(references.l2svm(X, y, True, 0.1), X, y, 0.1)
    assert objective(w, X, y, 0.1) <= 1.01 * optimum


def test_l2svm_without_signal_stops_at_zero() -> None:
    # X'y = 0: the first direction is 0, the line search is flat, and w stays 0
    np.testing.assert_array_equal(l2svm(np.zeros((4, 2)), np.array([0, 1, 0, 1])), np.zeros((2, 1)))


def test_l2svm_warns_when_maxi_ends_too_early() -> None:
    with pytest.warns(ConvergenceWarning, match="l2svm did not converge within 2 iterations"):
        l2svm(X_BC, Y_BC, maxi=2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reg": -0.5}, "The 'reg' parameter of l2svm must be a float in the range [0, inf). "
                        "Got -0.5 instead."),
        ({"epsilon": -1}, "The 'epsilon' parameter of l2svm must be a float in the range [0, inf)"),
        ({"maxi": 0}, "The 'maxi' parameter of l2svm must be an int in the range [1, inf). "
                      "Got 0 instead."),
        ({"maxii": 0}, "The 'maxii' parameter of l2svm must be an int in the range [1, inf)"),
        ({"intercept": 1}, "The 'intercept' parameter of l2svm must be an instance of 'bool'. "
                           "Got 1 instead."),
    ],
    ids=["reg", "epsilon", "maxi", "maxii", "intercept"],
)
def test_l2svm_rejects_bad_parameters(kwargs: dict, message: str) -> None:
    with pytest.raises(fl.InvalidArgumentError, match=re.escape(message)):
        l2svm(X_BC, Y_BC, **kwargs)


def test_l2svm_rejects_bad_labels_and_shapes(fed_ctx: fl.Context) -> None:
    with pytest.raises(fl.InvalidArgumentError, match=r"'y' argument of l2svm must hold two "
                                                      r"distinct labels; got only 1.0"):
        l2svm(X_BC, np.ones(len(X_BC)))
    three = Y_BC.astype(float)
    three[:5] = 0.5
    with pytest.raises(fl.InvalidArgumentError, match=r"got 5 label\(s\) other than min"):
        l2svm(fed_ctx.scatter(X_BC), fed_ctx.scatter(three[:, None]))
    with pytest.raises(fl.ShapeMismatchError, match=r"'y' argument of l2svm must have one row"):
        l2svm(X_BC, Y_BC[:10])
    with pytest.raises(fl.InvalidArgumentError, match=r"n_samples=1 should be >= 2"):
        l2svm(X_BC[:1], Y_BC[:1])
    with pytest.raises(fl.ShapeMismatchError, match=r"'w' argument of l2svm_predict must have"):
        l2svm_predict(X_BC, np.ones((5, 1)))
