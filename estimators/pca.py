"""``PCA``: scikit-learn's transformer interface over SystemDS's ``pca``."""

from __future__ import annotations

from numbers import Integral
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from fedla.algorithms import pca, pca_transform
from fedla.estimators.inputs import SparseInput, features


class PCA(SparseInput, TransformerMixin, BaseEstimator):
    """Principal component analysis by :func:`fedla.algorithms.pca`.

    Only the covariance (an ``n_features`` square) leaves the sites of a federated ``X``; the
    reduced data stays there.

    Parameters
    ----------
    n_components : int, default 2
        Number of components (SystemDS's ``K``).
    center : bool, default True
        Subtract the column means first.
    scale : bool, default True
        Divide the centered columns by their sample standard deviation (SystemDS's default;
        scikit-learn's ``PCA`` does not scale).

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        Principal axes, by decreasing explained variance.
    explained_variance_ : ndarray of shape (n_components,)
        Variance along each component (of the scaled data when ``scale``).
    mean_ : ndarray of shape (n_features,)
        Column means subtracted (zeros without ``center``).
    scale_ : ndarray of shape (n_features,)
        Column scale factors divided by (ones without ``scale``).
    n_features_in_ : int
        Number of features seen during ``fit``.

    Examples
    --------
    >>> import numpy as np
    >>> from fedla.estimators import PCA
    >>> X = np.random.default_rng(0).normal(size=(100, 3)) * [5.0, 1.0, 0.1]
    >>> np.round(np.abs(PCA(n_components=1, scale=False).fit(X).components_), 2)
    array([[1., 0., 0.]])
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "center": ["boolean"],
        "scale": ["boolean"],
    }

    def __init__(self, n_components: int = 2, center: bool = True, scale: bool = True) -> None:
        self.n_components = n_components
        self.center = center
        self.scale = scale

    def fit(self, X: Any, y: Any = None) -> PCA:
        """Find the principal axes of X.

        Parameters
        ----------
        X : array-like, sparse matrix or fl.Matrix of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self : PCA
        """
        self._fit(X)
        return self

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> Any:
        """Fit, and return the reduced X (computed once): (n_samples, n_components)."""
        return self._fit(X)

    def transform(self, X: Any) -> Any:
        """Project X on the components: an ndarray, or a lazy fl.Matrix living where X lives."""
        check_is_fitted(self)
        X = features(self, X, reset=False)
        return pca_transform(X, self.components_.T, self.mean_[None, :], self.scale_[None, :])

    def _fit(self, X: Any) -> Any:
        self._validate_params()
        X = features(self, X, reset=True)
        result = pca(X, K=int(self.n_components), center=bool(self.center),
                     scale=bool(self.scale))
        n_features = X.shape[1]
        self.components_ = result.Mout.T.copy()
        self.explained_variance_ = result.evalues.copy()
        self.mean_ = result.Centering.ravel() if self.center else np.zeros(n_features)
        self.scale_ = result.ScaleFactor.ravel() if self.scale else np.ones(n_features)
        return result.Xout
