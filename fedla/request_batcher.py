"""Collects requests per worker and sends each worker's batch in one call, all workers at once."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fedla.runtime.protocol.client import WorkerClient
from fedla.runtime.protocol.requests import Request


class PendingResult:
    """The result of one queued request, available after the batcher flushed it."""

    __slots__ = ("value", "done")

    def __init__(self) -> None:
        self.value: Any = None
        self.done = False


class RequestBatcher:
    """Queues requests per worker address; ``flush`` runs every queue as one batch per worker.

    Requests for one worker keep their order; the workers' batches run concurrently. Requests
    queued with ``defer`` (e.g. CLEARs of finished intermediates) ride along with the next
    batch to that worker instead of costing a round trip of their own.
    """

    def __init__(
        self, tenant: str, client_for: Callable[[str], WorkerClient], pool: ThreadPoolExecutor
    ) -> None:
        self.tenant = tenant
        self._client_for = client_for
        self._pool = pool
        self._queues: dict[str, list[tuple[Request, PendingResult]]] = defaultdict(list)
        self._deferred: dict[str, list[Request]] = defaultdict(list)
        self._deferred_lock = threading.Lock()

    def add(self, address: str, request: Request) -> PendingResult:
        """Queue ``request`` for the worker at ``address``."""
        pending = PendingResult()
        self._queues[address].append((request, pending))
        return pending

    def defer(self, address: str, request: Request) -> None:
        """Send ``request`` first thing in the next batch to ``address``.

        Safe from any thread: garbage collection of a matrix defers its releases.
        """
        with self._deferred_lock:
            self._deferred[address].append(request)

    def take_deferred(self) -> dict[str, list[Request]]:
        """Remove and return every deferred request (for a final flush at close)."""
        with self._deferred_lock:
            deferred, self._deferred = dict(self._deferred), defaultdict(list)
        return deferred

    def flush(self) -> None:
        """Send all queued requests; raises the first worker error after all calls returned."""
        queues, self._queues = dict(self._queues), defaultdict(list)
        if not queues:
            return
        futures = {}
        for address, queue in queues.items():
            with self._deferred_lock:
                deferred = self._deferred.pop(address, [])
            requests = deferred + [request for request, _ in queue]
            client = self._client_for(address)
            future = self._pool.submit(client.execute, self.tenant, requests)
            futures[address] = (len(deferred), future)
        errors = []
        for address, (skip, future) in futures.items():
            try:
                results = future.result()
            except Exception as exc:  # noqa: BLE001 - re-raised below once all calls finished
                errors.append(exc)
                continue
            for (_, pending), result in zip(queues[address], results[skip:]):
                pending.value = result
                pending.done = True
        if errors:
            raise errors[0]
