"""upd/agg/val functions the paramserv tests ship to worker processes by reference.

The model is least squares ``[W (d, 1), b (1, 1)]``. Rows whose first feature is 1 mark the
"slow" worker's data (it sleeps ``hyperparams["delay"]`` per batch, the others
``hyperparams["fast_delay"]``, default 0); rows whose first feature is -1
mark data that makes a worker fail or die. paramserv runs ``upd`` once in the calling process on
the first rows, so tests put marked rows after those.
"""

from __future__ import annotations

import os
import time

import numpy as np

REF = "tests.paramserv.toy_functions"


def gradients(model, hyperparams, X, y):
    W, b = model[0], model[1]
    err = X @ W + b - y
    return [X.T @ err / X.shape[0], err.mean(axis=0, keepdims=True)]


def aggregate(model, hyperparams, grads):
    lr = hyperparams.get("lr", 0.1)
    return [p - lr * g for p, g in zip(model, grads)] + list(model[len(grads):])


def validate(model, hyperparams, X, y):
    loss = float(((X @ model[0] + model[1] - y) ** 2).mean())
    return loss, -loss


def slow_gradients(model, hyperparams, X, y):
    time.sleep(hyperparams["delay"] if X[0, 0] == 1 else hyperparams.get("fast_delay", 0.0))
    return gradients(model, hyperparams, X, y)


def failing_gradients(model, hyperparams, X, y):
    if X[0, 0] == -1:
        raise ValueError("this batch is poisoned")
    return gradients(model, hyperparams, X, y)


def dying_gradients(model, hyperparams, X, y):
    if X[0, 0] == -1:
        os._exit(3)
    return gradients(model, hyperparams, X, y)


def wrong_shape_gradients(model, hyperparams, X, y):
    return [np.zeros((model[0].shape[0] + 1, 1)), np.zeros((1, 1))]


def too_many_gradients(model, hyperparams, X, y):
    return gradients(model, hyperparams, X, y) + [np.zeros((1, 1)), np.zeros((1, 1))]


def truncating_aggregate(model, hyperparams, grads):
    return aggregate(model, hyperparams, grads)[:1]


def problem(n=64, d=3, seed=0, marker=None, marked_from=0.5):
    """``X`` (n, d), ``y`` (n, 1) = X w + 0.5 (+ noise), and a zero model. ``marker`` sets the
    first feature of the rows from ``marked_from * n`` on (1 slow, -1 poisoned); earlier rows
    get 0."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    if marker is not None:
        X[:, 0] = 0.0
        X[int(marked_from * n):, 0] = marker
    w = np.arange(1.0, d + 1).reshape(d, 1)
    y = X @ w + 0.5 + 0.01 * rng.normal(size=(n, 1))
    return X, y, [np.zeros((d, 1)), np.zeros((1, 1))]
