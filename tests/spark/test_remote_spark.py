"""paramserv(mode="REMOTE_SPARK") on ``local[2]``: ffn on digits under BSP and ASP, a barrier
stage retried after a task's process died, and the refusal of more tasks than slots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fedla as fl
from fedla.algorithms.nn import ffn
from fedla.runtime.errors import InvalidArgumentError
from tests.spark import failing_upd

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X / 16.0, y, test_size=0.2,
                                                        random_state=0)
    return X_train, np.eye(10)[y_train], X_test, np.eye(10)[y_test]


def train(X: np.ndarray, Y: np.ndarray, upd: str = ffn.UPD, **options: Any) -> Any:
    settings = {"utype": "BSP", "epochs": 6, "batchsize": 32, "k": 2, "seed": 0,
                "hyperparams": {"optimizer": "adam", "lr": 3e-3}, "progress": False, **options}
    return fl.paramserv(ffn.init(64, 10, (64,), seed=0), X, Y, upd=upd, agg=ffn.AGG,
                        mode="REMOTE_SPARK", **settings)


@pytest.mark.parametrize("utype", ["BSP", "ASP"])
def test_ffn_on_digits_reaches_93_percent(spark: Any, digits: tuple[np.ndarray, ...],
                                          utype: str) -> None:
    X_train, Y_train, X_test, Y_test = digits
    model = train(X_train, Y_train, utype=utype, val_features=X_test, val_labels=Y_test)
    assert model.history.val_accuracy[-1] >= 0.93, model.history.val_accuracy
    assert len(model.history.epoch) == 6 and model.history.updates > 0
    compute = model.history.round_compute_seconds  # the tasks time their local steps
    assert len(compute) == model.history.updates and all(s > 0 for s in compute)


def test_a_retried_stage_resumes_without_corrupting_the_model(
        spark: Any, digits: tuple[np.ndarray, ...], tmp_path: Path) -> None:
    """Partition 0's process dies in epoch 2; Spark reruns the barrier stage, the server goes
    back to the end of epoch 1, and the result equals an uninterrupted run bit for bit (BSP
    applies updates in worker order, and every step's seed depends only on worker, epoch and
    step)."""
    X, Y = digits[0][:600], digits[1][:600]
    marker = tmp_path / "failed-once"
    steps_per_epoch = 300 // 32 + 1
    failed = train(X, Y, upd=f"{failing_upd.REF}:gradients", epochs=3,
                   hyperparams={"optimizer": "adam", "lr": 3e-3, "fail_marker": str(marker),
                                "fail_at": steps_per_epoch + 3})
    assert marker.exists()  # the task did die
    clean = train(X, Y, epochs=3, hyperparams={"optimizer": "adam", "lr": 3e-3})
    for a, b in zip(failed, clean):
        np.testing.assert_array_equal(a, b)


def test_more_tasks_than_slots_fail_at_once(spark: Any, digits: tuple[np.ndarray, ...]) -> None:
    slots = spark.sparkContext.defaultParallelism
    with pytest.raises(InvalidArgumentError, match=rf"k={slots + 1} barrier tasks .* has "
                                                   rf"{slots} task slots"):
        train(digits[0][:200], digits[1][:200], k=slots + 1, epochs=1)



def _spark_backed_digits(spark: Any, X: np.ndarray, Y: np.ndarray) -> tuple[Any, Any]:
    import pyarrow as pa

    columns = {f"x{j}": X[:, j] for j in range(X.shape[1])}
    columns.update({f"y{j}": Y[:, j] for j in range(Y.shape[1])})
    df = spark.createDataFrame(pa.table(columns)).cache()
    features = fl.from_spark(df, columns=[f"x{j}" for j in range(X.shape[1])])
    labels = fl.from_spark(df, columns=[f"y{j}" for j in range(Y.shape[1])])
    np.testing.assert_array_equal(features.compute(), X)  # rows in order, over 2 partitions
    return features, labels


@pytest.mark.parametrize("scheme", ["KEEP_DATA_ON_WORKER", "REPLICATE_TO_MAX"])
def test_spark_backed_data_trains_in_its_partitions_as_federated_sites_would(
        spark: Any, ctx: Any, digits: tuple[np.ndarray, ...], scheme: str) -> None:
    X_train, Y_train, X_test, Y_test = digits
    X_spark, Y_spark = _spark_backed_digits(spark, X_train, Y_train)
    sizes = [b.rows[1] - b.rows[0] for b in X_spark.node.layout.blocks]
    assert len(sizes) == 2 and sizes[0] != sizes[1]  # uneven: REPLICATE_TO_MAX adds rows
    settings = {"upd": ffn.UPD, "agg": ffn.AGG, "utype": "BSP", "freq": "EPOCH", "epochs": 4,
                "batchsize": 32, "seed": 0, "scheme": scheme, "progress": False,
                "hyperparams": {"optimizer": "adam", "lr": 3e-3}}
    on_spark = fl.paramserv(ffn.init(64, 10, (64,), seed=0), X_spark, Y_spark, **settings)
    X_fed = ctx.scatter(X_train, sizes=sizes)
    federated = fl.paramserv(ffn.init(64, 10, (64,), seed=0), X_fed,
                             ctx.scatter(Y_train, like=X_fed), **settings)
    for a, b in zip(on_spark, federated):  # the same local steps on the same rows, in one job
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10)
    assert on_spark.history.sites == ["spark-0", "spark-1"]
    assert on_spark.history.samples == federated.history.samples
    accuracy = (ffn.predict(list(on_spark), X_test).argmax(1) == Y_test.argmax(1)).mean()
    assert accuracy >= 0.9


def test_spark_backed_data_refuses_local_mode_and_takes_local_labels(
        spark: Any, digits: tuple[np.ndarray, ...]) -> None:
    X_train, Y_train, _, _ = digits
    X_spark, _ = _spark_backed_digits(spark, X_train, Y_train)
    with pytest.raises(InvalidArgumentError, match="Spark-backed features"):
        fl.paramserv(ffn.init(64, 10, (64,), seed=0), X_spark, Y_train, upd=ffn.UPD,
                     agg=ffn.AGG, mode="LOCAL", progress=False)
    with pytest.raises(InvalidArgumentError, match="k=3 should be the number of Spark"):
        fl.paramserv(ffn.init(64, 10, (64,), seed=0), X_spark, Y_train, upd=ffn.UPD,
                     agg=ffn.AGG, k=3, progress=False)
    model = fl.paramserv(ffn.init(64, 10, (64,), seed=0), X_spark, Y_train, upd=ffn.UPD,
                         agg=ffn.AGG, epochs=1, seed=0, progress=False)
    assert model.history.sites == ["spark-0", "spark-1"] and model.history.updates > 0
