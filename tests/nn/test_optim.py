"""Optimizers: one step against the paper's formula, convergence on a quadratic, the model list."""

from __future__ import annotations

import numpy as np
import pytest

from fedla.algorithms.nn import model_list
from fedla.algorithms.nn.optim import adagrad, adam, rmsprop, sgd, sgd_momentum, sgd_nesterov
from fedla.runtime.errors import InvalidArgumentError, ShapeMismatchError

X0 = np.array([[1.0, -2.0], [0.5, 3.0]])
DX = np.array([[0.1, -0.4], [2.0, 0.0]])


def test_sgd_step():
    assert sgd.init(X0) == ()
    np.testing.assert_allclose(sgd.update(X0, DX, lr=0.1), X0 - 0.1 * DX)


def test_momentum_step():
    (v,) = sgd_momentum.init(X0)
    X1, v1 = sgd_momentum.update(X0, DX, lr=0.1, mu=0.9, v=v)
    X2, v2 = sgd_momentum.update(X1, DX, lr=0.1, mu=0.9, v=v1)
    np.testing.assert_allclose(v2, 0.9 * (-0.1 * DX) - 0.1 * DX)
    np.testing.assert_allclose(X2, X0 + v1 + v2)


def test_nesterov_step():
    (v,) = sgd_nesterov.init(X0)
    v = np.full_like(X0, 0.2)
    X1, v1 = sgd_nesterov.update(X0, DX, lr=0.1, mu=0.9, v=v)
    np.testing.assert_allclose(v1, 0.9 * v - 0.1 * DX)
    np.testing.assert_allclose(X1, X0 - 0.9 * v + 1.9 * v1)


def test_adagrad_step():
    (cache,) = adagrad.init(X0)
    X1, cache1 = adagrad.update(X0, DX, lr=0.1, epsilon=1e-8, cache=cache)
    np.testing.assert_allclose(cache1, DX ** 2)
    np.testing.assert_allclose(X1, X0 - 0.1 * DX / (np.abs(DX) + 1e-8))


def test_rmsprop_step():
    (cache,) = rmsprop.init(X0)
    X1, cache1 = rmsprop.update(X0, DX, lr=0.01, decay_rate=0.9, epsilon=1e-8, cache=cache)
    np.testing.assert_allclose(cache1, 0.1 * DX ** 2)
    np.testing.assert_allclose(X1, X0 - 0.01 * DX / (np.sqrt(0.1 * DX ** 2) + 1e-8))


def test_adam_first_step_is_lr_times_sign():
    m, v = adam.init(X0)
    X1, m1, v1 = adam.update(X0, DX, lr=0.01, t=0, m=m, v=v)
    np.testing.assert_allclose(m1, 0.1 * DX)
    np.testing.assert_allclose(v1, 0.001 * DX ** 2)
    # bias correction makes the first step lr * dX / (|dX| + eps')
    np.testing.assert_allclose(X1, X0 - 0.01 * np.sign(DX), atol=1e-6)


def test_updates_do_not_modify_their_inputs():
    X, dX = X0.copy(), DX.copy()
    state = adam.init(X)
    adam.update(X, dX, t=0, m=state[0], v=state[1])
    sgd_momentum.update(X, dX, v=np.ones_like(X))
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(dX, DX)


@pytest.mark.parametrize("name,hyper", [
    ("sgd", {"lr": 1.0}), ("sgd_momentum", {"lr": 0.2}), ("sgd_nesterov", {"lr": 0.2}),
    ("adagrad", {"lr": 0.5}), ("rmsprop", {"lr": 0.003}), ("adam", {"lr": 0.05}),
], ids=lambda v: v if isinstance(v, str) else "")
def test_optimizers_minimize_a_quadratic(name, hyper):
    """f(P) = 0.5 ||A P - B||^2 from P = 0: each optimizer ends near the least-squares solution."""
    rng = np.random.default_rng(0)
    A = rng.normal(size=(8, 3)) / 2 + np.eye(8, 3)
    B = rng.normal(size=(8, 2))
    solution = np.linalg.lstsq(A, B, rcond=None)[0]
    model = model_list.with_optimizer_state([np.zeros((3, 2))])
    params = {"optimizer": name, **hyper}
    for _ in range(1500):
        P = model[0]
        model = model_list.apply_gradients(model, params, [A.T @ (A @ P - B) / 8])
    assert np.abs(model[0] - solution).max() < 5e-3
    assert model[-1][0, 0] == 1500  # the step counter


def test_model_list_layout():
    params = [np.ones((3, 2)), np.zeros((1, 2))]
    model = model_list.with_optimizer_state(params)
    assert len(model) == 7 and model[-1].shape == (1, 1)
    assert model_list.num_parameters(model) == 2
    assert [p.shape for p in model_list.parameters(model)] == [(3, 2), (1, 2)]
    assert not any(s.any() for s in model[2:])


def test_switching_optimizers_keeps_the_layout():
    model = model_list.with_optimizer_state([np.ones((2, 2))])
    grads = [np.full((2, 2), 0.5)]
    for name in model_list.OPTIMIZERS:
        model = model_list.apply_gradients(model, {"optimizer": name}, grads)
        assert [a.shape for a in model] == [(2, 2)] * 3 + [(1, 1)]


def test_defaults_come_from_the_update_signatures():
    assert model_list.DEFAULTS["adam"] == {"lr": 0.001, "beta1": 0.9, "beta2": 0.999,
                                           "epsilon": 1e-8}
    assert model_list.DEFAULTS["sgd_momentum"] == {"lr": 0.01, "mu": 0.9}


def test_unknown_optimizer_is_named():
    model = model_list.with_optimizer_state([np.ones((2, 2))])
    with pytest.raises(InvalidArgumentError, match=r"'optimizer' hyperparameter must be one of "
                                                   r"'sgd', .* Got 'adamw' instead"):
        model_list.apply_gradients(model, {"optimizer": "adamw"}, [np.ones((2, 2))])


def test_gradient_shape_mismatch_is_named():
    model = model_list.with_optimizer_state([np.ones((2, 2)), np.ones((1, 2))])
    with pytest.raises(ShapeMismatchError, match=r"gradient 1 has shape \(2, 1\)"):
        model_list.apply_gradients(model, {}, [np.ones((2, 2)), np.ones((2, 1))])
    with pytest.raises(ShapeMismatchError, match="got 1 gradients for a model of 2 parameters"):
        model_list.apply_gradients(model, {}, [np.ones((2, 2))])
    with pytest.raises(ShapeMismatchError, match="3 n \\+ 1 arrays"):
        model_list.num_parameters(model[:-1])
