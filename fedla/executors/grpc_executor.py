"""``GrpcExecutor``: sites are ``fedla worker`` daemons reached over persistent gRPC channels."""

from __future__ import annotations

import concurrent.futures
import threading
from dataclasses import asdict
from typing import Any

from fedla.executors.base import Executor
from fedla.plan import SiteId
from fedla.runtime.protocol.client import ClientTls, WorkerClient
from fedla.runtime.protocol.requests import Request

WAIT_SLICE_SECONDS = 0.2
"""How often a waiting coordinator looks up from its calls (so Ctrl-C is handled promptly)."""


class GrpcExecutor(Executor):
    """One ``WorkerClient`` per site address; a stage's batches go out concurrently.

    The calling thread waits in short slices, so Ctrl-C interrupts a waiting ``compute()`` at
    once; the channels of the sites still answering are closed, which ends their calls, and are
    opened anew on next use. A frozen worker is detected by the channel's keepalive and reported
    as ``WorkerUnavailableError``.
    """

    def __init__(
        self,
        tenant: str,
        addresses: list[str],
        timeout: float | None = None,
        token: str | None = None,
        tls: ClientTls | None = None,
    ) -> None:
        super().__init__(tenant)
        self.addresses = list(addresses)
        self.timeout = timeout
        self._token = token
        self._tls = tls
        self._clients: dict[SiteId, WorkerClient] = {}
        self._lock = threading.Lock()
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=16,
                                                           thread_name_prefix="fedla-grpc")

    @property
    def sites(self) -> list[SiteId]:
        """The worker addresses given to the Context."""
        return [SiteId(address) for address in self.addresses]

    def client(self, site: SiteId) -> WorkerClient:
        """The persistent client of the worker at ``site``."""
        with self._lock:
            client = self._clients.get(site)
            if client is None:
                client = self._clients[site] = WorkerClient(
                    site, timeout=self.timeout, token=self._token, tls=self._tls
                )
            return client

    def _call_all(self, batches: dict[SiteId, list[Request]]) -> dict[SiteId, list[Any]]:
        if len(batches) == 1 and threading.current_thread() is not threading.main_thread():
            # One site from a thread of the caller's own (FEDERATED paramserv's site threads):
            # Ctrl-C reaches only the main thread, so the hop to the pool that keeps it
            # interruptible would only add a thread switch (~0.2 ms a call).
            ((site, requests),) = batches.items()
            return {site: self.client(site).execute_all(self.tenant, requests,
                                                        cancellable=False)}
        futures = {
            site: self._pool.submit(self.client(site).execute_all, self.tenant, requests,
                                    cancellable=False)
            for site, requests in batches.items()
        }
        pending = set(futures.values())
        try:
            while pending:
                _, pending = concurrent.futures.wait(pending, timeout=WAIT_SLICE_SECONDS)
        except BaseException:
            self._abandon([site for site, future in futures.items() if future in pending])
            raise
        return {site: future.result() for site, future in futures.items()}

    def reconnect(self, site: SiteId) -> None:
        """Close the channel to ``site``; the next call opens a new one (see ``Executor``)."""
        self._abandon([site])

    def _abandon(self, sites: list[SiteId]) -> None:
        """Close the channels of ``sites``, ending their calls; the next use opens new ones."""
        with self._lock:
            clients = [self._clients.pop(site) for site in sites if site in self._clients]
        for client in clients:
            client.close()

    def stats(self) -> dict[str, dict[str, int]]:
        """Per worker: calls, requests, bytes sent/received, READ and lineage cache hits."""
        with self._lock:
            return {site: asdict(client.traffic) for site, client in self._clients.items()}

    def close(self) -> None:
        """Close the channels and the calling threads."""
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()
        self._pool.shutdown(wait=True)
