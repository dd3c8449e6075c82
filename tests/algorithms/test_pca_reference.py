"""pca on hand-computed cases and closed forms: the trace of a correlation matrix, two rows,
constant columns, the sign convention and SystemDS's defaults."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from sklearn.datasets import load_wine

from fedla.algorithms import pca
from tests.algorithms.conftest import as_array

X_WINE, _ = load_wine(return_X_y=True)


def test_defaults_are_systemds():
    # scripts/builtin/pca.dml: K=2, center=TRUE, scale=TRUE
    defaults = {name: p.default for name, p in inspect.signature(pca).parameters.items()
                if p.default is not inspect.Parameter.empty}
    assert defaults == {"K": 2, "center": True, "scale": True}


def test_all_components_of_scaled_data_share_the_trace_of_the_correlation_matrix():
    result = pca(X_WINE, K=13)
    assert result.Mout.shape == (13, 13)
    np.testing.assert_allclose(result.evalues.sum(), 13.0, rtol=1e-12)  # trace of a correlation
    assert np.all(np.diff(result.evalues) <= 0)
    np.testing.assert_allclose(result.Mout.T @ result.Mout, np.eye(13), atol=1e-12)


def test_each_component_has_a_positive_largest_entry():
    result = pca(X_WINE, K=5)
    for j in range(5):
        column = result.Mout[:, j]
        assert column[np.argmax(np.abs(column))] > 0


def test_two_rows_by_hand():
    # two rows: the centered rows are +-d with d = (row1 - row2) / 2 = [-1, 2, -0.25], the
    # covariance is 2 d d' with the one eigenvalue 2 |d|^2 = 10.125 and the component d / |d|
    # (|d| = 2.25; its largest entry is already positive); Xout = +-|d|
    X = np.array([[1.0, 5.0, 2.0], [3.0, 1.0, 2.5]])
    result = pca(X, K=1, scale=False)
    np.testing.assert_allclose(result.evalues, [10.125], rtol=1e-12)
    np.testing.assert_allclose(result.Mout, np.array([[-1.0], [2.0], [-0.25]]) / 2.25,
                               rtol=1e-12)
    np.testing.assert_allclose(as_array(result.Xout), [[2.25], [-2.25]], rtol=1e-12)
    np.testing.assert_allclose(result.Centering, [[2.0, 3.0, 2.25]], rtol=1e-15)
    # scaled: each column divided by its sample standard deviation |a - b| / sqrt(2)
    np.testing.assert_allclose(pca(X, K=1).ScaleFactor,
                               [[np.sqrt(2), 2 * np.sqrt(2), 0.5 / np.sqrt(2)]], rtol=1e-15)
    np.testing.assert_allclose(pca(X, K=1).evalues, [3.0], rtol=1e-12)


@pytest.mark.parametrize("center", [True, False])
def test_a_constant_column_is_left_unscaled(center: bool) -> None:
    X = np.hstack([X_WINE[:, :3], np.zeros((len(X_WINE), 1))])
    result = pca(X, K=2, center=center)
    assert result.ScaleFactor[0, 3] == 1.0
    assert np.all(np.isfinite(result.Mout)) and np.all(np.isfinite(as_array(result.Xout)))
    np.testing.assert_allclose(result.Mout[3], 0.0, atol=1e-12)
