"""The site side of FEDERATED paramserv: remote functions a coordinator calls by EXEC_UDF.

A federated site is passive: the coordinator's thread for the site sends the model and asks for
local steps; the site runs them on its own rows and returns only the update (gradients or a model
delta), never rows. Both functions are registered remote functions, callable by default (they
are in the worker's default allow-list); ``upd`` and ``agg`` are callbacks, resolved by the worker
through the same allow-list, so a coordinator can only train with functions the site's operator
allowed.

- ``row_order``: the rows a site trains on under a federated data scheme, kept at the site.
- ``train``: ``local_steps`` over batches of that order; returns ``[kind, arrays, samples]``.

Federated data schemes (SystemDS's names; rows never leave their site, so every scheme works
within a site):

- ``KEEP_DATA_ON_WORKER``: the site's rows as they are.
- ``SHUFFLE``: the site's rows in a random order.
- ``REPLICATE_TO_MAX``: rows drawn again at random (with replacement) are appended until the
  site has as many rows as the largest site.
- ``SUBSAMPLE_TO_MIN``: a random subset of as many rows as the smallest site has.
- ``BALANCE_TO_AVG``: subsampled or replicated to the average number of rows over the sites.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fedla.runtime.errors import InvalidArgumentError
from fedla.runtime.paramserv.worker import AggregateFn, Steps, UpdateFn, local_steps
from fedla.runtime.udf_registry import remote_function

FEDERATED_SCHEMES = ("KEEP_DATA_ON_WORKER", "SHUFFLE", "REPLICATE_TO_MAX", "SUBSAMPLE_TO_MIN",
                     "BALANCE_TO_AVG")

MAX_TARGET_FACTOR = 64
"""A site replicates its rows at most this many times over (bounds what a caller can allocate)."""

MAX_BATCHES = 1_000_000
"""Most batches one ``train`` call walks."""


@remote_function
def row_order(features: Any, *, scheme: str, target_rows: int, seed: int) -> np.ndarray:
    """Row indices (int64) the site trains on under federated data ``scheme``.

    Parameters
    ----------
    features : array of shape (n, d)
        The site's features (only their row count is used).
    scheme : str
        One of ``FEDERATED_SCHEMES``.
    target_rows : int
        Rows wanted (the largest, smallest or average site's row count); ignored by
        ``KEEP_DATA_ON_WORKER`` and ``SHUFFLE``.
    seed : int
        Seed of the shuffle or the draws.
    """
    n = int(features.shape[0])
    if scheme not in FEDERATED_SCHEMES:
        raise InvalidArgumentError(
            f"The 'scheme' parameter of row_order must be one of {FEDERATED_SCHEMES}. Got "
            f"{scheme!r} instead."
        )
    if (not isinstance(target_rows, int) or isinstance(target_rows, bool) or target_rows < 1
            or target_rows > MAX_TARGET_FACTOR * max(n, 1)):
        raise InvalidArgumentError(
            f"The 'target_rows' parameter of row_order must be an int in [1, "
            f"{MAX_TARGET_FACTOR} * n_rows] with n_rows={n}. Got {target_rows!r} instead."
        )
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x517E]))
    every = np.arange(n, dtype=np.int64)
    if scheme == "KEEP_DATA_ON_WORKER":
        return every
    if scheme == "SHUFFLE":
        return rng.permutation(n).astype(np.int64)
    grow = scheme == "REPLICATE_TO_MAX" or (scheme == "BALANCE_TO_AVG" and target_rows > n)
    shrink = scheme == "SUBSAMPLE_TO_MIN" or (scheme == "BALANCE_TO_AVG" and target_rows < n)
    if grow and target_rows > n:
        extra = rng.integers(0, n, size=target_rows - n, dtype=np.int64)
        return np.concatenate([every, np.sort(extra)])
    if shrink and target_rows < n:
        return np.sort(rng.choice(n, size=target_rows, replace=False)).astype(np.int64)
    return every


@remote_function(callbacks=("upd", "agg"))
def train(
    features: Any, labels: Any, order: Any, *model: Any, upd: UpdateFn, agg: AggregateFn,
    hyperparams: Mapping[str, Any], batches: Sequence[Sequence[int]], seeds: Sequence[int],
    freq: str, prox_mu: float = 0.0, names: Sequence[str] = ("upd", "agg"),
) -> list[Any]:
    """Local steps on this site's rows; ``[kind, arrays, samples]`` as ``local_steps`` gives.

    Parameters
    ----------
    features, labels : arrays of shape (n, d) and (n, c)
        The site's data.
    order : int array or None
        Row indices the batches index into (from ``row_order``); None for the rows as they are.
    *model : arrays
        The model list as the coordinator released it.
    upd, agg : callables
        The model's gradient and update functions (sent as references; see the module docstring).
    hyperparams : dict
        Passed to ``upd`` and ``agg``.
    batches : list of [start, stop]
        Each batch's range of positions in ``order`` (or of rows).
    seeds : list of int
        Each batch's ``upd`` seed.
    freq : {"BATCH", "EPOCH", "NBATCHES"}
    prox_mu : float, default 0
        FedProx's proximal weight.
    names : (str, str)
        How errors name ``upd`` and ``agg``.
    """
    n = int(features.shape[0]) if order is None else int(np.shape(order)[0])
    if len(batches) != len(seeds) or not 1 <= len(batches) <= MAX_BATCHES:
        raise InvalidArgumentError(
            f"train needs one seed per batch and 1 to {MAX_BATCHES} batches; got "
            f"{len(batches)} batches and {len(seeds)} seeds"
        )
    if labels.shape[0] != features.shape[0]:
        raise InvalidArgumentError(
            f"train: features have {features.shape[0]} rows but labels have {labels.shape[0]}"
        )
    rows: list[Any] = []
    for batch in batches:
        start, stop = (int(v) for v in batch)
        if not 0 <= start < stop <= n:
            raise InvalidArgumentError(
                f"train: batch [{start}, {stop}) is not a non-empty range within the site's "
                f"{n} rows"
            )
        rows.append(slice(start, stop) if order is None else np.asarray(order)[start:stop])
    if not isinstance(prox_mu, (int, float)) or prox_mu < 0:
        raise InvalidArgumentError(f"train: prox_mu must be a float >= 0; got {prox_mu!r}")
    kind, arrays, samples = local_steps(list(model), hyperparams, features, labels,
                                        Steps(rows, [int(s) for s in seeds]), freq, upd, agg,
                                        (str(names[0]), str(names[1])), float(prox_mu))
    return [kind, arrays, samples]
