"""k-means clustering: SystemDS's ``kmeans`` (k-means++ on samples, Lloyd, best of ``runs``).

Minimizes the within-cluster sum of squares ``WCSS = sum_i min_j ||x_i - c_j||^2``.

* Initialization: each run draws a sample of about ``k * avg_sample_size_per_centroid`` rows and
  picks k centroids from it by k-means++ (the first uniformly, each next one with probability
  proportional to the squared distance to the nearest centroid so far).
* Lloyd iterations, all runs at once: ``D = -2 X C' + rowSums(C^2)'`` (the squared distances
  without the ``||x_i||^2`` term) is computed where X lives, as is ``P``, the indicator of each
  row's nearest centroid (ties shared equally). Only ``P'X`` (centroid sums) and ``colSums(P)``
  (counts) come back; the new centroids are their ratio, and
  ``WCSS = sum(X^2) + sum(min D) = sum(X^2) + sum_j (n_j ||c_j||^2 - 2 c_j' S_j)``.
* A run ends when WCSS improves by at most ``eps * WCSS`` (success), at ``max_iter``
  (incomplete), or when a centroid loses all its rows (failed). The successful run with the
  lowest WCSS wins, as in SystemDS (the first one, among runs within 1e-9 of it: summation order
  must not pick between runs that found the same clusters). When no run succeeded, the
  incomplete run with the lowest WCSS is returned with a ``ConvergenceWarning`` (SystemDS returns
  zeros there).

The initialization sample (at most ``runs * k * avg_sample_size_per_centroid`` rows, fewer
where the runs' samples overlap) is the only raw data that leaves the sites; the n x k distance
matrix and the assignments stay where X lives.

References
----------
Apache SystemDS, ``scripts/builtin/kmeans.dml`` and ``kmeansPredict.dml``.
D. Arthur and S. Vassilvitskii, "k-means++: The Advantages of Careful Seeding", SODA 2007.
S. P. Lloyd, "Least squares quantization in PCM", IEEE Trans. Inf. Theory 28(2), 1982.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

import numpy as np
import scipy.sparse as sp

import fedla as fl
from fedla.algorithms.convergence import Progress, report, warn_not_converged
from fedla.algorithms.validation import Interval, as_matrix, returned_like, validate_params

_CONSTRAINTS = {
    "k": [Interval(Integral, 1, None, closed="left")],
    "runs": [Interval(Integral, 1, None, closed="left")],
    "max_iter": [Interval(Integral, 1, None, closed="left")],
    "eps": [Interval(Real, 0, None, closed="left")],
    "avg_sample_size_per_centroid": [Interval(Integral, 1, None, closed="left")],
    "seed": [Interval(Integral, 0, None, closed="left"), None],
    "verbose": [bool],
}

SUCCESS, INCOMPLETE, FAILED = 1, 2, 3  # SystemDS's termination codes


def kmeans(
    X: Any, k: int = 10, runs: int = 10, max_iter: int = 1000, eps: float = 1e-6,
    avg_sample_size_per_centroid: int = 50, seed: int | None = None, verbose: bool = False,
) -> tuple[np.ndarray, Any]:
    """Cluster the rows of X into k clusters (SystemDS ``kmeans``).

    Parameters
    ----------
    X : ndarray, scipy sparse or fl.Matrix of shape (n_samples, n_features)
        Data; a federated ``X`` stays at its sites (apart from the initialization sample).
    k : int, default 10
        Number of centroids.
    runs : int, default 10
        Independent runs with different initial centroids; the best WCSS wins.
    max_iter : int, default 1000
        Maximum Lloyd iterations per run.
    eps : float, default 1e-6
        A run has converged when WCSS drops by at most ``eps`` times its value.
    avg_sample_size_per_centroid : int, default 50
        Rows sampled per centroid for the k-means++ initialization.
    seed : int, optional
        Seed of the sampling and the k-means++ draws; None draws fresh entropy.
    verbose : bool, default False
        Show the iterations and the WCSS of the runs.

    Returns
    -------
    C : ndarray of shape (k, n_features)
        Centroids of the best run.
    Y : ndarray, or fl.Matrix living where X lives, of shape (n_samples, 1)
        1-based index of each row's nearest centroid (int64; SystemDS's ``Y``).

    Raises
    ------
    InvalidArgumentError
        If ``n_samples < k``, or every run lost a centroid.

    Warns
    -----
    ConvergenceWarning
        If no run converged within ``max_iter``; the best unfinished run is returned.

    Examples
    --------
    >>> import numpy as np
    >>> from fedla.algorithms import kmeans
    >>> X = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]])
    >>> C, Y = kmeans(X, k=2, runs=2, seed=0)
    >>> sorted(Y.ravel().tolist())
    [1, 1, 2, 2]
    """
    validate_params("kmeans", _CONSTRAINTS, locals())
    X, was_array = as_matrix(X, "X", "kmeans")
    n = X.shape[0]
    if n < k:
        raise fl.InvalidArgumentError(f"kmeans: n_samples={n} should be >= k={k}.")
    rng = np.random.default_rng(seed)

    # STEP 1: k-means++ on a sample of X per run
    samples = [_sample(rng, n, k * avg_sample_size_per_centroid) for _ in range(runs)]
    rows = np.unique(np.concatenate(samples))
    X_rows, sumXsq = fl.compute(_selector(rows, n) @ X, (X**2).sum())
    X_rows = X_rows.toarray() if sp.issparse(X_rows) else np.asarray(X_rows)
    C = [_kmeans_plus_plus(rng, X_rows[np.searchsorted(rows, s)], k) for s in samples]

    # STEP 2: Lloyd iterations of all active runs in one plan
    wcss = np.full(runs, np.inf)
    term_code = np.zeros(runs, dtype=int)
    iterations = np.zeros(runs, dtype=int)
    with Progress("kmeans", max_iter, verbose) as progress:
        while (active := np.flatnonzero(term_code == 0)).size:
            C_all = np.vstack([C[r] for r in active])
            S_all, counts_all = _centroid_sums(X, C_all, k)
            for a, r in enumerate(active):
                S, counts, C_r = S_all[a * k:(a + 1) * k], counts_all[a * k:(a + 1) * k], C[r]
                wcss_old = wcss[r]
                wcss[r] = float(sumXsq) + float(np.sum(counts * np.sum(C_r**2, axis=1))
                                                - 2 * np.sum(C_r * S))
                iterations[r] += 1
                if wcss_old - wcss[r] <= eps * wcss[r]:  # <=: a WCSS of 0 converges too
                    term_code[r] = SUCCESS
                elif iterations[r] >= max_iter:
                    term_code[r] = INCOMPLETE
                elif np.any(counts <= 0):
                    term_code[r] = FAILED
                else:
                    C[r] = S / counts[:, None]
            progress.step(active=int(np.sum(term_code == 0)), best_wcss=float(np.min(wcss)))

    # STEP 3: the successful run with the lowest WCSS (else the best run that ran out of
    # iterations, with a warning), and the assignments
    successful = np.flatnonzero(term_code == SUCCESS)
    incomplete = np.flatnonzero(term_code == INCOMPLETE)
    report("kmeans", f"{successful.size} successful, {incomplete.size} incomplete, "
           f"{np.sum(term_code == FAILED)} failed runs; WCSS {wcss}", verbose)
    candidates = successful if successful.size else incomplete
    if not candidates.size:
        raise fl.InvalidArgumentError(
            f"kmeans: every one of the {runs} runs lost a centroid (a cluster without rows). "
            "Try a smaller k, or more runs."
        )
    if not successful.size:
        warn_not_converged(
            "kmeans", max_iter, f"None of the {runs} runs converged, so the best of the "
            "unfinished runs is returned. Try increasing max_iter, or eps."
        )
    # the first run within rounding of the lowest WCSS: runs that found the same clusters in
    # another order differ only in the last bits, which the summation order may flip
    best_wcss = np.min(wcss[candidates])
    best = candidates[np.flatnonzero(wcss[candidates] <= best_wcss * (1 + 1e-9))[0]]
    return C[best], returned_like(_nearest(X, C[best]), was_array)


def kmeans_predict(X: Any, C: Any) -> Any:
    """1-based index of the nearest centroid of each row (SystemDS ``kmeansPredict``).

    Parameters
    ----------
    X : ndarray, scipy sparse or fl.Matrix of shape (n_samples, n_features)
    C : ndarray of shape (k, n_features)
        Centroids, e.g. from :func:`kmeans`.

    Returns
    -------
    Y : ndarray, or fl.Matrix living where X lives, of shape (n_samples, 1)
        Cluster indices ``1..k`` (int64); ties go to the lower index.
    """
    X, was_array = as_matrix(X, "X", "kmeans_predict")
    C = np.asarray(C, dtype=np.float64)
    if C.ndim != 2 or C.shape[1] != X.shape[1]:
        raise fl.ShapeMismatchError(
            f"The 'C' argument of kmeans_predict must have shape (k, {X.shape[1]}) to match "
            f"'X'; got shape {C.shape} instead."
        )
    return returned_like(_nearest(X, C), was_array)


def _distances(X: fl.Matrix, C: np.ndarray) -> fl.Matrix:
    """``||x_i - c_j||^2 - ||x_i||^2`` for every row and centroid (lazy, where X lives)."""
    return X @ (-2.0 * C.T) + np.sum(C**2, axis=1)[None, :]


def _nearest(X: fl.Matrix, C: np.ndarray) -> fl.Matrix:
    return _distances(X, C).argmin(axis=1) + 1


def _centroid_sums(X: fl.Matrix, C_all: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per centroid of every run (k rows each in ``C_all``): the sum and number of its rows."""
    D = _distances(X, C_all)
    P = []
    for start in range(0, C_all.shape[0], k):
        D_r = D[:, start:start + k]
        P_r = D_r <= D_r.min(axis=1)  # nearest centroid(s) of each row
        P.append(P_r / P_r.sum(axis=1))  # rows with ties are shared equally
    P_all = P[0] if len(P) == 1 else fl.hstack(P)
    S, counts = fl.compute(P_all.T @ X, P_all.sum(axis=0))
    S = S.toarray() if sp.issparse(S) else np.asarray(S)
    return S, np.ravel(counts)


def _sample(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """Sorted row ids of one run's sample: ``size`` rows without replacement, or all rows."""
    if size >= n:
        return np.arange(n)
    return np.sort(rng.choice(n, size=size, replace=False))


def _selector(rows: np.ndarray, n: int) -> sp.csr_array:
    """The 0/1 matrix whose product with X picks ``rows`` (SystemDS's ``sample_maps``)."""
    ones = np.ones(rows.size)
    return sp.csr_array((ones, (np.arange(rows.size), rows)), shape=(rows.size, n))


def _kmeans_plus_plus(rng: np.random.Generator, X_sample: np.ndarray, k: int) -> np.ndarray:
    """Pick k centroids from the sample rows: uniform first, then by squared distance."""
    min_distances = np.ones(X_sample.shape[0])
    centroids = np.empty((k, X_sample.shape[1]))
    for i in range(k):
        cdf = np.cumsum(min_distances)
        j = min(int(np.searchsorted(cdf, rng.random() * cdf[-1])), len(cdf) - 1)
        centroids[i] = X_sample[j]
        distances = np.sum((X_sample - centroids[i]) ** 2, axis=1)
        min_distances = distances if i == 0 else np.minimum(min_distances, distances)
    return centroids
