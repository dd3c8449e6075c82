"""Algorithm benchmark: lm, l2svm, mlogreg, kmeans and pca, local vs federated vs scikit-learn.

    python bench/bench_algorithms.py                 # full sizes (about 8 GB of memory)
    python bench/bench_algorithms.py --quick         # 1/50 of the rows, a smoke run
    python bench/bench_algorithms.py --scale 0.25    # a quarter of the rows
    python bench/bench_algorithms.py --only lm,pca   # a subset

Every algorithm runs on the same synthetic data three ways in one process: fedla on a local
matrix (``fl.matrix``), fedla on a federated matrix whose row blocks live at three loopback
worker processes (``fl.Context(local_workers=3)`` + ``scatter``), and the scikit-learn
counterpart. Times cover the fit only: converting to ``fl.matrix`` (which hashes the data) and
scattering the blocks to the workers happen before the clock starts. Each row also shows a
quality figure per run, so that equal times mean equal work:

=======  ===========================  =========================================================
lm       1,000,000 x 100, icpt=1      training R^2; LinearRegression
l2svm    1,000,000 x 100, reg=1       SystemDS objective (lower is better); LinearSVC, C=1/(2reg)
mlogreg  100,000 x 100, 10 classes    accuracy on 20,000 held-out rows; LogisticRegression
                                      (C=1/reg) on StandardScaler output, scaling timed too
kmeans   200,000 x 50, k=10           WCSS (sklearn's inertia); KMeans(n_init=10)
pca      1,000,000 x 100, K=10        variance captured by the K components; StandardScaler +
                                      PCA, scaling timed too
=======  ===========================  =========================================================
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from threadpoolctl import threadpool_info, threadpool_limits

import fedla as fl
from fedla.algorithms import (
    ConvergenceWarning,
    kmeans,
    kmeans_predict,
    l2svm,
    lm,
    mlogreg,
    mlogreg_predict,
    pca,
)


@dataclass
class Case:
    """One algorithm: its data, the fedla call, the scikit-learn call and the quality figure."""

    name: str
    rows: int
    cols: int
    data: Callable[[int, int], dict[str, np.ndarray]]
    fedla: Callable[[Any, Any, dict[str, np.ndarray]], Any]  # (X, y or None, data) -> model
    sklearn: Callable[[dict[str, np.ndarray]], Any]  # data -> quality
    quality: Callable[[Any, dict[str, np.ndarray]], float]  # (fedla model, data) -> quality
    metric: str


# --- data --------------------------------------------------------------------------------------


def _rng(name: str) -> np.random.Generator:
    return np.random.default_rng([20240613, *map(ord, name)])


def regression_data(n: int, m: int) -> dict[str, np.ndarray]:
    rng = _rng("lm")
    X = rng.standard_normal((n, m))
    y = X @ rng.standard_normal((m, 1)) + 1.0 + rng.standard_normal((n, 1))
    return {"X": X, "y": y}


def svm_data(n: int, m: int) -> dict[str, np.ndarray]:
    rng = _rng("l2svm")
    X = rng.standard_normal((n, m))
    y = (X @ rng.standard_normal((m, 1)) + 2.0 * rng.standard_normal((n, 1)) > 0).astype(float)
    return {"X": X, "y": y}


def classification_data(n: int, m: int, classes: int = 10) -> dict[str, np.ndarray]:
    rng = _rng("mlogreg")
    test = n // 5
    X = rng.standard_normal((n + test, m)) * rng.uniform(0.5, 3.0, m) + rng.normal(0, 2, m)
    logits = X @ rng.standard_normal((m, classes)) * 0.1 + rng.gumbel(size=(n + test, classes))
    y = np.argmax(logits, axis=1)[:, None] + 1.0
    return {"X": X[:n], "y": y[:n], "X_test": X[n:], "y_test": y[n:]}


def cluster_data(n: int, m: int, k: int = 10) -> dict[str, np.ndarray]:
    rng = _rng("kmeans")
    centers = rng.uniform(-5, 5, size=(k, m))
    return {"X": centers[rng.integers(0, k, n)] + rng.standard_normal((n, m)) * 2.0}


def pca_data(n: int, m: int, rank: int = 10) -> dict[str, np.ndarray]:
    rng = _rng("pca")
    X = rng.standard_normal((n, rank)) @ rng.standard_normal((rank, m))
    return {"X": X + 0.5 * rng.standard_normal((n, m)) + rng.normal(0, 10, m)}


# --- quality figures ---------------------------------------------------------------------------


def r2(B: np.ndarray, d: dict[str, np.ndarray]) -> float:
    residual = d["y"] - (d["X"] @ B[:-1] + B[-1])
    return 1.0 - float(np.sum(residual**2) / np.sum((d["y"] - d["y"].mean()) ** 2))


def svm_objective(w: np.ndarray, d: dict[str, np.ndarray], reg: float = 1.0) -> float:
    hinge = np.maximum(0.0, 1.0 - (2 * d["y"] - 1) * (d["X"] @ w.reshape(-1, 1)))
    return 0.5 * float(np.sum(hinge**2)) + reg / 2 * float(np.sum(w**2))


def accuracy(B: np.ndarray, d: dict[str, np.ndarray]) -> float:
    return float(np.mean(mlogreg_predict(d["X_test"], B)[1] == d["y_test"]))


def wcss(C: np.ndarray, d: dict[str, np.ndarray]) -> float:
    return float(np.sum((d["X"] - C[kmeans_predict(d["X"], C).ravel() - 1]) ** 2))


def sklearn_lm(d: dict[str, np.ndarray]) -> float:
    model = LinearRegression().fit(d["X"], d["y"])
    return r2(np.vstack([model.coef_.T, model.intercept_]), d)


def sklearn_l2svm(d: dict[str, np.ndarray]) -> float:
    svc = LinearSVC(loss="squared_hinge", fit_intercept=False, C=0.5, dual=False)
    return svm_objective(svc.fit(d["X"], d["y"].ravel()).coef_, d)


def sklearn_mlogreg(d: dict[str, np.ndarray]) -> float:
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000))
    model.fit(d["X"], d["y"].ravel())
    return float(model.score(d["X_test"], d["y_test"].ravel()))


def sklearn_kmeans(d: dict[str, np.ndarray]) -> float:
    return float(KMeans(n_clusters=10, n_init=10, random_state=0).fit(d["X"]).inertia_)


def sklearn_pca(d: dict[str, np.ndarray]) -> float:
    model = make_pipeline(StandardScaler(), PCA(n_components=10)).fit(d["X"])
    return float(np.sum(model[-1].explained_variance_))


CASES = [
    Case("lm", 1_000_000, 100, regression_data, lambda X, y, d: lm(X, y, icpt=1),
         sklearn_lm, r2, "R^2"),
    Case("l2svm", 1_000_000, 100, svm_data, lambda X, y, d: l2svm(X, y, reg=1.0),
         sklearn_l2svm, svm_objective, "objective"),
    Case("mlogreg", 100_000, 100, classification_data, lambda X, y, d: mlogreg(X, y, reg=1.0),
         sklearn_mlogreg, accuracy, "accuracy"),
    Case("kmeans", 200_000, 50, cluster_data, lambda X, y, d: kmeans(X, k=10, seed=0)[0],
         sklearn_kmeans, wcss, "WCSS"),
    Case("pca", 1_000_000, 100, pca_data, lambda X, y, d: pca(X, K=10).evalues,
         sklearn_pca, lambda ev, d: float(np.sum(ev)), "variance"),
]


# --- running -----------------------------------------------------------------------------------


def timed(fn: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def run_case(case: Case, scale: float, ctx: fl.Context) -> dict[str, Any]:
    n = max(1000, int(case.rows * scale))
    d = case.data(n, case.cols)
    has_y = case.name in ("lm", "l2svm", "mlogreg")
    # local fedla: the conversion (a content hash of the data) happens before the clock starts
    X_local, y_local = fl.matrix(d["X"]), fl.matrix(d["y"]) if has_y else None
    t_local, model_local = timed(case.fedla, X_local, y_local, d)
    del X_local, y_local
    # federated: uneven row blocks at the three workers, PUT before the clock starts
    sizes = [n * 2 // 5, n // 5, n - n * 2 // 5 - n // 5]
    X_fed = ctx.scatter(d["X"], sizes=sizes)
    y_fed = ctx.scatter(d["y"], sizes=sizes) if has_y else None
    t_fed, model_fed = timed(case.fedla, X_fed, y_fed, d)
    del X_fed, y_fed
    ctx.flush()  # release the blocks at the workers before the next case
    t_sklearn, q_sklearn = timed(case.sklearn, d)
    return {
        "case": case, "n": n, "t_local": t_local, "t_fed": t_fed, "t_sklearn": t_sklearn,
        "q_local": case.quality(model_local, d), "q_fed": case.quality(model_fed, d),
        "q_sklearn": q_sklearn,
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    header = (f"{'algorithm':<9}{'data':>17}{'local s':>9}{'fed s':>9}{'sklearn s':>10}"
              f"{'fed/local':>10}{'fed/sk':>8}  {'quality':<10}{'local':>13}{'fed':>13}"
              f"{'sklearn':>13}")
    print(header)
    print("-" * len(header))
    for row in rows:
        case = row["case"]
        size = f"{row['n']:,} x {case.cols}"
        print(f"{case.name:<9}{size:>17}{row['t_local']:>9.2f}"
              f"{row['t_fed']:>9.2f}{row['t_sklearn']:>10.2f}"
              f"{row['t_fed'] / row['t_local']:>10.2f}{row['t_fed'] / row['t_sklearn']:>8.2f}  "
              f"{case.metric:<10}{row['q_local']:>13.6g}{row['q_fed']:>13.6g}"
              f"{row['q_sklearn']:>13.6g}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1/50 of the rows (smoke run)")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full rows")
    parser.add_argument("--only", default="", help="comma-separated algorithms to run")
    parser.add_argument("--blas-threads", type=int, default=None,
                        help="BLAS threads of this process and of each worker (default: the "
                             "library's own for this process, cores // 3 for the workers)")
    args = parser.parse_args(argv)
    if args.blas_threads is not None:
        threadpool_limits(args.blas_threads)  # local fedla and scikit-learn
        for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[variable] = str(args.blas_threads)  # inherited by the workers
    scale = 0.02 if args.quick else args.scale
    wanted = set(filter(None, args.only.split(","))) or {case.name for case in CASES}
    cases = [case for case in CASES if case.name in wanted]
    threads = threadpool_info()[0]["num_threads"] if threadpool_info() else "?"
    print(f"fedla algorithms vs scikit-learn; rows x {scale:g} of full size; {os.cpu_count()} "
          f"cores; {threads} BLAS threads here; load average {os.getloadavg()[0]:.1f} at start",
          flush=True)
    rows = []
    warnings.simplefilter("ignore", ConvergenceWarning)
    with fl.Context(local_workers=3) as ctx:
        for case in cases:
            print(f"  running {case.name} ...", flush=True)
            rows.append(run_case(case, scale, ctx))
    print()
    print_table(rows)
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
