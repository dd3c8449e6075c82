"""lm, l2svm, mlogreg, kmeans and pca on Spark-backed matrices equal the same calls on numpy
arrays (1e-8), and the Spark data path (from_spark, read_spark, to_spark) keeps rows in order."""

from __future__ import annotations

import gc
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

import fedla as fl
from fedla.algorithms import kmeans, l2svm, lm, mlogreg, pca
from fedla.runtime.errors import InvalidArgumentError
from tests.algorithms.conftest import as_array, assert_close

pytestmark = pytest.mark.spark

N, D = 600, 5
RNG = np.random.default_rng(7)
A = RNG.standard_normal((N, D)) * [1.0, 2.0, 0.5, 3.0, 1.0] + [0.0, 1.0, -2.0, 0.5, 4.0]
BETA = np.array([[1.5], [-2.0], [0.5], [0.0], [3.0]])
Y_REG = A @ BETA + 0.1 * RNG.standard_normal((N, 1))
Y_BIN = (A[:, :1] + A[:, 1:2] > 1.0).astype(float)
Y_CLASS = 1.0 + (A[:, :1] > 0) + (A[:, 1:2] > 1.0)
COLUMNS = [f"x{j}" for j in range(D)]


@pytest.fixture(scope="module")
def df(spark: Any) -> Any:
    """The data as a Spark DataFrame: features, a real target and two label columns."""
    table = pa.table({**{name: A[:, j] for j, name in enumerate(COLUMNS)},
                      "y": Y_REG[:, 0], "b": Y_BIN[:, 0], "c": Y_CLASS[:, 0]})
    return spark.createDataFrame(table).cache()


@pytest.fixture(scope="module")
def data(df: Any) -> dict[str, fl.Matrix]:
    return {"X": fl.from_spark(df, columns=COLUMNS), "y": fl.from_spark(df, columns=["y"]),
            "b": fl.from_spark(df, columns=["b"]), "c": fl.from_spark(df, columns=["c"])}


def test_from_spark_keeps_rows_in_order_over_the_partitions(data: dict[str, fl.Matrix]) -> None:
    X = data["X"]
    assert X.shape == (N, D) and X.dtype == np.float64
    assert {block.site for block in X.node.layout.blocks} == {"spark-0", "spark-1"}
    np.testing.assert_array_equal(X.compute(), A)


def test_lm(data: dict[str, fl.Matrix]) -> None:
    assert_close(lm(data["X"], data["y"], icpt=1, reg=1e-3), lm(A, Y_REG, icpt=1, reg=1e-3),
                 1e-8, "lm")


def test_lm_scaled_columns(data: dict[str, fl.Matrix]) -> None:
    """icpt=2: columns shifted and scaled at the partitions."""
    assert_close(lm(data["X"], data["y"], icpt=2, reg=1e-2), lm(A, Y_REG, icpt=2, reg=1e-2),
                 1e-8, "lm icpt=2")


def test_l2svm(data: dict[str, fl.Matrix]) -> None:
    assert_close(l2svm(data["X"], data["b"], intercept=True, maxi=4),
                 l2svm(A, Y_BIN, intercept=True, maxi=4),
                 1e-8, "l2svm")


def test_mlogreg(data: dict[str, fl.Matrix]) -> None:
    assert_close(mlogreg(data["X"], data["c"], maxi=4), mlogreg(A, Y_CLASS, maxi=4), 1e-8,
                 "mlogreg")


def test_kmeans_same_seed(data: dict[str, fl.Matrix]) -> None:
    C, Y = kmeans(data["X"], k=3, runs=2, seed=3)
    C_local, Y_local = kmeans(A, k=3, runs=2, seed=3)
    assert_close(C, C_local, 1e-8, "centroids")
    np.testing.assert_array_equal(as_array(Y), Y_local)


def test_pca(data: dict[str, fl.Matrix]) -> None:
    result, local = pca(data["X"], K=3), pca(A, K=3)
    assert_close(result.Mout, local.Mout, 1e-8, "components")
    assert_close(result.evalues, local.evalues, 1e-8, "eigenvalues")
    assert_close(result.Xout, local.Xout, 1e-8, "projection")


