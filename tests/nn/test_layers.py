"""Finite-difference gradient checks of every layer (float64, relative error < 1e-6).

Each test takes ``L = sum(forward(...) * R)`` for a fixed random ``R`` and compares every gradient
that ``backward(R, ...)`` returns with central differences of ``L``.
"""

from __future__ import annotations

import numpy as np
import pytest

from fedla.algorithms.nn.layers import (
    affine,
    avg_pool2d,
    batch_norm1d,
    batch_norm2d,
    conv2d,
    cross_entropy_loss,
    dropout,
    l2_loss,
    l2_reg,
    max_pool2d,
    relu,
    sigmoid,
    softmax,
    tanh,
)
from fedla.runtime.errors import InvalidArgumentError
from tests.nn.gradient_check import assert_gradient

SEED = 20250101


def rng(salt: int = 0) -> np.random.Generator:
    return np.random.default_rng([SEED, salt])


def away_from_zero(shape, salt=0):
    """Values in +-[0.1, 1]: no kink of relu/max is within a finite-difference step."""
    g = rng(salt)
    return g.uniform(0.1, 1.0, shape) * g.choice([-1.0, 1.0], shape)


def distinct(shape, salt=0):
    """Values at least 1e-3 apart, so the maximum of a window never changes under a step."""
    n = int(np.prod(shape))
    return (rng(salt).permutation(n) * 1e-3 + 0.1).reshape(shape)


def test_affine():
    X, W, b = rng(1).normal(size=(5, 4)), rng(2).normal(size=(4, 3)), rng(3).normal(size=(1, 3))
    R = rng(4).normal(size=(5, 3))
    out = affine.forward(X, W, b)
    assert out.shape == (5, 3)
    dX, dW, db = affine.backward(R, X, W, b)
    loss = lambda: float((affine.forward(X, W, b) * R).sum())  # noqa: E731
    for name, grad, x in (("dX", dX, X), ("dW", dW, W), ("db", db, b)):
        assert_gradient(grad, loss, x, name)


def test_affine_init_shapes_and_scale():
    W, b = affine.init(400, 300, seed=0)
    assert W.shape == (400, 300) and b.shape == (1, 300) and not b.any()
    assert W.std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)  # He


@pytest.mark.parametrize("layer", [relu, sigmoid, tanh], ids=["relu", "sigmoid", "tanh"])
def test_activations(layer):
    X, R = away_from_zero((6, 5), 1), rng(2).normal(size=(6, 5))
    dX = layer.backward(R, X)
    assert_gradient(dX, lambda: float((layer.forward(X) * R).sum()), X, "dX")


def test_sigmoid_does_not_overflow():
    out = sigmoid.forward(np.array([[-1000.0, 0.0, 1000.0]]))
    np.testing.assert_allclose(out, [[0.0, 0.5, 1.0]])


def test_softmax():
    scores, R = rng(1).normal(size=(4, 6)), rng(2).normal(size=(4, 6))
    probs = softmax.forward(scores)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert np.isfinite(softmax.forward(scores + 1e4)).all()
    dscores = softmax.backward(R, scores)
    assert_gradient(dscores, lambda: float((softmax.forward(scores) * R).sum()), scores,
                    "dscores")


def test_cross_entropy_loss():
    pred = softmax.forward(rng(1).normal(size=(5, 4)))
    y = np.eye(4)[rng(2).integers(0, 4, 5)]
    assert cross_entropy_loss.forward(pred, y) == pytest.approx(
        -np.log(pred[y == 1] + cross_entropy_loss.EPS).mean())
    dpred = cross_entropy_loss.backward(pred, y)
    assert_gradient(dpred, lambda: cross_entropy_loss.forward(pred, y), pred, "dpred")


def test_l2_loss():
    pred, y = rng(1).normal(size=(5, 3)), rng(2).normal(size=(5, 3))
    assert l2_loss.forward(pred, y) == pytest.approx(0.5 * ((pred - y) ** 2).sum() / 5)
    assert_gradient(l2_loss.backward(pred, y), lambda: l2_loss.forward(pred, y), pred, "dpred")


def test_l2_reg():
    X = rng(1).normal(size=(4, 3))
    assert_gradient(l2_reg.backward(X, 0.3), lambda: l2_reg.forward(X, 0.3), X, "dX")


