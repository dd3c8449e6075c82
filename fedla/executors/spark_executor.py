"""``SparkExecutor``: sites are the partitions of cached Spark RDDs.

Site ``spark-i`` is partition ``i`` of every RDD this executor makes; each has exactly ``P``
partitions and one element per partition (a ``SiteBundle``), so ``RDD.zip`` lines up the
variables of one site without a shuffle. A variable a site keeps between stages lives in the
cached RDD of the job that created it; a stage is one Spark job: the RDDs holding the variables
its batches read are zipped, and each partition's batch runs in the task with the same
``RequestHandler`` and kernels a ``fedla worker`` runs (``fedla.executors.spark_tasks``). Partials
and gathered blocks come back with ``collect``; when more than ``tree_min_partials`` partials
feed one associative combine, the results come back with ``treeAggregate`` instead, which folds
those partials inside the cluster (``fedla.executors.spark_tree``). The variables created stay
cached in Spark until the coordinator clears them, when the RDD is unpersisted.

Why RDDs and not one DataFrame per variable: a stage reads several variables of a site at once,
and Spark SQL has no co-partitioned zip (a union of DataFrames puts partition ``i`` of each in
different tasks). Data enters and leaves as Arrow record batches (``mapInArrow``), never one
Python object per row.
"""

from __future__ import annotations

import functools
import itertools
import logging
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from fedla.executors.base import Executor
from fedla.executors.spark_tasks import (
    CHUNK_SCHEMA,
    SiteBundle,
    blocks_to_ipc,
    chunks_to_bundle,
    clears,
    empty_bundle,
    ipc_to_record_batches,
    kept,
    record_batches_to_chunks,
    referenced,
    run_site_batch,
    site_values,
)
from fedla.executors.spark_tree import (
    Collected,
    TreeFold,
    add_site,
    merged,
    spread,
    tree_folds,
)
from fedla.physical_plan import Stage
from fedla.plan import Block, SiteId
from fedla.runtime.errors import InvalidArgumentError
from fedla.runtime.protocol.client import TrafficCounter
from fedla.runtime.protocol.requests import Clear, Request

_LOGGER = logging.getLogger(__name__)

SITE_PREFIX = "spark-"


@dataclass
class _CachedRdd:
    """A cached RDD of site bundles and the (site index, variable) names still alive in it."""

    rdd: Any
    alive: set[tuple[int, str]] = field(default_factory=set)


