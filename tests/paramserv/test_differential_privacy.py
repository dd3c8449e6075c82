"""Clipping, Gaussian noise and the RDP accountant against closed forms and published numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fedla.runtime.errors import InvalidArgumentError
from fedla.runtime.paramserv.differential_privacy import (
    DEFAULT_ORDERS,
    RdpAccountant,
    add_gaussian_noise,
    clip_update,
)


def global_norm(arrays):
    return float(np.linalg.norm(np.concatenate([np.ravel(a) for a in arrays])))


def test_clip_hand_case():
    clipped, norm = clip_update([np.array([3.0]), np.array([[4.0]])], 2.5)
    assert norm == 5.0
    np.testing.assert_allclose(clipped[0], [1.5], rtol=1e-15)
    np.testing.assert_allclose(clipped[1], [[2.0]], rtol=1e-15)


def test_clip_below_the_bound_is_unchanged():
    up = [np.array([0.1, -0.2]), np.array([0.3])]
    clipped, norm = clip_update(up, 1.0)
    assert norm == pytest.approx(math.sqrt(0.14), rel=1e-15)
    for a, b in zip(clipped, up):
        np.testing.assert_array_equal(a, b)


@settings(max_examples=50, deadline=None)
@given(a=hnp.arrays(np.float64, hnp.array_shapes(max_dims=2, max_side=6),
                    elements=st.floats(-1e3, 1e3)),
       b=hnp.arrays(np.float32, st.integers(1, 5), elements=st.floats(-1e3, 1e3, width=32)),
       max_norm=st.floats(1e-3, 1e3))
def test_clip_property(a, b, max_norm):
    clipped, norm = clip_update([a, b], max_norm)
    assert norm == pytest.approx(global_norm([a, b.astype(np.float64)]), rel=1e-12, abs=1e-300)
    assert [c.dtype for c in clipped] == [np.float64, np.float32]
    assert global_norm(clipped) <= max_norm * (1 + 1e-6)
    if norm > max_norm:
        # same direction, length max_norm
        assert global_norm(clipped) == pytest.approx(max_norm, rel=1e-6)
        np.testing.assert_allclose(clipped[0] * norm / max_norm, a, rtol=1e-9, atol=1e-9)


def test_noise_has_the_requested_distribution():
    x = [np.full(100_000, 3.0), np.zeros((10, 10), dtype=np.float32)]
    noisy = add_gaussian_noise(x, 0.5, np.random.default_rng(0))
    assert noisy[1].dtype == np.float32
    e = noisy[0] - 3.0
    n = e.size
    # sample mean: standard error 0.5/sqrt(n); sample std: relative standard error 1/sqrt(2n)
    assert abs(e.mean()) < 5 * 0.5 / math.sqrt(n)
    assert abs(e.std() / 0.5 - 1) < 5 / math.sqrt(2 * n)


def test_noise_is_reproducible_from_the_generator_and_zero_std_is_identity():
    x = [np.arange(5.0)]
    a = add_gaussian_noise(x, 1.0, np.random.default_rng(3))
    b = add_gaussian_noise(x, 1.0, np.random.default_rng(3))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(add_gaussian_noise(x, 0.0, np.random.default_rng(3))[0], x[0])


def test_full_participation_is_the_plain_gaussian_rdp():
    """q = 1: RDP of the Gaussian mechanism is alpha / (2 sigma^2) per round (Mironov 2017)."""
    sigma, rounds = 1.7, 12
    acc = RdpAccountant(sigma, 1.0)
    acc.step(rounds)
    expected = rounds * np.array(DEFAULT_ORDERS) / (2 * sigma**2)
    np.testing.assert_allclose(acc.rdp(), expected, rtol=1e-12)


def log_a_integer(q, sigma, alpha):
    """Mironov, Talwar, Zhang 2019, Sec. 3.3: A_alpha for integer alpha, by log-sum-exp."""
    terms = [math.log(math.comb(alpha, k)) + (alpha - k) * math.log1p(-q) + k * math.log(q)
             + (k * k - k) / (2 * sigma**2) for k in range(alpha + 1)]
    top = max(terms)
    return top + math.log(sum(math.exp(t - top) for t in terms))


@pytest.mark.parametrize("q,sigma", [(0.01, 1.1), (0.1, 2.0), (0.5, 0.8)])
def test_integer_orders_match_the_closed_form(q, sigma):
    orders = [2, 3, 5, 8, 16, 32]
    acc = RdpAccountant(sigma, q, orders=orders)
    acc.step(7)
    expected = [7 * log_a_integer(q, sigma, a) / (a - 1) for a in orders]
    np.testing.assert_allclose(acc.rdp(), expected, rtol=1e-9)


def balle_epsilon(rdp, orders, delta):
    return min(r + math.log1p(-1 / a) - (math.log(delta) + math.log(a)) / (a - 1)
               for r, a in zip(rdp, orders))


def classic_epsilon(rdp, orders, delta):
    return min(r + math.log(1 / delta) / (a - 1) for r, a in zip(rdp, orders))


# TF-privacy's MNIST tutorial table (tutorials/README.md): batch 256 of 60000, delta 1e-5,
# steps = ceil(epochs * 60000 / 256); eps by the classic conversion, printed to two decimals.
@pytest.mark.parametrize("sigma,epochs,published", [(1.1, 60, 3.01), (1.3, 15, 1.19),
                                                    (0.7, 45, 7.10)])
def test_published_mnist_epsilons(sigma, epochs, published):
    acc = RdpAccountant(sigma, 256 / 60000)
    acc.step(math.ceil(epochs * 60000 / 256))
    classic = classic_epsilon(acc.rdp(), DEFAULT_ORDERS, 1e-5)
    assert round(classic, 2) == published
    eps, order = acc.epsilon(1e-5)
    assert eps == pytest.approx(balle_epsilon(acc.rdp(), DEFAULT_ORDERS, 1e-5), rel=1e-12)
    assert order in DEFAULT_ORDERS
    assert eps < classic  # the Balle et al. conversion is tighter


def test_steps_compose_additively():
    once = RdpAccountant(1.0, 0.05)
    once.step(30)
    many = RdpAccountant(1.0, 0.05)
    for _ in range(30):
        many.step()
    assert many.steps == once.steps == 30
    np.testing.assert_allclose(many.rdp(), once.rdp(), rtol=1e-12)
    assert RdpAccountant(1.0, 0.05).epsilon(1e-5)[0] == 0.0


@pytest.mark.parametrize("call,match", [
    (lambda: clip_update([np.ones(2)], 0.0), r"'max_norm'.*\(0, inf\).*Got 0.0"),
    (lambda: add_gaussian_noise([np.ones(2)], -1.0, np.random.default_rng()), r"'std'"),
    (lambda: add_gaussian_noise([np.ones(2)], 1.0, 3), r"'rng'.*Generator.*Got int"),
    (lambda: RdpAccountant(0.0, 0.1), r"'noise_multiplier'.*\(0, inf\)"),
    (lambda: RdpAccountant(1.0, 1.5), r"'sample_rate'.*\(0, 1\].*Got 1.5"),
    (lambda: RdpAccountant(1.0, 0.1, orders=[1.0, 2.0]), r"'orders'.*> 1"),
    (lambda: RdpAccountant(1.0, 0.1).epsilon(0.0), r"'delta'.*\(0, 1\)"),
    (lambda: RdpAccountant(1.0, 0.1).step(-1), r"'n'.*Got -1"),
])
def test_invalid_arguments(call, match):
    with pytest.raises(InvalidArgumentError, match=match):
        call()
