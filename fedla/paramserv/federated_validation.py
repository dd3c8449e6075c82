"""Validation on federated data: each site scores the model on its own validation rows.

``paramserv(..., val_features=F, val_labels=L)`` with ``F`` a federated matrix: after every
epoch the coordinator sends the model to the sites holding ``F``'s row blocks and runs the
registered ``site_training:evaluate`` there, which calls the model's ``val`` function (by
reference, from the site's allow-list) on the site's rows and returns only
``[loss, accuracy, rows]``. ``val`` returns means over rows, so the row-weighted average of the
sites' values is ``val`` on all the rows together, as if they were here.

A site that stopped answering is left out of that epoch's average (the log names it); when none
answers, the epoch's values are NaN. Any other failure (the site's policy refuses to return
results over its data, ``val`` is not allowed there) ends the run with the site's error.
"""

from __future__ import annotations

import concurrent.futures
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fedla.paramserv.federated_executor import SITE_LOST, SitePartition
from fedla.plan import SiteId
from fedla.runtime.protocol.requests import ExecUdf, Literal

_LOGGER = logging.getLogger(__name__)

EVALUATE = "fedla.runtime.paramserv.site_training:evaluate"


class FederatedValidation:
    """``score(model, hyperparams) -> (loss, accuracy)`` over validation rows held at sites.

    Parameters
    ----------
    context : fedla.Context
        The context whose executor reaches the sites.
    partitions : sequence of SitePartition
        The validation set's row blocks and the variables of their features and labels.
    val_ref : str
        ``module:function`` of the validation function, registered at the sites.
    """

    def __init__(self, context: Any, partitions: Sequence[SitePartition], val_ref: str) -> None:
        self.context = context
        self.val_ref = val_ref
        self._by_site: dict[SiteId, list[SitePartition]] = {}
        for partition in partitions:
            self._by_site.setdefault(partition.site, []).append(partition)

    def __call__(self, model: list[Any], hyperparams: Mapping[str, Any]) -> tuple[float, float]:
        """The row-weighted mean loss and accuracy over the sites that answered."""
        arrays = tuple(Literal(np.asarray(a)) for a in model)
        attrs = {"val": self.val_ref, "hyperparams": dict(hyperparams)}
        batches = {site: [ExecUdf(EVALUATE, (p.features, p.labels, *arrays), (), attrs)
                          for p in blocks]
                   for site, blocks in self._by_site.items()}
        with concurrent.futures.ThreadPoolExecutor(len(batches)) as pool:
            futures = {site: pool.submit(self.context.executor.send, site, requests)
                       for site, requests in batches.items()}
            scores = []
            for site, future in futures.items():
                try:
                    scores.extend(future.result())
                except SITE_LOST as exc:
                    _LOGGER.warning("paramserv: validation leaves out site %s, which stopped "
                                    "answering: %s", site, exc)
        rows = sum(int(n) for _, _, n in scores)
        if not rows:
            return math.nan, math.nan
        loss = sum(float(value) * int(n) for value, _, n in scores) / rows
        accuracy = sum(float(value) * int(n) for _, value, n in scores) / rows
        return loss, accuracy