class SparkExecutor(Executor):
    """``partitions`` sites named ``spark-0`` ... on the Spark session ``spark``.

    Parameters
    ----------
    tenant : str
        The tenant id the tasks' request handlers run under.
    spark : pyspark.sql.SparkSession
        The session whose cluster runs the stages.
    partitions : int, optional
        Number of sites (Spark partitions); default: the session's default parallelism.
    tree_min_partials : int, default 8
        A stage whose sites return more partials than this for one associative combine
        (sums of products, reductions) folds them inside Spark with ``treeAggregate``.
    tree_depth : int, default 2
        The ``depth`` of that ``treeAggregate``.
    """

    def __init__(self, tenant: str, spark: Any, partitions: int | None = None,
                 tree_min_partials: int = 8, tree_depth: int = 2) -> None:
        super().__init__(tenant)
        self.spark = spark
        self._sc = spark.sparkContext
        count = self._sc.defaultParallelism if partitions is None else partitions
        if not isinstance(count, int) or count < 1:
            raise InvalidArgumentError(
                f"The 'partitions' parameter of SparkExecutor must be an int in the range "
                f"[1, inf). Got {partitions!r} instead."
            )
        for name, value in (("tree_min_partials", tree_min_partials), ("tree_depth", tree_depth)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidArgumentError(
                    f"The {name!r} parameter of SparkExecutor must be an int in the range "
                    f"[1, inf). Got {value!r} instead."
                )
        self.partitions = count
        self.tree_min_partials = tree_min_partials
        self.tree_depth = tree_depth
        self._sites = [SiteId(f"{SITE_PREFIX}{i}") for i in range(count)]
        self._cached: dict[int, _CachedRdd] = {}
        self._where: dict[tuple[int, str], int] = {}
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._traffic = {site: TrafficCounter() for site in self._sites}
        self.jobs = 0
        """Spark jobs run for stages so far (one per stage that has site work)."""
        self.tree_combines = 0
        """Combines whose partials were folded inside Spark by ``treeAggregate`` so far."""

    @property
    def sites(self) -> list[SiteId]:
        """``spark-0`` ... ``spark-{partitions-1}``."""
        return list(self._sites)

    def site_index(self, site: SiteId) -> int:
        """The partition index of ``site``."""
        if not site.startswith(SITE_PREFIX) or site not in self._traffic:
            raise InvalidArgumentError(
                f"{site!r} is not a site of this Spark executor; it has {', '.join(self._sites)}"
            )
        return int(site[len(SITE_PREFIX):])

    # ----- stages
    def _run_batches(self, stage: Stage, batches: dict[SiteId, list[Request]]
                     ) -> dict[SiteId, list[Any]]:
        """Run ``stage`` as one Spark job; variables it drops are cleared before they are cached.

        Each site's batch ends with a CLEAR of ``stage.drops``, so the task does not put the
        plan's dead intermediates into the cached RDD (pickled, and held until the plan ends).
        """
        ends = {site: [Clear(tuple(stage.drops[site]))] if stage.drops.get(site) else []
                for site in batches}
        sent, skip = self._with_deferred({site: [*requests, *ends[site]]
                                          for site, requests in batches.items()})
        results = self._checked(self._call_sites(sent, self._folds(stage)), skip)
        return {site: site_results[:len(site_results) - len(ends[site])]
                for site, site_results in results.items()}

    def _folds(self, stage: Stage) -> list[TreeFold]:
        index = {site: self.site_index(site) for site in stage.sites}
        return tree_folds(stage, index, self.tree_min_partials)

    def _call_all(self, batches: dict[SiteId, list[Request]]) -> dict[SiteId, list[Any]]:
        return self._call_sites(batches, [])

    def _call_sites(self, batches: dict[SiteId, list[Request]], folds: list[TreeFold]
                    ) -> dict[SiteId, list[Any]]:
        front: dict[SiteId, list[Clear]] = {}
        work: dict[int, list[Request]] = {}
        for site, requests in batches.items():
            index = self.site_index(site)
            front[site], rest = clears(requests)
            self._clear(index, front[site])
            if rest:
                work[index] = rest
            traffic = self._traffic[site]
            traffic.calls += 1
            traffic.requests += len(requests)
        results = self._run_job(work, folds) if work else {}
        out: dict[SiteId, list[Any]] = {}
        for site in batches:
            index = self.site_index(site)
            out[site] = [None] * len(front[site]) + results.get(index, [])
        return out

    def _run_job(self, work: dict[int, list[Request]], folds: list[TreeFold]
                 ) -> dict[int, list[Any]]:
        """One Spark job running every site's batch; returns each site's results.

        The results come back with ``collect``, or with ``treeAggregate`` folding the partials
        of ``folds`` on the way.
        """
        with self._lock:
            needed = sorted({self._where[(index, name)] for index, requests in work.items()
                             for name in referenced(requests) if (index, name) in self._where})
            inputs = [self._cached[number].rdd for number in needed]
        base = functools.reduce(lambda a, b: a.zip(b), inputs) if inputs else self._empty()
        rdd = _one_per_partition(base.mapPartitions(
            functools.partial(run_site_batch, self.tenant, work), preservesPartitioning=True
        ))
        left = {index: kept(requests) for index, requests in work.items()}
        if any(left.values()):
            # Cached for later stages; else the collect below runs in the same Python pass
            # (a cached PythonRDD makes each task hand its bundle to a second Python worker).
            rdd = rdd.persist(_storage_level())
        self.jobs += 1
        if folds:
            collected = rdd.mapPartitionsWithIndex(_indexed_results).treeAggregate(
                Collected({}, [None] * len(folds)), functools.partial(add_site, folds),
                functools.partial(merged, folds), depth=self.tree_depth,
            )
            bundles = spread(folds, collected)
            self.tree_combines += len(folds)
        else:
            bundles = dict(enumerate(rdd.map(lambda bundle: bundle.results).collect()))
        results = {index: bundles[index] for index in work}
        for index, requests in work.items():
            self._clear(index, [request for request in requests if isinstance(request, Clear)])
        if any(left.values()):
            self._register(rdd, left)
        return results

    def _register(self, rdd: Any, names: dict[int, set[str]]) -> None:
        """Note where the variables a job created live; unpersist RDDs nothing lives in."""
        number = next(self._ids)
        entry = _CachedRdd(rdd, {(index, name) for index, made in names.items() for name in made})
        with self._lock:
            for key in entry.alive:
                previous = self._where.get(key)
                if previous is not None:
                    self._forget(previous, key)
                self._where[key] = number
            self._cached[number] = entry
            if not entry.alive:
                self._drop(number)

    def adopt(self, rdd: Any, names: dict[int, set[str]]) -> None:
        """Take ``rdd`` (cached, one ``SiteBundle`` per partition) as holding ``names``."""
        self._register(rdd, names)

    def _clear(self, index: int, requests: list[Clear]) -> None:
        with self._lock:
            for request in requests:
                if request.all:
                    keys = [key for key in self._where if key[0] == index]
                else:
                    keys = [(index, name) for name in request.vars]
                for key in keys:
                    number = self._where.pop(key, None)
                    if number is not None:
                        self._forget(number, key)

    def _forget(self, number: int, key: tuple[int, str]) -> None:
        entry = self._cached[number]
        entry.alive.discard(key)
        if not entry.alive:
            self._drop(number)

    def _drop(self, number: int) -> None:
        entry = self._cached.pop(number)
        entry.rdd.unpersist(blocking=False)

    def _empty(self) -> Any:
        return _one_per_partition(
            self._sc.parallelize(range(self.partitions), self.partitions)
            .mapPartitions(empty_bundle, preservesPartitioning=True)
        )

    def cached_rdds(self) -> int:
        """Cached RDDs holding site variables now (each is unpersisted when its last is cleared)."""
        with self._lock:
            return len(self._cached)

    def stage_note(self, stage: Stage) -> str:
        """The Spark job of ``stage``: which cached RDDs it zips and what it collects."""
        with self._lock:
            needed = {self._where[(index, name)]
                      for site in stage.sites for index in [self.site_index(site)]
                      for step in stage.sites[site].steps for name in step.args
                      if (index, name) in self._where}
        source = (f"zip of {len(needed)} cached RDD(s)" if needed
                  else "an empty RDD (no cached input)")
        folds = self._folds(stage)
        back = (f"treeAggregate returned values (depth {self.tree_depth}), folding the "
                f"{sum(len(fold.partials) for fold in folds)} partials of {len(folds)} "
                f"combine(s) in Spark" if folds else "collect returned values")
        made = {(site, step.output) for site, program in stage.sites.items()
                for step in program.steps}
        made |= {(broadcast.site, broadcast.var) for broadcast in stage.broadcasts}
        dropped = {(site, var) for site, names in stage.drops.items() for var in names}
        cache = "cache the variables it keeps" if made - dropped else "cache nothing"
        return (f"Spark job: {source} -> mapPartitions on {self.partitions} partition(s) "
                f"(fedla kernels) -> {cache}, {back}")

    # ----- data in and out
    def ingest(self, df: Any) -> list[Block]:
        """Cache the rows of ``df`` (numeric columns, or one array column) as row blocks.

        One Spark job: ``mapInArrow`` turns each Arrow record batch into a float64 chunk, each
        partition's chunks become one block, and the blocks' shapes come back. Partition ``q``
        of ``Q`` goes to site ``q * P // Q``, so the sites hold the rows in their order.
        """
        var = f"spark.{uuid.uuid4().hex}"
        chunks = df.mapInArrow(record_batches_to_chunks, CHUNK_SCHEMA).rdd
        count = chunks.getNumPartitions()
        if count == self.partitions:
            bundles = chunks.mapPartitions(functools.partial(chunks_to_bundle, var))
            names = {index: {var} for index in range(count)}
        else:
            bundles = (chunks.mapPartitionsWithIndex(functools.partial(_keyed_blocks, var))
                       .partitionBy(self.partitions,
                                    functools.partial(_site_of, count, self.partitions))
                       .mapPartitions(_merged_bundle, preservesPartitioning=True))
            names = {q * self.partitions // count: set() for q in range(count)}
            for q in range(count):
                names[q * self.partitions // count].add(f"{var}#{q}")
        rdd = _one_per_partition(bundles).persist(_storage_level())
        shapes = rdd.map(lambda bundle: (sorted(bundle.values), bundle.results)).collect()
        self.adopt(rdd, names)
        blocks: list[Block] = []
        offset = 0
        for index, (block_names, block_shapes) in enumerate(shapes):
            for name, shape in zip(sorted(block_names, key=_block_order), block_shapes):
                rows, cols = shape
                blocks.append(Block(self._sites[index], (offset, offset + rows), (0, cols),
                                    name, name))
                offset += rows
        return blocks

    def export(self, blocks: list[Block], ncols: int, rows_per_batch: int = 10_000) -> Any:
        """A DataFrame ``c0 ... c{ncols-1}`` of row ``blocks`` (in site order) held here."""
        names: dict[int, list[str]] = {}
        with self._lock:
            numbers = sorted({self._where[(self.site_index(b.site), b.var)] for b in blocks})
            inputs = [self._cached[number].rdd for number in numbers]
        for block in blocks:
            names.setdefault(self.site_index(block.site), []).append(block.var)
        base = functools.reduce(lambda a, b: a.zip(b), inputs)
        ipc = base.mapPartitions(functools.partial(blocks_to_ipc, names, rows_per_batch))
        schema = ", ".join(f"c{j} double" for j in range(ncols))
        return (self.spark.createDataFrame(ipc, "seq long, data binary")
                .mapInArrow(ipc_to_record_batches, schema))

    # ----- bookkeeping
    def stats(self) -> dict[str, dict[str, int]]:
        """Per site: calls and requests (their data moves inside Spark, not over fedla's wire)."""
        return {site: vars(traffic).copy() for site, traffic in self._traffic.items()}

    def close(self) -> None:
        """Unpersist every RDD this executor cached; the Spark session stays up."""
        with self._lock:
            for number in list(self._cached):
                self._drop(number)
            self._where.clear()

    def site_values(self, variables: dict[int, list[str]]) -> Any:
        """An RDD whose partition ``i`` yields one dict: the values of ``variables[i]`` there.

        For work that runs its own Spark job over the sites' data (REMOTE_SPARK's barrier
        tasks). The cached RDDs holding the variables are zipped, not copied.
        """
        with self._lock:
            missing = [(index, name) for index, names in variables.items() for name in names
                       if (index, name) not in self._where]
            if missing:
                raise InvalidArgumentError(
                    f"site_values: no variable {missing[0][1]!r} at site "
                    f"{self._sites[missing[0][0]]}"
                )
            numbers = sorted({self._where[(index, name)] for index, names in variables.items()
                              for name in names})
            inputs = [self._cached[number].rdd for number in numbers]
        base = functools.reduce(lambda a, b: a.zip(b), inputs)
        return base.mapPartitions(functools.partial(site_values, variables),
                                  preservesPartitioning=True)


def _one_per_partition(rdd: Any) -> Any:
    """``rdd`` serialized one element per batch, so that ``zip`` lines up without reshuffling.

    PySpark zips RDDs directly only when both use the same fixed batch size; ``_reserialize``
    after a ``mapPartitions`` is pipelined into the same Python pass.
    """
    from pyspark.serializers import BatchedSerializer, CPickleSerializer

    return rdd._reserialize(BatchedSerializer(CPickleSerializer(), 1))


def _indexed_results(index: int, bundles: Any) -> Any:
    """The partition's results, keyed by its site index (what ``treeAggregate`` folds)."""
    for bundle in bundles:
        yield index, bundle.results


def _storage_level() -> Any:
    """Memory (spilling to disk), holding the pickled bundles as the JVM's own byte arrays.

    The bundles are pickled by Python already; a serialized level would serialize each again
    with Spark's serializer, and every stage reading the bundle would pay to undo it (about a
    third of the time a task took to read a 400 MB partition, measured on ``local[2]``).
    """
    from pyspark import StorageLevel

    return StorageLevel.MEMORY_AND_DISK_DESER


def _keyed_blocks(var: str, q: int, rows: Any) -> Any:
    for bundle in chunks_to_bundle(f"{var}#{q}", rows):
        yield q, bundle


def _site_of(count: int, partitions: int, q: int) -> int:
    return q * partitions // count


def _merged_bundle(pairs: Any) -> Any:
    merged = SiteBundle()
    for _, bundle in sorted(pairs, key=lambda pair: pair[0]):
        merged.results.extend(bundle.results)
        merged.values.update(bundle.values)
    yield merged


def _block_order(name: str) -> int:
    return int(name.rsplit("#", 1)[1]) if "#" in name else 0
