"""Training data of FEDERATED paramserv: which site holds which rows, and checks run at the sites.

The features must be a row-partitioned federated input (``Context.federated`` or
``Context.scatter``); each row block becomes one worker. Labels may be

- a federated input split like the features (used as they are);
- a federated input split differently (realigned once: only rows not at their features' site
  move, through the coordinator, and only if the data's privacy level allows it);
- a local array (its rows are sent to the sites of their features).

Data checks (NaN/inf, one-hot labels) run as federated aggregates: only counts leave the sites.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fedla.evaluation import realign
from fedla.functions import compute
from fedla.matrix import Matrix
from fedla.paramserv.federated_executor import SitePartition
from fedla.plan import Layout, Partitioning
from fedla.runtime.errors import InvalidArgumentError


def is_federated(value: Any) -> bool:
    """Whether ``value`` is a fedla matrix whose rows live at sites."""
    return isinstance(value, Matrix) and value.node.federated


def is_spark_backed(value: Any) -> bool:
    """Whether ``value`` is a fedla matrix whose rows are cached in Spark (``fl.from_spark``)."""
    from fedla.executors.spark_executor import SparkExecutor  # needs no pyspark to import

    return is_federated(value) and isinstance(value.context.executor, SparkExecutor)


def site_partitions(
    features: Any, labels: Any, names: tuple[str, str] = ("features", "labels")
) -> tuple[list[SitePartition], Matrix, Matrix]:
    """The row blocks of ``features`` with their labels at the same sites.

    Returns the partitions and the feature and label matrices (keep them alive while training:
    their variables at the sites live as long as they do). ``names`` are the parameters'
    names in errors (``val_features``, ``val_labels`` for a validation set).
    """
    layout = _input_layout(names[0], features)
    context = features.context
    if is_federated(labels):
        if labels.context is not context:
            raise InvalidArgumentError(
                f"The {names[1]!r} parameter of paramserv must belong to the same Context as "
                f"the {names[0]}."
            )
        _input_layout(names[1], labels)
        if labels.shape[0] != features.shape[0]:
            raise InvalidArgumentError(
                f"{names[0]} have {features.shape[0]} rows but {names[1]} have "
                f"{labels.shape[0]}"
            )
        label_layout = realign(labels.node, layout, context)
    else:
        if isinstance(labels, Matrix):
            labels = labels.compute()
        labels = np.asarray(labels)
        if labels.ndim != 2 or labels.shape[0] != features.shape[0]:
            raise InvalidArgumentError(
                f"The {names[1]!r} parameter of paramserv must be a 2-D array with one row per "
                f"row of the {names[0]} ({features.shape[0]}). Got shape {labels.shape} instead; "
                "one-hot encode classes with fedla.algorithms.nn.labels.one_hot(y)"
            )
        labels = context.scatter(labels, like=features)
        label_layout = labels.node.layout
    partitions = [
        SitePartition(f.site, f.rows, f.var, y.var)
        for f, y in zip(layout.blocks, label_layout.blocks)
    ]
    return partitions, features, labels


def _input_layout(name: str, value: Matrix) -> Layout:
    layout = value.node.layout
    if layout is None:
        raise InvalidArgumentError(
            f"The {name!r} parameter of paramserv in mode 'FEDERATED' must be a federated input "
            "(from Context.federated or Context.scatter), not a computed expression; compute "
            "derived features as part of the model's gradient function instead"
        )
    if layout.partitioning is not Partitioning.ROW:
        raise InvalidArgumentError(
            f"The {name!r} parameter of paramserv in mode 'FEDERATED' must be split by rows "
            f"(each site holds whole rows). Got a {layout.partitioning.value}-partitioned "
            "matrix instead"
        )
    return layout


def check_finite(name: str, value: Any) -> None:
    """Raise ``InvalidArgumentError`` when ``value`` holds NaN or infinity (counted at sites)."""
    counts = (value != value).sum() + (abs(value) == np.inf).sum()
    bad = int(counts.compute() if isinstance(counts, Matrix) else counts)
    if bad:
        raise InvalidArgumentError(
            f"The {name!r} parameter of paramserv holds {bad} NaN or infinite value(s); remove "
            "or impute them before training"
        )


def check_one_hot(name: str, labels: Any, n_classes: int | None) -> None:
    """Raise unless ``labels`` is one-hot (0/1, one 1 per row), checked by aggregates."""
    columns = labels.shape[1]
    fix = ("encode class indices with fedla.algorithms.nn.labels.one_hot(y) (for federated "
           "labels: one-hot encode them at the site before training)")
    if columns < 2 or (n_classes is not None and columns != n_classes):
        expected = f"{n_classes} columns (one per class)" if n_classes else ">= 2 columns"
        raise InvalidArgumentError(
            f"The {name!r} parameter of paramserv must be one-hot encoded with {expected} for "
            f"this model. Got shape {tuple(labels.shape)} instead; {fix}"
        )
    not_binary = abs(labels * (labels - 1)).sum()
    not_single = abs(labels.sum(axis=1) - 1).sum()
    if isinstance(labels, Matrix):
        not_binary, not_single = (float(v) for v in compute(not_binary, not_single))
    if float(not_binary) or float(not_single):
        raise InvalidArgumentError(
            f"The {name!r} parameter of paramserv must be one-hot encoded (each row one 1 and "
            f"zeros elsewhere), as the model's loss expects. Got other values instead; {fix}"
        )

