"""Spark-backed matrices: ``fl.from_spark``, ``fl.read_spark`` and a configured session.

A Spark-backed matrix is a federated matrix whose sites are the partitions of cached RDDs
(``fedla.executors.spark_executor``): its rows stay in the Spark cluster, every plan over it runs
as Spark jobs with fedla's kernels, and only partials reach the driver. ``Matrix.to_spark`` writes
row-partitioned results back (``fedla.spark_export``).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from fedla.context import Context
from fedla.matrix import Matrix
from fedla.runtime.errors import InvalidArgumentError

_CONTEXTS: dict[int, Context] = {}
_CONTEXTS_LOCK = threading.Lock()

SESSION_DEFAULTS = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "2",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    # A barrier stage with more tasks than slots fails at once instead of waiting 10 minutes.
    "spark.scheduler.barrier.maxConcurrentTasksCheck.interval": "1s",
    "spark.scheduler.barrier.maxConcurrentTasksCheck.maxFailures": "1",
}


def spark_session(master: str = "local[2]", driver_memory: str = "2g",
                  app_name: str = "fedla", conf: dict[str, str] | None = None) -> Any:
    """A SparkSession configured for fedla (get or create).

    Tasks run this interpreter (``PYSPARK_PYTHON``, so they import the same fedla and pyarrow),
    the driver binds to 127.0.0.1 unless ``SPARK_LOCAL_IP`` says otherwise, and the UI is off.
    ``driver_memory`` only takes effect if no JVM runs yet.
    """
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = (SparkSession.builder.master(master).appName(app_name)
               .config("spark.driver.memory", driver_memory)
               .config("spark.driver.host", os.environ["SPARK_LOCAL_IP"]))
    for key, value in {**SESSION_DEFAULTS, **(conf or {})}.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def spark_context(spark: Any, partitions: int | None = None) -> Context:
    """The Context whose sites are partitions on ``spark`` (one per session, made on first use)."""
    with _CONTEXTS_LOCK:
        context = _CONTEXTS.get(id(spark))
        if context is None or context.closed:
            context = Context(executor="spark", spark=spark, local_workers=partitions)
            _CONTEXTS[id(spark)] = context
        return context


def from_spark(df: Any, columns: Sequence[str] | None = None,
               context: Context | None = None) -> Matrix:
    """A row-partitioned matrix over the rows of a Spark DataFrame, cached in the cluster.

    Parameters
    ----------
    df : pyspark.sql.DataFrame
        The rows; row order is the DataFrame's (partition by partition).
    columns : sequence of str, optional
        Numeric columns to take, in this order, or the name of one ``array<double>`` or ML
        vector column; default: every column, which must then all be numeric.
    context : Context, optional
        A Context made with ``executor="spark"``; default: the one of ``df``'s session.

    Returns
    -------
    Matrix
        float64, of shape (n_rows, n_columns), one row block per site.

    Examples
    --------
    >>> import fedla as fl
    >>> from fedla.spark import spark_session
    >>> spark = spark_session("local[2]")
    >>> df = spark.createDataFrame([(1.0, 2.0), (3.0, 4.0), (5.0, 6.0)], ["x1", "x2"])
    >>> X = fl.from_spark(df, columns=["x1", "x2"])
    >>> (X.T @ X).compute()
    array([[35., 44.],
           [44., 56.]])
    """
    context = context or spark_context(df.sparkSession)
    executor = context.executor
    if not hasattr(executor, "ingest"):
        raise InvalidArgumentError(
            "The 'context' parameter of from_spark must be a Context made with "
            f"executor='spark'. Got one with {type(executor).__name__} instead."
        )
    selected = _numeric_columns(df, columns)
    blocks = executor.ingest(selected)
    if not blocks or blocks[-1].rows[1] == 0:
        raise InvalidArgumentError("from_spark needs a DataFrame with at least one row; got none")
    return context.adopt(blocks, np.dtype(np.float64))


def read_spark(spark: Any, path: str, format: str = "parquet",
               columns: Sequence[str] | None = None, **options: str) -> Matrix:
    """Read a parquet or csv file (or directory) with Spark straight into a matrix.

    ``options`` go to Spark's reader; csv files are read with ``header=true`` and
    ``inferSchema=true`` unless given otherwise.
    """
    if format not in ("parquet", "csv"):
        raise InvalidArgumentError(
            f"The 'format' parameter of read_spark must be 'parquet' or 'csv'. Got {format!r} "
            "instead."
        )
    reader = spark.read.format(format)
    if format == "csv":
        options = {"header": "true", "inferSchema": "true", **options}
    for key, value in options.items():
        reader = reader.option(key, value)
    return from_spark(reader.load(path), columns)


def _numeric_columns(df: Any, columns: Sequence[str] | None) -> Any:
    """``df`` reduced to the matrix's columns as doubles (or one array<double> column)."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    names = list(df.columns if columns is None else columns)
    fields = {f.name: f.dataType for f in df.schema.fields}
    missing = [name for name in names if name not in fields]
    if missing:
        raise InvalidArgumentError(
            f"The 'columns' parameter of from_spark names columns the DataFrame lacks: "
            f"{missing}. It has {list(fields)}."
        )
    if len(names) == 1 and not isinstance(fields[names[0]], T.NumericType):
        kind = fields[names[0]]
        if isinstance(kind, T.ArrayType) and isinstance(kind.elementType, T.NumericType):
            return df.select(F.col(names[0]).cast("array<double>"))
        if type(kind).__name__ == "VectorUDT":
            from pyspark.ml.functions import vector_to_array

            return df.select(vector_to_array(F.col(names[0])))
    wrong = [f"{name}: {fields[name].simpleString()}" for name in names
             if not isinstance(fields[name], T.NumericType)]
    if wrong:
        raise InvalidArgumentError(
            "from_spark takes numeric columns, or one array or vector column. Got "
            f"{', '.join(wrong)} instead; pass columns=[...] to choose."
        )
    return df.select(*[F.col(name).cast("double") for name in names])