def test_dropout():
    X, R = rng(1).normal(size=(50, 40)), rng(2).normal(size=(50, 40))
    out, mask = dropout.forward(X, 0.8, seed=7)
    assert set(np.unique(mask)) <= {0.0, 1.0}
    assert mask.mean() == pytest.approx(0.8, abs=0.03)
    np.testing.assert_array_equal(out, X * mask / 0.8)
    np.testing.assert_array_equal(dropout.forward(X, 0.8, seed=7)[1], mask)  # same seed, same mask
    dX = dropout.backward(R, X, 0.8, mask)
    loss = lambda: float((dropout.forward(X, 0.8, seed=7)[0] * R).sum())  # noqa: E731
    assert_gradient(dX, loss, X, "dX")


CONV_CASES = [  # C, Hin, Win, F, Hf, Wf, stride, pad
    (1, 5, 5, 2, 3, 3, 1, 0),
    (2, 5, 4, 3, 3, 3, 1, 1),
    (3, 6, 6, 2, 3, 2, 2, 1),
    (2, 7, 5, 2, 2, 2, 2, 0),
    (1, 4, 4, 1, 4, 4, 1, 0),
]


@pytest.mark.parametrize("C,Hin,Win,F,Hf,Wf,stride,pad", CONV_CASES,
                         ids=[f"C{c[0]}-{c[1]}x{c[2]}-f{c[4]}x{c[5]}-s{c[6]}-p{c[7]}"
                              for c in CONV_CASES])
def test_conv2d(C, Hin, Win, F, Hf, Wf, stride, pad):
    N = 2
    X = rng(1).normal(size=(N, C * Hin * Win))
    W, b = conv2d.init(F, C, Hf, Wf, seed=2)
    b = rng(3).normal(size=b.shape)
    geometry = dict(C=C, Hin=Hin, Win=Win, Hf=Hf, Wf=Wf, strideh=stride, stridew=stride,
                    padh=pad, padw=pad)
    out, Hout, Wout = conv2d.forward(X, W, b, **geometry)
    assert Hout == (Hin + 2 * pad - Hf) // stride + 1 and Wout == (Win + 2 * pad - Wf) // stride + 1
    assert out.shape == (N, F * Hout * Wout)
    R = rng(4).normal(size=out.shape)
    dX, dW, db = conv2d.backward(R, Hout, Wout, X, W, b, **geometry)
    loss = lambda: float((conv2d.forward(X, W, b, **geometry)[0] * R).sum())  # noqa: E731
    for name, grad, x in (("dX", dX, X), ("dW", dW, W), ("db", db, b)):
        assert_gradient(grad, loss, x, name)


def test_conv2d_matches_direct_convolution():
    C, Hin, Win, F, Hf, Wf = 2, 5, 6, 3, 3, 2
    X = rng(1).normal(size=(2, C * Hin * Win))
    W, b = rng(2).normal(size=(F, C * Hf * Wf)), rng(3).normal(size=(F, 1))
    out, Hout, Wout = conv2d.forward(X, W, b, C, Hin, Win, Hf, Wf, 1, 1, 1, 1)
    images = np.pad(X.reshape(2, C, Hin, Win), ((0, 0), (0, 0), (1, 1), (1, 1)))
    filters = W.reshape(F, C, Hf, Wf)
    expected = np.empty((2, F, Hout, Wout))
    for n in range(2):
        for f in range(F):
            for i in range(Hout):
                for j in range(Wout):
                    expected[n, f, i, j] = (images[n, :, i:i + Hf, j:j + Wf] * filters[f]).sum() \
                        + b[f, 0]
    np.testing.assert_allclose(out, expected.reshape(2, -1), rtol=1e-12, atol=1e-12)


POOL_CASES = [  # C, Hin, Win, Hf, Wf, stride, pad
    (1, 4, 4, 2, 2, 2, 0),
    (2, 5, 5, 2, 2, 2, 0),
    (2, 5, 4, 3, 3, 1, 1),
    (3, 6, 6, 3, 2, 2, 1),
]
POOL_IDS = [f"C{c[0]}-{c[1]}x{c[2]}-w{c[3]}x{c[4]}-s{c[5]}-p{c[6]}" for c in POOL_CASES]


