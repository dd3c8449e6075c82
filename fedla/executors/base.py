"""The ``Executor`` seam: run one stage's site programs, one batch per site, all sites at once.

A site program becomes protocol requests here, the same for every executor: broadcasts first
(small values inline in the kernel steps that use them, larger ones as a PUT), then the kernel
steps as EXEC_INST, then a GET per returned value. Requests deferred for a site (releases of
matrices that became unreachable) ride at the front of its next batch.
"""

from __future__ import annotations

import abc
import threading
from collections import defaultdict
from typing import Any

import numpy as np

from fedla.lowering import slice_value
from fedla.physical_plan import Stage, ValueId
from fedla.plan import SiteId
from fedla.runtime.errors import FedlaError, RequestSkippedError
from fedla.runtime.lineage_cache import value_nbytes
from fedla.runtime.protocol.codec import INLINE_LIMIT
from fedla.runtime.protocol.requests import Clear, ExecInst, Get, Literal, Put, Request


class Executor(abc.ABC):
    """Runs batches of requests at sites for one tenant; subclasses say how a batch travels."""

    def __init__(self, tenant: str) -> None:
        self.tenant = tenant
        self._deferred: dict[SiteId, list[Request]] = defaultdict(list)
        self._deferred_lock = threading.Lock()

    @property
    @abc.abstractmethod
    def sites(self) -> list[SiteId]:
        """Sites this executor knows (used by ``scatter``)."""

    @abc.abstractmethod
    def _call_all(self, batches: dict[SiteId, list[Request]]) -> dict[SiteId, list[Any]]:
        """Run every site's batch concurrently; one result (or error instance) per request."""

    @abc.abstractmethod
    def stats(self) -> dict[str, dict[str, int]]:
        """Calls, requests, bytes and cache hits per site."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release channels, threads and in-process sites."""

    def stage_note(self, stage: Stage) -> str:
        """How this executor runs ``stage``, for ``explain()``; empty if there is nothing to add."""
        return ""

    # ----- running
    def run(self, stage: Stage, values: dict[ValueId, Any]) -> dict[ValueId, Any]:
        """Run ``stage``'s broadcasts and site programs; returns the values the sites returned."""
        batches = {site: self.site_requests(stage, site, values)
                   for site in set(stage.sites) | {b.site for b in stage.broadcasts}}
        results = self._run_batches(stage, batches)
        returned: dict[ValueId, Any] = {}
        for site, program in stage.sites.items():
            site_results = results[site][len(results[site]) - len(program.returns):]
            for ret, value in zip(program.returns, site_results):
                returned[ret.partial] = value
        return returned

    def _run_batches(self, stage: Stage, batches: dict[SiteId, list[Request]]
                     ) -> dict[SiteId, list[Any]]:
        """Run the batches of ``stage`` (``site_requests`` of each site); their results."""
        return self.call_all(batches)

    @staticmethod
    def site_requests(stage: Stage, site: SiteId, values: dict[ValueId, Any]) -> list[Request]:
        """The requests of ``site``'s part of ``stage``."""
        requests: list[Request] = []
        inline: dict[str, Literal] = {}
        for broadcast in stage.broadcasts:
            if broadcast.site != site:
                continue
            source = broadcast.source
            value = slice_value(values[source.value], source.rows, source.cols)
            if np.ndim(value) == 0 or value_nbytes(value) <= INLINE_LIMIT:
                inline[broadcast.var] = Literal(value)
            else:
                requests.append(Put(broadcast.var, value))
        program = stage.sites.get(site)
        if program is not None:
            for step in program.steps:
                operands = tuple(inline.get(arg, arg) for arg in step.args)
                requests.append(ExecInst(step.kernel, operands, step.output, step.attrs))
            requests.extend(Get(ret.var) for ret in program.returns)
        return requests

    def call_all(self, batches: dict[SiteId, list[Request]]) -> dict[SiteId, list[Any]]:
        """Send each site its batch (after its deferred requests); raise the first failure.

        Every site's call finishes before an error is raised, so no site is left mid-batch.
        """
        sent, skip = self._with_deferred(batches)
        return self._checked(self._call_all(sent), skip)

    def _with_deferred(self, batches: dict[SiteId, list[Request]]
                       ) -> tuple[dict[SiteId, list[Request]], dict[SiteId, int]]:
        """Each site's batch after its deferred requests, and how many went in front."""
        sent: dict[SiteId, list[Request]] = {}
        skip: dict[SiteId, int] = {}
        for site, requests in batches.items():
            deferred = self._take_deferred(site)
            skip[site] = len(deferred)
            sent[site] = deferred + requests
        return sent, skip

    @staticmethod
    def _checked(results: dict[SiteId, list[Any]], skip: dict[SiteId, int]
                 ) -> dict[SiteId, list[Any]]:
        """The results of the callers' requests (deferred ones cut off); raise the first failure."""
        out = {site: site_results[skip[site]:] for site, site_results in results.items()}
        for site_results in out.values():
            for result in site_results:
                if isinstance(result, FedlaError) and not isinstance(result, RequestSkippedError):
                    raise result
        return out

    def send(self, site: SiteId, requests: list[Request]) -> list[Any]:
        """Send one batch to one site; raise its first failure."""
        return self.call_all({site: requests})[site]

    def reconnect(self, site: SiteId) -> None:
        """Forget the connection to ``site``; the next call opens a new one.

        For a site that stopped answering and may be back: a connection that failed waits out
        a growing back-off before it tries again, a new one tries at once. Sites without
        connections (in-process) have nothing to forget.
        """
        return None

    # ----- deferred requests
    def defer(self, site: SiteId, request: Request) -> None:
        """Send ``request`` first thing in the next batch to ``site`` (safe from any thread)."""
        with self._deferred_lock:
            self._deferred[site].append(request)

    def flush_deferred(self) -> None:
        """Send every deferred request now."""
        with self._deferred_lock:
            sites = [site for site, queue in self._deferred.items() if queue]
        if sites:
            self.call_all({site: [] for site in sites})

    def drop_deferred(self) -> None:
        """Forget every deferred request (the tenant's variables are about to be cleared)."""
        with self._deferred_lock:
            self._deferred.clear()

    def _take_deferred(self, site: SiteId) -> list[Request]:
        with self._deferred_lock:
            return self._deferred.pop(site, [])

    def release(self, created: dict[SiteId, list[str]]) -> None:
        """Drop a plan's intermediates with the next batch to each site."""
        for site, names in created.items():
            if names:
                self.defer(site, Clear(tuple(names)))

