"""READ reuse, lineage reuse, the coordinator's result cache, and the lifetime of variables.

Real worker processes; what was reused is read from ``ctx.stats()`` (per worker counters of
READ/EXEC cache hits) and from the workers' own ``Status`` (``fedla status``).
"""

from __future__ import annotations

import gc
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import fedla as fl
from fedla.local_workers import LocalWorkerPool
from fedla.runtime.protocol.client import WorkerClient
from fedla.runtime.protocol.requests import Get, Put
from tests.conftest import assert_matches

RNG = np.random.default_rng(5)


def _total(ctx: fl.Context, key: str) -> int:
    return sum(traffic[key] for traffic in ctx.stats().values())


def _tenant_status(address: str, ctx: fl.Context):  # type: ignore[no-untyped-def]
    status = WorkerClient(address).status(ctx.tenant)
    return status, next((t for t in status.tenants if t.tenant == ctx.tenant), None)


@pytest.fixture(scope="module")
def solo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """One worker of its own, so cache figures are not shared with other tests."""
    data_dir = tmp_path_factory.mktemp("solo")
    with LocalWorkerPool(1, data_dir=data_dir) as pool:
        yield pool.addresses[0], data_dir


def test_two_tenants_reading_one_file_load_it_once(solo: tuple[str, Path]) -> None:
    address, data_dir = solo
    A = RNG.standard_normal((400, 5))
    np.save(data_dir / "shared.npy", A)
    loads_before = WorkerClient(address).status().read_cache.misses
    with fl.Context(workers=[address]) as first, fl.Context(workers=[address]) as second:
        X1 = first.federated([f"{address}/shared.npy"])
        X2 = second.federated([f"{address}/shared.npy"])
        # The second READ is a cache hit at the worker, but not reported to the second
        # tenant: a response never reveals what another tenant read or computed.
        assert (_total(first, "read_misses"), _total(second, "read_hits")) == (1, 0)
        status = WorkerClient(address).status()
        assert status.read_cache.misses - loads_before == 1
        assert_matches((X1.T @ X1).compute(), A.T @ A)
        # The second tenant's identical work on the shared file is a lineage-cache hit.
        hits_before = WorkerClient(address).status().lineage_cache.hits
        assert_matches((X2.T @ X2).compute(), A.T @ A)
        assert WorkerClient(address).status().lineage_cache.hits - hits_before == 1
        assert _total(second, "exec_hits") == 0 and _total(second, "exec_misses") == 1


