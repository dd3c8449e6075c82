"""``Context``: one tenant of the federated workers, and the way federated matrices are made."""

from __future__ import annotations

import logging
import threading
import uuid
import weakref
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from fedla.local_workers import LocalWorkerPool
from fedla.matrix import Matrix, matrix
from fedla.plan import Block, Layout, Node, Partitioning, content_key, lineage_key
from fedla.request_batcher import RequestBatcher
from fedla.runtime.errors import FedlaError, InvalidArgumentError, ShapeMismatchError
from fedla.runtime.lineage_cache import LineageCache
from fedla.runtime.protocol.client import WorkerClient
from fedla.runtime.protocol.requests import Clear, Put, Read

_LOGGER = logging.getLogger(__name__)

Range = tuple[tuple[int, int], tuple[int, int]]

DEFAULT_RESULT_CACHE_BYTES = 256 * 1024**2
"""Default ``Context(cache_mem=...)``: aggregates kept at the coordinator."""


class Context:
    """A tenant: its id, persistent channels to workers, and optionally its own loopback workers.

    Parameters
    ----------
    local_workers : int, optional
        Start this many ``fedla worker`` processes on free loopback ports (the embedded default);
        they are stopped when the context closes.
    workers : sequence of str, optional
        Addresses (``host:port``) of running workers, used by ``scatter``.
    data_dir : str or Path, optional
        Data directory for the local workers (default: a fresh temporary directory).
    tenant : str, optional
        Tenant id sent with every request (default: a random UUID).
    allow_modules : sequence of str
        Extra packages local workers may call by reference in EXEC_UDF.
    timeout : float, optional
        Seconds a call to a worker may take before failing.
    cache_mem : int
        Bytes of aggregates (``X.T @ X``, column means, ...) kept at the coordinator, so that
        computing the same expression again in this Context costs no round trip; 0 disables it.
    local_worker_options : sequence of str
        Extra ``fedla worker`` options for the local workers, e.g. ``["--cache-mem", "64MB"]``.

    Notes
    -----
    Remote variables live as long as the matrices that name them: when a matrix made by
    ``federated`` or ``scatter`` becomes unreachable, its variables are cleared with the next
    batch sent to their worker (``flush`` sends such releases at once); ``close`` clears all.

    Examples
    --------
    >>> import numpy as np, fedla as fl
    >>> with fl.Context(local_workers=2) as ctx:
    ...     X = ctx.scatter(np.arange(12.0).reshape(6, 2))
    ...     (X.T @ X).compute()
    array([[220., 250.],
           [250., 286.]])
    """

    def __init__(
        self,
        local_workers: int | None = None,
        workers: Sequence[str] = (),
        data_dir: str | Path | None = None,
        tenant: str | None = None,
        allow_modules: Sequence[str] = (),
        timeout: float | None = None,
        cache_mem: int = DEFAULT_RESULT_CACHE_BYTES,
        local_worker_options: Sequence[str] = (),
    ) -> None:
        self.tenant = tenant or uuid.uuid4().hex
        self.timeout = timeout
        self._clients: dict[str, WorkerClient] = {}
        self._pool: LocalWorkerPool | None = None
        if local_workers:
            self._pool = LocalWorkerPool(
                local_workers, data_dir, tuple(allow_modules), options=tuple(local_worker_options)
            )
        self.workers: list[str] = list(workers) + (self._pool.addresses if self._pool else [])
        self._threads = ThreadPoolExecutor(max_workers=8, thread_name_prefix="fedla-ctx")
        self.batcher = RequestBatcher(self.tenant, self.client, self._threads)
        self.results = LineageCache(cache_mem)
        self._holders: Counter[tuple[str, str]] = Counter()
        self._holders_lock = threading.Lock()
        self._closed = False

    @property
    def data_dir(self) -> Path:
        """The data directory of the local workers (where their READs look)."""
        if self._pool is None:
            raise InvalidArgumentError("this Context has no local workers, hence no data_dir")
        return self._pool.data_dir

    def client(self, address: str) -> WorkerClient:
        """The persistent client of the worker at ``address``."""
        if self._closed:
            raise InvalidArgumentError("this Context is closed")
        client = self._clients.get(address)
        if client is None:
            client = self._clients[address] = WorkerClient(address, timeout=self.timeout)
        return client

    # ----- federated matrices
    def federated(
        self,
        paths: Sequence[str] | None = None,
        *,
        addresses: Sequence[str] | None = None,
        ranges: Sequence[Range] | None = None,
        format: str = "",
        options: dict[str, str] | None = None,
        axis: int = 0,
    ) -> Matrix:
        """A federated matrix over files at workers, each given as ``"host:port/path"``.

        Without ``ranges`` the files are stacked by rows (``axis=0``) or columns (``axis=1``)
        in the given order, their shapes taken from the files. With ``ranges`` (SystemDS style:
        ``((row_begin, col_begin), (row_end, col_end))`` per file, end exclusive) the ranges must
        tile the matrix by rows or by columns and match each file's shape.
        """
        locations = list(addresses if addresses is not None else paths or [])
        if not locations:
            raise InvalidArgumentError("federated() needs at least one 'host:port/path'")
        reads = []
        for location in locations:
            address, sep, path = location.partition("/")
            if not sep or ":" not in address or not path:
                raise InvalidArgumentError(
                    f"federated location {location!r} must look like 'host:port/path/in/data_dir'"
                )
            var = lineage_key("read", address, path, format, sorted((options or {}).items()))
            reads.append((address, Read(var, path, format, dict(options or {}))))
        pending = [self.batcher.add(address, request) for address, request in reads]
        names = [(address, request.var) for address, request in reads]
        self._send_held(names)
        try:
            metas = [p.value for p in pending]
            shapes = [meta.shape for meta in metas]
            if ranges is None:
                ranges = _stacked_ranges(shapes, axis, locations)
            elif len(ranges) != len(locations):
                raise InvalidArgumentError(
                    f"federated() got {len(ranges)} ranges for {len(locations)} locations"
                )
            blocks = []
            for (address, read), meta, rng, location in zip(reads, metas, ranges, locations):
                (r0, c0), (r1, c1) = rng
                if (r1 - r0, c1 - c0) != meta.shape:
                    raise ShapeMismatchError(
                        f"range {rng} describes a {r1 - r0}x{c1 - c0} block but {location!r} holds "
                        f"{meta.shape[0]}x{meta.shape[1]}"
                    )
                blocks.append(Block(address, (r0, r1), (c0, c1), read.var,
                                    lineage_key("read", meta.fingerprint)))
            dtype = np.result_type(*[np.dtype(meta.dtype) for meta in metas])
            nnz = sum(meta.nnz for meta in metas) if all(meta.nnz >= 0 for meta in metas) else -1
            return self._federated_matrix(blocks, dtype, nnz, axis)
        except BaseException:  # no matrix took the hold: give it back
            self._release(names)
            raise

    def scatter(
        self,
        data: Any,
        parts: int | None = None,
        axis: int = 0,
        sizes: Sequence[int] | None = None,
    ) -> Matrix:
        """PUT local data to the workers as a federated matrix.

        The data is cut into ``parts`` contiguous blocks of near-equal size along ``axis``
        (default: one per worker) or blocks of the given ``sizes``; block ``i`` goes to worker
        ``i % len(workers)``.
        """
        if not self.workers:
            raise InvalidArgumentError(
                "scatter needs workers: create the Context with local_workers=N or workers=[...]"
            )
        if axis not in (0, 1):
            raise InvalidArgumentError(f"scatter: axis must be 0 or 1; got {axis!r}")
        value = matrix(data).node.value
        if np.ndim(value) != 2:
            raise InvalidArgumentError("scatter needs a matrix, not a scalar")
        length = value.shape[axis]
        if sizes is None:
            count = len(self.workers) if parts is None else parts
            if not 1 <= count <= length:
                raise InvalidArgumentError(
                    f"scatter: parts must be in [1, {length}] for {length} "
                    f"{'rows' if axis == 0 else 'columns'}; got {count}"
                )
            bounds = np.linspace(0, length, count + 1).round().astype(int)
        else:
            if any(size < 1 for size in sizes) or sum(sizes) != length:
                raise InvalidArgumentError(
                    f"scatter: sizes must be positive and sum to {length}; got {list(sizes)}"
                )
            bounds = np.concatenate([[0], np.cumsum(sizes)])
        blocks, pending = [], []
        for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
            lo, hi = int(lo), int(hi)
            piece = value[lo:hi] if axis == 0 else value[:, lo:hi]
            if sp.issparse(piece):
                piece = sp.csr_array(piece)
            key = lineage_key("put", content_key(piece))
            address = self.workers[i % len(self.workers)]
            pending.append(self.batcher.add(address, Put(key, piece)))
            rows = (lo, hi) if axis == 0 else (0, value.shape[0])
            cols = (0, value.shape[1]) if axis == 0 else (lo, hi)
            blocks.append(Block(address, rows, cols, key, key))
        names = [(block.address, block.var) for block in blocks]
        self._send_held(names)
        nnz = int(value.nnz) if sp.issparse(value) else -1
        try:
            return self._federated_matrix(blocks, value.dtype, nnz, axis)
        except BaseException:  # no matrix took the hold: give it back
            self._release(names)
            raise

    def flush(self) -> None:
        """Send requests waiting for the next batch (releases of unreachable matrices) now."""
        for address, requests in self.batcher.take_deferred().items():
            self.client(address).execute(self.tenant, requests)

    def _send_held(self, names: list[tuple[str, str]]) -> None:
        """Flush the queued READs/PUTs creating ``names``, counted as held from before they go.

        Holding first matters: an unreachable matrix over the same variables may be collected
        at any moment, and its release must not be queued after the new matrix's PUT while the
        new matrix does not count yet. The hold passes to the matrix (``_federated_matrix``).
        """
        with self._holders_lock:
            self._holders.update(names)
        try:
            self.batcher.flush()
        except BaseException:
            self._release(names)
            raise

    def _release(self, names: list[tuple[str, str]]) -> None:
        if self._closed:
            return
        with self._holders_lock:
            self._holders.subtract(names)
            unheld = [name for name in set(names) if self._holders[name] <= 0]
            for name in unheld:
                del self._holders[name]
        for address, var in unheld:
            self.batcher.defer(address, Clear((var,)))

    def _federated_matrix(self, blocks: list[Block], dtype: Any, nnz: int, axis: int) -> Matrix:
        blocks.sort(key=lambda b: (b.rows[0], b.cols[0]))
        partitioning = _partitioning_of(blocks, Partitioning.ROW if axis == 0 else Partitioning.COL)
        shape = (max(b.rows[1] for b in blocks), max(b.cols[1] for b in blocks))
        layout = Layout(partitioning, tuple(blocks))
        key = lineage_key("federated", tuple((b.key, b.rows, b.cols) for b in blocks))
        node = Node("federated", (), (("nnz", nnz),), shape, np.dtype(dtype), partitioning, key,
                    layout=layout)
        weakref.finalize(node, self._release, [(block.address, block.var) for block in blocks])
        return Matrix(node, self)

    # ----- statistics and lifetime
    def stats(self) -> dict[str, dict[str, int]]:
        """Calls, requests and bytes sent/received per worker address, since this Context began."""
        return {address: asdict(client.traffic) for address, client in self._clients.items()}

    def close(self) -> None:
        """Drop this tenant's variables at its workers, close the channels, stop local workers."""
        if self._closed:
            return
        try:
            self.batcher.take_deferred()
            for address in self._clients:
                self.batcher.add(address, Clear(all=True))
            self.batcher.flush()
        except FedlaError as exc:
            _LOGGER.warning("could not clear this tenant's variables at every worker: %s", exc)
        finally:
            self._closed = True
            for client in self._clients.values():
                client.close()
            self._threads.shutdown(wait=True)
            if self._pool is not None:
                self._pool.close()

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _stacked_ranges(shapes: list[tuple[int, ...]], axis: int, locations: list[str]) -> list[Range]:
    if axis not in (0, 1):
        raise InvalidArgumentError(f"federated(): axis must be 0 or 1; got {axis!r}")
    other = 1 - axis
    if len({shape[other] for shape in shapes}) != 1:
        listing = ", ".join(f"{loc} {shape}" for loc, shape in zip(locations, shapes))
        raise ShapeMismatchError(
            f"files stacked along axis {axis} need the same number of "
            f"{'columns' if axis == 0 else 'rows'}; got {listing}"
        )
    ranges: list[Range] = []
    offset = 0
    for shape in shapes:
        if axis == 0:
            ranges.append(((offset, 0), (offset + shape[0], shape[1])))
        else:
            ranges.append(((0, offset), (shape[0], offset + shape[1])))
        offset += shape[axis]
    return ranges


