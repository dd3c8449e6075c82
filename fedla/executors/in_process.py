"""``InProcessExecutor``: sites are ``RequestHandler``s in this process, the code a worker runs.

Values cross the in-process boundary as copies, as they would cross the wire, so a caller that
changes an array it scattered or got back never changes a site's data.
"""

from __future__ import annotations

import concurrent.futures
import copy
import tempfile
from pathlib import Path
from typing import Any

from fedla.executors.base import Executor
from fedla.plan import SiteId
from fedla.runtime.errors import WorkerUnavailableError
from fedla.runtime.protocol.client import TrafficCounter
from fedla.runtime.protocol.requests import ExecInst, Literal, Metadata, Put, Read, Request
from fedla.runtime.worker.principal import Principal
from fedla.runtime.worker.request_handler import RequestHandler, WorkerConfig


class InProcessExecutor(Executor):
    """``n`` in-process sites named ``in-process-0`` ... sharing one data directory."""

    def __init__(self, tenant: str, n: int, data_dir: str | Path | None = None,
                 allowed_modules: tuple[str, ...] = ()) -> None:
        super().__init__(tenant)
        if n < 1:
            raise ValueError(f"an in-process executor needs at least one site; got {n}")
        self._tmp = None if data_dir is not None else tempfile.TemporaryDirectory(prefix="fedla-")
        self.data_dir = Path(data_dir if data_dir is not None else self._tmp.name)  # type: ignore[union-attr]
        config: dict[str, Any] = {"data_dir": self.data_dir}
        if allowed_modules:
            config["allowed_modules"] = (*WorkerConfig(self.data_dir).allowed_modules,
                                         *allowed_modules)
        self._handlers = {SiteId(f"in-process-{i}"): RequestHandler(WorkerConfig(**config))
                          for i in range(n)}
        self._traffic = {site: TrafficCounter() for site in self._handlers}
        self._principal = Principal(tenant)
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=n,
                                                           thread_name_prefix="fedla-site")

    @property
    def sites(self) -> list[SiteId]:
        """``in-process-0`` ... ``in-process-{n-1}``."""
        return list(self._handlers)

    def _call_all(self, batches: dict[SiteId, list[Request]]) -> dict[SiteId, list[Any]]:
        futures = {site: self._pool.submit(self._call, site, requests)
                   for site, requests in batches.items()}
        return {site: future.result() for site, future in futures.items()}

    def _call(self, site: SiteId, requests: list[Request]) -> list[Any]:
        handler = self._handlers.get(site)
        if handler is None:
            raise WorkerUnavailableError(
                f"no in-process site {site!r}; this Context has {', '.join(self._handlers)}"
            )
        results = handler.handle(self._principal, [_copied(request) for request in requests])
        traffic = self._traffic[site]
        traffic.calls += 1
        traffic.requests += len(requests)
        for request, result in zip(requests, results):
            if isinstance(result, Metadata) and isinstance(request, (Read, ExecInst)):
                hits = "read" if isinstance(request, Read) else "exec"
                name = f"{hits}_{'hits' if result.reused else 'misses'}"
                setattr(traffic, name, getattr(traffic, name) + 1)
        return [copy.deepcopy(result) for result in results]

    def stats(self) -> dict[str, dict[str, int]]:
        """Per site: calls, requests and cache hits (no bytes cross a network here)."""
        return {site: vars(traffic).copy() for site, traffic in self._traffic.items()}

    def close(self) -> None:
        """Stop the site threads and remove a temporary data directory."""
        self._pool.shutdown(wait=True)
        if self._tmp is not None:
            self._tmp.cleanup()


def _copied(request: Request) -> Request:
    if isinstance(request, Put):
        return Put(request.var, copy.deepcopy(request.value))
    if isinstance(request, ExecInst):
        operands = tuple(Literal(copy.deepcopy(op.value)) if isinstance(op, Literal) else op
                         for op in request.inputs)
        return ExecInst(request.op, operands, request.output, copy.deepcopy(request.attrs))
    return request
