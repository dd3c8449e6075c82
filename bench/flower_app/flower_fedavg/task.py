"""The model, a site's data and the local training of one round, shared by every Flower path.

The local training is fedla's own: ``local_steps`` with ``ffn.gradients``/``ffn.aggregate`` over
one epoch of the site's rows in contiguous batches, with the seeds fedla's paramserv gives site
``site`` in epoch ``round - 1`` (run seed 0), so Flower and fedla run the same computation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fedla.algorithms.nn import ffn
from fedla.runtime.paramserv.worker import Steps, epoch_seeds, local_steps

HYPERPARAMS = {"optimizer": "sgd", "lr": 0.1}
BATCHSIZE = 128
SEED = 0


def init_model(n_features: int, n_classes: int, hidden: int) -> list[np.ndarray]:
    """``ffn.init`` with no hidden layer for ``hidden=0`` (logistic regression), else one."""
    return ffn.init(n_features, n_classes, hidden=(hidden,) if hidden else (), seed=SEED)


def load_site(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """A site's features (n, d) and one-hot labels (n, c) from the ``.npz`` the bench wrote."""
    with np.load(path) as site:
        return site["X"], site["Y"]


def train_round(
    model: list[np.ndarray], X: np.ndarray, Y: np.ndarray, site: int, server_round: int,
) -> tuple[list[np.ndarray], int]:
    """The local model after one epoch from ``model``, and the number of rows it saw."""
    rows = [slice(i, min(i + BATCHSIZE, len(X))) for i in range(0, len(X), BATCHSIZE)]
    seeds = epoch_seeds(SEED, site, server_round - 1, len(rows))
    _, delta, samples, _ = local_steps(model, HYPERPARAMS, X, Y, Steps(rows, seeds), "EPOCH",
                                    ffn.gradients, ffn.aggregate)
    return [m + d for m, d in zip(model, delta)], samples
