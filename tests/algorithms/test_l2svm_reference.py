"""l2svm against SystemDS's primal objective minimized by L-BFGS (``references.l2svm``)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler

from fedla.algorithms import l2svm, l2svm_predict
from tests.algorithms import references
from tests.algorithms.conftest import as_array, assert_close

X_BC, Y_BC = load_breast_cancer(return_X_y=True)
X_BC = StandardScaler().fit_transform(X_BC)


@pytest.mark.parametrize("intercept", [False, True], ids=["no-intercept", "intercept"])
def test_l2svm_reaches_the_minimizer(convert, intercept: bool) -> None:
    w = l2svm(convert(X_BC), convert(Y_BC), intercept=intercept, reg=10.0, epsilon=1e-12,
              maxi=500)
    assert_close(w, references.l2svm(X_BC, Y_BC, intercept, 10.0), 1e-4)


def test_labels_map_by_order_whatever_their_values() -> None:
    y = np.where(Y_BC == 1, -2.0, 5.0)  # the class of Y_BC == 1 is now the smaller label: -1
    w = l2svm(X_BC, y, intercept=True, reg=10.0, epsilon=1e-12, maxi=500)
    assert_close(w, -references.l2svm(X_BC, Y_BC, True, 10.0), 1e-4)


def test_l2svm_predict_scores_and_signs(convert) -> None:
    w = np.array([[1.0], [-2.0], [0.5]])
    X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.75]])
    YRaw, Y = l2svm_predict(convert(X), w)
    assert_close(YRaw, [[1.5], [-1.5], [0.0]], 1e-15)
    np.testing.assert_array_equal(as_array(Y).ravel(), [1.0, -1.0, -1.0])  # 0 is not positive
    YRaw, Y = l2svm_predict(convert(X), w[:2])  # no bias row: no bias
    assert_close(YRaw, [[1.0], [-2.0], [-0.5]], 1e-15)
    np.testing.assert_array_equal(as_array(Y).ravel(), [1.0, -1.0, -1.0])


@pytest.mark.filterwarnings("ignore:l2svm did not converge")
@pytest.mark.parametrize(("epsilon", "maxii"), [(1e-3, 20), (1e-9, 2), (0.5, 1)])
@pytest.mark.parametrize("intercept", [False, True], ids=["no-intercept", "intercept"])
def test_l2svm_follows_systemds_iterations(intercept: bool, epsilon: float, maxii: int) -> None:
    # every outer iteration (direction, line search, stopping test) matches l2svm.dml written
    # out with numpy on a dense design matrix
    for maxi in (1, 2, 3, 6, 100):
        w = l2svm(X_BC, Y_BC, intercept=intercept, reg=0.7, epsilon=epsilon, maxi=maxi,
                  maxii=maxii)
        expected = references.l2svm_iterations(X_BC, Y_BC, intercept, 0.7, epsilon, maxi, maxii)
        assert_close(w, expected, 1e-10, f"maxi={maxi}")


def test_defaults_are_systemds():
    # scripts/builtin/l2svm.dml: intercept=FALSE, epsilon=0.001, reg=1, maxIterations=100,
    # maxii=20
    defaults = {name: p.default for name, p in inspect.signature(l2svm).parameters.items()
                if p.default is not inspect.Parameter.empty}
    assert defaults == {"intercept": False, "epsilon": 1e-3, "reg": 1.0, "maxi": 100,
                        "maxii": 20, "verbose": False}


@pytest.mark.filterwarnings("ignore:l2svm did not converge")
def test_smallest_allowed_arguments() -> None:
    w = l2svm(X_BC, Y_BC, reg=0.0, epsilon=0.0, maxi=1, maxii=1)
    assert_close(w, references.l2svm_iterations(X_BC, Y_BC, False, 0.0, 0.0, 1, 1), 1e-12)
    # two rows are enough: on x = 1 (label +1) and x = -1 (label -1) the objective is
    # f(w) = (1 - w)^2 + w^2 / 2 for w <= 1, least at w = 2/3
    w = l2svm(np.array([[1.0], [-1.0]]), np.array([1, 0]), epsilon=1e-12)
    np.testing.assert_allclose(w, [[2.0 / 3.0]], rtol=1e-12)
