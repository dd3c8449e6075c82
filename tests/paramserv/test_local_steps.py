"""``local_steps``: the pure computation between a pull and a push, against hand-written loops.

The model is least squares ``[W, b]`` with gradients ``X'(XW + b - y)/n`` and ``mean(XW + b - y)``
and the update ``p - lr * g``, written out here with numpy (not through the toy functions'
code paths) so a wrong step order, a missing step or a sum instead of a delta fails.
"""

from __future__ import annotations

import numpy as np
import pytest

from fedla.runtime.paramserv.messages import DELTA, GRADIENTS
from fedla.runtime.paramserv.worker import Steps, local_steps
from tests.paramserv import toy_functions as toy

RNG = np.random.default_rng(7)
X = RNG.normal(size=(20, 3))
Y = RNG.normal(size=(20, 1))
MODEL = [RNG.normal(size=(3, 1)), RNG.normal(size=(1, 1))]
LR = 0.05


def _grad(W: np.ndarray, b: np.ndarray, Xb: np.ndarray, yb: np.ndarray) -> tuple:
    err = Xb @ W + b - yb
    return Xb.T @ err / len(Xb), err.mean(axis=0, keepdims=True)


def test_batch_frequency_pushes_the_gradients_of_the_first_batch_only() -> None:
    steps = Steps([slice(0, 8), slice(8, 16)], [11, 12])
    kind, arrays, samples, trainable = local_steps(MODEL, {"lr": LR}, X, Y, steps, "BATCH",
                                                   toy.gradients, toy.aggregate)
    gW, gb = _grad(*MODEL, X[:8], Y[:8])
    assert kind == GRADIENTS and samples == 8 and trainable == 2
    np.testing.assert_allclose(arrays[0], gW, rtol=1e-12)
    np.testing.assert_allclose(arrays[1], gb, rtol=1e-12)


@pytest.mark.parametrize("rows", [[slice(0, 8), slice(8, 16), slice(16, 20)],
                                  [np.array([3, 1, 7]), np.array([0, 19])]],
                         ids=["contiguous", "gathered"])
def test_local_updates_push_the_delta_of_sequential_steps(rows: list) -> None:
    steps = Steps(rows, list(range(len(rows))))
    kind, arrays, samples, trainable = local_steps(MODEL, {"lr": LR}, X, Y, steps, "EPOCH",
                                                   toy.gradients, toy.aggregate)
    W, b = MODEL[0].copy(), MODEL[1].copy()
    for r in rows:
        gW, gb = _grad(W, b, X[r], Y[r])
        W, b = W - LR * gW, b - LR * gb
    assert kind == DELTA and samples == sum(len(X[r]) for r in rows)
    np.testing.assert_allclose(arrays[0], W - MODEL[0], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(arrays[1], b - MODEL[1], rtol=1e-12, atol=1e-15)


def test_every_upd_call_gets_its_own_seed_and_the_other_hyperparameters() -> None:
    seen: list[dict] = []

    def recording(model, hyperparams, Xb, yb):
        seen.append(dict(hyperparams))
        return toy.gradients(model, hyperparams, Xb, yb)

    steps = Steps([slice(0, 5), slice(5, 10), slice(10, 15)], [101, 202, 303])
    local_steps(MODEL, {"lr": LR}, X, Y, steps, "NBATCHES", recording, toy.aggregate)
    assert [h["seed"] for h in seen] == [101, 202, 303]
    assert all(h["lr"] == LR for h in seen)


def test_a_wrong_gradient_shape_names_the_function() -> None:
    steps = Steps([slice(0, 5)], [0])
    with pytest.raises(Exception, match="my_upd"):
        local_steps(MODEL, {}, X, Y, steps, "BATCH", toy.wrong_shape_gradients, toy.aggregate,
                    ("my_upd", "my_agg"))


@pytest.mark.parametrize("mu", [0.0, 0.5, 3.0])
def test_fedprox_adds_the_proximal_gradient_of_each_local_step(mu: float) -> None:
    rows = [slice(0, 8), slice(8, 16), slice(16, 20)]
    steps = Steps(rows, [0, 1, 2])
    kind, arrays, _, _ = local_steps(MODEL, {"lr": LR}, X, Y, steps, "EPOCH", toy.gradients,
                                     toy.aggregate, prox_mu=mu)
    W, b = MODEL[0].copy(), MODEL[1].copy()
    for r in rows:  # minimizes loss + mu/2 ||w - w_global||^2 by SGD (Li et al. 2020, eq. 2)
        gW, gb = _grad(W, b, X[r], Y[r])
        W, b = W - LR * (gW + mu * (W - MODEL[0])), b - LR * (gb + mu * (b - MODEL[1]))
    np.testing.assert_allclose(arrays[0], W - MODEL[0], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(arrays[1], b - MODEL[1], rtol=1e-12, atol=1e-15)
