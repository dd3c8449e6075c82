"""kmeans and kmeans_predict against scikit-learn's KMeans, on arrays, local and federated
matrices; federated results agree with local ones to 1e-10."""

from __future__ import annotations

import functools
import re

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.cluster import KMeans
from sklearn.datasets import load_iris

import fedla as fl
from fedla import Partitioning
from fedla.algorithms import kmeans, kmeans_predict
from tests.algorithms import references
from tests.algorithms.conftest import as_array, assert_close, uneven_sizes

X_IRIS, _ = load_iris(return_X_y=True)
SEED = 42


def wcss(X: np.ndarray, C: np.ndarray, Y: np.ndarray) -> float:
    return float(np.sum((X - C[np.ravel(Y) - 1]) ** 2))


@functools.cache
def _local(k: int) -> tuple[np.ndarray, np.ndarray]:
    return kmeans(X_IRIS, k=k, seed=SEED)


@pytest.mark.parametrize("k", [2, 3])
def test_kmeans_wcss_matches_sklearn_inertia(convert, k: int) -> None:
    C, Y = kmeans(convert(X_IRIS), k=k, seed=SEED)
    Y = as_array(Y)
    assert C.shape == (k, 4) and Y.shape == (150, 1) and Y.dtype == np.int64
    assert set(np.unique(Y)) == set(range(1, k + 1))
    reference = KMeans(n_clusters=k, n_init=10, random_state=0).fit(X_IRIS).inertia_
    assert wcss(X_IRIS, C, Y) <= 1.01 * reference
    C_local, Y_local = _local(k)
    assert_close(C, C_local, 1e-10, "federated vs local centroids")
    np.testing.assert_array_equal(Y, Y_local)


def test_kmeans_finds_separated_blobs(fed_ctx: fl.Context) -> None:
    rng = np.random.default_rng(1)
    centers = np.array([[0.0, 0.0, 0.0], [10.0, 0.0, 0.0], [0.0, 10.0, 5.0], [5.0, 5.0, 10.0]])
    labels = rng.integers(0, 4, size=12000)
    X = centers[labels] + rng.normal(size=(12000, 3))
    FX = fed_ctx.scatter(X, sizes=uneven_sizes(12000))
    before = {a: s["bytes_received"] for a, s in fed_ctx.stats().items()}
    C, Y = kmeans(FX, k=4, runs=3, avg_sample_size_per_centroid=20, seed=SEED)
    received = sum(s["bytes_received"] - before[a] for a, s in fed_ctx.stats().items())
    assert received < X.nbytes / 4  # the init sample (<= 240 of 12000 rows), aggregates
    assert Y.partitioning is Partitioning.ROW  # assignments stay at the sites
    order = np.argsort(C[:, 0] * 100 + C[:, 1] * 10 + C[:, 2])
    expected = centers[np.argsort(centers[:, 0] * 100 + centers[:, 1] * 10 + centers[:, 2])]
    np.testing.assert_allclose(C[order], expected, atol=0.1)
    Y = as_array(Y).ravel()
    matching = np.array([np.bincount(labels[Y == j], minlength=4).argmax() for j in range(1, 5)])
    assert sorted(matching) == [0, 1, 2, 3] and np.mean(matching[Y - 1] == labels) > 0.999
    references.assert_lloyd_fixed_point(X, C, Y)


@pytest.mark.parametrize("layout", ["dense", "sparse"])
def test_kmeans_on_sparse_data(convert, layout: str) -> None:
    rng = np.random.default_rng(2)
    A = sp.random_array((300, 8), density=0.3, format="csr", rng=rng) * 5
    A = A if layout == "sparse" else A.toarray()
    C, Y = kmeans(convert(A), k=3, runs=2, seed=SEED)
    references.assert_lloyd_fixed_point(A, C, as_array(Y))


def test_kmeans_predict(convert) -> None:
    C, Y = _local(3)
    predicted = kmeans_predict(convert(X_IRIS), C)
    assert isinstance(predicted, np.ndarray) == isinstance(convert(X_IRIS), np.ndarray)
    np.testing.assert_array_equal(as_array(predicted), Y)
    distances = ((X_IRIS[:, None, :] - C[None, :, :]) ** 2).sum(axis=2)
    np.testing.assert_array_equal(as_array(predicted).ravel(), np.argmin(distances, axis=1) + 1)


def test_kmeans_is_reproducible_with_a_seed() -> None:
    C1, Y1 = kmeans(X_IRIS, k=3, runs=2, seed=7)
    C2, Y2 = kmeans(X_IRIS, k=3, runs=2, seed=7)
    np.testing.assert_array_equal(C1, C2)
    np.testing.assert_array_equal(Y1, Y2)


def test_verbose_shows_progress(capsys: pytest.CaptureFixture[str]) -> None:
    kmeans(X_IRIS, k=3, runs=2, seed=SEED, verbose=True)
    out = capsys.readouterr()
    assert "kmeans" in out.err and "successful" in out.out


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 0}, "The 'k' parameter of kmeans must be an int in the range [1, inf). "
                   "Got 0 instead."),
        ({"runs": 2.0}, "The 'runs' parameter of kmeans must be an int in the range [1, inf)"),
        ({"eps": -1.0}, "The 'eps' parameter of kmeans must be a float in the range [0, inf)"),
        ({"seed": -1}, "The 'seed' parameter of kmeans must be an int in the range [0, inf) "
                       "or None. Got -1 instead."),
        ({"avg_sample_size_per_centroid": 0},
         "The 'avg_sample_size_per_centroid' parameter of kmeans must be an int"),
    ],
    ids=["k", "runs", "eps", "seed", "sample"],
)
def test_kmeans_rejects_bad_parameters(kwargs: dict, message: str) -> None:
    with pytest.raises(fl.InvalidArgumentError, match=re.escape(message)):
        kmeans(X_IRIS, **kwargs)


def test_kmeans_rejects_bad_shapes() -> None:
    with pytest.raises(fl.InvalidArgumentError, match=r"kmeans: n_samples=5 should be >= k=10"):
        kmeans(X_IRIS[:5], k=10)
    with pytest.raises(fl.ShapeMismatchError, match=r"'C' argument of kmeans_predict must have "
                                                    r"shape \(k, 4\)"):
        kmeans_predict(X_IRIS, np.ones((3, 2)))
