"""Reuse benchmark: lineage reuse for an lm sweep, repeated X.T @ X, rewrites, in one run.

    python bench/bench_reuse.py            # 1,000,000 x 100 over 3 workers
    python bench/bench_reuse.py --quick    # 100,000 x 100

Each figure is measured twice: with the Context's result cache (the default) and with
``cache_mem=0``, where reuse comes only from the workers' lineage caches. Real ``fedla worker``
processes on 127.0.0.1; one table.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import fedla as fl

REGS = [10.0**e for e in range(-7, 3)]


def lm_solve(X: fl.Matrix, y: fl.Matrix, reg: float) -> np.ndarray:
    """One direct lm solve: ``solve(X^T X + reg I, X^T y)``."""
    XtX, Xty = fl.compute(X.T @ X, X.T @ y)
    return fl.solve(XtX + reg * np.eye(XtX.shape[0]), Xty)


def measure(ctx: fl.Context, A: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Sweep/single ratio and second/first X.T @ X ratio on fresh scatters of A and b."""
    X, y = ctx.scatter(A), ctx.scatter(b)
    start = time.perf_counter()
    lm_solve(X, y, REGS[0])
    single = time.perf_counter() - start
    X, y = ctx.scatter(A + 1.0), ctx.scatter(b + 1.0)  # other data: nothing cached yet
    start = time.perf_counter()
    betas = [lm_solve(X, y, reg) for reg in REGS]
    sweep = time.perf_counter() - start
    reference = np.linalg.solve((A + 1).T @ (A + 1) + REGS[-1] * np.eye(A.shape[1]),
                                (A + 1).T @ (b + 1))
    np.testing.assert_allclose(betas[-1], reference, rtol=1e-6)

    Z = ctx.scatter(A * 2.0)
    start = time.perf_counter()
    (Z.T @ Z).compute()
    first = time.perf_counter() - start
    start = time.perf_counter()
    (Z.T @ Z).compute()
    second = time.perf_counter() - start
    return {"single": single, "sweep": sweep, "first": first, "second": second}


def rewrite_traffic(ctx: fl.Context, A: np.ndarray) -> dict[bool, tuple[int, int, float]]:
    """Requests, bytes and seconds of one ``t(X) @ (X @ v)`` with and without rewrites."""
    X = ctx.scatter(A)
    v = np.random.default_rng(3).standard_normal((A.shape[1], 1))
    out = {}
    for rewrite in (False, True):
        ctx.flush()
        before = ctx.stats()
        start = time.perf_counter()
        (X.T @ (X @ v)).compute(rewrite=rewrite)
        seconds = time.perf_counter() - start
        ctx.flush()
        after = ctx.stats()
        requests = sum(after[a]["requests"] - before[a]["requests"] for a in after)
        sent = sum(after[a]["bytes_sent"] - before[a]["bytes_sent"] for a in after)
        received = sum(after[a]["bytes_received"] - before[a]["bytes_received"] for a in after)
        out[rewrite] = (requests, sent + received, seconds)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 rows instead of 1,000,000")
    args = parser.parse_args()
    rows = 100_000 if args.quick else 1_000_000
    rng = np.random.default_rng(0)
    A = rng.standard_normal((rows, 100))
    b = A @ rng.standard_normal((100, 1)) + rng.standard_normal((rows, 1))
    table = []
    for label, cache_mem in (("result cache", fl.context.DEFAULT_RESULT_CACHE_BYTES),
                             ("worker lineage cache only", 0)):
        with fl.Context(local_workers=3, cache_mem=cache_mem) as ctx:
            m = measure(ctx, A, b)
        table.append((f"lm sweep, 10 regs / one lm ({label})",
                      f"{m['sweep']:.3f} s / {m['single']:.3f} s",
                      f"{m['sweep'] / m['single']:.2f}x", "< 1.5x"))
        table.append((f"X.T @ X second / first ({label})",
                      f"{m['second'] * 1e3:.1f} ms / {m['first'] * 1e3:.1f} ms",
                      f"{100 * m['second'] / m['first']:.1f}%", "< 5%"))
    with fl.Context(local_workers=3, cache_mem=0) as ctx:
        traffic = rewrite_traffic(ctx, A)
    (plain_r, plain_b, plain_s), (rw_r, rw_b, rw_s) = traffic[False], traffic[True]
    table.append(("t(X) @ (X @ v): requests plain / rewritten", f"{plain_r} / {rw_r}",
                  f"{rw_r / plain_r:.2f}x", "fewer"))
    table.append(("t(X) @ (X @ v): bytes plain / rewritten", f"{plain_b} / {rw_b}",
                  f"{rw_b / plain_b:.2f}x", "-"))
    table.append(("t(X) @ (X @ v): seconds plain / rewritten",
                  f"{plain_s:.3f} / {rw_s:.3f}", f"{rw_s / plain_s:.2f}x", "-"))
    width = max(len(row[0]) for row in table)
    print(f"{rows:,} x 100 over 3 loopback workers")
    print(f"{'measure':<{width}}  {'value':<26}  {'ratio':<8}  target")
    for name, value, ratio, target in table:
        print(f"{name:<{width}}  {value:<26}  {ratio:<8}  {target}")


if __name__ == "__main__":
    main()
