"""What runs inside Spark tasks: a site's batch on its partition, and the Arrow conversions.

Every function here is shipped to Spark's Python workers, so it imports only the runtime (the
same ``RequestHandler`` and kernel registry a ``fedla worker`` runs) and pyarrow/numpy. A Spark
partition holds one *bundle* per cached RDD: ``SiteBundle(results, values)`` where ``values`` maps
the names of the variables the partition's site created to their values.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from fedla.runtime.protocol.requests import Clear, ExecInst, ExecUdf, Get, Put, Read, Request
from fedla.runtime.worker.principal import Principal
from fedla.runtime.worker.request_handler import RequestHandler, WorkerConfig

CHUNK_SCHEMA = "seq long, nrows long, ncols long, data binary"
"""Rows of the DataFrame ``from_spark`` reads: one row per Arrow record batch, as raw float64."""


@dataclass
class SiteBundle:
    """What one Spark partition holds for one cached RDD: results and created variables."""

    results: list[Any] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)


def partition_id() -> int:
    """The index of the Spark partition this task computes (its site's index)."""
    from pyspark import TaskContext

    context = TaskContext.get()
    return context.partitionId() if context is not None else 0


def referenced(requests: Iterable[Request]) -> set[str]:
    """Names of site variables the requests read."""
    names: set[str] = set()
    for request in requests:
        if isinstance(request, (ExecInst, ExecUdf)):
            names.update(op for op in request.inputs if isinstance(op, str))
        elif isinstance(request, Get):
            names.add(request.var)
    return names


def created(requests: Iterable[Request]) -> set[str]:
    """Names of site variables the requests write."""
    names: set[str] = set()
    for request in requests:
        if isinstance(request, (Put, Read)):
            names.add(request.var)
        elif isinstance(request, ExecInst):
            names.add(request.output)
        elif isinstance(request, ExecUdf):
            names.update(request.outputs)
    return names


def kept(requests: Iterable[Request]) -> set[str]:
    """Names of site variables the requests leave behind: written and not cleared after."""
    names: set[str] = set()
    for request in requests:
        if isinstance(request, Clear):
            names = set() if request.all else names - set(request.vars)
        else:
            names |= created([request])
    return names


def run_site_batch(tenant: str, batches: dict[int, list[Request]],
                   parts: Iterator[Any]) -> Iterator[SiteBundle]:
    """Run this partition's batch with the worker's ``RequestHandler``; yield one bundle.

    ``parts`` yields one element: the zipped bundles of the cached RDDs holding the variables
    the batch reads (nested pairs, as ``RDD.zip`` makes them). Those variables are bound in a
    fresh tenant scope, the batch runs, and the bundle carries each request's result and the
    values of the variables the batch created and did not clear.
    """
    index = partition_id()
    requests = batches.get(index, [])
    inputs: dict[str, Any] = {}
    for bundle in _bundles(parts):
        inputs.update(bundle.values)
    wanted = referenced(requests)
    preload: list[Request] = [Put(name, value) for name, value in inputs.items() if name in wanted]
    with tempfile.TemporaryDirectory(prefix="fedla-spark-") as data_dir:
        handler = RequestHandler(WorkerConfig(Path(data_dir)))
        results = handler.handle(Principal(tenant), [*preload, *requests])[len(preload):]
        scope = handler.config.tenants.scope(tenant)
        alive = set(scope.names())
        values = {name: scope.get(name).value() for name in created(requests) & alive}
    yield SiteBundle(results, values)


def site_values(variables: dict[int, list[str]], parts: Iterator[Any]) -> Iterator[dict[str, Any]]:
    """One dict per partition: the values of ``variables[partition]`` at that site."""
    held: dict[str, Any] = {}
    for bundle in _bundles(parts):
        held.update(bundle.values)
    yield {name: held[name] for name in variables.get(partition_id(), [])}


def _bundles(parts: Iterator[Any]) -> list[SiteBundle]:
    """The bundles of the partition's one (zipped) element.

    The input is read to its end: a Python worker whose input was not consumed exits after the
    task instead of serving the next one, and a fresh worker must import numpy and fedla again.
    """
    return [bundle for item in parts for bundle in _flattened(item)]


def _flattened(item: Any) -> Iterator[SiteBundle]:
    if isinstance(item, SiteBundle):
        yield item
    elif isinstance(item, tuple):
        for part in item:
            yield from _flattened(part)


def empty_bundle(parts: Iterator[Any]) -> Iterator[SiteBundle]:
    """One empty bundle (the base of a stage whose sites read no variable)."""
    for _ in parts:  # consumed, so that the Python worker is reused (see _bundles)
        pass
    yield SiteBundle()


def record_batches_to_chunks(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Each Arrow record batch of numeric columns as one row of raw row-major float64 bytes.

    A single list column (``array<double>``) holds one matrix row per record instead.
    """
    for seq, batch in enumerate(batches):
        block = record_batch_to_block(batch)
        yield pa.RecordBatch.from_pydict(
            {"seq": [seq], "nrows": [block.shape[0]], "ncols": [block.shape[1]],
             "data": [block.tobytes()]},
            schema=pa.schema([("seq", pa.int64()), ("nrows", pa.int64()),
                              ("ncols", pa.int64()), ("data", pa.binary())]),
        )


def record_batch_to_block(batch: pa.RecordBatch) -> np.ndarray:
    """The rows of one record batch as a C-ordered float64 array of shape (rows, columns)."""
    columns = batch.columns
    if len(columns) == 1 and pa.types.is_list(columns[0].type):
        column = columns[0]
        width = len(column[0]) if len(column) else 0
        flat = column.flatten().to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
        return flat.reshape(len(column), width)
    block = np.empty((batch.num_rows, len(columns)), dtype=np.float64)
    for j, column in enumerate(columns):
        block[:, j] = column.to_numpy(zero_copy_only=False)
    return block


def chunks_to_bundle(var: str, rows: Iterator[Any]) -> Iterator[SiteBundle]:
    """Stack a partition's chunk rows (in ``seq`` order) into one block named ``var``."""
    pieces: list[np.ndarray] = []
    width = 0
    for row in sorted(rows, key=lambda row: row.seq):
        width = row.ncols
        pieces.append(np.frombuffer(row.data, dtype=np.float64).reshape(row.nrows, row.ncols))
    block = np.concatenate(pieces) if pieces else np.empty((0, width))
    yield SiteBundle([block.shape], {var: block})


def blocks_to_ipc(names: dict[int, list[str]], rows_per_batch: int,
                  parts: Iterator[Any]) -> Iterator[tuple[int, bytes]]:
    """The partition's row blocks ``names[index]`` as (seq, Arrow IPC stream) pairs.

    Columns are named ``c0`` ... ``c{n-1}``; each pair carries up to ``rows_per_batch`` rows.
    """
    values: dict[str, Any] = {}
    for bundle in _bundles(parts):
        values.update(bundle.values)
    seq = 0
    for name in names.get(partition_id(), []):
        value = values[name]
        block = np.asarray(value.toarray() if hasattr(value, "toarray") else value,
                           dtype=np.float64)
        for lo in range(0, block.shape[0], rows_per_batch):
            piece = block[lo:lo + rows_per_batch]
            batch = pa.RecordBatch.from_arrays(
                [pa.array(piece[:, j]) for j in range(block.shape[1])],
                names=[f"c{j}" for j in range(block.shape[1])],
            )
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, batch.schema) as writer:
                writer.write_batch(batch)
            yield seq, sink.getvalue().to_pybytes()
            seq += 1


def ipc_to_record_batches(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Decode the ``data`` column of (seq, data) rows back into the record batches it holds."""
    for batch in batches:
        for data in batch.column("data").to_pylist():
            yield from pa.ipc.open_stream(data)


def clears(requests: list[Request]) -> tuple[list[Clear], list[Request]]:
    """The CLEARs at the front of a batch, and the rest of it."""
    front = 0
    while front < len(requests) and isinstance(requests[front], Clear):
        front += 1
    return list(requests[:front]), list(requests[front:])  # type: ignore[arg-type]
