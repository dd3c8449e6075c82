"""The worker loop, independent of transport: pull, compute on batches, push, repeat.

``local_steps`` is the computation between a pull and a push, a pure function of the model and
the data: it runs wherever the data is (a LOCAL worker process today; a federated site or a
Spark task by the executor that reaches it). ``run_worker`` drives it against a server through a
``ServerChannel`` (three blocking calls; pipes for LOCAL). Per epoch a worker walks its
partition in batches of ``batchsize`` rows, in a fixed order (as SystemDS does):

- freq ``BATCH``: ``upd`` on each batch, push the gradients, continue with the model released.
- freq ``EPOCH`` / ``NBATCHES``: local steps ``model = agg(model, hyperparams, upd(model, ...))``
  over the whole partition / ``nbatches`` batches, then push ``local - pulled`` (model averaging,
  FedAvg [1]_; the lecture's "nfetch" worker with local updates [2]_).

Every ``upd`` call gets ``hyperparams["seed"]``, a seed derived from (run seed, worker, epoch,
step), so stochastic layers such as dropout are reproducible and continue identically after a
resume.

References
----------
.. [1] B. McMahan et al., "Communication-Efficient Learning of Deep Networks from Decentralized
   Data", AISTATS 2017. https://arxiv.org/abs/1602.05629
.. [2] J. Dean et al., "Large Scale Distributed Deep Networks", NeurIPS 2012.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import numpy as np

from fedla.runtime.paramserv.aggregation import check_like, subtract
from fedla.runtime.paramserv.messages import DELTA, GRADIENTS, Update

FREQUENCIES = ("BATCH", "EPOCH", "NBATCHES")
UpdateFn = Callable[[list[Any], Mapping[str, Any], Any, Any], list[Any]]
AggregateFn = Callable[[list[Any], Mapping[str, Any], list[Any]], list[Any]]
ValidateFn = Callable[[list[Any], Mapping[str, Any], Any, Any], tuple[float, float]]
"""``val(model, hyperparams, features, labels) -> (loss, accuracy)``, means over the rows."""


class ServerChannel(Protocol):
    """How a worker reaches the server; each call blocks until the server releases it."""

    def pull(self) -> tuple[list[Any], int]:
        """The current model and its version."""

    def push(self, update: Update) -> tuple[list[Any], int]:
        """Send an update; get the model to continue with."""

    def end_epoch(self) -> tuple[list[Any], int]:
        """Wait at the epoch barrier; get the model of the next epoch."""


@dataclass(frozen=True)
class StepResult:
    """What computing on a group of batches gave.

    The update, what it cost on the wire, and how long the local steps took where the data is
    (None: not measured).
    """

    kind: str
    arrays: list[Any]
    samples: int
    bytes_up: int = 0
    bytes_down: int = 0
    seconds: float | None = None


ComputeFn = Callable[[list[Any], int, "Steps"], StepResult]
"""``compute(model, version, steps)``: run ``local_steps`` wherever the worker's data is.

