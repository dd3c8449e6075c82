"""How one round's model deltas become the next model: an aggregation, then a server optimizer.

FedAvg is the weighted mean of the deltas added to the model. ``RoundCombiner`` generalizes both
halves: the deltas are combined by ``robust_aggregation`` (mean, coordinate-wise median, trimmed
mean, Krum) and the result is applied by a server optimizer of ``server_optimizers`` (FedAvg,
FedAvgM, FedAdam, FedYogi, FedAdagrad). The parameter server calls it for delta updates
(freq EPOCH / NBATCHES); gradients always go through the model's own ``agg``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fedla.runtime.paramserv.messages import Update
from fedla.runtime.paramserv.robust_aggregation import aggregate_updates
from fedla.runtime.paramserv.server_optimizers import ServerOptimizer, make_server_optimizer


class RoundCombiner:
    """``combine(updates, model, share) -> model`` for ``ParameterServer``.

    Parameters
    ----------
    aggregation : str
        One of ``robust_aggregation.ROBUST_AGGREGATIONS``.
    aggregation_params : dict
        ``trim``, ``byzantine``, ``multi`` for the robust methods.
    server_optimizer : str
        One of ``server_optimizers.SERVER_OPTIMIZERS``.
    server_params : dict
        Its hyperparameters (``lr``, ``momentum``, ``beta1``, ``beta2``, ``tau``).
    """

    def __init__(self, aggregation: str = "mean",
                 aggregation_params: Mapping[str, Any] | None = None,
                 server_optimizer: str = "fedavg",
                 server_params: Mapping[str, Any] | None = None) -> None:
        self.aggregation = aggregation
        self.aggregation_params = dict(aggregation_params or {})
        self.optimizer: ServerOptimizer = make_server_optimizer(server_optimizer,
                                                                **dict(server_params or {}))

    def __call__(self, updates: Sequence[Update], model: list[Any], share: float) -> list[Any]:
        """The model after one round of ``updates`` (deltas), each counted ``share`` times."""
        delta = aggregate_updates([u.arrays for u in updates], [u.weight for u in updates],
                                  self.aggregation, **self.aggregation_params)
        return self.combine_delta(model, delta, share)

    def combine_delta(self, model: list[Any], delta: list[Any], share: float) -> list[Any]:
        """Apply an already combined ``delta`` (secure aggregation sums it elsewhere)."""
        if share != 1.0:
            delta = [d * share for d in delta]
        return self.optimizer.step(model, delta)
