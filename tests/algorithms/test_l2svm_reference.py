"""l2svm against SystemDS's primal objective minimized by L-BFGS (``references.l2svm``)."""

from __future__ import annotations

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
