"""kmeans against hand-computed clusterings and Lloyd's fixed-point conditions.

``RECTANGLE`` has two stable clusterings for k=2: left/right (WCSS 3.0, the optimum) and
top/bottom (WCSS 4.32, a local optimum). k-means++ starts a run in the local optimum with
probability about 1/5 (when its second centroid is the vertical neighbour of the first), so over
many seeds some runs end there, and kmeans must return the best run, not, say, the last.
"""

from __future__ import annotations

import inspect
import re
import warnings

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import load_iris

import fedla as fl
from fedla.algorithms import ConvergenceWarning, kmeans, kmeans_predict
from tests.algorithms import references
from tests.algorithms.conftest import as_array

CORNERS = np.array([[0.0, 0.0], [0.0, 1.0], [1.2, 0.0], [1.2, 1.0]])
RECTANGLE = np.repeat(CORNERS, 3, axis=0)
X_IRIS, _ = load_iris(return_X_y=True)


def test_rectangle_has_the_two_stable_clusterings_the_test_relies_on() -> None:
    for C in ([[0.0, 0.5], [1.2, 0.5]], [[0.6, 0.0], [0.6, 1.0]]):
        C = np.array(C)
        Y = np.argmin(((RECTANGLE[:, None] - C[None]) ** 2).sum(axis=2), axis=1) + 1
        references.assert_lloyd_fixed_point(RECTANGLE, C, Y)
    assert references.wcss(RECTANGLE, np.array([[0.0, 0.5], [1.2, 0.5]]),
                           np.repeat([1, 1, 2, 2], 3)) == pytest.approx(3.0)


@pytest.mark.parametrize("seed", range(20))
def test_kmeans_returns_the_best_of_its_runs(seed: int) -> None:
    C, Y = kmeans(RECTANGLE, k=2, runs=10, seed=seed)
    order = np.argsort(C[:, 0])
    np.testing.assert_allclose(C[order], [[0.0, 0.5], [1.2, 0.5]], atol=1e-12)
    assert references.wcss(RECTANGLE, C, Y) == pytest.approx(3.0, rel=1e-12)


def test_some_single_runs_end_in_the_local_optimum() -> None:
    # otherwise the test above could not tell the best run from any other
    results = [references.wcss(RECTANGLE, *kmeans(RECTANGLE, k=2, runs=1, seed=s))
               for s in range(20)]
    assert min(results) == pytest.approx(3.0) and max(results) == pytest.approx(4.32)


@pytest.mark.parametrize("k", [2, 3, 4])
def test_kmeans_result_is_a_lloyd_fixed_point_as_good_as_sklearn(convert, k: int) -> None:
    C, Y = kmeans(convert(X_IRIS), k=k, seed=3)
    references.assert_lloyd_fixed_point(X_IRIS, C, as_array(Y))
    inertia = KMeans(n_clusters=k, n_init=10, random_state=0).fit(X_IRIS).inertia_
    assert references.wcss(X_IRIS, C, as_array(Y)) <= inertia * (1 + 1e-9)


def test_kmeans_predict_breaks_ties_toward_the_lower_index(convert) -> None:
    C = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 3.0]])
    X = np.array([[1.0, 0.0], [0.1, 2.9], [1.9, 0.1], [0.0, 1.5], [-5.0, -5.0]])
    np.testing.assert_array_equal(as_array(kmeans_predict(convert(X), C)).ravel(),
                                  [1, 3, 2, 1, 1])


def test_defaults_are_systemds():
    # scripts/builtin/kmeans.dml: k=10, runs=10, max_iter=1000, eps=1e-6,
    # avg_sample_size_per_centroid=50, is_verbose=FALSE
    defaults = {name: p.default for name, p in inspect.signature(kmeans).parameters.items()}
    assert defaults == {"X": inspect.Parameter.empty, "k": 10, "runs": 10, "max_iter": 1000,
                        "eps": 1e-6, "avg_sample_size_per_centroid": 50, "seed": None,
                        "verbose": False}


def test_smallest_allowed_arguments():
    # k=1 and one row per centroid: every bound is closed at its smallest value
    C, Y = kmeans(RECTANGLE, k=1, runs=1, eps=0.0, avg_sample_size_per_centroid=1, seed=0)
    np.testing.assert_allclose(C, [[0.6, 0.5]], rtol=1e-15)
    np.testing.assert_array_equal(Y, np.ones((12, 1)))
    C, Y = kmeans(CORNERS, k=4, runs=2, seed=1)  # n_samples == k: each row its own cluster
    np.testing.assert_array_equal(C[np.ravel(Y) - 1], CORNERS)


def _stops_without_converging(call) -> bool:
    """Whether ``call`` raises, or warns with ConvergenceWarning, for running out of max_iter."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            call()
        except fl.InvalidArgumentError as error:
            return "converged" in str(error)
    return any(issubclass(w.category, ConvergenceWarning) for w in caught)


def test_max_iter_counts_every_lloyd_iteration():
    # k=1: iteration 1 measures WCSS at the seed row and moves to the mean, iteration 2 at the
    # mean (a gain), iteration 3 sees no gain: the run converges at exactly 3 iterations
    X = np.array([[0.0], [1.0], [5.0]])
    assert _stops_without_converging(lambda: kmeans(X, k=1, runs=1, max_iter=2, seed=0))
    assert not _stops_without_converging(lambda: kmeans(X, k=1, runs=1, max_iter=3, seed=0))
    C, _ = kmeans(X, k=1, runs=1, max_iter=3, seed=0)
    np.testing.assert_allclose(C, [[2.0]], rtol=1e-15)


def test_verbose_reports_the_wcss_of_every_run(capsys: pytest.CaptureFixture[str]) -> None:
    C, Y = kmeans(RECTANGLE, k=2, runs=3, seed=4, verbose=True)
    line = next(s for s in capsys.readouterr().out.splitlines() if "WCSS" in s)
    assert "3 successful, 0 incomplete, 0 failed runs" in line
    reported = [float(v) for v in re.findall(r"[-+0-9.e]+", line.split("WCSS")[1])]
    assert len(reported) == 3 and all(w in (pytest.approx(3.0), pytest.approx(4.32))
                                       for w in reported)
    assert min(reported) == pytest.approx(references.wcss(RECTANGLE, C, Y))
