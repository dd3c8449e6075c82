"""Run by ``test_standalone_cluster.py`` in its own process: lm and REMOTE_SPARK paramserv through
a ``spark://`` master. Prints one JSON line with the results for the test to check."""

from __future__ import annotations

import json
import sys

import numpy as np
import pyarrow as pa

import fedla as fl
from fedla.algorithms import lm
from fedla.algorithms.nn import ffn
from fedla.spark import spark_session


def main(master: str) -> None:
    spark = spark_session(master, driver_memory="1g",
                          conf={"spark.executor.memory": "1g", "spark.cores.max": "2"})
    rng = np.random.default_rng(5)
    X = rng.standard_normal((2000, 4))
    y = X @ np.array([[1.0], [2.0], [-1.0], [0.5]]) + 0.01 * rng.standard_normal((2000, 1))
    df = spark.createDataFrame(pa.table({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2],
                                         "d": X[:, 3], "y": y[:, 0]}))
    beta = lm(fl.from_spark(df, ["a", "b", "c", "d"]), fl.from_spark(df, ["y"]), icpt=1)

    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits_X, digits_y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(digits_X / 16.0, digits_y,
                                                        test_size=0.2, random_state=0)
    model = fl.paramserv(ffn.init(64, 10, (64,), seed=0), X_train, np.eye(10)[y_train],
                         upd=ffn.UPD, agg=ffn.AGG, mode="REMOTE_SPARK", epochs=4,
                         batchsize=32, k=2, seed=0,
                         hyperparams={"optimizer": "adam", "lr": 3e-3}, progress=False,
                         val_features=X_test, val_labels=np.eye(10)[y_test])
    print(json.dumps({"master": spark.sparkContext.master, "X": X.tolist(), "y": y.tolist(),
                      "beta": np.asarray(beta).tolist(),
                      "accuracy": model.history.val_accuracy}))
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1])
