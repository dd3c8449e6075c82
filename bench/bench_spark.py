"""Spark benchmark: fedla on Spark-backed matrices vs Spark MLlib vs numpy in one process.

    python bench/bench_spark.py              # lm, pca: 1,000,000 x 100; kmeans: 200,000 x 50
    python bench/bench_spark.py --scale 0.2  # a fifth of the rows

One ``local[2]`` session. The data is generated, handed to Spark (``createDataFrame`` of an Arrow
table) and cached before any clock starts; so are the inputs of each contender: fedla's
``from_spark`` (rows cached as per-partition blocks) and MLlib's ``VectorAssembler`` output
(cached and counted). Timed is the fit only:

======  ======================  ============================  ===============================
what    data                    fedla on Spark                MLlib
======  ======================  ============================  ===============================
lm      1,000,000 x 100         lm(X, y, icpt=1), direct      LinearRegression(solver="normal")
pca     1,000,000 x 100, K=10   pca(X, K=10, scale=False)     PCA(k=10)
kmeans  200,000 x 50, k=10      20 Lloyd iterations, given C  KMeans(maxIter=20, "random" init)
======  ======================  ============================  ===============================

numpy runs the same math in this process (``X.T @ X`` + solve; covariance + eigh; 20 Lloyd
iterations). kmeans starts fedla and numpy from the same centroids (the first k rows); MLlib's
Python API takes no initial model, so it draws random centroids (its cheapest init) and runs a
fixed 20 iterations (tol=0). Ratios are fedla time / MLlib time (target <= 0.5).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pyarrow as pa

import fedla as fl
from fedla.algorithms import lm, pca
from fedla.spark import spark_session


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def frame(spark, X, y=None):
    columns = {f"x{j}": X[:, j] for j in range(X.shape[1])}
    if y is not None:
        columns["y"] = y[:, 0]
    df = spark.createDataFrame(pa.table(columns)).cache()
    df.count()
    return df


def assembled(df, d):
    from pyspark.ml.feature import VectorAssembler

    out = VectorAssembler(inputCols=[f"x{j}" for j in range(d)], outputCol="features")
    out = out.transform(df).select("features", *(["y"] if "y" in df.columns else [])).cache()
    out.count()
    return out


def lloyd_fedla(X, C, iterations):
    """Lloyd iterations on a Spark-backed X: one Spark job per iteration."""
    x_sq = (X * X).sum(axis=1)
    for _ in range(iterations):
        D = x_sq - 2.0 * (X @ C.T) + (C * C).sum(axis=1)[None, :]
        nearest = D.argmin(axis=1)
        one_hot = fl.where(nearest == np.arange(C.shape[0])[None, :], 1.0, 0.0)
        sums, counts = fl.compute(one_hot.T @ X, one_hot.sum(axis=0))
        C = sums / np.maximum(counts.T, 1.0)
    return C


def lloyd_numpy(X, C, iterations):
    x_sq = (X * X).sum(axis=1, keepdims=True)
    for _ in range(iterations):
        D = x_sq - 2.0 * (X @ C.T) + (C * C).sum(axis=1)[None, :]
        nearest = D.argmin(axis=1)
        one_hot = (nearest[:, None] == np.arange(C.shape[0])[None, :]).astype(float)
        C = (one_hot.T @ X) / np.maximum(one_hot.sum(axis=0)[:, None], 1.0)
    return C


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--driver-memory", default="8g")
    args = parser.parse_args()
    spark = spark_session("local[2]", driver_memory=args.driver_memory)
    from pyspark.ml.clustering import KMeans
    from pyspark.ml.feature import PCA
    from pyspark.ml.regression import LinearRegression

    rng = np.random.default_rng(0)
    rows: list[tuple[str, float, float, float, str]] = []

    n = int(1_000_000 * args.scale)
    X = rng.standard_normal((n, 100))
    y = X @ rng.standard_normal((100, 1)) + 0.1 * rng.standard_normal((n, 1))
    df = frame(spark, X, y)
    Xs, ys = fl.from_spark(df, [f"x{j}" for j in range(100)]), fl.from_spark(df, ["y"])
    ml_df = assembled(df, 100)
    t_fedla, beta = timed(lambda: lm(Xs, ys, icpt=1, reg=1e-7))
    t_ml, model = timed(lambda: LinearRegression(solver="normal", regParam=0.0, labelCol="y",
                                                 standardization=False).fit(ml_df))
    Z = np.hstack([X, np.ones((n, 1))])
    t_np, beta_np = timed(lambda: np.linalg.solve(Z.T @ Z + 1e-7 * np.eye(101), Z.T @ y))
    agree = float(np.max(np.abs(np.asarray(beta)[:100, 0] - model.coefficients.toArray())))
    rows.append(("lm", t_fedla, t_ml, t_np, f"max |beta - MLlib beta| = {agree:.1e}"))

    t_fedla, result = timed(lambda: pca(Xs, K=10, scale=False))
    t_ml, ml_pca = timed(lambda: PCA(k=10, inputCol="features").fit(ml_df))
    t_np, _ = timed(lambda: np.linalg.eigh(np.cov(X, rowvar=False)))
    rows.append(("pca", t_fedla, t_ml, t_np, f"top eigenvalue {result.evalues[0]:.4f}"))
    df.unpersist()

    n = int(200_000 * args.scale)
    X = rng.standard_normal((n, 50)) + rng.integers(0, 10, size=(n, 1)) * 3.0
    df = frame(spark, X)
    Xs, ml_df = fl.from_spark(df), assembled(df, 50)
    C0 = X[:10].copy()
    t_fedla, C = timed(lambda: lloyd_fedla(Xs, C0, 20))
    t_ml, _ = timed(lambda: KMeans(k=10, maxIter=20, tol=0.0, initMode="random", seed=1)
                    .fit(ml_df))
    t_np, C_np = timed(lambda: lloyd_numpy(X, C0, 20))
    rows.append(("kmeans", t_fedla, t_ml, t_np,
                 f"max |C - numpy C| = {float(np.max(np.abs(C - C_np))):.1e}"))

    print(f"{'what':8} {'fedla-on-Spark s':>17} {'MLlib s':>9} {'numpy s':>9} "
          f"{'fedla/MLlib':>12} {'fedla/numpy':>12}  check")
    for what, t_fedla, t_ml, t_np, note in rows:
        print(f"{what:8} {t_fedla:17.2f} {t_ml:9.2f} {t_np:9.2f} {t_fedla / t_ml:12.2f} "
              f"{t_fedla / t_np:12.2f}  {note}")
    spark.stop()


if __name__ == "__main__":
    main()
