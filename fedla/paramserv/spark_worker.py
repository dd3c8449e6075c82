"""What a REMOTE_SPARK barrier task runs: the paramserv worker loop against the driver.

The task holds its partition (features and labels of its rows) in memory for all epochs and
runs ``fedla.runtime.paramserv.worker.run_worker`` with a ``ServerChannel`` over gRPC. Every
call carries the job token and the task's stage attempt, and has a deadline.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np

from fedla.paramserv.arguments import import_function
from fedla.paramserv.spark_service import from_proto, to_proto
from fedla.runtime.paramserv.messages import Update
from fedla.runtime.paramserv.site_training import row_order
from fedla.runtime.paramserv.worker import WorkerTask, local_compute, run_worker
from fedla.runtime.protocol import paramserv_pb2 as pb
from fedla.runtime.protocol import paramserv_pb2_grpc as pb_grpc


class GrpcServerChannel:
    """A worker's ``ServerChannel`` to the driver's ``ParameterService``."""

    def __init__(self, address: str, token: str, worker: int, attempt: int,
                 timeout: float) -> None:
        self._channel = grpc.insecure_channel(
            address, options=[("grpc.max_receive_message_length", 512 * 1024**2),
                              ("grpc.max_send_message_length", 512 * 1024**2)])
        self._stub = pb_grpc.ParameterServerStub(self._channel)
        self._caller = pb.Caller(worker=worker, attempt=attempt)
        self._metadata = (("authorization", f"Bearer {token}"),)
        self._timeout = timeout
        self.epoch = 0
        """The epoch of the last model received."""

    def pull(self) -> tuple[list[Any], int]:
        """The current model and its version."""
        return self._model(self._stub.Pull(self._caller, timeout=self._timeout,
                                           metadata=self._metadata))

    def push(self, update: Update) -> tuple[list[Any], int]:
        """Send an update; get the model to continue with."""
        request = pb.PushRequest(caller=self._caller, kind=update.kind,
                                 arrays=[to_proto(a) for a in update.arrays],
                                 weight=update.weight, version=update.version,
                                 seconds=update.seconds or 0.0)
        return self._model(self._stub.Push(request, timeout=self._timeout,
                                           metadata=self._metadata))

    def end_epoch(self) -> tuple[list[Any], int]:
        """Wait at the epoch barrier; get the model of the next epoch."""
        return self._model(self._stub.EndEpoch(self._caller, timeout=self._timeout,
                                               metadata=self._metadata))

    def close(self) -> None:
        """Close the gRPC channel."""
        self._channel.close()

    def _model(self, reply: pb.ModelReply) -> tuple[list[Any], int]:
        self.epoch = reply.epoch
        return [from_proto(a) for a in reply.model], int(reply.version)


def train_partition(address: str, token: str, tasks: dict[int, WorkerTask], upd_ref: str,
                    agg_ref: str, hyperparams: dict[str, Any], timeout: float, prox_mu: float,
                    items: Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray | None]]
                    ) -> Iterator[int]:
    """Run the worker of this partition's rows until every epoch is done; yield its id.

    ``items``: the partition's ``(worker, features, labels, rows)``; ``rows`` is the order the
    worker trains in (None: all rows as they are).
    """
    from pyspark import BarrierTaskContext

    context = BarrierTaskContext.get()
    # The stage attempt, the same number for all its tasks: PySpark has no stageAttemptNumber,
    # but task attempt ids only grow, so a retried stage's smallest id is larger.
    attempt = min(int(number) for number in context.allGather(str(context.taskAttemptId())))
    for worker, X, y, rows in items:
        channel = GrpcServerChannel(address, token, worker, attempt, timeout)
        try:
            channel.pull()  # where this attempt starts: a retried stage resumes an epoch
            task = dataclasses.replace(
                tasks[worker], rows=np.arange(X.shape[0]) if rows is None else rows,
                first_epoch=channel.epoch)
            upd, agg = import_function("upd", upd_ref), import_function("agg", agg_ref)
            run_worker(channel, task, local_compute(task, upd, agg, hyperparams, X, y, prox_mu))
        finally:
            channel.close()
        yield worker


@dataclasses.dataclass(frozen=True)
class SparkSite:
    """What a REMOTE_SPARK worker trains on when the data is a Spark-backed matrix.

    ``index``: the Spark partition (site) holding the rows; ``features``/``labels``: the names of
    its blocks' variables there, in row order; ``worker``: the worker id; ``target_rows``: how
    many rows it trains on per pass under the run's federated data scheme (``row_order``).
    """

    index: int
    worker: int
    features: tuple[str, ...]
    labels: tuple[str, ...]
    target_rows: int


def site_items(sites: dict[int, SparkSite], scheme: str, seed: int,
               values: Iterator[dict[str, Any]]
               ) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray | None]]:
    """The ``train_partition`` item of this partition's site: its rows and their order.

    The rows stay where Spark cached them; a site of several blocks stacks them (in this task's
    memory, as a worker needs them together). The order is ``row_order``'s with the run's
    ``seed``, as a FEDERATED site computes it.
    """
    from fedla.executors.spark_tasks import partition_id

    for held in values:
        site = sites.get(partition_id())
        if site is None:
            continue
        X = _stacked([held[name] for name in site.features])
        y = _stacked([held[name] for name in site.labels])
        order = None if scheme == "KEEP_DATA_ON_WORKER" else row_order(
            X, scheme=scheme, target_rows=site.target_rows, seed=seed + site.worker)
        yield site.worker, X, y, order


def _stacked(blocks: list[Any]) -> np.ndarray:
    return np.asarray(blocks[0]) if len(blocks) == 1 else np.vstack(blocks)
