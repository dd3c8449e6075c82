"""lm, lmDS and lmCG against ridge regression solved by least squares (``references.ridge``),
for every ``icpt`` with ``reg > 0``, on arrays, local and federated matrices."""

from __future__ import annotations

import importlib
import inspect

import numpy as np
import pytest
from sklearn.datasets import load_diabetes

from fedla.algorithms import lm, lm_predict, lmCG, lmDS
from tests.algorithms import references
from tests.algorithms.conftest import assert_close

lm_module = importlib.import_module("fedla.algorithms.lm")  # the attribute is the function
X_DIA, Y_DIA = load_diabetes(return_X_y=True)
RNG = np.random.default_rng(21)
# columns of different scales and offsets, so icpt=2's shift and scale change the solution
X_SYN = RNG.normal(size=(200, 6)) * [0.5, 1.0, 2.0, 4.0, 8.0, 0.1] + [1.0, -2.0, 0.0, 3.0, 5.0, 7.0]
Y_SYN = X_SYN @ RNG.normal(size=(6, 1)) + 4.0 + RNG.normal(size=(200, 1))
# well-conditioned for conjugate gradient whatever icpt: scales within 4x, small offsets
X_CG = RNG.normal(size=(200, 6)) * RNG.uniform(0.5, 2.0, size=6) + 0.3 * RNG.normal(size=6)


@pytest.mark.parametrize("reg", [1e-3, 2.5, 40.0])
@pytest.mark.parametrize("icpt", [0, 1, 2])
def test_lmDS_is_ridge_with_an_unpenalized_intercept(convert, icpt: int, reg: float) -> None:
    B = lmDS(convert(X_SYN), convert(Y_SYN), icpt=icpt, reg=reg)
    assert_close(B, references.ridge(X_SYN, Y_SYN, icpt, reg), 1e-9, f"icpt={icpt}")


@pytest.mark.parametrize("icpt", [0, 1, 2])
def test_lmCG_is_ridge_with_an_unpenalized_intercept(convert, icpt: int) -> None:
    B = lmCG(convert(X_CG), convert(Y_SYN), icpt=icpt, reg=2.5, tol=1e-12)
    assert_close(B, references.ridge(X_CG, Y_SYN, icpt, 2.5), 1e-9, f"icpt={icpt}")


def test_icpt2_regularizes_the_standardized_coefficients() -> None:
    # a strong reg shrinks standardized coefficients toward 0; on the raw scale the shrinkage is
    # visibly different from ridge on raw columns, so the two cannot be confused
    B = lm(X_DIA, Y_DIA, icpt=2, reg=100.0)
    assert_close(B, references.ridge(X_DIA, Y_DIA, 2, 100.0), 1e-10)
    raw_ridge = references.ridge(X_DIA, Y_DIA, 1, 100.0)
    assert np.max(np.abs(B - raw_ridge)) > 0.1 * np.max(np.abs(raw_ridge))


def test_icpt2_only_shifts_a_constant_column() -> None:
    X = np.hstack([X_SYN[:, :3], np.full((200, 1), 3.0)])
    B = lmDS(X, Y_SYN, icpt=2, reg=0.5)
    assert_close(B, references.ridge(X, Y_SYN, 2, 0.5), 1e-10)
    assert abs(B[3, 0]) < 1e-10  # the shifted column is 0: only reg acts on it


def test_lmCG_stops_after_maxi_steps_of_conjugate_gradient() -> None:
    # CG on an n x n system is exact after n steps; after 1 step it is the exact line search
    # along the gradient: beta = (r'r / r'Ar) r with r = X'y
    X, y = X_CG[:, :3], Y_SYN
    A = X.T @ X + 0.5 * np.eye(3)
    r = X.T @ y
    expected = (r.T @ r).item() / (r.T @ A @ r).item() * r
    with pytest.warns(UserWarning, match="lmCG did not converge within 1 iterations"):
        np.testing.assert_allclose(lmCG(X, y, reg=0.5, maxi=1), expected, rtol=1e-12)
    np.testing.assert_allclose(lmCG(X, y, reg=0.5, maxi=0, tol=1e-10),
                               references.ridge(X, y, 0, 0.5), rtol=1e-9)