def test_explain_shows_the_spark_jobs(data: dict[str, fl.Matrix]) -> None:
    X = data["X"]
    text = fl.explain((X - X.mean(axis=0)).T @ X)
    assert "site spark-0:" in text and "site spark-1:" in text
    assert "Spark job: zip of 1 cached RDD(s) -> mapPartitions on 2 partition(s)" in text


def test_a_plan_caches_no_intermediate(data: dict[str, fl.Matrix]) -> None:
    """Two stages whose intermediates (exp(X) is read by both) are dropped in the tasks."""
    X = data["X"]
    executor = X.context.executor
    cached, jobs = executor.cached_rdds(), executor.jobs
    E = fl.exp(X / 4.0)
    centred = E - E.mean(axis=0)
    expected = np.exp(A / 4.0) - np.exp(A / 4.0).mean(axis=0)
    assert_close((centred.T @ centred).compute(), expected.T @ expected, 1e-10, "gram")
    assert executor.jobs - jobs == 2
    assert executor.cached_rdds() == cached
    assert fl.explain((E * 3.0).T @ X).count("cache nothing, collect returned values") == 1


def test_cached_rdds_are_released_with_their_matrices(spark: Any) -> None:
    context = fl.Context(executor="spark", spark=spark)
    try:
        executor = context.executor
        table = pa.table({"u": np.arange(10.0), "v": np.arange(10.0) ** 2})
        X = fl.from_spark(spark.createDataFrame(table), context=context)
        assert executor.cached_rdds() == 1
        assert_close((X.T @ X).compute(), np.array([[285.0, 2025.0], [2025.0, 15333.0]]),
                     1e-12)
        del X
        gc.collect()
        context.flush()
        assert executor.cached_rdds() == 0
    finally:
        context.close()


def test_more_input_partitions_than_sites(spark: Any) -> None:
    """Five input partitions onto two sites: contiguous groups, rows still in order."""
    frame = spark.range(0, 103, numPartitions=5).selectExpr("id * 1.0 AS i", "sin(id) AS s")
    X = fl.from_spark(frame)
    expected = np.column_stack([np.arange(103.0), np.sin(np.arange(103.0))])
    assert len(X.node.layout.blocks) == 5
    np.testing.assert_allclose(X.compute(), expected, rtol=1e-15)
    out = X.to_spark(spark).toPandas().to_numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-15)


def test_array_column_and_to_spark_round_trip(spark: Any) -> None:
    rows = np.arange(24.0).reshape(8, 3)
    frame = spark.createDataFrame(pa.table({"v": pa.array(list(rows), pa.list_(pa.float64()))}))
    X = fl.from_spark(frame, columns=["v"])
    np.testing.assert_array_equal(X.compute(), rows)
    back = X.to_spark(spark)
    assert back.columns == ["c0", "c1", "c2"]
    np.testing.assert_array_equal(back.toPandas().to_numpy(), rows)
    derived = (X * 2).to_spark(spark).toPandas().to_numpy()
    np.testing.assert_array_equal(derived, rows * 2)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_read_spark(spark: Any, tmp_path: Any, fmt: str) -> None:
    frame = spark.createDataFrame(pa.table({"a": A[:50, 0], "b": A[:50, 1]})).coalesce(1)
    path = str(tmp_path / f"data.{fmt}")
    frame.write.option("header", "true").format(fmt).save(path)
    X = fl.read_spark(spark, path, format=fmt)
    np.testing.assert_allclose(X.compute(), A[:50, :2], rtol=1e-15)


def test_from_spark_refuses_text_columns(spark: Any) -> None:
    frame = spark.createDataFrame(pa.table({"a": [1.0, 2.0], "name": ["x", "y"]}))
    with pytest.raises(InvalidArgumentError, match=r"name: string"):
        fl.from_spark(frame)
