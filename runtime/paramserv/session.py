"""The coordinator's side of one paramserv run, whatever carries the messages.

A ``TrainingSession`` owns the ``ParameterServer``, the workers' tasks, the progress bar, the
per-epoch validation and checkpoints, and the ``History``. An executor starts the workers, feeds
their messages to ``pull`` / ``push`` / ``end_epoch`` (one at a time) and delivers the releases.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from fedla.runtime.paramserv.balancing import balance
from fedla.runtime.paramserv.checkpoint import save_checkpoint
from fedla.runtime.paramserv.history import History
from fedla.runtime.paramserv.messages import Release, Update
from fedla.runtime.paramserv.policies import make_policy
from fedla.runtime.paramserv.server import AggregateFn, CombineFn, ParameterServer
from fedla.runtime.paramserv.worker import WorkerTask

_LOGGER = logging.getLogger(__name__)

ScoreFn = Callable[[list[Any], Mapping[str, Any]], tuple[float, float]]
"""``score(model, hyperparams) -> (loss, accuracy)`` on the run's validation set, wherever it is."""


@dataclass(frozen=True)
class TrainingPlan:
    """The validated settings of one run (also stored in checkpoints)."""

    utype: str
    freq: str
    epochs: int
    batchsize: int
    k: int
    scheme: str
    nbatches: int
    staleness: int
    num_backup_workers: int
    seed: int
    n_rows: int
    upd: str
    agg: str
    balancing: str = "NONE"
    weighting: bool = True
    prox_mu: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable dict."""
        return asdict(self)


class TrainingSession:
    """Server, tasks, validation, checkpoints and progress of one paramserv run.

    Parameters
    ----------
    plan : TrainingPlan
    model : list of arrays
        Model at the start (of ``first_epoch``).
    agg : callable
        The aggregation function.
    hyperparams : dict
    partitions : list of int arrays
        Rows of each worker.
    validate : callable, optional
        ``validate(model, hyperparams) -> (loss, accuracy)`` on the validation set, after every
        epoch (``ScoreFn``).
    first_epoch : int, default 0
        Epochs already done (when resuming).
    history : History, optional
        History so far (when resuming).
    checkpoint_dir : path, optional
        Write a checkpoint after every epoch.
    progress : bool or None
        Show a tqdm bar: True, False, or None for "when stderr is a terminal".
    combine : callable, optional
        How a round's model deltas reach the model (see ``ParameterServer``).
    sites : list of str, optional
        What each worker is, for the history (default ``"process i"``).
    """

    def __init__(
        self, plan: TrainingPlan, model: Sequence[Any], agg: AggregateFn,
        hyperparams: Mapping[str, Any], partitions: Sequence[np.ndarray], *,
        validate: ScoreFn | None = None,
        first_epoch: int = 0, history: History | None = None,
        checkpoint_dir: str | Path | None = None, progress: bool | None = None,
        combine: CombineFn | None = None, sites: Sequence[str] | None = None,
    ) -> None:
        self.plan = plan
        self.hyperparams = hyperparams
        self.history = history if history is not None else History(seed=plan.seed)
        self.history.sites = list(sites) if sites else [f"process {w}" for w in range(plan.k)]
        self.server = ParameterServer(
            model, agg, hyperparams,
            make_policy(plan.utype, plan.staleness, plan.num_backup_workers), plan.k,
            on_epoch_end=self._epoch_end, epoch=first_epoch, history=self.history,
            agg_name=plan.agg, combine=combine, on_round=self._round_done,
        )
        self.tasks = balance([
            WorkerTask(w, rows, plan.freq, plan.batchsize, plan.nbatches, first_epoch,
                       plan.epochs, plan.seed, plan.upd, plan.agg, weighted=plan.weighting)
            for w, rows in enumerate(partitions)
        ], plan.balancing)
        self._validate = validate
        self._checkpoint_dir = checkpoint_dir
        self.round_hooks: list[Callable[[], None]] = []
        self._bar = tqdm(
            total=self._rounds_per_epoch() * (plan.epochs - first_epoch), unit="round",
            dynamic_ncols=True,
            desc=f"paramserv {plan.utype}/{plan.freq} k={plan.k}",
            disable=None if progress is None else not progress,
        )
        self._epoch_started = time.perf_counter()
        self._pulled: set[int] = set()

    @property
    def checkpoint_dir(self) -> str | Path | None:
        """Where checkpoints go, if anywhere."""
        return self._checkpoint_dir

    @property
    def done(self) -> bool:
        """All epochs are finished."""
        return self.server.epoch >= self.plan.epochs

    @property
    def model(self) -> list[Any]:
        """The server's current model."""
        return self.server.model

    def pull(self, worker: int) -> list[Release]:
        """A worker asks for the model at start-up (the epoch clock starts with the last one)."""
        self._pulled.add(worker)
        if len(self._pulled) == self.plan.k:
            self._epoch_started = time.perf_counter()
        return self.server.pull(worker)

    def push(self, update: Update) -> list[Release]:
        """A worker pushes an update."""
        return self.server.push(update)

    def _rounds_per_epoch(self) -> int:
        """Model updates per epoch, for the progress bar (exact for BSP, ASP and SSP)."""
        pushes = [task.pushes_per_epoch() for task in self.tasks]
        if self.plan.utype == "BSP":
            return max(pushes)
        if self.plan.utype == "SBP":
            return -(-sum(pushes) // max(1, self.plan.k - self.plan.num_backup_workers))
        return sum(pushes)

    def _round_done(self) -> None:
        """After every model update: hooks (privacy accounting), then the progress bar."""
        for hook in self.round_hooks:
            hook()
        self._bar.update(1)

    def end_epoch(self, worker: int) -> list[Release]:
        """A worker reached the epoch barrier."""
        return self.server.end_epoch(worker)

    def drop(self, worker: int, reason: str) -> list[Release]:
        """``worker`` is lost: training goes on without it (recorded in the history)."""
        self.history.failures.append([len(self.history.round_seconds), worker, reason])
        _LOGGER.warning("paramserv: %s dropped out in epoch %d: %s",
                        self.history.sites[worker], self.server.epoch + 1, reason)
        return self.server.drop(worker)

    def rejoin(self, worker: int) -> list[Release]:
        """Lost ``worker`` is back; it trains again from the next epoch (recorded in history)."""
        self.history.rejoins.append([self.server.epoch + 2, worker])
        _LOGGER.warning("paramserv: %s is back and rejoins in epoch %d",
                        self.history.sites[worker], self.server.epoch + 2)
        return self.server.rejoin(worker)

    def close(self) -> None:
        """Close the progress bar."""
        self._bar.close()

    def _epoch_end(self, epoch: int, model: list[Any]) -> None:
        """Validation, history, checkpoint and progress after ``epoch`` (0-based)."""
        now = time.perf_counter()
        loss, accuracy = math.nan, math.nan
        if self._validate is not None:
            loss, accuracy = (float(v) for v in self._validate(model, self.hyperparams))
        history = self.history
        history.epoch.append(epoch + 1)
        history.val_loss.append(loss)
        history.val_accuracy.append(accuracy)
        history.epoch_seconds.append(now - self._epoch_started)
        history.samples.append(self.server.epoch_samples)
        if self._checkpoint_dir is not None:
            state = {"plan": self.plan.to_dict(), "history": history.to_dict()}
            path = save_checkpoint(self._checkpoint_dir, epoch + 1, model, state)
            _LOGGER.info("paramserv: wrote checkpoint %s", path)
        postfix = {"epoch": f"{epoch + 1}/{self.plan.epochs}"}
        if not math.isnan(loss):
            postfix.update(val_loss=f"{loss:.4f}", val_acc=f"{accuracy:.4f}")
        self._bar.set_postfix(postfix)
        _LOGGER.info("paramserv: epoch %d/%d val_loss=%.4f val_accuracy=%.4f", epoch + 1,
                     self.plan.epochs, loss, accuracy)
        self._epoch_started = time.perf_counter()
