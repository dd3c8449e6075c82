"""ffn and cnn trained by paramserv (LOCAL, BSP, k=2) on scikit-learn's digits.

8x8 images scaled to [0, 1]; ``train_test_split(test_size=0.2, random_state=0)`` holds out 360
images. Runs are seeded, hence deterministic on a given machine.
"""

from __future__ import annotations

import numpy as np
import pytest

from fedla.algorithms.nn import cnn, ffn
from fedla.algorithms.nn.labels import one_hot

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X / 16.0, y, test_size=0.2,
                                                        random_state=0)
    return X_train, one_hot(y_train, 10), X_test, y_test


def accuracy(probs, y):
    return float(np.mean(probs.argmax(axis=1) == y))


def test_ffn_reaches_95_percent(digits):
    X_train, Y_train, X_test, y_test = digits
    model = ffn.ffn_train(X_train, Y_train, hidden=(128,), epochs=10, batchsize=32, k=2,
                          utype="BSP", hyperparams={"lr": 3e-3}, seed=0,
                          val_features=X_test, val_labels=one_hot(y_test, 10))
    assert accuracy(ffn.predict(model, X_test), y_test) >= 0.95
    assert model.history.val_accuracy[-1] == pytest.approx(accuracy(ffn.predict(model, X_test),
                                                                    y_test))
    assert model.history.epoch == list(range(1, 11))


def test_cnn_reaches_97_percent(digits):
    X_train, Y_train, X_test, y_test = digits
    model = cnn.cnn_train(X_train, Y_train, C=1, Hin=8, Win=8, epochs=15, batchsize=32, k=2,
                          utype="BSP", hyperparams={"lr": 3e-3, "keep_prob": 0.75}, seed=0)
    assert accuracy(cnn.predict(model, X_test), y_test) >= 0.97
