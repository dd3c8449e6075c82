"""lm, lmDS, lmCG and lm_predict against scikit-learn and numpy, on arrays, local and federated
matrices; federated results agree with local ones to 1e-10."""

from __future__ import annotations

import functools
import importlib
import re

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression, Ridge

import fedla as fl
from fedla.algorithms import ConvergenceWarning, lm, lm_predict, lmCG, lmDS
from tests.algorithms import references
from tests.algorithms.conftest import assert_close, uneven_sizes

X_DIA, Y_DIA = load_diabetes(return_X_y=True)


def _synthetic(n: int = 400, m: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Well-conditioned data with an offset, so CG converges and the intercept matters."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, m)) * rng.uniform(0.5, 2.0, size=m) + 0.3 * rng.normal(size=m)
    y = X @ rng.normal(size=(m, 1)) + 3.0 + 0.1 * rng.normal(size=(n, 1))
    return X, y


X_SYN, Y_SYN = _synthetic()


@functools.cache
def _reference(solver: str, icpt: int, reg: float, data: str) -> np.ndarray:
    X, y = (X_DIA, Y_DIA) if data == "diabetes" else (X_SYN, Y_SYN)
    if solver == "lmDS":
        return lmDS(X, y, icpt=icpt, reg=reg)
    return lmCG(X, y, icpt=icpt, reg=reg, tol=1e-12)


@pytest.mark.parametrize("icpt", [0, 1, 2])
def test_lm_matches_linear_regression(convert, icpt: int) -> None:
    B = lm(convert(X_DIA), convert(Y_DIA), icpt=icpt, reg=0.0)
    ref = LinearRegression(fit_intercept=icpt > 0).fit(X_DIA, Y_DIA)
    expected = np.append(ref.coef_, ref.intercept_ if icpt else [])[:, None]
    assert B.shape == (10 + (icpt > 0), 1)
    assert np.max(np.abs(B - expected) / np.abs(expected)) < 1e-6
    assert_close(B, _reference("lmDS", icpt, 0.0, "diabetes"), 1e-10, "federated vs local")


def test_lm_icpt1_is_ridge_with_unpenalized_intercept(convert) -> None:
    B = lm(convert(X_DIA), convert(Y_DIA), icpt=1, reg=0.5)
    ref = Ridge(alpha=0.5).fit(X_DIA, Y_DIA)
    np.testing.assert_allclose(B.ravel(), np.append(ref.coef_, ref.intercept_), rtol=1e-6)


def test_lm_default_reg_is_negligible_after_scaling() -> None:
    ref = LinearRegression().fit(X_DIA, Y_DIA)
    B = lm(X_DIA, Y_DIA, icpt=2)  # reg=1e-7 on standardized columns
    np.testing.assert_allclose(B.ravel(), np.append(ref.coef_, ref.intercept_), rtol=1e-6)


@pytest.mark.parametrize("icpt", [0, 1, 2])
def test_lmCG_matches_least_squares(convert, icpt: int) -> None:
    B_cg = lmCG(convert(X_SYN), convert(Y_SYN), icpt=icpt, reg=1e-3, tol=1e-12)
    assert_close(B_cg, references.ridge(X_SYN, Y_SYN, icpt, 1e-3), 1e-8, "CG vs least squares")
    assert_close(B_cg, _reference("lmCG", icpt, 1e-3, "synthetic"), 1e-10, "federated vs local")


def test_lmCG_matches_least_squares_on_diabetes_after_scaling() -> None:
    with pytest.warns(ConvergenceWarning, match="Try increasing tol or reg"):  # ill-conditioned
        assert_close(lmCG(X_DIA, Y_DIA, icpt=2, tol=1e-12), references.ridge(X_DIA, Y_DIA, 2, 1e-7),
                     1e-5)


def test_lm_uses_cg_above_the_column_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    lm_module = importlib.import_module("fedla.algorithms.lm")  # the attribute is the function
    calls = []
    monkeypatch.setattr(lm_module, "DIRECT_SOLVE_MAX_COLUMNS", 5)
    monkeypatch.setattr(lm_module, "lmCG", lambda *a, **k: calls.append(k) or np.zeros((1, 1)))
    lm(X_SYN, Y_SYN, icpt=1, reg=0.1, tol=1e-3, maxi=7)
    assert calls == [{"icpt": 1, "reg": 0.1, "tol": 1e-3, "maxi": 7, "verbose": False}]


@pytest.mark.parametrize("layout", ["dense", "sparse"])
def test_lm_on_sparse_and_dense_federated_data(fed_ctx: fl.Context, layout: str) -> None:
    rng = np.random.default_rng(3)
    A = sp.random_array((300, 20), density=0.2, format="csr", rng=rng)
    A = A if layout == "sparse" else A.toarray()
    y = rng.normal(size=(300, 1))
    sizes = uneven_sizes(300)
    B = lm(fed_ctx.scatter(A, sizes=sizes), fed_ctx.scatter(y, sizes=sizes), icpt=2, reg=1e-3)
    assert_close(B, references.ridge(A, y, 2, 1e-3), 1e-9, "vs least squares")


def test_federated_lm_brings_back_only_aggregates(fed_ctx: fl.Context) -> None:
    X, y = _synthetic(n=6000, m=8, seed=4)
    sizes = uneven_sizes(6000)
    FX, Fy = fed_ctx.scatter(X, sizes=sizes), fed_ctx.scatter(y, sizes=sizes)
    before = {a: s["bytes_received"] for a, s in fed_ctx.stats().items()}
    lmCG(FX, Fy, icpt=2, reg=1e-3)
    lmDS(FX, Fy, icpt=2)
    received = sum(s["bytes_received"] - before[a] for a, s in fed_ctx.stats().items())
    assert received < X.nbytes / 20


def test_lm_predict(convert) -> None:
    B = lmDS(X_DIA, Y_DIA, icpt=1)
    yhat = lm_predict(convert(X_DIA), B)
    assert_close(yhat, X_DIA @ B[:-1] + B[-1], 1e-12)
    assert isinstance(yhat, np.ndarray) == isinstance(convert(X_DIA), np.ndarray)
    assert_close(lm_predict(convert(X_DIA), B[:-1]), X_DIA @ B[:-1], 1e-12)


def test_lmCG_warns_when_maxi_ends_too_early() -> None:
    with pytest.warns(ConvergenceWarning, match="lmCG did not converge within 2 iterations"):
        lmCG(X_SYN, Y_SYN, icpt=1, maxi=2)


def test_verbose_shows_progress(capsys: pytest.CaptureFixture[str]) -> None:
    lmCG(X_SYN, Y_SYN, icpt=1, reg=1e-3, verbose=True)
    lmDS(X_SYN, Y_SYN, icpt=1, verbose=True)
    out = capsys.readouterr()
    assert "lmCG" in out.err and "R2 =" in out.out + out.err


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reg": -1.0}, "The 'reg' parameter of lm must be a float in the range [0, inf). "
                        "Got -1.0 instead."),
        ({"icpt": 3}, "The 'icpt' parameter of lm must be an int among {0, 1, 2}. Got 3 instead."),
        ({"icpt": True}, "The 'icpt' parameter of lm must be an int among {0, 1, 2}."),
        ({"tol": float("nan")}, "The 'tol' parameter of lm must be a float in the range [0, inf)"),
        ({"maxi": -2}, "The 'maxi' parameter of lm must be an int in the range [0, inf)"),
        ({"maxi": 1.5}, "The 'maxi' parameter of lm must be an int"),
        ({"verbose": "yes"}, "The 'verbose' parameter of lm must be an instance of 'bool'"),
    ],
    ids=["reg", "icpt", "icpt-bool", "tol-nan", "maxi", "maxi-float", "verbose"],
)
def test_lm_rejects_bad_parameters(kwargs: dict, message: str) -> None:
    with pytest.raises(fl.InvalidArgumentError, match=re.escape(message)):
        lm(X_SYN, Y_SYN, **kwargs)


def test_lm_rejects_bad_shapes() -> None:
    with pytest.raises(fl.ShapeMismatchError, match=r"'y' argument of lm must have one row per"):
        lm(X_SYN, Y_SYN[:-1])
    with pytest.raises(fl.ShapeMismatchError, match=r"'y' argument of lmDS must be a single col"):
        lmDS(X_SYN, np.hstack([Y_SYN, Y_SYN]))
    with pytest.raises(fl.ShapeMismatchError, match=r"'X' argument of lmCG must be a 2-D matrix"):
        lmCG(X_SYN[:, 0], Y_SYN)
    with pytest.raises(fl.InvalidArgumentError, match=r"'X' argument of lm must hold numbers"):
        lm(np.array([["a"], ["b"]]), [1.0, 2.0])
    with pytest.raises(fl.ShapeMismatchError, match=r"'B' argument of lm_predict must have"):
        lm_predict(X_SYN, np.ones((3, 1)))
    with pytest.raises(fl.ShapeMismatchError, match=r"no intercept row for icpt=1"):
        lm_predict(X_SYN, np.ones((X_SYN.shape[1], 1)), icpt=1)
