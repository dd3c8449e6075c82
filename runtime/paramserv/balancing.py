"""Runtime balancing of uneven partitions: how many batches each worker walks per epoch.

Federated sites rarely hold equal shares of the data; under BSP a round waits for every worker
still in the epoch, so the number of batches per epoch decides who idles. SystemDS's options:

- ``NONE``: every worker walks its own rows once per epoch; a worker that has run out of batches
  leaves the epoch and later rounds close over the others (so uneven partitions never hang).
- ``BASELINE``: every worker walks as many batches as the smallest partition has, each epoch from
  its first batch (rows past them are never seen: the baseline the others improve on).
- ``CYCLE_MIN`` / ``CYCLE_AVG`` / ``CYCLE_MAX``: every worker walks the smallest / average /
  largest partition's number of batches, continuing where the last epoch stopped and wrapping
  around its rows, so every row is seen over the epochs.
- ``SCALE_BATCH``: every worker walks the average number of batches, with its batch size scaled
  to ``ceil(rows / batches)`` so that it sees its rows once per epoch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from fedla.runtime.paramserv.worker import WorkerTask

BALANCING = ("NONE", "BASELINE", "CYCLE_MIN", "CYCLE_AVG", "CYCLE_MAX", "SCALE_BATCH")


def balance(tasks: Sequence[WorkerTask], balancing: str) -> list[WorkerTask]:
    """``tasks`` with batches per epoch (and batch sizes) set by ``balancing``."""
    if balancing not in BALANCING:
        raise ValueError(f"unknown balancing {balancing!r}; expected one of {BALANCING}")
    counts = [-(-task.rows.size // task.batchsize) for task in tasks]
    if balancing == "NONE":
        return list(tasks)
    if balancing == "BASELINE":
        return [dataclasses.replace(t, batches_per_epoch=min(counts)) for t in tasks]
    if balancing == "SCALE_BATCH":
        count = max(1, round(float(np.mean(counts))))
        return [dataclasses.replace(t, batchsize=max(1, -(-t.rows.size // count)),
                                    batches_per_epoch=count, cycle=True) for t in tasks]
    count = {"CYCLE_MIN": min(counts), "CYCLE_AVG": max(1, round(float(np.mean(counts)))),
             "CYCLE_MAX": max(counts)}[balancing]
    return [dataclasses.replace(t, batches_per_epoch=count, cycle=True) for t in tasks]
