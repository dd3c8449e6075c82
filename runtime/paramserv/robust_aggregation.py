"""Byzantine-robust combiners of one round's updates: mean, median, trimmed mean, (multi-)Krum.

An update is a list of arrays (one per model array). ``mean`` is FedAvg's weighted average; the
robust combiners bound what a few arbitrary (Byzantine) updates can do to the result:

- ``median``: coordinate-wise median [1]_.
- ``trimmed_mean``: coordinate-wise, drop the ``floor(trim * n)`` largest and smallest values and
  average the rest [1]_ (``scipy.stats.trim_mean`` along the update axis).
- ``krum``: score each update by the sum of squared distances to its ``n - f - 2`` nearest other
  updates (``f = byzantine``), return the one with the lowest score; multi-Krum averages the
  ``multi`` lowest [2]_. Distances are over all arrays of an update together (one flat vector).

The robust combiners ignore ``weights``, as in the papers: a weight is one more number a faulty
site could inflate, and the guarantees of [1]_ and [2]_ are for unweighted statistics.

References
----------
.. [1] D. Yin, Y. Chen, K. Ramchandran and P. Bartlett, "Byzantine-Robust Distributed Learning:
   Towards Optimal Statistical Rates", ICML 2018. https://arxiv.org/abs/1803.01498
.. [2] P. Blanchard, E. M. El Mhamdi, R. Guerraoui and J. Stainer, "Machine Learning with
   Adversaries: Byzantine Tolerant Gradient Descent", NeurIPS 2017.
   https://papers.nips.cc/paper/6617
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from fedla.runtime.errors import InvalidArgumentError
from fedla.runtime.paramserv.aggregation import check_like, weighted_average

ROBUST_AGGREGATIONS = ("mean", "median", "trimmed_mean", "krum")


def aggregate_updates(
    updates: Sequence[Sequence[Any]],
    weights: Sequence[float],
    method: str = "mean",
    *,
    trim: float = 0.1,
    byzantine: int = 0,
    multi: int = 1,
) -> list[Any]:
    """Combine one round's updates into one.

    Parameters
    ----------
    updates : sequence of list of ndarray
        ``n`` updates, each a list of arrays with the same shapes.
    weights : sequence of float
        One weight per update (samples behind it); used by ``mean`` only.
    method : {"mean", "median", "trimmed_mean", "krum"}, default="mean"
        The combiner (see the module docstring).
    trim : float, default=0.1
        ``trimmed_mean``: fraction cut from each end per coordinate, in ``[0, 0.5)``.
    byzantine : int, default=0
        ``krum``: the number ``f`` of faulty updates tolerated; needs ``n > 2 f + 2``.
    multi : int, default=1
        ``krum``: how many of the best-scored updates to average (1 = Krum), in ``[1, n - f]``.

    Returns
    -------
    list of ndarray
        The combined update, one array per model array.

    Examples
    --------
    >>> import numpy as np
    >>> ups = [[np.array([1.0])], [np.array([2.0])], [np.array([100.0])]]
    >>> aggregate_updates(ups, [1, 1, 1], "median")[0]
    array([2.])
    """
    if method not in ROBUST_AGGREGATIONS:
        raise InvalidArgumentError(
            f"The 'method' parameter of aggregate_updates must be one of {ROBUST_AGGREGATIONS}. "
            f"Got {method!r} instead."
        )
    n = len(updates)
    if n == 0:
        raise InvalidArgumentError("aggregate_updates needs at least one update; got none.")
    if len(weights) != n:
        raise InvalidArgumentError(
            f"aggregate_updates got {n} updates but {len(weights)} weights; pass one weight per "
            f"update."
        )
    first = [np.asarray(a) for a in updates[0]]
    for i, update in enumerate(updates[1:], start=1):
        check_like(list(update), first, f"updates[{i}]",
                   "Every update must have the arrays and shapes of updates[0].")
    if method == "mean":
        return weighted_average(updates, weights)
    if method == "median":
        return [np.median(_stacked(updates, a), axis=0) for a in range(len(first))]
    if method == "trimmed_mean":
        return _trimmed_mean(updates, trim, len(first))
    return _krum(updates, byzantine, multi, len(first))


def _stacked(updates: Sequence[Sequence[Any]], a: int) -> np.ndarray:
    """Array ``a`` of every update, stacked along a new first axis."""
    return np.stack([np.asarray(u[a]) for u in updates])


def _trimmed_mean(updates: Sequence[Sequence[Any]], trim: float, n_arrays: int) -> list[Any]:
    if isinstance(trim, bool) or not isinstance(trim, (int, float)) or not 0 <= trim < 0.5:
        raise InvalidArgumentError(
            f"The 'trim' parameter of aggregate_updates must be a float in the range [0, 0.5). "
            f"Got {trim!r} instead."
        )
    n = len(updates)
    cut = math.floor(trim * n)
    out = []
    for a in range(n_arrays):
        values = np.sort(_stacked(updates, a), axis=0)
        out.append(values[cut:n - cut].mean(axis=0))
    return out


def _krum(updates: Sequence[Sequence[Any]], f: int, multi: int, n_arrays: int) -> list[Any]:
    n = len(updates)
    if isinstance(f, bool) or not isinstance(f, (int, np.integer)) or f < 0:
        raise InvalidArgumentError(
            f"The 'byzantine' parameter of aggregate_updates must be an int in the range "
            f"[0, inf). Got {f!r} instead."
        )
    if n <= 2 * f + 2:
        raise InvalidArgumentError(
            f"krum needs n > 2*f + 2 updates; got n={n} with f=byzantine={f}. Lower 'byzantine' "
            f"or combine at least {2 * f + 3} updates per round."
        )
    if isinstance(multi, bool) or not isinstance(multi, (int, np.integer)) or not (
            1 <= multi <= n - f):
        raise InvalidArgumentError(
            f"The 'multi' parameter of aggregate_updates must be an int in the range "
            f"[1, n - byzantine] = [1, {n - f}]. Got {multi!r} instead."
        )
    flat = np.stack([
        np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in u]) for u in updates
    ])
    # Row by row rather than through the Gram matrix: exact for close, large vectors (no
    # cancellation), and memory stays O(n * size).
    dist = np.stack([np.square(flat - row).sum(axis=1) for row in flat])
    np.fill_diagonal(dist, np.inf)  # a vector is not its own neighbour
    scores = np.sort(dist, axis=1)[:, : n - f - 2].sum(axis=1)
    chosen = np.argsort(scores, kind="stable")[:multi]
    return [_stacked([updates[i] for i in chosen], a).mean(axis=0) for a in range(n_arrays)]