def test_concurrent_reads_of_one_file_wait_for_one_load(solo: tuple[str, Path]) -> None:
    address, data_dir = solo
    np.save(data_dir / "concurrent.npy", RNG.standard_normal((300_000, 10)))
    loads_before = WorkerClient(address).status().read_cache.misses
    contexts = [fl.Context(workers=[address]) for _ in range(6)]
    threads = [
        threading.Thread(target=ctx.federated, args=([f"{address}/concurrent.npy"],))
        for ctx in contexts
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert WorkerClient(address).status().read_cache.misses - loads_before == 1
    assert sum(_total(ctx, "read_hits") for ctx in contexts) == 0  # not reported across tenants
    for ctx in contexts:
        ctx.close()


def test_results_derived_from_put_data_are_not_shared(solo: tuple[str, Path]) -> None:
    address, _ = solo
    A = RNG.standard_normal((200, 4))
    with fl.Context(workers=[address]) as first, fl.Context(workers=[address]) as second:
        X1, X2 = first.scatter(A), second.scatter(A)  # identical content, two tenants
        assert_matches((X1.T @ X1).compute(), A.T @ A)
        assert_matches((X2.T @ X2).compute(), A.T @ A)
        assert _total(second, "exec_hits") == 0 and _total(second, "exec_misses") == 1


def test_repeated_aggregate_costs_no_round_trip(solo: tuple[str, Path]) -> None:
    address, _ = solo
    A = RNG.standard_normal((300, 6))
    y = RNG.standard_normal((300, 1))
    with fl.Context(workers=[address]) as ctx:
        X, Y = ctx.scatter(A), ctx.scatter(y)
        G = (X.T @ X).compute()
        calls = _total(ctx, "calls")
        for reg in (1e-3, 1e-2, 1e-1):  # an lm-style sweep reuses X^T X and X^T y
            beta = fl.solve((X.T @ X).compute() + reg * np.eye(6), (X.T @ Y).compute())
            np.testing.assert_allclose(beta, np.linalg.solve(A.T @ A + reg * np.eye(6), A.T @ y))
        assert _total(ctx, "calls") == calls + 1  # only X^T y, once
        assert_matches(G, A.T @ A)
        assert ctx.results.stats()["hits"] >= 5


def test_small_cache_evicts_and_recomputes_correctly(tmp_path: Path) -> None:
    A = RNG.standard_normal((3000, 8))  # 192 KB; every intermediate is bigger than the cache
    with fl.Context(local_workers=1, data_dir=tmp_path, cache_mem=0,
                    local_worker_options=["--cache-mem", "64KB"]) as ctx:
        X = ctx.scatter(A)
        centred = X - X.mean(axis=0)
        scaled = centred / fl.sqrt(X.var(axis=0))
        for _ in range(2):
            assert_matches((scaled.T @ scaled).compute(), _standardized_gram(A),
                           rtol=1e-9, atol=1e-9)
            assert_matches(scaled.compute(), (A - A.mean(0)) / A.std(0), rtol=1e-9, atol=1e-12)
        small = (X[:100] * 2.0).compute()  # fits: cached, then evicted by later work
        assert_matches(small, A[:100] * 2.0)
        status = ctx.executor.client(ctx.workers[0]).status()
        assert status.lineage_cache.budget == 64 * 1024
        assert status.lineage_cache.bytes <= 64 * 1024


def test_evicted_variable_is_recomputed_on_get(tmp_path: Path) -> None:
    with LocalWorkerPool(1, data_dir=tmp_path, options=("--cache-mem", "10KB")) as pool:
        client = WorkerClient(pool.addresses[0])
        from fedla.runtime.protocol.requests import ExecInst, Literal

        A = RNG.standard_normal((50, 10))  # 4 KB per result: two fit, a third evicts the first
        client.execute("t", [Put("x", A)])
        for name, factor in (("a", 2.0), ("b", 3.0), ("c", 4.0)):
            client.execute("t", [ExecInst("binary", ("x", Literal(factor)), name, {"op": "mul"})])
        assert client.status().lineage_cache.evictions >= 1
        np.testing.assert_array_equal(client.execute("t", [Get("a")])[0], A * 2.0)


def test_unreachable_matrices_release_their_variables(solo: tuple[str, Path]) -> None:
    address, _ = solo
    with fl.Context(workers=[address]) as ctx:
        X = ctx.scatter(RNG.standard_normal((2000, 10)))
        Y = ctx.scatter(RNG.standard_normal((10, 10)))
        _, mine = _tenant_status(address, ctx)
        assert mine.variables == 2 and mine.held_bytes >= 160_000
        del X
        gc.collect()
        ctx.flush()
        _, mine = _tenant_status(address, ctx)
        assert mine.variables == 1 and mine.held_bytes < 2_000
        assert_matches(Y.sum().compute(), Y.compute().sum())


def test_identical_scatters_share_a_variable_until_both_are_gone(solo: tuple[str, Path]) -> None:
    address, _ = solo
    A = RNG.standard_normal((100, 3))
    with fl.Context(workers=[address]) as ctx:
        X1, X2 = ctx.scatter(A), ctx.scatter(A)
        del X1
        gc.collect()
        ctx.flush()
        assert_matches(X2.compute(), A)  # still there: X2 holds it
        del X2
        gc.collect()
        ctx.flush()
        _, mine = _tenant_status(address, ctx)
        assert mine.variables == 0


def test_closing_a_context_clears_its_scope(solo: tuple[str, Path]) -> None:
    address, _ = solo
    ctx = fl.Context(workers=[address])
    ctx.scatter(RNG.standard_normal((50, 3)))
    ctx.close()
    status, mine = _tenant_status(address, ctx)
    assert mine is None or mine.variables == 0


def test_idle_tenant_scope_is_dropped(tmp_path: Path) -> None:
    with LocalWorkerPool(1, data_dir=tmp_path, options=("--tenant-timeout", "1")) as pool:
        client = WorkerClient(pool.addresses[0])
        client.execute("idle", [Put("x", np.ones((2, 2)))])
        deadline = time.monotonic() + 10
        while client.status().tenants and time.monotonic() < deadline:
            time.sleep(0.3)
        assert not client.status().tenants
        with pytest.raises(fl.UnknownVariableError, match="--tenant-timeout"):
            client.execute("idle", [Get("x")])


def test_fedla_status_prints_tenants_and_caches(solo: tuple[str, Path]) -> None:
    address, _ = solo
    with fl.Context(workers=[address]) as ctx:
        X = ctx.scatter(RNG.standard_normal((100, 4)))
        (X.T @ X).compute()
        out = subprocess.run(
            [sys.executable, "-m", "fedla", "status", address],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout
    assert f"worker {address}: up" in out
    assert "READ cache:" in out and "lineage cache:" in out and "hit rate" in out
    assert "variables" in out


def test_fedla_status_of_an_unreachable_worker_fails_clearly() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fedla", "status", "127.0.0.1:1"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert "unreachable" in result.stdout


def _standardized_gram(A: np.ndarray) -> np.ndarray:
    Z = (A - A.mean(0)) / A.std(0)
    return Z.T @ Z


def test_matrix_collected_while_an_identical_one_is_sent_keeps_the_new_one(
    solo: tuple[str, Path],
) -> None:
    """Regression: the old matrix's release must not clear the variable the new one just PUT."""
    address, _ = solo
    A = RNG.standard_normal((60, 3))
    with fl.Context(workers=[address]) as ctx:
        old = [ctx.scatter(A)]
        send = ctx.executor.call_all

        def send_then_collect_the_old_matrix(batches: dict) -> dict:
            results = send(batches)
            old.clear()
            gc.collect()
            return results

        ctx.executor.call_all = send_then_collect_the_old_matrix  # type: ignore[method-assign]
        new = ctx.scatter(A)
        ctx.executor.call_all = send  # type: ignore[method-assign]
        ctx.flush()
        assert_matches(new.compute(), A)


def test_result_too_large_for_the_cache_is_computed_once_per_batch(tmp_path: Path) -> None:
    """EXEC then GET in one batch: the GET uses the held result, not a second computation."""
    with LocalWorkerPool(1, data_dir=tmp_path, options=("--cache-mem", "0")) as pool:
        client = WorkerClient(pool.addresses[0])
        from fedla.runtime.protocol.requests import ExecInst

        client.execute("t", [Put("x", RNG.standard_normal((100, 4)))])
        misses = client.status().lineage_cache.misses
        client.execute("t", [ExecInst("tsmm", ("x",), "g"), Get("g")])
        assert client.status().lineage_cache.misses - misses == 1