def _partitioning_of(blocks: list[Block], preferred: Partitioning) -> Partitioning:
    """ROW if the blocks tile the rows over all columns, COL if the reverse, else an error.

    A single block tiles both ways; it gets ``preferred``, the axis the caller split along.
    """
    nrows = max(b.rows[1] for b in blocks)
    ncols = max(b.cols[1] for b in blocks)
    candidates = [
        (Partitioning.ROW, lambda b: b.rows, lambda b: b.cols == (0, ncols)),
        (Partitioning.COL, lambda b: b.cols, lambda b: b.rows == (0, nrows)),
    ]
    candidates.sort(key=lambda candidate: candidate[0] is not preferred)
    for partitioning, span, full in candidates:
        ordered = sorted(blocks, key=lambda b: span(b)[0])
        edges = [span(b) for b in ordered]
        total = nrows if partitioning is Partitioning.ROW else ncols
        tiles = edges[0][0] == 0 and edges[-1][1] == total and all(
            a[1] == b[0] for a, b in zip(edges, edges[1:])
        )
        if tiles and all(full(b) for b in blocks):
            return partitioning
    raise InvalidArgumentError(
        "federated ranges must tile the matrix by rows (each block spanning all columns) or by "
        f"columns (each spanning all rows); got {[(b.rows, b.cols) for b in blocks]}"
    )
