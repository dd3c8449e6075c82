"""Fixtures of the paramserv tests: scikit-learn's digits, split for training and testing."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, ...]:
    """``X_train, y_train, X_test, y_test``: pixels scaled to [0, 1], class labels 0..9."""
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X / 16.0, y, test_size=0.2,
                                                        random_state=0)
    return X_train, y_train, X_test, y_test

