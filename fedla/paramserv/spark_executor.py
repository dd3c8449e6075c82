"""REMOTE_SPARK executor: one Spark job of ``k`` barrier tasks per ``paramserv`` call.

Each task gets one worker's rows (as partitioned by the run's scheme), keeps them in memory for
all epochs and runs the worker loop against a parameter server on the driver
(``fedla.paramserv.spark_service``) over gRPC, with a per-job token and a deadline on every call.
A barrier stage needs all ``k`` tasks running at once, so ``k`` must fit the cluster's free task
slots; the session built by ``fedla.spark.spark_session`` also makes Spark refuse an oversized
barrier stage at once rather than after its default ten minutes. When a task dies Spark retries
the whole barrier stage; the server then resumes from the last completed epoch (see the service).

The data is either in memory at the driver (sent with the job, one worker's rows per task) or
a Spark-backed matrix (``fl.from_spark``): then the tasks run on the partitions where Spark
cached its rows, one worker per partition, and nothing is collected to the driver; the
partition trains in the order of the run's federated data scheme, as a FEDERATED site does.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np

from fedla.paramserv.executor import ParamservExecutor
from fedla.paramserv.spark_service import ParameterService, create_server, new_token
from fedla.paramserv.spark_worker import SparkSite, site_items, train_partition
from fedla.runtime.errors import InvalidArgumentError
from fedla.runtime.paramserv.errors import WorkerFailedError
from fedla.runtime.paramserv.session import TrainingSession

CALL_TIMEOUT_SECONDS = 600.0
"""Deadline of each pull/push/barrier call (a BSP barrier waits for the slowest worker)."""


class RemoteSparkExecutor(ParamservExecutor):
    """REMOTE_SPARK: the workers are barrier tasks of the active Spark session."""

    mode = "REMOTE_SPARK"

    def __init__(self, timeout: float = CALL_TIMEOUT_SECONDS, sites: Sequence[SparkSite] = (),
                 context: Any = None, scheme: str = "KEEP_DATA_ON_WORKER",
                 holds: Sequence[Any] = ()) -> None:
        self.timeout = timeout
        self.spark_sites = list(sites)
        """With a Spark-backed matrix: each worker's partition and variables (else empty)."""
        self.context = context
        self.scheme = scheme
        self._holds = list(holds)  # the matrices whose cached variables the tasks read

    @property
    def sites(self) -> list[str] | None:
        """Each worker's Spark site, with a Spark-backed matrix."""
        return [str(self.context.executor.sites[site.index]) for site in self.spark_sites] or None

    def row_counts(self) -> list[int]:
        """Rows each worker trains on per pass, with a Spark-backed matrix."""
        return [site.target_rows for site in self.spark_sites]

    def run(self, session: TrainingSession, features: np.ndarray, labels: np.ndarray,
            upd_ref: str, agg_ref: str, hyperparams: dict[str, Any]) -> None:
        """Train ``session`` in one Spark job of ``k`` barrier tasks."""
        spark = _active_session()
        sc = spark.sparkContext
        k = len(session.tasks)
        slots = sc.defaultParallelism
        if self.spark_sites and self.context.executor.partitions > slots:
            raise InvalidArgumentError(
                f"paramserv REMOTE_SPARK runs one barrier task per partition of the Spark-backed "
                f"features ({self.context.executor.partitions}) at once but the Spark cluster "
                f"has {slots} task slots; use fewer partitions or a larger cluster"
            )
        if k > slots:
            raise InvalidArgumentError(
                f"paramserv REMOTE_SPARK runs k={k} barrier tasks at once but the Spark cluster "
                f"has {slots} task slots; use k <= {slots} or a larger cluster"
            )
        group = f"fedla-paramserv-{uuid.uuid4().hex}"
        service = ParameterService(session, new_token(), self.timeout,
                                   on_failure=lambda _: sc.cancelJobGroup(group))
        host = sc.getConf().get("spark.driver.host", os.environ.get("SPARK_LOCAL_IP",
                                                                    "127.0.0.1"))
        server, port = create_server(service, host, k)
        try:
            tasks = {task.worker: task for task in session.tasks}
            job = functools.partial(train_partition, f"{host}:{port}", service.token, tasks,
                                    upd_ref, agg_ref, hyperparams, self.timeout,
                                    session.plan.prox_mu)
            sc.setJobGroup(group, "fedla paramserv REMOTE_SPARK", interruptOnCancel=True)
            try:
                # The shuffle makes the barrier stage a map stage: Spark retries a failed one
                # (a failed barrier result stage is not retried).
                self._items(sc, session, features, labels).barrier().mapPartitions(
                    job).repartition(1).collect()
            except Exception as exc:
                if service.failure is not None:
                    raise WorkerFailedError(
                        f"paramserv REMOTE_SPARK failed at the parameter server: "
                        f"{type(service.failure).__name__}: {service.failure}"
                    ) from service.failure
                raise WorkerFailedError(
                    f"paramserv REMOTE_SPARK: the Spark job failed: {_first_line(exc)}"
                ) from exc
            finally:
                sc.setLocalProperty("spark.jobGroup.id", None)
        finally:
            service.close()
            server.stop(grace=None)
        if not session.done:
            raise WorkerFailedError("paramserv REMOTE_SPARK: the tasks ended before the last epoch")

    def _items(self, sc: Any, session: TrainingSession, features: Any, labels: Any) -> Any:
        """An RDD of ``train_partition``'s items: one worker per partition."""
        if not self.spark_sites:
            parts = [(task.worker, features[task.rows], labels[task.rows], None)
                     for task in session.tasks]
            return sc.parallelize(parts, len(parts))
        values = self.context.executor.site_values(
            {site.index: [*site.features, *site.labels] for site in self.spark_sites})
        return values.mapPartitions(functools.partial(
            site_items, {site.index: site for site in self.spark_sites}, self.scheme,
            int(session.plan.seed)))


def _active_session() -> Any:
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise InvalidArgumentError(
            "paramserv mode='REMOTE_SPARK' needs pyspark: pip install 'fedla[spark]'"
        ) from exc
    spark = SparkSession.getActiveSession()
    if spark is None:
        raise InvalidArgumentError(
            "paramserv mode='REMOTE_SPARK' runs on the active Spark session, and there is none; "
            "start one first (fedla.spark.spark_session(master) makes a configured one)"
        )
    return spark


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:500] if text else type(exc).__name__