@pytest.mark.parametrize("layer", [max_pool2d, avg_pool2d], ids=["max", "avg"])
@pytest.mark.parametrize("C,Hin,Win,Hf,Wf,stride,pad", POOL_CASES, ids=POOL_IDS)
def test_pool2d(layer, C, Hin, Win, Hf, Wf, stride, pad):
    N = 2
    X = distinct((N, C * Hin * Win), 1)
    geometry = dict(C=C, Hin=Hin, Win=Win, Hf=Hf, Wf=Wf, strideh=stride, stridew=stride,
                    padh=pad, padw=pad)
    out, Hout, Wout = layer.forward(X, **geometry)
    assert out.shape == (N, C * Hout * Wout)
    R = rng(2).normal(size=out.shape)
    dX = layer.backward(R, Hout, Wout, X, **geometry)
    assert_gradient(dX, lambda: float((layer.forward(X, **geometry)[0] * R).sum()), X, "dX")


def test_max_pool2d_values():
    X = np.arange(16.0).reshape(1, 16)
    out, Hout, Wout = max_pool2d.forward(X, 1, 4, 4)
    assert (Hout, Wout) == (2, 2)
    np.testing.assert_array_equal(out, [[5.0, 7.0, 13.0, 15.0]])
    padded, _, _ = max_pool2d.forward(-X - 1, 1, 4, 4, 3, 3, 2, 2, 1, 1)  # -inf padding
    assert padded.max() < 0


@pytest.mark.parametrize("mode", ["train", "test"])
def test_batch_norm1d(mode):
    N, D = 6, 4
    X = rng(1).normal(size=(N, D)) * 3 + 1
    gamma, beta = rng(2).normal(size=(1, D)), rng(3).normal(size=(1, D))
    ema_mean, ema_var = rng(4).normal(size=(1, D)), rng(5).uniform(0.5, 2, size=(1, D))
    out, ema_mean_upd, ema_var_upd, mean, var, norm = batch_norm1d.forward(
        X, gamma, beta, mode, ema_mean, ema_var)
    if mode == "train":
        np.testing.assert_allclose(norm.mean(axis=0), 0, atol=1e-12)
        np.testing.assert_allclose(ema_mean_upd, 0.9 * ema_mean + 0.1 * X.mean(axis=0))
    else:
        np.testing.assert_array_equal(ema_mean_upd, ema_mean)
    R = rng(6).normal(size=(N, D))
    dX, dgamma, dbeta = batch_norm1d.backward(R, var, norm, gamma, mode)
    loss = lambda: float(  # noqa: E731
        (batch_norm1d.forward(X, gamma, beta, mode, ema_mean, ema_var)[0] * R).sum())
    for name, grad, x in (("dX", dX, X), ("dgamma", dgamma, gamma), ("dbeta", dbeta, beta)):
        assert_gradient(grad, loss, x, name)


@pytest.mark.parametrize("mode", ["train", "test"])
def test_batch_norm2d(mode):
    N, C, Hin, Win = 3, 2, 3, 2
    X = rng(1).normal(size=(N, C * Hin * Win)) * 2 - 1
    gamma, beta = rng(2).normal(size=(C, 1)), rng(3).normal(size=(C, 1))
    ema_mean, ema_var = rng(4).normal(size=(C, 1)), rng(5).uniform(0.5, 2, size=(C, 1))
    out, _, _, mean, var, norm = batch_norm2d.forward(X, gamma, beta, C, Hin, Win, mode,
                                                      ema_mean, ema_var)
    if mode == "train":  # per channel over batch and pixels
        np.testing.assert_allclose(mean[:, 0], X.reshape(N, C, -1).mean(axis=(0, 2)))
    R = rng(6).normal(size=out.shape)
    dX, dgamma, dbeta = batch_norm2d.backward(R, var, norm, gamma, C, Hin, Win, mode)
    loss = lambda: float((batch_norm2d.forward(  # noqa: E731
        X, gamma, beta, C, Hin, Win, mode, ema_mean, ema_var)[0] * R).sum())
    for name, grad, x in (("dX", dX, X), ("dgamma", dgamma, gamma), ("dbeta", dbeta, beta)):
        assert_gradient(grad, loss, x, name)


def test_batch_norm_rejects_unknown_mode():
    gamma, beta, mean, var = batch_norm1d.init(3)
    with pytest.raises(InvalidArgumentError, match="'mode' parameter of batch_norm"):
        batch_norm1d.forward(np.ones((2, 3)), gamma, beta, "eval", mean, var)


def test_filter_that_does_not_fit_is_rejected():
    W, b = conv2d.init(1, 1, 5, 5, seed=0)
    with pytest.raises(InvalidArgumentError, match="does not fit"):
        conv2d.forward(np.ones((1, 9)), W, b, 1, 3, 3, 5, 5)
