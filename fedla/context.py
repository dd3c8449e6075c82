"""``Context``: one tenant of the federated sites, and the way federated matrices are made."""

from __future__ import annotations

import logging
import os
import threading
import uuid
import weakref
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from fedla import notebook_display, ops
from fedla.executors import Executor, GrpcExecutor, InProcessExecutor
from fedla.file_reads import read_error, read_options
from fedla.local_workers import LocalWorkerPool
from fedla.lowering import KEPT_PREFIX, RealignmentKey
from fedla.matrix import Matrix, matrix
from fedla.plan import Block, Layout, Partitioning, SiteId
from fedla.runtime.errors import FedlaError, InvalidArgumentError, ShapeMismatchError
from fedla.runtime.lineage import content_key, lineage_key
from fedla.runtime.lineage_cache import LineageCache
from fedla.runtime.privacy import Privacy, PrivacyLevel, of_dataset
from fedla.runtime.protocol.client import ClientTls
from fedla.runtime.protocol.requests import Clear, Metadata, Put, Read, Request

_LOGGER = logging.getLogger(__name__)

Range = tuple[tuple[int, int], tuple[int, int]]

DEFAULT_RESULT_CACHE_BYTES = 256 * 1024**2
"""Default ``Context(cache_mem=...)``: aggregates kept at the coordinator."""


