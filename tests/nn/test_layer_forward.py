"""Forward values (and the backward values of small cases) of every layer against hand-computed
references.

The gradient checks of ``test_layers.py`` prove that ``backward`` matches ``forward``; they pass
for a layer whose forward is wrong in a differentiable way (``X W - b``, a batch norm with the
wrong variance). Here every expected value is worked out by hand from the layer's definition, on
inputs chosen so that the arithmetic is exact or has a closed form (``tanh(ln 2) = 3/5``,
``sigmoid(ln 3) = 3/4``).
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

LN2, LN3 = np.log(2.0), np.log(3.0)


def test_affine_forward():
    X = np.array([[1.0, 2.0], [3.0, 4.0]])
    W = np.array([[1.0, 0.0, -1.0], [2.0, 1.0, 0.0]])
    b = np.array([[0.5, -1.0, 2.0]])
    np.testing.assert_array_equal(affine.forward(X, W, b), [[5.5, 1.0, 1.0], [11.5, 3.0, -1.0]])


def test_affine_backward_values():
    X, W, b = np.array([[1.0, 2.0]]), np.array([[1.0, 0.0], [3.0, -1.0]]), np.zeros((1, 2))
    dX, dW, db = affine.backward(np.array([[2.0, -1.0]]), X, W, b)
    np.testing.assert_array_equal(dX, [[2.0, 7.0]])  # dout W'
    np.testing.assert_array_equal(dW, [[2.0, -1.0], [4.0, -2.0]])  # X' dout
    np.testing.assert_array_equal(db, [[2.0, -1.0]])


def test_relu_forward_and_backward():
    X = np.array([[-2.0, -0.5, 0.0, 0.5, 3.0]])
    np.testing.assert_array_equal(relu.forward(X), [[0.0, 0.0, 0.0, 0.5, 3.0]])
    np.testing.assert_array_equal(relu.backward(np.full_like(X, 2.0), X),
                                  [[0.0, 0.0, 0.0, 2.0, 2.0]])  # 0 at the kink, as SystemDS


def test_tanh_forward_and_backward():
    X = np.array([[-LN2, 0.0, LN2]])  # tanh(ln 2) = (2 - 1/2) / (2 + 1/2) = 3/5
    np.testing.assert_allclose(tanh.forward(X), [[-0.6, 0.0, 0.6]], rtol=1e-15, atol=1e-16)
    np.testing.assert_allclose(tanh.backward(np.ones_like(X), X), [[0.64, 1.0, 0.64]], rtol=1e-15)


def test_sigmoid_forward_and_backward():
    X = np.array([[-LN3, 0.0, LN3]])  # 1 / (1 + 1/3) = 3/4
    np.testing.assert_allclose(sigmoid.forward(X), [[0.25, 0.5, 0.75]], rtol=1e-15)
    np.testing.assert_allclose(sigmoid.backward(np.full_like(X, 2.0), X),
                               [[0.375, 0.5, 0.375]], rtol=1e-15)  # 2 s (1 - s)


def test_softmax_forward_and_backward():
    scores = np.array([[0.0, LN2, np.log(5.0)], [7.0, 7.0, 7.0]])
    probs = softmax.forward(scores)
    np.testing.assert_allclose(probs, [[1 / 8, 2 / 8, 5 / 8], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-14)
    dscores = softmax.backward(np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]), scores)
    # d p_1 / d s_j = p_1 (delta_1j - p_j)
    np.testing.assert_allclose(dscores, [[7 / 64, -2 / 64, -5 / 64], [0.0, 0.0, 0.0]],
                               rtol=1e-14, atol=1e-17)


def test_softmax_shifts_each_row_by_its_own_maximum():
    # rows 2000 apart: one shift for all rows (a global or a column maximum) overflows one row
    # to inf or underflows another to 0 / 0
    base = np.array([0.0, LN2, np.log(5.0)])
    scores = np.stack([base + 1000.0, base - 1000.0, base, np.full(3, -7.0)])
    expected = [[1 / 8, 2 / 8, 5 / 8]] * 3 + [[1 / 3, 1 / 3, 1 / 3]]
    np.testing.assert_allclose(softmax.forward(scores), expected, rtol=1e-13)


def test_cross_entropy_loss_values():
    pred = np.array([[0.25, 0.75], [0.5, 0.5]])
    y = np.array([[0.0, 1.0], [1.0, 0.0]])
    assert cross_entropy_loss.forward(pred, y) == pytest.approx(
        -(np.log(0.75) + np.log(0.5)) / 2, rel=1e-9)
    np.testing.assert_allclose(cross_entropy_loss.backward(pred, y),
                               [[0.0, -2.0 / 3.0], [-1.0, 0.0]], rtol=1e-9)  # -y / (N pred)


def test_l2_loss_values():
    pred, y = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[0.0, 0.0], [1.0, 1.0]])
    assert l2_loss.forward(pred, y) == 4.5  # 1/2 (1 + 4 + 4 + 9) / 2
    np.testing.assert_array_equal(l2_loss.backward(pred, y), [[0.5, 1.0], [1.0, 1.5]])


def test_l2_reg_values():
    X = np.array([[1.0, -2.0], [3.0, 0.0]])
    assert l2_reg.forward(X, 0.5) == 3.5  # 1/2 * 0.5 * 14
    np.testing.assert_array_equal(l2_reg.backward(X, 0.5), [[0.5, -1.0], [1.5, 0.0]])


def test_dropout_keeps_everything_at_p_1_and_scales_kept_units_by_1_over_p():
    X = np.arange(1.0, 13.0).reshape(3, 4)
    out, mask = dropout.forward(X, 1.0, seed=3)
    np.testing.assert_array_equal(mask, np.ones_like(X))
    np.testing.assert_array_equal(out, X)
    out, mask = dropout.forward(X, 0.5, seed=3)
    assert 0 < mask.sum() < X.size
    np.testing.assert_array_equal(out, np.where(mask == 1.0, 2 * X, 0.0))
    np.testing.assert_array_equal(dropout.backward(np.ones_like(X), X, 0.5, mask), 2 * mask)


def test_avg_pool2d_forward():
    X = np.arange(16.0).reshape(1, 16)  # one 4x4 image, rows 0..3, 4..7, ...
    out, Hout, Wout = avg_pool2d.forward(X, 1, 4, 4)
    assert (Hout, Wout) == (2, 2)
    np.testing.assert_array_equal(out, [[2.5, 4.5, 10.5, 12.5]])  # mean of 0,1,4,5 etc.
    # zero padding counts: each 2x2 window of the padded 4x4 image holds one value and 3 zeros
    out, Hout, Wout = avg_pool2d.forward(np.array([[1.0, 2.0, 3.0, 4.0]]), 1, 2, 2, 2, 2, 2, 2,
                                         1, 1)
    assert (Hout, Wout) == (2, 2)
    np.testing.assert_array_equal(out, [[0.25, 0.5, 0.75, 1.0]])
    # two channels, two images, one 3x3 window with stride 1: the mean of each channel
    X = np.vstack([np.r_[np.arange(1.0, 10.0), 10 * np.arange(1.0, 10.0)],
                   np.r_[np.ones(9), np.zeros(9)]])
    out, Hout, Wout = avg_pool2d.forward(X, 2, 3, 3, 3, 3, 1, 1)
    assert (Hout, Wout) == (1, 1)
    np.testing.assert_array_equal(out, [[5.0, 50.0], [1.0, 0.0]])


def test_avg_pool2d_backward_spreads_each_gradient_over_its_window():
    X = np.zeros((1, 9))
    out, Hout, Wout = avg_pool2d.forward(X, 1, 3, 3, 2, 2, 1, 1)  # four overlapping windows
    dX = avg_pool2d.backward(np.ones((1, 4)), Hout, Wout, X, 1, 3, 3, 2, 2, 1, 1)
    np.testing.assert_array_equal(dX.reshape(3, 3), [[0.25, 0.5, 0.25],
                                                     [0.5, 1.0, 0.5],
                                                     [0.25, 0.5, 0.25]])


def test_max_pool2d_backward_routes_each_gradient_to_its_maximum():
    X = np.arange(16.0).reshape(1, 16)
    out, Hout, Wout = max_pool2d.forward(X, 1, 4, 4)
    dX = max_pool2d.backward(np.array([[1.0, 2.0, 3.0, 4.0]]), Hout, Wout, X, 1, 4, 4)
    expected = np.zeros(16)
    expected[[5, 7, 13, 15]] = [1.0, 2.0, 3.0, 4.0]
    np.testing.assert_array_equal(dX, expected[None, :])


def test_conv2d_forward_by_hand():
    X = np.arange(9.0).reshape(1, 9)  # 3x3 image 0..8
    W = np.array([[1.0, 0.0, 0.0, -1.0]])  # 2x2 filter: x[i, j] - x[i+1, j+1]
    out, Hout, Wout = conv2d.forward(X, W, np.array([[0.5]]), 1, 3, 3, 2, 2)
    assert (Hout, Wout) == (2, 2)
    np.testing.assert_array_equal(out, [[-3.5, -3.5, -3.5, -3.5]])
    # stride 2 with padding 1 on the same image: windows at (-1,-1), (-1,1), (1,-1), (1,1)
    out, Hout, Wout = conv2d.forward(X, W, np.zeros((1, 1)), 1, 3, 3, 2, 2, 2, 2, 1, 1)
    assert (Hout, Wout) == (2, 2)
    np.testing.assert_array_equal(out, [[0.0, -2.0, -6.0, -4.0]])


def test_batch_norm1d_train_uses_batch_statistics_and_updates_the_ema():
    X = np.array([[1.0, 0.0], [3.0, 0.0], [5.0, 3.0]])
    gamma, beta = np.array([[2.0, 1.0]]), np.array([[1.0, -1.0]])
    ema_mean, ema_var = np.array([[0.0, 1.0]]), np.array([[1.0, 2.0]])
    out, ema_mean_upd, ema_var_upd, mean, var, norm = batch_norm1d.forward(
        X, gamma, beta, "train", ema_mean, ema_var, mu=0.5, epsilon=0.0)
    np.testing.assert_array_equal(mean, [[3.0, 1.0]])
    np.testing.assert_allclose(var, [[8 / 3, 2.0]], rtol=1e-15)  # biased: (4 + 0 + 4) / 3
    z0 = np.array([-2.0, 0.0, 2.0]) / np.sqrt(8 / 3)
    z1 = np.array([-1.0, -1.0, 2.0]) / np.sqrt(2.0)
    np.testing.assert_allclose(norm, np.column_stack([z0, z1]), rtol=1e-15)
    np.testing.assert_allclose(out, np.column_stack([2 * z0 + 1, z1 - 1]), rtol=1e-15)
    np.testing.assert_allclose(ema_mean_upd, [[1.5, 1.0]], rtol=1e-15)  # mu ema + (1-mu) mean
    np.testing.assert_allclose(ema_var_upd, [[0.5 + 4 / 3, 2.0]], rtol=1e-15)
    # the defaults: mu = 0.9, epsilon = 1e-5
    out, ema_mean_upd, ema_var_upd, *_ = batch_norm1d.forward(X, gamma, beta, "train",
                                                              ema_mean, ema_var)
    np.testing.assert_allclose(ema_mean_upd, [[0.3, 1.0]], rtol=1e-15)
    np.testing.assert_allclose(out[:, 0], 2 * np.array([-2.0, 0.0, 2.0]) / np.sqrt(8 / 3 + 1e-5)
                               + 1, rtol=1e-14)


def test_batch_norm1d_test_mode_uses_the_ema_and_leaves_it():
    X = np.array([[1.0, 2.0], [-3.0, 0.0]])
    gamma, beta = np.array([[3.0, 1.0]]), np.array([[0.0, 0.5]])
    ema_mean, ema_var = np.array([[1.0, 1.0]]), np.array([[4.0, 0.25]])
    out, ema_mean_upd, ema_var_upd, mean, var, norm = batch_norm1d.forward(
        X, gamma, beta, "test", ema_mean, ema_var, epsilon=0.0)
    np.testing.assert_array_equal(out, [[0.0, 2.5], [-6.0, -1.5]])
    np.testing.assert_array_equal(norm, [[0.0, 2.0], [-2.0, -2.0]])
    for updated, original in ((ema_mean_upd, ema_mean), (ema_var_upd, ema_var),
                              (mean, ema_mean), (var, ema_var)):
        np.testing.assert_array_equal(updated, original)
    dX, dgamma, dbeta = batch_norm1d.backward(np.ones_like(X), var, norm, gamma, "test",
                                              epsilon=0.0)
    np.testing.assert_array_equal(dX, [[1.5, 2.0], [1.5, 2.0]])  # gamma / sqrt(var)
    np.testing.assert_array_equal(dgamma, [[-2.0, 0.0]])
    np.testing.assert_array_equal(dbeta, [[2.0, 2.0]])


def test_batch_norm1d_train_backward_of_a_normalized_column_is_zero_for_a_constant_dout():
    X = np.array([[1.0], [2.0], [6.0]])
    _, _, _, _, var, norm = batch_norm1d.forward(X, np.ones((1, 1)), np.zeros((1, 1)), "train",
                                                 np.zeros((1, 1)), np.ones((1, 1)))
    # shifting every input by c leaves the output unchanged: the gradient along ones is zero
    dX, dgamma, dbeta = batch_norm1d.backward(np.full((3, 1), 5.0), var, norm, np.ones((1, 1)),
                                              "train")
    np.testing.assert_allclose(dX, 0.0, atol=1e-12)
    np.testing.assert_allclose(dgamma, 0.0, atol=1e-12)  # sum(norm) = 0
    np.testing.assert_array_equal(dbeta, [[15.0]])


def test_batch_norm2d_normalizes_each_channel_over_images_and_pixels():
    # N=2 images, C=2 channels of 1x2 pixels; rows are [c0p0, c0p1, c1p0, c1p1]
    X = np.array([[1.0, 3.0, 10.0, 10.0], [5.0, 7.0, 20.0, 40.0]])
    gamma, beta = np.array([[1.0], [2.0]]), np.array([[0.0], [1.0]])
    ema_mean, ema_var = np.zeros((2, 1)), np.ones((2, 1))
    out, ema_mean_upd, ema_var_upd, mean, var, norm = batch_norm2d.forward(
        X, gamma, beta, 2, 1, 2, "train", ema_mean, ema_var, mu=0.5, epsilon=0.0)
    np.testing.assert_array_equal(mean, [[4.0], [20.0]])
    np.testing.assert_array_equal(var, [[5.0], [150.0]])  # (9+1+1+9)/4, (100+100+0+400)/4
    np.testing.assert_array_equal(ema_mean_upd, [[2.0], [10.0]])
    np.testing.assert_array_equal(ema_var_upd, [[3.0], [75.5]])
    c0 = (np.array([[1.0, 3.0], [5.0, 7.0]]) - 4.0) / np.sqrt(5.0)
    c1 = (np.array([[10.0, 10.0], [20.0, 40.0]]) - 20.0) / np.sqrt(150.0)
    np.testing.assert_allclose(norm, np.hstack([c0, c1]), rtol=1e-15)
    np.testing.assert_allclose(out, np.hstack([c0, 2 * c1 + 1]), rtol=1e-15)
    out, *_ = batch_norm2d.forward(X, gamma, beta, 2, 1, 2, "test", np.array([[1.0], [0.0]]),
                                   np.array([[4.0], [100.0]]), epsilon=0.0)
    np.testing.assert_allclose(out, [[0.0, 1.0, 3.0, 3.0], [2.0, 3.0, 5.0, 9.0]], rtol=1e-15)


def test_batch_norm_statistics_keep_their_row_shape_and_init_values():
    X = np.array([[1.0, 0.0], [3.0, 0.0], [5.0, 3.0]])
    gamma, beta, ema_mean, ema_var = batch_norm1d.init(2)
    np.testing.assert_array_equal(np.stack([gamma, beta, ema_mean, ema_var]),
                                  [[[1.0, 1.0]], [[0.0, 0.0]], [[0.0, 0.0]], [[1.0, 1.0]]])
    _, ema_mean_upd, ema_var_upd, mean, var, norm = batch_norm1d.forward(
        X, gamma, beta, "train", ema_mean, ema_var)
    assert {a.shape for a in (ema_mean_upd, ema_var_upd, mean, var)} == {(1, 2)}
    gamma, beta, ema_mean, ema_var = batch_norm2d.init(3)
    np.testing.assert_array_equal(np.stack([gamma, beta, ema_mean, ema_var])[:, :, 0],
                                  [[1.0] * 3, [0.0] * 3, [0.0] * 3, [1.0] * 3])
    assert gamma.shape == (3, 1) and ema_var.shape == (3, 1)


def test_batch_norm2d_defaults_are_mu_0_9_and_epsilon_1e_5():
    X = np.array([[1.0, 3.0, 10.0, 10.0], [5.0, 7.0, 20.0, 40.0]])
    gamma, beta, ema_mean, ema_var = batch_norm2d.init(2)
    out, ema_mean_upd, ema_var_upd, _, _, _ = batch_norm2d.forward(
        X, gamma, beta, 2, 1, 2, "train", ema_mean, ema_var)
    np.testing.assert_allclose(ema_mean_upd, [[0.4], [2.0]], rtol=1e-15)
    np.testing.assert_allclose(ema_var_upd, [[0.9 + 0.5], [0.9 + 15.0]], rtol=1e-15)
    np.testing.assert_allclose(out[:, :2], (np.array([[1.0, 3.0], [5.0, 7.0]]) - 4.0)
                               / np.sqrt(5.0 + 1e-5), rtol=1e-14)
    dX, _, _ = batch_norm2d.backward(np.ones_like(X), ema_var, X, gamma, 2, 1, 2, "test")
    np.testing.assert_allclose(dX, np.full_like(X, 1 / np.sqrt(1 + 1e-5)), rtol=1e-15)


def test_pooling_and_convolution_backward_defaults():
    X = np.arange(16.0).reshape(1, 16)
    out, Hout, Wout = avg_pool2d.forward(X, 1, 4, 4)  # 2x2 windows, stride 2, no padding
    np.testing.assert_array_equal(avg_pool2d.backward(np.ones((1, 4)), Hout, Wout, X, 1, 4, 4),
                                  np.full((1, 16), 0.25))
    W, b = np.array([[1.0, 0.0, 0.0, -1.0]]), np.zeros((1, 1))
    X = np.arange(9.0).reshape(1, 9)
    out, Hout, Wout = conv2d.forward(X, W, b, 1, 3, 3, 2, 2)  # stride 1, no padding
    dX, dW, db = conv2d.backward(np.ones((1, 4)), Hout, Wout, X, W, b, 1, 3, 3, 2, 2)
    np.testing.assert_array_equal(dX.reshape(3, 3), [[1.0, 1.0, 0.0],
                                                     [1.0, 0.0, -1.0],
                                                     [0.0, -1.0, -1.0]])
    np.testing.assert_array_equal(dW, [[8.0, 12.0, 20.0, 24.0]])  # sums of each tap's inputs
    np.testing.assert_array_equal(db, [[4.0]])


def test_padding_along_one_axis_only():
    # 1x1 windows over a 2x2 image padded by one row above and below: the padded image itself
    X = np.array([[1.0, 2.0, 3.0, 4.0]])
    out, Hout, Wout = avg_pool2d.forward(X, 1, 2, 2, 1, 1, 1, 1, 1, 0)
    assert (Hout, Wout) == (4, 2)
    np.testing.assert_array_equal(out, [[0.0, 0.0, 1.0, 2.0, 3.0, 4.0, 0.0, 0.0]])
