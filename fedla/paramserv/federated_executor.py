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
    SBP (and BSP with client sampling) training goes on without the site: it is recorded in
    ``history.failures`` and later rounds and barriers stop waiting for it. An error *in*
    ``upd``/``agg`` at a site ends any run (it would fail the same way at every site).

How a lost site rejoins
    Its thread probes the site every ``REJOIN_PROBE_SECONDS``. Once it answers, the thread READs
    the site's training files again (``Context.restore``: a restarted worker holds none of the
    tenant's variables; the files must be unchanged) and recomputes the site's row order; the
    site then trains again from the next epoch, with the model of that epoch (recorded in
    ``history.rejoins``). A site whose data came from the coordinator (``scatter``) or another
    site (a realignment), or any site under secure aggregation (its pairwise keys with every
    other site are gone), stays out.
"""

from __future__ import annotations

import dataclasses
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
from fedla.runtime.errors import CallCancelledError, InvalidArgumentError, WorkerUnavailableError
from fedla.runtime.paramserv.checkpoint import latest_checkpoint
from fedla.runtime.paramserv.compression import Compressed, decompress
from fedla.runtime.paramserv.errors import WorkerFailedError
from fedla.runtime.paramserv.messages import DELTA, GRADIENTS, Release, Update
from fedla.runtime.paramserv.round_combiner import RoundCombiner
from fedla.runtime.paramserv.secure_aggregation import SecAggCoordinator
from fedla.runtime.paramserv.server import CombineFn
from fedla.runtime.paramserv.session import TrainingSession
from fedla.runtime.paramserv.site_training import FEDERATED_SCHEMES, scheme_row_counts
from fedla.runtime.paramserv.worker import (
    ComputeFn,
    StepResult,
    Steps,
    WorkerTask,
    arrays_nbytes,
    run_worker,
)
from fedla.runtime.protocol.requests import Clear, ExecUdf, Get, Literal

_LOGGER = logging.getLogger(__name__)

TRAIN = "fedla.runtime.paramserv.site_training:train"
ROW_ORDER = "fedla.runtime.paramserv.site_training:row_order"
SECAGG_KEYS = "fedla.runtime.paramserv.site_training:secagg_keys"
SECAGG_SHARE = "fedla.runtime.paramserv.site_training:secagg_share"
SECAGG_RECEIVE = "fedla.runtime.paramserv.site_training:secagg_receive"
SECAGG_REVEAL = "fedla.runtime.paramserv.site_training:secagg_reveal"
WAIT_SLICE_SECONDS = 0.2
REJOIN_PROBE_SECONDS = 1.0
"""How often the thread of a lost site checks whether the site is back."""
SITE_LOST = (WorkerUnavailableError, CallCancelledError)
"""Errors meaning a site stopped answering (as opposed to an error in the training code)."""


@dataclass(frozen=True)
class SitePartition:
    """One row block of the training data: where it is and the names of its variables."""

    site: SiteId
    rows: tuple[int, int]
    features: str
    labels: str


@dataclass(frozen=True)
class FederatedOptions:
    """What the sites do to an update before it leaves, and who takes part in a round.

    ``fraction``: share of the live sites sampled per round (BSP; seeded by the run's seed and
    the round). ``clip`` / ``noise_multiplier``: differential privacy at each site (see
    ``site_training.train``). ``compression`` / ``ratio``: uplink compression.
    ``secure_aggregation``: pairwise masking so that the coordinator learns only the sum of a
    round's updates, recoverable while ``secagg_threshold`` sites of a round remain.
    """

    fraction: float = 1.0
    clip: float = 0.0
    noise_multiplier: float = 0.0
    compression: str = "none"
    ratio: float = 0.01
    secure_aggregation: bool = False
    secagg_threshold: int = 2

    @property
    def keeps_state(self) -> bool:
        """Whether each site keeps state between rounds (a residual, secure-aggregation keys)."""
        return self.secure_aggregation or self.compression == "topk"


class _Aborted(Exception):
    """The run ended (another thread failed, or Ctrl-C): a thread stops quietly."""


class _Hub:
    """Serializes the threads' messages into the session and delivers the releases."""

    def __init__(self, session: TrainingSession, k: int, fraction: float = 1.0) -> None:
        self.session = session
        self._lock = threading.RLock()  # secure aggregation's combine asks for the sample
        self._mailboxes: list[queue.Queue[Any]] = [queue.Queue() for _ in range(k)]
        self.failure: BaseException | None = None
        self._fraction = fraction
        self._samples: dict[int, list[int]] = {}
        self.finished = threading.Event()
        """Set when training is over (done or failed): threads of lost sites stop waiting."""

    def sampled(self, version: int) -> list[int]:
        """The workers taking part in the round of model ``version`` (all live ones by default).

        Drawn once per round from the run's seed, so every thread of the round sees the same
        sample and a rerun with the seed samples alike.
        """
        with self._lock:
            sample = self._samples.get(version)
            if sample is None:
                server = self.session.server
                live = sorted(set(range(len(server.clocks))) - server.dropped)
                count = max(1, round(self._fraction * len(live)))
                rng = np.random.default_rng([self.session.plan.seed, version, 0xC11E])
                sample = sorted(int(w) for w in rng.choice(live, count, replace=False))
                self._samples[version] = sample
            return sample

    def call(self, worker: int, message: str, argument: Any) -> tuple[list[Any], int]:
        with self._lock:
            if self.failure is not None:
                raise _Aborted
            method = getattr(self.session, message)
            self._deliver(method(argument))
        return self._receive(worker)

    def drop(self, worker: int, reason: str) -> None:
        with self._lock:
            if self.failure is None:
                self._deliver(self.session.drop(worker, reason))

    def rejoin(self, worker: int) -> int | None:
        """Lost ``worker`` is back: wait until it is released into the next epoch.

        Returns that epoch (0-based), or None when no epoch is left to join.
        """
        with self._lock:
            if self.failure is not None:
                raise _Aborted
            server = self.session.server
            if server.epoch + 1 >= self.session.plan.epochs:
                return None
            self._deliver(self.session.rejoin(worker))
        self._receive(worker)
        with self._lock:
            return int(self.session.server.epoch)

    def fail(self, error: BaseException) -> None:
        with self._lock:
            if self.failure is None:
                self.failure = error
            for mailbox in self._mailboxes:
                mailbox.put(None)
        self.finished.set()

    def _receive(self, worker: int) -> tuple[list[Any], int]:
        item = self._mailboxes[worker].get()
        if item is None:
            raise _Aborted
        return item

    def _deliver(self, releases: list[Release]) -> None:
        for release in releases:
            self._mailboxes[release.worker].put((release.model, release.version))
        if self.session.done:
            self.finished.set()


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
    options : FederatedOptions
        Sampling, differential privacy, compression, secure aggregation.
    holds : sequence
        Objects to keep alive while training (the federated matrices whose variables are used).
    """

    mode = "FEDERATED"

    def __init__(self, context: Any, partitions: Sequence[SitePartition], scheme: str,
                 prox_mu: float = 0.0, options: FederatedOptions | None = None,
                 holds: Sequence[Any] = ()) -> None:
        if scheme not in FEDERATED_SCHEMES:
            raise ValueError(f"unknown federated scheme {scheme!r}")
        self.context = context
        self.partitions = list(partitions)
        self.scheme = scheme
        self.prox_mu = prox_mu
        self.options = options or FederatedOptions()
        self._holds = list(holds)
        self._namespace = f"ps{uuid.uuid4().hex[:8]}."
        self._secagg: SecAggCoordinator | None = None
        self._hub: _Hub | None = None
        # one prober per site: blocks of one site share its connection, which a probe renews
        self._probing = {p.site: threading.Lock() for p in self.partitions}

    @property
    def sites(self) -> list[str]:
        """Each worker's site address."""
        return [str(p.site) for p in self.partitions]

    def row_counts(self) -> list[int]:
        """Rows each worker trains on per pass under the scheme (computed here, not at sites)."""
        return scheme_row_counts([p.rows[1] - p.rows[0] for p in self.partitions], self.scheme)

    def run(self, session: TrainingSession, features: Any, labels: Any, upd_ref: str,
            agg_ref: str, hyperparams: dict[str, Any]) -> None:
        """Train ``session`` with one thread per site partition until every epoch is done."""
        k = len(self.partitions)
        hub = self._hub = _Hub(session, k, self.options.fraction)
        states = [f"{self._namespace}state.{w}" for w in range(k)]
        orders: list[str | None] = [None] * k
        try:
            orders = self._prepare_orders(session.plan.seed)
            have_state = False
            if self.options.secure_aggregation:
                self._set_up_secure_aggregation(states)
                have_state = True
            threads = [
                threading.Thread(
                    target=self._site_main, name=f"fedla-paramserv-{p.site}-{w}", daemon=True,
                    args=(hub, session.tasks[w], p, orders[w], states[w], have_state, upd_ref,
                          agg_ref, hyperparams),
                )
                for w, p in enumerate(self.partitions)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                while thread.is_alive():
                    thread.join(WAIT_SLICE_SECONDS)
        except BaseException as exc:  # Ctrl-C: stop every thread at its next message
            hub.fail(exc)
            raise
        finally:
            self._clear(orders, states)
        if hub.failure is not None:
            raise hub.failure

    # ----- set-up at the sites
    def _prepare_orders(self, seed: int, workers: Sequence[int] | None = None
                        ) -> list[str | None]:
        """Keep each block's row order at its site (none for KEEP_DATA_ON_WORKER).

        ``workers``: only these blocks' orders (a site that rejoins); the names of all returned.
        """
        if self.scheme == "KEEP_DATA_ON_WORKER":
            return [None] * len(self.partitions)
        targets = self.row_counts()
        wanted = range(len(self.partitions)) if workers is None else workers
        names: list[str | None] = [f"{self._namespace}order.{w}" for w in
                                   range(len(self.partitions))]
        batches: dict[SiteId, list[Any]] = {}
        for w in wanted:
            p = self.partitions[w]
            batches.setdefault(p.site, []).append(ExecUdf(
                ROW_ORDER, (p.features,), (names[w],),
                {"scheme": self.scheme, "target_rows": int(targets[w]), "seed": int(seed) + w}))
        self.context.executor.call_all(batches)
        return names

    def _per_worker(self, requests: list[list[Any]]) -> list[list[Any]]:
        """Send worker ``w``'s requests to its site (one batch per site); results per worker."""
        batches: dict[SiteId, list[Any]] = {}
        for p, worker_requests in zip(self.partitions, requests):
            if worker_requests:  # a lost site is not called at all
                batches.setdefault(p.site, []).extend(worker_requests)
        results = self.context.executor.call_all(batches)
        positions = {site: 0 for site in results}
        out: list[list[Any]] = []
        for p, worker_requests in zip(self.partitions, requests):
            if not worker_requests:
                out.append([])
                continue
            start = positions[p.site]
            out.append(results[p.site][start:start + len(worker_requests)])
            positions[p.site] = start + len(worker_requests)
        return out

    def _set_up_secure_aggregation(self, states: list[str]) -> None:
        """Key agreement and key sharing between the sites, relayed by the coordinator."""
        k, threshold = len(self.partitions), self.options.secagg_threshold
        coordinator = SecAggCoordinator(k, threshold)
        keys = [f"{name}.keys" for name in states]
        published = self._per_worker([
            [ExecUdf(SECAGG_KEYS, (), (states[w], keys[w]),
                     {"site_id": w, "n_sites": k, "threshold": threshold}), Get(keys[w])]
            for w in range(k)
        ])
        bundle = coordinator.collect_public_keys(
            {w: {name: bytes(np.asarray(key, np.uint8)) for name, key in result[1].items()}
             for w, result in enumerate(published)})
        wire_bundle = {str(w): {name: np.frombuffer(key, np.uint8).copy()
                                for name, key in entry.items()} for w, entry in bundle.items()}
        outboxes = self._per_worker([
            [ExecUdf(SECAGG_SHARE, (states[w], Literal(wire_bundle)), (), {}), Clear((keys[w],))]
            for w in range(k)
        ])
        inbox = coordinator.relay_shares(
            {w: {int(r): bytes(np.asarray(d, np.uint8)) for r, d in result[0].items()}
             for w, result in enumerate(outboxes)})
        self._per_worker([
            [ExecUdf(SECAGG_RECEIVE, (states[w], Literal(
                {str(sender): np.frombuffer(data, np.uint8).copy()
                 for sender, data in inbox[w].items()})), (), {})]
            for w in range(k)
        ])
        self._secagg = coordinator

    def secure_combine(self, combiner: RoundCombiner) -> CombineFn:
        """The server's ``combine`` under secure aggregation: unmask the round's sum, then apply.

        Participants of the round that sent nothing (a site lost mid-round) are recovered from
        the key shares the round's live sites reveal.
        """
        def combine(updates: Sequence[Update], model: list[Any], share: float) -> list[Any]:
            assert self._secagg is not None and self._hub is not None
            round_ = updates[0].version
            participants = self._hub.sampled(round_)
            masked = {u.worker: u.arrays for u in updates}
            dropped = [p for p in participants if p not in masked]
            reveals: dict[int, dict[int, int]] = {}
            if dropped:
                live = sorted(masked)
                answers = self._per_worker([
                    [ExecUdf(SECAGG_REVEAL, (f"{self._namespace}state.{w}",), (),
                             {"dropped": dropped})] if w in masked else []
                    for w in range(len(self.partitions))
                ])
                reveals = {w: {int(d): int(v) for d, v in answers[w][0].items()} for w in live}
            like = [*model, np.zeros((1, 1))]
            total = self._secagg.unmask_sum(masked, reveals, round_, like, participants)
            weight = float(total[-1][0, 0])
            return combiner.combine_delta(model, [t / weight for t in total[:-1]], share)

        return combine

    def _clear(self, orders: list[str | None], states: list[str]) -> None:
        """Drop each worker's row order and state at its site with the next batch there."""
        for p, order, state in zip(self.partitions, orders, states):
            self.context.executor.defer(p.site, Clear(tuple(n for n in (order, state) if n)))

    # ----- the site threads
    def _site_main(self, hub: _Hub, task: WorkerTask, partition: SitePartition,
                   order: str | None, state: str, have_state: bool, upd_ref: str, agg_ref: str,
                   hyperparams: dict[str, Any]) -> None:
        session = hub.session
        try:
            while True:
                compute = self._compute(hub, task, partition, order, state, have_state, upd_ref,
                                        agg_ref, hyperparams)
                try:
                    run_worker(_Channel(hub, task.worker), task, compute)
                    return
                except SITE_LOST as exc:
                    if session.plan.utype == "BSP" and self.options.fraction == 1:
                        raise
                    hub.drop(task.worker, f"{type(exc).__name__}: {exc}")
                epoch = self._await_rejoin(hub, task.worker, partition, session.plan.seed)
                if epoch is None:
                    return
                task, have_state = dataclasses.replace(task, first_epoch=epoch), False
        except _Aborted:
            return
        except BaseException as exc:  # anything else ends the run; no thread dies silently
            lost = isinstance(exc, SITE_LOST)
            hub.fail(self._failure(session, task.worker, partition, exc, lost=lost))

    def _await_rejoin(self, hub: _Hub, worker: int, partition: SitePartition, seed: int
                      ) -> int | None:
        """Probe the lost site until it answers, restore its data, and rejoin the training.

        Returns the epoch the worker trains again from, or None if it cannot come back (its
        data cannot be read again, or training ended first).
        """
        data = (partition.features, partition.labels)
        if self._secagg is not None or not self.context.restorable(partition.site, data):
            _LOGGER.info("paramserv: site %s cannot rejoin (%s)", partition.site,
                         "secure aggregation" if self._secagg is not None
                         else "its data did not come from its own files")
            return None
        executor = self.context.executor
        while not hub.finished.wait(REJOIN_PROBE_SECONDS):
            try:
                with self._probing[partition.site]:
                    try:
                        self.context.restore(partition.site, data)
                        self._prepare_orders(seed, [worker])
                    except SITE_LOST:
                        # a failed connection waits out a growing back-off before it tries
                        # again; the next probe gets a new one, which tries at once
                        executor.reconnect(partition.site)
                        raise
            except SITE_LOST:
                continue
            except InvalidArgumentError as exc:
                _LOGGER.warning("paramserv: site %s answers again but cannot rejoin: %s",
                                partition.site, exc)
                return None
            return hub.rejoin(worker)
        return None

    def _compute(self, hub: _Hub, task: WorkerTask, partition: SitePartition,
                 order: str | None, state: str, have_state: bool, upd_ref: str, agg_ref: str,
                 hyperparams: dict[str, Any]) -> ComputeFn:
        executor, options = self.context.executor, self.options
        attrs = {"upd": upd_ref, "agg": agg_ref, "hyperparams": dict(hyperparams),
                 "freq": task.freq, "prox_mu": float(self.prox_mu),
                 "names": [task.upd_name, task.agg_name], "clip": float(options.clip),
                 "noise_multiplier": float(options.noise_multiplier),
                 "compression": options.compression, "ratio": float(options.ratio),
                 "keep_state": options.keeps_state}
        order_operand: Any = order if order is not None else Literal(None)
        result_var = f"{self._namespace}result.{task.worker}"
        rounds = 0
        kept = have_state

        def compute(model: list[Any], version: int, steps: Steps) -> StepResult:
            nonlocal rounds, kept
            sample = hub.sampled(version) if options.fraction < 1 or self._secagg else None
            if sample is not None and task.worker not in sample:
                return StepResult(DELTA if task.freq != "BATCH" else GRADIENTS, [], 0)
            # int64 arrays, not nested lists: a list of 79 pairs costs ~1.7 ms to encode and
            # decode in Python's protobuf, an array a tenth of that
            bounds = _batch_bounds(steps)
            call = {**attrs, "batches": bounds,
                    "seeds": np.array(steps.seeds, np.int64),
                    "compression_seed": int(task.seed) * 1_000_003 + task.worker * 7919 + rounds}
            if self._secagg is not None:
                call.update(secagg_round=int(version), participants=list(sample or []),
                            weight=float(np.sum(bounds[:, 1] - bounds[:, 0])
                                         if task.weighted else 1))
            inputs = (partition.features, partition.labels, order_operand,
                      state if kept else Literal(None), *(Literal(np.asarray(a)) for a in model))
            if options.keeps_state:
                requests = [ExecUdf(TRAIN, inputs, (result_var, state), call), Get(result_var)]
                kind, arrays, samples, encoding, seconds = executor.send(partition.site,
                                                                      requests)[-1]
                kept = True
            else:
                kind, arrays, samples, encoding, seconds = executor.send(
                    partition.site, [ExecUdf(TRAIN, inputs, (), call)])[0]
            rounds += 1
            arrays = list(arrays)
            sent = arrays_nbytes(arrays)
            if encoding in ("topk", "qsgd8"):
                arrays = decompress(Compressed(str(encoding), arrays), model[:len(arrays) // 2])
            return StepResult(str(kind), arrays, int(samples), sent, arrays_nbytes(model),
                              float(seconds))

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


def _batch_bounds(steps: Steps) -> np.ndarray:
    """Each batch's [start, stop) in the site's row order, as int64 of shape (batches, 2).

    Federated tasks' batches are slices; an index array is contiguous in that order.
    """
    return np.array([(rows.start, rows.stop) if isinstance(rows, slice)
                     else (int(rows[0]), int(rows[-1]) + 1) for rows in steps.rows], np.int64)
