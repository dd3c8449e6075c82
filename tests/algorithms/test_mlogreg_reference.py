"""mlogreg against SystemDS's objective minimized by L-BFGS (``references.mlogreg``), with more
than two classes, ``reg > 0`` and every ``icpt``: the intercepts must not be regularized."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from fedla.algorithms import mlogreg, mlogreg_predict
from tests.algorithms import references
from tests.algorithms.conftest import as_array, assert_close

RNG = np.random.default_rng(11)
X = RNG.normal(size=(300, 4)) * [1.0, 3.0, 0.5, 2.0] + [0.0, 5.0, -1.0, 2.0]
Y = np.argmax(X @ RNG.normal(size=(4, 4)) + RNG.normal(size=(300, 4)), axis=1) + 1.0


@pytest.mark.parametrize("icpt", [0, 1, 2])
def test_mlogreg_minimizes_systemds_objective(convert, icpt: int) -> None:
    B = mlogreg(convert(X), convert(Y), icpt=icpt, reg=0.5, tol=1e-12)
    assert B.shape == (4 + (icpt > 0), 3)
    assert_close(B, references.mlogreg(X, Y, icpt, 0.5), 1e-5, f"icpt={icpt}")


def test_intercepts_of_unbalanced_classes_are_not_shrunk() -> None:
    # classes of 60%, 30%, 10% with a weak signal: a strong reg drives the coefficients to ~0,
    # and the unpenalized intercepts then carry the log odds of the class frequencies
    rng = np.random.default_rng(4)
    y = np.repeat([1.0, 2.0, 3.0], [300, 150, 50])
    X = rng.normal(size=(500, 2)) + 0.1 * y[:, None]
    B = mlogreg(X, y, icpt=1, reg=1e6, tol=1e-12)
    np.testing.assert_allclose(B[:2], 0.0, atol=1e-4)
    np.testing.assert_allclose(B[2], np.log([300 / 50, 150 / 50]), rtol=1e-3)
    assert_close(B, references.mlogreg(X, y, 1, 1e6), 1e-5)


def test_mlogreg_predict_is_the_softmax_of_the_linear_terms(convert) -> None:
    B = np.array([[1.0, -1.0], [0.0, 2.0], [0.5, 0.0]])  # 2 features, intercepts last
    Xs = np.array([[0.0, 0.0], [1.0, 1.0], [-2.0, 0.5]])
    M, predicted = mlogreg_predict(convert(Xs), B)
    logits = np.array([[0.5, 0.0, 0.0], [1.5, 1.0, 0.0], [-1.5, 3.0, 0.0]])
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert_close(M, expected, 1e-14)
    np.testing.assert_array_equal(as_array(predicted).ravel(), [1, 1, 2])


@pytest.mark.filterwarnings("ignore:mlogreg did not converge")
@pytest.mark.parametrize("maxii", [1, 3, 0])
@pytest.mark.parametrize("icpt", [0, 1, 2])
def test_mlogreg_follows_systemds_trust_region_iterations(icpt: int, maxii: int) -> None:
    # every outer iteration (the trust region, the Steihaug CG and the acceptance) matches
    # multiLogReg.dml written out with numpy on a dense design matrix
    for maxi in (1, 2, 3, 5, 8, 13):
        B = mlogreg(X, Y, icpt=icpt, reg=0.5, tol=1e-9, maxi=maxi, maxii=maxii)
        expected = references.mlogreg_iterations(X, Y, icpt, 0.5, 1e-9, maxi, maxii)
        assert_close(B, expected, 1e-9, f"maxi={maxi}")


@pytest.mark.filterwarnings("ignore:mlogreg did not converge")
@pytest.mark.parametrize(("icpt", "maxii"), [(0, 3), (1, 3), (1, 0)])
def test_mlogreg_trust_region_shrinks_like_systemds_on_separable_data(icpt: int,
                                                                      maxii: int) -> None:
    # separable classes and a tiny reg: the quadratic model overshoots now and then, so steps
    # are rejected (rho < eta0) or only partly trusted (rho < eta1, rho < eta2)
    rng = np.random.default_rng(2)
    X = rng.normal(size=(60, 2)) * [10.0, 1.0]
    y = np.argmax(X @ rng.normal(size=(2, 3)), axis=1) + 1.0
    for maxi in (2, 5, 10, 20, 40):
        B = mlogreg(X, y, icpt=icpt, reg=1e-6, tol=1e-9, maxi=maxi, maxii=maxii)
        expected = references.mlogreg_iterations(X, y, icpt, 1e-6, 1e-9, maxi, maxii)
        assert_close(B, expected, 1e-8, f"maxi={maxi}")


def test_defaults_are_systemds():
    # scripts/builtin/multiLogReg.dml: icpt=2, reg=1.0, tol=1e-6, maxi=100, maxii=20
    defaults = {name: p.default for name, p in inspect.signature(mlogreg).parameters.items()
                if p.default is not inspect.Parameter.empty}
    assert defaults == {"icpt": 2, "tol": 1e-6, "reg": 1.0, "maxi": 100, "maxii": 20,
                        "verbose": False}


@pytest.mark.filterwarnings("ignore:mlogreg did not converge")
def test_smallest_allowed_arguments() -> None:
    B = mlogreg(X, Y, icpt=0, reg=0.0, tol=0.0, maxi=1, maxii=0)
    assert_close(B, references.mlogreg_iterations(X, Y, 0, 0.0, 0.0, 1, 0), 1e-10)
