"""pca and pca_transform against scikit-learn's PCA and numpy, on arrays, local and federated
matrices; federated results agree with local ones to 1e-10."""

from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_wine
from sklearn.decomposition import PCA

import fedla as fl
from fedla import Partitioning
from fedla.algorithms import pca, pca_transform
from tests.algorithms.conftest import as_array, assert_close, uneven_sizes

X_WINE, _ = load_wine(return_X_y=True)


def _scaled(X: np.ndarray, center: bool, scale: bool) -> np.ndarray:
    """SystemDS's scale(): center by the means, divide by sqrt(colSums(X^2) / (N-1))."""
    if center:
        X = X - X.mean(axis=0)
    if scale:
        sf = np.sqrt(np.sum(X**2, axis=0) / (X.shape[0] - 1))
        X = X / np.where(sf == 0, 1.0, sf)
    return X


def _same_up_to_sign(result: np.ndarray, expected: np.ndarray, atol: float) -> None:
    signs = np.sign(np.sum(result * expected, axis=0))
    np.testing.assert_allclose(result * signs, expected, rtol=0, atol=atol)


def test_pca_matches_sklearn_on_scaled_wine(convert) -> None:
    result = pca(convert(X_WINE), K=4)
    Xs = _scaled(X_WINE, center=True, scale=True)
    reference = PCA(n_components=4, svd_solver="full").fit(Xs)
    _same_up_to_sign(result.Mout, reference.components_.T, atol=1e-8)
    np.testing.assert_allclose(result.evalues, reference.explained_variance_, rtol=1e-10)
    _same_up_to_sign(as_array(result.Xout), reference.transform(Xs), atol=1e-8)
    np.testing.assert_allclose(result.Centering, X_WINE.mean(axis=0, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(result.ScaleFactor, X_WINE.std(axis=0, ddof=1, keepdims=True),
                               rtol=1e-12)
    local = pca(X_WINE, K=4)
    assert_close(result.Mout, local.Mout, 1e-10, "federated vs local components")
    assert_close(result.Xout, local.Xout, 1e-10, "federated vs local reduced data")


@pytest.mark.parametrize(("center", "scale"), [(True, False), (False, True), (False, False)])
def test_pca_options_follow_systemds_scale(convert, center: bool, scale: bool) -> None:
    result = pca(convert(X_WINE), K=3, center=center, scale=scale)
    Xs = _scaled(X_WINE, center, scale)
    evalues, evectors = np.linalg.eigh(np.cov(Xs, rowvar=False))  # always mean-corrected
    expected = evectors[:, ::-1][:, :3]
    _same_up_to_sign(result.Mout, expected, atol=1e-8)
    np.testing.assert_allclose(result.evalues, evalues[::-1][:3], rtol=1e-9)
    assert_close(result.Xout, Xs @ result.Mout, 1e-10)
    assert result.Centering.shape == ((1, 13) if center else (0, 0))
    assert result.ScaleFactor.shape == ((1, 13) if scale else (0, 0))


def test_pca_keeps_the_reduced_data_federated(fed_ctx: fl.Context) -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(6000, 6)) @ rng.normal(size=(6, 6)) + 100.0
    FX = fed_ctx.scatter(X, sizes=uneven_sizes(6000))
    before = {a: s["bytes_received"] for a, s in fed_ctx.stats().items()}
    result = pca(FX, K=2)
    received = sum(s["bytes_received"] - before[a] for a, s in fed_ctx.stats().items())
    assert received < X.nbytes / 20
    assert isinstance(result.Xout, fl.Matrix) and result.Xout.partitioning is Partitioning.ROW
    reference = PCA(n_components=2, svd_solver="full").fit(_scaled(X, True, True))
    _same_up_to_sign(as_array(result.Xout), reference.transform(_scaled(X, True, True)), 1e-8)


def test_pca_on_sparse_data(convert) -> None:
    A = sp.random_array((200, 10), density=0.3, format="csr", rng=np.random.default_rng(4))
    result = pca(convert(A), K=3)
    Xs = _scaled(A.toarray(), center=True, scale=True)
    reference = PCA(n_components=3, svd_solver="full").fit(Xs)
    _same_up_to_sign(result.Mout, reference.components_.T, atol=1e-10)
    _same_up_to_sign(as_array(result.Xout), reference.transform(Xs), atol=1e-10)


def test_pca_transform_reproduces_the_reduced_data(convert) -> None:
    result = pca(X_WINE, K=2)
    Xout = pca_transform(convert(X_WINE), result.Mout, result.Centering, result.ScaleFactor)
    assert isinstance(Xout, np.ndarray) == isinstance(convert(X_WINE), np.ndarray)
    assert_close(Xout, result.Xout, 1e-12)
    plain = pca(X_WINE, K=2, center=False, scale=False)
    assert_close(pca_transform(X_WINE, plain.Mout, plain.Centering, plain.ScaleFactor),
                 X_WINE @ plain.Mout, 1e-12)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"K": 0}, "The 'K' parameter of pca must be an int in the range [1, inf). Got 0 instead."),
        ({"center": "yes"}, "The 'center' parameter of pca must be an instance of 'bool'. "
                            "Got 'yes' instead."),
        ({"K": 14}, "pca: K=14 should be <= n_features=13."),
    ],
    ids=["K", "center", "K-too-large"],
)
def test_pca_rejects_bad_parameters(kwargs: dict, message: str) -> None:
    with pytest.raises(fl.InvalidArgumentError, match=re.escape(message)):
        pca(X_WINE, **kwargs)


def test_pca_transform_rejects_bad_shapes() -> None:
    result = pca(X_WINE, K=2)
    with pytest.raises(fl.ShapeMismatchError, match=r"'Mout' argument of pca_transform"):
        pca_transform(X_WINE[:, :5], result.Mout)
    with pytest.raises(fl.ShapeMismatchError, match=r"'ScaleFactor' argument of pca_transform"):
        pca_transform(X_WINE, result.Mout, result.Centering, np.ones((1, 3)))
