"""Principal component analysis: SystemDS's ``pca`` and ``pcaTransform``.

The columns of X are optionally centered and scaled (SystemDS's ``scale``: subtract the column
means ``mu``; divide by ``sf_j = sqrt(sum_i x_ij^2 / (N-1))`` of the centered columns, i.e. the
sample standard deviation, with 0 replaced by 1). The covariance of the result,
``Cov = (Xs' Xs) / (N-1) - N/(N-1) mean(Xs)' mean(Xs)``, is decomposed as ``Cov = V diag(ev) V'``,
and the K eigenvectors of the largest eigenvalues are the components::

    Xout = Xs @ V[:, :K]

Here the covariance comes from the Gram matrix of the centered X, summed over the sites
(``Cov(Xs) = Cov(X) / (sf sf')``: scaling is applied to the m x m result, never to X), and the
reduced data is the lazy ``X @ (V / sf) - (c / sf) @ V`` (``c = mu`` or 0), which stays where X
lives: a federated X gives a federated ``Xout``. Component signs follow scikit-learn's
convention (the largest-magnitude entry of each component is positive), so results are
deterministic.

References
----------
Apache SystemDS, ``scripts/builtin/pca.dml``, ``pcaTransform.dml`` and ``scale.dml``.
I. T. Jolliffe, "Principal Component Analysis", 2nd ed., Springer, 2002.
"""

from __future__ import annotations

from numbers import Integral
from typing import Any, NamedTuple

import numpy as np

import fedla as fl
from fedla.algorithms.validation import Interval, as_matrix, returned_like, validate_params

_CONSTRAINTS = {
    "K": [Interval(Integral, 1, None, closed="left")],
    "center": [bool],
    "scale": [bool],
}


class PCAResult(NamedTuple):
    """What :func:`pca` returns (SystemDS's outputs, plus the eigenvalues)."""

    Xout: Any
    """Reduced data, (n_samples, K): an ndarray for array input, else a lazy fl.Matrix."""
    Mout: np.ndarray
    """Components as columns, (n_features, K), by decreasing eigenvalue."""
    evalues: np.ndarray
    """The K largest eigenvalues of the covariance (variance along each component), (K,)."""
    Centering: np.ndarray
    """Column means (1, n_features) subtracted from X; empty (0, 0) when ``center=False``."""
    ScaleFactor: np.ndarray
    """Column scale factors (1, n_features) X was divided by; empty (0, 0) when ``scale=False``."""


def pca(X: Any, K: int = 2, center: bool = True, scale: bool = True) -> PCAResult:
    """Project X onto its K principal components (SystemDS ``pca``).

    Parameters
    ----------
    X : ndarray, scipy sparse or fl.Matrix of shape (n_samples, n_features)
        Data; a federated ``X`` stays at its sites, and so does the reduced data.
    K : int, default 2
        Number of components, at most ``n_features``.
    center : bool, default True
        Subtract the column means first.
    scale : bool, default True
        Divide the (centered) columns by their root mean square (the sample standard deviation
        when centered); constant columns are left unscaled.

    Returns
    -------
    PCAResult
        ``(Xout, Mout, evalues, Centering, ScaleFactor)``; see :class:`PCAResult`.

    Examples
    --------
    >>> import numpy as np
    >>> from fedla.algorithms import pca
    >>> X = np.random.default_rng(0).normal(size=(100, 3)) * [5.0, 1.0, 0.1]
    >>> result = pca(X, K=2, scale=False)
    >>> result.Xout.shape, np.round(np.abs(result.Mout[:, 0]), 2)
    ((100, 2), array([1., 0., 0.]))
    """
    validate_params("pca", _CONSTRAINTS, locals())
    X, was_array = as_matrix(X, "X", "pca")
    N, D = X.shape
    if K > D:
        raise fl.InvalidArgumentError(f"pca: K={K} should be <= n_features={D}.")
    if N < 2:
        raise fl.InvalidArgumentError(f"pca: n_samples={N} should be >= 2.")

    # STEP 1: column means, and the covariance of X from the centered Gram matrix
    mu = np.asarray(X.mean(axis=0).compute(), dtype=np.float64).reshape(1, D)
    Xc = X - mu
    cov = np.asarray((Xc.T @ Xc).compute(), dtype=np.float64) / (N - 1)

    # STEP 2: the scale factors of SystemDS's scale(), and the covariance of the scaled X
    centering = mu if center else np.zeros((1, D))
    sf = np.ones((1, D))
    if scale:
        mean_sq = np.diag(cov)[None, :]  # sum((x - mu)^2) / (N-1)
        if not center:
            mean_sq = mean_sq + N / (N - 1) * mu**2  # sum(x^2) / (N-1)
        sf = np.sqrt(mean_sq)
        sf[~(sf > 0)] = 1.0  # 0 and NaN become 1, as in SystemDS
    cov = cov / (sf.T @ sf)

    # STEP 3: eigenvectors by decreasing eigenvalue; sign fixed by the largest entry
    evalues, evectors = fl.eigh(cov)
    order = np.argsort(evalues)[::-1][:K]
    evalues, evectors = evalues[order], evectors[:, order]
    signs = np.sign(evectors[np.argmax(np.abs(evectors), axis=0), np.arange(K)])
    evectors = evectors * np.where(signs == 0, 1.0, signs)

    # STEP 4: Xout = ((X - c) / sf) @ V, evaluated as X @ (V / sf') - (c / sf) @ V
    Xout = _project(X, evectors, centering, sf)
    return PCAResult(
        returned_like(Xout, was_array), evectors, evalues,
        mu if center else np.empty((0, 0)), sf if scale else np.empty((0, 0)),
    )


def pca_transform(
    X: Any, Mout: Any, Centering: Any = None, ScaleFactor: Any = None
) -> Any:
    """Project new data with a fitted :func:`pca` (SystemDS ``pcaTransform``).

    Parameters
    ----------
    X : ndarray, scipy sparse or fl.Matrix of shape (n_samples, n_features)
    Mout : ndarray of shape (n_features, K)
        Components from :func:`pca`.
    Centering, ScaleFactor : ndarray of shape (1, n_features), optional
        From :func:`pca`; None or empty skips that step.

    Returns
    -------
    Xout : ndarray, or fl.Matrix living where X lives, of shape (n_samples, K)
    """
    X, was_array = as_matrix(X, "X", "pca_transform")
    D = X.shape[1]
    Mout = np.asarray(Mout, dtype=np.float64)
    if Mout.ndim != 2 or Mout.shape[0] != D:
        raise fl.ShapeMismatchError(
            f"The 'Mout' argument of pca_transform must have shape ({D}, K) to match 'X'; "
            f"got shape {Mout.shape} instead."
        )
    vectors = []
    for name, value, default in (("Centering", Centering, 0.0), ("ScaleFactor", ScaleFactor, 1.0)):
        value = np.empty((0, 0)) if value is None else np.asarray(value, dtype=np.float64)
        if value.size == 0:
            value = np.full((1, D), default)
        if value.size != D:
            raise fl.ShapeMismatchError(
                f"The {name!r} argument of pca_transform must have shape (1, {D}); got shape "
                f"{value.shape} instead."
            )
        vectors.append(value.reshape(1, D))
    return returned_like(_project(X, Mout, *vectors), was_array)


def _project(X: fl.Matrix, V: np.ndarray, c: np.ndarray, sf: np.ndarray) -> fl.Matrix:
    """``((X - c) / sf) @ V`` without touching X: ``X @ (V / sf') - (c / sf) @ V`` (lazy)."""
    W = V / sf.T
    return X @ W - c @ W
