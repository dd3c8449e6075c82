"""``Matrix.to_spark``: a row-partitioned matrix as a Spark DataFrame, rows in order.

A Spark-backed input is written back from where its blocks are cached, as Arrow record batches,
without passing through the driver. Any other matrix is computed and handed to Spark as one
Arrow table (``createDataFrame(pyarrow.Table)``, Spark's fast way in).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from fedla.evaluation import evaluate
from fedla.plan import Node, Partitioning


def to_spark(node: Node, context: Any, spark: Any) -> Any:
    """A DataFrame with columns ``c0 ... c{n-1}`` (double) holding ``node``'s rows in order."""
    executor = getattr(context, "executor", None)
    layout = node.layout
    if (node.op == "federated" and layout is not None
            and layout.partitioning is Partitioning.ROW
            and getattr(executor, "spark", None) is spark and hasattr(executor, "export")):
        blocks = list(layout.blocks)
        order = [executor.site_index(block.site) for block in blocks]
        if order == sorted(order):  # partition order is row order
            return executor.export(blocks, node.shape[1])
    value = evaluate([node], context)[0]
    value = value.toarray() if hasattr(value, "toarray") else np.asarray(value)
    value = np.asarray(value, dtype=np.float64).reshape(node.shape[0], -1)
    table = pa.table({f"c{j}": value[:, j] for j in range(value.shape[1])})
    return spark.createDataFrame(table)
