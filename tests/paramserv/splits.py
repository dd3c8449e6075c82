"""How the paramserv tests split data over sites."""

from __future__ import annotations

import numpy as np


def sorted_by_label(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows sorted by label: split contiguously, each site holds only a few classes (non-IID)."""
    order = np.argsort(y, kind="stable")
    return X[order], y[order]
