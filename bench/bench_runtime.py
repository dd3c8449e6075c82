"""Runtime benchmark: EXEC latency, PUT/GET throughput, federated X.T @ X vs numpy, in one run.

    python bench/bench_runtime.py            # full sizes (needs ~8 GB of memory)
    python bench/bench_runtime.py --quick    # small sizes, a smoke run

Everything runs against real ``fedla worker`` processes on 127.0.0.1. Prints one table; ratios
compare fedla with numpy on the same data in this same run.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import fedla as fl
from fedla.runtime.protocol.requests import ExecInst, Get, Put


def exec_latency(ctx: fl.Context, reps: int) -> tuple[float, float]:
    """p50 and p99 in ms of one EXEC_INST round trip (transpose of a 1x1 variable), sent the
    way ``compute()`` sends a stage: through the Context's executor."""
    site = ctx.workers[0]
    ctx.executor.send(site, [Put("one", np.ones((1, 1)))])
    times = []
    for _ in range(reps + 50):
        start = time.perf_counter()
        ctx.executor.send(site, [ExecInst("transpose", ("one",), "one_t")])
        times.append(time.perf_counter() - start)
    times = sorted(times[50:])
    return times[len(times) // 2] * 1e3, times[int(len(times) * 0.99)] * 1e3


def put_get_throughput(ctx: fl.Context, nbytes: int, reps: int) -> tuple[float, float]:
    """Best-of-``reps`` PUT and GET throughput in GB/s for a float64 array of ``nbytes``."""
    client = ctx.executor.client(ctx.workers[0])
    data = np.random.default_rng(0).random(nbytes // 8)
    put, get = [], []
    for _ in range(reps):
        start = time.perf_counter()
        client.execute(ctx.tenant, [Put("payload", data)])
        put.append(time.perf_counter() - start)
        start = time.perf_counter()
        (back,) = client.execute(ctx.tenant, [Get("payload")])
        get.append(time.perf_counter() - start)
    assert np.array_equal(back, data)
    return nbytes / min(put) / 1e9, nbytes / min(get) / 1e9


def tsmm_vs_numpy(ctx: fl.Context, rows: int, cols: int, reps: int) -> tuple[float, float]:
    """Best-of-``reps`` seconds of federated ``(X.T @ X).compute()`` and of numpy ``X.T @ X``."""
    X_local = np.random.default_rng(1).random((rows, cols))
    X = ctx.scatter(X_local, parts=2)
    fed, ref = [], []
    for _ in range(reps):
        start = time.perf_counter()
        G = (X.T @ X).compute()
        fed.append(time.perf_counter() - start)
        start = time.perf_counter()
        G_ref = X_local.T @ X_local
        ref.append(time.perf_counter() - start)
    np.testing.assert_allclose(G, G_ref, rtol=1e-9)
    return min(fed), min(ref)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    args = parser.parse_args()
    sizes = [1 << 20, 8 << 20] if args.quick else [1 << 20, 64 << 20, 512 << 20]
    rows = 200_000 if args.quick else 2_000_000
    rows_out = []
    # No caches: every repetition must really compute (reuse is measured in bench_reuse.py).
    with fl.Context(local_workers=2, cache_mem=0, local_worker_options=["--cache-mem", "0"]) as ctx:
        p50, p99 = exec_latency(ctx, 200 if args.quick else 2000)
        rows_out.append(("EXEC round trip p50 / p99", f"{p50:.3f} ms / {p99:.3f} ms", "-"))
        for nbytes in sizes:
            put, get = put_get_throughput(ctx, nbytes, 3)
            rows_out.append((f"PUT / GET {nbytes >> 20} MB", f"{put:.2f} / {get:.2f} GB/s", "-"))
        fed, ref = tsmm_vs_numpy(ctx, rows, 100, 3)
        rows_out.append((
            f"X.T @ X, {rows:,} x 100, 2 workers vs numpy",
            f"{fed:.3f} s vs {ref:.3f} s", f"{fed / ref:.2f}x",
        ))
    width = max(len(r[0]) for r in rows_out)
    print(f"{'measure':<{width}}  {'fedla (vs numpy)':<28}  ratio")
    for name, value, ratio in rows_out:
        print(f"{name:<{width}}  {value:<28}  {ratio}")
    print(f"(throughput and times: best of 3; python {sys.version.split()[0]}, "
          f"numpy {np.__version__}, loopback, workers are separate processes)")


if __name__ == "__main__":
    main()