A result without arrays means the worker sat the round out (client sampling)."""


@dataclass(frozen=True)
class WorkerTask:
    """What one worker does: its rows and the loop's settings.

    ``rows`` index the worker's data (LOCAL: the shared features; FEDERATED: the site's row
    order). ``batches_per_epoch`` (default: as many as the rows give) and ``cycle`` implement
    runtime balancing: with ``cycle`` the batches continue across epochs where the last epoch
    stopped, wrapping around the rows; without it every epoch starts at the first batch.
    ``weighted`` weighs the worker's updates by their samples (FedAvg's n_k / n), else equally.
    """

    worker: int
    rows: np.ndarray
    freq: str
    batchsize: int
    nbatches: int
    first_epoch: int
    epochs: int
    seed: int
    upd_name: str = "upd"
    agg_name: str = "agg"
    batches_per_epoch: int | None = None
    cycle: bool = False
    weighted: bool = True

    def batches(self) -> list[slice | np.ndarray]:
        """Row selectors of each batch: a slice when the rows are contiguous (a view, no copy)."""
        rows, size = self.rows, self.batchsize
        contiguous = rows.size > 0 and rows[-1] - rows[0] + 1 == rows.size and bool(
            np.all(np.diff(rows) == 1))
        if contiguous:
            start = int(rows[0])
            return [slice(start + i, start + min(i + size, rows.size))
                    for i in range(0, rows.size, size)]
        return [rows[i:i + size] for i in range(0, rows.size, size)]

    def epoch_batches(self, epoch: int) -> list[int]:
        """Indices into ``batches()`` that ``epoch`` walks, in order."""
        n = -(-self.rows.size // self.batchsize)
        count = n if self.batches_per_epoch is None else self.batches_per_epoch
        start = epoch * count if self.cycle else 0
        return [(start + j) % n for j in range(count)]

    def batches_per_push(self) -> int:
        """Batches between two pushes."""
        count = len(self.epoch_batches(0))
        return {"BATCH": 1, "EPOCH": max(count, 1), "NBATCHES": self.nbatches}[self.freq]

    def pushes_per_epoch(self) -> int:
        """How often the worker pushes in one epoch."""
        return -(-len(self.epoch_batches(0)) // self.batches_per_push())


def epoch_seeds(seed: int, worker: int, epoch: int, steps: int) -> list[int]:
    """The ``hyperparams["seed"]`` of each of a worker's first ``steps`` ``upd`` calls in ``epoch``.

    One ``SeedSequence`` per worker and epoch, not one per step: its words are prefix-stable
    (word ``j`` does not depend on how many are drawn), and a per-step sequence cost ~25 us, which
    for 79 batches x 3 sites was a quarter of a FEDERATED round's coordinator time.
    """
    words = np.random.SeedSequence([seed, worker, epoch]).generate_state(max(steps, 0))
    return (words >> 1).tolist()


class LocalUpdate(NamedTuple):
    """What ``local_steps`` computed."""

    kind: str
    arrays: list[Any]
    samples: int
    trainable: int


@dataclass(frozen=True)
class Steps:
    """The batches between two pushes: their row selectors and the seed of each ``upd`` call."""

    rows: list[slice | np.ndarray]
    seeds: list[int]


def local_steps(
    model: list[Any], hyperparams: Mapping[str, Any], features: Any, labels: Any, steps: Steps,
    freq: str, upd: UpdateFn, agg: AggregateFn, names: tuple[str, str] = ("upd", "agg"),
    prox_mu: float = 0.0,
) -> LocalUpdate:
    """What a worker pushes after computing on ``steps`` from ``model``.

    Parameters
    ----------
    model : list of arrays
        The model as pulled.
    hyperparams : mapping
        Passed to ``upd`` (with ``"seed"`` set per step) and to ``agg``.
    features, labels : arrays of shape (n, d) and (n, c)
        The worker's data; ``steps.rows`` select each batch.
    steps : Steps
        The batches, in order.
    freq : {"BATCH", "EPOCH", "NBATCHES"}
        BATCH: the gradients of the first batch. EPOCH/NBATCHES: local steps
        ``local = agg(local, hyperparams, upd(local, ...))`` over every batch, then the delta
        ``local - model`` (model averaging).
    upd, agg : callables
        SystemDS's pair ``gradients(model, hyperparams, X, y)``, ``aggregate(model, hyperparams,
        gradients)``.
    names : (str, str)
        How ``upd`` and ``agg`` are named in errors.
    prox_mu : float, default 0
        FedProx's proximal weight: local steps minimize the loss plus
        ``prox_mu / 2 * ||local - model||^2``, so ``prox_mu * (local - model)`` is added to each
        gradient (Li et al., "Federated Optimization in Heterogeneous Networks", MLSys 2020).

    Returns
    -------
    LocalUpdate
        ``GRADIENTS`` or ``DELTA``, the arrays, the number of rows they were computed on, and
        how many leading model arrays have gradients (the trainable parameters; the rest is
        optimizer state).
    """
    fix_upd = f"{names[0]} must return one gradient per leading model array, in model order"
    fix_agg = f"{names[1]} must return the model list with every array's shape unchanged"
    local, samples, trainable = model, 0, len(model)
    for step, (rows, seed) in enumerate(zip(steps.rows, steps.seeds)):
        X, y = features[rows], labels[rows]
        grads = upd(local, {**hyperparams, "seed": seed}, X, y)
        # The first step's results and the last model are checked; checking every step cost a
        # twentieth of a small model's local training, and a shape that changes in between
        # reaches the last model or fails in the arithmetic.
        if step == 0:
            check_like(grads, local, f"the gradients returned by {names[0]}", fix_upd,
                       exact=False)
        samples += X.shape[0]
        trainable = len(grads)
        if freq == "BATCH":
            return LocalUpdate(GRADIENTS, list(grads), samples, len(grads))
        if prox_mu and local is not model:
            grads = [g + prox_mu * (w - w0) for g, w, w0 in zip(grads, local, model)]
        local = agg(local, hyperparams, list(grads))
        if step == 0:
            check_like(local, model, f"the model returned by {names[1]}", fix_agg)
    check_like(local, model, f"the model returned by {names[1]}", fix_agg)
    return LocalUpdate(DELTA, subtract(local, model), samples, trainable)


def run_worker(channel: ServerChannel, task: WorkerTask, compute: ComputeFn) -> None:
    """Run ``task`` from ``task.first_epoch`` to ``task.epochs`` against ``channel``.

    ``compute(model, version, steps)`` runs the local steps where the data is: in this process
    for LOCAL (``local_compute``), at a site by EXEC_UDF for FEDERATED.
    """
    model, version = channel.pull()
    batches = task.batches()
    group = task.batches_per_push()
    for epoch in range(task.first_epoch, task.epochs):
        order = task.epoch_batches(epoch)
        seeds = epoch_seeds(task.seed, task.worker, epoch, len(order))
        for first in range(0, len(order), group):
            numbers = range(first, min(first + group, len(order)))
            steps = Steps([batches[order[j]] for j in numbers], seeds[numbers.start:numbers.stop])
            result = compute(model, version, steps)
            weight = result.samples if task.weighted else 1
            model, version = channel.push(Update(
                task.worker, result.kind, result.arrays, weight, version, result.samples,
                result.bytes_up, result.bytes_down, result.seconds))
        model, version = channel.end_epoch()


def local_compute(
    task: WorkerTask, upd: UpdateFn, agg: AggregateFn, hyperparams: Mapping[str, Any],
    features: Any, labels: Any, prox_mu: float = 0.0,
) -> ComputeFn:
    """``compute`` over data in this process; bytes count the arrays a pipe carries each way."""

    def compute(model: list[Any], version: int, steps: Steps) -> StepResult:
        started = time.perf_counter()
        kind, arrays, samples, _ = local_steps(model, hyperparams, features, labels, steps,
                                               task.freq, upd, agg,
                                               (task.upd_name, task.agg_name), prox_mu)
        return StepResult(kind, arrays, samples, arrays_nbytes(arrays), arrays_nbytes(model),
                          time.perf_counter() - started)

    return compute


def arrays_nbytes(arrays: list[Any]) -> int:
    """Bytes of the array data in ``arrays``."""
    return sum(int(getattr(a, "nbytes", 0)) for a in arrays)
