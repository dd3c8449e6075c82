"""Robust combiners against numpy/scipy statistics and a hand-computed Krum case."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fedla.runtime.errors import InvalidArgumentError, ShapeMismatchError
from fedla.runtime.paramserv.robust_aggregation import ROBUST_AGGREGATIONS, aggregate_updates


def random_updates(n, seed=0):
    rng = np.random.default_rng(seed)
    return [[rng.normal(size=(3, 2)), rng.normal(size=4)] for _ in range(n)]


def test_names():
    assert ROBUST_AGGREGATIONS == ("mean", "median", "trimmed_mean", "krum")


def test_mean_is_the_weighted_average():
    ups, w = random_updates(4), [1.0, 2.0, 3.0, 10.0]
    out = aggregate_updates(ups, w)
    for a in range(2):
        expected = np.average(np.stack([u[a] for u in ups]), axis=0, weights=w)
        np.testing.assert_allclose(out[a], expected, rtol=1e-13)


@pytest.mark.parametrize("n", [1, 2, 5, 6])
def test_median_is_numpy_median(n):
    ups = random_updates(n, seed=n)
    out = aggregate_updates(ups, [1] * n, "median")
    for a in range(2):
        np.testing.assert_array_equal(out[a], np.median(np.stack([u[a] for u in ups]), axis=0))


@pytest.mark.parametrize("n,trim", [(5, 0.1), (5, 0.2), (10, 0.25), (7, 0.45), (3, 0.0)],
                         ids=lambda x: str(x))
def test_trimmed_mean_is_scipy_trim_mean(n, trim):
    ups = random_updates(n, seed=n)
    out = aggregate_updates(ups, [1] * n, "trimmed_mean", trim=trim)
    for a in range(2):
        expected = scipy.stats.trim_mean(np.stack([u[a] for u in ups]), trim, axis=0)
        np.testing.assert_allclose(out[a], expected, rtol=1e-13, atol=1e-15)


@settings(max_examples=40, deadline=None)
@given(data=hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=3, max_side=6),
                       elements=st.floats(-1e6, 1e6)),
       trim=st.floats(0, 0.49))
def test_median_and_trimmed_mean_property(data, trim):
    ups = [[row] for row in data]
    n = len(ups)
    np.testing.assert_array_equal(aggregate_updates(ups, [1] * n, "median")[0],
                                  np.median(data, axis=0))
    np.testing.assert_allclose(aggregate_updates(ups, [1] * n, "trimmed_mean", trim=trim)[0],
                               scipy.stats.trim_mean(data, trim, axis=0), rtol=1e-9, atol=1e-6)


# Points (x, y), each update split over two arrays to check Krum measures them together.
# Squared distances: d01=1 d02=4 d03=18 d12=5 d13=13 d23=10 d04=800 d14=761 d24=724 d34=578.
# With f=1 each score sums the n-f-2=2 nearest: p0=1+4=5, p1=1+5=6, p2=4+5=9, p3=10+13=23,
# p4=578+724=1302.
POINTS = [(0.0, 0.0), (1.0, 0.0), (0.0, 2.0), (3.0, 3.0), (20.0, 20.0)]
KRUM_UPDATES = [[np.array([x]), np.array([[y]])] for x, y in POINTS]


def test_krum_picks_the_best_scored_update():
    out = aggregate_updates(KRUM_UPDATES, [1] * 5, "krum", byzantine=1)
    assert out[0].tolist() == [0.0] and out[1].tolist() == [[0.0]]


def test_multi_krum_averages_the_best_scored():
    out = aggregate_updates(KRUM_UPDATES, [1] * 5, "krum", byzantine=1, multi=3)
    np.testing.assert_allclose([out[0][0], out[1][0, 0]], [1 / 3, 2 / 3], rtol=1e-15)
    out = aggregate_updates(KRUM_UPDATES, [1] * 5, "krum", byzantine=1, multi=4)
    np.testing.assert_allclose([out[0][0], out[1][0, 0]], [1.0, 1.25], rtol=1e-15)


def test_robust_methods_resist_an_outlier_the_mean_does_not():
    ups = [[np.array([v])] for v in (1.0, 1.1, 0.9, 1.05, 1e9)]
    assert aggregate_updates(ups, [1] * 5)[0][0] > 1e8
    for method, kw in [("median", {}), ("trimmed_mean", {"trim": 0.2}), ("krum", {"byzantine": 1})]:
        assert 0.9 <= aggregate_updates(ups, [1] * 5, method, **kw)[0][0] <= 1.1


def test_krum_with_too_few_updates_names_n_and_f():
    with pytest.raises(InvalidArgumentError, match=r"n > 2\*f \+ 2.*n=4 with f=byzantine=1"):
        aggregate_updates(KRUM_UPDATES[:4], [1] * 4, "krum", byzantine=1)


@pytest.mark.parametrize("kw,match", [
    ({"method": "mode"}, r"'method'.*'krum'.*Got 'mode'"),
    ({"method": "trimmed_mean", "trim": 0.5}, r"'trim'.*\[0, 0.5\).*Got 0.5"),
    ({"method": "krum", "byzantine": -1}, r"'byzantine'.*Got -1"),
    ({"method": "krum", "byzantine": 1, "multi": 5}, r"'multi'.*\[1, 4\].*Got 5"),
])
def test_invalid_arguments(kw, match):
    with pytest.raises(InvalidArgumentError, match=match):
        aggregate_updates(KRUM_UPDATES, [1] * 5, **kw)


def test_mismatched_updates_and_weights():
    with pytest.raises(InvalidArgumentError, match="5 updates but 4 weights"):
        aggregate_updates(KRUM_UPDATES, [1] * 4, "median")
    with pytest.raises(ShapeMismatchError, match=r"updates\[1\]\[1\]"):
        aggregate_updates([KRUM_UPDATES[0], [np.zeros(1), np.zeros(2)]], [1, 1], "median")
    with pytest.raises(InvalidArgumentError, match="at least one update"):
        aggregate_updates([], [], "median")
