"""FEDERATED executor: train where the data lives, one coordinator thread per site partition.

Sites are passive ``fedla worker`` daemons (or in-process sites). For each row block of the
features the coordinator runs the worker loop (``run_worker``) in a thread of its own; the loop's
``compute`` sends the released model to the block's site with one EXEC_UDF of
``fedla.runtime.paramserv.site_training:train``, which runs the local steps on the site's rows
and returns only the update (gradients, or a model delta after local steps). The threads meet at
the same ``TrainingSession`` (server, update policy, validation, checkpoints) as LOCAL's
processes, one message at a time under a lock.

Before training, one EXEC_UDF per block computes the block's row order under the federated data
``scheme`` (``site_training.row_order``) and keeps it at the site.

How failures surface
    A site that stops answering (its process died, its host is unreachable, keepalive failed)
    ends a BSP run with ``WorkerFailedError`` naming the site, the epoch and the round; the model
    so far is the error's ``model`` and the last checkpoint its ``checkpoint``. Under ASP, SSP and
    SBP training goes on without the site: it is recorded in ``history.failures`` and later
    rounds and barriers stop waiting for it. An error *in* ``upd``/``agg`` at a site ends any run
    (it would fail the same way at every site).
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fedla.paramserv.executor import ParamservExecutor
from fedla.plan import SiteId
from fedla.runtime.errors import CallCancelledError, WorkerUnavailableError
from fedla.runtime.paramserv.checkpoint import latest_checkpoint
from fedla.runtime.paramserv.errors import WorkerFailedError
from fedla.runtime.paramserv.messages import Release, Update
from fedla.runtime.paramserv.session import TrainingSession
from fedla.runtime.paramserv.site_training import FEDERATED_SCHEMES
from fedla.runtime.paramserv.worker import (
    ComputeFn,
    StepResult,
    Steps,
    WorkerTask,
    arrays_nbytes,
    run_worker,
)
from fedla.runtime.protocol.requests import Clear, ExecUdf, Literal

_LOGGER = logging.getLogger(__name__)

TRAIN = "fedla.runtime.paramserv.site_training:train"
ROW_ORDER = "fedla.runtime.paramserv.site_training:row_order"
WAIT_SLICE_SECONDS = 0.2
SITE_LOST = (WorkerUnavailableError, CallCancelledError)
"""Errors meaning a site stopped answering (as opposed to an error in the training code)."""


@dataclass(frozen=True)
class SitePartition:
    """One row block of the training data: where it is and the names of its variables."""

    site: SiteId
    rows: tuple[int, int]
    features: str
    labels: str


class _Aborted(Exception):
    """The run ended (another thread failed, or Ctrl-C): a thread stops quietly."""


class _Hub:
    """Serializes the threads' messages into the session and delivers the releases."""

    def __init__(self, session: TrainingSession, k: int) -> None:
        self.session = session
        self._lock = threading.Lock()
        self._mailboxes: list[queue.Queue[Any]] = [queue.Queue() for _ in range(k)]
        self.failure: BaseException | None = None

    def call(self, worker: int, message: str, argument: Any) -> tuple[list[Any], int]:
        with self._lock:
            if self.failure is not None:
                raise _Aborted
            method = getattr(self.session, message)
            self._deliver(method(argument))
        item = self._mailboxes[worker].get()
        if item is None:
            raise _Aborted
        return item

    def drop(self, worker: int, reason: str) -> None:
        with self._lock:
            if self.failure is None:
                self._deliver(self.session.drop(worker, reason))

    def fail(self, error: BaseException) -> None:
        with self._lock:
            if self.failure is None:
                self.failure = error
            for mailbox in self._mailboxes:
                mailbox.put(None)

    def _deliver(self, releases: list[Release]) -> None:
        for release in releases:
            self._mailboxes[release.worker].put((release.model, release.version))


class _Channel:
    """A site thread's ``ServerChannel``."""

    def __init__(self, hub: _Hub, worker: int) -> None:
        self._hub, self._worker = hub, worker

    def pull(self) -> tuple[list[Any], int]:
        return self._hub.call(self._worker, "pull", self._worker)

    def push(self, update: Update) -> tuple[list[Any], int]:
        return self._hub.call(self._worker, "push", update)

    def end_epoch(self) -> tuple[list[Any], int]:
        return self._hub.call(self._worker, "end_epoch", self._worker)


