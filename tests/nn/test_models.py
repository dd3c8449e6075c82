"""ffn and cnn: whole-model gradient checks, shapes, predict/validate, argument errors."""

from __future__ import annotations

import numpy as np
import pytest

from fedla.algorithms.nn import cnn, ffn, model_list
from fedla.algorithms.nn.labels import check_one_hot, one_hot
from fedla.algorithms.nn.layers import cross_entropy_loss, l2_reg
from fedla.runtime.errors import InvalidArgumentError, ShapeMismatchError
from tests.nn.gradient_check import assert_gradient


def data(n, d, k, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), one_hot(rng.integers(0, k, n), k)


@pytest.mark.parametrize("hidden", [(), (5,), (6, 4)], ids=["logreg", "1-hidden", "2-hidden"])
def test_ffn_gradients_match_finite_differences(hidden):
    X, Y = data(7, 4, 3)
    model = ffn.init(4, 3, hidden, seed=1)
    hyper = {"lambda": 0.01}
    params = model_list.parameters(model)

    def loss():
        weights = sum(l2_reg.forward(W, 0.01) for W in params[0::2])
        return cross_entropy_loss.forward(ffn.predict(model, X), Y) + weights

    grads = ffn.gradients(model, hyper, X, Y)
    assert len(grads) == len(params) == 2 * (len(hidden) + 1)
    for i, (grad, p) in enumerate(zip(grads, params)):
        assert_gradient(grad, loss, p, f"param {i}")


@pytest.mark.parametrize("keep_prob", [1.0, 0.6], ids=["no-dropout", "dropout"])
def test_cnn_gradients_match_finite_differences(keep_prob):
    C, Hin, Win = 2, 6, 5
    X, Y = data(3, C * Hin * Win, 4)
    model = cnn.init(C, Hin, Win, 4, F1=2, F2=3, N3=5, seed=2)
    hyper = {"C": C, "Hin": Hin, "Win": Win, "keep_prob": keep_prob, "seed": 11, "lambda": 0.02}
    params = model_list.parameters(model)
    geometry = cnn._geometry(params, hyper, X.shape[1])

    def loss():
        probs, _ = cnn._forward(params, geometry, X, keep_prob, 11)  # same dropout mask
        weights = sum(l2_reg.forward(W, 0.02) for W in params[0::2])
        return cross_entropy_loss.forward(probs, Y) + weights

    grads = cnn.gradients(model, hyper, X, Y)
    assert len(grads) == cnn.N_PARAMS
    for i, (grad, p) in enumerate(zip(grads, params)):
        assert_gradient(grad, loss, p, f"param {i}")


def test_ffn_shapes_predict_validate():
    model = ffn.init(64, 10, (32, 16), seed=0)
    assert [a.shape for a in model_list.parameters(model)] == [
        (64, 32), (1, 32), (32, 16), (1, 16), (16, 10), (1, 10)]
    assert len(model) == 3 * 6 + 1
    X, Y = data(20, 64, 10)
    probs = ffn.predict(model, X)
    assert probs.shape == (20, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    loss, accuracy = ffn.validate(model, {}, X, Y)
    assert loss > 0 and 0 <= accuracy <= 1
    np.testing.assert_array_equal(ffn.init(64, 10, (32, 16), seed=0)[0], model[0])  # seeded


def test_cnn_shapes_and_geometry():
    model = cnn.init(1, 8, 8, 10, seed=0)
    shapes = [a.shape for a in model_list.parameters(model)]
    assert shapes == [(16, 9), (16, 1), (32, 144), (32, 1), (128, 128), (1, 128), (128, 10),
                      (1, 10)]
    X, _ = data(5, 64, 10)
    assert cnn.predict(model, X).shape == (5, 10)
    rect = cnn.init(3, 6, 10, 4, F1=2, F2=2, N3=3, seed=0)
    X, Y = data(2, 3 * 6 * 10, 4)
    with pytest.raises(ShapeMismatchError, match="set the hyperparameters 'C', 'Hin' and 'Win'"):
        cnn.gradients(rect, {}, X, Y)
    assert len(cnn.gradients(rect, {"C": 3, "Hin": 6, "Win": 10}, X, Y)) == 8


def test_aggregate_applies_the_chosen_optimizer():
    X, Y = data(16, 6, 3)
    model = ffn.init(6, 3, (4,), seed=0)
    grads = ffn.gradients(model, {}, X, Y)
    sgd = ffn.aggregate(model, {"optimizer": "sgd", "lr": 0.1}, grads)
    np.testing.assert_allclose(sgd[0], model[0] - 0.1 * grads[0])
    adam = ffn.aggregate(model, {"optimizer": "adam"}, grads)
    assert adam[-1][0, 0] == 1 and adam[4].any()  # step counter and first moments moved


def test_one_hot_and_its_check():
    np.testing.assert_array_equal(one_hot([2, 0], 3), [[0, 0, 1], [1, 0, 0]])
    check_one_hot(one_hot([0, 1, 2]), "ffn_train")
    with pytest.raises(InvalidArgumentError, match=r"ffn_train: labels must be one-hot .* shape "
                                                   r"\(3,\)"):
        check_one_hot(np.array([0, 1, 2]), "ffn_train")
    with pytest.raises(InvalidArgumentError, match=r"row 1 = \[0.5, 0.5\]"):
        check_one_hot(np.array([[1.0, 0.0], [0.5, 0.5]]), "ffn_train")
    with pytest.raises(InvalidArgumentError, match="non-negative integer"):
        one_hot([0.5, 1.0])


def test_train_functions_reject_labels_that_are_not_one_hot():
    X, _ = data(10, 64, 10)
    with pytest.raises(InvalidArgumentError, match="ffn_train: labels must be one-hot"):
        ffn.ffn_train(X, np.arange(10))
    with pytest.raises(InvalidArgumentError, match="cnn_train: labels must be one-hot"):
        cnn.cnn_train(X, np.arange(10.0).reshape(-1, 1) * np.ones((1, 2)))