class Context:
    """A tenant: its id, the sites it uses, and optionally its own local sites.

    Parameters
    ----------
    local_workers : int, optional
        Start this many local sites (the embedded default): ``fedla worker`` processes on free
        loopback ports, or with ``executor="in-process"`` request handlers in this process. They
        stop when the context closes.
    workers : sequence of str, optional
        Addresses (``host:port``) of running workers, used by ``scatter``.
    executor : {"grpc", "in-process", "spark"}, default "grpc"
        How sites run: ``fedla worker`` daemons over gRPC, ``RequestHandler`` objects in this
        process (the same worker code without a network; for local data and tests), or Spark
        tasks on the partitions of cached RDDs (``fedla.executors.spark_executor``). In-process
        sites are named ``in-process-0`` ... and share ``data_dir``; Spark sites are named
        ``spark-0`` ..., ``local_workers`` of them (default: the session's parallelism).
    data_dir : str or Path, optional
        Data directory of the local sites (default: a fresh temporary directory).
    tenant : str, optional
        Tenant id sent with every request to workers without credentials (default: a random
        UUID). A worker with credentials ignores it and takes the tenant from ``token`` or the
        client certificate.
    token : str, optional
        Bearer token for workers started with ``--token-file`` (``fedla token add`` makes
        one); default: the environment variable ``FEDLA_TOKEN``. Sent as call metadata on every
        request; it is the tenant's credential, so keep it secret.
    tls_ca : str or Path, optional
        CA certificate (PEM) that signed the workers' certificates; connect over TLS to workers
        started with ``--tls-cert``.
    tls_cert, tls_key : str or Path, optional
        Client certificate and key (PEM) for workers started with ``--tls-client-ca``; the
        certificate's common name is the tenant.
    allow_modules : sequence of str
        Extra packages whose registered functions (``@remote_function``) local sites may call
        by reference in EXEC_UDF (``fedla worker --allow-module``).
    timeout : float, optional
        Overall deadline in seconds for one call to a worker; by default none. A worker that
        stops answering is detected by gRPC keepalive within 30 s either way.
    cache_mem : int
        Bytes of aggregates (``X.T @ X``, column means, ...) kept at the coordinator, so that
        computing the same expression again in this Context costs no round trip; 0 disables it.
    local_worker_options : sequence of str
        Extra ``fedla worker`` options for the local workers, e.g. ``["--cache-mem", "64MB"]``.
    spark : pyspark.sql.SparkSession, optional
        The session of ``executor="spark"`` (``fl.from_spark`` makes such a Context for you).

    Notes
    -----
    Remote variables live as long as the matrices that name them: when a matrix made by
    ``federated`` or ``scatter`` becomes unreachable, its variables are cleared with the next
    batch sent to their site (``flush`` sends such releases at once); ``close`` clears all.
    A Context may be used from several threads: every ``compute()`` has its own requests and
    its own names for intermediates.

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
        executor: Literal["grpc", "in-process", "spark"] = "grpc",
        token: str | None = None,
        tls_ca: str | Path | None = None,
        tls_cert: str | Path | None = None,
        tls_key: str | Path | None = None,
        spark: Any = None,
    ) -> None:
        self.tenant = tenant or uuid.uuid4().hex
        self.timeout = timeout
        self._pool: LocalWorkerPool | None = None
        self.executor: Executor
        if executor == "in-process":
            if workers:
                raise InvalidArgumentError(
                    "executor='in-process' runs its own sites; it cannot use workers=[...]"
                )
            self.executor = InProcessExecutor(self.tenant, local_workers or 1, data_dir,
                                              tuple(allow_modules))
            self._data_dir: Path | None = self.executor.data_dir
        elif executor == "grpc":
            if local_workers:
                self._pool = LocalWorkerPool(local_workers, data_dir, tuple(allow_modules),
                                             options=tuple(local_worker_options))
            addresses = list(workers) + (self._pool.addresses if self._pool else [])
            tls = (ClientTls(tls_ca, tls_cert, tls_key)
                   if (tls_ca, tls_cert, tls_key) != (None, None, None) else None)
            self.executor = GrpcExecutor(self.tenant, addresses, timeout,
                                         token=token or os.environ.get("FEDLA_TOKEN"), tls=tls)
            self._data_dir = self._pool.data_dir if self._pool else None
        elif executor == "spark":
            if spark is None or workers:
                raise InvalidArgumentError(
                    "executor='spark' runs its sites as partitions of Spark RDDs: pass the "
                    "SparkSession as spark=..., and no workers=[...]"
                )
            from fedla.executors.spark_executor import SparkExecutor  # pyspark is optional

            self.executor = SparkExecutor(self.tenant, spark, local_workers)
            self._data_dir = None
        else:
            raise InvalidArgumentError(
                f"executor must be 'grpc', 'in-process' or 'spark'; got {executor!r}"
            )
        self.workers: list[str] = list(self.executor.sites)
        self.results = LineageCache(cache_mem)
        self._holders: Counter[tuple[str, str]] = Counter()
        self._holders_lock = threading.Lock()
        self._used: set[SiteId] = set()
        self._leaves: Counter[str] = Counter()  # live federated inputs per lineage key
        self._realigned: dict[RealignmentKey, Layout] = {}
        self.leaf_privacy: dict[tuple[SiteId, str], Privacy] = {}
        """Privacy descriptors of restricted federated inputs, by (site, variable)."""
        self._reads: dict[tuple[str, str], tuple[Read, str]] = {}
        """The READ that made each held federated input, and its file's fingerprint."""
        self._closed = False

    @property
    def data_dir(self) -> Path:
        """The data directory of the local sites (where their READs look)."""
        if self._data_dir is None:
            raise InvalidArgumentError("this Context has no local workers, hence no data_dir")
        return self._data_dir

    # ----- federated matrices
    def federated(
        self,
        paths: Sequence[str] | None = None,
        *,
        addresses: Sequence[str] | None = None,
        ranges: Sequence[Range] | None = None,
        format: str = "",
        options: dict[str, str | bool | int] | None = None,
        axis: int = 0,
    ) -> Matrix:
        """A federated matrix over files at sites, each given as ``"site/path"``.

        Parameters
        ----------
        paths : sequence of str
            ``"host:port/path"`` per file (or an in-process site's name instead of
            ``host:port``); the path is relative to the worker's ``--data-dir``.
        addresses : sequence of str, optional
            The same, SystemDS's name for it (use one of ``paths`` and ``addresses``).
        ranges : sequence of ((int, int), (int, int)), optional
            SystemDS style ``((row_begin, col_begin), (row_end, col_end))`` per file, end
            exclusive; they must tile the matrix by rows or by columns and match each file's
            shape. Without them the files are stacked along ``axis`` in the given order.
        format : str, default ""
            ``csv``, ``npy``, ``mtx`` or ``parquet``; empty: from the file name's extension.
        options : dict, optional
            csv options: ``header`` (bool, default False: the first row is data) and
            ``delimiter`` (one character, default ``","``).
        axis : {0, 1}, default 0
            Stack the files by rows (0) or columns (1) when no ``ranges`` are given.

        Returns
        -------
        Matrix
            A lazy matrix whose blocks stay at the sites.

        Raises
        ------
        DataFileNotFoundError, InvalidArgumentError, AccessDeniedError
            When a READ fails; the message names the site and the file (``READ of 'X.csv' at
            site 10.0.0.5:8001 failed: ...``). A csv whose first row is text above numbers
            says so and suggests ``options={"header": True}``.
        """
        self.ensure_open()
        locations = list(addresses if addresses is not None else paths or [])
        if not locations:
            raise InvalidArgumentError("federated() needs at least one 'host:port/path'")
        if axis not in (0, 1):
            raise InvalidArgumentError(f"federated(): axis must be 0 or 1; got {axis!r}")
        reads: list[tuple[SiteId, Read]] = []
        for location in locations:
            site, sep, path = location.partition("/")
            if not sep or not path or (":" not in site and site not in self.workers):
                raise InvalidArgumentError(
                    f"federated location {location!r} must look like 'host:port/path/in/data_dir'"
                )
            spelled = read_options(options)
            var = lineage_key("read", site, path, format, sorted(spelled.items()))
            reads.append((SiteId(site), Read(var, path, format, spelled)))
        names = [(site, request.var) for site, request in reads]
        try:
            metas = self._send_held(names, [(site, request) for site, request in reads])
        except FedlaError as error:
            raise read_error(error, reads) from error
        try:
            shapes = [meta.shape for meta in metas]
            if ranges is None:
                ranges = _stacked_ranges(shapes, axis, locations)
            elif len(ranges) != len(locations):
                raise InvalidArgumentError(
                    f"federated() got {len(ranges)} ranges for {len(locations)} locations"
                )
            blocks = []
            for (site, read), meta, rng, location in zip(reads, metas, ranges, locations):
                (r0, c0), (r1, c1) = rng
                if (r1 - r0, c1 - c0) != meta.shape:
                    raise ShapeMismatchError(
                        f"range {rng} describes a {r1 - r0}x{c1 - c0} block but {location!r} holds "
                        f"{meta.shape[0]}x{meta.shape[1]}"
                    )
                blocks.append(Block(site, (r0, r1), (c0, c1), read.var,
                                    lineage_key("read", meta.fingerprint)))
                self._note_privacy(site, read, meta)
                self._reads[(str(site), read.var)] = (read, meta.fingerprint)
            dtype = np.result_type(*[np.dtype(meta.dtype) for meta in metas])
            nnz = sum(meta.nnz for meta in metas) if all(meta.nnz >= 0 for meta in metas) else -1
            return self._federated_matrix(blocks, dtype, nnz, axis)
        except BaseException:  # no matrix took the hold: give it back
            self._release(names)
            raise

    def _note_privacy(self, site: SiteId, read: Read, meta: Metadata) -> None:
        """Keep the privacy level a worker reported for a READ, for ``check_plan``."""
        level = PrivacyLevel(meta.privacy or "public")
        privacy = of_dataset(read.path, level, meta.min_rows, rows=meta.shape[0])
        if privacy.public:
            self.leaf_privacy.pop((site, read.var), None)
        else:
            self.leaf_privacy[(site, read.var)] = privacy

    def scatter(
        self,
        data: Any,
        parts: int | None = None,
        axis: int = 0,
        sizes: Sequence[int] | None = None,
        like: Matrix | None = None,
    ) -> Matrix:
        """PUT local data to the sites as a federated matrix.

        The data is cut into ``parts`` contiguous blocks of near-equal size along ``axis``
        (default: one per site) or blocks of the given ``sizes``; block ``i`` goes to site
        ``i % len(workers)``. With ``like`` (a row-partitioned federated matrix of as many
        rows), row block ``i`` goes where ``like``'s block ``i`` is: labels kept at the sites
        of their features.
        """
        self.ensure_open()
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
        sites: list[str] = list(self.workers)
        if like is not None:
            layout = like.node.layout
            if (like.context is not self or layout is None
                    or layout.partitioning is not Partitioning.ROW or axis != 0
                    or like.shape[0] != length):
                raise InvalidArgumentError(
                    f"scatter(like=...) needs a row-partitioned federated input of this Context "
                    f"with {length} rows (and axis=0); got {like!r}"
                )
            sizes = [blk.rows[1] - blk.rows[0] for blk in layout.blocks]
            sites = [blk.site for blk in layout.blocks]
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
        blocks, puts = [], []
        for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
            lo, hi = int(lo), int(hi)
            piece = value[lo:hi] if axis == 0 else value[:, lo:hi]
            if sp.issparse(piece):
                piece = sp.csr_array(piece)
            key = lineage_key("put", content_key(piece))
            site = SiteId(sites[i % len(sites)])
            puts.append((site, Put(key, piece)))
            rows = (lo, hi) if axis == 0 else (0, value.shape[0])
            cols = (0, value.shape[1]) if axis == 0 else (lo, hi)
            blocks.append(Block(site, rows, cols, key, key))
        names = [(block.site, block.var) for block in blocks]
        self._send_held(names, puts)
        nnz = int(value.nnz) if sp.issparse(value) else -1
        try:
            return self._federated_matrix(blocks, value.dtype, nnz, axis)
        except BaseException:  # no matrix took the hold: give it back
            self._release(names)
            raise

    def restorable(self, site: SiteId, variables: Sequence[str]) -> bool:
        """Whether ``restore`` can recreate ``variables`` at ``site`` (each came from a READ)."""
        with self._holders_lock:
            return all((str(site), var) in self._reads for var in variables)

    def restore(self, site: SiteId, variables: Sequence[str]) -> None:
        """READ ``variables`` again at ``site``, whose worker restarted and holds none of them.

        Only inputs a READ created can come back: they are the site's own files. Data this
        Context sent (``scatter``) or moved between sites (a realignment) is not kept here, so
        ``restorable`` is False for it. The files must be the ones read before (same
        fingerprint: path, size, modification time, options): training on a site whose data
        changed meanwhile would mix two datasets without anyone noticing.

        Raises
        ------
        InvalidArgumentError
            When a variable did not come from a READ, or its file changed.
        WorkerUnavailableError
            When the site does not answer (yet).
        """
        with self._holders_lock:
            recipes = [self._reads.get((str(site), var)) for var in variables]
        missing = [var for var, recipe in zip(variables, recipes) if recipe is None]
        if missing:
            raise InvalidArgumentError(
                f"cannot restore {missing} at site {site}: only federated inputs read from the "
                "site's files (Context.federated) can be read again"
            )
        reads = [recipe for recipe in recipes if recipe is not None]
        metas = self.executor.call_all({site: [read for read, _ in reads]})[site]
        for (read, fingerprint), meta in zip(reads, metas):
            if meta.fingerprint != fingerprint:
                raise InvalidArgumentError(
                    f"cannot restore {read.path!r} at site {site}: the file changed since it was "
                    "read (size, modification time or format options differ)"
                )
            self._note_privacy(site, read, meta)

    def adopt(self, blocks: list[Block], dtype: Any, axis: int = 0) -> Matrix:
        """A federated matrix over ``blocks`` that the executor already holds at the sites.

        Used for data that entered the sites another way than READ or PUT (a Spark ingest);
        the matrix holds the blocks' variables like any other and releases them when collected.
        """
        self.ensure_open()
        names = [(block.site, block.var) for block in blocks]
        with self._holders_lock:
            self._holders.update(names)
        self._used.update(block.site for block in blocks)
        try:
            return self._federated_matrix(list(blocks), dtype, -1, axis)
        except BaseException:  # no matrix took the hold: give it back
            self._release(names)
            raise

    def flush(self) -> None:
        """Send requests waiting for the next batch (releases of unreachable matrices) now."""
        self.executor.flush_deferred()

    def _send_held(self, names: Sequence[tuple[str, str]],
                   requests: list[tuple[SiteId, Request]]) -> list[Any]:
        """Send the READs/PUTs creating ``names``, counted as held from before they go.

        Holding first matters: an unreachable matrix over the same variables may be collected
        at any moment, and its release must not be queued after the new matrix's PUT while the
        new matrix does not count yet. The hold passes to the matrix (``_federated_matrix``).
        Returns one result per request, in order.
        """
        with self._holders_lock:
            self._holders.update(names)
        batches: dict[SiteId, list[Request]] = {}
        for site, request in requests:
            batches.setdefault(site, []).append(request)
            self._used.add(site)
        try:
            results = self.executor.call_all(batches)
        except BaseException:
            self._release(names)
            raise
        positions = {site: iter(site_results) for site, site_results in results.items()}
        return [next(positions[site]) for site, _ in requests]

    def _release(self, names: Sequence[tuple[str, str]]) -> None:
        if self._closed:
            return
        with self._holders_lock:
            self._holders.subtract(names)
            unheld = [name for name in set(names) if self._holders[name] <= 0]
            for name in unheld:
                del self._holders[name]
                self._reads.pop(name, None)
        for site, var in unheld:
            self.executor.defer(SiteId(site), Clear((var,)))

    def _federated_matrix(self, blocks: list[Block], dtype: Any, nnz: int, axis: int) -> Matrix:
        blocks.sort(key=lambda b: (b.rows[0], b.cols[0]))
        partitioning = _partitioning_of(blocks, Partitioning.ROW if axis == 0 else Partitioning.COL)
        node = ops.federated_leaf(Layout(partitioning, tuple(blocks)), dtype, nnz)
        with self._holders_lock:
            self._leaves[node.key] += 1
        weakref.finalize(node, self._release_leaf, node.key,
                         [(block.site, block.var) for block in blocks])
        return Matrix(node, self)

    def _release_leaf(self, key: str, names: list[tuple[str, str]]) -> None:
        """Release an unreachable federated input's blocks (and kept realignments of it).

        Equal inputs share a lineage key; the realignments go with the last of them.
        """
        kept: list[tuple[str, str]] = []
        with self._holders_lock:
            self._leaves[key] -= 1
            if self._leaves[key] <= 0:
                del self._leaves[key]
                for realignment in [k for k in self._realigned if k[0] == key]:
                    layout = self._realigned.pop(realignment)
                    kept.extend(_kept_names(layout))
        self._release([*names, *kept])

    def realignments(self) -> dict[RealignmentKey, Layout]:
        """Realignments of federated inputs kept at the sites by earlier plans."""
        with self._holders_lock:
            return dict(self._realigned)

    def keep_realignments(self, kept: list[tuple[RealignmentKey, Layout]], done: bool) -> None:
        """Hold the realignments a plan made (``done``) for as long as their input lives.

        Realignments of a plan that failed, or of an input that is gone, are released. One made
        again by a concurrent plan has the same variable names and is simply held already.
        """
        unused: list[tuple[str, str]] = []
        with self._holders_lock:
            for key, layout in kept:
                if key in self._realigned:
                    continue
                if done and key[0] in self._leaves:
                    self._realigned[key] = layout
                    self._holders.update(_kept_names(layout))
                else:
                    unused.extend(_kept_names(layout))
        if unused:
            self._release(unused)

    @property
    def closed(self) -> bool:
        """Whether ``close`` was called."""
        return self._closed

    def ensure_open(self) -> None:
        """Raise ``InvalidArgumentError`` if this Context was closed."""
        if self._closed:
            raise InvalidArgumentError("this Context is closed")

    # ----- statistics and lifetime
    def stats(self) -> dict[str, dict[str, int]]:
        """Calls, requests and bytes sent/received per site, since this Context began."""
        return dict(self.executor.stats())

    def close(self) -> None:
        """Drop this tenant's variables at its sites, close the channels, stop local sites."""
        if self._closed:
            return
        try:
            self.executor.drop_deferred()
            sites = self._used | {SiteId(site) for site in self.executor.stats()}
            if sites:
                self.executor.call_all({site: [Clear(all=True)] for site in sites})
        except FedlaError as exc:
            _LOGGER.warning("could not clear this tenant's variables at every site: %s", exc)
        finally:
            self._closed = True
            self.executor.close()
            if self._pool is not None:
                self._pool.close()

    def __repr__(self) -> str:
        state = "open" if not self._closed else "closed"
        return f"Context(tenant={self.tenant!r}, workers={self.workers!r}, {state})"

    def _repr_html_(self) -> str:
        """Jupyter's view: the tenant and each worker with its state and traffic so far."""
        stats = self.executor.stats()
        return notebook_display.context_html(
            self.tenant, not self._closed,
            [(site, self._worker_state(site), stats.get(site, {})) for site in self.workers],
        )

    def _worker_state(self, site: str) -> str:
        """What this Context knows of a worker without asking it (no call is made)."""
        if self._closed:
            return "released"
        if isinstance(self.executor, InProcessExecutor):
            return "in-process site"
        if self._pool is not None and site in self._pool.addresses:
            process = self._pool.processes[self._pool.addresses.index(site)]
            code = process.poll()
            return (f"local process {process.pid}, running" if code is None
                    else f"local process {process.pid}, exited with code {code}")
        return "remote, connected" if SiteId(site) in self._used else "remote, not called yet"

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _kept_names(layout: Layout) -> list[tuple[str, str]]:
    return [(block.site, block.var) for block in layout.blocks
            if block.var.startswith(KEPT_PREFIX)]


def _stacked_ranges(shapes: list[tuple[int, ...]], axis: int, locations: list[str]) -> list[Range]:
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
