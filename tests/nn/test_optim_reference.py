"""Optimizers over several steps with their documented defaults, against the papers' update rules
written out here step by step (Adam in the paper's bias-corrected form, not the implementation's
folded step size)."""

from __future__ import annotations

import numpy as np

from fedla.algorithms.nn.optim import adagrad, adam, rmsprop, sgd, sgd_momentum, sgd_nesterov

X0 = np.array([[1.0, -2.0], [0.5, 3.0]])
GRADIENTS = [np.array([[0.1, -0.4], [2.0, 0.0]]), np.array([[-0.3, 0.2], [1.0, 0.5]]),
             np.array([[0.05, 0.0], [-1.5, 0.25]])]


def test_sgd_default_learning_rate_is_0_01():
    np.testing.assert_allclose(sgd.update(X0, GRADIENTS[0]), X0 - 0.01 * GRADIENTS[0], rtol=1e-15)


def test_momentum_with_defaults():
    X, (v,) = X0, sgd_momentum.init(X0)
    X_ref, v_ref = X0.copy(), np.zeros_like(X0)
    for dX in GRADIENTS:
        X, v = sgd_momentum.update(X, dX, v=v)
        v_ref = 0.9 * v_ref - 0.01 * dX
        X_ref = X_ref + v_ref
    np.testing.assert_allclose(X, X_ref, rtol=1e-14)
    np.testing.assert_allclose(v, v_ref, rtol=1e-14)


def test_nesterov_with_defaults():
    # Nesterov momentum in Bengio et al.'s 2012 form (as in SystemDS's sgd_nesterov):
    # v_new = mu v - lr dX,  X_new = X - mu v + (1 + mu) v_new
    X, (v,) = X0, sgd_nesterov.init(X0)
    X_ref, v_ref = X0.copy(), np.zeros_like(X0)
    for dX in GRADIENTS:
        X, v = sgd_nesterov.update(X, dX, v=v)
        v_new = 0.9 * v_ref - 0.01 * dX
        X_ref = X_ref - 0.9 * v_ref + 1.9 * v_new
        v_ref = v_new
    np.testing.assert_allclose(X, X_ref, rtol=1e-14)
    np.testing.assert_allclose(v, v_ref, rtol=1e-14)


def test_adagrad_with_defaults():
    X, (cache,) = X0, adagrad.init(X0)
    X_ref, G = X0.copy(), np.zeros_like(X0)
    for dX in GRADIENTS:
        X, cache = adagrad.update(X, dX, cache=cache)
        G = G + dX**2
        X_ref = X_ref - 0.01 * dX / (np.sqrt(G) + 1e-8)
    np.testing.assert_allclose(X, X_ref, rtol=1e-14)
    np.testing.assert_allclose(cache, G, rtol=1e-14)


def test_rmsprop_with_defaults():
    X, (cache,) = X0, rmsprop.init(X0)
    X_ref, E = X0.copy(), np.zeros_like(X0)
    for dX in GRADIENTS:
        X, cache = rmsprop.update(X, dX, cache=cache)
        E = 0.99 * E + 0.01 * dX**2
        X_ref = X_ref - 0.001 * dX / (np.sqrt(E) + 1e-8)
    np.testing.assert_allclose(X, X_ref, rtol=1e-14)
    np.testing.assert_allclose(cache, E, rtol=1e-14)


def test_adam_with_defaults_follows_algorithm_1_of_the_paper():
    # Kingma and Ba 2015, Algorithm 1: alpha = 0.001, beta1 = 0.9, beta2 = 0.999, eps = 1e-8
    X, (m, v) = X0, adam.init(X0)
    X_ref, m_ref, v_ref = X0.copy(), np.zeros_like(X0), np.zeros_like(X0)
    for t, dX in enumerate(GRADIENTS):
        X, m, v = adam.update(X, dX, t=t, m=m, v=v)
        m_ref = 0.9 * m_ref + 0.1 * dX
        v_ref = 0.999 * v_ref + 0.001 * dX**2
        m_hat, v_hat = m_ref / (1 - 0.9 ** (t + 1)), v_ref / (1 - 0.999 ** (t + 1))
        X_ref = X_ref - 0.001 * m_hat / (np.sqrt(v_hat) + 1e-8)
    np.testing.assert_allclose(m, m_ref, rtol=1e-14)
    np.testing.assert_allclose(v, v_ref, rtol=1e-14)
    # the implementation folds the bias corrections into the step size, which moves eps by a
    # factor sqrt(1 - beta2^t): a difference of the order of lr * eps / sqrt(v_hat) here
    np.testing.assert_allclose(X, X_ref, rtol=0, atol=1e-8)