def test_lmDS_verbose_prints_r2_and_dispersion(capsys: pytest.CaptureFixture[str]) -> None:
    B = lmDS(X_SYN, Y_SYN, icpt=1, reg=1.0, verbose=True)
    residual = Y_SYN - (X_SYN @ B[:-1] + B[-1])
    ss_res = float(np.sum(residual**2))
    r2 = 1.0 - ss_res / float(np.sum((Y_SYN - Y_SYN.mean()) ** 2))
    dispersion = ss_res / (200 - 7)
    out = capsys.readouterr()
    assert f"R2 = {r2:.6g}, dispersion = {dispersion:.6g}" in out.out + out.err


@pytest.mark.filterwarnings("ignore:lmCG did not converge")
@pytest.mark.parametrize("icpt", [0, 1, 2])
def test_lmCG_iterates_like_conjugate_gradient(icpt: int) -> None:
    for maxi in range(1, 8):
        B = lmCG(X_CG, Y_SYN, icpt=icpt, reg=0.5, tol=1e-14, maxi=maxi)
        expected = references.conjugate_gradient(X_CG, Y_SYN, icpt, 0.5, min(maxi, 6 + bool(icpt)))
        assert_close(B, expected, 1e-10, f"maxi={maxi}")


def test_defaults_are_systemds():
    # scripts/builtin/lm.dml, lmDS.dml, lmCG.dml: icpt=0, reg=1e-7, tol=1e-7, maxi=0
    expected = {"icpt": 0, "reg": 1e-7, "tol": 1e-7, "maxi": 0, "verbose": False}
    for function in (lm, lmDS, lmCG):
        defaults = {name: p.default for name, p in inspect.signature(function).parameters.items()
                    if p.default is not inspect.Parameter.empty}
        assert defaults == {k: v for k, v in expected.items() if k in defaults}, function
    assert inspect.signature(lm_predict).parameters["icpt"].default == 0
    assert lm_module.DIRECT_SOLVE_MAX_COLUMNS == 1024


def test_lm_solves_directly_up_to_1024_columns_and_by_cg_beyond() -> None:
    # a 1024-column problem that CG cannot finish in maxi=1 iteration: only lmDS gets it right
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1100, 1024))
    y = X[:, :1] + 0.01 * rng.normal(size=(1100, 1))
    assert_close(lm(X, y, reg=1.0, maxi=1), references.ridge(X, y, 0, 1.0), 1e-8)
    with pytest.warns(UserWarning, match="lmCG did not converge within 1 iterations"):
        lm(np.hstack([X, X[:, :1]]), y, reg=1.0, maxi=1)


def test_lmDS_verbose_statistics_that_are_undefined_print_nan(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # n = ncol: no residual degrees of freedom; constant y: no variance to explain
    lmDS(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), np.array([1.0, 2.0, 4.0]), icpt=1,
         verbose=True)
    lmDS(np.array([[1.0], [2.0], [4.0], [5.0]]), np.full(4, 3.0), icpt=1, verbose=True)
    out = capsys.readouterr()
    lines = [s for s in (out.out + out.err).splitlines() if "R2 =" in s]
    assert lines[0].endswith("dispersion = nan") and "R2 = 1" in lines[0]
    assert lines[1].startswith("lmDS: R2 = nan, dispersion = 0")


@pytest.mark.filterwarnings("ignore:lmCG did not converge")
def test_lmCG_stops_once_the_residual_falls_below_tol() -> None:
    # the first CG step whose normal-equation residual is <= tol times the initial one
    X, y, tol = X_CG, Y_SYN, 0.05
    A = X.T @ X + 0.5 * np.eye(6)
    b = X.T @ y
    steps = next(k for k in range(1, 7) if np.linalg.norm(
        b - A @ references.conjugate_gradient(X, y, 0, 0.5, k)) <= tol * np.linalg.norm(b))
    assert steps < 6  # the test needs an early stop
    assert_close(lmCG(X, y, reg=0.5, tol=tol), references.conjugate_gradient(X, y, 0, 0.5, steps),
                 1e-12)


def test_lmDS_verbose_without_intercept(capsys: pytest.CaptureFixture[str]) -> None:
    y = 0.001 * Y_SYN  # a total sum of squares below 1 (0.01 here) is still one
    B = lmDS(X_SYN, y, verbose=True)
    ss_res = float(np.sum((y - X_SYN @ B) ** 2))
    r2 = 1.0 - ss_res / float(np.sum((y - y.mean()) ** 2))
    out = capsys.readouterr()
    assert f"R2 = {r2:.6g}, dispersion = {ss_res / (200 - 6):.6g}" in out.out + out.err
