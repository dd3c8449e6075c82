"""``KMeans``: scikit-learn's clusterer interface over SystemDS's ``kmeans``."""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

import fedla as fl
from fedla.algorithms import kmeans, kmeans_predict
from fedla.estimators.inputs import SparseInput, features, per_row


class KMeans(SparseInput, ClusterMixin, TransformerMixin, BaseEstimator):
    """k-means by :func:`fedla.algorithms.kmeans`: k-means++ on samples, Lloyd, best of runs.

    Parameters
    ----------
    n_clusters : int, default 8
        Number of clusters (``k``).
    n_init : int, default 10
        Independent runs; the lowest within-cluster sum of squares wins (``runs``).
    max_iter : int, default 1000
        Maximum Lloyd iterations per run.
    tol : float, default 1e-6
        A run converged when the within-cluster sum of squares drops by less than this
        fraction of itself (``eps``).
    sample_size_per_centroid : int, default 50
        Rows sampled per centroid for the k-means++ initialization.
    random_state : int, RandomState instance or None, default None
        Seed of the sampling and the k-means++ draws.
    verbose : bool, default False
        Show the iterations.

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
        Centroids.
    labels_ : ndarray of shape (n_samples,), or a lazy fl.Matrix column
        0-based cluster of each training row (it stays where a federated ``X`` lives).
    inertia_ : float
        Sum of squared distances of the training rows to their centroid.
    n_features_in_ : int
        Number of features seen during ``fit``.

    Examples
    --------
    >>> import numpy as np
    >>> from fedla.estimators import KMeans
    >>> X = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]])
    >>> model = KMeans(n_clusters=2, random_state=0).fit(X)
    >>> model.labels_[0] == model.labels_[1] != model.labels_[2] == model.labels_[3]
    np.True_
    """

    _parameter_constraints: dict = {
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "sample_size_per_centroid": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self, n_clusters: int = 8, n_init: int = 10, max_iter: int = 1000, tol: float = 1e-6,
        sample_size_per_centroid: int = 50, random_state: Any = None, verbose: bool = False,
    ) -> None:
        self.n_clusters = n_clusters
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.sample_size_per_centroid = sample_size_per_centroid
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, X: Any, y: Any = None) -> KMeans:
        """Cluster the rows of X.

        Parameters
        ----------
        X : array-like, sparse matrix or fl.Matrix of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self : KMeans
        """
        self._validate_params()
        X = features(self, X, reset=True)
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        C, Y = kmeans(X, k=int(self.n_clusters), runs=int(self.n_init),
                      max_iter=int(self.max_iter), eps=float(self.tol),
                      avg_sample_size_per_centroid=int(self.sample_size_per_centroid),
                      seed=seed, verbose=bool(self.verbose))
        self.cluster_centers_ = C
        self.labels_ = per_row(Y - 1)
        self.inertia_ = self._inertia(X)
        return self

    def predict(self, X: Any) -> Any:
        """0-based index of the nearest centroid: shape (n_samples,), or a lazy fl.Matrix."""
        check_is_fitted(self)
        X = features(self, X, reset=False)
        return per_row(kmeans_predict(X, self.cluster_centers_) - 1)

    def transform(self, X: Any) -> Any:
        """Euclidean distance of each row to each centroid: (n_samples, n_clusters)."""
        check_is_fitted(self)
        X = features(self, X, reset=False)
        distances = fl.sqrt(fl.maximum(self._shifted_sq_distances(X) + (fl.matrix(X) ** 2)
                                       .sum(axis=1), 0))
        return distances if isinstance(X, fl.Matrix) else distances.compute()

    def score(self, X: Any, y: Any = None) -> float:
        """Minus the sum of squared distances of the rows of X to their nearest centroid."""
        check_is_fitted(self)
        return -self._inertia(features(self, X, reset=False))

    def _shifted_sq_distances(self, X: Any) -> fl.Matrix:
        """``||x_i - c_j||^2 - ||x_i||^2``, lazy and where X lives."""
        C = self.cluster_centers_
        return fl.matrix(X) @ (-2.0 * C.T) + np.sum(C**2, axis=1)[None, :]

    def _inertia(self, X: Any) -> float:
        D = self._shifted_sq_distances(X)
        sum_sq, sum_min = fl.compute((fl.matrix(X) ** 2).sum(), D.min(axis=1).sum())
        return max(float(sum_sq) + float(sum_min), 0.0)
