"""Central finite differences and the relative error they are judged by (float64)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

STEP = 1e-6
TOLERANCE = 1e-6


def numeric_gradient(loss: Callable[[], float], x: np.ndarray, step: float = STEP) -> np.ndarray:
    """d loss / d x by central differences, perturbing ``x`` in place (and restoring it)."""
    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        saved = flat[i]
        flat[i] = saved + step
        plus = loss()
        flat[i] = saved - step
        minus = loss()
        flat[i] = saved
        gflat[i] = (plus - minus) / (2 * step)
    return grad


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """``||a - n|| / (||a|| + ||n||)``; 0 when both are 0."""
    denominator = np.linalg.norm(analytic) + np.linalg.norm(numeric)
    return 0.0 if denominator == 0 else float(np.linalg.norm(analytic - numeric) / denominator)


def assert_gradient(
    analytic: np.ndarray, loss: Callable[[], float], x: np.ndarray, name: str
) -> None:
    """Check one analytic gradient against finite differences of ``loss`` in ``x``."""
    assert analytic.shape == x.shape, (name, analytic.shape, x.shape)
    numeric = numeric_gradient(loss, x)
    error = relative_error(analytic, numeric)
    assert error < TOLERANCE, f"{name}: relative error {error:.2e} >= {TOLERANCE:.0e}"
