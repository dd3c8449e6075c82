"""The parameter server as a state machine: no threads, no I/O, one call per message.

An executor turns messages into calls (``pull``, ``push``, ``end_epoch``) and sends every returned
``Release`` to its worker; how messages travel (pipes, gRPC, Spark) is the executor's business.
Calls must be serialized (one at a time); then the server is deterministic: the same calls in the
same order give the same bits.

Clocks count a worker's pushes in the current epoch. Every epoch ends with a barrier over all
workers, whatever the update policy: the model is then consistent for validation and checkpoints,
and clocks restart at 0.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fedla.runtime.paramserv.aggregation import check_like, weighted_average
from fedla.runtime.paramserv.history import CLOCK_LOG_LIMIT, History
from fedla.runtime.paramserv.messages import GRADIENTS, Release, Update
from fedla.runtime.paramserv.policies import UpdatePolicy
from fedla.runtime.paramserv.round_combiner import RoundCombiner

_LOGGER = logging.getLogger(__name__)

AggregateFn = Callable[[list[Any], Mapping[str, Any], list[Any]], list[Any]]
CombineFn = Callable[[Sequence[Update], list[Any], float], list[Any]]
EpochEndFn = Callable[[int, list[Any]], None]


class ParameterServer:
    """Holds the model; applies pushed updates under an ``UpdatePolicy``.

    Parameters
    ----------
    model : list of arrays
        The initial model list.
    agg : callable
        ``agg(model, hyperparams, gradients) -> model``, run on averaged gradients (freq BATCH).
    hyperparams : dict
        Passed to ``agg``.
    policy : UpdatePolicy
        BSP, ASP, SSP or SBP.
    num_workers : int
        ``k``; workers are ``0 .. k-1``.
    on_epoch_end : callable, optional
        ``on_epoch_end(epoch, model)`` once all workers finished ``epoch`` (0-based), before they
        are released into the next one; validation and checkpoints hook in here.
    epoch : int, default 0
        The epoch training starts in (non-zero when resuming).
    history : History, optional
        Where statistics go; a fresh one by default.
    agg_name : str, default "agg"
        How errors name the aggregation function.
    combine : callable, optional
        ``combine(updates, model, share) -> model``: how a round's model deltas reach the model;
        by default ``RoundCombiner()``, FedAvg (their weighted average, times ``share``, is
        added). Gradients always go through ``agg``.
    on_round : callable, optional
        Called after every model update (privacy accounting hooks in here).
    """

    def __init__(
        self, model: Sequence[Any], agg: AggregateFn, hyperparams: Mapping[str, Any],
        policy: UpdatePolicy, num_workers: int, *, on_epoch_end: EpochEndFn | None = None,
        epoch: int = 0, history: History | None = None, agg_name: str = "agg",
        combine: CombineFn | None = None, on_round: Callable[[], None] | None = None,
    ) -> None:
        self.model = list(model)
        self.version = 0
        self.agg, self.hyperparams, self.policy = agg, hyperparams, policy
        self.num_workers = num_workers
        self.epoch = epoch
        self.clocks = [0] * num_workers
        self.active = set(range(num_workers))
        self.dropped: set[int] = set()
        self.rejoining: set[int] = set()
        self.history = history if history is not None else History()
        self.epoch_samples = 0
        self._at_barrier: set[int] = set()
        self._on_epoch_end = on_epoch_end
        self._agg_name = agg_name
        self._combine = combine if combine is not None else RoundCombiner()
        self.on_round = on_round
        self._round_started = time.perf_counter()

    # --- messages from workers ----------------------------------------------------------------

    def pull(self, worker: int) -> list[Release]:
        """A worker starts: it gets the current model at once."""
        return [Release(worker, self.model, self.version)]

    def push(self, update: Update) -> list[Release]:
        """A worker pushes an update and waits for a release."""
        worker = update.worker
        if worker not in self.active:
            raise RuntimeError(f"worker {worker} pushed an update after ending epoch {self.epoch}")
        self.clocks[worker] += 1
        self.epoch_samples += update.rows
        self.history.max_staleness = max(self.history.max_staleness, self.version - update.version)
        return self._releases(self.policy.push(self, update))

    def end_epoch(self, worker: int) -> list[Release]:
        """A worker finished its share of the epoch; everyone goes on once all have."""
        self.active.discard(worker)
        self._at_barrier.add(worker)
        releases = self._releases(self.policy.leave(self, worker))
        if len(self._at_barrier) < self.num_workers:
            return releases
        return releases + self._next_epoch()

    def _next_epoch(self) -> list[Release]:
        if self._on_epoch_end is not None:
            self._on_epoch_end(self.epoch, self.model)
        self.epoch += 1
        self.epoch_samples = 0
        self.clocks = [0] * len(self.clocks)
        self.dropped -= self.rejoining
        self.num_workers += len(self.rejoining)
        self.rejoining = set()
        workers = sorted(set(range(len(self.clocks))) - self.dropped)
        self.active = set(workers)
        self._at_barrier = set()
        return [Release(w, self.model, self.version) for w in workers]

    def drop(self, worker: int) -> list[Release]:
        """``worker`` is gone for good: later barriers and rounds no longer wait for it."""
        if worker in self.dropped:
            return []
        self.dropped.add(worker)
        self.active.discard(worker)
        self._at_barrier.discard(worker)
        self.num_workers -= 1
        if self.num_workers < 1:
            raise RuntimeError("every worker dropped out")
        releases = self._releases(self.policy.leave(self, worker))
        if len(self._at_barrier) < self.num_workers:
            return releases
        return releases + self._next_epoch()

    def rejoin(self, worker: int) -> list[Release]:
        """Dropped ``worker`` is back: it is released with the others into the next epoch.

        Not earlier: rounds and clocks of the current epoch were counted without it, and an
        epoch boundary is where every policy starts from a clean slate.
        """
        if worker not in self.dropped:
            raise RuntimeError(f"worker {worker} rejoined but it was not dropped")
        self.rejoining.add(worker)
        return []

    # --- used by the policies -----------------------------------------------------------------

    def apply(self, updates: Sequence[Update], delta_share: float = 1.0) -> None:
        """Average ``updates`` (weighted by samples, in the given order) into the model.

        Gradients go through ``agg``; deltas (local steps, FedAvg) are added to the model, times
        ``delta_share`` (the asynchronous policies add one worker's delta as its ``1/k`` share).
        """
        updates = [u for u in updates if u.arrays]  # workers that sat a sampled round out
        if updates and updates[0].kind == GRADIENTS:
            averaged = weighted_average([u.arrays for u in updates], [u.weight for u in updates])
            model = self.agg(self.model, self.hyperparams, averaged)
            check_like(model, self.model, f"the model returned by {self._agg_name}",
                       "agg must return the model list with every array's shape unchanged")
            self.model = list(model)
        elif updates:
            self.model = list(self._combine(updates, self.model, delta_share))
        self.version += 1
        history = self.history
        history.updates += 1
        now = time.perf_counter()
        measured = [u.seconds for u in updates if u.seconds is not None]
        history.record_round(now - self._round_started, sorted(u.worker for u in updates),
                             sum(u.bytes_up for u in updates),
                             sum(u.bytes_down for u in updates),
                             max(measured) if measured else math.nan)
        self._round_started = now
        if self.on_round is not None:
            self.on_round()

    def _releases(self, workers: list[int]) -> list[Release]:
        """Releases for ``workers``, recording their clocks against the slowest active worker."""
        history = self.history
        slowest = min((self.clocks[w] for w in self.active), default=0)
        for w in workers:
            history.max_clock_gap = max(history.max_clock_gap, self.clocks[w] - slowest)
            if len(history.clock_log) < CLOCK_LOG_LIMIT:
                history.clock_log.append([self.epoch, w, self.clocks[w], slowest])
        return [Release(w, self.model, self.version) for w in workers]
