"""Uplink compression: exact payload sizes, top-k with error feedback, unbiased 8-bit rounding."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fedla.runtime.errors import InvalidArgumentError, MalformedRequestError
from fedla.runtime.paramserv.compression import (
    COMPRESSIONS,
    Compressed,
    Compressor,
    compress_update,
    decompress,
)


def update(seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(50, 20)).astype(dtype), rng.normal(size=7).astype(dtype)]


def test_names():
    assert COMPRESSIONS == ("none", "topk", "qsgd8")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_none_round_trips_exactly(dtype):
    up = update(dtype=dtype)
    sent = Compressor("none").compress(up)
    assert sent.nbytes() == sum(a.nbytes for a in up)
    for a, b in zip(decompress(sent, up), up):
        assert a.dtype == dtype
        np.testing.assert_array_equal(a, b)


def test_topk_hand_case():
    x = np.array([[0.5, -3.0, 1.0], [2.5, 0.1, -0.2]])
    sent, residual = compress_update([x], "topk", ratio=0.3)  # k = ceil(0.3 * 6) = 2
    idx, values = sent.arrays
    assert idx.dtype == np.int32 and idx.tolist() == [1, 3] and values.tolist() == [-3.0, 2.5]
    np.testing.assert_array_equal(decompress(sent, [x])[0], [[0, -3.0, 0], [2.5, 0, 0]])
    np.testing.assert_array_equal(residual[0], [[0.5, 0, 1.0], [0, 0.1, -0.2]])


@pytest.mark.parametrize("ratio", [1e-4, 0.01, 0.2, 1.0])
def test_topk_payload_size(ratio):
    up = update()
    sent = Compressor("topk", ratio=ratio).compress(up)
    ks = [max(1, math.ceil(ratio * a.size)) for a in up]
    assert sent.nbytes() == sum(k * (4 + 8) for k in ks)
    for a, k, d in zip(up, ks, decompress(sent, up)):
        assert np.count_nonzero(d) == k
        # the kept entries are the k largest in magnitude
        assert np.abs(d[d != 0]).min() >= np.sort(np.abs(a).ravel())[-k]


def test_topk_error_feedback_loses_nothing():
    """sum of what was sent over rounds + the final residual == sum of the updates."""
    site = Compressor("topk", ratio=0.05)
    rounds = [update(seed) for seed in range(10)]
    sent_total = [np.zeros_like(a) for a in rounds[0]]
    for up in rounds:
        sent_total = [s + d for s, d in zip(sent_total, decompress(site.compress(up), up))]
    for s, r, a in zip(sent_total, site.residual(), range(2)):
        np.testing.assert_allclose(s + r, sum(up[a] for up in rounds), rtol=1e-12, atol=1e-12)


def test_topk_residual_sends_small_coordinates_eventually():
    x = [np.array([3.5, 1.0, 1.0, 1.0])]
    site = Compressor("topk", ratio=0.25)  # k = 1
    sent = [decompress(site.compress(x), x)[0] for _ in range(4)]
    # rounds 1-3 send 3.5 while the residual of the 1s grows to 3; in round 4 they are 4 > 3.5
    assert [s.tolist() for s in sent[:3]] == [[3.5, 0, 0, 0]] * 3
    assert sent[3][0] == 0 and sorted(sent[3][1:].tolist()) == [0, 0, 4.0]


def test_stateless_form_matches_the_compressor_and_residual_round_trips():
    site = Compressor("topk", ratio=0.1)
    residual = None
    for seed in range(3):
        up = update(seed)
        a = site.compress(up)
        b, residual = compress_update(up, "topk", residual, ratio=0.1)
        for x, y in zip(a.arrays, b.arrays):
            np.testing.assert_array_equal(x, y)
    fresh = Compressor("topk", ratio=0.1)
    fresh.load_residual(site.residual())
    np.testing.assert_array_equal(fresh.compress(update(9)).arrays[1],
                                  site.compress(update(9)).arrays[1])


def test_qsgd8_payload_and_grid():
    up = update(dtype=np.float32)
    sent = Compressor("qsgd8", seed=1).compress(up)
    assert sent.nbytes() == sum(a.size + 16 for a in up)
    assert [a.dtype for a in sent.arrays] == [np.uint8, np.float64] * 2
    for a, d in zip(up, decompress(sent, up)):
        assert d.dtype == np.float32
        lo, hi = float(a.min()), float(a.max())
        step = (hi - lo) / 255
        # each entry decodes to one of the two levels around it
        assert np.all(np.abs(d.astype(np.float64) - a) <= step * (1 + 1e-6))


def test_qsgd8_constant_array_is_exact():
    x = [np.full((3, 3), -2.5)]
    np.testing.assert_array_equal(decompress(Compressor("qsgd8").compress(x), x)[0], x[0])


def test_qsgd8_is_unbiased():
    """Mean of R decodes vs x, in units of its exact standard error scale*sqrt(p(1-p)/R)."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=2000)
    R = 400
    site = Compressor("qsgd8", seed=7)
    mean = np.mean([decompress(site.compress([x]), [x])[0] for _ in range(R)], axis=0)
    scale = (x.max() - x.min()) / 255
    p = (x - x.min()) / scale % 1.0
    inner = (p > 1e-9) & (p < 1 - 1e-9)
    z = (mean[inner] - x[inner]) / (scale * np.sqrt(p[inner] * (1 - p[inner]) / R))
    # per coordinate |z| < 5.5 fails with probability < 4e-8 each under a normal approximation;
    # the mean of m independent z's has std 1/sqrt(m)
    assert np.abs(z).max() < 5.5
    assert abs(z.mean()) < 4 / np.sqrt(inner.sum())
    # the z's have unit variance: the rounding noise is what the formula says, not smaller
    assert 0.85 < z.std() < 1.15
    np.testing.assert_allclose(mean[~inner], x[~inner], atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(x=hnp.arrays(np.float64, hnp.array_shapes(max_dims=3, max_side=8),
                    elements=st.floats(-1e6, 1e6)),
       method=st.sampled_from(COMPRESSIONS), ratio=st.floats(0.01, 1.0))
def test_round_trip_property(x, method, ratio):
    sent, residual = compress_update([x], method, ratio=ratio, seed=3)
    d = decompress(sent, [x])[0]
    assert d.shape == x.shape and d.dtype == x.dtype
    if method == "topk":
        np.testing.assert_array_equal(d + residual[0], x)
    elif method == "qsgd8":
        assert np.all(np.abs(d - x) <= (x.max() - x.min()) / 255 * (1 + 1e-9) + 1e-9)
    else:
        np.testing.assert_array_equal(d, x)


@pytest.mark.parametrize("kw,match", [
    ({"method": "gzip"}, r"'method'.*\('none', 'topk', 'qsgd8'\).*Got 'gzip'"),
    ({"method": "topk", "ratio": 0.0}, r"'ratio'.*\(0, 1\].*Got 0.0"),
    ({"method": "topk", "ratio": 1.5}, r"'ratio'.*Got 1.5"),
])
def test_invalid_arguments(kw, match):
    with pytest.raises(InvalidArgumentError, match=match):
        Compressor(**kw)


def test_qsgd8_refuses_non_finite():
    with pytest.raises(InvalidArgumentError, match="inf or nan"):
        Compressor("qsgd8").compress([np.array([1.0, np.inf])])


@pytest.mark.parametrize("payload", [
    Compressed("topk", [np.array([0, 9], np.int32), np.array([1.0, 2.0])]),  # index out of range
    Compressed("topk", [np.array([0], np.int32)]),  # values missing
    Compressed("qsgd8", [np.zeros(3, np.uint8), np.zeros(2)]),  # 3 codes for 4 entries
    Compressed("none", [np.zeros(5)]),
])
def test_malformed_payloads(payload):
    with pytest.raises(MalformedRequestError):
        decompress(payload, [np.zeros(4)])