class FederatedExecutor(ParamservExecutor):
    """FEDERATED: local steps at the sites holding the rows (see the module docstring).

    Parameters
    ----------
    context : fedla.Context
        The Context the federated features belong to; its executor reaches the sites.
    partitions : list of SitePartition
        The row blocks, in global row order (worker ``i`` trains on block ``i``).
    scheme : str
        One of ``FEDERATED_SCHEMES``.
    prox_mu : float
        FedProx's proximal weight for local steps.
    holds : sequence
        Objects to keep alive while training (the federated matrices whose variables are used).
    """

    mode = "FEDERATED"

    def __init__(self, context: Any, partitions: Sequence[SitePartition], scheme: str,
                 prox_mu: float = 0.0, holds: Sequence[Any] = ()) -> None:
        if scheme not in FEDERATED_SCHEMES:
            raise ValueError(f"unknown federated scheme {scheme!r}")
        self.context = context
        self.partitions = list(partitions)
        self.scheme = scheme
        self.prox_mu = prox_mu
        self._holds = list(holds)
        self._namespace = f"ps{uuid.uuid4().hex[:8]}."

    @property
    def sites(self) -> list[str]:
        """Each worker's site address."""
        return [str(p.site) for p in self.partitions]

    def row_counts(self) -> list[int]:
        """Rows each worker trains on per pass under the scheme (computed here, not at sites)."""
        sizes = [p.rows[1] - p.rows[0] for p in self.partitions]
        target = {"REPLICATE_TO_MAX": max(sizes), "SUBSAMPLE_TO_MIN": min(sizes),
                  "BALANCE_TO_AVG": max(1, round(float(np.mean(sizes))))}.get(self.scheme)
        if target is None:
            return sizes
        if self.scheme == "REPLICATE_TO_MAX":
            return [max(n, target) for n in sizes]
        if self.scheme == "SUBSAMPLE_TO_MIN":
            return [min(n, target) for n in sizes]
        return [target for _ in sizes]

    def run(self, session: TrainingSession, features: Any, labels: Any, upd_ref: str,
            agg_ref: str, hyperparams: dict[str, Any]) -> None:
        """Train ``session`` with one thread per site partition until every epoch is done."""
        orders = self._prepare_orders(session.plan.seed)
        hub = _Hub(session, len(self.partitions))
        threads = [
            threading.Thread(
                target=self._site_main, name=f"fedla-paramserv-{p.site}-{w}", daemon=True,
                args=(hub, session.tasks[w], p, orders[w], upd_ref, agg_ref, hyperparams),
            )
            for w, p in enumerate(self.partitions)
        ]
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                while thread.is_alive():
                    thread.join(WAIT_SLICE_SECONDS)
        except BaseException as exc:  # Ctrl-C: stop every thread at its next message
            hub.fail(exc)
            raise
        finally:
            self._clear(orders)
        if hub.failure is not None:
            raise hub.failure

    def _prepare_orders(self, seed: int) -> list[str | None]:
        """Keep each block's row order at its site (none for KEEP_DATA_ON_WORKER)."""
        if self.scheme == "KEEP_DATA_ON_WORKER":
            return [None] * len(self.partitions)
        targets = self.row_counts()
        names: list[str | None] = []
        batches: dict[SiteId, list[Any]] = {}
        for w, (p, target) in enumerate(zip(self.partitions, targets)):
            name = f"{self._namespace}order.{w}"
            names.append(name)
            batches.setdefault(p.site, []).append(ExecUdf(
                ROW_ORDER, (p.features,), (name,),
                {"scheme": self.scheme, "target_rows": int(target), "seed": int(seed) + w}))
        self.context.executor.call_all(batches)
        return names

    def _clear(self, orders: list[str | None]) -> None:
        for p, name in zip(self.partitions, orders):
            if name is not None:
                self.context.executor.defer(p.site, Clear((name,)))

    def _site_main(self, hub: _Hub, task: WorkerTask, partition: SitePartition,
                   order: str | None, upd_ref: str, agg_ref: str,
                   hyperparams: dict[str, Any]) -> None:
        session = hub.session
        compute = self._compute(task, partition, order, upd_ref, agg_ref, hyperparams)
        try:
            run_worker(_Channel(hub, task.worker), task, compute)
        except _Aborted:
            return
        except SITE_LOST as exc:
            if session.plan.utype != "BSP":
                hub.drop(task.worker, f"{type(exc).__name__}: {exc}")
                return
            hub.fail(self._failure(session, task.worker, partition, exc, lost=True))
        except BaseException as exc:
            hub.fail(self._failure(session, task.worker, partition, exc, lost=False))

    def _compute(self, task: WorkerTask, partition: SitePartition, order: str | None,
                 upd_ref: str, agg_ref: str, hyperparams: dict[str, Any]) -> ComputeFn:
        executor = self.context.executor
        attrs = {"upd": upd_ref, "agg": agg_ref, "hyperparams": dict(hyperparams),
                 "freq": task.freq, "prox_mu": float(self.prox_mu),
                 "names": [task.upd_name, task.agg_name]}
        order_operand: Any = order if order is not None else Literal(None)

        def compute(model: list[Any], steps: Steps) -> StepResult:
            batches = [_bounds(rows) for rows in steps.rows]
            request = ExecUdf(
                TRAIN,
                (partition.features, partition.labels, order_operand,
                 *(Literal(np.asarray(a)) for a in model)),
                (),
                {**attrs, "batches": batches, "seeds": list(steps.seeds)},
            )
            kind, arrays, samples = executor.send(partition.site, [request])[0]
            return StepResult(str(kind), list(arrays), int(samples), arrays_nbytes(arrays),
                              arrays_nbytes(model))

        return compute

    def _failure(self, session: TrainingSession, worker: int, partition: SitePartition,
                 exc: BaseException, lost: bool) -> WorkerFailedError:
        server = session.server
        what = "stopped answering" if lost else "failed"
        checkpoint = (latest_checkpoint(session.checkpoint_dir)
                      if session.checkpoint_dir is not None else None)
        error = WorkerFailedError(
            f"paramserv site {partition.site} (worker {worker}, rows {partition.rows[0]}:"
            f"{partition.rows[1]}) {what} in epoch {server.epoch + 1}, round "
            f"{len(session.history.round_seconds) + 1}: {type(exc).__name__}: {exc}"
            + (f"; the last checkpoint is {checkpoint}" if checkpoint else "")
        )
        error.model = list(server.model)
        error.checkpoint = checkpoint
        error.site = str(partition.site)
        error.__cause__ = exc
        return error


def _bounds(rows: Any) -> list[int]:
    """A batch's [start, stop) in the site's row order (federated tasks' batches are slices)."""
    if isinstance(rows, slice):
        return [int(rows.start), int(rows.stop)]
    rows = np.asarray(rows)
    return [int(rows[0]), int(rows[-1]) + 1]
