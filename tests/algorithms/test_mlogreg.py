"""mlogreg and mlogreg_predict against scikit-learn's LogisticRegression, on arrays, local and
federated matrices; federated results agree with local ones to 1e-10."""

from __future__ import annotations

import functools
import re

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import fedla as fl
from fedla.algorithms import ConvergenceWarning, mlogreg, mlogreg_predict
from tests.algorithms import references
from tests.algorithms.conftest import as_array, assert_close

X_DIG, Y_DIG = load_digits(return_X_y=True)
X_TRAIN, X_TEST, Y_TRAIN, Y_TEST = train_test_split(
    X_DIG, Y_DIG + 1, test_size=0.3, random_state=0, stratify=Y_DIG
)
TOL = 1e-9
# On digits both runs stop by SystemDS's rule |obj - obj_new| < 1e-14 (|obj| + |obj_new|) at a
# gradient norm of ~1e-10 of the initial one; coefficients summed in different orders then agree
# to ~1e-10 relative (probabilities to ~4e-10), so digits is compared at 1e-9 and the 1e-10
# agreement is checked on a better conditioned problem (test_mlogreg_without_scaling_...).
DIGITS_AGREEMENT = 1e-9


@functools.cache
def _local_digits() -> np.ndarray:
    return mlogreg(X_TRAIN, Y_TRAIN, tol=TOL)


def _accuracy(B: np.ndarray) -> float:
    return float(np.mean(mlogreg_predict(X_TEST, B)[1].ravel() == Y_TEST))


def test_mlogreg_accuracy_matches_logistic_regression(convert) -> None:
    B = mlogreg(convert(X_TRAIN), convert(Y_TRAIN), tol=TOL)
    assert B.shape == (65, 9)
    scaler = StandardScaler().fit(X_TRAIN)  # icpt=2 standardizes; so does the reference
    reference = LogisticRegression(C=1.0, max_iter=5000).fit(scaler.transform(X_TRAIN), Y_TRAIN)
    expected = reference.score(scaler.transform(X_TEST), Y_TEST)
    assert abs(_accuracy(B) - expected) <= 0.01
    assert_close(B, _local_digits(), DIGITS_AGREEMENT, "federated vs local")


def test_binary_mlogreg_is_logistic_regression() -> None:
    # With K = 1 the model is P(class 1) = sigmoid(x'b): sklearn's binary logistic regression
    # with C = 1 / reg (neither penalizes the intercept), coefficients negated because sklearn
    # models the larger class where mlogreg takes it as the baseline.
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    B = mlogreg(X, y + 1, icpt=1, reg=2.0, tol=1e-10)
    reference = LogisticRegression(C=0.5, tol=1e-12, max_iter=10_000).fit(X, y)
    expected = -np.append(reference.coef_, reference.intercept_)
    np.testing.assert_allclose(B.ravel(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("icpt", [0, 1])
def test_mlogreg_without_scaling_agrees_everywhere(convert, icpt: int) -> None:
    rng = np.random.default_rng(7)
    X = rng.normal(size=(300, 5))
    y = np.argmax(X @ rng.normal(size=(5, 4)) + rng.normal(size=(300, 4)), axis=1) + 1.0
    B = mlogreg(convert(X), convert(y), icpt=icpt, reg=0.1, tol=1e-10)
    assert_close(B, references.mlogreg(X, y, icpt, 0.1), 1e-6)
    assert np.mean(mlogreg_predict(X, B)[1].ravel() == y) > 0.7


def test_labels_up_to_zero_become_the_baseline() -> None:
    y = Y_TRAIN - 1.0  # 0..9: label 0 is the baseline class 10
    B = mlogreg(X_TRAIN, y, tol=TOL)
    assert_close(B, references.mlogreg(X_TRAIN, np.where(y == 0, 10, y), 2, 1.0), 1e-5)


def test_mlogreg_predict(convert) -> None:
    B = _local_digits()
    M, predicted = mlogreg_predict(convert(X_TEST), B)
    assert isinstance(M, np.ndarray) == isinstance(convert(X_TEST), np.ndarray)
    M, predicted = as_array(M), as_array(predicted)
    assert M.shape == (len(X_TEST), 10) and predicted.shape == (len(X_TEST), 1)
    np.testing.assert_allclose(M.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(predicted.ravel(), np.argmax(M, axis=1) + 1)
    logits = np.hstack([X_TEST @ B[:-1] + B[-1], np.zeros((len(X_TEST), 1))])
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    assert_close(M, expected / expected.sum(axis=1, keepdims=True), 1e-12)


def test_mlogreg_warns_when_maxi_ends_too_early() -> None:
    with pytest.warns(ConvergenceWarning, match="mlogreg did not converge within 2 iterations"):
        mlogreg(X_TRAIN[:200], Y_TRAIN[:200], maxi=2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"icpt": -1}, "The 'icpt' parameter of mlogreg must be an int among {0, 1, 2}. "
                       "Got -1 instead."),
        ({"reg": "1"}, "The 'reg' parameter of mlogreg must be a float in the range [0, inf). "
                       "Got '1' instead."),
        ({"tol": -1e-3}, "The 'tol' parameter of mlogreg must be a float in the range [0, inf)"),
        ({"maxi": 0}, "The 'maxi' parameter of mlogreg must be an int in the range [1, inf)"),
        ({"maxii": -1}, "The 'maxii' parameter of mlogreg must be an int in the range [0, inf)"),
    ],
    ids=["icpt", "reg", "tol", "maxi", "maxii"],
)
def test_mlogreg_rejects_bad_parameters(kwargs: dict, message: str) -> None:
    with pytest.raises(fl.InvalidArgumentError, match=re.escape(message)):
        mlogreg(X_TRAIN, Y_TRAIN, **kwargs)


def test_mlogreg_rejects_bad_labels_and_shapes(fed_ctx: fl.Context) -> None:
    with pytest.raises(fl.InvalidArgumentError, match=r"must hold integer class labels; got 1 "):
        mlogreg(X_TRAIN[:50], np.r_[Y_TRAIN[:49], 1.5])
    with pytest.raises(fl.InvalidArgumentError, match=r"at least two classes; got only 1"):
        mlogreg(fed_ctx.scatter(X_TRAIN[:50]), fed_ctx.scatter(np.ones((50, 1))))
    with pytest.raises(fl.ShapeMismatchError, match=r"'Y' argument of mlogreg must be a single"):
        mlogreg(X_TRAIN, np.ones((len(X_TRAIN), 2)))
    with pytest.raises(fl.ShapeMismatchError, match=r"'B' argument of mlogreg_predict must"):
        mlogreg_predict(X_TEST, np.ones((3, 9)))
